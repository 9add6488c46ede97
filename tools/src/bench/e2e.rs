//! `mqbench e2e`: consumers first, then producers; the latency reported is
//! from each message's send to its handler.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::report::{Stats, progress};
use super::{ConsumeArgs, E2eArgs, consume, produce};

pub async fn run(args: E2eArgs) -> anyhow::Result<ExitCode> {
    let received = Stats::new();
    let consume_args = ConsumeArgs {
        common: super::Common {
            verify_log: None,
            ..args.produce.common.clone()
        },
        group: args.group.clone(),
        count: args.produce.count,
        consumers: args.consumers,
        timeout: args.timeout,
        from_first: false,
        pull_batch: 32,
        idle: 0,
        tags: "*".into(),
        sql: None,
    };
    // A new topic exists only after its first send (auto-creation): send
    // one warm-up message, which the consumers do not count.
    let warm_up = super::produce::producer(&args.produce.common)?.build()?;
    warm_up
        .send(
            mq_producer::Message::new(args.produce.common.topic.clone(), "warm-up")
                .with_property(consume::WARM_UP, "1"),
        )
        .await?;
    wait_for_route(&args.produce.common, &args.produce.common.topic).await?;
    let consumers = consume::start(&consume_args, Arc::clone(&received)).await?;
    // Let the group settle on its queues before the first send.
    tokio::time::sleep(Duration::from_secs(2)).await;
    received.restart_clock();
    let sent = Stats::new();
    let done = Arc::new(AtomicBool::new(false));
    let bar = progress(
        Arc::clone(&received),
        Some(args.produce.count),
        "received",
        Arc::clone(&done),
    );
    produce::send_all(&args.produce, Arc::clone(&sent), false).await?;
    let expected = sent.ok.load(Ordering::Acquire);
    consume::wait(
        &received,
        expected,
        Duration::from_secs(args.timeout),
        None,
        None,
    )
    .await;
    received.finish();
    done.store(true, Ordering::Release);
    let _ = bar.await;
    consume::stop(consumers).await;
    sent.print_summary("sent", false);
    received.print_summary("received", args.produce.common.json);
    let complete = received.ok.load(Ordering::Acquire) >= expected && sent.failed() == 0;
    Ok(if complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The broker announces an auto-created topic to the nameservers right
/// after the first send, but asynchronously: consumers started before the
/// route exists would find no queues.
async fn wait_for_route(common: &super::Common, topic: &str) -> anyhow::Result<()> {
    let client = mq_nameserver_client::NameServerClient::from_list_with(
        &common.namesrv,
        common.connect.connector()?,
    )?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match client.query_route(topic).await {
            Ok(_) => return Ok(()),
            Err(err) if tokio::time::Instant::now() >= deadline => {
                anyhow::bail!("topic {topic:?} has no route 10 s after its first send: {err}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}
