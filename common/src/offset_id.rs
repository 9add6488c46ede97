//! Offset message ids, as RocketMQ makes them: the store host and the
//! CommitLog offset of a message, in hex. Whoever holds one can ask that
//! broker for the message without any index.
//!
//! Layout before hex encoding (uppercase): IPv4 address (4 bytes), port
//! (4 bytes, big-endian), offset (8 bytes, big-endian): 32 characters. For
//! IPv6 the address takes 16 bytes: 56 characters.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::validate::FieldError;

/// The offset message id of the record at `offset` stored by `host`.
pub fn encode(host: SocketAddr, offset: u64) -> String {
    let mut bytes = Vec::with_capacity(28);
    match host.ip() {
        IpAddr::V4(ip) => bytes.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => bytes.extend_from_slice(&ip.octets()),
    }
    bytes.extend_from_slice(&u32::from(host.port()).to_be_bytes());
    bytes.extend_from_slice(&offset.to_be_bytes());
    // Sent back with every acknowledgement: a table beats `format!`.
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut hex = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        hex.push(char::from(DIGITS[usize::from(b >> 4)]));
        hex.push(char::from(DIGITS[usize::from(b & 0xF)]));
    }
    hex
}

/// The store host and CommitLog offset in an offset message id.
pub fn decode(field: &str, id: &str) -> Result<(SocketAddr, u64), FieldError> {
    let bad =
        |why: &str| FieldError::new(field, format!("{id:?} is not an offset message id: {why}"));
    if !id.is_ascii() || !id.len().is_multiple_of(2) {
        return Err(bad("expected an even number of hex digits"));
    }
    let bytes = (0..id.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&id[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| bad("not hex"))?;
    let ip_len = match bytes.len() {
        16 => 4,
        28 => 16,
        _ => return Err(bad("expected 32 or 56 hex digits")),
    };
    let ip = if ip_len == 4 {
        IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
    } else {
        let mut octets = [0; 16];
        octets.copy_from_slice(&bytes[..16]);
        IpAddr::V6(Ipv6Addr::from(octets))
    };
    let port = u32::from_be_bytes([
        bytes[ip_len],
        bytes[ip_len + 1],
        bytes[ip_len + 2],
        bytes[ip_len + 3],
    ]);
    let port = u16::try_from(port).map_err(|_| bad("the port is out of range"))?;
    let mut offset = [0; 8];
    offset.copy_from_slice(&bytes[ip_len + 4..]);
    Ok((SocketAddr::new(ip, port), u64::from_be_bytes(offset)))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Fuzzing: any text is decoded or refused, never a panic; any
        /// host and offset round-trip.
        #[test]
        fn any_text_decodes_or_is_refused(id in "\\PC{0,80}", hex in "[0-9A-Fa-f]{0,80}") {
            let _ = decode("id", &id);
            let _ = decode("id", &hex);
        }

        #[test]
        fn any_host_and_offset_round_trip(ip in any::<std::net::IpAddr>(), port in any::<u16>(), offset in any::<u64>()) {
            let host = SocketAddr::new(ip, port);
            prop_assert_eq!(decode("id", &encode(host, offset)).unwrap(), (host, offset));
        }
    }

    #[test]
    fn ids_round_trip_and_match_rocketmq_for_ipv4() {
        let host: SocketAddr = "10.0.0.1:10911".parse().unwrap();
        let id = encode(host, 0x1234);
        assert_eq!(id, "0A00000100002A9F0000000000001234");
        assert_eq!(decode("id", &id).unwrap(), (host, 0x1234));
        let v6: SocketAddr = "[::1]:9".parse().unwrap();
        assert_eq!(decode("id", &encode(v6, u64::MAX)).unwrap(), (v6, u64::MAX));
    }

    #[test]
    fn malformed_ids_are_refused_naming_the_field() {
        for bad in ["", "XYZ", "0A00", "0A000001FFFFFFFF0000000000001234", "é"] {
            let err = decode("id", bad).unwrap_err();
            assert_eq!(err.field, "id", "{bad}");
        }
    }
}
