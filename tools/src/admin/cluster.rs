//! `mqadmin cluster list`: clusters, brokers, addresses, heartbeat ages,
//! put/get rates (two readings of each broker's counters, a second apart)
//! and replication: each member's role, a master's mode and replicas in
//! sync, a replica's lag (bytes and time).

use std::time::Duration;

use mq_proto::broker::v1 as pb;
use serde_json::json;

use super::client::Admin;
use super::output::{Table, emit, time};

/// How far apart the two readings of the counters are.
const SAMPLE: Duration = Duration::from_secs(1);

pub async fn list(admin: &Admin) -> anyhow::Result<()> {
    let info = admin.cluster_info().await?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut rows = Vec::new();
    for cluster in &info.clusters {
        for b in &cluster.brokers {
            for instance in &b.instances {
                rows.push((
                    cluster.cluster_name.clone(),
                    b.broker_name.clone(),
                    instance.clone(),
                ));
            }
        }
    }
    // First reading of every broker, then one a second later.
    let mut first = Vec::new();
    for (_, name, instance) in &rows {
        first.push(stats(admin, name, &instance.address).await);
    }
    tokio::time::sleep(SAMPLE).await;
    let mut table = Table::new(&[
        ("CLUSTER", "cluster"),
        ("BROKER", "broker"),
        ("ID", "id"),
        ("ADDRESS", "address"),
        ("VERSION", "version"),
        ("HEARTBEAT", "heartbeat_age"),
        ("ROLE", "role"),
        ("REPLICATION", "replication"),
        ("LAG", "lag_bytes"),
        ("LAG TIME", "lag_time"),
        ("IN MSG/S", "in_per_sec"),
        ("OUT MSG/S", "out_per_sec"),
    ]);
    for ((cluster, name, instance), before) in rows.iter().zip(first) {
        let after = stats(admin, name, &instance.address).await;
        let rate = |pick: fn(&pb::GetBrokerStatsResponse) -> u64| match (&before, &after) {
            (Some(a), Some(b)) => {
                json!(((pick(b).saturating_sub(pick(a))) as f64 / SAMPLE.as_secs_f64()).round())
            }
            _ => json!(null),
        };
        let version = instance
            .data_version
            .as_ref()
            .map(|v| format!("{}.{}", v.timestamp_ms, v.counter));
        table.push(json!({
            "cluster": cluster,
            "broker": name,
            "id": instance.broker_id,
            "address": instance.address,
            "version": version,
            "last_heartbeat": time(instance.last_heartbeat_ms),
            "heartbeat_age": format!("{:.1}s", now_ms.saturating_sub(instance.last_heartbeat_ms) as f64 / 1000.0),
            "role": after.as_ref().map(|s| s.role.clone()),
            "replication": after.as_ref().map(replication),
            "lag_bytes": after.as_ref().map(|s| lag(s).0),
            "lag_ms": after.as_ref().map(|s| lag(s).1),
            "lag_time": after.as_ref().map(|s| format!("{:.1}s", lag(s).1 as f64 / 1000.0)),
            "replicas": after.as_ref().map(|s| s.replicas.iter().map(|r| json!({
                "id": r.broker_id, "acked_offset": r.acked_offset, "lag_bytes": r.lag_bytes, "lag_ms": r.lag_ms, "in_sync": r.in_sync,
            })).collect::<Vec<_>>()),
            "in_per_sec": rate(|s| s.messages_in),
            "out_per_sec": rate(|s| s.messages_out),
            "messages_in": after.as_ref().map(|s| s.messages_in),
            "messages_out": after.as_ref().map(|s| s.messages_out),
        }));
    }
    emit(admin.json, &table, &[], json!({"brokers": table.rows()}));
    Ok(())
}

/// A master's mode and replicas in sync (`sync, 1/1 in sync`); a
/// replica's following state.
fn replication(stats: &pb::GetBrokerStatsResponse) -> String {
    if stats.role == "replica" {
        return if stats.following {
            "following"
        } else {
            "not following"
        }
        .into();
    }
    let in_sync = stats.replicas.iter().filter(|r| r.in_sync).count();
    format!(
        "{}, {in_sync}/{} in sync",
        stats.replication,
        stats.replicas.len()
    )
}

/// A replica's lag, bytes and ms; a master's furthest replica's.
fn lag(stats: &pb::GetBrokerStatsResponse) -> (u64, u64) {
    if stats.role == "replica" {
        return (stats.replication_lag_bytes, stats.replication_lag_ms);
    }
    let furthest =
        |pick: fn(&pb::ReplicaProgress) -> u64| stats.replicas.iter().map(pick).max().unwrap_or(0);
    (furthest(|r| r.lag_bytes), furthest(|r| r.lag_ms))
}

/// The broker's counters, or `None` when it does not answer (shown as "-").
async fn stats(admin: &Admin, name: &str, addr: &str) -> Option<pb::GetBrokerStatsResponse> {
    let mut client = admin.broker(name, addr).await.ok()?;
    Some(
        client
            .get_broker_stats(pb::GetBrokerStatsRequest {})
            .await
            .ok()?
            .into_inner(),
    )
}
