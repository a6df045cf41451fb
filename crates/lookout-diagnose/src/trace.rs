//! A bounded strace of the web server's workers: `PTRACE_SEIZE` every thread of the chosen processes (following
//! forks and clones), stop only at syscalls, record the path-taking ones with their errno and the HTTP status
//! lines the workers send (by any of the calls a response can leave by: see `answer.rs`), and always detach.
//!
//! Safety of the traced server comes first: no `PTRACE_O_EXITKILL` (if lookout dies, even by SIGKILL, the
//! kernel detaches and the server keeps serving), a hard time limit, an event cap, and a guard that detaches
//! every thread on every return path, including panics.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::ptrace::{self, Options};
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use serde::Serialize;

use crate::answer::{Answer, read_bytes};

const AT_FDCWD: i64 = -100;
const MAX_PATH: usize = 4096;

/// What a traced worker did that matters for a diagnosis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TraceEvent {
    /// A path-taking syscall that failed.
    PathFailed { pid: i32, syscall: &'static str, path: PathBuf, errno: String },
    /// A path-taking syscall that succeeded (kept to tell noise from causes).
    PathOk { pid: i32, syscall: &'static str, path: PathBuf },
    /// The worker sent an HTTP status line (`write`, `writev`, `sendto`, `sendmsg`, or a `sendfile`/`splice` from a
    /// file that holds one): the end of a request.
    Response { pid: i32, status: u16 },
    /// The worker wrote an access-log line with this status (the end of a request whose status line could not be
    /// read, e.g. over TLS).
    Logged { pid: i32, status: u16 },
}

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("no process to trace: {0}")]
    NoProcess(String),
    /// The kernel refused `PTRACE_SEIZE`; `why` says what is really the matter (see `refusal.rs`).
    #[error("cannot attach to pid {pid}: {errno}; {why}")]
    Permission { pid: i32, errno: Errno, why: String },
    #[error("tracing is only implemented for x86_64 Linux")]
    Unsupported,
}

/// The longest trace: the server runs several times slower while traced (the same bound as `[target.diagnose]`).
pub const MAX_DURATION: Duration = Duration::from_secs(30);

/// Processes whose command name (`/proc/PID/comm`) is `name`.
pub fn pids_by_name(name: &str) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut pids: Vec<i32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == name))
        .collect();
    pids.sort_unstable();
    pids
}

/// `pid` and its direct children: the parent of a pool (Apache prefork, php-fpm) and its workers.
pub fn with_children(pid: i32) -> Vec<i32> {
    let mut out = vec![pid];
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(child) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            // "pid (comm) state ppid ...": the comm may contain spaces, so split after the last ')'.
            let ppid = stat.rsplit_once(") ").and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<i32>().ok());
            if ppid == Some(pid) {
                out.push(child);
            }
        }
    }
    out
}

fn threads_of(pid: i32) -> Vec<i32> {
    match std::fs::read_dir(format!("/proc/{pid}/task")) {
        Ok(d) => d.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect(),
        Err(_) => Vec::new(),
    }
}

/// Detaches every traced thread when dropped: on timeout, on error, on panic.
struct Attached {
    tids: HashSet<i32>,
}

impl Drop for Attached {
    fn drop(&mut self) {
        for &tid in &self.tids {
            let pid = Pid::from_raw(tid);
            // A thread must be stopped to be detached: interrupt it, wait for the stop, let go.
            if ptrace::interrupt(pid).is_ok() {
                // Generous: on a loaded machine the thread may take a while to be scheduled into its stop, and a
                // thread not stopped by then cannot be detached — it would stay traced, stopped for good.
                let deadline = Instant::now() + Duration::from_secs(3);
                loop {
                    match waitpid(pid, Some(WaitPidFlag::__WALL | WaitPidFlag::WNOHANG)) {
                        Ok(WaitStatus::StillAlive) if Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) | Err(_) => break,
                        Ok(_) => {
                            let _ = ptrace::detach(pid, None);
                            break;
                        }
                    }
                }
            }
            let _ = ptrace::detach(pid, None);
        }
    }
}

/// Traces `pids` (and every thread and child of theirs) for `duration`, keeping at most `max_events`.
pub fn trace(pids: &[i32], duration: Duration, max_events: usize) -> Result<Vec<TraceEvent>, TraceError> {
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        return Err(TraceError::Unsupported);
    }
    if pids.is_empty() {
        return Err(TraceError::NoProcess("no pid given".into()));
    }
    let options = Options::PTRACE_O_TRACESYSGOOD
        | Options::PTRACE_O_TRACEFORK
        | Options::PTRACE_O_TRACEVFORK
        | Options::PTRACE_O_TRACECLONE;
    let mut attached = Attached { tids: HashSet::new() };
    for &pid in pids {
        attach(pid, options, &mut attached)?;
    }

    let mut events = Vec::new();
    let mut in_syscall: HashMap<i32, (u64, [u64; 6])> = HashMap::new();
    let deadline = Instant::now() + duration.min(MAX_DURATION);
    while Instant::now() < deadline && events.len() < max_events && !attached.tids.is_empty() {
        // Wait on the traced threads only (never on -1): lookout's own children, e.g. the demo's shop, must keep
        // their exit statuses for whoever started them.
        let mut progressed = false;
        let tids: Vec<i32> = attached.tids.iter().copied().collect();
        for tid in tids {
            let status = match waitpid(Pid::from_raw(tid), Some(WaitPidFlag::__WALL | WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => continue,
                Ok(s) => s,
                Err(Errno::ECHILD) => {
                    attached.tids.remove(&tid);
                    continue;
                }
                Err(_) => continue,
            };
            progressed = true;
            handle(status, &mut attached, &mut in_syscall, &mut events);
        }
        if !progressed {
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    drop(attached);
    Ok(events)
}

/// Seizes every thread of `pid` (skipping those already traced here, e.g. a pid named twice). Whether the
/// process exists is asked of the kernel (`kill(pid, 0)`), not of /proc alone: with `hidepid` another user's
/// process has no visible /proc entry, yet exists — and the answer then is why it cannot be traced.
fn attach(pid: i32, options: Options, attached: &mut Attached) -> Result<(), TraceError> {
    let mut threads = threads_of(pid);
    let mut hidden = false;
    if threads.is_empty() {
        match nix::sys::signal::kill(Pid::from_raw(pid), None) {
            Err(Errno::ESRCH) => return Err(TraceError::NoProcess(format!("pid {pid} does not exist"))),
            // It exists (EPERM: another user's) but /proc does not show it; its main thread is its pid.
            _ => {
                hidden = true;
                threads.push(pid);
            }
        }
    }
    let mut seen = HashSet::new();
    while let Some(tid) = threads.pop() {
        if !seen.insert(tid) || attached.tids.contains(&tid) {
            continue;
        }
        match ptrace::seize(Pid::from_raw(tid), options) {
            Ok(()) => {
                attached.tids.insert(tid);
                let _ = ptrace::interrupt(Pid::from_raw(tid));
                // Once traced, a process hidden by `hidepid` shows its threads.
                if std::mem::take(&mut hidden) {
                    threads.extend(threads_of(pid));
                }
            }
            Err(Errno::ESRCH) => {}
            Err(errno) => {
                let why = crate::refusal::explain(pid, errno, &crate::refusal::Facts::gather(pid));
                return Err(TraceError::Permission { pid, errno, why });
            }
        }
    }
    Ok(())
}

/// Acts on one stop of a traced thread and lets it run on to its next syscall.
fn handle(
    status: WaitStatus,
    attached: &mut Attached,
    in_syscall: &mut HashMap<i32, (u64, [u64; 6])>,
    events: &mut Vec<TraceEvent>,
) {
    match status {
        WaitStatus::PtraceSyscall(pid) => {
            on_syscall(pid, in_syscall, events);
            let _ = ptrace::syscall(pid, None);
        }
        WaitStatus::PtraceEvent(pid, _, event) => {
            if [libc_event::FORK, libc_event::VFORK, libc_event::CLONE].contains(&event)
                && let Ok(child) = ptrace::getevent(pid)
            {
                attached.tids.insert(child as i32);
            }
            let _ = ptrace::syscall(pid, None);
        }
        WaitStatus::Stopped(pid, sig) => {
            // A signal for the tracee (or the first stop of a new child): deliver it and go on.
            let deliver = if sig == Signal::SIGSTOP || sig == Signal::SIGTRAP { None } else { Some(sig) };
            let _ = ptrace::syscall(pid, deliver);
        }
        WaitStatus::Exited(pid, _) | WaitStatus::Signaled(pid, _, _) => {
            attached.tids.remove(&pid.as_raw());
            in_syscall.remove(&pid.as_raw());
        }
        _ => {}
    }
}

/// `PTRACE_EVENT_*` numbers (nix reports them as plain integers).
mod libc_event {
    pub const FORK: i32 = 1;
    pub const VFORK: i32 = 2;
    pub const CLONE: i32 = 3;
}

/// Path-taking syscalls on x86_64: (number, name, index of the path argument, index of a dirfd argument).
const PATH_SYSCALLS: &[(u64, &str, usize, Option<usize>)] = &[
    (2, "open", 0, None),
    (4, "stat", 0, None),
    (6, "lstat", 0, None),
    (21, "access", 0, None),
    (59, "execve", 0, None),
    (80, "chdir", 0, None),
    (82, "rename", 0, None),
    (83, "mkdir", 0, None),
    (87, "unlink", 0, None),
    (89, "readlink", 0, None),
    (257, "openat", 1, Some(0)),
    (262, "newfstatat", 1, Some(0)),
    (267, "readlinkat", 1, Some(0)),
    (269, "faccessat", 1, Some(0)),
    (332, "statx", 1, Some(0)),
    (437, "openat2", 1, Some(0)),
    (439, "faccessat2", 1, Some(0)),
];

fn on_syscall(pid: Pid, in_syscall: &mut HashMap<i32, (u64, [u64; 6])>, events: &mut Vec<TraceEvent>) {
    let Ok(regs) = ptrace::getregs(pid) else { return };
    let tid = pid.as_raw();
    // At a syscall-entry stop the kernel has put -ENOSYS in rax: that tells entry from exit even for a thread
    // that was attached in the middle of a blocking call.
    if regs.rax as i64 == -(Errno::ENOSYS as i64) {
        let args = [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9];
        in_syscall.insert(tid, (regs.orig_rax, args));
        return;
    }
    match in_syscall.remove(&tid) {
        Some((nr, _)) if nr != regs.orig_rax => {}
        None => {}
        Some((nr, args)) => {
            // Exit: the return value is in rax (negative errno on failure).
            let ret = regs.rax as i64;
            if let Some(&(_, name, path_arg, dirfd_arg)) = PATH_SYSCALLS.iter().find(|(n, ..)| *n == nr) {
                let Some(raw) = read_c_string(pid, args[path_arg]) else { return };
                let path = resolve(tid, &raw, dirfd_arg.map(|i| args[i] as i64));
                events.push(if ret < 0 {
                    TraceEvent::PathFailed { pid: tid, syscall: name, path, errno: errno_name(-ret) }
                } else {
                    TraceEvent::PathOk { pid: tid, syscall: name, path }
                });
            } else if crate::answer::is_answer_syscall(nr) {
                match crate::answer::judge(tid, nr, &args, ret) {
                    Some(Answer::Status(status)) => events.push(TraceEvent::Response { pid: tid, status }),
                    // Over TLS the status line is encrypted; the access-log line the worker writes is not.
                    Some(Answer::Logged(status)) => events.push(TraceEvent::Logged { pid: tid, status }),
                    None => {}
                }
            }
        }
    }
}

fn errno_name(e: i64) -> String {
    let errno = Errno::from_raw(e as i32);
    format!("{errno:?}")
}

/// A NUL-terminated string from the tracee, read in pages so it never crosses into unmapped memory needlessly.
fn read_c_string(pid: Pid, addr: u64) -> Option<String> {
    if addr == 0 {
        return None;
    }
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < MAX_PATH {
        // Up to the end of the current page.
        let chunk = (4096 - (at % 4096)) as usize;
        let bytes = read_bytes(pid, at, chunk)?;
        if bytes.is_empty() {
            return None;
        }
        if let Some(nul) = bytes.iter().position(|b| *b == 0) {
            out.extend_from_slice(&bytes[..nul]);
            return Some(String::from_utf8_lossy(&out).into_owned());
        }
        out.extend_from_slice(&bytes);
        at += bytes.len() as u64;
    }
    None
}

/// Makes a path absolute against the dirfd (or the cwd) of the thread.
fn resolve(tid: i32, raw: &str, dirfd: Option<i64>) -> PathBuf {
    let p = PathBuf::from(raw);
    if p.is_absolute() {
        return p;
    }
    let base = match dirfd {
        Some(fd) if fd != AT_FDCWD => std::fs::read_link(format!("/proc/{tid}/fd/{fd}")),
        _ => std::fs::read_link(format!("/proc/{tid}/cwd")),
    };
    match base {
        Ok(b) => b.join(p),
        Err(_) => p,
    }
}

#[cfg(test)]
mod live {
    use super::*;
    use std::process::{Command, Stdio};

    /// State letter from /proc/PID/stat: R, S, D, T (stopped), t (tracing stop), Z...
    fn state(pid: i32) -> char {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next()).unwrap_or('?')
    }

    fn tracer_allowed() -> bool {
        nix::unistd::geteuid().is_root()
            || std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope").is_ok_and(|s| s.trim() == "0")
    }

    #[test]
    fn follows_forks_records_enoent_and_always_detaches() {
        if !tracer_allowed() {
            eprintln!("SKIPPED: tracing needs root or kernel.yama.ptrace_scope=0 here");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("settings.phpp");
        let script = format!("while :; do cat {} 2>/dev/null; sleep 0.02; done", missing.display());
        let mut child = Command::new("sh").arg("-c").arg(&script).stdout(Stdio::null()).spawn().unwrap();
        let pid = child.id() as i32;
        std::thread::sleep(Duration::from_millis(100));
        let events = trace(&[pid], Duration::from_millis(700), 10_000).unwrap();
        let failed: Vec<&TraceEvent> =
            events.iter().filter(|e| matches!(e, TraceEvent::PathFailed { path, .. } if *path == missing)).collect();
        assert!(!failed.is_empty(), "no failing open of {missing:?} in {} events", events.len());
        assert!(
            failed
                .iter()
                .any(|e| matches!(e, TraceEvent::PathFailed { syscall: "openat", errno, .. } if errno == "ENOENT")),
            "{failed:?}"
        );
        // Detached: the shell runs on, not stopped, and its children are untraced.
        std::thread::sleep(Duration::from_millis(100));
        let s = state(pid);
        let tracer = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        // Killed before the assertions, so a failure leaves no looping shell behind.
        child.kill().unwrap();
        let _ = child.wait();
        // Running or sleeping (D too: a busy disk during exec), never stopped (T) or in a tracing stop (t).
        assert!(matches!(s, 'S' | 'R' | 'D'), "traced process left in state {s}: {tracer}");
        assert!(tracer.lines().any(|l| l == "TracerPid:\t0"), "{tracer}");
    }

    #[test]
    fn a_process_that_exits_mid_trace_ends_cleanly() {
        if !tracer_allowed() {
            eprintln!("SKIPPED: tracing needs root or kernel.yama.ptrace_scope=0 here");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let done = dir.path().join("done");
        let script = format!("sleep 0.2; cat /nonexistent-lookout-exit-test 2>/dev/null; touch {}", done.display());
        let mut child = Command::new("sh").arg("-c").arg(script).spawn().unwrap();
        let pid = child.id() as i32;
        let started = Instant::now();
        let events = trace(&[pid], Duration::from_secs(2), 10_000).unwrap();
        assert!(started.elapsed() < Duration::from_millis(1900), "returns once everything traced has exited");
        assert!(events.iter().any(
            |e| matches!(e, TraceEvent::PathFailed { path, .. } if path.ends_with("nonexistent-lookout-exit-test"))
        ));
        // We are its parent and its tracer: its exit status was collected while tracing.
        let _ = child.wait();
        assert!(done.exists(), "the traced process ran to its normal end");
    }

    /// Sends one response by each call a worker can answer with, after a line on stdin (so the tracer is attached
    /// first), over a socket pair it drains itself.
    const ANSWERS_PY: &str = r#"
import os, socket, sys, tempfile
a, b = socket.socketpair()
def stored(text):
    f = tempfile.TemporaryFile()
    f.write(text)
    f.flush()
    f.seek(0)
    return f
sys.stdin.readline()
a.send(b"HTTP/1.1 500 Internal Server Error\r\n\r\n")                  # sendto
a.sendmsg([b"HTTP/1.1 ", b"502 Bad Gateway\r\n", b"\r\n"])              # sendmsg, split
f = stored(b"HTTP/1.1 503 Service Unavailable\r\n\r\n")
os.sendfile(a.fileno(), f.fileno(), None, 64)                           # sendfile of a stored response
body = stored(b"<h1>just a body</h1>")
os.sendfile(a.fileno(), body.fileno(), 0, 64)                           # sendfile of a body: no status
g = stored(b"xxHTTP/1.1 504 Gateway Timeout\r\n\r\n")
r, w = os.pipe()
n = os.splice(g.fileno(), w, 64, offset_src=2)                          # splice file -> pipe
os.splice(r, a.fileno(), n)                                             # splice pipe -> socket: not peeked
a.close()
while b.recv(4096):
    pass
"#;

    #[test]
    fn every_way_a_worker_answers_is_seen() {
        if !tracer_allowed() {
            eprintln!("SKIPPED: tracing needs root or kernel.yama.ptrace_scope=0 here");
            return;
        }
        let Ok(mut child) =
            Command::new("python3").args(["-c", ANSWERS_PY]).stdin(Stdio::piped()).stdout(Stdio::null()).spawn()
        else {
            eprintln!("SKIPPED: python3 is not installed");
            return;
        };
        let pid = child.id() as i32;
        // Let Python start and block on stdin, then trace it while it answers.
        std::thread::sleep(Duration::from_millis(500));
        let tracer = std::thread::spawn(move || trace(&[pid], Duration::from_secs(5), 100_000));
        std::thread::sleep(Duration::from_millis(200));
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(b"go\n").unwrap();
        }
        let events = tracer.join().unwrap().unwrap();
        let _ = child.wait();
        let statuses: Vec<u16> = events
            .iter()
            .filter_map(|e| match e {
                TraceEvent::Response { status, .. } => Some(*status),
                _ => None,
            })
            .collect();
        assert_eq!(statuses, [500, 502, 503, 504], "sendto, sendmsg, sendfile and splice, each once: {events:?}");
    }

    #[test]
    fn clear_errors_for_missing_processes() {
        let e = trace(&[], Duration::from_millis(10), 10).unwrap_err();
        assert!(matches!(e, TraceError::NoProcess(_)));
        let e = trace(&[i32::MAX - 7], Duration::from_millis(10), 10).unwrap_err().to_string();
        assert!(e.contains("does not exist"), "{e}");
        assert!(pids_by_name("no-such-process-name-lookout").is_empty());
    }
}
