//! A bounded strace of the web server's workers: `PTRACE_SEIZE` every thread of the chosen processes (following
//! forks and clones), stop only at syscalls, record the path-taking ones with their errno and the HTTP status
//! lines the workers send (by any of the calls a response can leave by: see `answer.rs`), and always detach.
//!
//! Safety of the traced server comes first: no `PTRACE_O_EXITKILL` (if lookout dies, even by SIGKILL, the
//! kernel detaches and the server keeps serving), a hard time limit, an event cap, and a guard that detaches
//! every thread on every return path, including panics.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::ptrace::{self, Options};
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use serde::Serialize;

use crate::answer::{Answer, read_bytes};
use crate::fastcgi::{self, Tracker};

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
    /// A FastCGI request began (its PARAMS are through): what came before it on this worker belongs to no request.
    /// It ends with a [`TraceEvent::Response`] carrying the `Status:` of its output (see `fastcgi.rs`).
    Request { pid: i32, script: Option<PathBuf>, uri: Option<String> },
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
    #[error("cannot run the tracer: {0}")]
    Thread(String),
}

/// The longest trace: the server runs several times slower while traced (the same bound as `[target.diagnose]`).
pub const MAX_DURATION: Duration = Duration::from_secs(30);

/// Processes called `name`: by command name (`/proc/PID/comm`), or by process title (the first word of
/// `/proc/PID/cmdline`) — see [`name_matches`].
pub fn pids_by_name(name: &str) -> Vec<i32> {
    let name = name.trim();
    if name.is_empty() {
        return Vec::new();
    }
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut pids: Vec<i32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(comm) = std::fs::read_to_string(format!("/proc/{pid}/comm")) else { return false };
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            name_matches(name, comm.trim_end_matches('\n'), &title(&cmdline))
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// A process title as `ps` shows it: `argv[0]` up to its first NUL, without the padding `setproctitle` leaves.
fn title(cmdline: &[u8]) -> String {
    let first = cmdline.split(|b| *b == 0).next().unwrap_or_default();
    String::from_utf8_lossy(first).trim_end().to_string()
}

/// Whether a process with command name `comm` and title `title` is the one named `name`. Besides the exact command
/// name, what people call PHP-FPM works: `php-fpm` (the command is versioned, `php-fpm8.2`), `php-fpm8.2`, and the
/// titles FPM gives itself, `php-fpm: pool www` (that pool's workers) or `php-fpm: master process (…)`; so
/// `php-fpm` names the master and every pool's workers. A name with a version suffix of digits and dots matches the
/// versioned command (`php-fpm` → `php-fpm8.2`, `apache` → `apache2`), and a title matches whole or by its program
/// part before `:` (`php-fpm` → `php-fpm: pool www`). The kernel truncates comm to 15 bytes, so a longer name
/// matches a comm that is its first 15 bytes.
pub fn name_matches(name: &str, comm: &str, title: &str) -> bool {
    if comm == name || (name.len() > 15 && comm.len() == 15 && name.as_bytes().starts_with(comm.as_bytes())) {
        return true;
    }
    if comm.strip_prefix(name).is_some_and(|v| {
        v.starts_with(|c: char| c.is_ascii_digit()) && v.chars().all(|c| c.is_ascii_digit() || c == '.')
    }) {
        return true;
    }
    if title.is_empty() {
        return false;
    }
    title == name || title.split_once(':').is_some_and(|(program, _)| program == name)
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
///
/// The trace runs on a thread of its own, which matters twice: ptrace requests must all come from the thread that
/// attached, and that thread has no children of its own — so it can block in `waitpid(-1, __WNOTHREAD)` and be
/// woken by whichever traced thread stops next, without ever reaping a child someone else in lookout started
/// (the demo's shop, a test's worker). Blocking instead of polling each thread in turn is what keeps the time a
/// worker spends stopped short: see `bench/diagnose_overhead.sh`.
pub fn trace(pids: &[i32], duration: Duration, max_events: usize) -> Result<Vec<TraceEvent>, TraceError> {
    trace_until(pids, duration, max_events, &Stop::default())
}

/// Ends a trace before its deadline, from another thread: once the requests that show the failure have been
/// answered, every further moment traced only slows the server down.
#[derive(Clone, Default)]
pub struct Stop(Arc<StopState>);

#[derive(Default)]
struct StopState {
    requested: AtomicBool,
    /// The running alarm of the trace (see [`Alarm`]): killing it wakes the tracer's blocking wait.
    alarm: Mutex<Option<Pid>>,
}

impl Stop {
    /// Asks the trace to end now: it detaches and returns what it saw so far.
    pub fn now(&self) {
        self.0.requested.store(true, Ordering::SeqCst);
        if let Some(pid) = *self.0.alarm.lock().unwrap_or_else(|p| p.into_inner()) {
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
        }
    }

    fn requested(&self) -> bool {
        self.0.requested.load(Ordering::SeqCst)
    }
}

/// As [`trace`], ending early when `stop` says so.
pub fn trace_until(
    pids: &[i32],
    duration: Duration,
    max_events: usize,
    stop: &Stop,
) -> Result<Vec<TraceEvent>, TraceError> {
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        return Err(TraceError::Unsupported);
    }
    if pids.is_empty() {
        return Err(TraceError::NoProcess("no pid given".into()));
    }
    let (pids, stop) = (pids.to_vec(), stop.clone());
    let tracer = std::thread::Builder::new()
        .name("lookout-tracer".into())
        .spawn(move || trace_on_this_thread(&pids, duration, max_events, &stop))
        .map_err(|e| TraceError::Thread(e.to_string()))?;
    // A panic on the tracer thread has already detached everything (the guard's drop ran while unwinding).
    tracer.join().unwrap_or_else(|_| Err(TraceError::Thread("the tracer thread panicked".into())))
}

fn trace_on_this_thread(
    pids: &[i32],
    duration: Duration,
    max_events: usize,
    stop: &Stop,
) -> Result<Vec<TraceEvent>, TraceError> {
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
    let mut fcgi = Tracker::default();
    let deadline = Instant::now() + duration.min(MAX_DURATION);
    // Wakes the blocking wait at the deadline even when every worker sits idle in accept() or epoll_wait().
    let mut alarm = Alarm::start(deadline, stop);
    let blocking = alarm.pid.is_some();
    // Only traced threads and the alarm are children of this thread (`__WNOTHREAD`).
    let mut flags = WaitPidFlag::__WALL | WaitPidFlag::__WNOTHREAD;
    if !blocking {
        flags |= WaitPidFlag::WNOHANG;
    }
    while Instant::now() < deadline && events.len() < max_events && !attached.tids.is_empty() && !stop.requested() {
        let status = match waitpid(None, Some(flags)) {
            Ok(WaitStatus::StillAlive) => {
                std::thread::sleep(Duration::from_micros(100));
                continue;
            }
            Ok(status) => status,
            Err(Errno::EINTR) => continue,
            Err(_) => break,
        };
        if let Some(pid) = status.pid() {
            if alarm.is(pid) {
                if matches!(status, WaitStatus::Exited(..) | WaitStatus::Signaled(..)) {
                    alarm.reaped();
                    break;
                }
                continue;
            }
            // A new thread's first stop can come before its parent's clone event: it is ours either way.
            if !matches!(status, WaitStatus::Exited(..) | WaitStatus::Signaled(..)) {
                attached.tids.insert(pid.as_raw());
            }
        }
        handle(status, &mut attached, &mut in_syscall, &mut fcgi, &mut events);
    }
    drop(alarm);
    drop(attached);
    Ok(events)
}

/// A child of the tracer thread that exits at the deadline (or when killed by [`Stop::now`]), so that a blocking
/// `waitpid` returns then. `sleep` is in every base system; without it the wait polls instead.
struct Alarm {
    pid: Option<Pid>,
    stop: Stop,
}

impl Alarm {
    fn start(deadline: Instant, stop: &Stop) -> Alarm {
        let seconds = deadline.saturating_duration_since(Instant::now()).as_secs_f64();
        let child = std::process::Command::new("sleep")
            .arg(format!("{seconds:.3}"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        let pid = child.ok().and_then(|c| i32::try_from(c.id()).ok()).map(Pid::from_raw);
        *stop.0.alarm.lock().unwrap_or_else(|p| p.into_inner()) = pid;
        Alarm { pid, stop: stop.clone() }
    }

    fn is(&self, pid: Pid) -> bool {
        self.pid == Some(pid)
    }

    /// Waited for: its pid is no longer ours to signal (pids are not reused within the microseconds until this).
    fn reaped(&mut self) {
        *self.stop.0.alarm.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.pid = None;
    }
}

impl Drop for Alarm {
    /// Ended early (event cap, every worker gone): stop the alarm and reap it, leaving no zombie behind.
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            // Under the lock, so that a concurrent `Stop::now` never signals a pid reused after the reaping.
            let mut registered = self.stop.0.alarm.lock().unwrap_or_else(|p| p.into_inner());
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
            *registered = None;
            self.pid = None;
        }
    }
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
    fcgi: &mut Tracker,
    events: &mut Vec<TraceEvent>,
) {
    match status {
        WaitStatus::PtraceSyscall(pid) => {
            on_syscall(pid, in_syscall, fcgi, events);
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
            fcgi.forget(pid.as_raw());
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

fn on_syscall(
    pid: Pid,
    in_syscall: &mut HashMap<i32, (u64, [u64; 6])>,
    fcgi: &mut Tracker,
    events: &mut Vec<TraceEvent>,
) {
    let tid = pid.as_raw();
    // The exit of a call that tells nothing (mmap, poll, futex…): no register read at all. After a known entry
    // the thread's next syscall stop is that call's exit, so half of all stops cost just the resume.
    if let Some((nr, _)) = in_syscall.get(&tid)
        && !tells_something(*nr)
    {
        in_syscall.remove(&tid);
        return;
    }
    let Ok(regs) = ptrace::getregs(pid) else { return };
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
            } else {
                if Tracker::wants(nr) {
                    on_fastcgi(pid, nr, &args, ret, fcgi, events);
                }
                if !crate::answer::is_answer_syscall(nr) {
                    return;
                }
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

/// Whether a call's exit is worth reading: it takes a path, carries FastCGI records, or may send a response.
fn tells_something(nr: u64) -> bool {
    PATH_SYSCALLS.iter().any(|(n, ..)| *n == nr) || Tracker::wants(nr) || crate::answer::is_answer_syscall(nr)
}

/// Feeds a finished read, write or close of thread `pid` to the FastCGI tracker. Plain calls are read lazily out
/// of the tracee (a POST body in STDIN is skipped, not copied); vectored ones are gathered first, up to a cap.
fn on_fastcgi(pid: Pid, nr: u64, args: &[u64; 6], ret: i64, fcgi: &mut Tracker, events: &mut Vec<TraceEvent>) {
    let (tid, fd) = (pid.as_raw(), args[0]);
    if nr == fastcgi::SYS_CLOSE {
        if ret == 0 {
            fcgi.on_close(tid, fd, events);
        }
        return;
    }
    let Ok(len) = usize::try_from(ret) else { return };
    if len == 0 {
        return;
    }
    let writing = matches!(nr, fastcgi::SYS_WRITE | fastcgi::SYS_WRITEV | fastcgi::SYS_SENDTO | fastcgi::SYS_SENDMSG);
    // Writes matter only on connections already followed: no copy for the others.
    if writing && !fcgi.follows(tid, fd) {
        return;
    }
    let gathered = match nr {
        fastcgi::SYS_READV | fastcgi::SYS_WRITEV if len <= fastcgi::max_gather() => {
            crate::answer::read_iovecs(pid, args[1], args[2], len)
        }
        fastcgi::SYS_RECVMSG | fastcgi::SYS_SENDMSG if len <= fastcgi::max_gather() => {
            crate::answer::read_msghdr(pid, args[1], len)
        }
        fastcgi::SYS_READ | fastcgi::SYS_WRITE | fastcgi::SYS_SENDTO | fastcgi::SYS_RECVFROM => None,
        // Too large to gather: the connection cannot be followed through it.
        _ => Some(Vec::new()),
    };
    let base = args[1];
    let mut lazy = |at: usize, n: usize| read_bytes(pid, base.checked_add(at as u64)?, n);
    let gathered = gathered.unwrap_or_default();
    let vectored = !matches!(nr, fastcgi::SYS_READ | fastcgi::SYS_WRITE | fastcgi::SYS_SENDTO | fastcgi::SYS_RECVFROM);
    let mut from_copy = fastcgi::slice_fetch(&gathered);
    let fetch: &mut dyn FnMut(usize, usize) -> Option<Vec<u8>> = if vectored { &mut from_copy } else { &mut lazy };
    if writing {
        fcgi.on_write(tid, fd, len, fetch, events);
    } else {
        let is_socket = || {
            std::fs::read_link(format!("/proc/{tid}/fd/{fd}")).is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
        };
        fcgi.on_read(tid, fd, len, fetch, &is_socket, events);
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

    /// Runs a Python `script` that waits for a line on stdin, traces it while it runs, and returns what the
    /// tracer saw; `None` (said) where tracing or python3 is not available.
    fn trace_python(script: &str) -> Option<Vec<TraceEvent>> {
        if !tracer_allowed() {
            eprintln!("SKIPPED: tracing needs root or kernel.yama.ptrace_scope=0 here");
            return None;
        }
        let Ok(mut child) =
            Command::new("python3").args(["-c", script]).stdin(Stdio::piped()).stdout(Stdio::null()).spawn()
        else {
            eprintln!("SKIPPED: python3 is not installed");
            return None;
        };
        let pid = child.id() as i32;
        // Let Python start and block on stdin, then trace it while it runs.
        std::thread::sleep(Duration::from_millis(500));
        let tracer = std::thread::spawn(move || trace(&[pid], Duration::from_secs(5), 100_000));
        std::thread::sleep(Duration::from_millis(200));
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(b"go\n").unwrap();
        }
        let events = tracer.join().unwrap().unwrap();
        // Its exit status was collected by the tracer (its parent too); the events show it ran to its end.
        let _ = child.wait();
        Some(events)
    }

    #[test]
    fn every_way_a_worker_answers_is_seen() {
        let Some(events) = trace_python(ANSWERS_PY) else { return };
        let statuses: Vec<u16> = events
            .iter()
            .filter_map(|e| match e {
                TraceEvent::Response { status, .. } => Some(*status),
                _ => None,
            })
            .collect();
        assert_eq!(statuses, [500, 502, 503, 504], "sendto, sendmsg, sendfile and splice, each once: {events:?}");
    }

    /// A FastCGI "web server" and "worker" in one process over a socket pair: three requests, each read and
    /// answered by a different pair of calls (read/write, readv/writev, recvmsg/sendmsg), records split and merged
    /// across calls; a PHP-looking file read with read() between them.
    const FASTCGI_PY: &str = r#"
import os, socket, struct, sys, tempfile
srv, worker = socket.socketpair()
def rec(t, rid, body, pad=0):
    return struct.pack(">BBHHBB", 1, t, rid, len(body), pad, 0) + body + b"\0" * pad
def nv(n, v):
    return bytes([len(n), len(v)]) + n + v
def request(rid, uri):
    p = nv(b"SCRIPT_FILENAME", b"/srv/www/index.php") + nv(b"REQUEST_URI", uri)
    return (rec(1, rid, b"\0\1\0\0\0\0\0\0") + rec(4, rid, p, 3) + rec(4, rid, b"")
            + rec(5, rid, b"y" * 3000) + rec(5, rid, b""))
def response(rid, headers):
    return rec(6, rid, headers + b"\r\n\r\nbody", 4) + rec(6, rid, b"") + rec(3, rid, b"\0" * 8)
php = tempfile.TemporaryFile()
php.write(rec(1, 1, b"\0\1\0\0\0\0\0\0"))
php.flush()
sys.stdin.readline()
fd = worker.fileno()
for i, (uri, headers) in enumerate([(b"/a", b"Status: 500 Internal Server Error"), (b"/b", b"Content-type: text/html"), (b"/c", b"Status: 404 Not Found")]):
    data = request(1, uri)
    srv.sendall(data)
    php.seek(0)
    os.read(php.fileno(), 64)
    out = response(1, headers)
    if i == 0:
        got = b""
        while len(got) < len(data):
            got += os.read(fd, 8 if len(got) % 2 == 0 else 1000)
        os.write(fd, out[:5]); os.write(fd, out[5:])
    elif i == 1:
        a, b = bytearray(13), bytearray(len(data) - 13)
        os.readv(fd, [a, b])
        os.writev(fd, [out[:20], out[20:]])
    else:
        worker.recvmsg(len(data))
        worker.sendmsg([out[:9], out[9:]])
    n = len(out)
    while n > 0:
        n -= len(srv.recv(65536))
"#;

    #[test]
    fn fastcgi_requests_are_seen_by_every_call_a_worker_reads_and_writes_with() {
        let Some(events) = trace_python(FASTCGI_PY) else { return };
        let seen: Vec<String> = events
            .iter()
            .filter_map(|e| match e {
                TraceEvent::Response { status, .. } => Some(status.to_string()),
                TraceEvent::Request { uri: Some(uri), .. } => Some(uri.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(seen, ["/a", "500", "/b", "200", "/c", "404"], "{events:?}");
    }

    #[test]
    fn clear_errors_for_missing_processes() {
        let e = trace(&[], Duration::from_millis(10), 10).unwrap_err();
        assert!(matches!(e, TraceError::NoProcess(_)));
        let e = trace(&[i32::MAX - 7], Duration::from_millis(10), 10).unwrap_err().to_string();
        assert!(e.contains("does not exist"), "{e}");
        assert!(pids_by_name("no-such-process-name-lookout").is_empty());
        assert!(pids_by_name("").is_empty());
    }

    #[test]
    fn fpm_is_found_by_every_name_people_use() {
        let master = "php-fpm: master process (/etc/php/8.2/fpm/php-fpm.conf)";
        for (name, comm, title) in [
            ("php-fpm8.2", "php-fpm8.2", "php-fpm: pool www"),
            ("php-fpm", "php-fpm8.2", "php-fpm: pool www"),
            ("php-fpm", "php-fpm8.2", master),
            ("php-fpm: pool www", "php-fpm8.2", "php-fpm: pool www"),
            ("apache2", "apache2", "/usr/sbin/apache2"),
            ("php-fpm7.4", "php-fpm7.4", ""),
            ("a-very-long-process-name", "a-very-long-pro", ""),
        ] {
            assert!(name_matches(name, comm, title), "{name:?} should match {comm:?} / {title:?}");
        }
        for (name, comm, title) in [
            ("php-fpm: pool www", "php-fpm8.2", master),
            ("php-fpm: pool www", "php-fpm8.2", "php-fpm: pool www2"),
            ("php", "php-fpm8.2", "php-fpm: pool www"),
            ("php-fpm8", "php-fpm8.2", "php-fpm: pool www"),
            ("apache2", "apache2-helper", ""),
            ("nginx", "nginx2x", "nginx2x: worker process"),
        ] {
            assert!(!name_matches(name, comm, title), "{name:?} should not match {comm:?} / {title:?}");
        }
        assert_eq!(title(b"php-fpm: pool www\0\0\0\0"), "php-fpm: pool www");
        assert_eq!(title(b"/usr/sbin/nginx\0-c\0/x\0"), "/usr/sbin/nginx");
        assert_eq!(title(b""), "");
    }
}
