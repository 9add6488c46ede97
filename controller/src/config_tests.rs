use std::io::Write;

use super::*;

const PEERS: &str = "1=127.0.0.1:9878;2=127.0.0.1:9879;3=127.0.0.1:9880";

/// `pairs` as the environment, with `insecure` on: these tests are about
/// other settings than the exposure rule (which has its own test).
fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    std::iter::once(&("MQ_CONTROLLER_INSECURE", "true"))
        .chain(pairs)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn listening_beyond_loopback_needs_auth_or_insecure() {
    let err = ControllerConfig::load(&minimal(), Vec::new())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("listen=0.0.0.0:9878") && err.contains("--insecure"),
        "{err}"
    );
    let loopback = Args {
        listen: Some("127.0.0.1:9878".parse().unwrap()),
        ..minimal()
    };
    let config = ControllerConfig::load(&loopback, Vec::new()).unwrap();
    assert_eq!(config.exposure().unwrap(), None);
}

fn minimal() -> Args {
    Args {
        id: Some(2),
        peers: Some(PEERS.into()),
        ..Args::default()
    }
}

#[test]
fn defaults_apply_around_the_required_id_and_peers() {
    let config = ControllerConfig::load(&minimal(), env(&[])).unwrap();
    assert_eq!(config.listen.to_string(), "0.0.0.0:9878");
    assert_eq!(config.metrics_listen.to_string(), "0.0.0.0:5559");
    assert_eq!(config.broker_timeout, Duration::from_secs(3));
    assert_eq!(config.raft_election_timeout, Duration::from_secs(1));
    assert!(!config.allow_unclean_election);
    assert_eq!(config.peer_map().unwrap()[&3], "127.0.0.1:9880");
    let raft = config.raft_config();
    assert_eq!(
        (
            raft.heartbeat_interval,
            raft.election_timeout_min,
            raft.election_timeout_max
        ),
        (200, 1000, 2000)
    );
}

#[test]
fn file_beats_defaults_env_beats_file_flags_beat_env() {
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    writeln!(
        file,
        "id = 1\npeers = \"{PEERS}\"\nbroker_timeout = \"5s\"\ndata_dir = \"/from/file\""
    )
    .unwrap();
    let args = Args {
        config: Some(file.path().to_owned()),
        ..Args::default()
    };
    let from_file = ControllerConfig::load(&args, env(&[])).unwrap();
    assert_eq!(from_file.id, 1);
    assert_eq!(from_file.broker_timeout, Duration::from_secs(5));
    let environment = env(&[
        ("MQ_CONTROLLER_BROKER_TIMEOUT", "4s"),
        ("MQ_CONTROLLER_ID", "3"),
    ]);
    let from_env = ControllerConfig::load(&args, environment.clone()).unwrap();
    assert_eq!(
        (from_env.id, from_env.broker_timeout),
        (3, Duration::from_secs(4))
    );
    assert_eq!(from_env.data_dir, PathBuf::from("/from/file"));
    let flags = Args {
        id: Some(2),
        broker_timeout: Some("2s".parse().unwrap()),
        allow_unclean_election: true,
        ..args
    };
    let from_flags = ControllerConfig::load(&flags, environment).unwrap();
    assert_eq!(
        (from_flags.id, from_flags.broker_timeout),
        (2, Duration::from_secs(2))
    );
    assert!(from_flags.allow_unclean_election);
}

#[test]
fn bad_settings_name_what_is_wrong() {
    let refused = |args: Args| {
        ControllerConfig::load(&args, env(&[]))
            .unwrap_err()
            .to_string()
    };
    let message = refused(Args {
        peers: Some(PEERS.into()),
        ..Args::default()
    });
    assert!(message.contains("id"), "{message}");
    let message = refused(Args {
        id: Some(1),
        ..Args::default()
    });
    assert!(message.contains("peers"), "{message}");
    for (peers, says) in [
        ("1=127.0.0.1:9878;2", "is not id=host:port"),
        ("1=127.0.0.1:9878;x=127.0.0.1:1", "is not an id"),
        ("1=127.0.0.1:9878;1=127.0.0.1:9879", "appears twice"),
        ("1=nowhere", "host:port"),
        (
            "2=127.0.0.1:9879;3=127.0.0.1:9880",
            "does not list this controller's id 1",
        ),
    ] {
        let message = refused(Args {
            id: Some(1),
            peers: Some(peers.into()),
            ..Args::default()
        });
        assert!(
            message.contains("peers") && message.contains(says),
            "{peers}: {message}"
        );
    }
    let message = refused(Args {
        id: Some(0),
        peers: Some("0=127.0.0.1:1".into()),
        ..Args::default()
    });
    assert!(message.contains("id must be 1 or above"), "{message}");
    let message = refused(Args {
        broker_timeout: Some("10ms".parse().unwrap()),
        ..minimal()
    });
    assert!(message.contains("broker_timeout"), "{message}");
}
