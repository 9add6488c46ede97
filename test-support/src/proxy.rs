//! A TCP proxy a test can cut: the network partition between two
//! processes on loopback. Cut, its connections are closed and new ones are
//! closed as soon as they arrive (the peer is down). Silenced, nothing
//! passes and nothing is closed: connections stay open and quiet, new ones
//! are accepted and never answered, as when a network drops every packet;
//! only timeouts and keepalives notice. Healed, it forwards again (held
//! connections are closed then).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::AbortHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Forwarding,
    Cut,
    Silent,
}

#[derive(Debug)]
pub struct Proxy {
    /// Where to connect instead of the target.
    pub addr: SocketAddr,
    mode: watch::Sender<Mode>,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
    accepting: AbortHandle,
}

impl Proxy {
    /// Forwards a free loopback port to `target`. Within a Tokio runtime.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (mode, watching) = watch::channel(Mode::Forwarding);
        let connections = Arc::new(Mutex::new(Vec::new()));
        let open = Arc::clone(&connections);
        let accepting = tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    continue;
                };
                let now = *watching.borrow();
                if now == Mode::Cut {
                    continue; // dropped: closed at once
                }
                let forward = tokio::spawn(forward(inbound, target, watching.clone()));
                open.lock().unwrap().push(forward.abort_handle());
            }
        })
        .abort_handle();
        Proxy {
            addr,
            mode,
            connections,
            accepting,
        }
    }

    /// Partitions as a dead peer does: closes every connection and
    /// refuses new ones.
    pub fn cut(&self) {
        self.mode.send_replace(Mode::Cut);
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }

    /// Partitions as a network dropping every packet does: connections
    /// stay open and nothing passes either way.
    pub fn silence(&self) {
        self.mode.send_replace(Mode::Silent);
    }

    /// Heals the partition.
    pub fn heal(&self) {
        self.mode.send_replace(Mode::Forwarding);
    }
}

/// Copies both ways while forwarding; silenced, holds both ends open and
/// quiet until healed or cut.
async fn forward(mut inbound: TcpStream, target: SocketAddr, mut mode: watch::Receiver<Mode>) {
    if *mode.borrow_and_update() == Mode::Silent {
        let _ = mode.wait_for(|m| *m != Mode::Silent).await;
        return;
    }
    let Ok(mut outbound) = TcpStream::connect(target).await else {
        return;
    };
    let silenced = tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => false,
        silenced = mode.wait_for(|m| *m == Mode::Silent) => silenced.is_ok(),
    };
    if silenced {
        let _ = mode.wait_for(|m| *m != Mode::Silent).await;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accepting.abort();
        self.cut();
    }
}
