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
