//! The HTTP side door of every server: Prometheus metrics at `/metrics`
//! (text exposition format) and `/healthz` for probes that cannot speak
//! gRPC. HTTP/1.1 with hyper; everything else is 404.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

/// The content type of the text exposition format.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What `/metrics` shows: a registry, and a hook that refreshes gauges
/// (lags, sizes) just before each scrape.
pub struct Exporter {
    pub registry: Registry,
    pub before_scrape: Box<dyn Fn() + Send + Sync>,
}

impl Exporter {
    fn render(&self) -> String {
        (self.before_scrape)();
        let mut text = String::new();
        if let Err(err) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(error = %err, "cannot encode metrics");
        }
        text
    }
}

/// Serves `/metrics` and `/healthz` on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    exporter: Arc<Exporter>,
    tls: Option<crate::tls::ServerTls>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(error = %err, "metrics: accept failed");
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        let exporter = Arc::clone(&exporter);
        let tls = tls.clone();
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                    let exporter = Arc::clone(&exporter);
                    async move { Ok::<_, Infallible>(answer(&exporter, request.uri().path())) }
                });
            let http = hyper::server::conn::http1::Builder::new();
            match tls {
                None => {
                    let _ = http.serve_connection(TokioIo::new(stream), service).await;
                }
                Some(tls) => {
                    let handshake = tokio::time::timeout(
                        std::time::Duration::from_secs(10),
                        tls.acceptor().accept(stream),
                    );
                    if let Ok(Ok(stream)) = handshake.await {
                        let _ = http.serve_connection(TokioIo::new(stream), service).await;
                    }
                }
            }
        });
    }
}

fn answer(exporter: &Exporter, path: &str) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match path {
        "/metrics" => (StatusCode::OK, CONTENT_TYPE, exporter.render()),
        "/healthz" => (StatusCode::OK, "text/plain", "ok\n".to_owned()),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: try /metrics or /healthz\n".to_owned(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}
