use std::io::Write;

use super::*;

/// `pairs` as the environment, with `insecure` on: these tests are about
/// other settings than the exposure rule (which has its own test).
fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    std::iter::once(&("MQ_BROKER_INSECURE", "true"))
        .chain(pairs)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn standalone_listens_on_loopback_and_exposed_ports_need_auth_or_insecure() {
    let bare = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let standalone = BrokerConfig::load(&args(&["--standalone"]), bare(&[])).unwrap();
    assert_eq!(standalone.listen.to_string(), "127.0.0.1:10911");
    assert_eq!(standalone.namesrv_listen.to_string(), "127.0.0.1:9876");
    assert_eq!(standalone.metrics_listen.to_string(), "127.0.0.1:5557");
    assert_eq!(standalone.exposure().unwrap(), None);
    // Told otherwise, it listens where told, and then needs a decision.
    let exposed = ["--standalone", "--listen", "0.0.0.0:10911"];
    let err = BrokerConfig::load(&args(&exposed), bare(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("listen=0.0.0.0:10911") && err.contains("--insecure"),
        "{err}"
    );
    let insecure =
        BrokerConfig::load(&args(&[&exposed[..], &["--insecure"]].concat()), bare(&[])).unwrap();
    assert!(
        insecure
            .exposure()
            .unwrap()
            .unwrap()
            .starts_with("INSECURE")
    );
    let with_auth = BrokerConfig::load(
        &args(&[&exposed[..], &["--auth", "--auth-access-key", "admin"]].concat()),
        bare(&[("MQ_BROKER_AUTH_SECRET_KEY", "pw")]),
    )
    .unwrap();
    assert_eq!(with_auth.exposure().unwrap(), None);
    // A cluster broker listens everywhere by default: auth or --insecure.
    let err = BrokerConfig::load(&args(&["--namesrv", "ns:9876"]), bare(&[])).unwrap_err();
    assert!(err.to_string().contains("listen=0.0.0.0:10911"), "{err}");
}

#[test]
fn the_proxy_listens_beside_the_broker_unless_told_and_counts_as_exposed() {
    let bare = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let standalone = BrokerConfig::load(&args(&["--standalone"]), bare(&[])).unwrap();
    assert_eq!(standalone.proxy_listen().to_string(), "127.0.0.1:8081");
    let local = ["--namesrv", "ns:9876", "--listen", "127.0.0.1:10911"];
    let config = BrokerConfig::load(&args(&local), bare(&[])).unwrap();
    assert_eq!(config.proxy_listen().to_string(), "127.0.0.1:8081");
    let moved = BrokerConfig::load(
        &args(&local),
        bare(&[("MQ_BROKER_PROXY_LISTEN", "127.0.0.1:18081")]),
    )
    .unwrap();
    assert_eq!(moved.proxy_listen().to_string(), "127.0.0.1:18081");
    // A proxy beyond loopback is an exposed port like any other.
    let exposed = [&local[..], &["--proxy-listen", "0.0.0.0:8081"]].concat();
    let err = BrokerConfig::load(&args(&exposed), bare(&[])).unwrap_err();
    assert!(
        err.to_string().contains("proxy_listen=0.0.0.0:8081"),
        "{err}"
    );
}

fn args(argv: &[&str]) -> Args {
    Args::try_parse_from(std::iter::once("broker").chain(argv.iter().copied())).unwrap()
}

#[test]
fn defaults_need_a_nameserver_unless_standalone() {
    let err = BrokerConfig::load(&Args::default(), env(&[])).unwrap_err();
    assert!(err.to_string().contains("namesrv"), "{err}");

    let standalone = BrokerConfig::load(&args(&["--standalone"]), env(&[])).unwrap();
    assert!(
        standalone.auto_create_topic(),
        "auto-create is on when standalone"
    );
    assert_eq!(standalone.listen.to_string(), "127.0.0.1:10911");
    assert_eq!(standalone.advertised(), "127.0.0.1:10911");
    assert_eq!(standalone.store.flush, FlushMode::Async);

    let normal = BrokerConfig::load(&args(&["--namesrv", "a:9876;b:9876"]), env(&[])).unwrap();
    assert!(!normal.auto_create_topic(), "auto-create is off otherwise");
    assert_eq!(normal.register_interval, Duration::from_secs(30));
}

#[test]
fn store_settings_come_from_file_env_and_flags_in_that_order() {
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    writeln!(
        file,
        "namesrv = \"ns:9876\"\nbroker_name = \"from-file\"\n[store]\nflush = \"sync\"\nmax_message_size = 1000\ncommitlog_segment_size = 1048576"
    )
    .unwrap();
    let path = file.path().to_str().unwrap().to_owned();
    let from_file = BrokerConfig::load(&args(&["--config", &path]), env(&[])).unwrap();
    assert_eq!(from_file.store.flush, FlushMode::Sync);
    assert_eq!(from_file.store.max_message_size, 1000);
    assert_eq!(from_file.broker_name, "from-file");

    let environment = env(&[
        ("MQ_BROKER_STORE__MAX_MESSAGE_SIZE", "2000"),
        ("MQ_BROKER_BROKER_NAME", "from-env"),
    ]);
    let from_env = BrokerConfig::load(&args(&["--config", &path]), environment.clone()).unwrap();
    assert_eq!(from_env.store.max_message_size, 2000);
    assert_eq!(from_env.broker_name, "from-env");

    let flags = args(&[
        "--config",
        &path,
        "--store-set",
        "max_message_size=3000",
        "--flush",
        "async",
        "--broker-name",
        "from-flag",
    ]);
    let from_flags = BrokerConfig::load(&flags, environment).unwrap();
    assert_eq!(from_flags.store.max_message_size, 3000);
    assert_eq!(from_flags.store.flush, FlushMode::Async);
    assert_eq!(from_flags.broker_name, "from-flag");
    assert_eq!(
        from_flags.store.commitlog_segment_size,
        1 << 20,
        "file value kept"
    );
}

#[test]
fn bad_settings_name_their_key() {
    let cases: [(&[&str], &str); 6] = [
        (
            &["--standalone", "--store-set", "no_such_setting=1"],
            "no_such_setting",
        ),
        (&["--standalone", "--store-set", "oops"], "--store-set"),
        (&["--standalone", "--flush", "sometimes"], "sometimes"),
        (&["--namesrv", "nohost"], "namesrv"),
        (
            &["--standalone", "--broker-name", "bad name"],
            "broker_name",
        ),
        (
            &["--standalone", "--advertise-addr", "host-without-port"],
            "advertise_addr",
        ),
    ];
    for (argv, needle) in cases {
        let err = BrokerConfig::load(&args(argv), env(&[])).unwrap_err();
        assert!(err.to_string().contains(needle), "{argv:?}: {err}");
    }
    let err = BrokerConfig::load(
        &args(&["--standalone"]),
        env(&[("MQ_BROKER_STORE__MLOCK", "perhaps")]),
    )
    .unwrap_err();
    assert!(err.to_string().contains("mlock"), "{err}");
}

#[test]
fn bad_delay_settings_name_their_key() {
    let standalone = args(&["--standalone"]);
    let cases = [
        (("MQ_BROKER_DELAY_LEVELS", "1s soon"), "\"soon\""),
        (("MQ_BROKER_DELAY_LEVELS", ""), "delay_levels"),
        (("MQ_BROKER_DELAY_LEVELS", "1s 4d"), "retention"),
        (("MQ_BROKER_RETRY_FIRST_LEVEL", "0"), "retry_first_level"),
        (("MQ_BROKER_RETRY_FIRST_LEVEL", "19"), "1 to 18"),
    ];
    for (pair, needle) in cases {
        let err = BrokerConfig::load(&standalone, env(&[pair])).unwrap_err();
        assert!(err.to_string().contains(needle), "{pair:?}: {err}");
    }
    let fine = BrokerConfig::load(
        &standalone,
        env(&[
            ("MQ_BROKER_DELAY_LEVELS", "100ms 1s"),
            ("MQ_BROKER_RETRY_FIRST_LEVEL", "2"),
        ]),
    )
    .unwrap();
    assert_eq!(fine.delay_table().unwrap().level_count(), 2);
}

#[test]
fn controller_mode_takes_member_ids_and_refuses_a_configured_master() {
    let base = [
        "--namesrv",
        "ns:9876",
        "--controller-addr",
        "c1:9878;c2:9878",
    ];
    let ok = |extra: &[&str], environment: &[(&str, &str)]| {
        let argv: Vec<&str> = base.iter().chain(extra).copied().collect();
        BrokerConfig::load(&args(&argv), env(environment))
    };
    let config = ok(
        &["--broker-id", "2", "--replication", "sync"],
        &[
            ("MQ_BROKER_MIN_IN_SYNC_REPLICAS", "0"),
            ("MQ_BROKER_REPLICATION_ADDR", "broker-a-2:10911"),
        ],
    )
    .unwrap();
    assert_eq!(config.controller_addr.as_deref(), Some("c1:9878;c2:9878"));
    assert_eq!(
        config.controller_heartbeat_interval,
        Duration::from_millis(500)
    );
    assert_eq!(
        config.min_in_sync_replicas, 0,
        "0 is allowed in controller mode"
    );

    for (extra, environment, says) in [
        (
            &["--broker-id", "0"][..],
            &[][..],
            "broker_id must be 1 or above",
        ),
        (
            &["--broker-id", "1", "--master-addr", "m:10911"][..],
            &[][..],
            "master_addr is not set in controller mode",
        ),
        (
            &["--broker-id", "1"][..],
            &[("MQ_BROKER_REPLICATION_ADDR", "nowhere")][..],
            "replication_addr",
        ),
    ] {
        let err = ok(extra, environment).unwrap_err().to_string();
        assert!(err.contains(says), "{extra:?}: {err}");
    }
    let err = BrokerConfig::load(
        &args(&[
            "--namesrv",
            "ns:9876",
            "--controller-addr",
            " ; ",
            "--broker-id",
            "1",
        ]),
        env(&[]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("controller_addr") && err.contains("names no controller"),
        "{err}"
    );
    // Outside controller mode, sync replication still needs a replica.
    let err = BrokerConfig::load(
        &args(&["--namesrv", "ns:9876", "--replication", "sync"]),
        env(&[("MQ_BROKER_MIN_IN_SYNC_REPLICAS", "0")]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("min_in_sync_replicas"), "{err}");
}
