//! What producers, brokers and consumers agree a message carries besides
//! its body: flag bits and the names of the properties they set and read.
//! One place, so that a name cannot drift between the writer and a reader.

/// Message flag bit: the producer compressed the body (LZ4, size
/// prepended); consumers decompress it.
pub const FLAG_COMPRESSED: u32 = 1;

/// Names of message properties with a meaning.
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
}
