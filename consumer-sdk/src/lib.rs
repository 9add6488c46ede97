//! The consumer SDK: consumer groups (clustering and broadcasting),
//! rebalance, long-polling pull, push consumers (concurrent and ordered),
//! offsets, retry and dead-letter queues.
//!
//! Filled by the issue that adds the broker's pull path; nothing is exposed
//! before it works.
