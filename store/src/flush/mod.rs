//! Getting appended records onto the disk: the [`flusher`] thread, and the
//! [`group_commit`] through which sync-flush appends wait for it.

pub mod committer;
pub mod flusher;
pub mod group_commit;
