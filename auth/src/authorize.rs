//! The decision for one request: a pure function of the users and
//! policies, who asks, what for, and from where.
//!
//! Super users may do everything. A normal user may do what one of its
//! policies allows and none denies (deny wins; no policy means deny), and
//! never touches the broker's own topics (`TBW102`, `SCHEDULE_TOPIC_XXXX`),
//! whatever a wildcard says. A group's retry and dead-letter topics are
//! that group ([`Target::topic`]).

use std::net::IpAddr;

use crate::model::{Action, Decision, Target, UserType};
use crate::snapshot::AuthSnapshot;

/// Who a verified request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub user_type: UserType,
}

/// Whether `identity` may do `action` on `target` from `source`.
pub fn decide(
    snapshot: &AuthSnapshot,
    identity: &Identity,
    action: Action,
    target: &Target,
    source: Option<IpAddr>,
) -> Decision {
    if identity.user_type == UserType::Super {
        return Decision::Allow;
    }
    if let Target::Topic(name) = target
        && mq_common::system_topics::is_reserved(name)
    {
        return Decision::Deny;
    }
    let mut decision = Decision::Deny;
    for policy in snapshot.acls.get(&identity.user).into_iter().flatten() {
        if policy.covers(action, target, source) {
            if policy.decision == Decision::Deny {
                return Decision::Deny;
            }
            decision = Decision::Allow;
        }
    }
    decision
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Policy, User};
    use crate::secret::Secret;

    fn snapshot(policies: &[(&str, &str, Decision, &str)]) -> AuthSnapshot {
        let mut snapshot = AuthSnapshot::default();
        snapshot.users.insert(
            "alice".into(),
            User {
                secret: Secret::new("pw"),
                user_type: UserType::Normal,
            },
        );
        snapshot.acls.insert(
            "alice".into(),
            policies
                .iter()
                .map(|(resource, actions, decision, ips)| Policy {
                    resource: resource.parse().unwrap(),
                    actions: Action::parse_list(actions).unwrap(),
                    source_ips: crate::model::parse_source_ips(ips).unwrap(),
                    decision: *decision,
                })
                .collect(),
        );
        snapshot
    }

    fn alice() -> Identity {
        Identity {
            user: "alice".into(),
            user_type: UserType::Normal,
        }
    }

    fn may(snapshot: &AuthSnapshot, action: Action, target: Target) -> bool {
        decide(
            snapshot,
            &alice(),
            action,
            &target,
            Some([10, 0, 0, 1].into()),
        ) == Decision::Allow
    }

    #[test]
    fn no_policy_means_deny() {
        let s = snapshot(&[]);
        assert!(!may(&s, Action::Pub, Target::topic("t")));
        assert!(!may(&s, Action::Get, Target::Cluster));
    }

    #[test]
    fn an_allow_covers_only_its_actions_and_resources() {
        let s = snapshot(&[("Topic:orders-*", "Pub", Decision::Allow, "")]);
        assert!(may(&s, Action::Pub, Target::topic("orders-eu")));
        assert!(!may(&s, Action::Sub, Target::topic("orders-eu")));
        assert!(!may(&s, Action::Pub, Target::topic("payments")));
    }

    #[test]
    fn deny_wins_over_allow_whatever_the_order() {
        let s = snapshot(&[
            ("Topic:*", "All", Decision::Allow, ""),
            ("Topic:secret", "Sub", Decision::Deny, ""),
        ]);
        assert!(may(&s, Action::Pub, Target::topic("secret")));
        assert!(!may(&s, Action::Sub, Target::topic("secret")));
        assert!(may(&s, Action::Sub, Target::topic("public")));
    }

    #[test]
    fn a_source_range_limits_where_a_policy_applies() {
        let s = snapshot(&[("*", "All", Decision::Allow, "192.168.0.0/16")]);
        assert!(
            !may(&s, Action::Pub, Target::topic("t")),
            "10.0.0.1 is outside"
        );
        let from_inside = decide(
            &s,
            &alice(),
            Action::Pub,
            &Target::topic("t"),
            Some([192, 168, 3, 4].into()),
        );
        assert_eq!(from_inside, Decision::Allow);
    }

    #[test]
    fn the_broker_s_own_topics_are_out_of_reach_of_normal_users() {
        let s = snapshot(&[("*", "All", Decision::Allow, "")]);
        assert!(!may(&s, Action::Sub, Target::topic("SCHEDULE_TOPIC_XXXX")));
        assert!(!may(&s, Action::Pub, Target::topic("TBW102")));
        // A group's retry topic is the group: allowed by the wildcard.
        assert!(may(&s, Action::Sub, Target::topic("%RETRY%g")));
        let root = Identity {
            user: "root".into(),
            user_type: UserType::Super,
        };
        let any = decide(
            &s,
            &root,
            Action::Sub,
            &Target::topic("SCHEDULE_TOPIC_XXXX"),
            None,
        );
        assert_eq!(any, Decision::Allow);
    }
}
