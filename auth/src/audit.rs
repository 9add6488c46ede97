//! The audit log: one line, under the `audit` target, for every change of
//! users or policies and every refused request: who, what, on which
//! resource, the decision. Never a secret: [`crate::Secret`] cannot print
//! one, and changes print through their audit text.

use std::net::SocketAddr;

use crate::model::{Action, Target};
use crate::snapshot::Change;

/// A change was made (or refused) by `user`.
pub fn change(user: &str, source: Option<SocketAddr>, change: &Change, outcome: Result<u64, &str>) {
    match outcome {
        Ok(version) => tracing::info!(
            target: "audit",
            user,
            source = %source_text(source),
            change = %change,
            version,
            decision = "allow",
            "auth change"
        ),
        Err(reason) => tracing::warn!(
            target: "audit",
            user,
            source = %source_text(source),
            change = %change,
            decision = "refused",
            reason,
            "auth change refused"
        ),
    }
}

/// `user` may not do `action` on `target`.
pub fn denied(user: &str, source: Option<SocketAddr>, rpc: &str, action: Action, target: &Target) {
    tracing::warn!(
        target: "audit",
        user,
        source = %source_text(source),
        rpc,
        action = %action,
        resource = %target,
        decision = "deny",
        "request denied"
    );
}

/// A request whose signature was not accepted.
pub fn unauthenticated(source: Option<SocketAddr>, rpc: &str, reason: &str) {
    tracing::warn!(
        target: "audit",
        source = %source_text(source),
        rpc,
        decision = "deny",
        reason,
        "request not authenticated"
    );
}

fn source_text(source: Option<SocketAddr>) -> String {
    source.map_or_else(|| "unknown".into(), |s| s.to_string())
}
