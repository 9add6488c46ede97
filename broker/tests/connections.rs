//! A broker with few file descriptors (`ulimit -n 256`) and more idle
//! sockets than that: connections beyond the cap are refused, silent ones
//! are closed, the store keeps its descriptors (checkpoints never fail),
//! and clients keep being served.

#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use mq_proto::broker::v1 as pb;
use mq_proto::broker::v1::broker_client::BrokerClient;
use mq_test_support::ServerProcess;

const BROKER: &str = env!("CARGO_BIN_EXE_broker");

/// CPU time (user + system) the process used so far, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// Whether the other side closed `socket` (a read finds the end).
fn closed_by_peer(mut socket: &TcpStream) -> bool {
    socket
        .set_read_timeout(Some(Duration::from_millis(1)))
        .unwrap();
    matches!(socket.read(&mut [0u8; 1]), Ok(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_beyond_the_descriptor_limit_do_not_take_the_broker_down() {
    let dir = tempfile::tempdir().unwrap();
    // The soft and hard limits both 256, as `ulimit -n 256` would leave them.
    let broker = ServerProcess::start_until(
        "sh",
        &[
            "-c",
            "ulimit -n 256 && exec \"$0\" \"$@\"",
            BROKER,
            "--standalone",
            "--store-dir",
            dir.path().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--namesrv-listen",
            "127.0.0.1:0",
        ],
        &[("MQ_BROKER_IDLE_TIMEOUT", "3s")],
        "broker listening",
    );
    mq_test_support::cluster::create_topic(&broker.url(), "fd", 1).await;

    // 400 sockets that never say a word: more than the broker can hold.
    let idle: Vec<TcpStream> = (0..400)
        .filter_map(|_| TcpStream::connect_timeout(&broker.addr, Duration::from_secs(1)).ok())
        .collect();
    assert!(idle.len() > 256, "only {} connected", idle.len());
    tokio::time::sleep(Duration::from_millis(500)).await;

    // No spinning on failed accepts: over two seconds the broker uses
    // little CPU.
    let before = cpu_ticks(broker.pid());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let used = cpu_ticks(broker.pid()) - before;
    assert!(used < 50, "{used} ticks of CPU in 2 s while idle");

    // The refused sockets were closed by the broker at once.
    let closed = idle.iter().filter(|s| closed_by_peer(s)).count();
    assert!(closed >= idle.len() - 128, "only {closed} refused");

    // The silent ones that were taken go after the idle timeout; clients
    // are served again meanwhile, and checkpoints never failed.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut rpc) = BrokerClient::connect(broker.url()).await {
            let sent = rpc
                .send_message(pb::SendMessageRequest {
                    message: Some(pb::Message {
                        topic: "fd".into(),
                        body: "still here".into(),
                        ..pb::Message::default()
                    }),
                    queue_id: 0,
                    ..Default::default()
                })
                .await;
            if sent.is_ok() {
                break;
            }
        }
        assert!(Instant::now() < deadline, "the broker never served again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let still_open = idle.iter().filter(|s| !closed_by_peer(s)).count();
        if still_open == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{still_open} silent sockets still open long after idle_timeout"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let logs = broker.logs().join("\n");
    assert!(!logs.contains("checkpoint failed"), "{logs}");
    assert!(logs.contains("too many connections"), "{logs}");
}
