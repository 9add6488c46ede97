//! What producers, brokers and consumers agree a message carries besides
//! its body: flag bits and the names of the properties they set and read.
//! One place, so that a name cannot drift between the writer and a reader.

/// Message flag bit: the producer compressed the body (LZ4, size
/// prepended); consumers decompress it.
pub const FLAG_COMPRESSED: u32 = 1;

/// Names of message properties with a meaning.
/// Metadata a broker puts on a refused send's status when nothing of it
/// was stored: an idempotent producer may then send it anywhere, with a
/// new number, instead of retrying it on its queue.
pub const NOTHING_STORED: &str = "mq-nothing-stored";

pub mod property {
    /// The message's tag, one word used for broker-side filtering.
    pub const TAGS: &str = "TAGS";
    /// Business keys, separated by spaces, indexed for lookups by key.
    pub const KEYS: &str = "KEYS";
    /// The unique message id set by the producer, indexed for lookup.
    pub const UNIQUE_ID: &str = "UNIQ_KEY";
    /// The topic a retried or dead-lettered message was first consumed
    /// from (set by the broker's retry path, read by consumers).
    pub const RETRY_TOPIC: &str = "RETRY_TOPIC";
    /// The queue it was first consumed from (broker's retry path).
    pub const ORIGIN_QUEUE_ID: &str = "ORIGIN_QUEUE_ID";
    /// The delay level a producer or the retry path asked for.
    pub const DELAY: &str = "DELAY";
    /// Scheduled messages: the topic delivered to when due.
    pub const REAL_TOPIC: &str = "REAL_TOPIC";
    /// Scheduled messages: the queue delivered to when due.
    pub const REAL_QID: &str = "REAL_QID";
    /// Scheduled messages: when due, ms since the epoch.
    pub const DELIVER_AT: &str = "TIMER_DELIVER_MS";
    /// Scheduled messages: when this stop in a schedule queue ends.
    pub const FIRE_AT: &str = "SCHEDULE_FIRE_MS";
    /// `queue:offset` of the schedule entry a record was fired from; lets
    /// a restarted scheduler tell what it already fired.
    pub const FIRED_FROM: &str = "SCHEDULE_FIRED_FROM";
    /// `true` on a transactional message (half, and once committed).
    pub const TRANSACTION: &str = "TRAN_MSG";
    /// The producer group of a transactional message: the group asked
    /// for the outcome when it is not told.
    pub const PRODUCER_GROUP: &str = "PGROUP";
    /// Half messages: the topic the message goes to when committed.
    pub const TRANSACTION_TOPIC: &str = "TRAN_REAL_TOPIC";
    /// Half messages: the queue it goes to when committed.
    pub const TRANSACTION_QUEUE: &str = "TRAN_REAL_QID";
    /// The half queue offset a record ends (the committed message, a
    /// rollback's op record, a discarded copy): lets a restarted broker
    /// tell which transactions ended.
    pub const TRANSACTION_END_OF: &str = "TRAN_HALF_OFFSET";
    /// An idempotent producer's id (16 hex digits) and its number for the
    /// message in its queue, `<id>-<number>`: lets a broker tell a retried
    /// send it already stored.
    pub const PRODUCER_SEQUENCE: &str = "PRODUCER_SEQ";
}
