//! Transactional producers' sessions: the broker's way to ask a live
//! producer of a group how a transaction ended (RocketMQ 5 sends the same
//! question over its Telemetry stream). A session lives as long as its
//! stream; a closed one is dropped the next time its group is asked.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use mq_proto::broker::v1 as pb;
use tokio::sync::mpsc;
use tonic::Status;

/// Checks a session may have waiting before further ones to it are
/// dropped (they are asked again at the next interval).
const SESSION_BACKLOG: usize = 256;

pub type CheckSender = mpsc::Sender<Result<pb::TransactionCheck, Status>>;
pub type CheckReceiver = mpsc::Receiver<Result<pb::TransactionCheck, Status>>;

#[derive(Debug)]
struct Session {
    client_id: String,
    tx: CheckSender,
}

/// The open sessions, by producer group.
#[derive(Debug, Default)]
pub struct ProducerSessions {
    /// A std mutex: held to add, pick or drop a session, never across an
    /// await.
    groups: Mutex<HashMap<String, Vec<Session>>>,
    /// Turns through a group's sessions, so checks are spread.
    turn: AtomicUsize,
}

impl ProducerSessions {
    /// Opens a session of `client_id` in `group`; checks arrive on the
    /// receiver until it is dropped.
    pub fn open(&self, group: &str, client_id: &str) -> CheckReceiver {
        let (tx, rx) = mpsc::channel(SESSION_BACKLOG);
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        groups.entry(group.to_owned()).or_default().push(Session {
            client_id: client_id.to_owned(),
            tx,
        });
        rx
    }

    /// Sends `check` to one live session of `group`; the client id asked,
    /// or `None` when the group has no live producer here.
    pub fn ask(&self, group: &str, check: pb::TransactionCheck) -> Option<String> {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        let sessions = groups.get_mut(group)?;
        sessions.retain(|s| !s.tx.is_closed());
        let mut check = Some(check);
        for _ in 0..sessions.len() {
            let pick = self.turn.fetch_add(1, Ordering::Relaxed) % sessions.len();
            let session = &sessions[pick];
            match session
                .tx
                .try_send(Ok(check.take().expect("a check to send")))
            {
                Ok(()) => return Some(session.client_id.clone()),
                Err(mpsc::error::TrySendError::Full(Ok(back)))
                | Err(mpsc::error::TrySendError::Closed(Ok(back))) => check = Some(back),
                Err(_) => return None,
            }
        }
        if sessions.is_empty() {
            groups.remove(group);
        }
        None
    }

    /// Live sessions of `group`.
    #[cfg(test)]
    fn count(&self, group: &str) -> usize {
        let groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        groups
            .get(group)
            .map_or(0, |s| s.iter().filter(|s| !s.tx.is_closed()).count())
    }

    /// Ends every session (the broker stops): producers reconnect.
    pub fn close_all(&self) {
        self.groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    #[cfg(test)]
    fn kept(&self, group: &str) -> usize {
        let groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        groups.get(group).map_or(0, Vec::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(id: &str) -> pb::TransactionCheck {
        pb::TransactionCheck {
            transaction_id: id.into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn checks_go_to_live_sessions_in_turn_and_closed_ones_are_dropped() {
        let sessions = ProducerSessions::default();
        assert_eq!(sessions.ask("g", check("0")), None, "no producer yet");
        let mut a = sessions.open("g", "a");
        let mut b = sessions.open("g", "b");
        let mut asked = Vec::new();
        for i in 0..4 {
            asked.push(sessions.ask("g", check(&i.to_string())).unwrap());
        }
        asked.sort();
        assert_eq!(asked, ["a", "a", "b", "b"]);
        assert_eq!(a.recv().await.unwrap().unwrap().transaction_id.len(), 1);
        assert!(b.recv().await.is_some());
        drop(a);
        for i in 0..3 {
            assert_eq!(
                sessions.ask("g", check(&i.to_string())).as_deref(),
                Some("b")
            );
        }
        assert_eq!(sessions.kept("g"), 1, "the closed session is dropped");
        drop(b);
        assert_eq!(sessions.ask("g", check("x")), None);
        assert_eq!(sessions.count("g"), 0);
    }
}
