//! Topic routes, fetched from the nameservers on first use and refreshed
//! in the background. When no nameserver answers, cached routes keep
//! serving: a producer rides out a nameserver outage.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use mq_common::AUTO_CREATE_TOPIC;
use mq_nameserver_client::NameServerClient;
use tonic::Code;

use crate::error::ProducerError;
use crate::route::PublishRoute;

/// A route fetched less than this long ago is not fetched again when a
/// send suggests it is stale: a broker that is down makes every send fail
/// at once, and they should not all ask the nameservers.
const SUSPECT_REFETCH_AFTER: Duration = Duration::from_millis(300);

#[derive(Debug)]
pub struct RouteCache {
    namesrv: NameServerClient,
    /// Each topic's route and when it was fetched.
    routes: RwLock<HashMap<String, (Arc<PublishRoute>, Instant)>>,
}

impl RouteCache {
    pub fn new(namesrv: NameServerClient) -> Self {
        RouteCache {
            namesrv,
            routes: RwLock::new(HashMap::new()),
        }
    }

    /// The topic's route: cached, or fetched now.
    pub async fn get(&self, topic: &str) -> Result<Arc<PublishRoute>, ProducerError> {
        if let Some(route) = self.cached(topic) {
            return Ok(route);
        }
        self.fetch(topic).await
    }

    fn cached(&self, topic: &str) -> Option<Arc<PublishRoute>> {
        self.routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(topic)
            .map(|(route, _)| Arc::clone(route))
    }

    /// A send failed in a way a stale route explains (the broker is gone,
    /// or is no longer its group's master after a failover): refetches the
    /// route unless it is fresh, keeping the cached one if no nameserver
    /// answers.
    /// Returns the route as it is now.
    pub async fn suspect(&self, topic: &str) -> Option<Arc<PublishRoute>> {
        let cached = self
            .routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(topic)
            .cloned();
        if let Some((route, at)) = &cached
            && at.elapsed() < SUSPECT_REFETCH_AFTER
        {
            return Some(Arc::clone(route));
        }
        match self.fetch(topic).await {
            Ok(route) => Some(route),
            Err(err) => {
                tracing::debug!(topic, error = %err, "route refetch failed; keeping the cached route");
                cached.map(|(route, _)| route)
            }
        }
    }

    async fn fetch(&self, topic: &str) -> Result<Arc<PublishRoute>, ProducerError> {
        let no_route = |reason: String| ProducerError::NoRoute {
            topic: topic.to_owned(),
            reason,
        };
        let response = match self.namesrv.query_route(topic).await {
            Ok(response) => response,
            // A new topic: borrow the route of brokers that auto-create
            // topics; the first send creates it there.
            Err(err) if err.code() == Code::NotFound => {
                let mut borrowed =
                    self.namesrv
                        .query_route(AUTO_CREATE_TOPIC)
                        .await
                        .map_err(|_| {
                            no_route(
                                "no broker serves it (create it, or turn on auto_create_topic)"
                                    .to_owned(),
                            )
                        })?;
                borrowed.topic = topic.to_owned();
                borrowed
            }
            Err(err) => return Err(no_route(err.to_string())),
        };
        let route = Arc::new(PublishRoute::from_route(&response));
        self.routes
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(topic.to_owned(), (Arc::clone(&route), Instant::now()));
        Ok(route)
    }

    /// Refetches every cached topic; a topic no nameserver answers for
    /// keeps its cached route.
    pub async fn refresh_all(&self) {
        let topics: Vec<String> = self
            .routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        for topic in topics {
            if let Err(err) = self.fetch(&topic).await {
                tracing::debug!(topic, error = %err, "route refresh failed; keeping the cached route");
            }
        }
    }

    /// Forgets a topic's route, so that the next send fetches it anew.
    pub fn invalidate(&self, topic: &str) {
        self.routes
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(topic);
    }
}
