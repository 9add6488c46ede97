use super::*;
use crate::model::{Action, Decision};

fn policy(resource: &str, actions: &str, decision: Decision) -> Policy {
    Policy {
        resource: resource.parse().unwrap(),
        actions: Action::parse_list(actions).unwrap(),
        source_ips: Vec::new(),
        decision,
    }
}

fn create(name: &str) -> Change {
    Change::CreateUser {
        name: name.into(),
        secret: Secret::new(format!("{name}-secret")),
        user_type: UserType::Normal,
    }
}

#[test]
fn each_change_makes_the_next_version_and_leaves_the_old_one_alone() {
    let v0 = AuthSnapshot::default();
    let v1 = v0.apply(&create("alice"), "admin").unwrap();
    assert_eq!((v0.version, v1.version), (0, 1));
    assert!(v0.users.is_empty());
    assert_eq!(v1.users["alice"].user_type, UserType::Normal);
    assert_eq!(
        v1.apply(&create("alice"), "admin"),
        Err(ChangeError::UserExists("alice".into()))
    );
}

#[test]
fn users_update_only_what_is_given_and_deleting_drops_their_policies() {
    let s = AuthSnapshot::default()
        .apply(&create("alice"), "admin")
        .unwrap();
    let s = s
        .apply(
            &Change::CreateAcl {
                user: "alice".into(),
                policies: vec![policy("Topic:t", "Pub", Decision::Allow)],
            },
            "admin",
        )
        .unwrap();
    let s = s
        .apply(
            &Change::UpdateUser {
                name: "alice".into(),
                secret: None,
                user_type: Some(UserType::Super),
            },
            "admin",
        )
        .unwrap();
    assert_eq!(s.users["alice"].secret.expose(), "alice-secret");
    assert_eq!(s.users["alice"].user_type, UserType::Super);
    let s = s
        .apply(
            &Change::DeleteUser {
                name: "alice".into(),
            },
            "admin",
        )
        .unwrap();
    assert!(s.users.is_empty() && s.acls.is_empty());
    assert_eq!(
        s.apply(
            &Change::DeleteUser {
                name: "alice".into()
            },
            "admin"
        ),
        Err(ChangeError::NoSuchUser("alice".into()))
    );
}

#[test]
fn acls_create_refuses_a_resource_twice_and_update_replaces_it() {
    let s = AuthSnapshot::default()
        .apply(&create("bob"), "admin")
        .unwrap();
    let create_acl = |p| Change::CreateAcl {
        user: "bob".into(),
        policies: vec![p],
    };
    let s = s
        .apply(
            &create_acl(policy("Topic:t", "Pub", Decision::Allow)),
            "admin",
        )
        .unwrap();
    assert!(matches!(
        s.apply(
            &create_acl(policy("Topic:t", "Sub", Decision::Allow)),
            "admin"
        ),
        Err(ChangeError::PolicyExists { .. })
    ));
    let s = s
        .apply(
            &Change::UpdateAcl {
                user: "bob".into(),
                policies: vec![
                    policy("Topic:t", "Sub", Decision::Deny),
                    policy("Group:g", "Sub", Decision::Allow),
                ],
            },
            "admin",
        )
        .unwrap();
    assert_eq!(s.acls["bob"].len(), 2);
    assert_eq!(s.acls["bob"][0], policy("Topic:t", "Sub", Decision::Deny));
    let s = s
        .apply(
            &Change::DeleteAcl {
                user: "bob".into(),
                resources: vec!["Topic:t".parse().unwrap()],
            },
            "admin",
        )
        .unwrap();
    assert_eq!(
        s.acls["bob"],
        vec![policy("Group:g", "Sub", Decision::Allow)]
    );
    assert!(matches!(
        s.apply(
            &Change::DeleteAcl {
                user: "bob".into(),
                resources: vec!["Topic:t".parse().unwrap()],
            },
            "admin"
        ),
        Err(ChangeError::NoPolicy { .. })
    ));
    let s = s
        .apply(
            &Change::DeleteAcl {
                user: "bob".into(),
                resources: vec![],
            },
            "admin",
        )
        .unwrap();
    assert!(s.acls.is_empty());
}

#[test]
fn acls_need_an_existing_user_and_the_administrator_is_untouchable() {
    let s = AuthSnapshot::default();
    assert_eq!(
        s.apply(
            &Change::CreateAcl {
                user: "ghost".into(),
                policies: vec![policy("*", "All", Decision::Allow)],
            },
            "admin"
        ),
        Err(ChangeError::NoSuchUser("ghost".into()))
    );
    assert_eq!(
        s.apply(&create("admin"), "admin"),
        Err(ChangeError::Administrator("admin".into()))
    );
    assert!(matches!(
        s.apply(&create("a b"), "admin"),
        Err(ChangeError::Invalid(_))
    ));
}

#[test]
fn the_audit_text_of_a_change_never_holds_the_secret() {
    let text = create("alice").to_string();
    assert_eq!(text, "create user alice (normal)");
    let update = Change::UpdateUser {
        name: "alice".into(),
        secret: Some(Secret::new("new-pw")),
        user_type: None,
    };
    assert_eq!(update.to_string(), "update user alice (new secret)");
}

#[test]
fn snapshots_order_by_version_then_digest_and_round_trip_as_json() {
    let a = AuthSnapshot::default()
        .apply(&create("alice"), "admin")
        .unwrap();
    let b = AuthSnapshot::default()
        .apply(&create("bob"), "admin")
        .unwrap();
    assert_eq!(a.version, b.version);
    assert_ne!(
        a.supersedes(&b),
        b.supersedes(&a),
        "one of two versions wins"
    );
    let c = a.apply(&create("carol"), "admin").unwrap();
    assert!(c.supersedes(&a) && c.supersedes(&b));
    assert!(!a.supersedes(&a));
    let json = serde_json::to_string(&c).unwrap();
    let back: AuthSnapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(back, c);
    assert_eq!(back.digest(), c.digest());
}
