//! HTTP/2 flow-control windows shared by the broker and its clients.
//!
//! HTTP/2 starts every stream and connection with a 64 KiB window: a 64 KiB
//! message or a pull response of a few dozen messages then stalls for a
//! WINDOW_UPDATE round trip per window. Brokers move far more than that per
//! request, so both ends announce larger windows.

/// Per-stream receive window, in bytes.
pub const STREAM_WINDOW: u32 = 4 << 20;
/// Per-connection receive window, in bytes (shared by all its streams).
pub const CONNECTION_WINDOW: u32 = 16 << 20;
