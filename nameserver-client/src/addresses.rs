//! Parsing of nameserver address lists as users write them: `host:port`
//! entries separated by `;` (RocketMQ's `namesrvAddr` syntax).

use mq_common::validate;

use crate::error::NameServerClientError;

/// Splits `"a:9876;b:9876"` into addresses, skipping empty entries and
/// surrounding spaces. Refuses an empty list or a malformed entry.
pub fn parse_addresses(list: &str) -> Result<Vec<String>, NameServerClientError> {
    let addrs: Vec<String> = list
        .split(';')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    if addrs.is_empty() {
        return Err(NameServerClientError::NoAddress);
    }
    for addr in &addrs {
        validate::host_port("nameserver address", addr).map_err(|e| {
            NameServerClientError::InvalidAddress {
                addr: addr.clone(),
                reason: e.reason,
            }
        })?;
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semicolon_separated_lists_are_split_and_trimmed() {
        assert_eq!(parse_addresses("a:1; b:2;").unwrap(), ["a:1", "b:2"]);
        assert_eq!(
            parse_addresses("127.0.0.1:9876").unwrap(),
            ["127.0.0.1:9876"]
        );
    }

    #[test]
    fn empty_and_malformed_lists_are_refused() {
        assert!(matches!(
            parse_addresses(" ; "),
            Err(NameServerClientError::NoAddress)
        ));
        let err = parse_addresses("a:1;b").unwrap_err();
        assert!(err.to_string().contains("\"b\""), "{err}");
    }
}
