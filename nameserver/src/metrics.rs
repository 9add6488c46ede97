//! The nameserver's Prometheus metrics: registrations, heartbeats,
//! expiries, route queries, and the live brokers at scrape time.

use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::route_table::RouteTable;

type Labels = Vec<(String, String)>;

#[derive(Debug, Clone, Default)]
pub struct NameServerMetrics {
    registrations: Counter,
    heartbeats: Counter,
    unregistrations: Counter,
    expiries: Counter,
    route_queries: Family<Labels, Counter>,
}

impl NameServerMetrics {
    /// A registration that changed something, or a plain heartbeat.
    pub fn registered(&self, heartbeat_only: bool) {
        if heartbeat_only {
            self.heartbeats.inc();
        } else {
            self.registrations.inc();
        }
    }

    pub fn unregistered(&self) {
        self.unregistrations.inc();
    }

    pub fn expired(&self, brokers: usize) {
        self.expiries.inc_by(brokers as u64);
    }

    /// A route query, found or not.
    pub fn route_query(&self, found: bool) {
        let result = if found { "found" } else { "not_found" };
        self.route_queries
            .get_or_create(&vec![("result".into(), result.into())])
            .inc();
    }

    /// The registry, with the live-broker gauge read at scrape time.
    pub fn exporter(&self, table: Arc<RouteTable>) -> mq_common::metrics_http::Exporter {
        let mut registry = Registry::with_prefix("mq_namesrv");
        let m = self.clone();
        registry.register(
            "registrations",
            "Broker registrations that changed routes",
            m.registrations,
        );
        registry.register(
            "heartbeats",
            "Broker registrations that changed nothing",
            m.heartbeats,
        );
        registry.register(
            "unregistrations",
            "Brokers that left cleanly",
            m.unregistrations,
        );
        registry.register("expiries", "Brokers dropped for silence", m.expiries);
        registry.register("route_queries", "Route queries, by result", m.route_queries);
        let live = Gauge::<i64>::default();
        registry.register("live_brokers", "Broker instances routed now", live.clone());
        mq_common::metrics_http::Exporter {
            registry,
            before_scrape: Box::new(move || {
                live.set(i64::try_from(table.live_instances().len()).unwrap_or(i64::MAX));
            }),
        }
    }
}
