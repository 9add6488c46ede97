//! Drives NATS JetStream (file storage) with the workloads `mqbench` runs
//! against our broker, and prints the same JSON summary line, so that
//! `scripts/bench_nats.sh` can put both side by side.
//!
//! ```text
//! nats-bench publish URL SUBJECT COUNT SIZE PUBLISHERS
//! nats-bench consume URL SUBJECT COUNT
//! ```
//!
//! `publish` runs PUBLISHERS tasks, each publishing and awaiting the
//! acknowledgement of one message at a time (as `mqbench produce
//! --producers P`): PUBLISHERS is the number of publishes in flight.
//! `consume` reads COUNT messages from the stream with a pull consumer that
//! acknowledges nothing (as `mqbench consume`, which commits offsets, not
//! messages).

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use hdrhistogram::Histogram;

const STREAM: &str = "BENCH";

/// Every SUBJECT is published as `bench.SUBJECT`, in one stream.
fn subject_of(name: &str) -> String {
    format!("bench.{name}")
}

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(err) = run(&args).await {
        eprintln!("nats-bench: {err}");
        std::process::exit(1);
    }
}

async fn run(args: &[String]) -> Result<(), Error> {
    let number = |i: usize, name: &str| -> Result<u64, Error> {
        let text = args.get(i).ok_or_else(|| format!("missing {name}"))?;
        text.parse()
            .map_err(|e| format!("{name} {text:?}: {e}").into())
    };
    match args.first().map(String::as_str) {
        Some("publish") if args.len() == 6 => {
            let (count, size, publishers) = (
                number(3, "COUNT")?,
                number(4, "SIZE")?,
                number(5, "PUBLISHERS")?,
            );
            publish(&args[1], &args[2], count, size as usize, publishers.max(1)).await
        }
        Some("consume") if args.len() == 4 => {
            consume(&args[1], &args[2], number(3, "COUNT")?).await
        }
        _ => Err(
            "usage: nats-bench publish URL SUBJECT COUNT SIZE PUBLISHERS | \
                  nats-bench consume URL SUBJECT COUNT"
                .into(),
        ),
    }
}

async fn publish(
    url: &str,
    subject: &str,
    count: u64,
    size: usize,
    publishers: u64,
) -> Result<(), Error> {
    let js = jetstream::new(async_nats::connect(url).await?);
    js.get_or_create_stream(stream::Config {
        name: STREAM.into(),
        subjects: vec!["bench.>".into()],
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await?;
    // Incompressible bodies, as mqbench sends.
    let body: Vec<u8> = (0..size as u64)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let body = Bytes::from(body);
    let began = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..publishers {
        let share = count / publishers + u64::from(p < count % publishers);
        let (js, body, subject) = (js.clone(), body.clone(), subject_of(subject));
        tasks.push(tokio::spawn(async move {
            let mut latencies = histogram();
            let mut failed = 0u64;
            for _ in 0..share {
                let sent = Instant::now();
                let acked = match js.publish(subject.clone(), body.clone()).await {
                    Ok(ack) => ack.await.is_ok(),
                    Err(_) => false,
                };
                if acked {
                    latencies.saturating_record(micros(sent.elapsed()));
                } else {
                    failed += 1;
                }
            }
            (latencies, failed)
        }));
    }
    let mut latencies = histogram();
    let mut failed = 0;
    for task in tasks {
        let (part, part_failed) = task.await?;
        latencies.add(part)?;
        failed += part_failed;
    }
    summary(
        "sent",
        latencies.len(),
        failed,
        size,
        began.elapsed(),
        Some(&latencies),
    );
    Ok(())
}

async fn consume(url: &str, subject: &str, count: u64) -> Result<(), Error> {
    let js = jetstream::new(async_nats::connect(url).await?);
    let stream = js.get_stream(STREAM).await?;
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            filter_subject: subject_of(subject),
            ack_policy: consumer::AckPolicy::None,
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await?;
    let began = Instant::now();
    let mut messages = consumer.messages().await?;
    let (mut received, mut bytes) = (0u64, 0usize);
    while received < count {
        match tokio::time::timeout(Duration::from_secs(30), messages.next()).await {
            Ok(Some(Ok(message))) => {
                received += 1;
                bytes += message.payload.len();
            }
            Ok(Some(Err(err))) => return Err(err.into()),
            Ok(None) | Err(_) => break,
        }
    }
    let size = if received == 0 {
        0
    } else {
        bytes / received as usize
    };
    summary(
        "received",
        received,
        count - received,
        size,
        began.elapsed(),
        None,
    );
    Ok(())
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

fn micros(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX)
}

/// The summary line of `mqbench --json`.
fn summary(
    what: &str,
    done: u64,
    failed: u64,
    size: usize,
    elapsed: Duration,
    latencies: Option<&Histogram<u64>>,
) {
    let seconds = elapsed.as_secs_f64().max(1e-9);
    let rate = done as f64 / seconds;
    let quantile = |q: f64| latencies.map_or(0, |h| h.value_at_quantile(q));
    println!(
        "{{\"{what}\":{done},\"failed\":{failed},\"msgs_per_sec\":{rate:.1},\"mb_per_sec\":{:.2},\
         \"p50_us\":{},\"p99_us\":{},\"p999_us\":{},\"max_us\":{}}}",
        rate * size as f64 / 1e6,
        quantile(0.5),
        quantile(0.99),
        quantile(0.999),
        latencies.map_or(0, Histogram::max),
    );
}
