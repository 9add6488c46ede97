//! Every ConsumeQueue of the store, by topic and queue id.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::consume_queue::{ConsumeQueue, QueueRecovery};
use crate::error::{IoContext, StoreError};

type Queues = HashMap<String, HashMap<u32, Arc<ConsumeQueue>>>;

#[derive(Debug)]
pub struct ConsumeQueues {
    root: PathBuf,
    entries_per_file: u64,
    queues: RwLock<Queues>,
}

impl ConsumeQueues {
    /// Opens every queue under `root` (`root/TOPIC/QUEUE_ID/`), recovering
    /// each against `commitlog_end`. Also returns the lowest CommitLog
    /// offset from which a replay would complete every damaged queue.
    pub fn open(
        root: &Path,
        entries_per_file: u64,
        commitlog_end: u64,
    ) -> Result<(Self, Option<u64>), StoreError> {
        crate::durable::create_dir_all(root).context(|| format!("creating {}", root.display()))?;
        let mut queues = Queues::new();
        let mut replay_from: Option<u64> = None;
        for topic_dir in read_dirs(root)? {
            let topic = file_name(&topic_dir);
            for queue_dir in read_dirs(&topic_dir)? {
                let name = file_name(&queue_dir);
                let Ok(queue_id) = name.parse::<u32>() else {
                    tracing::warn!(dir = %queue_dir.display(), "ignoring a ConsumeQueue directory that is not a queue id");
                    continue;
                };
                let (queue, QueueRecovery { damaged, last_end }) = ConsumeQueue::open(
                    &queue_dir,
                    &topic,
                    queue_id,
                    entries_per_file,
                    commitlog_end,
                )?;
                if damaged {
                    tracing::warn!(topic = %topic, queue_id, last_end, "ConsumeQueue was damaged; it will be rebuilt from the CommitLog");
                    replay_from = Some(replay_from.map_or(last_end, |r| r.min(last_end)));
                }
                queues
                    .entry(topic.clone())
                    .or_default()
                    .insert(queue_id, Arc::new(queue));
            }
        }
        let registry = ConsumeQueues {
            root: root.to_owned(),
            entries_per_file,
            queues: RwLock::new(queues),
        };
        Ok((registry, replay_from))
    }

    pub fn get(&self, topic: &str, queue_id: u32) -> Option<Arc<ConsumeQueue>> {
        self.read().get(topic)?.get(&queue_id).cloned()
    }

    /// The queue, created empty if it does not exist yet.
    pub fn get_or_create(
        &self,
        topic: &str,
        queue_id: u32,
    ) -> Result<Arc<ConsumeQueue>, StoreError> {
        if let Some(queue) = self.get(topic, queue_id) {
            return Ok(queue);
        }
        let mut queues = self.queues.write().unwrap_or_else(|e| e.into_inner());
        let by_id = queues.entry(topic.to_owned()).or_default();
        if let Some(queue) = by_id.get(&queue_id) {
            return Ok(Arc::clone(queue));
        }
        let dir = self.root.join(topic).join(queue_id.to_string());
        let (queue, _) =
            ConsumeQueue::open(&dir, topic, queue_id, self.entries_per_file, u64::MAX)?;
        let queue = Arc::new(queue);
        by_id.insert(queue_id, Arc::clone(&queue));
        Ok(queue)
    }

    /// Removes every queue of `topic` and deletes their files. Readers
    /// holding a queue keep its mappings until they let go.
    pub fn remove_topic(&self, topic: &str) -> Result<usize, StoreError> {
        let removed = self
            .queues
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(topic);
        let dir = self.root.join(topic);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(StoreError::io(format!("deleting {}", dir.display()), err)),
        }
        Ok(removed.map_or(0, |queues| queues.len()))
    }

    /// Every queue.
    pub fn all(&self) -> Vec<Arc<ConsumeQueue>> {
        self.read()
            .values()
            .flat_map(|by_id| by_id.values().cloned())
            .collect()
    }

    /// Writes every queue's dirty entries to disk.
    pub fn flush_all(&self) -> Result<(), StoreError> {
        for queue in self.all() {
            queue.flush()?;
        }
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Queues> {
        self.queues.read().unwrap_or_else(|e| e.into_inner())
    }
}

fn read_dirs(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(dir).context(|| format!("reading {}", dir.display()))? {
        let path = entry
            .context(|| format!("reading {}", dir.display()))?
            .path();
        if path.is_dir() {
            dirs.push(path);
        }
    }
    dirs.sort();
    Ok(dirs)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
