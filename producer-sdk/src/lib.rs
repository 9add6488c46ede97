//! The producer SDK: fetches topic routes from the nameservers (through
//! `mq-nameserver-client`), round-robins over the writable queues, records
//! broker faults in a latency-fault table, skips faulty brokers while they
//! are unavailable, and retries.
//!
//! Filled by the issue that adds the broker's send path; nothing is exposed
//! before it works.
