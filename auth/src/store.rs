//! A server's copy of the users and policies: the newest snapshot it has
//! seen, kept in a file (`auth.json`) so that it enforces the same rules
//! after a restart, before it has reached any nameserver.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use crate::settings::AuthSettings;
use crate::snapshot::{AuthSnapshot, Change, ChangeError};

/// Why the copy could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot read the users and policies from {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot save the users and policies to {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Change(#[from] ChangeError),
}

/// The newest users and policies this server knows, and its settings.
#[derive(Debug)]
pub struct AuthStore {
    settings: AuthSettings,
    /// Read on every request, replaced whole: a std `RwLock` around an
    /// `Arc`, held only to clone or swap the pointer, never across I/O.
    current: RwLock<Arc<AuthSnapshot>>,
    /// Serializes writers so that saving the file and swapping the pointer
    /// happen in the same order; held across the file write, which is the
    /// point (writes are rare: administrators' changes and syncs).
    writer: Mutex<()>,
    path: Option<PathBuf>,
}

impl AuthStore {
    /// The copy saved at `path` (none saved: empty), or an in-memory one
    /// without a path.
    pub fn open(settings: AuthSettings, path: Option<PathBuf>) -> Result<AuthStore, StoreError> {
        let snapshot = match &path {
            Some(path) => mq_common::atomic_file::read_json::<AuthSnapshot>(path)
                .map_err(|source| StoreError::Read {
                    path: path.display().to_string(),
                    source,
                })?
                .unwrap_or_default(),
            None => AuthSnapshot::default(),
        };
        Ok(AuthStore {
            settings,
            current: RwLock::new(Arc::new(snapshot)),
            writer: Mutex::new(()),
            path,
        })
    }

    /// The settings the server runs with.
    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    /// The current users and policies.
    pub fn snapshot(&self) -> Arc<AuthSnapshot> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Makes `change`, saves and adopts the result.
    pub fn apply(&self, change: &Change) -> Result<Arc<AuthSnapshot>, StoreError> {
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let administrator = self
            .settings
            .administrator
            .as_ref()
            .map_or("", |c| c.access_key.as_str());
        let next = self.snapshot().apply(change, administrator)?;
        self.install(next)
    }

    /// Adopts `offered` if it supersedes the current copy; whether it did.
    pub fn offer(&self, offered: AuthSnapshot) -> Result<bool, StoreError> {
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if !offered.supersedes(&self.snapshot()) {
            return Ok(false);
        }
        self.install(offered)?;
        Ok(true)
    }

    fn install(&self, next: AuthSnapshot) -> Result<Arc<AuthSnapshot>, StoreError> {
        if let Some(path) = &self.path {
            mq_common::atomic_file::write_json_private(path, &next).map_err(|source| {
                StoreError::Write {
                    path: path.display().to_string(),
                    source,
                }
            })?;
        }
        let next = Arc::new(next);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::clone(&next);
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;
    use crate::model::UserType;

    fn create(name: &str) -> Change {
        Change::CreateUser {
            name: name.into(),
            secret: Secret::new("pw"),
            user_type: UserType::Normal,
        }
    }

    #[test]
    fn changes_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.json");
        let store = AuthStore::open(AuthSettings::disabled(), Some(path.clone())).unwrap();
        store.apply(&create("alice")).unwrap();
        drop(store);
        let reopened = AuthStore::open(AuthSettings::disabled(), Some(path)).unwrap();
        assert_eq!(reopened.snapshot().version, 1);
        assert!(reopened.snapshot().users.contains_key("alice"));
    }

    #[test]
    fn only_a_newer_snapshot_is_adopted() {
        let store = AuthStore::open(AuthSettings::disabled(), None).unwrap();
        store.apply(&create("alice")).unwrap();
        store.apply(&create("bob")).unwrap();
        let older = AuthSnapshot::default().apply(&create("carol"), "").unwrap();
        assert!(!store.offer(older.clone()).unwrap());
        assert_eq!(store.snapshot().version, 2);
        let newer = store.snapshot().apply(&create("carol"), "").unwrap();
        assert!(store.offer(newer).unwrap());
        assert_eq!(store.snapshot().users.len(), 3);
    }

    #[test]
    fn a_failed_save_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("auth.json");
        let store = AuthStore::open(AuthSettings::disabled(), Some(path)).unwrap();
        let err = store.apply(&create("alice")).unwrap_err();
        assert!(err.to_string().contains("cannot save"), "{err}");
        assert_eq!(store.snapshot().version, 0);
    }

    #[test]
    fn an_unreadable_copy_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.json");
        std::fs::write(&path, "not json").unwrap();
        let err = AuthStore::open(AuthSettings::disabled(), Some(path)).unwrap_err();
        assert!(err.to_string().contains("auth.json"), "{err}");
    }
}
