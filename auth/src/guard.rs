//! The check in front of every RPC of our services.
//!
//! [`Authenticated`] wraps a whole gRPC service: every call must carry a
//! valid signature of a known user, or it is answered `UNAUTHENTICATED`
//! before the service sees it. The handler then asks [`Guard::check`]
//! whether the caller may do what the call does, on what it names (only
//! the handler knows the topic or group); a refusal is
//! `PERMISSION_DENIED`. Health and reflection are not wrapped: container
//! health checks and `grpcurl list` need no credentials and read nothing.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use futures_util::future::{Either, Ready, ready};
use tonic::server::NamedService;
use tonic::transport::server::TcpConnectInfo;
use tonic::{Request, Status};

use crate::audit;
use crate::authorize::{Identity, decide};
use crate::model::{Action, Decision, Target, UserType};
use crate::signature::{self, SignatureError};
use crate::store::AuthStore;

/// The path of the call being served (`/mq.broker.v1.Broker/SendMessage`),
/// for the audit log.
#[derive(Debug, Clone)]
struct RpcPath(String);

/// Checks requests against one server's copy of the users and policies.
#[derive(Debug, Clone)]
pub struct Guard {
    store: Arc<AuthStore>,
}

impl Guard {
    /// A guard over `store`.
    pub fn new(store: Arc<AuthStore>) -> Guard {
        Guard { store }
    }

    /// A guard that lets everything through (authentication off).
    pub fn disabled() -> Guard {
        let store = AuthStore::open(crate::settings::AuthSettings::disabled(), None)
            .unwrap_or_else(|_| unreachable!("a store without a file cannot fail to open"));
        Guard::new(Arc::new(store))
    }

    /// The users and policies it checks against.
    pub fn store(&self) -> &Arc<AuthStore> {
        &self.store
    }

    /// Whether requests are checked at all.
    pub fn enabled(&self) -> bool {
        self.store.settings().enabled
    }

    /// Wraps `service` so that every call to it is authenticated.
    pub fn wrap<S>(&self, service: S) -> Authenticated<S> {
        Authenticated {
            inner: service,
            guard: self.clone(),
        }
    }

    /// Who signed the request with these headers, or why it is refused.
    pub fn authenticate(&self, headers: &http::HeaderMap) -> Result<Identity, SignatureError> {
        let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
        let authorization = text(signature::AUTHORIZATION).ok_or(SignatureError::Missing)?;
        let claim = signature::parse_authorization(authorization)?;
        let date_time = text(signature::DATE_TIME).ok_or(SignatureError::BadDateTime)?;
        let settings = self.store.settings();
        signature::check_fresh(date_time, SystemTime::now(), settings.max_clock_skew)?;
        let wrong = || SignatureError::WrongSignature(claim.access_key.clone());
        if let Some(admin) = &settings.administrator
            && admin.access_key == claim.access_key
        {
            if !claim.signed_with(admin.secret_key.expose(), date_time) {
                return Err(wrong());
            }
            return Ok(Identity {
                user: claim.access_key,
                user_type: UserType::Super,
            });
        }
        let snapshot = self.store.snapshot();
        let user = snapshot
            .users
            .get(&claim.access_key)
            .ok_or_else(|| SignatureError::UnknownUser(claim.access_key.clone()))?;
        if !claim.signed_with(user.secret.expose(), date_time) {
            return Err(wrong());
        }
        Ok(Identity {
            user: claim.access_key,
            user_type: user.user_type,
        })
    }

    /// Refuses `request` unless its caller may do `action` on `target`.
    pub fn check<T>(
        &self,
        request: &Request<T>,
        action: Action,
        target: Target,
    ) -> Result<(), Status> {
        self.check_any(request, &[action], target)
    }

    /// Refuses `request` unless its caller may do one of `actions` on
    /// `target` (a route lookup serves producers and consumers alike).
    pub fn check_any<T>(
        &self,
        request: &Request<T>,
        actions: &[Action],
        target: Target,
    ) -> Result<(), Status> {
        if !self.enabled() {
            return Ok(());
        }
        let identity = self.identity(request)?;
        let source = request.remote_addr();
        let snapshot = self.store.snapshot();
        let allowed = actions.iter().any(|&action| {
            decide(&snapshot, identity, action, &target, source.map(|s| s.ip())) == Decision::Allow
        });
        if allowed {
            return Ok(());
        }
        let names: Vec<String> = actions.iter().map(|a| a.to_string()).collect();
        let rpc = request
            .extensions()
            .get::<RpcPath>()
            .map_or("", |p| p.0.as_str());
        audit::denied(&identity.user, source, rpc, actions[0], &target);
        Err(Status::permission_denied(format!(
            "user {:?} may not {} on {target}: no policy of the user allows it, or one denies it",
            identity.user,
            names.join(" or ")
        )))
    }

    /// Refuses `request` unless its caller is a super user (managing users
    /// and policies, syncing them between servers).
    pub fn require_super<T>(&self, request: &Request<T>) -> Result<(), Status> {
        if !self.enabled() {
            return Ok(());
        }
        let identity = self.identity(request)?;
        if identity.user_type == UserType::Super {
            return Ok(());
        }
        let rpc = request
            .extensions()
            .get::<RpcPath>()
            .map_or("", |p| p.0.as_str());
        audit::denied(
            &identity.user,
            request.remote_addr(),
            rpc,
            Action::Admin,
            &Target::Cluster,
        );
        Err(Status::permission_denied(format!(
            "user {:?} is not a super user: only super users manage users and policies",
            identity.user
        )))
    }

    /// The verified caller of `request` (auth enabled).
    pub fn identity<'r, T>(&self, request: &'r Request<T>) -> Result<&'r Identity, Status> {
        request
            .extensions()
            .get::<Identity>()
            .ok_or_else(|| Status::unauthenticated("the request was not authenticated"))
    }

    /// The caller's name for the audit log ("anonymous" with auth off).
    pub fn caller<T>(&self, request: &Request<T>) -> String {
        request
            .extensions()
            .get::<Identity>()
            .map_or_else(|| "anonymous".to_owned(), |i| i.user.clone())
    }
}

/// A gRPC service whose every call is authenticated first.
#[derive(Debug, Clone)]
pub struct Authenticated<S> {
    inner: S,
    guard: Guard,
}

impl<S: NamedService> NamedService for Authenticated<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> tower::Service<http::Request<B>> for Authenticated<S>
where
    S: tower::Service<
            http::Request<B>,
            Response = http::Response<tonic::body::Body>,
            Error = Infallible,
        >,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Either<S::Future, Ready<Result<Self::Response, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        if !self.guard.enabled() {
            // Nothing to check, nothing to record: the call as it came.
            return Either::Left(self.inner.call(request));
        }
        let path = request.uri().path().to_owned();
        match self.guard.authenticate(request.headers()) {
            Ok(identity) => {
                request.extensions_mut().insert(identity);
            }
            Err(refusal) => {
                let source: Option<SocketAddr> = request
                    .extensions()
                    .get::<TcpConnectInfo>()
                    .and_then(|info| info.remote_addr());
                let reason = refusal.to_string();
                audit::unauthenticated(source, &path, &reason);
                return Either::Right(ready(Ok(Status::unauthenticated(reason).into_http())));
            }
        }
        request.extensions_mut().insert(RpcPath(path));
        Either::Left(self.inner.call(request))
    }
}
