//! The controller's Prometheus metrics: elections it proposed as leader,
//! and at scrape time its Raft term and role, and per broker group the
//! epoch, the SyncStateSet's size and the time since the last election.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::leader::Shared;

type Labels = Vec<(String, String)>;

#[derive(Debug, Clone, Default)]
pub struct ControllerMetrics {
    /// Masters elected (a new epoch) by this controller as leader.
    pub elections: Counter,
}

impl ControllerMetrics {
    pub fn exporter(&self, shared: Shared) -> mq_common::metrics_http::Exporter {
        let mut registry = Registry::with_prefix("mq_controller");
        registry.register(
            "elections",
            "Masters elected by this controller as Raft leader",
            self.elections.clone(),
        );
        let term = Gauge::<i64>::default();
        let leader = Gauge::<i64>::default();
        let epoch = Family::<Labels, Gauge<i64>>::default();
        let set_size = Family::<Labels, Gauge<i64>>::default();
        let since = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register("raft_term", "The Raft term", term.clone());
        registry.register(
            "is_leader",
            "1 on the Raft leader, 0 elsewhere",
            leader.clone(),
        );
        registry.register(
            "group_epoch",
            "Each broker group's master epoch",
            epoch.clone(),
        );
        registry.register(
            "sync_state_set_size",
            "Members of each group's SyncStateSet (master included)",
            set_size.clone(),
        );
        registry.register(
            "seconds_since_last_election",
            "Since the group's last election by this leader (leader only)",
            since.clone(),
        );
        let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        mq_common::metrics_http::Exporter {
            registry,
            before_scrape: Box::new(move || {
                let raft = shared.raft.metrics().borrow().clone();
                term.set(gauge(raft.current_term));
                let leading = shared.leading_term().is_some();
                leader.set(i64::from(leading));
                let now = std::time::Instant::now();
                for (name, group) in shared.machine.state().groups {
                    let labels = vec![("group".to_owned(), name.clone())];
                    epoch.get_or_create(&labels).set(gauge(group.epoch));
                    set_size
                        .get_or_create(&labels)
                        .set(gauge(group.sync_state_set.len() as u64));
                    if leading && let Some(elapsed) = shared.lock_view().since_election(&name, now)
                    {
                        since.get_or_create(&labels).set(elapsed.as_secs_f64());
                    }
                }
            }),
        }
    }
}
