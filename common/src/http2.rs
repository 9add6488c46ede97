//! HTTP/2 flow-control windows and the TLS read buffer shared by the
//! servers and their clients.
//!
//! HTTP/2 starts every stream and connection with a 64 KiB window: a 64 KiB
//! message or a pull response of a few dozen messages then stalls for a
//! WINDOW_UPDATE round trip per window. Brokers move far more than that per
//! request, so both ends announce larger windows.

/// Per-stream receive window, in bytes.
pub const STREAM_WINDOW: u32 = 4 << 20;
/// Per-connection receive window, in bytes (shared by all its streams).
pub const CONNECTION_WINDOW: u32 = 16 << 20;

/// The read buffer under a TLS session, in bytes. rustls reads ciphertext
/// at most 4 KiB at a time, so a bulk stream (a pull response, a batch
/// sent, a replica following) would cost four read calls or more per
/// 16 KiB record; the buffer makes it one call per 64 KiB.
pub const TLS_READ_BUFFER: usize = 64 * 1024;

/// Clients ping a broker connection this often while it is open, idle or
/// not: a machine that died (or a network that dropped) without closing
/// the connection leaves a long-polling pull or a send waiting for its
/// whole timeout otherwise (20 s for a pull), where the ping's answer
/// missing for [`KEEPALIVE_TIMEOUT`] fails it in seconds.
pub const KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);
/// How long a ping may go unanswered before the connection is dropped.
pub const KEEPALIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);
