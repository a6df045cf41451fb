//! How a traced worker answers: the bytes a finished write-like syscall sent, read out of the stopped tracee, and
//! the HTTP status in them. A readable status line ends a request ([`Answer::Status`]); an access-log line tells
//! the status when the status line itself is unreadable ([`Answer::Logged`], e.g. over TLS).
//!
//! Every way a worker can answer is judged, because servers differ: Apache writes with `writev`, nginx with
//! `writev` + `sendfile`, Python's `socket.send`/`sendall` is `sendto`, `socket.sendmsg` and Node's
//! `writev` on some paths are `sendmsg`, Go and Java use `write`.
//!
//! - `write`, `writev`, `sendto`, `sendmsg`: the bytes are in the tracee's memory; the first ones actually sent
//!   (gathered across iovecs, so `HTTP/1.1 ` and `500` in two buffers still read as one status line) are read.
//! - `sendfile`, `splice`: the bytes come from a file or a pipe, not from memory. Servers send the status line
//!   and headers first with one of the calls above and the body with `sendfile` (nginx `sendfile on`, Apache
//!   `EnableSendfile`, Python `socket.sendfile`), so these are judged as bodies: they never end a request by
//!   themselves. When the source is a regular file, the bytes the call took from it are peeked (read again at
//!   the offset it read from), so a server that sends a whole stored response — status line included — from a
//!   file is still seen. Bytes spliced out of a pipe cannot be peeked without consuming them; they went into the
//!   pipe by an earlier `splice` or `write`, which was judged then.
//!
//! A status line only ends a request when it goes to a socket or a pipe: written into a regular file it is a
//! stored response (a cache entry), not an answer.
//!
//! Not seen: `io_uring` submissions, HTTP/2 and HTTP/3 (binary frames carry no status line; their access-log
//! lines still do).

use std::os::unix::fs::{FileExt, OpenOptionsExt};

use nix::fcntl::OFlag;
use nix::sys::uio::{RemoteIoVec, process_vm_readv};
use nix::unistd::Pid;

/// x86_64 syscall numbers of the calls a response can leave by.
const SYS_WRITE: u64 = 1;
const SYS_WRITEV: u64 = 20;
const SYS_SENDFILE: u64 = 40;
const SYS_SENDTO: u64 = 44;
const SYS_SENDMSG: u64 = 46;
const SYS_SPLICE: u64 = 275;

/// Bytes inspected per call: enough for an access-log line (a status line needs 12).
pub(crate) const HEAD_BYTES: usize = 1024;

/// iovecs looked at per call: the status line is in the first one or two.
const MAX_IOVECS: u64 = 16;

/// What a finished write-like call says about the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// An HTTP status line: the worker answered with this status.
    Status(u16),
    /// An access-log line with this status.
    Logged(u16),
}

/// Whether syscall `nr` is one a response can leave by (the tracer keeps its entry arguments for these).
pub(crate) fn is_answer_syscall(nr: u64) -> bool {
    matches!(nr, SYS_WRITE | SYS_WRITEV | SYS_SENDTO | SYS_SENDMSG | SYS_SENDFILE | SYS_SPLICE)
}

/// Judges syscall `nr` of thread `tid` that returned `ret`, with the arguments it was entered with. Called at the
/// syscall-exit stop, while the thread is stopped: its buffers and file offsets are as the call left them.
pub(crate) fn judge(tid: i32, nr: u64, args: &[u64; 6], ret: i64) -> Option<Answer> {
    if ret <= 0 {
        return None;
    }
    let pid = Pid::from_raw(tid);
    let sent = usize::try_from(ret).ok()?;
    let want = sent.min(HEAD_BYTES);
    let head = match nr {
        SYS_WRITE | SYS_SENDTO => read_bytes(pid, args[1], want)?,
        SYS_WRITEV => read_iovecs(pid, args[1], args[2], want)?,
        SYS_SENDMSG => read_msghdr(pid, args[1], want)?,
        // sendfile(out_fd, in_fd, *offset, count)
        SYS_SENDFILE => peek_source(tid, args[1], args[2], sent, want)?,
        // splice(fd_in, *off_in, fd_out, *off_out, len, flags)
        SYS_SPLICE => peek_source(tid, args[0], args[1], sent, want)?,
        _ => return None,
    };
    if let Some(status) = http_status(&head) {
        // Where the bytes went: a status line written into a regular file is a stored response (a cache entry),
        // not an answer to a client.
        let dest = if nr == SYS_SPLICE { args[2] } else { args[0] };
        (!is_regular_file(tid, dest)).then_some(Answer::Status(status))
    } else {
        access_log_status(&head).map(Answer::Logged)
    }
}

fn is_regular_file(tid: i32, fd: u64) -> bool {
    std::fs::metadata(format!("/proc/{tid}/fd/{fd}")).is_ok_and(|m| m.is_file())
}

/// `len` bytes at `addr` in the tracee (fewer when the mapping ends).
pub(crate) fn read_bytes(pid: Pid, addr: u64, len: usize) -> Option<Vec<u8>> {
    if addr == 0 || len == 0 {
        return None;
    }
    let mut buf = vec![0u8; len];
    let n =
        process_vm_readv(pid, &mut [std::io::IoSliceMut::new(&mut buf)], &[RemoteIoVec { base: addr as usize, len }])
            .ok()?;
    buf.truncate(n);
    Some(buf)
}

fn word(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// Up to `max` bytes gathered from the tracee's iovec array at `iov` with `count` entries.
pub(crate) fn read_iovecs(pid: Pid, iov: u64, count: u64, max: usize) -> Option<Vec<u8>> {
    let count = count.min(MAX_IOVECS) as usize;
    let table = read_bytes(pid, iov, count * 16)?;
    let mut out = Vec::new();
    for entry in table.chunks_exact(16) {
        if out.len() >= max {
            break;
        }
        let (base, len) = (word(entry, 0)?, word(entry, 8)?);
        let take = usize::try_from(len).unwrap_or(usize::MAX).min(max - out.len());
        if take == 0 {
            continue;
        }
        out.extend(read_bytes(pid, base, take)?);
    }
    (!out.is_empty()).then_some(out)
}

/// Up to `max` bytes of the iovecs of the tracee's `struct msghdr` at `msg` (x86_64 layout: `msg_iov` at 16,
/// `msg_iovlen` at 24).
pub(crate) fn read_msghdr(pid: Pid, msg: u64, max: usize) -> Option<Vec<u8>> {
    let hdr = read_bytes(pid, msg, 32)?;
    read_iovecs(pid, word(&hdr, 16)?, word(&hdr, 24)?, max)
}

/// The first `max` of the `sent` bytes a `sendfile`/`splice` took from `fd` — only when `fd` is a regular file.
/// The call has returned: with an offset pointer the kernel advanced `*offset` past what it read, without one the
/// file position moved; either way the bytes began `sent` before.
fn peek_source(tid: i32, fd: u64, offset_ptr: u64, sent: usize, max: usize) -> Option<Vec<u8>> {
    let link = format!("/proc/{tid}/fd/{fd}");
    // A pipe (or a socket, or a device) is never opened: reading would consume it, or block, or have effects.
    if !is_regular_file(tid, fd) {
        return None;
    }
    let end = if offset_ptr == 0 {
        file_position(tid, fd)?
    } else {
        word(&read_bytes(Pid::from_raw(tid), offset_ptr, 8)?, 0)?
    };
    let start = end.checked_sub(sent as u64)?;
    // O_NONBLOCK: should the descriptor have been replaced by a FIFO meanwhile, the open does not wait.
    let file = std::fs::OpenOptions::new().read(true).custom_flags(OFlag::O_NONBLOCK.bits()).open(&link).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut buf = vec![0u8; max];
    let n = file.read_at(&mut buf, start).ok()?;
    buf.truncate(n);
    (n > 0).then_some(buf)
}

/// The file position of `fd` in thread `tid` (`pos:` in /proc/TID/fdinfo/FD).
fn file_position(tid: i32, fd: u64) -> Option<u64> {
    let info = std::fs::read_to_string(format!("/proc/{tid}/fdinfo/{fd}")).ok()?;
    info.lines().find_map(|l| l.strip_prefix("pos:")).and_then(|v| v.trim().parse().ok())
}

/// The status of a common/combined access-log line: the 3 digits after the quoted request line,
/// e.g. `... "GET / HTTP/1.1" 500 312 ...` → 500.
pub(crate) fn access_log_status(line: &[u8]) -> Option<u16> {
    if !line.ends_with(b"\n") && line.len() < HEAD_BYTES {
        return None;
    }
    let text = std::str::from_utf8(line).ok()?;
    let (_, after) = text.split_once(" HTTP/")?;
    let (_, rest) = after.split_once("\" ")?;
    let code = rest.get(..3)?;
    let next = rest.as_bytes().get(3).copied();
    (code.bytes().all(|b| b.is_ascii_digit()) && matches!(next, Some(b' ' | b'\n'))).then(|| code.parse().ok())?
}

/// `HTTP/1.1 500 ...` → 500.
pub(crate) fn http_status(head: &[u8]) -> Option<u16> {
    if !head.starts_with(b"HTTP/1.") || head.len() < 12 || head[8] != b' ' {
        return None;
    }
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_log_lines() {
        let line = b"127.0.0.1 - - [25/Nov/2026:14:36:22 +0000] \"GET /index.php HTTP/1.1\" 500 312 \"-\" \"curl/8\"\n";
        assert_eq!(access_log_status(line), Some(500));
        assert_eq!(access_log_status(b"127.0.0.1 - - [x] \"GET / HTTP/2.0\" 200 -\n"), Some(200));
        assert_eq!(access_log_status(b"no newline \"GET / HTTP/1.1\" 200 1"), None);
        assert_eq!(access_log_status(b"PHP Warning: something HTTP/1.1\" later\n"), None);
        assert_eq!(access_log_status(b"binary \xff\n"), None);
    }

    #[test]
    fn status_lines() {
        assert_eq!(http_status(b"HTTP/1.1 500 Internal"), Some(500));
        assert_eq!(http_status(b"HTTP/1.0 200 OK\r\n"), Some(200));
        assert_eq!(http_status(b"GET / HTTP/1.1"), None);
        assert_eq!(http_status(b"HTTP/1.1"), None);
    }

    /// An iovec table as the kernel reads it: (base, len) pairs of native words.
    fn iovecs(bufs: &[&[u8]]) -> Vec<u8> {
        bufs.iter()
            .flat_map(|b| [(b.as_ptr() as u64).to_ne_bytes(), (b.len() as u64).to_ne_bytes()])
            .flatten()
            .collect()
    }

    /// The readers work on any process's memory; this one's own is the tracee here.
    #[test]
    fn a_status_line_split_across_iovecs_and_behind_a_msghdr_is_read_whole() {
        let me = nix::unistd::getpid();
        let (a, b, c): (&[u8], &[u8], &[u8]) = (b"HTTP/1.1 ", b"", b"502 Bad Gateway\r\n");
        let table = iovecs(&[a, b, c]);
        let head = read_iovecs(me, table.as_ptr() as u64, 3, HEAD_BYTES).unwrap();
        assert_eq!(http_status(&head), Some(502));
        // Only what was sent counts: 11 bytes are not a status line.
        assert_eq!(read_iovecs(me, table.as_ptr() as u64, 3, 11).unwrap(), b"HTTP/1.1 50");

        let mut msghdr = [0u8; 56];
        msghdr[16..24].copy_from_slice(&(table.as_ptr() as u64).to_ne_bytes());
        msghdr[24..32].copy_from_slice(&3u64.to_ne_bytes());
        let head = read_msghdr(me, msghdr.as_ptr() as u64, HEAD_BYTES).unwrap();
        assert_eq!(http_status(&head), Some(502));

        // Hostile or stale pointers read nothing, never panic.
        assert_eq!(read_iovecs(me, 0, 3, HEAD_BYTES), None);
        assert_eq!(read_msghdr(me, 8, HEAD_BYTES), None);
        let wild = iovecs(&[a]).iter().map(|_| 0xff).collect::<Vec<u8>>();
        assert_eq!(read_iovecs(me, wild.as_ptr() as u64, 1, HEAD_BYTES), None);
    }

    #[test]
    fn only_regular_files_are_peeked_at_the_offset_the_call_read_from() {
        use std::io::{Seek, SeekFrom, Write};
        let me = nix::unistd::getpid().as_raw();
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"garbage-HTTP/1.1 503 Service Unavailable\r\n\r\n").unwrap();
        // As after sendfile(sock, fd, NULL, 44) from offset 8: the position is 8 + 44.
        f.seek(SeekFrom::Start(8 + 36)).unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&f) as u64;
        let head = peek_source(me, fd, 0, 36, HEAD_BYTES).unwrap();
        assert_eq!(http_status(&head), Some(503));
        // With an offset pointer: the kernel advanced *offset to 8 + 36.
        let offset = 44u64;
        let head = peek_source(me, fd, &offset as *const u64 as u64, 36, HEAD_BYTES).unwrap();
        assert_eq!(http_status(&head), Some(503));
        // More sent than the offset allows: nothing, not a wrap-around.
        assert_eq!(peek_source(me, fd, &offset as *const u64 as u64, 1000, HEAD_BYTES), None);

        let (rx, _tx) = std::io::pipe().unwrap();
        let pipe_fd = std::os::fd::AsRawFd::as_raw_fd(&rx) as u64;
        assert_eq!(peek_source(me, pipe_fd, 0, 10, HEAD_BYTES), None, "a pipe is never opened");
    }
}
