//! Throughput of Apache's official Rust client (rocketmq 5.0.0) against a
//! broker's proxy, for the comparison with our SDK (mqbench) in
//! BENCHMARKS.md (`scripts/bench_rocketmq_client.sh`). Prints one JSON line.
//!
//!   official_bench produce ENDPOINT TOPIC COUNT CONCURRENCY SIZE
//!   official_bench receive ENDPOINT TOPIC COUNT CONCURRENCY GROUP

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rocketmq::conf::{ClientOption, ProducerOption, SimpleConsumerOption};
use rocketmq::model::common::{FilterExpression, FilterType};
use rocketmq::model::message::MessageBuilder;
use rocketmq::{Producer, SimpleConsumer};

fn usage() -> ! {
    eprintln!(
        "usage: official_bench produce ENDPOINT TOPIC COUNT CONCURRENCY SIZE\n       official_bench receive ENDPOINT TOPIC COUNT CONCURRENCY GROUP"
    );
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 7 {
        usage();
    }
    let number = |i: usize| -> usize { args[i].parse().unwrap_or_else(|_| usage()) };
    let (mode, endpoint, topic) = (args[1].as_str(), args[2].clone(), args[3].clone());
    let (count, concurrency) = (number(4), number(5).max(1));
    let mut client = ClientOption::default();
    client.set_access_url(endpoint);
    client.set_enable_tls(false);
    client.set_long_polling_timeout(Duration::from_secs(3));
    let started;
    match mode {
        "produce" => {
            let size = number(6);
            let mut option = ProducerOption::default();
            option.set_topics(vec![topic.clone()]);
            let mut producer = Producer::new(option, client).expect("producer");
            producer.start().await.expect("producer start");
            let producer = Arc::new(producer);
            let next = Arc::new(AtomicUsize::new(0));
            started = Instant::now();
            let tasks: Vec<_> = (0..concurrency)
                .map(|_| {
                    let (producer, next, topic) =
                        (Arc::clone(&producer), Arc::clone(&next), topic.clone());
                    tokio::spawn(async move {
                        while next.fetch_add(1, Ordering::Relaxed) < count {
                            let message = MessageBuilder::builder()
                                .set_topic(topic.clone())
                                .set_body(vec![b'x'; size])
                                .build()
                                .expect("message");
                            producer.send(message).await.expect("send");
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.expect("sender");
            }
        }
        "receive" => {
            let mut option = SimpleConsumerOption::default();
            option.set_consumer_group(args[6].clone());
            option.set_topics(vec![topic.clone()]);
            let mut consumer = SimpleConsumer::new(option, client).expect("consumer");
            consumer.start().await.expect("consumer start");
            let consumer = Arc::new(consumer);
            let received = Arc::new(AtomicUsize::new(0));
            started = Instant::now();
            let tasks: Vec<_> = (0..concurrency)
                .map(|_| {
                    let (consumer, received, topic) =
                        (Arc::clone(&consumer), Arc::clone(&received), topic.clone());
                    tokio::spawn(async move {
                        let all = FilterExpression::new(FilterType::Tag, "*");
                        while received.load(Ordering::Relaxed) < count {
                            let batch = consumer
                                .receive_with(topic.as_str(), &all, 32, Duration::from_secs(60))
                                .await
                                .expect("receive");
                            for view in &batch {
                                consumer.ack(view).await.expect("ack");
                            }
                            received.fetch_add(batch.len(), Ordering::Relaxed);
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.expect("receiver");
            }
        }
        _ => usage(),
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{{\"mode\":\"{mode}\",\"messages\":{count},\"seconds\":{secs:.3},\"rate\":{:.0}}}",
        count as f64 / secs
    );
}
