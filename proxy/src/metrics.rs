//! The standalone proxy's `/metrics`: the RocketMQ 5 clients connected.

use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::clients::Clients;

/// The exporter of `/metrics`.
pub fn exporter(clients: Arc<Clients>) -> mq_common::metrics_http::Exporter {
    let mut registry = Registry::with_prefix("mq_proxy");
    let connected: Gauge<i64, AtomicI64> = Gauge::default();
    registry.register(
        "clients",
        "RocketMQ 5 clients heard from in the last two minutes",
        connected.clone(),
    );
    mq_common::metrics_http::Exporter {
        registry,
        before_scrape: Box::new(move || {
            connected.set(clients.live().len() as i64);
        }),
    }
}
