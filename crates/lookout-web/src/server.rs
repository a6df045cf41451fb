//! The web side's own accept loop (hyper's HTTP/1 connection API under the axum router) instead of `axum::serve`,
//! because a monitor's web port must never take descriptors from its probes and channels:
//!
//! - **At most `limit` connections**, and `limit` is at most half the process's descriptor limit (probes,
//!   channels, log files and the store keep the rest). When a new connection would exceed it, the oldest
//!   connection that is not serving a request is closed to make room — slow or silent clients (slowloris) are
//!   the ones that go, a dashboard's request gets through. If every connection is busy, the new one is closed.
//! - **A complete request header within [`HEADER_TIMEOUT`]** of opening the connection or of the previous response:
//!   a client that sends nothing, or one byte now and then, is closed (hyper's header timeout, and a watchdog for
//!   the time before the first byte and between requests).
//! - **A request is answered within [`REQUEST_TIMEOUT`]** (body reading included; the event stream excepted), see
//!   `auth::guard`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{Notify, watch};
use tower::Service;

/// How long a connection may take to send a complete request header, counted from its opening or from the end of
/// its previous response (so it is also the keep-alive idle timeout).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request may take, body reading included (the event stream excepted).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest request body accepted (after authentication; nothing is read before it).
pub const BODY_LIMIT: usize = 64 * 1024;
/// Connections when `[web] max_connections` is not set (and the descriptor limit allows).
const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// The largest request header hyper buffers.
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Raises the soft open-files limit (RLIMIT_NOFILE) to the hard limit, as far as the kernel allows, and returns
/// the soft limit in force afterwards. Many distributions start services at 1024 soft / much more hard; a monitor
/// with hundreds of targets and a busy dashboard needs more, and asking costs nothing.
pub fn raise_descriptor_limit() -> Option<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard {
        // An unlimited hard limit cannot be the soft one for files (the kernel caps it at fs.nr_open).
        let want = hard.min(1 << 20);
        match setrlimit(Resource::RLIMIT_NOFILE, want, hard) {
            Ok(()) => tracing::info!(from = soft, to = want, "Raised the open-files limit to the hard limit."),
            Err(e) => tracing::warn!(soft, hard, error = %e, "Cannot raise the open-files limit; keeping it."),
        }
    }
    getrlimit(Resource::RLIMIT_NOFILE).ok().map(|(soft, _)| soft)
}

/// The connection limit: `[web] max_connections` (default 1024), never above half the soft descriptor limit.
pub fn connection_limit(configured: Option<usize>) -> usize {
    let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(soft, _)| usize::try_from(soft).unwrap_or(usize::MAX))
        .unwrap_or(1024);
    let half = (soft / 2).max(8);
    let want = configured.unwrap_or(DEFAULT_MAX_CONNECTIONS);
    if want > half {
        tracing::warn!(
            max_connections = want,
            open_files_limit = soft,
            using = half,
            "[web] max_connections is more than half the open-files limit; using half, so probes and channels keep descriptors."
        );
    }
    want.min(half)
}

/// One open connection as the registry sees it.
struct Conn {
    /// Requests in flight, responses still being written included.
    busy: AtomicUsize,
    /// When `busy` last became 0 (ms since the registry's start).
    idle_since: AtomicU64,
    /// Told when the connection is evicted.
    close: Notify,
}

/// The open connections, oldest first, to count them and to choose one to evict.
struct Registry {
    epoch: Instant,
    next: AtomicU64,
    conns: Mutex<BTreeMap<u64, Arc<Conn>>>,
}

impl Registry {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Conn>>> {
        self.conns.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a new connection; if that makes more than `limit`, evicts the oldest idle other one, and if
    /// none is idle returns `None` (the new connection is to be closed).
    fn admit(self: &Arc<Self>, limit: usize) -> Option<(Slot, Arc<Conn>)> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            busy: AtomicUsize::new(0),
            idle_since: AtomicU64::new(self.now_ms()),
            close: Notify::new(),
        });
        let mut conns = self.lock();
        if conns.len() >= limit {
            let idle = conns.iter().find(|(_, c)| c.busy.load(Ordering::Acquire) == 0).map(|(id, _)| *id);
            let evicted = idle.and_then(|id| conns.remove(&id))?;
            evicted.close.notify_one();
        }
        conns.insert(id, conn.clone());
        Some((Slot { registry: self.clone(), id }, conn))
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    fn close_all(&self) {
        for c in self.lock().values() {
            c.close.notify_one();
        }
    }
}

/// Removes its connection from the registry when the connection's task ends.
struct Slot {
    registry: Arc<Registry>,
    id: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
    }
}

/// Counts a request in flight until its response body is dropped (written or abandoned).
struct Busy {
    conn: Arc<Conn>,
    registry: Arc<Registry>,
}

impl Busy {
    fn new(conn: Arc<Conn>, registry: Arc<Registry>) -> Busy {
        conn.busy.fetch_add(1, Ordering::AcqRel);
        Busy { conn, registry }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.conn.idle_since.store(self.registry.now_ms(), Ordering::Release);
        self.conn.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Accepts connections on `listener` and serves `app` on each within the limits above, until `shutdown` turns
/// true; then lets requests in flight finish for up to two seconds (open pages keep their event streams open).
pub async fn serve_with_limits(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    limit: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    let registry =
        Arc::new(Registry { epoch: Instant::now(), next: AtomicU64::new(0), conns: Mutex::new(BTreeMap::new()) });
    let mut tasks = tokio::task::JoinSet::new();
    let mut last_warning: Option<Instant> = None;
    let mut warn = |what: &str, error: &dyn std::fmt::Display| {
        // At most one line a minute: a flood must not turn into a flood of log lines.
        if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
            last_warning = Some(Instant::now());
            tracing::warn!(limit, error = %error, "{what}");
        }
    };
    loop {
        while tasks.try_join_next().is_some() {}
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait_for(|s| *s) => break,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                // Out of descriptors (EMFILE/ENFILE) or a connection reset before accept: wait a moment rather
                // than spin.
                warn("Cannot accept a web connection; retrying in 100 ms.", &e);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some((slot, conn)) = registry.admit(limit) else {
            warn("Every web connection is serving a request; closed a new one.", &"connection limit reached");
            drop(tcp);
            continue;
        };
        tasks.spawn(serve_connection(tcp, app.clone(), registry.clone(), slot, conn, shutdown.clone()));
    }
    registry.close_all();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while !tasks.is_empty() {
        if tokio::time::timeout_at(deadline, tasks.join_next()).await.is_err() {
            tracing::info!(open = registry.len(), "Closed the web connections still open at shutdown.");
            tasks.abort_all();
            break;
        }
    }
}

async fn serve_connection(
    tcp: tokio::net::TcpStream,
    app: axum::Router,
    registry: Arc<Registry>,
    slot: Slot,
    conn: Arc<Conn>,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = tcp.set_nodelay(true);
    let (c, r) = (conn.clone(), registry.clone());
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let busy = Busy::new(c.clone(), r.clone());
        let mut app = app.clone();
        async move {
            let _ = std::future::poll_fn(|cx| Service::<Request<Incoming>>::poll_ready(&mut app, cx)).await;
            let response = match app.call(req).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            // The request counts as in flight until its body is written: an event stream is never "idle".
            let (parts, body) = response.into_parts();
            let body = Body::new(body.map_frame(move |frame| {
                let _in_flight = &busy;
                frame
            }));
            Ok::<_, Infallible>(Response::from_parts(parts, body))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT).max_buf_size(MAX_HEADER_BYTES);
    let connection = builder.serve_connection(TokioIo::new(tcp), service);
    tokio::pin!(connection);
    let mut stopping = false;
    loop {
        let idle_for = registry.now_ms().saturating_sub(conn.idle_since.load(Ordering::Acquire));
        let idle_for = Duration::from_millis(idle_for);
        let check_in = HEADER_TIMEOUT.saturating_sub(idle_for).max(Duration::from_millis(100));
        tokio::select! {
            _ = &mut connection => break,
            () = conn.close.notified() => {
                if stopping || conn.busy.load(Ordering::Acquire) == 0 {
                    break;
                }
                // Shutting down with a request in flight: finish it, then close.
                stopping = true;
                connection.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep(check_in) => {
                let idle = conn.busy.load(Ordering::Acquire) == 0;
                let since = registry.now_ms().saturating_sub(conn.idle_since.load(Ordering::Acquire));
                if idle && Duration::from_millis(since) >= HEADER_TIMEOUT {
                    break;
                }
            }
            _ = shutdown.wait_for(|s| *s), if !stopping => {
                stopping = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
    drop(slot);
}
