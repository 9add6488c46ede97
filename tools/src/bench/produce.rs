//! `mqbench produce`: senders sharing one producer, optionally paced.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mq_producer::{Message, Producer, ProducerError, SendStatus};
use serde_json::json;

use super::ProduceArgs;
use super::report::{Stats, VerifyLog, progress};
use super::signals::Stopping;

/// Property carrying the send time in µs since the epoch, for latency.
pub const SENT_AT: &str = "mqbench_sent_us";

pub fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

pub async fn run(args: ProduceArgs) -> anyhow::Result<ExitCode> {
    let stats = Stats::new();
    send_all(&args, Arc::clone(&stats), true).await?;
    stats.print_summary("sent", args.common.json);
    Ok(if stats.failed() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn check(args: &ProduceArgs) -> anyhow::Result<()> {
    mq_common::validate::topic("--topic", &args.common.topic)?;
    anyhow::ensure!(args.size > 0, "--size must be at least 1");
    anyhow::ensure!(args.producers > 0, "--producers must be at least 1");
    anyhow::ensure!(
        (1..=1024).contains(&args.batch),
        "--batch must be 1 to 1024"
    );
    anyhow::ensure!(
        !args.transactional || (args.batch == 1 && args.delay_ms == 0 && args.linger_ms == 0),
        "--transactional sends one message per transaction: no --batch, --delay-ms or --linger-ms"
    );
    Ok(())
}

/// A producer builder for `common`'s nameservers, credentials and TLS.
pub fn producer(common: &super::Common) -> anyhow::Result<mq_producer::ProducerBuilder> {
    Ok(Producer::builder()
        .namesrv(&common.namesrv)
        .connector(common.connect.connector()?))
}

/// Sends `args.count` messages; shows progress when `show` is set.
pub async fn send_all(args: &ProduceArgs, stats: Arc<Stats>, show: bool) -> anyhow::Result<()> {
    check(args)?;
    let connector = args.common.connect.connector()?;
    let producer = Arc::new(
        producer(&args.common)?
            .linger(Duration::from_millis(args.linger_ms))
            .idempotent(!args.no_idempotence)
            .send_timeout(Duration::from_millis(args.send_timeout_ms))
            .max_in_flight(args.max_in_flight)
            .build()?,
    );
    let transactions = match args.transactional {
        true => Some(Arc::new(
            mq_producer::TransactionProducer::builder()
                .namesrv(&args.common.namesrv)
                .producer(|p| p.connector(connector))
                .group("mqbench-tx")
                .topics([args.common.topic.clone()])
                .checker(|_| async { mq_producer::TransactionState::Commit })
                .start()
                .await?,
        )),
        false => None,
    };
    let log = args
        .common
        .verify_log
        .as_deref()
        .map(VerifyLog::create)
        .transpose()?
        .map(Arc::new);
    let body = incompressible(args.size);
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let bar = show.then(|| {
        progress(
            Arc::clone(&stats),
            Some(args.count),
            "sent",
            Arc::clone(&done),
        )
    });
    // SIGINT or SIGTERM end the run early and cleanly: no new sends, the
    // ones in flight finish, the report and verify log are whole.
    let stopping = Stopping::on_signals()?;
    stats.restart_clock();
    let started = Instant::now();
    let senders: Vec<_> = (0..args.producers)
        .map(|_| {
            let (producer, stats, next, body, log, args, stopping, transactions) =
                (Arc::clone(&producer), Arc::clone(&stats), Arc::clone(&next), body.clone(), log.clone(), args.clone(), stopping.clone(), transactions.clone());
            tokio::spawn(async move {
                loop {
                    let first = next.fetch_add(args.batch as u64, Ordering::AcqRel);
                    if first >= args.count || stopping.requested() {
                        return;
                    }
                    let last = (first + args.batch as u64).min(args.count);
                    if args.rate > 0 {
                        let due = started + Duration::from_secs_f64(first as f64 / args.rate as f64);
                        tokio::time::sleep_until(due.into()).await;
                        if stopping.requested() {
                            return;
                        }
                    }
                    let messages: Vec<Message> = (first..last)
                        .map(|seq| {
                            let mut message = Message::new(args.common.topic.clone(), body.clone())
                                .with_key(format!("k{seq}"));
                            if args.deciles {
                                message = message
                                    .with_tags(format!("t{}", seq % 10))
                                    .with_property("decile", (seq % 10).to_string());
                            }
                            if args.delay_ms == 0 {
                                return message.with_property(SENT_AT, now_micros().to_string());
                            }
                            // Consumers measure from the due time.
                            let due = now_micros() + args.delay_ms * 1000;
                            message
                                .with_delay(Duration::from_millis(args.delay_ms))
                                .with_property(SENT_AT, due.to_string())
                        })
                        .collect();
                    let count = messages.len() as u64;
                    let began = Instant::now();
                    let result = if let Some(transactions) = &transactions {
                        let message = messages.into_iter().next().expect("one message");
                        transactions
                            .send_in_transaction(message, |_| async { mq_producer::TransactionState::Commit })
                            .await
                            .map(|sent| vec![sent.committed.unwrap_or(sent.half)])
                    } else if messages.len() == 1 {
                        producer.send(messages.into_iter().next().expect("one message")).await.map(|r| vec![r])
                    } else {
                        producer.send_batch(messages).await
                    };
                    match result {
                        Ok(results) => {
                            let late = results.iter().filter(|r| r.status != SendStatus::Ok).count() as u64;
                            if args.flush_wait {
                                for r in results.iter().filter(|r| r.status != SendStatus::Ok) {
                                    stats.record_failure(r.status.name(), 1);
                                }
                            }
                            stats.record_ok(count - if args.flush_wait { late } else { 0 }, count * body.len() as u64, Some(began.elapsed()));
                            if let Some(log) = &log {
                                // Only what counts as acknowledged: with
                                // --flush-wait, a send its broker could not
                                // make durable (disk or replicas) is not.
                                let acked = |r: &&mq_producer::SendResult| !args.flush_wait || r.status == SendStatus::Ok;
                                for (seq, r) in (first..last).zip(&results).filter(|(_, r)| acked(r)) {
                                    log.write(&json!({
                                        "id": r.message_id, "key": format!("k{seq}"), "topic": args.common.topic,
                                        "acked_ms": mq_common::clock::unix_millis(),
                                        "broker": r.broker_name, "queue": r.queue_id, "offset": r.queue_offset,
                                    }));
                                }
                            }
                        }
                        Err(err) => stats.record_failure(kind(&err), count),
                    }
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await?;
    }
    stats.finish();
    done.store(true, Ordering::Release);
    if let Some(bar) = bar {
        let _ = bar.await;
    }
    if let Some(log) = log {
        log.flush()?;
    }
    Ok(())
}

/// Bytes that LZ4 cannot shrink, so that the SDK's compression does not
/// make the figures look better than the bytes moved (xorshift64).
fn incompressible(size: usize) -> Bytes {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    Bytes::from(
        (0..size)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 32) as u8
            })
            .collect::<Vec<u8>>(),
    )
}

fn kind(err: &ProducerError) -> String {
    match err {
        ProducerError::InvalidMessage(_) => "invalid".into(),
        ProducerError::NoRoute { .. } => "no_route".into(),
        ProducerError::Refused { code, .. } => format!("refused_{code:?}").to_lowercase(),
        ProducerError::Failed { code, .. } => format!("failed_{code:?}").to_lowercase(),
        ProducerError::Timeout { .. } => "timeout".into(),
        ProducerError::Config(_) => "config".into(),
        ProducerError::Closed => "closed".into(),
    }
}
