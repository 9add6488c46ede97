//! `mqbench consume`: a group of push consumers counting what arrives.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mq_consumer::{ConsumeFrom, ConsumeResult, PushConsumer};
use serde_json::json;

use super::ConsumeArgs;
use super::produce::{SENT_AT, now_micros};
use super::report::{Stats, VerifyLog, progress};
use super::signals::Stopping;

/// Property of the message `mqbench e2e` sends to create its topic.
pub const WARM_UP: &str = "mqbench_warm_up";

pub async fn run(args: ConsumeArgs) -> anyhow::Result<ExitCode> {
    let stats = Stats::new();
    let stopping = Stopping::on_signals()?;
    let consumers = start(&args, Arc::clone(&stats)).await?;
    let done = Arc::new(AtomicBool::new(false));
    let total = (args.count > 0).then_some(args.count);
    let bar = progress(Arc::clone(&stats), total, "received", Arc::clone(&done));
    let idle = (args.idle > 0).then(|| Duration::from_secs(args.idle));
    wait(
        &stats,
        args.count,
        Duration::from_secs(args.timeout),
        idle,
        Some(&stopping),
    )
    .await;
    stats.finish();
    done.store(true, Ordering::Release);
    let _ = bar.await;
    stop(consumers).await;
    stats.print_summary("received", args.common.json);
    let complete = args.count == 0 || stats.ok.load(Ordering::Acquire) >= args.count;
    // With --idle, how much arrived is for `mqbench verify` to judge.
    let complete = complete || (args.idle > 0 && stats.ok.load(Ordering::Acquire) > 0);
    Ok(if complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub struct Running {
    consumers: Vec<PushConsumer>,
    log: Option<Arc<VerifyLog>>,
}

/// Starts `args.consumers` members; every message is counted once handled,
/// with its latency from the producer's send time.
pub async fn start(args: &ConsumeArgs, stats: Arc<Stats>) -> anyhow::Result<Running> {
    mq_common::validate::topic("--topic", &args.common.topic)?;
    mq_common::validate::topic("--group", &args.group)?;
    anyhow::ensure!(args.consumers > 0, "--consumers must be at least 1");
    let log = args
        .common
        .verify_log
        .as_deref()
        .map(VerifyLog::create)
        .transpose()?
        .map(Arc::new);
    let mut consumers = Vec::with_capacity(args.consumers);
    for member in 0..args.consumers {
        let (stats, log) = (Arc::clone(&stats), log.clone());
        let builder = PushConsumer::builder()
            .namesrv(&args.common.namesrv)
            .connector(args.common.connect.connector()?)
            .group(&args.group)
            .client_id(format!("mqbench-{}-{member}", std::process::id()));
        let builder = match &args.sql {
            Some(sql) => builder.subscribe_sql(&args.common.topic, sql),
            None => builder.subscribe(&args.common.topic, &args.tags),
        };
        let consumer = builder
            .consume_from(if args.from_first { ConsumeFrom::FirstOffset } else { ConsumeFrom::LastOffset })
            .heartbeat_interval(Duration::from_secs(1))
            .pull_batch(args.pull_batch)
            .handler(move |batch| {
                let (stats, log) = (Arc::clone(&stats), log.clone());
                async move {
                    let now = now_micros();
                    for msg in batch.iter().filter(|m| !m.properties.contains_key(WARM_UP)) {
                        let due = msg.properties.get(SENT_AT).and_then(|s| s.parse::<u64>().ok());
                        // Scheduled messages must not come before their
                        // time (10 ms of slack for the clocks' resolution).
                        if due.is_some_and(|due| now + 10_000 < due) {
                            stats.record_failure("early", 1);
                            continue;
                        }
                        let latency = msg
                            .properties
                            .get(SENT_AT)
                            .and_then(|sent| sent.parse::<u64>().ok())
                            .or(Some(msg.born_timestamp_ms * 1000))
                            .map(|sent| Duration::from_micros(now.saturating_sub(sent)));
                        stats.record_ok(1, msg.body.len() as u64, latency);
                        if let Some(log) = &log {
                            log.write(&json!({
                                "id": msg.unique_id, "key": msg.keys.first(), "topic": msg.queue.topic,
                                "broker": msg.queue.broker_name, "queue": msg.queue.queue_id, "offset": msg.queue_offset,
                                "at_ms": now / 1000,
                            }));
                        }
                    }
                    ConsumeResult::Success
                }
            })
            .start()
            .await?;
        consumers.push(consumer);
    }
    stats.restart_clock();
    Ok(Running { consumers, log })
}

/// Waits until `count` messages arrived (0: no count), `timeout` passed,
/// or, with `idle`, nothing arrived for that long after the first message,
/// or a signal asked to stop.
pub async fn wait(
    stats: &Stats,
    count: u64,
    timeout: Duration,
    idle: Option<Duration>,
    stopping: Option<&Stopping>,
) {
    let started = tokio::time::Instant::now();
    let (mut seen, mut last_arrival) = (0, started);
    loop {
        let now = tokio::time::Instant::now();
        let received = stats.ok.load(Ordering::Acquire);
        if received != seen {
            (seen, last_arrival) = (received, now);
        }
        let quiet = idle.is_some_and(|idle| seen > 0 && now - last_arrival >= idle);
        let stopped = stopping.is_some_and(Stopping::requested);
        if now - started >= timeout || (count > 0 && received >= count) || quiet || stopped {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn stop(running: Running) {
    for consumer in running.consumers {
        consumer.shutdown().await;
    }
    if let Some(log) = running.log {
        let _ = log.flush();
    }
}
