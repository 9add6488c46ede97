//! The TCP connection under a client's TLS, read through a buffer.
//!
//! rustls reads ciphertext at most 4 KiB at a time, so a pull response of
//! a few hundred KiB would cost four read calls or more per 16 KiB record;
//! reading through [`TLS_READ_BUFFER`] makes it one call per 64 KiB.
//! tonic still runs the TLS handshake on top (the endpoint's TLS config),
//! and its connect timeout around it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use mq_common::http2::TLS_READ_BUFFER;
use tokio::io::BufReader;
use tokio::net::TcpStream;

type Connecting = Pin<Box<dyn Future<Output = Result<BufferedIo, ConnectFailed>> + Send>>;
type ConnectFailed = <HttpConnector as tower::Service<Uri>>::Error;

/// What the connector hands tonic: a TCP stream with a read buffer.
pub(crate) type BufferedIo = TokioIo<BufReader<TcpStream>>;

/// Connects TCP (no delay, any scheme: TLS follows) with a read buffer.
#[derive(Clone)]
pub(crate) struct BufferedTcp {
    http: HttpConnector,
}

impl BufferedTcp {
    pub(crate) fn new() -> Self {
        let mut http = HttpConnector::new();
        // The endpoint is https://: TLS is layered on by tonic.
        http.enforce_http(false);
        http.set_nodelay(true);
        BufferedTcp { http }
    }
}

impl tower::Service<Uri> for BufferedTcp {
    type Response = BufferedIo;
    type Error = ConnectFailed;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.http.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.http.call(uri);
        Box::pin(async move {
            let tcp = connecting.await?.into_inner();
            Ok(TokioIo::new(BufReader::with_capacity(TLS_READ_BUFFER, tcp)))
        })
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tower::Service;

    use super::*;

    #[tokio::test]
    async fn connects_an_https_uri_and_reads_through_the_buffer() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let serving = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            socket.write_all(&[7u8; 100_000]).await.unwrap();
        });
        let uri: Uri = format!("https://{addr}").parse().unwrap();
        let io = BufferedTcp::new().call(uri).await.unwrap();
        let mut buffered = io.into_inner();
        assert!(buffered.get_ref().nodelay().unwrap());
        serving.await.unwrap();
        // Everything has arrived: rustls's first 4 KiB read is served by
        // one read of the whole buffer.
        let mut peeked = vec![0u8; 100_000];
        for _ in 0..100 {
            if buffered.get_ref().peek(&mut peeked).await.unwrap() == peeked.len() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let mut first = [0u8; 4096];
        buffered.read_exact(&mut first).await.unwrap();
        assert_eq!(buffered.buffer().len(), TLS_READ_BUFFER - first.len());
        let mut rest = Vec::new();
        buffered.read_to_end(&mut rest).await.unwrap();
        assert_eq!(first.len() + rest.len(), 100_000);
        assert!(rest.iter().chain(&first).all(|&b| b == 7));
    }
}
