//! What every binary owes its user, checked on the real `nameserver`:
//! help, clear start-up errors, configuration layers, graceful shutdown.

mod support;

use std::io::Write;
use std::net::TcpListener;
use std::time::Duration;

use mq_test_support::{ServerProcess, run_to_end};
use support::*;

#[test]
fn help_documents_every_option() {
    let (status, stdout, _) = run_to_end(BINARY, &["--help"], &[]);
    assert!(status.success());
    for option in [
        "--config",
        "--listen",
        "--broker-expire",
        "--scan-interval",
        "--log-level",
        "--log-format",
        "MQ_NAMESRV_",
    ] {
        assert!(
            stdout.contains(option),
            "--help does not mention {option}:\n{stdout}"
        );
    }
}

/// The error is one readable line on stderr and the exit status is non-zero.
fn assert_fails_with(args: &[&str], env: &[(&str, &str)], needle: &str) {
    let (status, _, stderr) = run_to_end(BINARY, args, env);
    assert!(!status.success(), "{args:?} should fail");
    assert_eq!(stderr.lines().count(), 1, "one line expected:\n{stderr}");
    assert!(stderr.contains(needle), "{needle:?} not in {stderr:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_taken_port_fails_with_one_line() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    assert_fails_with(
        &["--listen", &addr],
        &[],
        &format!("cannot listen on {addr}"),
    );
}

#[test]
fn bad_configuration_fails_with_one_line_naming_the_key() {
    assert_fails_with(
        &[],
        &[("MQ_NAMESRV_BROKER_EXPIRE", "soon")],
        "broker_expire",
    );
    assert_fails_with(
        &["--config", "/nonexistent/ns.toml"],
        &[],
        "/nonexistent/ns.toml",
    );
    assert_fails_with(
        &["--listen", "127.0.0.1:0", "--log-level", "info,=[bad"],
        &[],
        "log_level",
    );
    // Beyond loopback without authentication: refused, naming the way out.
    assert_fails_with(&[], &[], "--insecure");
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    writeln!(file, "listen = 12").unwrap();
    assert_fails_with(&["--config", file.path().to_str().unwrap()], &[], "listen");

    let (status, _, stderr) = run_to_end(BINARY, &["--listen", "nowhere"], &[]);
    assert_eq!(status.code(), Some(2), "clap's usage error: {stderr}");
    assert!(stderr.contains("--listen"), "{stderr}");
}

#[test]
fn file_env_and_flag_layers_reach_the_running_server() {
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    writeln!(file, "broker_expire = \"77s\"\nlisten = \"127.0.0.1:1\"").unwrap();
    let path = file.path().to_str().unwrap().to_owned();
    // The file says 77s and port 1; the environment overrides the expiry;
    // the flag overrides the listen address.
    let server = ServerProcess::start_with_env(
        BINARY,
        &["--config", &path, "--listen", "127.0.0.1:0"],
        &[("MQ_NAMESRV_BROKER_EXPIRE", "88s")],
    );
    let line = server
        .wait_for_log("nameserver listening", Duration::from_secs(1))
        .unwrap();
    assert!(line.contains("broker_expire=1m 28s"), "{line}");
    assert_ne!(server.addr.port(), 1);
}

#[test]
fn json_logs_are_one_object_per_line() {
    let server = start_nameserver(&["--log-format", "json"]);
    let line = server
        .wait_for_log("nameserver listening", Duration::from_secs(1))
        .unwrap();
    assert!(line.starts_with('{') && line.ends_with('}'), "{line}");
    assert!(line.contains("\"addr\":\"127.0.0.1:"), "{line}");
}

#[test]
fn sigterm_stops_the_server_gracefully() {
    let mut server = start_nameserver(&[]);
    let status = server
        .terminate(Duration::from_secs(10))
        .expect("exits within 10 s");
    assert!(status.success(), "{status:?}");
    assert!(
        server
            .wait_for_log("received SIGTERM", Duration::from_secs(1))
            .is_some()
    );
    assert!(
        server
            .wait_for_log("nameserver stopped", Duration::from_secs(1))
            .is_some()
    );
}

/// RocketMQ's `enableControllerInNamesrv`: three nameservers, each with a
/// controller inside, form one controller group that brokers can use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nameservers_with_embedded_controllers_form_one_controller_group() {
    use mq_controller::client::ControllerClient;
    use mq_proto::controller::v1 as pb;
    use mq_test_support::controllers::free_port;
    let dir = tempfile::tempdir().unwrap();
    let addrs: Vec<String> = (0..3)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let peers = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{}={a}", i + 1))
        .collect::<Vec<_>>()
        .join(";");
    let mut nameservers = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        let data = dir.path().join(format!("c{i}"));
        let id = (i + 1).to_string();
        nameservers.push(ServerProcess::start_until(
            BINARY,
            &[
                "--listen",
                "127.0.0.1:0",
                "--controller-peers",
                &peers,
                "--controller-id",
                &id,
                "--controller-listen",
                addr,
                "--controller-metrics-listen",
                "127.0.0.1:0",
                "--controller-data-dir",
                data.to_str().unwrap(),
            ],
            &[],
            "nameserver listening",
        ));
    }
    for nameserver in &nameservers {
        nameserver
            .wait_for_log("controller listening", Duration::from_secs(10))
            .unwrap();
    }
    let client = ControllerClient::from_list(&addrs.join(";")).unwrap();
    // The group elects its first leader (bounded wait).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let view = loop {
        let answer = client
            .register(pb::BrokerHeartbeat {
                group: "broker-a".into(),
                broker_id: 1,
                addr: "127.0.0.1:10911".into(),
                ..Default::default()
            })
            .await;
        match answer {
            Ok(view) => break view,
            Err(status) => assert!(std::time::Instant::now() < deadline, "{status:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!((view.master_id, view.epoch), (1, 1));
    let status = client.leader_status().await.unwrap();
    assert_eq!(status.controllers.len(), 3);
    assert_ne!(status.leader_id, 0);
    // SIGTERM stops both servers of the process cleanly.
    let mut first = nameservers.remove(0);
    assert!(first.terminate(Duration::from_secs(10)).unwrap().success());
    let logs = first.logs().join("\n");
    assert!(
        logs.contains("nameserver stopped") && logs.contains("controller stopped"),
        "{logs}"
    );
}
