//! Users and access policies, as RocketMQ 5's ACL 2.0 has them.
//!
//! A policy is written `resource` + actions + decision, optionally limited
//! to source address ranges. Resources: `Cluster`, `Topic:orders` (one
//! topic), `Topic:orders-*` (a prefix), `Topic:*`, the same for `Group:`,
//! and `*` (everything). Actions: Pub, Sub, Create, Update, Delete, Get,
//! List, Admin, and All for every one of them.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// A super user may do everything; a normal user what its policies allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserType {
    Super,
    Normal,
}

impl FromStr for UserType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "super" => Ok(UserType::Super),
            "normal" => Ok(UserType::Normal),
            _ => Err(format!("{s:?} is not a user type (super or normal)")),
        }
    }
}

impl fmt::Display for UserType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UserType::Super => "super",
            UserType::Normal => "normal",
        })
    }
}

/// A user: its secret key and type. The name is the key it is stored under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub secret: Secret,
    pub user_type: UserType,
}

/// What a request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Action {
    Pub,
    Sub,
    Create,
    Update,
    Delete,
    Get,
    List,
    Admin,
}

impl Action {
    /// Every action, which `All` stands for.
    pub const ALL: [Action; 8] = [
        Action::Pub,
        Action::Sub,
        Action::Create,
        Action::Update,
        Action::Delete,
        Action::Get,
        Action::List,
        Action::Admin,
    ];

    /// Parses a comma-separated list (`Pub,Sub`, `all`), case-insensitive.
    pub fn parse_list(list: &str) -> Result<BTreeSet<Action>, String> {
        let mut actions = BTreeSet::new();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if name.eq_ignore_ascii_case("all") {
                actions.extend(Action::ALL);
                continue;
            }
            let action = Action::ALL
                .into_iter()
                .find(|a| a.to_string().eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    format!(
                        "{name:?} is not an action (Pub, Sub, Create, Update, Delete, Get, List, Admin or All)"
                    )
                })?;
            actions.insert(action);
        }
        if actions.is_empty() {
            return Err("no action given".into());
        }
        Ok(actions)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Names a policy covers: one name, every name with a prefix, or all.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pattern {
    Exact(String),
    Prefix(String),
    Any,
}

impl Pattern {
    fn parse(text: &str) -> Result<Pattern, String> {
        if text == "*" {
            return Ok(Pattern::Any);
        }
        let (name, prefix) = match text.strip_suffix('*') {
            Some(name) => (name, true),
            None => (text, false),
        };
        mq_common::validate::topic("name", name).map_err(|e| e.reason)?;
        Ok(if prefix {
            Pattern::Prefix(name.to_owned())
        } else {
            Pattern::Exact(name.to_owned())
        })
    }

    /// Whether `name` is covered.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            Pattern::Exact(exact) => exact == name,
            Pattern::Prefix(prefix) => name.starts_with(prefix.as_str()),
            Pattern::Any => true,
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Exact(name) => f.write_str(name),
            Pattern::Prefix(prefix) => write!(f, "{prefix}*"),
            Pattern::Any => f.write_str("*"),
        }
    }
}

/// What a policy is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Resource {
    /// Everything.
    Any,
    /// The cluster itself: its brokers, registrations, elections, stats.
    Cluster,
    Topic(Pattern),
    Group(Pattern),
}

impl FromStr for Resource {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text == "*" {
            return Ok(Resource::Any);
        }
        let (kind, name) = text.split_once(':').unwrap_or((text, ""));
        let named = |make: fn(Pattern) -> Resource| {
            if name.is_empty() {
                return Err(format!(
                    "{text:?} names no {kind} (e.g. {kind}:orders, {kind}:orders-*, {kind}:*)"
                ));
            }
            Pattern::parse(name)
                .map(make)
                .map_err(|reason| format!("{text:?}: the name {reason}"))
        };
        match kind.to_ascii_lowercase().as_str() {
            "cluster" => Ok(Resource::Cluster),
            "topic" => named(Resource::Topic),
            "group" => named(Resource::Group),
            _ => Err(format!(
                "{text:?} is not a resource (Cluster, Topic:NAME, Group:NAME, a NAME may end in '*'; or *)"
            )),
        }
    }
}

impl TryFrom<String> for Resource {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<Resource> for String {
    fn from(resource: Resource) -> String {
        resource.to_string()
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resource::Any => f.write_str("*"),
            Resource::Cluster => f.write_str("Cluster"),
            Resource::Topic(pattern) => write!(f, "Topic:{pattern}"),
            Resource::Group(pattern) => write!(f, "Group:{pattern}"),
        }
    }
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    Allow,
    Deny,
}

impl FromStr for Decision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "allow" => Ok(Decision::Allow),
            "deny" => Ok(Decision::Deny),
            _ => Err(format!("{s:?} is not a decision (Allow or Deny)")),
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// One entry of a user's access control list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub resource: Resource,
    pub actions: BTreeSet<Action>,
    /// Source address ranges it applies to; empty: from anywhere.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_ips: Vec<IpNet>,
    pub decision: Decision,
}

impl Policy {
    /// Whether this policy speaks about `action` on `target` from `source`.
    pub fn covers(&self, action: Action, target: &Target, source: Option<IpAddr>) -> bool {
        self.actions.contains(&action)
            && self.resource.covers(target)
            && (self.source_ips.is_empty()
                || source.is_some_and(|ip| self.source_ips.iter().any(|net| net.contains(&ip))))
    }
}

/// Parses source ranges: `10.0.0.0/8`, `192.168.1.7` (one address), comma-separated.
pub fn parse_source_ips(list: &str) -> Result<Vec<IpNet>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{s:?} is not an address or address range (e.g. 10.0.0.0/8)"))
        })
        .collect()
}

/// The one thing a request acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Cluster,
    Topic(String),
    Group(String),
}

impl Target {
    /// The topic `name`; a group's retry and dead-letter topics are that
    /// group (as in RocketMQ: whoever consumes as the group reads them).
    pub fn topic(name: &str) -> Target {
        use mq_common::system_topics::{DLQ_PREFIX, RETRY_PREFIX};
        match name
            .strip_prefix(RETRY_PREFIX)
            .or_else(|| name.strip_prefix(DLQ_PREFIX))
        {
            Some(group) => Target::Group(group.to_owned()),
            None => Target::Topic(name.to_owned()),
        }
    }

    /// The consumer group `name`.
    pub fn group(name: &str) -> Target {
        Target::Group(name.to_owned())
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Cluster => f.write_str("Cluster"),
            Target::Topic(name) => write!(f, "Topic:{name}"),
            Target::Group(name) => write!(f, "Group:{name}"),
        }
    }
}

impl Resource {
    /// Whether `target` falls under this resource.
    pub fn covers(&self, target: &Target) -> bool {
        match (self, target) {
            (Resource::Any, _) => true,
            (Resource::Cluster, Target::Cluster) => true,
            (Resource::Topic(pattern), Target::Topic(name)) => pattern.matches(name),
            (Resource::Group(pattern), Target::Group(name)) => pattern.matches(name),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_parse_and_print_back() {
        for text in [
            "*",
            "Cluster",
            "Topic:orders",
            "Topic:orders-*",
            "Topic:*",
            "Group:g1",
            "Group:*",
        ] {
            let resource: Resource = text.parse().unwrap();
            assert_eq!(resource.to_string(), text);
        }
        assert_eq!(
            "topic:x".parse::<Resource>(),
            Ok(Resource::Topic(Pattern::Exact("x".into())))
        );
        for (bad, says) in [
            ("Queue:x", "not a resource"),
            ("Topic:", "names no Topic"),
            ("Topic", "names no Topic"),
            ("Topic:a b", "illegal character"),
        ] {
            let err = bad.parse::<Resource>().unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn prefixes_exact_names_and_any_match_as_written() {
        let prefix: Resource = "Topic:orders-*".parse().unwrap();
        assert!(prefix.covers(&Target::topic("orders-eu")));
        assert!(prefix.covers(&Target::topic("orders-")));
        assert!(!prefix.covers(&Target::topic("order")));
        assert!(!prefix.covers(&Target::group("orders-eu")));
        let exact: Resource = "Group:g1".parse().unwrap();
        assert!(exact.covers(&Target::group("g1")));
        assert!(!exact.covers(&Target::group("g10")));
        assert!(Resource::Any.covers(&Target::Cluster));
        assert!(!Resource::Cluster.covers(&Target::topic("x")));
    }

    #[test]
    fn retry_and_dead_letter_topics_belong_to_their_group() {
        assert_eq!(Target::topic("%RETRY%g1"), Target::group("g1"));
        assert_eq!(Target::topic("%DLQ%g1"), Target::group("g1"));
        assert_eq!(Target::topic("orders"), Target::Topic("orders".into()));
    }

    #[test]
    fn actions_parse_case_insensitively_and_all_means_every_one() {
        assert_eq!(
            Action::parse_list("pub, Sub")
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            vec![Action::Pub, Action::Sub]
        );
        assert_eq!(Action::parse_list("All").unwrap().len(), 8);
        assert!(
            Action::parse_list("publish")
                .unwrap_err()
                .contains("\"publish\"")
        );
        assert!(Action::parse_list("").is_err());
    }

    #[test]
    fn source_ranges_limit_a_policy() {
        let policy = Policy {
            resource: Resource::Any,
            actions: [Action::Pub].into(),
            source_ips: parse_source_ips("10.0.0.0/8, 192.168.1.7").unwrap(),
            decision: Decision::Allow,
        };
        let target = Target::topic("t");
        assert!(policy.covers(Action::Pub, &target, Some("10.1.2.3".parse().unwrap())));
        assert!(policy.covers(Action::Pub, &target, Some("192.168.1.7".parse().unwrap())));
        assert!(!policy.covers(Action::Pub, &target, Some("192.168.1.8".parse().unwrap())));
        assert!(!policy.covers(Action::Pub, &target, None));
        assert!(!policy.covers(Action::Sub, &target, Some("10.1.2.3".parse().unwrap())));
        assert!(
            parse_source_ips("10.0.0.0/33")
                .unwrap_err()
                .contains("10.0.0.0/33")
        );
    }
}
