//! Wake-ups for long polling: the dispatcher rings a topic's bell when it
//! indexes a message of that topic; held pulls wait on the bell instead of
//! polling. A waiter costs a registration, not a thread. One more bell
//! rings for every message of any topic: replication streams wait on it.

use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::Notify;

#[derive(Debug, Default)]
pub struct Arrivals {
    bells: DashMap<String, Arc<Notify>>,
    any: Notify,
}

impl Arrivals {
    /// The bell of `topic`, created on first use.
    pub fn bell(&self, topic: &str) -> Arc<Notify> {
        if let Some(bell) = self.bells.get(topic) {
            return Arc::clone(&bell);
        }
        Arc::clone(&self.bells.entry(topic.to_owned()).or_default())
    }

    /// The bell that rings for every topic.
    pub fn any(&self) -> &Notify {
        &self.any
    }

    /// Wakes every pull waiting on `topic`, and every waiter on any topic
    /// (cheap when none waits).
    pub fn ring(&self, topic: &str) {
        if let Some(bell) = self.bells.get(topic) {
            bell.notify_waiters();
        }
        self.any.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_ring_wakes_the_waiters_of_its_topic() {
        let arrivals = Arc::new(Arrivals::default());
        let bell = arrivals.bell("t");
        let waiting = bell.notified();
        tokio::pin!(waiting);
        waiting.as_mut().enable();
        arrivals.ring("other");
        arrivals.ring("t");
        tokio::time::timeout(std::time::Duration::from_secs(1), waiting)
            .await
            .unwrap();
    }
}
