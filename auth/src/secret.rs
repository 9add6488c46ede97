//! A secret key that cannot leak by accident: its `Debug` and `Display`
//! print a placeholder, so a secret inside a config, an error or a log
//! field shows as `<redacted>`.

use serde::{Deserialize, Serialize};

/// A secret key. Read it with [`Secret::expose`], only where it is used.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself: for computing a signature, never for printing.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is empty (a missing secret).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_secret_never_prints_itself() {
        let secret = super::Secret::new("s3cr3t-value");
        assert_eq!(format!("{secret:?} {secret}"), "<redacted> <redacted>");
        assert_eq!(secret.expose(), "s3cr3t-value");
    }
}
