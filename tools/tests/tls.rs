//! TLS with the real binaries and certificates made at run time: the SDKs
//! (through `mqbench`), `mqadmin`, `mqhealth` and grpcurl reach a TLS
//! broker that they trust; a wrong CA, a plaintext client and (with mutual
//! TLS) a client without a certificate are refused with a clear error; a
//! renewed certificate is served without a restart.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use mq_test_support::certs::{Authority, Pki};
use mq_test_support::{ServerProcess, run_to_end, standalone_broker_with_env};

const MQADMIN: &str = env!("CARGO_BIN_EXE_mqadmin");
const MQBENCH: &str = env!("CARGO_BIN_EXE_mqbench");
const MQHEALTH: &str = env!("CARGO_BIN_EXE_mqhealth");

/// A standalone broker serving TLS with `pki`'s server certificate (its
/// embedded nameserver too), with more settings.
fn tls_broker(store: &Path, pki: &Pki, env: &[(&str, &str)]) -> (ServerProcess, String) {
    let mut all = vec![
        ("MQ_BROKER_TLS_CERT_FILE", pki.server_cert.to_str().unwrap()),
        ("MQ_BROKER_TLS_KEY_FILE", pki.server_key.to_str().unwrap()),
        // What the broker trusts when it calls its nameserver.
        ("MQ_BROKER_TLS_CA_FILE", pki.ca.to_str().unwrap()),
    ];
    all.extend_from_slice(env);
    standalone_broker_with_env(store, &all)
}

/// mqadmin `args` against `namesrv` with extra flags `tls` first.
fn mqadmin(namesrv: &str, tls: &[&str], args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["--namesrv", namesrv];
    all.extend_from_slice(tls);
    all.extend_from_slice(args);
    let (status, out, err) = run_to_end(MQADMIN, &all, &[]);
    (status.success(), out, err)
}

#[tokio::test]
async fn clients_that_trust_the_ca_use_a_tls_broker_and_others_are_told_why_not() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(&dir.path().join("pki"));
    let (broker, namesrv) = tls_broker(&dir.path().join("store"), &pki, &[]);
    let ca = pki.ca.to_str().unwrap();
    assert!(
        broker
            .logs()
            .iter()
            .any(|l| l.contains("broker listening") && l.contains("tls=true"))
    );

    let (ok, out, err) = mqadmin(
        &namesrv,
        &["--tls-ca-file", ca],
        &[
            "topic",
            "create",
            "--topic",
            "secure",
            "--cluster",
            "DefaultCluster",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("created topic secure"), "{out}");

    // The SDKs, through mqbench: produce and consume over TLS.
    let produced = dir.path().join("produced.log");
    let (status, out, err) = run_to_end(
        MQBENCH,
        &[
            "produce",
            "--namesrv",
            &namesrv,
            "--topic",
            "secure",
            "--count",
            "200",
            "--size",
            "100",
            "--verify-log",
            produced.to_str().unwrap(),
            "--tls-ca-file",
            ca,
        ],
        &[],
    );
    assert!(status.success(), "{out}\n{err}");
    let consumed = dir.path().join("consumed.log");
    let (status, out, err) = run_to_end(
        MQBENCH,
        &[
            "consume",
            "--namesrv",
            &namesrv,
            "--topic",
            "secure",
            "--group",
            "g",
            "--from-first",
            "--count",
            "200",
            "--idle",
            "3",
            "--verify-log",
            consumed.to_str().unwrap(),
        ],
        &[("MQ_TLS_CA_FILE", ca)],
    );
    assert!(status.success(), "{out}\n{err}");
    let (status, out, err) = run_to_end(
        MQBENCH,
        &[
            "verify",
            produced.to_str().unwrap(),
            consumed.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        status.success() && out.contains("200 passed, 0 failed"),
        "{out}\n{err}"
    );

    // grpcurl and mqhealth with the CA.
    let broker_addr = broker.logged_addr("broker listening").unwrap().to_string();
    let (status, out, err) = run_to_end("grpcurl", &["-cacert", ca, &broker_addr, "list"], &[]);
    assert!(status.success(), "grpcurl -cacert: {err}");
    assert!(out.contains("mq.broker.v1.Broker"), "{out}");
    let (status, _, err) = run_to_end(MQHEALTH, &[&broker_addr, "--tls-ca-file", ca], &[]);
    assert!(status.success(), "{err}");

    // A client that trusts another CA refuses the server.
    let other = pki.other_ca.to_str().unwrap();
    let (ok, _, err) = mqadmin(&namesrv, &["--tls-ca-file", other], &["topic", "list"]);
    assert!(!ok, "a wrong CA must fail");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    // A plaintext client is told to use TLS.
    let (ok, _, err) = mqadmin(&namesrv, &[], &["topic", "list"]);
    assert!(!ok && err.contains("this port requires TLS"), "{err}");
    let (status, _, err) = run_to_end("grpcurl", &["-plaintext", &broker_addr, "list"], &[]);
    assert!(!status.success(), "grpcurl -plaintext must fail: {err}");
}

#[tokio::test]
async fn with_mutual_tls_a_client_needs_a_certificate_the_ca_signed() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(&dir.path().join("pki"));
    let ca = pki.ca.to_str().unwrap();
    let (_broker, namesrv) = tls_broker(
        &dir.path().join("store"),
        &pki,
        &[("MQ_BROKER_TLS_CLIENT_CA_FILE", ca)],
    );

    let (ok, _, err) = mqadmin(&namesrv, &["--tls-ca-file", ca], &["topic", "list"]);
    assert!(!ok, "no client certificate must fail");
    assert_eq!(err.lines().count(), 1, "{err}");

    let (ok, _, err) = mqadmin(
        &namesrv,
        &[
            "--tls-ca-file",
            ca,
            "--tls-cert-file",
            pki.client_cert.to_str().unwrap(),
            "--tls-key-file",
            pki.client_key.to_str().unwrap(),
        ],
        &["topic", "list"],
    );
    assert!(ok, "{err}");

    // A certificate from another CA is no better than none.
    let stranger = Authority::new("stranger");
    let (cert, key) = stranger.issue("intruder", &["client.local"]);
    let (cert_path, key_path) = (
        dir.path().join("intruder.pem"),
        dir.path().join("intruder.key"),
    );
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    let (ok, _, _) = mqadmin(
        &namesrv,
        &[
            "--tls-ca-file",
            ca,
            "--tls-cert-file",
            cert_path.to_str().unwrap(),
            "--tls-key-file",
            key_path.to_str().unwrap(),
        ],
        &["topic", "list"],
    );
    assert!(!ok, "a certificate of another CA must fail");
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(&dir.path().join("pki"));
    let (broker, namesrv) = tls_broker(
        &dir.path().join("store"),
        &pki,
        &[("MQ_BROKER_TLS_RELOAD_INTERVAL", "200ms")],
    );
    let old_ca = pki.ca.to_str().unwrap();
    let (ok, _, err) = mqadmin(&namesrv, &["--tls-ca-file", old_ca], &["topic", "list"]);
    assert!(ok, "{err}");

    // Renewal by another CA: replace the files in place.
    let renewed = Authority::new("renewal CA");
    let (cert, key) = renewed.issue("mq server", &["localhost", "127.0.0.1"]);
    let new_ca = dir.path().join("renewal-ca.pem");
    std::fs::write(&new_ca, renewed.pem()).unwrap();
    std::fs::write(&pki.server_key, key).unwrap();
    std::fs::write(&pki.server_cert, cert).unwrap();
    // Both ports of the process (broker, embedded nameserver) serve the
    // renewed certificate within a few reload intervals.
    let broker_addr = broker.logged_addr("broker listening").unwrap().to_string();
    let new_ca_path = new_ca.to_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (names_ok, _, names_err) = mqadmin(
            &namesrv,
            &["--tls-ca-file", new_ca_path],
            &["topic", "list"],
        );
        let (status, _, broker_err) =
            run_to_end(MQHEALTH, &[&broker_addr, "--tls-ca-file", new_ca_path], &[]);
        if names_ok && status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not reloaded: nameserver {names_err}; broker {broker_err}; {:#?}",
            broker.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (ok, _, _) = mqadmin(&namesrv, &["--tls-ca-file", old_ca], &["topic", "list"]);
    assert!(!ok, "the old CA no longer verifies the server");

    // A broken file is logged and the current certificate kept.
    std::fs::write(&pki.server_cert, "not a certificate").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !broker
        .logs()
        .iter()
        .any(|l| l.contains("cannot reload the TLS certificate"))
    {
        assert!(Instant::now() < deadline, "the broken file was not noticed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (ok, _, err) = mqadmin(
        &namesrv,
        &["--tls-ca-file", new_ca.to_str().unwrap()],
        &["topic", "list"],
    );
    assert!(ok, "still serving the renewed certificate: {err}");
}

#[test]
fn unusable_certificate_settings_stop_the_server_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(&dir.path().join("pki"));
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "nothing").unwrap();
    let broker = mq_test_support::workspace_binary("broker");
    let store = dir.path().join("store");
    for (env, says) in [
        (
            vec![("MQ_BROKER_TLS_CERT_FILE", pki.server_cert.to_str().unwrap())],
            "tls_key_file is required",
        ),
        (
            vec![
                ("MQ_BROKER_TLS_CERT_FILE", junk.to_str().unwrap()),
                ("MQ_BROKER_TLS_KEY_FILE", pki.server_key.to_str().unwrap()),
            ],
            "junk.pem",
        ),
        (
            vec![
                ("MQ_BROKER_TLS_CERT_FILE", pki.server_cert.to_str().unwrap()),
                ("MQ_BROKER_TLS_KEY_FILE", pki.client_key.to_str().unwrap()),
            ],
            "does not belong to the certificate",
        ),
    ] {
        let (status, _, err) = run_to_end(
            &broker,
            &[
                "--standalone",
                "--store-dir",
                store.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
                "--namesrv-listen",
                "127.0.0.1:0",
            ],
            &env,
        );
        assert!(!status.success(), "{env:?} must not start");
        assert!(err.contains(says), "expected {says:?} in {err}");
    }
}

/// GET `path` over HTTPS, trusting `ca`: the response, head and body.
async fn https_get(addr: std::net::SocketAddr, ca: &Path, path: &str) -> Result<String, String> {
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
    use tokio_rustls::rustls::{ClientConfig, RootCertStore};
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    // The server may close without close_notify: what arrived is the answer.
    let _ = tls.read_to_end(&mut response).await;
    Ok(String::from_utf8_lossy(&response).into_owned())
}

#[tokio::test]
async fn the_metrics_endpoint_serves_tls_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(&dir.path().join("pki"));
    let (broker, _) = tls_broker(
        &dir.path().join("store"),
        &pki,
        &[("MQ_BROKER_TLS_METRICS", "true")],
    );
    let metrics = broker.logged_addr("metrics endpoint ready").unwrap();
    let response = https_get(metrics, &pki.ca, "/metrics").await.unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200") && response.contains("mq_"),
        "{response}"
    );
    // Plain HTTP gets no answer from a TLS endpoint.
    use std::io::{Read, Write};
    let mut plain = std::net::TcpStream::connect(metrics).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = plain.write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(
        !String::from_utf8_lossy(&answer).contains("200 OK"),
        "plain HTTP was served"
    );
    // Without the setting, metrics stay plain HTTP beside a TLS gRPC port.
    let (broker, _) = tls_broker(&dir.path().join("store2"), &pki, &[]);
    let metrics = broker.logged_addr("metrics endpoint ready").unwrap();
    let (status, body) = mq_test_support::http_get(metrics, "/metrics");
    assert!(status.contains("200") && body.contains("mq_"), "{status}");
}
