//! An access key and its secret: what a client signs with.

use crate::secret::Secret;

/// Who a client is: the user's access key (its name) and secret key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: Secret,
}

/// Credentials that cannot be used; the message names what is wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CredentialsError {
    #[error("an access key needs a secret key (--secret-key, or its environment variable)")]
    MissingSecret,
    #[error("a secret key needs an access key (--access-key, or its environment variable)")]
    MissingAccessKey,
    #[error("access key {0:?} is not a legal user name: {1}")]
    IllegalAccessKey(String, String),
    #[error("cannot read the secret key file {path}: {reason}")]
    SecretFile { path: String, reason: String },
}

impl Credentials {
    /// Credentials of `access_key` with `secret_key`.
    pub fn new(access_key: impl Into<String>, secret_key: impl Into<String>) -> Self {
        Credentials {
            access_key: access_key.into(),
            secret_key: Secret::new(secret_key),
        }
    }

    /// The credentials given as optional parts (flags, environment): none
    /// when neither is given, an error when only one is.
    pub fn from_parts(
        access_key: Option<&str>,
        secret_key: Option<&str>,
    ) -> Result<Option<Credentials>, CredentialsError> {
        let access_key = access_key.filter(|k| !k.is_empty());
        let secret_key = secret_key.filter(|k| !k.is_empty());
        match (access_key, secret_key) {
            (None, None) => Ok(None),
            (Some(_), None) => Err(CredentialsError::MissingSecret),
            (None, Some(_)) => Err(CredentialsError::MissingAccessKey),
            (Some(access_key), Some(secret_key)) => {
                check_user_name(access_key).map_err(|reason| {
                    CredentialsError::IllegalAccessKey(access_key.into(), reason)
                })?;
                Ok(Some(Credentials::new(access_key, secret_key)))
            }
        }
    }

    /// Reads a secret key from `path` (its first line; a trailing newline
    /// is not part of it).
    pub fn read_secret_file(path: &std::path::Path) -> Result<String, CredentialsError> {
        let content = std::fs::read_to_string(path).map_err(|e| CredentialsError::SecretFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(content.lines().next().unwrap_or_default().trim().to_owned())
    }
}

/// A user name (access key): 1 to 64 characters among letters, digits,
/// `_`, `-` and `.`; no `/` or `,`, which the authorization header uses as
/// separators.
pub fn check_user_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > 64 {
        return Err(format!(
            "is {} characters long; at most 64 are allowed",
            name.len()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(format!(
            "contains the illegal character {bad:?}; allowed are letters, digits, '_', '-' and '.'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_parts_or_neither() {
        assert_eq!(Credentials::from_parts(None, None), Ok(None));
        assert_eq!(Credentials::from_parts(Some(""), Some("")), Ok(None));
        assert_eq!(
            Credentials::from_parts(Some("alice"), None),
            Err(CredentialsError::MissingSecret)
        );
        assert_eq!(
            Credentials::from_parts(None, Some("x")),
            Err(CredentialsError::MissingAccessKey)
        );
        assert!(matches!(
            Credentials::from_parts(Some("a/b"), Some("x")),
            Err(CredentialsError::IllegalAccessKey(..))
        ));
        assert_eq!(
            Credentials::from_parts(Some("alice"), Some("pw")),
            Ok(Some(Credentials::new("alice", "pw")))
        );
    }

    #[test]
    fn a_secret_file_gives_its_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "pw-123\n").unwrap();
        assert_eq!(Credentials::read_secret_file(&path).unwrap(), "pw-123");
        let err = Credentials::read_secret_file(&dir.path().join("none")).unwrap_err();
        assert!(err.to_string().contains("none"), "{err}");
    }
}
