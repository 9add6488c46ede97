//! The cluster's users and policies at one version.
//!
//! Every change makes a new snapshot with the next version. Servers keep
//! the newest they have seen, ordered by (version, digest): two snapshots
//! of one version made apart (two administrators writing to two
//! nameservers at once) still order the same way everywhere, so every
//! server settles on the same one.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha1::Digest as _;

use crate::credentials::check_user_name;
use crate::model::{Policy, Resource, User, UserType};
use crate::secret::Secret;

/// Users (by name) and their policies (by user name) at one version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthSnapshot {
    pub version: u64,
    pub users: BTreeMap<String, User>,
    #[serde(default)]
    pub acls: BTreeMap<String, Vec<Policy>>,
}

/// One change an administrator asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    CreateUser {
        name: String,
        secret: Secret,
        user_type: UserType,
    },
    /// Only what is given changes.
    UpdateUser {
        name: String,
        secret: Option<Secret>,
        user_type: Option<UserType>,
    },
    /// Removes the user and its policies.
    DeleteUser { name: String },
    /// Adds policies on resources the user has none on yet.
    CreateAcl { user: String, policies: Vec<Policy> },
    /// Replaces the user's policies on these resources, adds the others.
    UpdateAcl { user: String, policies: Vec<Policy> },
    /// Removes the user's policies on these resources; none given: all.
    DeleteAcl {
        user: String,
        resources: Vec<Resource>,
    },
}

/// A change that cannot be made; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    #[error("user {0:?} already exists (use update)")]
    UserExists(String),
    #[error("user {0:?} does not exist")]
    NoSuchUser(String),
    #[error("user {user:?} already has a policy on {resource} (use update)")]
    PolicyExists { user: String, resource: String },
    #[error("user {user:?} has no policy on {resource}")]
    NoPolicy { user: String, resource: String },
    #[error("{0}")]
    Invalid(String),
    #[error(
        "user {0:?} is the cluster's configured administrator: change it in the servers' configuration, not here"
    )]
    Administrator(String),
}

impl fmt::Display for Change {
    /// What the change does, for the audit log: never the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let resources = |policies: &[Policy]| {
            policies
                .iter()
                .map(|p| {
                    let actions: Vec<String> = p.actions.iter().map(|a| a.to_string()).collect();
                    format!("{} {} {}", p.decision, actions.join(","), p.resource)
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        match self {
            Change::CreateUser {
                name, user_type, ..
            } => {
                write!(f, "create user {name} ({user_type})")
            }
            Change::UpdateUser {
                name,
                secret,
                user_type,
            } => {
                write!(f, "update user {name}")?;
                if secret.is_some() {
                    f.write_str(" (new secret)")?;
                }
                match user_type {
                    Some(t) => write!(f, " ({t})"),
                    None => Ok(()),
                }
            }
            Change::DeleteUser { name } => write!(f, "delete user {name}"),
            Change::CreateAcl { user, policies } => {
                write!(f, "create acl of {user}: {}", resources(policies))
            }
            Change::UpdateAcl { user, policies } => {
                write!(f, "update acl of {user}: {}", resources(policies))
            }
            Change::DeleteAcl { user, resources } if resources.is_empty() => {
                write!(f, "delete every acl of {user}")
            }
            Change::DeleteAcl { user, resources } => {
                let names: Vec<String> = resources.iter().map(|r| r.to_string()).collect();
                write!(f, "delete acl of {user} on {}", names.join(", "))
            }
        }
    }
}

impl AuthSnapshot {
    /// The snapshot after `change` (one version on), or why it cannot be
    /// made. `administrator` is the configured user no change may touch.
    pub fn apply(&self, change: &Change, administrator: &str) -> Result<AuthSnapshot, ChangeError> {
        let mut next = self.clone();
        next.version += 1;
        match change {
            Change::CreateUser {
                name,
                secret,
                user_type,
            } => {
                check_name(name, administrator)?;
                if secret.is_empty() {
                    return Err(ChangeError::Invalid(
                        "the secret key must not be empty".into(),
                    ));
                }
                if next.users.contains_key(name) {
                    return Err(ChangeError::UserExists(name.clone()));
                }
                next.users.insert(
                    name.clone(),
                    User {
                        secret: secret.clone(),
                        user_type: *user_type,
                    },
                );
            }
            Change::UpdateUser {
                name,
                secret,
                user_type,
            } => {
                check_name(name, administrator)?;
                let user = next
                    .users
                    .get_mut(name)
                    .ok_or_else(|| ChangeError::NoSuchUser(name.clone()))?;
                if let Some(secret) = secret {
                    if secret.is_empty() {
                        return Err(ChangeError::Invalid(
                            "the secret key must not be empty".into(),
                        ));
                    }
                    user.secret = secret.clone();
                }
                if let Some(user_type) = user_type {
                    user.user_type = *user_type;
                }
            }
            Change::DeleteUser { name } => {
                check_name(name, administrator)?;
                if next.users.remove(name).is_none() {
                    return Err(ChangeError::NoSuchUser(name.clone()));
                }
                next.acls.remove(name);
            }
            Change::CreateAcl { user, policies } | Change::UpdateAcl { user, policies } => {
                check_name(user, administrator)?;
                if !next.users.contains_key(user) {
                    return Err(ChangeError::NoSuchUser(user.clone()));
                }
                if policies.is_empty() {
                    return Err(ChangeError::Invalid("no policy given".into()));
                }
                let create = matches!(change, Change::CreateAcl { .. });
                let list = next.acls.entry(user.clone()).or_default();
                for policy in policies {
                    match list.iter_mut().find(|p| p.resource == policy.resource) {
                        Some(_) if create => {
                            return Err(ChangeError::PolicyExists {
                                user: user.clone(),
                                resource: policy.resource.to_string(),
                            });
                        }
                        Some(existing) => *existing = policy.clone(),
                        None => list.push(policy.clone()),
                    }
                }
                list.sort_by(|a, b| a.resource.cmp(&b.resource));
            }
            Change::DeleteAcl { user, resources } => {
                check_name(user, administrator)?;
                let list = next
                    .acls
                    .get_mut(user)
                    .ok_or_else(|| ChangeError::NoPolicy {
                        user: user.clone(),
                        resource: "any resource".into(),
                    })?;
                for resource in resources {
                    let before = list.len();
                    list.retain(|p| &p.resource != resource);
                    if list.len() == before {
                        return Err(ChangeError::NoPolicy {
                            user: user.clone(),
                            resource: resource.to_string(),
                        });
                    }
                }
                if resources.is_empty() || list.is_empty() {
                    next.acls.remove(user);
                }
            }
        }
        Ok(next)
    }

    /// A fingerprint of the content (SHA-1 of the JSON form, hex).
    pub fn digest(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(sha1::Sha1::digest(&json))
    }

    /// Whether this snapshot should replace `other`: a higher version, or
    /// the same version and a higher digest.
    pub fn supersedes(&self, other: &AuthSnapshot) -> bool {
        (self.version, self.digest()) > (other.version, other.digest())
    }
}

fn check_name(name: &str, administrator: &str) -> Result<(), ChangeError> {
    check_user_name(name)
        .map_err(|reason| ChangeError::Invalid(format!("user name {name:?} {reason}")))?;
    if name == administrator {
        return Err(ChangeError::Administrator(name.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
