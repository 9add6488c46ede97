//! The request signature of RocketMQ 5's clients, which ours use too:
//!
//! ```text
//! x-mq-date-time: 20231227T194619Z
//! authorization: MQv2-HMAC-SHA1 Credential=<access key>, SignedHeaders=x-mq-date-time, Signature=<hex>
//! ```
//!
//! where the signature is HMAC-SHA1(secret key, date-time) in hex. Some
//! official clients write `Credential=<access key>//Rocketmq` and upper-case
//! hex; both are accepted. Servers take a signature only while its
//! date-time is within their clock-skew window.

use std::time::{Duration, SystemTime};

use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::credentials::Credentials;

/// The metadata key of the signature.
pub const AUTHORIZATION: &str = "authorization";
/// The metadata key of the signed date-time.
pub const DATE_TIME: &str = "x-mq-date-time";
/// The signature algorithm's name.
pub const ALGORITHM: &str = "MQv2-HMAC-SHA1";

/// Why a signature was not accepted: the text a refused client reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error(
        "the request is not signed (no authorization header): give credentials (an access key and a secret key)"
    )]
    Missing,
    #[error("the authorization header is malformed: {0}")]
    Malformed(String),
    #[error(
        "the {DATE_TIME} header is missing or malformed (want yyyyMMddTHHmmssZ in UTC, or RFC 3339)"
    )]
    BadDateTime,
    #[error(
        "the request was signed at {signed}, {skew} away from the server's clock; at most {max} is accepted (check the client's clock, or a replayed request)"
    )]
    Expired {
        signed: String,
        skew: String,
        max: String,
    },
    #[error("user {0:?} does not exist")]
    UnknownUser(String),
    #[error("the signature does not match for user {0:?} (wrong secret key)")]
    WrongSignature(String),
}

/// `t` as the signature's date-time: `yyyyMMddTHHmmssZ`, UTC.
pub fn format_date_time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .replace(['-', ':'], "")
}

/// The instant a signature's date-time names: `yyyyMMddTHHmmssZ` (the
/// Java, Go and C++ clients) or RFC 3339 with any offset (the Rust
/// client signs its local time so).
pub fn parse_date_time(value: &str) -> Result<SystemTime, SignatureError> {
    let b = value.as_bytes();
    let shaped = b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit);
    if !shaped {
        return time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
            .map(SystemTime::from)
            .map_err(|_| SignatureError::BadDateTime);
    }
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &value[0..4],
        &value[4..6],
        &value[6..8],
        &value[9..11],
        &value[11..13],
        &value[13..15]
    );
    humantime::parse_rfc3339(&rfc3339).map_err(|_| SignatureError::BadDateTime)
}

/// HMAC-SHA1(`secret`, `date_time`), lower-case hex.
pub fn sign(secret: &str, date_time: &str) -> String {
    hex::encode(mac(secret, date_time).finalize().into_bytes())
}

fn mac(secret: &str, date_time: &str) -> Hmac<Sha1> {
    // HMAC takes keys of any length.
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(date_time.as_bytes());
    mac
}

/// The two headers that sign a request made at `now` with `credentials`.
pub fn headers(credentials: &Credentials, now: SystemTime) -> (String, String) {
    let date_time = format_date_time(now);
    let signature = sign(credentials.secret_key.expose(), &date_time);
    (
        format!(
            "{ALGORITHM} Credential={}, SignedHeaders={DATE_TIME}, Signature={signature}",
            credentials.access_key
        ),
        date_time,
    )
}

/// What an authorization header claims: who, and the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub access_key: String,
    signature: Vec<u8>,
}

/// Parses an authorization header.
pub fn parse_authorization(header: &str) -> Result<Claim, SignatureError> {
    let malformed = |what: &str| SignatureError::Malformed(what.to_owned());
    let rest = header
        .strip_prefix(ALGORITHM)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or_else(|| malformed("it must start with \"MQv2-HMAC-SHA1 \""))?;
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or_else(|| malformed("its parts must be Key=Value"))?;
        match key {
            "Credential" => credential = Some(value),
            "SignedHeaders" => signed_headers = Some(value),
            "Signature" => signature = Some(value),
            _ => {}
        }
    }
    let credential = credential.ok_or_else(|| malformed("Credential is missing"))?;
    // "ak//Rocketmq" (Go, C++, C#) names the same user as "ak".
    let access_key = credential.split('/').next().unwrap_or_default();
    if access_key.is_empty() {
        return Err(malformed("Credential names no access key"));
    }
    if signed_headers.is_some_and(|h| !h.eq_ignore_ascii_case(DATE_TIME)) {
        return Err(malformed("SignedHeaders must be x-mq-date-time"));
    }
    let signature = hex::decode(signature.ok_or_else(|| malformed("Signature is missing"))?)
        .map_err(|_| malformed("Signature is not hexadecimal"))?;
    Ok(Claim {
        access_key: access_key.to_owned(),
        signature,
    })
}

impl Claim {
    /// Whether the claim's signature is HMAC-SHA1(`secret`, `date_time`),
    /// compared in constant time.
    pub fn signed_with(&self, secret: &str, date_time: &str) -> bool {
        mac(secret, date_time).verify_slice(&self.signature).is_ok()
    }
}

/// Refuses a date-time more than `max_skew` away from `now` either way.
pub fn check_fresh(
    date_time: &str,
    now: SystemTime,
    max_skew: Duration,
) -> Result<(), SignatureError> {
    let signed = parse_date_time(date_time)?;
    let skew = match now.duration_since(signed) {
        Ok(behind) => behind,
        Err(ahead) => ahead.duration(),
    };
    if skew > max_skew {
        return Err(SignatureError::Expired {
            signed: date_time.to_owned(),
            skew: humantime::format_duration(skew).to_string(),
            max: humantime::format_duration(max_skew).to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(unix: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(unix)
    }

    #[test]
    fn date_times_round_trip_in_the_clients_format() {
        // 2023-12-27T19:46:19Z
        let t = at(1_703_706_379);
        assert_eq!(format_date_time(t), "20231227T194619Z");
        assert_eq!(parse_date_time("20231227T194619Z"), Ok(t));
        // RFC 3339, as the Rust client signs, in any offset.
        assert_eq!(parse_date_time("2023-12-27T19:46:19Z"), Ok(t));
        assert_eq!(
            parse_date_time("2023-12-27T20:46:19.5+01:00"),
            Ok(t + Duration::from_millis(500))
        );
        for bad in [
            "",
            "2023-12-27 19:46:19",
            "20231227T194619",
            "2023122XT194619Z",
            "20231399T194619Z",
        ] {
            assert_eq!(
                parse_date_time(bad),
                Err(SignatureError::BadDateTime),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_signature_is_hmac_sha1_of_the_date_time_in_hex() {
        // RFC 2202 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            sign("Jefe", "what do ya want for nothing?"),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }

    #[test]
    fn signed_headers_parse_and_verify_only_with_the_right_secret() {
        let credentials = Credentials::new("alice", "alice-secret");
        let (authorization, date_time) = headers(&credentials, at(1_703_706_379));
        assert_eq!(date_time, "20231227T194619Z");
        let claim = parse_authorization(&authorization).unwrap();
        assert_eq!(claim.access_key, "alice");
        assert!(claim.signed_with("alice-secret", &date_time));
        assert!(!claim.signed_with("other-secret", &date_time));
        assert!(!claim.signed_with("alice-secret", "20231227T194620Z"));
    }

    #[test]
    fn the_official_clients_variants_are_accepted() {
        let signature = sign("pw", "20231227T194619Z").to_uppercase();
        let header = format!(
            "MQv2-HMAC-SHA1 Credential=bob//Rocketmq, SignedHeaders=x-mq-date-time, Signature={signature}"
        );
        let claim = parse_authorization(&header).unwrap();
        assert_eq!(claim.access_key, "bob");
        assert!(claim.signed_with("pw", "20231227T194619Z"));
    }

    #[test]
    fn malformed_headers_say_what_is_wrong() {
        for (header, says) in [
            ("Basic abc", "must start with"),
            ("MQv2-HMAC-SHA1 Credential", "Key=Value"),
            (
                "MQv2-HMAC-SHA1 SignedHeaders=x-mq-date-time, Signature=00",
                "Credential is missing",
            ),
            (
                "MQv2-HMAC-SHA1 Credential=a, Signature=zz",
                "not hexadecimal",
            ),
            (
                "MQv2-HMAC-SHA1 Credential=a, SignedHeaders=host, Signature=00",
                "SignedHeaders",
            ),
            ("MQv2-HMAC-SHA1 Credential=a", "Signature is missing"),
            (
                "MQv2-HMAC-SHA1 Credential=//x, Signature=00",
                "no access key",
            ),
        ] {
            let err = parse_authorization(header).unwrap_err().to_string();
            assert!(err.contains(says), "{header}: {err}");
        }
    }

    #[test]
    fn only_date_times_within_the_skew_are_fresh() {
        let now = at(1_703_706_379);
        let max = Duration::from_secs(60);
        assert_eq!(check_fresh("20231227T194619Z", now, max), Ok(()));
        assert_eq!(check_fresh("20231227T194719Z", now, max), Ok(()));
        assert_eq!(check_fresh("20231227T194519Z", now, max), Ok(()));
        let late = check_fresh("20231227T194518Z", now, max).unwrap_err();
        assert!(late.to_string().contains("1m 1s away"), "{late}");
        assert!(matches!(
            check_fresh("20231227T194720Z", now, max),
            Err(SignatureError::Expired { .. })
        ));
    }
}
