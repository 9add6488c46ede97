//! Why an expression was refused, and where.

/// An expression that does not compile: the 1-based character position
/// of the offending token and what was wrong there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid SQL filter at position {position}: {reason}")]
pub struct SqlError {
    pub position: usize,
    pub reason: String,
}

impl SqlError {
    pub(crate) fn at(position: usize, reason: impl Into<String>) -> Self {
        SqlError {
            position,
            reason: reason.into(),
        }
    }
}
