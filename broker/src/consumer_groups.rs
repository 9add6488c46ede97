//! Consumer groups on this broker: who is alive in each group (from
//! heartbeats and open sessions), and which member holds the lock of each
//! queue for ordered consumption. Time is passed in as milliseconds; every
//! change of a group's version is announced on [`ConsumerGroups::changes`]
//! so that open sessions can tell their members at once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use tokio::sync::watch;

/// A live member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub client_id: String,
    /// (topic, tag expression, SQL92 expression), sorted.
    pub subscriptions: Vec<(String, String, String)>,
    pub broadcasting: bool,
    pub last_heartbeat_ms: u64,
    /// Queues the member reported consuming: (topic, broker name, queue id).
    pub held: Vec<(String, String, u32)>,
    /// What it is when not our SDK (a RocketMQ 5 client).
    pub client_kind: String,
}

#[derive(Debug, Default)]
struct Group {
    members: BTreeMap<String, Member>,
    /// Bumped on every membership change.
    version: u64,
    /// The open session of each member that has one, by client id: the
    /// member goes when that session ends (not an older, replaced one).
    sessions: HashMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Lock {
    client_id: String,
    expires_ms: u64,
}

#[derive(Debug, Default)]
struct State {
    groups: HashMap<String, Group>,
    /// (group, topic, queue id) -> holder.
    locks: HashMap<(String, String, u32), Lock>,
    /// Numbers sessions.
    last_session: u64,
}

/// Membership and queue locks of every group.
#[derive(Debug)]
pub struct ConsumerGroups {
    member_expire_ms: u64,
    lock_expire_ms: u64,
    state: Mutex<State>,
    /// Bumped whenever some group's version (or offsets) changed.
    changes: watch::Sender<u64>,
}

impl ConsumerGroups {
    pub fn new(member_expire_ms: u64, lock_expire_ms: u64) -> Self {
        ConsumerGroups {
            member_expire_ms,
            lock_expire_ms,
            state: Mutex::new(State::default()),
            changes: watch::Sender::new(0),
        }
    }

    /// Wakes on every change of any group: sessions compare their
    /// group's version with what they last told their member.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Announces a change the versions do not show (an operator's offset
    /// reset).
    pub fn notify(&self) {
        self.changes.send_modify(|n| *n += 1);
    }

    /// A group's version, if anyone is in it.
    pub fn version(&self, group: &str) -> Option<u64> {
        self.lock().groups.get(group).map(|g| g.version)
    }

    /// Records a heartbeat; returns the group's version, which changes when
    /// a member joins or its subscriptions change.
    pub fn heartbeat(&self, group: &str, member: Member) -> u64 {
        let mut state = self.lock();
        let version = Self::join(&mut state, group, member);
        drop(state);
        self.announce(version);
        version.0
    }

    /// A member opens a session: it joins as with a heartbeat and stays
    /// until [`close_session`](Self::close_session) with the returned id
    /// (or until it unregisters or expires). Returns (session id, version).
    pub fn open_session(&self, group: &str, member: Member) -> (u64, u64) {
        let mut state = self.lock();
        state.last_session += 1;
        let session = state.last_session;
        let client_id = member.client_id.clone();
        let version = Self::join(&mut state, group, member);
        if let Some(entry) = state.groups.get_mut(group) {
            entry.sessions.insert(client_id, session);
        }
        drop(state);
        self.announce(version);
        (session, version.0)
    }

    /// A session ended: its member leaves at once, with its locks, unless
    /// a newer session of the same client replaced it. True if it left.
    pub fn close_session(&self, group: &str, client_id: &str, session: u64) -> bool {
        let current = self
            .lock()
            .groups
            .get(group)
            .and_then(|g| g.sessions.get(client_id).copied());
        current == Some(session) && self.unregister(group, client_id)
    }

    /// Adds or refreshes a member; (the group's version, whether it changed).
    fn join(state: &mut State, group: &str, member: Member) -> (u64, bool) {
        let entry = state.groups.entry(group.to_owned()).or_default();
        let changed = match entry.members.get(&member.client_id) {
            Some(known) => {
                known.subscriptions != member.subscriptions
                    || known.broadcasting != member.broadcasting
            }
            None => true,
        };
        entry.members.insert(member.client_id.clone(), member);
        if changed {
            entry.version += 1;
        }
        (entry.version, changed)
    }

    fn announce(&self, (_, changed): (u64, bool)) {
        if changed {
            self.notify();
        }
    }

    /// Removes a member (clean shutdown); its locks go too.
    pub fn unregister(&self, group: &str, client_id: &str) -> bool {
        let mut state = self.lock();
        let removed = state
            .groups
            .get_mut(group)
            .and_then(|g| {
                g.sessions.remove(client_id);
                g.members.remove(client_id).map(|_| g.version += 1)
            })
            .is_some();
        state
            .locks
            .retain(|(g, _, _), lock| !(g == group && lock.client_id == client_id));
        drop(state);
        if removed {
            self.notify();
        }
        removed
    }

    /// The live members of a group, sorted by client id, and its version;
    /// `None` for a group nobody has heartbeated in.
    pub fn members(&self, group: &str) -> Option<(Vec<Member>, u64)> {
        let state = self.lock();
        let entry = state.groups.get(group)?;
        Some((entry.members.values().cloned().collect(), entry.version))
    }

    /// Drops members silent for longer than the expiry; returns
    /// (group, client id) of each.
    pub fn expire(&self, now_ms: u64) -> Vec<(String, String)> {
        let mut state = self.lock();
        let mut expired = Vec::new();
        for (name, group) in &mut state.groups {
            let before = group.members.len();
            let sessions = &mut group.sessions;
            group.members.retain(|id, m| {
                let alive = now_ms.saturating_sub(m.last_heartbeat_ms) <= self.member_expire_ms;
                if !alive {
                    sessions.remove(id);
                    expired.push((name.clone(), id.clone()));
                }
                alive
            });
            if group.members.len() != before {
                group.version += 1;
            }
        }
        let gone: BTreeSet<&(String, String)> = expired.iter().collect();
        state.locks.retain(|(g, _, _), lock| {
            !gone.contains(&(g.clone(), lock.client_id.clone())) && lock.expires_ms > now_ms
        });
        drop(state);
        if !expired.is_empty() {
            self.notify();
        }
        expired
    }

    /// Locks the queues nobody else holds (or holds expired); renews those
    /// `client_id` already holds. Returns the queues it now holds.
    pub fn lock_queues(
        &self,
        group: &str,
        client_id: &str,
        queues: &[(String, u32)],
        now_ms: u64,
    ) -> Vec<(String, u32)> {
        let mut state = self.lock();
        let mut locked = Vec::new();
        for (topic, queue) in queues {
            let key = (group.to_owned(), topic.clone(), *queue);
            let free = state
                .locks
                .get(&key)
                .is_none_or(|lock| lock.client_id == client_id || lock.expires_ms <= now_ms);
            if free {
                state.locks.insert(
                    key,
                    Lock {
                        client_id: client_id.to_owned(),
                        expires_ms: now_ms + self.lock_expire_ms,
                    },
                );
                locked.push((topic.clone(), *queue));
            }
        }
        locked
    }

    /// Releases the queues `client_id` holds among `queues`.
    pub fn unlock_queues(&self, group: &str, client_id: &str, queues: &[(String, u32)]) {
        let mut state = self.lock();
        for (topic, queue) in queues {
            let key = (group.to_owned(), topic.clone(), *queue);
            if state
                .locks
                .get(&key)
                .is_some_and(|lock| lock.client_id == client_id)
            {
                state.locks.remove(&key);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, at: u64) -> Member {
        Member {
            client_id: id.into(),
            subscriptions: vec![("t".into(), "*".into(), String::new())],
            broadcasting: false,
            last_heartbeat_ms: at,
            held: Vec::new(),
            client_kind: String::new(),
        }
    }

    #[test]
    fn joins_and_expiries_change_the_version_heartbeats_do_not() {
        let groups = ConsumerGroups::new(120_000, 60_000);
        let v1 = groups.heartbeat("g", member("a", 0));
        let v2 = groups.heartbeat("g", member("b", 0));
        assert!(v2 > v1);
        assert_eq!(
            groups.heartbeat("g", member("a", 60_000)),
            v2,
            "a plain heartbeat changes nothing"
        );
        let ids =
            |members: Vec<Member>| members.into_iter().map(|m| m.client_id).collect::<Vec<_>>();
        assert_eq!(ids(groups.members("g").unwrap().0), ["a", "b"]);
        assert!(groups.members("nobody").is_none());

        assert!(
            groups.expire(120_000).is_empty(),
            "exactly at the bound is alive"
        );
        let expired = groups.expire(120_001);
        assert_eq!(expired, [("g".to_string(), "b".to_string())]);
        let (members, v3) = groups.members("g").unwrap();
        assert_eq!(ids(members), ["a"]);
        assert!(v3 > v2);
        assert!(groups.unregister("g", "a"));
        assert!(!groups.unregister("g", "a"));
    }

    #[test]
    fn a_member_leaves_with_its_session_and_its_locks_go_too() {
        let groups = ConsumerGroups::new(120_000, 60_000);
        let mut changes = groups.changes();
        let (first, v1) = groups.open_session("g", member("a", 0));
        assert!(changes.has_changed().unwrap(), "a join is announced");
        changes.mark_unchanged();
        groups.heartbeat("g", member("b", 0));
        let queues = vec![("t".to_string(), 0)];
        assert_eq!(groups.lock_queues("g", "a", &queues, 0), queues);

        // The same client reconnects: the old session's end is no reason
        // to drop it.
        let (second, v2) = groups.open_session("g", member("a", 1));
        assert_ne!(first, second);
        assert!(v2 > v1, "b joined meanwhile");
        changes.mark_unchanged();
        assert!(!groups.close_session("g", "a", first));
        assert!(!changes.has_changed().unwrap());
        assert_eq!(groups.members("g").unwrap().0.len(), 2);

        assert!(groups.close_session("g", "a", second));
        assert!(changes.has_changed().unwrap(), "the leave is announced");
        let (members, v3) = groups.members("g").unwrap();
        assert_eq!(members.len(), 1);
        assert!(v3 > v2);
        assert_eq!(
            groups.lock_queues("g", "b", &queues, 2),
            queues,
            "a's lock went with it, long before it would expire"
        );
        assert!(!groups.close_session("g", "a", second), "only once");
        assert!(!groups.close_session("g", "b", second), "b has no session");
    }

    #[test]
    fn a_queue_is_locked_by_one_member_until_released_or_expired() {
        let groups = ConsumerGroups::new(120_000, 60_000);
        let queues = vec![("t".to_string(), 0), ("t".to_string(), 1)];
        assert_eq!(groups.lock_queues("g", "a", &queues, 0), queues);
        assert!(
            groups.lock_queues("g", "b", &queues, 1_000).is_empty(),
            "held by a"
        );
        assert_eq!(
            groups.lock_queues("other", "b", &queues, 1_000).len(),
            2,
            "locks are per group"
        );
        groups.unlock_queues("g", "b", &queues);
        assert!(
            groups.lock_queues("g", "b", &queues[..1], 2_000).is_empty(),
            "b cannot release a's lock"
        );
        groups.unlock_queues("g", "a", &queues[..1]);
        assert_eq!(groups.lock_queues("g", "b", &queues, 3_000), queues[..1]);
        assert_eq!(
            groups.lock_queues("g", "b", &queues, 60_001),
            queues,
            "a's lock on queue 1 expired"
        );
    }
}
