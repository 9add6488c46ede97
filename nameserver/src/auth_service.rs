//! `mq.auth.v1.Auth`: the cluster's users and policies, kept here, changed
//! by administrators and copied by every other server through `SyncAuth`.
//! Every call needs a super user; every change is audited.

use std::sync::Arc;

use mq_auth::Secret;
use mq_auth::audit;
use mq_auth::guard::Guard;
use mq_auth::model::{Action, Decision, Policy, Resource, UserType};
use mq_auth::snapshot::{AuthSnapshot, Change, ChangeError};
use mq_auth::store::{AuthStore, StoreError};
use mq_proto::auth::v1 as pb;
use mq_proto::auth::v1::auth_server::Auth;
use tonic::{Request, Response, Status};

/// Serves `mq.auth.v1.Auth` over this nameserver's copy.
#[derive(Debug, Clone)]
pub struct AuthService {
    guard: Guard,
}

impl AuthService {
    pub fn new(guard: Guard) -> Self {
        AuthService { guard }
    }

    fn store(&self) -> &Arc<AuthStore> {
        self.guard.store()
    }

    /// Makes `change` for the caller of `request`, audited either way.
    fn change<T>(
        &self,
        request: &Request<T>,
        change: Change,
    ) -> Result<Response<pb::ChangeResponse>, Status> {
        let user = self.guard.caller(request);
        let source = request.remote_addr();
        match self.store().apply(&change) {
            Ok(snapshot) => {
                audit::change(&user, source, &change, Ok(snapshot.version));
                Ok(Response::new(pb::ChangeResponse {
                    version: snapshot.version,
                }))
            }
            Err(err) => {
                let reason = err.to_string();
                audit::change(&user, source, &change, Err(&reason));
                Err(status(err))
            }
        }
    }
}

fn status(err: StoreError) -> Status {
    match err {
        StoreError::Change(change) => {
            let message = change.to_string();
            match change {
                ChangeError::UserExists(_) | ChangeError::PolicyExists { .. } => {
                    Status::already_exists(message)
                }
                ChangeError::NoSuchUser(_) | ChangeError::NoPolicy { .. } => {
                    Status::not_found(message)
                }
                ChangeError::Invalid(_) => Status::invalid_argument(message),
                ChangeError::Administrator(_) => Status::failed_precondition(message),
            }
        }
        other => Status::unavailable(other.to_string()),
    }
}

fn user_type(value: i32, field: &str) -> Result<Option<UserType>, Status> {
    match pb::UserType::try_from(value) {
        Ok(pb::UserType::Unspecified) => Ok(None),
        Ok(pb::UserType::Super) => Ok(Some(UserType::Super)),
        Ok(pb::UserType::Normal) => Ok(Some(UserType::Normal)),
        Err(_) => Err(Status::invalid_argument(format!(
            "{field}: {value} is not a user type"
        ))),
    }
}

fn user_type_to_wire(user_type: UserType) -> i32 {
    match user_type {
        UserType::Super => pb::UserType::Super as i32,
        UserType::Normal => pb::UserType::Normal as i32,
    }
}

fn policy(wire: pb::Policy, index: usize) -> Result<Policy, Status> {
    let field = |name: &str| format!("policies[{index}].{name}");
    let invalid =
        |name: &str, reason: String| Status::invalid_argument(format!("{}: {reason}", field(name)));
    let resource: Resource = wire.resource.parse().map_err(|e| invalid("resource", e))?;
    let actions = mq_auth::model::Action::parse_list(&wire.actions.join(","))
        .map_err(|e| invalid("actions", e))?;
    let source_ips = mq_auth::model::parse_source_ips(&wire.source_ips.join(","))
        .map_err(|e| invalid("source_ips", e))?;
    let decision = match pb::Decision::try_from(wire.decision) {
        Ok(pb::Decision::Allow) => Decision::Allow,
        Ok(pb::Decision::Deny) => Decision::Deny,
        _ => return Err(invalid("decision", "must be ALLOW or DENY".into())),
    };
    Ok(Policy {
        resource,
        actions,
        source_ips,
        decision,
    })
}

fn policy_to_wire(policy: &Policy) -> pb::Policy {
    pb::Policy {
        resource: policy.resource.to_string(),
        actions: policy.actions.iter().map(Action::to_string).collect(),
        source_ips: policy.source_ips.iter().map(|n| n.to_string()).collect(),
        decision: match policy.decision {
            Decision::Allow => pb::Decision::Allow as i32,
            Decision::Deny => pb::Decision::Deny as i32,
        },
    }
}

fn policies(wire: Vec<pb::Policy>) -> Result<Vec<Policy>, Status> {
    wire.into_iter()
        .enumerate()
        .map(|(i, p)| policy(p, i))
        .collect()
}

type RpcResult<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl Auth for AuthService {
    async fn create_user(
        &self,
        request: Request<pb::CreateUserRequest>,
    ) -> RpcResult<pb::ChangeResponse> {
        self.guard.require_super(&request)?;
        let wire = request.get_ref();
        let change = Change::CreateUser {
            name: wire.username.clone(),
            secret: Secret::new(wire.secret.clone()),
            user_type: user_type(wire.user_type, "user_type")?.unwrap_or(UserType::Normal),
        };
        self.change(&request, change)
    }

    async fn update_user(
        &self,
        request: Request<pb::UpdateUserRequest>,
    ) -> RpcResult<pb::ChangeResponse> {
        self.guard.require_super(&request)?;
        let wire = request.get_ref();
        let change = Change::UpdateUser {
            name: wire.username.clone(),
            secret: (!wire.secret.is_empty()).then(|| Secret::new(wire.secret.clone())),
            user_type: user_type(wire.user_type, "user_type")?,
        };
        self.change(&request, change)
    }

    async fn delete_user(
        &self,
        request: Request<pb::DeleteUserRequest>,
    ) -> RpcResult<pb::ChangeResponse> {
        self.guard.require_super(&request)?;
        let change = Change::DeleteUser {
            name: request.get_ref().username.clone(),
        };
        self.change(&request, change)
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> RpcResult<pb::ListUsersResponse> {
        self.guard.require_super(&request)?;
        let snapshot = self.store().snapshot();
        let prefix = &request.get_ref().prefix;
        Ok(Response::new(pb::ListUsersResponse {
            users: snapshot
                .users
                .iter()
                .filter(|(name, _)| name.starts_with(prefix.as_str()))
                .map(|(name, user)| pb::UserInfo {
                    username: name.clone(),
                    user_type: user_type_to_wire(user.user_type),
                })
                .collect(),
            version: snapshot.version,
        }))
    }

    async fn create_acl(&self, request: Request<pb::AclRequest>) -> RpcResult<pb::ChangeResponse> {
        self.guard.require_super(&request)?;
        let wire = request.get_ref().clone();
        let change = Change::CreateAcl {
            user: wire.username,
            policies: policies(wire.policies)?,
        };
        self.change(&request, change)
    }

    async fn update_acl(&self, request: Request<pb::AclRequest>) -> RpcResult<pb::ChangeResponse> {
        self.guard.require_super(&request)?;
        let wire = request.get_ref().clone();
        let change = Change::UpdateAcl {
            user: wire.username,
            policies: policies(wire.policies)?,
        };
        self.change(&request, change)
    }

    async fn delete_acl(
        &self,
        request: Request<pb::DeleteAclRequest>,
    ) -> RpcResult<pb::ChangeResponse> {
        self.guard.require_super(&request)?;
        let wire = request.get_ref();
        let resources = wire
            .resources
            .iter()
            .enumerate()
            .map(|(i, r)| {
                r.parse::<Resource>()
                    .map_err(|e| Status::invalid_argument(format!("resources[{i}]: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let change = Change::DeleteAcl {
            user: wire.username.clone(),
            resources,
        };
        self.change(&request, change)
    }

    async fn list_acls(
        &self,
        request: Request<pb::ListAclsRequest>,
    ) -> RpcResult<pb::ListAclsResponse> {
        self.guard.require_super(&request)?;
        let snapshot = self.store().snapshot();
        let only = &request.get_ref().username;
        Ok(Response::new(pb::ListAclsResponse {
            acls: snapshot
                .acls
                .iter()
                .filter(|(user, _)| only.is_empty() || *user == only)
                .map(|(user, policies)| pb::Acl {
                    username: user.clone(),
                    policies: policies.iter().map(policy_to_wire).collect(),
                })
                .collect(),
            version: snapshot.version,
        }))
    }

    async fn sync_auth(
        &self,
        request: Request<pb::SyncAuthRequest>,
    ) -> RpcResult<pb::SyncAuthResponse> {
        self.guard.require_super(&request)?;
        let wire = request.get_ref();
        if !wire.snapshot.is_empty() {
            let offered: AuthSnapshot = serde_json::from_slice(&wire.snapshot).map_err(|e| {
                Status::invalid_argument(format!(
                    "snapshot: not the users and policies' JSON form: {e}"
                ))
            })?;
            if self.store().offer(offered).map_err(status)? {
                tracing::info!(
                    version = self.store().snapshot().version,
                    from = %self.guard.caller(&request),
                    "adopted a newer copy of the users and policies"
                );
            }
        }
        let ours = self.store().snapshot();
        let digest = ours.digest();
        let theirs = (wire.version, wire.digest.as_str());
        let ours_newer = (ours.version, digest.as_str()) > theirs;
        let snapshot = if ours_newer {
            serde_json::to_vec(&*ours).map_err(|e| Status::internal(e.to_string()))?
        } else {
            Vec::new()
        };
        Ok(Response::new(pb::SyncAuthResponse {
            version: ours.version,
            send_yours: !ours_newer && theirs != (ours.version, digest.as_str()),
            digest,
            snapshot: snapshot.into(),
        }))
    }
}
