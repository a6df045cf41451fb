//! HTTP client with per-phase timings (DNS, connect, TLS, first byte, total), redirects on or off,
//! TLS verification on or off and a body cap. HTTP/1.1, and HTTP/2 over TLS when the caller allows it
//! ([`fetch_with`]) and the server chooses it by ALPN; the version used is `Observation::protocol`.
//! Notifiers keep HTTP/1.1 ([`fetch`]): a webhook gains nothing from h2, and its receivers are tested on 1.1.
//!
//! Built on hyper's connection API rather than a high-level client because a monitor needs to see each
//! phase separately, and because every failure must come back as a classified result, not an opaque error.
//! Notifiers use the same client, so that one code path owns timeouts and TLS.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{AUTHORIZATION, HOST, HeaderValue, LOCATION, USER_AGENT};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use lookout_core::url::{Redacted, credentials, parse_port, split_authority};
use lookout_core::{HttpVersion, Observation, ProbeError, ProbeErrorKind, ProbeKind, Timestamp};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant as TokioInstant, timeout_at};

use crate::{net, tls};

const MAX_REDIRECTS: usize = 10;
const DEFAULT_USER_AGENT: &str = concat!("lookout/", env!("CARGO_PKG_VERSION"));

/// One HTTP request as a probe or notifier makes it.
///
/// Credentials in the URL's userinfo (`http://user:pass@host/`) are sent as `Authorization: Basic`, unless
/// `headers` has an `Authorization` of its own; they never reach the `Host` header, and `Debug` hides them (and
/// every header value, which may be a token).
#[derive(Clone)]
pub struct HttpRequest {
    pub url: Uri,
    pub method: Method,
    pub headers: Vec<(String, String)>,
    pub body: Option<Bytes>,
    pub follow_redirects: bool,
    pub verify_tls: bool,
    /// Covers the whole exchange, redirects included.
    pub timeout: Duration,
    /// Bytes of body kept; the rest is discarded and `body_truncated` set.
    pub max_body: usize,
}

impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = self.url.to_string();
        let headers: Vec<(&str, &str)> = self.headers.iter().map(|(k, _)| (k.as_str(), "***")).collect();
        f.debug_struct("HttpRequest")
            .field("url", &Redacted(&url))
            .field("method", &self.method)
            .field("headers", &headers)
            .field("body", &self.body.as_ref().map(Bytes::len))
            .field("follow_redirects", &self.follow_redirects)
            .field("verify_tls", &self.verify_tls)
            .field("timeout", &self.timeout)
            .field("max_body", &self.max_body)
            .finish()
    }
}

impl HttpRequest {
    pub fn get(url: Uri, timeout: Duration) -> Self {
        HttpRequest {
            url,
            method: Method::GET,
            headers: Vec::new(),
            body: None,
            follow_redirects: true,
            verify_tls: true,
            timeout,
            max_body: crate::MAX_BODY,
        }
    }
}

/// How a request may be carried.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FetchOptions {
    /// Offer `h2` by ALPN to `https://` URLs (plain `http://` stays HTTP/1.1: no h2c).
    pub http2: bool,
}

/// Performs the request over HTTP/1.1 and returns what was observed. Never fails: errors are in `error`.
pub async fn fetch(req: &HttpRequest) -> Observation {
    fetch_with(req, FetchOptions::default()).await
}

/// As [`fetch`], with HTTP/2 offered to HTTPS servers when `options.http2` is set.
pub async fn fetch_with(req: &HttpRequest, options: FetchOptions) -> Observation {
    let mut obs = Observation::new("", ProbeKind::Http, Timestamp::now());
    let start = Instant::now();
    let deadline = TokioInstant::now() + req.timeout;
    let mut url = req.url.clone();
    let mut method = req.method.clone();
    let mut body = req.body.clone();
    let mut headers = std::borrow::Cow::Borrowed(&req.headers[..]);
    let mut hops = 0;
    loop {
        match exchange(&url, &method, &headers, body.clone(), req, options, deadline, &mut obs).await {
            Err(e) => {
                obs.error = Some(e);
                break;
            }
            Ok(None) => break,
            Ok(Some(location)) => {
                hops += 1;
                if hops > MAX_REDIRECTS {
                    obs.error =
                        Some(net::error(ProbeErrorKind::Protocol, format!("more than {MAX_REDIRECTS} redirects")));
                    break;
                }
                match resolve_location(&url, &location) {
                    Some(next) => {
                        // As curl does: the configured credentials go to the origin they were written for only.
                        if origin(&next) != origin(&req.url) {
                            headers = std::borrow::Cow::Owned(
                                req.headers
                                    .iter()
                                    .filter(|(k, _)| {
                                        !k.eq_ignore_ascii_case("authorization") && !k.eq_ignore_ascii_case("cookie")
                                    })
                                    .cloned()
                                    .collect(),
                            );
                        }
                        url = next;
                    }
                    None => {
                        obs.error = Some(net::error(
                            ProbeErrorKind::Protocol,
                            format!("redirect to an invalid location {:?}", Redacted(&location)),
                        ));
                        break;
                    }
                }
                // As browsers do: 303 always, and 301/302 after a POST, continue with a body-less GET.
                let status = obs.status.unwrap_or(0);
                if status == 303 || ((status == 301 || status == 302) && method == Method::POST) {
                    method = Method::GET;
                    body = None;
                }
            }
        }
    }
    obs.timings.total_ms = net::ms_since(start);
    obs
}

/// One request/response on a fresh connection. Returns the redirect location to follow, if any.
#[allow(clippy::too_many_arguments)]
async fn exchange(
    url: &Uri,
    method: &Method,
    headers: &[(String, String)],
    body: Option<Bytes>,
    req: &HttpRequest,
    options: FetchOptions,
    deadline: TokioInstant,
    obs: &mut Observation,
) -> Result<Option<String>, ProbeError> {
    let https = match url.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        other => {
            return Err(net::error(ProbeErrorKind::Config, format!("unsupported scheme {other:?}: use http or https")));
        }
    };
    let host = url
        .host()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string())
        .filter(|h| !h.is_empty())
        .ok_or_else(|| net::error(ProbeErrorKind::Config, "the url has no host"))?;
    // Not `url.port_u16()`: it answers None for a port that is not a u16 (`:80800`), which is not "no port".
    let written = split_authority(url.authority().map_or("", |a| a.as_str())).port;
    let port = parse_port(written)
        .map_err(|e| net::error(ProbeErrorKind::Config, format!("the url's {e}")))?
        .unwrap_or(if https { 443 } else { 80 });

    obs.connected = false;
    obs.status = None;
    obs.headers.clear();
    obs.body.clear();
    obs.body_truncated = false;
    obs.protocol = None;
    let tcp = net::connect(&host, port, deadline, obs).await?;
    if https {
        let stream = tls::handshake_alpn(tcp, &host, req.verify_tls, options.http2, deadline, obs).await?;
        obs.connected = true;
        let h2 = tls::negotiated_h2(&stream);
        send(stream, h2, url, method, headers, body, req, deadline, obs).await
    } else {
        obs.connected = true;
        send(tcp, false, url, method, headers, body, req, deadline, obs).await
    }
}

/// The sending half of an HTTP/1.1 or HTTP/2 connection.
enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

impl Sender {
    async fn send(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> Result<http::Response<hyper::body::Incoming>, hyper::Error> {
        match self {
            Sender::H1(s) => s.send_request(request).await,
            Sender::H2(s) => s.send_request(request).await,
        }
    }
}

/// Runs the connection task until the response is read and the sender dropped, or until the deadline.
fn drive<F>(deadline: TokioInstant, conn: F) -> AbortOnDrop
where
    F: std::future::Future + Send + 'static,
{
    AbortOnDrop(tokio::spawn(async move {
        let _ = timeout_at(deadline, conn).await;
    }))
}

#[allow(clippy::too_many_arguments)]
async fn send<S>(
    stream: S,
    h2: bool,
    url: &Uri,
    method: &Method,
    headers: &[(String, String)],
    body: Option<Bytes>,
    req: &HttpRequest,
    deadline: TokioInstant,
    obs: &mut Observation,
) -> Result<Option<String>, ProbeError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(stream);
    let handshake = async {
        if h2 {
            let (sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
            Ok::<_, hyper::Error>((Sender::H2(sender), drive(deadline, conn)))
        } else {
            let (sender, conn) = hyper::client::conn::http1::handshake(io).await?;
            Ok((Sender::H1(sender), drive(deadline, conn)))
        }
    };
    let (mut sender, _conn_task) = match timeout_at(deadline, handshake).await {
        Err(_) => return Err(net::timed_out("HTTP handshake")),
        Ok(Err(e)) => return Err(classify(&e, "HTTP handshake")),
        Ok(Ok(pair)) => pair,
    };

    let path = url.path_and_query().map_or("/", |p| p.as_str());
    let authority = url.authority().map_or("", |a| a.as_str());
    // Host is host[:port] alone; userinfo becomes Basic credentials unless an Authorization header is configured.
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp).trim_end_matches(':');
    // A configured Host replaces the URL's (probing 127.0.0.1 as the virtual host `shop.example`): sent twice,
    // Apache and nginx answer 400.
    let host_header = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("host")).map(|(_, v)| v.as_str());
    let mut builder = if h2 {
        // HTTP/2 carries scheme and authority as pseudo-headers taken from an absolute URI (no Host header).
        let authority = host_header.unwrap_or(host_port);
        Request::builder().method(method.clone()).uri(format!("https://{authority}{path}"))
    } else {
        Request::builder().method(method.clone()).uri(path).header(HOST, host_header.unwrap_or(host_port))
    };
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        && let Some((user, password)) = credentials(authority)
    {
        builder = builder.header(AUTHORIZATION, basic_auth(&user, &password));
    }
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("user-agent")) {
        builder = builder.header(USER_AGENT, DEFAULT_USER_AGENT);
    }
    for (k, v) in headers.iter().filter(|(k, _)| !k.eq_ignore_ascii_case("host")) {
        builder = builder.header(k.as_str(), v.as_str());
    }
    let request = builder
        .body(Full::new(body.unwrap_or_default()))
        .map_err(|e| net::error(ProbeErrorKind::Config, format!("cannot build the request: {e}")))?;

    let start = Instant::now();
    let response = match timeout_at(deadline, sender.send(request)).await {
        Err(_) => return Err(net::timed_out("waiting for the response")),
        Ok(Err(e)) => return Err(classify(&e, "reading the response")),
        Ok(Ok(r)) => r,
    };
    obs.timings.first_byte_ms = Some(*obs.timings.first_byte_ms.get_or_insert(0.0) + net::ms_since(start));
    let status = response.status();
    obs.status = Some(status.as_u16());
    obs.protocol = Some(protocol_name(response.version()));
    obs.headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let location = response.headers().get(LOCATION).and_then(|v: &HeaderValue| v.to_str().ok()).map(str::to_string);

    let mut body = response.into_body();
    let mut buf: Vec<u8> = Vec::new();
    loop {
        match timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(net::timed_out("reading the body")),
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(classify(&e, "reading the body")),
            Ok(Some(Ok(frame))) => {
                if let Some(chunk) = frame.data_ref() {
                    let room = req.max_body.saturating_sub(buf.len());
                    if chunk.len() > room {
                        buf.extend_from_slice(&chunk[..room]);
                        obs.body_truncated = true;
                        break;
                    }
                    buf.extend_from_slice(chunk);
                }
            }
        }
    }
    obs.body = String::from_utf8_lossy(&buf).into_owned();

    let redirect = req.follow_redirects
        && matches!(
            status,
            StatusCode::MOVED_PERMANENTLY
                | StatusCode::FOUND
                | StatusCode::SEE_OTHER
                | StatusCode::TEMPORARY_REDIRECT
                | StatusCode::PERMANENT_REDIRECT
        );
    Ok(if redirect { location } else { None })
}

/// The version a response came in, as conditions name it (`[PROTOCOL] == HTTP/2`).
fn protocol_name(v: http::Version) -> HttpVersion {
    match v {
        http::Version::HTTP_09 | http::Version::HTTP_10 => HttpVersion::Http10,
        http::Version::HTTP_2 => HttpVersion::Http2,
        http::Version::HTTP_3 => HttpVersion::Http3,
        _ => HttpVersion::Http11,
    }
}

/// `Basic base64(user:password)` (RFC 7617, UTF-8).
fn basic_auth(user: &str, password: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{user}:{password}");
    let mut out = String::from("Basic ");
    for chunk in input.as_bytes().chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Scheme, host and effective port: where credentials may be sent.
fn origin(url: &Uri) -> (Option<&str>, Option<&str>, Option<u16>) {
    let default = if url.scheme_str() == Some("https") { 443 } else { 80 };
    (url.scheme_str(), url.host(), Some(url.port_u16().unwrap_or(default)))
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn classify(e: &hyper::Error, phase: &str) -> ProbeError {
    let kind = if e.is_parse() || e.is_incomplete_message() || e.is_parse_status() {
        ProbeErrorKind::Protocol
    } else if e.is_timeout() {
        ProbeErrorKind::Timeout
    } else {
        ProbeErrorKind::Io
    };
    let mut message = format!("{phase}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(&format!(": {s}"));
        source = s.source();
    }
    net::error(kind, message)
}

/// Resolves a `Location` header against the URL that returned it.
fn resolve_location(base: &Uri, location: &str) -> Option<Uri> {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.parse().ok();
    }
    let scheme = base.scheme_str()?;
    let authority = base.authority()?.as_str();
    if let Some(rest) = location.strip_prefix("//") {
        return format!("{scheme}://{rest}").parse().ok();
    }
    let path = if location.starts_with('/') {
        location.to_string()
    } else {
        let dir = base.path().rsplit_once('/').map_or("", |(d, _)| d);
        format!("{dir}/{location}")
    };
    format!("{scheme}://{authority}{path}").parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_like_browsers() {
        let base: Uri = "http://127.0.0.1:8080/a/b?x=1".parse().unwrap();
        assert_eq!(resolve_location(&base, "/login").unwrap(), "http://127.0.0.1:8080/login");
        assert_eq!(resolve_location(&base, "c").unwrap(), "http://127.0.0.1:8080/a/c");
        assert_eq!(resolve_location(&base, "https://other/x").unwrap(), "https://other/x");
        assert_eq!(resolve_location(&base, "//other:81/y").unwrap(), "http://other:81/y");
        assert!(resolve_location(&base, "/bad path with spaces").is_none());
    }

    #[test]
    fn basic_credentials_are_base64_of_user_colon_password() {
        // RFC 7617's example, and every padding length.
        assert_eq!(basic_auth("Aladdin", "open sesame"), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert_eq!(basic_auth("a", ""), "Basic YTo=");
        assert_eq!(basic_auth("ab", ""), "Basic YWI6");
        assert_eq!(basic_auth("ab", "c"), "Basic YWI6Yw==");
        assert_eq!(basic_auth("ü", "p"), "Basic w7w6cA==");
    }

    #[test]
    fn debug_hides_credentials_and_header_values() {
        let mut req = HttpRequest::get("http://admin:hunter2@127.0.0.1:9/x".parse().unwrap(), Duration::from_secs(1));
        req.headers.push(("authorization".into(), "Bearer sekrit".into()));
        let shown = format!("{req:?}");
        assert!(shown.contains("admin:***@127.0.0.1:9"), "{shown}");
        assert!(!shown.contains("hunter2") && !shown.contains("sekrit"), "{shown}");
    }
}
