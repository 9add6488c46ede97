//! Accepting connections without letting clients exhaust the process.
//!
//! Every socket costs a file descriptor, and a server out of descriptors
//! cannot open the files it needs (a broker's checkpoint) and spins on
//! failing accepts. So: the soft descriptor limit is raised to the hard one
//! at start; connections are capped (by default at half the descriptors,
//! leaving the rest to the process's files) and those beyond the cap are
//! closed at once; a connection from which nothing arrived for
//! `idle_timeout` is closed (live clients answer the server's keepalive
//! pings, so only silent sockets are); and a failing accept backs off,
//! doubling its pause up to a second, instead of retrying at once
//! (mini-redis's accept loop).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::transport::server::{Connected, TcpConnectInfo};

/// Limits on the connections a server holds.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Most connections at once; 0 derives it from the descriptor limit.
    pub max_connections: usize,
    /// A connection silent for this long is closed.
    pub idle_timeout: Duration,
    /// A connection silent for this long is pinged (HTTP/2 keepalive)...
    pub keepalive_interval: Duration,
    /// ...and closed when the ping goes unanswered this long: a dead or
    /// frozen peer loses its connection, and its streams end.
    pub keepalive_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 0,
            idle_timeout: Duration::from_secs(60),
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
        }
    }
}

/// The longest pause between failing accepts.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// How often refusals beyond the cap are logged at most.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the soft
/// limit now in force.
pub fn raise_descriptor_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid resource and a struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    limit.rlim_cur
}

/// The connection cap `limits` asks for, with 0 meaning half the
/// descriptor limit (at least 16, at most 65,536).
pub fn connection_cap(limits: &ConnectionLimits, descriptors: u64) -> usize {
    if limits.max_connections > 0 {
        return limits.max_connections;
    }
    usize::try_from(descriptors / 2)
        .unwrap_or(usize::MAX)
        .clamp(16, 65_536)
}

/// The connections accepted on `listener`, within `limits`.
pub fn incoming(
    listener: TcpListener,
    limits: ConnectionLimits,
) -> impl Stream<Item = io::Result<Connection>> {
    let cap = connection_cap(&limits, raise_descriptor_limit());
    tracing::debug!(max_connections = cap, "accepting connections");
    let state = Accepting {
        listener,
        slots: Arc::new(Semaphore::new(cap)),
        cap,
        idle_timeout: limits.idle_timeout,
        backoff: None,
        last_refusal_log: None,
        refused: 0,
    };
    futures_util::stream::unfold(state, |mut state| async move {
        let connection = state.next().await;
        Some((Ok(connection), state))
    })
}

struct Accepting {
    listener: TcpListener,
    slots: Arc<Semaphore>,
    cap: usize,
    idle_timeout: Duration,
    backoff: Option<Duration>,
    last_refusal_log: Option<Instant>,
    refused: u64,
}

impl Accepting {
    /// The next connection within the cap; waits out failing accepts.
    async fn next(&mut self) -> Connection {
        loop {
            let stream = match self.listener.accept().await {
                Ok((stream, _)) => {
                    if self.backoff.take().is_some() {
                        tracing::info!("accepting connections again");
                    }
                    stream
                }
                Err(err) => {
                    self.pause_after(&err).await;
                    continue;
                }
            };
            let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() else {
                self.refuse(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            return Connection {
                stream,
                _slot: slot,
                idle_timeout: self.idle_timeout,
                last_read: Instant::now(),
                idle: Box::pin(tokio::time::sleep(self.idle_timeout)),
            };
        }
    }

    /// Backs off after a failed accept: out of descriptors or memory, it
    /// would fail again at once.
    async fn pause_after(&mut self, err: &io::Error) {
        let resource = matches!(
            err.raw_os_error(),
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
        );
        if !resource {
            // The peer gave up before we took it (ECONNABORTED and kin).
            tracing::debug!(error = %err, "accept failed");
            return;
        }
        let pause = match self.backoff {
            None => {
                tracing::warn!(error = %err, "cannot accept connections; backing off until descriptors free");
                Duration::from_millis(5)
            }
            Some(pause) => (pause * 2).min(MAX_BACKOFF),
        };
        self.backoff = Some(pause);
        tokio::time::sleep(pause).await;
    }

    fn refuse(&mut self, stream: TcpStream) {
        drop(stream);
        self.refused += 1;
        let due = self
            .last_refusal_log
            .is_none_or(|at| at.elapsed() >= REFUSAL_LOG_EVERY);
        if due {
            tracing::warn!(
                max_connections = self.cap,
                refused = self.refused,
                "connection refused: too many connections (max_connections)"
            );
            self.last_refusal_log = Some(Instant::now());
            self.refused = 0;
        }
    }
}

/// An accepted connection: holds its slot under the cap until it closes,
/// and ends itself once nothing arrived for the idle timeout.
pub struct Connection {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
    idle_timeout: Duration,
    last_read: Instant,
    /// Fires at the idle deadline; moved on lazily when data came since.
    idle: Pin<Box<tokio::time::Sleep>>,
}

impl Connection {
    /// Looks at the first bytes without taking them (is it TLS?).
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.peek(buf).await
    }
}

impl Connected for Connection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    this.last_read = Instant::now();
                }
                Poll::Ready(result)
            }
            Poll::Pending => loop {
                if this.idle.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                let deadline = this.last_read + this.idle_timeout;
                if deadline <= Instant::now() {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "connection idle for longer than idle_timeout",
                    )));
                }
                this.idle.as_mut().reset(deadline.into());
            },
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use tokio::io::AsyncReadExt;

    #[test]
    fn the_cap_defaults_to_half_the_descriptors() {
        let auto = ConnectionLimits::default();
        assert_eq!(connection_cap(&auto, 256), 128);
        assert_eq!(connection_cap(&auto, 10), 16);
        assert_eq!(connection_cap(&auto, 1 << 30), 65_536);
        let fixed = ConnectionLimits {
            max_connections: 5,
            ..auto
        };
        assert_eq!(connection_cap(&fixed, 256), 5);
    }

    #[tokio::test]
    async fn connections_beyond_the_cap_are_closed_and_silent_ones_time_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = ConnectionLimits {
            max_connections: 2,
            idle_timeout: Duration::from_millis(300),
            ..ConnectionLimits::default()
        };
        let mut accepted = Box::pin(incoming(listener, limits));
        let mut clients = Vec::new();
        for _ in 0..3 {
            clients.push(TcpStream::connect(addr).await.unwrap());
        }
        let mut first = accepted.next().await.unwrap().unwrap();
        let _second = accepted.next().await.unwrap().unwrap();
        // The third waits in the listener until the stream is polled: it
        // is then refused (closed), and the client reads the end.
        let pending = tokio::spawn(async move { accepted.next().await.map(|c| c.is_ok()) });
        let mut byte = [0u8; 1];
        let closed = tokio::time::timeout(Duration::from_secs(5), clients[2].read(&mut byte))
            .await
            .unwrap();
        assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
        pending.abort();

        // Nothing arrives on the first: it ends itself.
        let started = Instant::now();
        let mut buf = [0u8; 8];
        let err = first.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(250));
    }
}
