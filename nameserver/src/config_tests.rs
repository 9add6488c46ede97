use std::io::Write;

use super::*;

/// No environment but `insecure` on: these tests are about other settings
/// than the exposure rule (which has its own test).
fn no_env() -> Vec<(String, String)> {
    env(&[])
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    std::iter::once(&("MQ_NAMESRV_INSECURE", "true"))
        .chain(pairs)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn listening_beyond_loopback_needs_auth_or_insecure() {
    let err = NameServerConfig::load(&Args::default(), Vec::new())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("listen=0.0.0.0:9876") && err.contains("--insecure"),
        "{err}"
    );
    let loopback = Args {
        listen: Some("127.0.0.1:9876".parse().unwrap()),
        ..Args::default()
    };
    assert_eq!(
        NameServerConfig::load(&loopback, Vec::new())
            .unwrap()
            .exposure()
            .unwrap(),
        None
    );
    let insecure = Args {
        insecure: true,
        ..Args::default()
    };
    let warning = NameServerConfig::load(&insecure, Vec::new())
        .unwrap()
        .exposure()
        .unwrap();
    assert!(warning.unwrap().starts_with("INSECURE"));
}

fn toml_file(content: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    file.write_all(content.as_bytes()).unwrap();
    file
}

fn args_with_file(file: &tempfile::NamedTempFile) -> Args {
    Args {
        config: Some(file.path().to_owned()),
        ..Args::default()
    }
}

#[test]
fn defaults_apply_when_nothing_is_set() {
    let config = NameServerConfig::load(&Args::default(), no_env()).unwrap();
    assert_eq!(config.listen.to_string(), "0.0.0.0:9876");
    assert_eq!(config.broker_expire, Duration::from_secs(120));
    assert_eq!(config.scan_interval, Duration::from_secs(5));
    assert_eq!(config.log_level, "info");
    assert_eq!(config.log_format, LogFormat::Text);
}

#[test]
fn file_beats_defaults_env_beats_file_flags_beat_env() {
    let file = toml_file(
        "listen = \"127.0.0.1:1000\"\nbroker_expire = \"30s\"\nscan_interval = \"2s\"\nlog_format = \"json\"\n",
    );
    let from_file = NameServerConfig::load(&args_with_file(&file), no_env()).unwrap();
    assert_eq!(from_file.listen.to_string(), "127.0.0.1:1000");
    assert_eq!(from_file.broker_expire, Duration::from_secs(30));
    assert_eq!(from_file.log_format, LogFormat::Json);

    let environment = env(&[
        ("MQ_NAMESRV_LISTEN", "127.0.0.1:2000"),
        ("MQ_NAMESRV_BROKER_EXPIRE", "1m"),
    ]);
    let from_env = NameServerConfig::load(&args_with_file(&file), environment.clone()).unwrap();
    assert_eq!(from_env.listen.to_string(), "127.0.0.1:2000");
    assert_eq!(from_env.broker_expire, Duration::from_secs(60));
    assert_eq!(
        from_env.scan_interval,
        Duration::from_secs(2),
        "file value kept where env is silent"
    );

    let mut args = args_with_file(&file);
    args.listen = Some("127.0.0.1:3000".parse().unwrap());
    let from_flags = NameServerConfig::load(&args, environment).unwrap();
    assert_eq!(from_flags.listen.to_string(), "127.0.0.1:3000");
    assert_eq!(
        from_flags.broker_expire,
        Duration::from_secs(60),
        "env kept where flags are silent"
    );
}

#[test]
fn flags_parse_durations_and_formats() {
    let args = Args::try_parse_from([
        "nameserver",
        "--broker-expire",
        "90s",
        "--log-format",
        "json",
    ])
    .unwrap();
    let config = NameServerConfig::load(&args, no_env()).unwrap();
    assert_eq!(config.broker_expire, Duration::from_secs(90));
    assert_eq!(config.log_format, LogFormat::Json);
    assert!(Args::try_parse_from(["nameserver", "--listen", "nowhere"]).is_err());
    assert!(Args::try_parse_from(["nameserver", "--log-format", "xml"]).is_err());
}

#[test]
fn bad_values_name_their_key() {
    let err = NameServerConfig::load(
        &Args::default(),
        env(&[("MQ_NAMESRV_LISTEN", "not-an-address")]),
    )
    .unwrap_err();
    assert!(err.to_string().contains("listen"), "{err}");

    let err = NameServerConfig::load(
        &Args::default(),
        env(&[("MQ_NAMESRV_BROKER_EXPIRE", "soon")]),
    )
    .unwrap_err();
    assert!(err.to_string().contains("broker_expire"), "{err}");

    let err = NameServerConfig::load(&Args::default(), env(&[("MQ_NAMESRV_SCAN_INTERVAL", "0s")]))
        .unwrap_err();
    assert!(err.to_string().contains("scan_interval"), "{err}");
}

#[test]
fn unknown_keys_and_missing_files_are_refused() {
    let file = toml_file("brokr_expire = \"30s\"\n");
    let err = NameServerConfig::load(&args_with_file(&file), no_env()).unwrap_err();
    assert!(err.to_string().contains("brokr_expire"), "{err}");

    let args = Args {
        config: Some("/nonexistent/namesrv.toml".into()),
        ..Args::default()
    };
    let err = NameServerConfig::load(&args, no_env()).unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/namesrv.toml"),
        "{err}"
    );

    let file = toml_file("listen = [\n");
    assert!(NameServerConfig::load(&args_with_file(&file), no_env()).is_err());
}

#[test]
fn foreign_environment_variables_are_ignored() {
    let config = NameServerConfig::load(
        &Args::default(),
        env(&[("PATH", "/bin"), ("MQ_BROKER_LISTEN", "x")]),
    )
    .unwrap();
    assert_eq!(config.listen.to_string(), "0.0.0.0:9876");
}

#[test]
fn an_embedded_controller_is_configured_by_controller_keys_or_not_at_all() {
    let none = NameServerConfig::load(&Args::default(), no_env()).unwrap();
    assert!(none.controller().unwrap().is_none());

    let peers = "1=127.0.0.1:9878;2=127.0.0.1:9879;3=127.0.0.1:9880";
    let with = NameServerConfig::load(
        &Args {
            controller_peers: Some(peers.into()),
            ..Args::default()
        },
        env(&[
            ("MQ_NAMESRV_CONTROLLER_ID", "2"),
            ("MQ_NAMESRV_CONTROLLER_BROKER_TIMEOUT", "5s"),
        ]),
    )
    .unwrap();
    let controller = with.controller().unwrap().unwrap();
    assert_eq!(controller.id, 2);
    assert_eq!(controller.broker_timeout, Duration::from_secs(5));
    assert_eq!(controller.listen.to_string(), "0.0.0.0:9878");

    for (args, says) in [
        (
            Args {
                controller_id: Some(1),
                ..Args::default()
            },
            "controller_peers",
        ),
        (
            Args {
                controller_peers: Some(peers.into()),
                ..Args::default()
            },
            "controller_id",
        ),
        (
            Args {
                controller_peers: Some(peers.into()),
                controller_id: Some(7),
                ..Args::default()
            },
            "does not list this controller's id 7",
        ),
    ] {
        let err = NameServerConfig::load(&args, no_env())
            .unwrap_err()
            .to_string();
        assert!(err.contains(says), "{err}");
    }
}
