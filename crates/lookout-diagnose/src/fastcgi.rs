//! Request boundaries of a PHP-FPM worker, from the FastCGI records it reads and writes on its connection.
//!
//! An FPM worker never writes an HTTP status line: it `read`s FCGI records from the web server (BEGIN_REQUEST,
//! PARAMS with SCRIPT_FILENAME and REQUEST_URI, STDIN) and `write`s STDOUT records whose payload starts with CGI
//! headers (`Status: 500 Internal Server Error`; no `Status:` means 200), then END_REQUEST. So a request starts at
//! BEGIN_REQUEST, its status is the `Status:` header of its first STDOUT record, and it ends at END_REQUEST —
//! where a [`TraceEvent::Response`] is emitted, and the request is judged like an HTTP one.
//!
//! The records are parsed as a stream per (thread, descriptor): records split across reads, several in one read,
//! padding. Only what is needed is copied out of the tracee (headers, PARAMS, the head of the first STDOUT): a
//! large POST body in STDIN is skipped, not read. A descriptor becomes a FastCGI connection only when it is a
//! socket whose first record is a well-formed BEGIN_REQUEST (so a PHP file read with `read` is never parsed), and
//! stops being one at `close`, at anything malformed, or when it runs out of what it may buffer.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::trace::TraceEvent;

/// x86_64 numbers of the calls FastCGI records move by.
pub(crate) const SYS_READ: u64 = 0;
pub(crate) const SYS_WRITE: u64 = 1;
pub(crate) const SYS_CLOSE: u64 = 3;
pub(crate) const SYS_READV: u64 = 19;
pub(crate) const SYS_WRITEV: u64 = 20;
pub(crate) const SYS_SENDTO: u64 = 44;
pub(crate) const SYS_RECVFROM: u64 = 45;
pub(crate) const SYS_SENDMSG: u64 = 46;
pub(crate) const SYS_RECVMSG: u64 = 47;

/// Record types (FastCGI 1.0 spec, section 8).
const BEGIN_REQUEST: u8 = 1;
const ABORT_REQUEST: u8 = 2;
const END_REQUEST: u8 = 3;
const PARAMS: u8 = 4;
const STDOUT: u8 = 6;
const MAX_TYPE: u8 = 11;

/// PARAMS kept per request: real ones are a few KiB; more is dropped (the request is still judged).
const MAX_PARAMS: usize = 64 * 1024;
/// The head of the first STDOUT record kept for its CGI headers (`Status:` comes first in PHP's output).
const MAX_HEAD: usize = 1024;
/// Connections followed at once; more are ignored until some close.
const MAX_CONNS: usize = 4096;
/// A vectored call (`readv`, `recvmsg`, …) moving more than this is not followed (its bytes are gathered).
const MAX_GATHER: usize = 256 * 1024;

/// One FastCGI record as far as it matters here.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Record {
    pub kind: u8,
    pub id: u16,
    /// The content's first bytes (as many as kept for this kind; all of it for BEGIN/END_REQUEST and PARAMS).
    pub content: Vec<u8>,
    pub len: usize,
}

#[derive(Debug)]
enum State {
    /// Between records: the header bytes seen so far.
    Header { buf: [u8; 8], have: usize },
    /// Inside a record's content, then its padding.
    Body { kind: u8, id: u16, len: usize, left: usize, pad: usize, keep: usize, content: Vec<u8> },
}

/// The record stream of one direction of a connection.
#[derive(Debug)]
pub(crate) struct Records {
    state: State,
}

/// The stream is not FastCGI (or the tracee's memory could not be read): stop following it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Lost;

impl Default for Records {
    fn default() -> Self {
        Records { state: State::Header { buf: [0; 8], have: 0 } }
    }
}

impl Records {
    /// Feeds the `len` bytes one call moved; `fetch(offset, n)` copies `n` of them from `offset` (called only for
    /// bytes that are kept). Returns the records completed by these bytes.
    pub(crate) fn feed(
        &mut self,
        len: usize,
        fetch: &mut dyn FnMut(usize, usize) -> Option<Vec<u8>>,
    ) -> Result<Vec<Record>, Lost> {
        let mut done = Vec::new();
        let mut pos = 0;
        while pos < len {
            match &mut self.state {
                State::Header { buf, have } => {
                    let take = (8 - *have).min(len - pos);
                    let bytes = fetch(pos, take).ok_or(Lost)?;
                    if bytes.len() != take {
                        return Err(Lost);
                    }
                    buf[*have..*have + take].copy_from_slice(&bytes);
                    *have += take;
                    pos += take;
                    if *have == 8 {
                        let h = *buf;
                        if h[0] != 1 || h[1] == 0 || h[1] > MAX_TYPE {
                            return Err(Lost);
                        }
                        let (kind, id) = (h[1], u16::from_be_bytes([h[2], h[3]]));
                        let clen = usize::from(u16::from_be_bytes([h[4], h[5]]));
                        let keep = match kind {
                            BEGIN_REQUEST | END_REQUEST | PARAMS => clen,
                            STDOUT => clen.min(MAX_HEAD),
                            _ => 0,
                        };
                        self.state = State::Body {
                            kind,
                            id,
                            len: clen,
                            left: clen,
                            pad: usize::from(h[6]),
                            keep,
                            content: Vec::new(),
                        };
                    }
                }
                State::Body { left, pad, keep, content, .. } => {
                    if *left > 0 {
                        let take = (*left).min(len - pos);
                        let wanted = take.min(keep.saturating_sub(content.len()));
                        if wanted > 0 {
                            let bytes = fetch(pos, wanted).ok_or(Lost)?;
                            if bytes.len() != wanted {
                                return Err(Lost);
                            }
                            content.extend_from_slice(&bytes);
                        }
                        *left -= take;
                        pos += take;
                    } else {
                        let take = (*pad).min(len - pos);
                        *pad -= take;
                        pos += take;
                    }
                }
            }
            // A record is complete once its content and padding are through (possibly with no bytes left).
            if let State::Body { kind, id, len, left: 0, pad: 0, content, .. } = &mut self.state {
                done.push(Record { kind: *kind, id: *id, content: std::mem::take(content), len: *len });
                self.state = State::Header { buf: [0; 8], have: 0 };
            }
        }
        Ok(done)
    }

    /// Whether the stream is between records (nothing partial buffered).
    #[cfg(test)]
    fn at_boundary(&self) -> bool {
        matches!(self.state, State::Header { have: 0, .. })
    }
}

/// The request in flight on a connection.
#[derive(Debug, Default)]
struct Request {
    id: u16,
    params: Vec<u8>,
    /// From the `Status:` header of the first STDOUT record (200 when it has none).
    status: Option<u16>,
}

#[derive(Debug, Default)]
struct Conn {
    read: Records,
    write: Records,
    request: Option<Request>,
}

/// The FastCGI connections of the traced threads, by (thread, descriptor).
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    conns: HashMap<(i32, u64), Conn>,
}

impl Tracker {
    /// Whether syscall `nr` is one this tracker looks at on exit.
    pub(crate) fn wants(nr: u64) -> bool {
        matches!(
            nr,
            SYS_READ
                | SYS_WRITE
                | SYS_CLOSE
                | SYS_READV
                | SYS_WRITEV
                | SYS_SENDTO
                | SYS_RECVFROM
                | SYS_SENDMSG
                | SYS_RECVMSG
        )
    }

    /// Whether (tid, fd) is a FastCGI connection being followed.
    pub(crate) fn follows(&self, tid: i32, fd: u64) -> bool {
        self.conns.contains_key(&(tid, fd))
    }

    /// Thread `tid` read `len` bytes from `fd`. A descriptor not yet followed is taken up only when `is_socket`
    /// says so and its first record is a BEGIN_REQUEST.
    pub(crate) fn on_read(
        &mut self,
        tid: i32,
        fd: u64,
        len: usize,
        fetch: &mut dyn FnMut(usize, usize) -> Option<Vec<u8>>,
        is_socket: &dyn Fn() -> bool,
        events: &mut Vec<TraceEvent>,
    ) {
        let key = (tid, fd);
        if !self.conns.contains_key(&key) {
            // Cheap refusals first: FastCGI starts with version 1, type BEGIN_REQUEST.
            let Some(head) = fetch(0, len.min(2)) else { return };
            if head.first() != Some(&1) || head.get(1).is_some_and(|t| *t != BEGIN_REQUEST) {
                return;
            }
            if self.conns.len() >= MAX_CONNS || !is_socket() {
                return;
            }
            self.conns.insert(key, Conn::default());
        }
        let Some(conn) = self.conns.get_mut(&key) else { return };
        let records = match conn.read.feed(len, fetch) {
            Ok(r) => r,
            Err(Lost) => {
                self.conns.remove(&key);
                return;
            }
        };
        for r in records {
            match r.kind {
                // A connection's first record must be a well-formed BEGIN_REQUEST (role, flags, 5 reserved).
                BEGIN_REQUEST if r.len == 8 => {
                    conn.request = Some(Request { id: r.id, ..Request::default() });
                }
                _ if conn.request.is_none() => {
                    self.conns.remove(&key);
                    return;
                }
                PARAMS => {
                    let Some(req) = conn.request.as_mut().filter(|q| q.id == r.id) else { continue };
                    if r.len == 0 {
                        // The empty PARAMS record ends them: the request is under way.
                        let (script, uri) = script_and_uri(&req.params);
                        req.params = Vec::new();
                        events.push(TraceEvent::Request { pid: tid, script, uri });
                    } else if req.params.len() + r.content.len() <= MAX_PARAMS {
                        req.params.extend_from_slice(&r.content);
                    }
                }
                ABORT_REQUEST => conn.request = None,
                _ => {}
            }
        }
    }

    /// Thread `tid` wrote `len` bytes to `fd` (only followed connections are parsed).
    pub(crate) fn on_write(
        &mut self,
        tid: i32,
        fd: u64,
        len: usize,
        fetch: &mut dyn FnMut(usize, usize) -> Option<Vec<u8>>,
        events: &mut Vec<TraceEvent>,
    ) {
        let key = (tid, fd);
        let Some(conn) = self.conns.get_mut(&key) else { return };
        let records = match conn.write.feed(len, fetch) {
            Ok(r) => r,
            Err(Lost) => {
                self.conns.remove(&key);
                return;
            }
        };
        for r in records {
            let Some(req) = conn.request.as_mut().filter(|q| q.id == r.id) else { continue };
            match r.kind {
                STDOUT if req.status.is_none() && r.len > 0 => req.status = Some(cgi_status(&r.content)),
                END_REQUEST => {
                    // No output at all before the end: the web server has no header to answer with (nginx: 502).
                    let status = req.status.unwrap_or(502);
                    conn.request = None;
                    events.push(TraceEvent::Response { pid: tid, status });
                }
                _ => {}
            }
        }
    }

    /// Thread `tid` closed `fd`: a request whose status was already sent ends here even without END_REQUEST.
    pub(crate) fn on_close(&mut self, tid: i32, fd: u64, events: &mut Vec<TraceEvent>) {
        if let Some(Conn { request: Some(Request { status: Some(status), .. }), .. }) = self.conns.remove(&(tid, fd)) {
            events.push(TraceEvent::Response { pid: tid, status });
        }
    }

    /// Thread `tid` is gone (exited, or detached).
    pub(crate) fn forget(&mut self, tid: i32) {
        self.conns.retain(|(t, _), _| *t != tid);
    }

    #[cfg(test)]
    fn idle(&self, tid: i32, fd: u64) -> Option<bool> {
        self.conns.get(&(tid, fd)).map(|c| c.read.at_boundary() && c.write.at_boundary() && c.request.is_none())
    }
}

/// The status a CGI header block gives: its `Status:` header, else 200. Only header lines count (up to the first
/// blank line); a malformed `Status:` value is 500 (the web server answers with an error then too).
pub(crate) fn cgi_status(head: &[u8]) -> u16 {
    for line in head.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|b| *b == b':') else { continue };
        if !line[..colon].eq_ignore_ascii_case(b"status") {
            continue;
        }
        let value = line[colon + 1..].trim_ascii_start();
        return value
            .get(..3)
            .filter(|d| d.iter().all(u8::is_ascii_digit))
            .and_then(|d| std::str::from_utf8(d).ok()?.parse().ok())
            .filter(|s| (100..=599).contains(s))
            .unwrap_or(500);
    }
    200
}

/// SCRIPT_FILENAME and REQUEST_URI from PARAMS' name-value pairs (lengths of 1 byte, or 4 with the top bit set).
pub(crate) fn script_and_uri(params: &[u8]) -> (Option<PathBuf>, Option<String>) {
    let (mut script, mut uri) = (None, None);
    let mut at = 0;
    let length = |at: &mut usize| -> Option<usize> {
        let b = *params.get(*at)?;
        if b < 0x80 {
            *at += 1;
            return Some(usize::from(b));
        }
        let raw = params.get(*at..*at + 4)?;
        *at += 4;
        usize::try_from(u32::from_be_bytes([raw[0] & 0x7f, raw[1], raw[2], raw[3]])).ok()
    };
    while at < params.len() {
        let (Some(n), Some(v)) = (length(&mut at), length(&mut at)) else { break };
        let Some(name) = params.get(at..at.saturating_add(n)) else { break };
        let Some(value) = params.get(at + n..(at + n).saturating_add(v)) else { break };
        at += n + v;
        match name {
            b"SCRIPT_FILENAME" => script = Some(PathBuf::from(String::from_utf8_lossy(value).into_owned())),
            b"REQUEST_URI" => uri = Some(String::from_utf8_lossy(value).into_owned()),
            _ => {}
        }
    }
    (script, uri)
}

/// A `fetch` over bytes already copied out (gathered iovecs, or a test's buffer).
pub(crate) fn slice_fetch(bytes: &[u8]) -> impl FnMut(usize, usize) -> Option<Vec<u8>> + '_ {
    move |at, n| bytes.get(at..at.checked_add(n)?).map(<[u8]>::to_vec)
}

/// The most a vectored call may move to be followed.
pub(crate) const fn max_gather() -> usize {
    MAX_GATHER
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u8, id: u16, content: &[u8], pad: u8) -> Vec<u8> {
        let len = u16::try_from(content.len()).unwrap().to_be_bytes();
        let mut r = vec![1, kind, (id >> 8) as u8, id as u8, len[0], len[1], pad, 0];
        r.extend_from_slice(content);
        r.extend(std::iter::repeat_n(0xAA, usize::from(pad)));
        r
    }

    fn pair(name: &str, value: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for n in [name.len(), value.len()] {
            if n < 0x80 {
                out.push(n as u8);
            } else {
                out.extend_from_slice(&(u32::try_from(n).unwrap() | 0x8000_0000).to_be_bytes());
            }
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(value.as_bytes());
        out
    }

    /// What nginx sends for one request: BEGIN_REQUEST, PARAMS (split over two records, one pair across them),
    /// the empty PARAMS, a STDIN body and the empty STDIN.
    fn request_bytes(id: u16, uri: &str) -> Vec<u8> {
        let mut params = pair("SCRIPT_FILENAME", "/srv/www/index.php");
        params.extend(pair("QUERY_STRING", &"q".repeat(300)));
        params.extend(pair("REQUEST_URI", uri));
        let (a, b) = params.split_at(20);
        let mut out = record(BEGIN_REQUEST, id, &[0, 1, 0, 0, 0, 0, 0, 0], 0);
        out.extend(record(PARAMS, id, a, 4));
        out.extend(record(PARAMS, id, b, 3));
        out.extend(record(PARAMS, id, &[], 0));
        out.extend(record(5, id, &[b'x'; 5000], 0));
        out.extend(record(5, id, &[], 0));
        out
    }

    fn response_bytes(id: u16, headers: &str) -> Vec<u8> {
        let mut out = record(STDOUT, id, format!("{headers}\r\n\r\n<h1>body</h1>").as_bytes(), 2);
        out.extend(record(STDOUT, id, b"", 0));
        out.extend(record(END_REQUEST, id, &[0; 8], 0));
        out
    }

    /// Feeds `bytes` in calls of the given sizes (cycling), as reads (or writes) on (1, 5).
    fn feed(t: &mut Tracker, bytes: &[u8], sizes: &[usize], write: bool, events: &mut Vec<TraceEvent>) {
        let mut at = 0;
        for size in sizes.iter().cycle() {
            if at >= bytes.len() {
                break;
            }
            let n = (*size).min(bytes.len() - at);
            let chunk = &bytes[at..at + n];
            if write {
                t.on_write(1, 5, n, &mut slice_fetch(chunk), events);
            } else {
                t.on_read(1, 5, n, &mut slice_fetch(chunk), &|| true, events);
            }
            at += n;
        }
    }

    #[test]
    fn requests_are_segmented_whatever_the_read_sizes() {
        for sizes in [&[8][..], &[1], &[3, 7, 100], &[100_000], &[8, 512, 8]] {
            let mut t = Tracker::default();
            let mut events = Vec::new();
            for (id, headers, uri) in [
                (1, "Status: 500 Internal Server Error\r\nContent-type: text/html", "/"),
                (1, "X-Powered-By: PHP/8.2\r\nContent-type: text/html", "/ok/"),
                (7, "Content-type: text/html\r\nstatus:404 Not Found", "/gone"),
            ] {
                feed(&mut t, &request_bytes(id, uri), sizes, false, &mut events);
                feed(&mut t, &response_bytes(id, headers), sizes, true, &mut events);
            }
            let responses: Vec<u16> = events
                .iter()
                .filter_map(|e| match e {
                    TraceEvent::Response { pid: 1, status } => Some(*status),
                    _ => None,
                })
                .collect();
            assert_eq!(responses, [500, 200, 404], "read sizes {sizes:?}: {events:?}");
            let uris: Vec<&str> = events
                .iter()
                .filter_map(|e| match e {
                    TraceEvent::Request { uri: Some(u), script: Some(s), .. } if s.ends_with("index.php") => {
                        Some(u.as_str())
                    }
                    _ => None,
                })
                .collect();
            assert_eq!(uris, ["/", "/ok/", "/gone"], "read sizes {sizes:?}");
            assert_eq!(t.idle(1, 5), Some(true));
        }
    }

    #[test]
    fn only_sockets_that_begin_with_begin_request_are_followed() {
        let mut events = Vec::new();
        let mut t = Tracker::default();
        // A PHP file read with read(): never parsed.
        t.on_read(1, 5, 20, &mut slice_fetch(b"<?php echo 'hi'; ?>\n"), &|| true, &mut events);
        assert_eq!(t.idle(1, 5), None);
        // FastCGI-looking bytes from a regular file: not a socket.
        let req = request_bytes(1, "/");
        t.on_read(1, 5, req.len(), &mut slice_fetch(&req), &|| false, &mut events);
        assert_eq!(t.idle(1, 5), None);
        assert!(events.is_empty());
        // A record other than BEGIN_REQUEST first: not a connection start.
        let stdin = record(5, 1, b"x", 0);
        t.on_read(1, 5, stdin.len(), &mut slice_fetch(&stdin), &|| true, &mut events);
        assert_eq!(t.idle(1, 5), None);
        // Writes on descriptors not followed are not parsed at all.
        let resp = response_bytes(1, "Status: 500 x");
        t.on_write(1, 9, resp.len(), &mut |_, _| panic!("not fetched"), &mut events);
        assert!(events.is_empty());
    }

    #[test]
    fn garbage_and_unreadable_memory_drop_the_connection_without_panicking() {
        let mut events = Vec::new();
        let mut t = Tracker::default();
        feed(&mut t, &request_bytes(1, "/"), &[8], false, &mut events);
        let garbage = [0xffu8, 0, 0x13, 0x37, 0, 0, 0, 0, 9, 9];
        t.on_write(1, 5, garbage.len(), &mut slice_fetch(&garbage), &mut events);
        assert_eq!(t.idle(1, 5), None, "dropped");
        feed(&mut t, &request_bytes(1, "/"), &[8], false, &mut events);
        // The call says it moved more than the buffer holds: the fetch fails, the connection is dropped.
        t.on_read(1, 5, 4096, &mut slice_fetch(&[1, 1, 0]), &|| true, &mut events);
        assert_eq!(t.idle(1, 5), None);
        // Every prefix of arbitrary bytes, fed whole: nothing panics.
        let mut noise: Vec<u8> = (0..2000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        noise[0..2].copy_from_slice(&[1, 1]);
        for n in 0..noise.len() {
            let mut t = Tracker::default();
            t.on_read(1, 5, n, &mut slice_fetch(&noise), &|| true, &mut events);
            t.on_write(1, 5, n, &mut slice_fetch(&noise), &mut events);
        }
    }

    #[test]
    fn a_close_after_the_headers_ends_the_request_and_exit_forgets() {
        let mut events = Vec::new();
        let mut t = Tracker::default();
        feed(&mut t, &request_bytes(3, "/"), &[8], false, &mut events);
        let head = record(STDOUT, 3, b"Status: 503 Service Unavailable\r\n\r\n", 0);
        t.on_write(1, 5, head.len(), &mut slice_fetch(&head), &mut events);
        t.on_close(1, 5, &mut events);
        assert!(events.contains(&TraceEvent::Response { pid: 1, status: 503 }), "{events:?}");
        feed(&mut t, &request_bytes(3, "/"), &[8], false, &mut events);
        t.forget(1);
        assert_eq!(t.idle(1, 5), None);
    }

    #[test]
    fn cgi_headers_and_params() {
        assert_eq!(cgi_status(b"Status: 500 Internal Server Error\r\nContent-type: text/html\r\n\r\n"), 500);
        assert_eq!(cgi_status(b"Content-type: text/html\r\n\r\nStatus: 500 in the body"), 200);
        assert_eq!(cgi_status(b"Status: abc\r\n\r\n"), 500);
        assert_eq!(cgi_status(b"Status: 302\n\n"), 302);
        assert_eq!(cgi_status(b""), 200);
        let mut params = pair("REQUEST_URI", "/a?b");
        params.extend(pair("SCRIPT_FILENAME", &format!("/srv/{}.php", "x".repeat(200))));
        let (script, uri) = script_and_uri(&params);
        assert_eq!(uri.as_deref(), Some("/a?b"));
        assert!(script.unwrap().to_str().unwrap().ends_with("xx.php"));
        // Truncated or hostile lengths: no panic, what was whole is kept.
        assert_eq!(script_and_uri(&params[..params.len() - 3]).1.as_deref(), Some("/a?b"));
        assert_eq!(script_and_uri(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1]), (None, None));
    }
}
