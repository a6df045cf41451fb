//! A minimal HTTP/1.1 server on hyper for lookout's own small servers: the demo site and the demo's webhook
//! receiver (and, in tests, targets and receivers). The dashboard and API are `lookout-web`'s axum router.

use std::future::Future;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

pub type Body = Full<Bytes>;

/// A request with its body read (up to 1 MiB) and the peer address.
#[derive(Debug)]
pub struct ServerRequest {
    pub method: http::Method,
    pub uri: http::Uri,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    pub peer: SocketAddr,
}

/// Builds a response; header values that are not valid are dropped rather than panicking.
pub fn respond(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    r
}

/// Serves `handler` on `listener` until the task is dropped or aborted; request bodies up to 1 MiB.
pub async fn serve<F, Fut>(listener: TcpListener, handler: F)
where
    F: Fn(ServerRequest) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    serve_up_to(listener, 1024 * 1024, handler).await
}

/// [`serve`] with request bodies up to `max_body` bytes (a receiver of a storm's one message takes megabytes).
pub async fn serve_up_to<F, Fut>(listener: TcpListener, max_body: usize, handler: F)
where
    F: Fn(ServerRequest) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(error = %e, "Accept failed.");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let handler = handler.clone();
                async move {
                    let (parts, body) = req.into_parts();
                    let body = match Limited::new(body, max_body).collect().await {
                        Ok(b) => b.to_bytes(),
                        Err(_) => {
                            return Ok::<_, hyper::Error>(respond(413, "text/plain", "body too large or broken\n"));
                        }
                    };
                    let incoming =
                        ServerRequest { method: parts.method, uri: parts.uri, headers: parts.headers, body, peer };
                    Ok(handler(incoming).await)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}
