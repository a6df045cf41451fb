//! From a trace to a verdict: segment each worker's syscalls by request (up to the status line it sends, or the
//! access-log line it writes when the status line is unreadable — one request either way, whichever comes first),
//! keep the failing paths of requests answered 5xx that never fail in requests answered below 400, rank them.
//! A path that fails in successful requests too (DirectoryIndex probing, include_path walks, optional files)
//! is noise, not a cause. With no successful request to compare with (the whole site down), routine lookups are
//! recognised by their shape inside one request instead (`routine.rs`) and are never causes. A PHP-FPM worker's requests are bounded by FastCGI records instead (`fastcgi.rs`): they
//! begin at [`TraceEvent::Request`] and end at the [`TraceEvent::Response`] its `Status:` header gives.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;

use serde::Serialize;

use crate::hints::{self, Missing};
use crate::routine::{Lookup, routine_failures};
use crate::trace::TraceEvent;

/// A failing path, with how often it failed in failing and in successful requests.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Candidate {
    pub path: PathBuf,
    pub errno: String,
    /// The syscalls that failed on it, e.g. `["newfstatat", "openat"]`.
    pub syscalls: Vec<&'static str>,
    pub pids: Vec<i32>,
    pub in_failing_requests: u32,
    pub in_ok_requests: u32,
    pub hint: Option<Missing>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Correlation {
    pub failing_requests: u32,
    pub ok_requests: u32,
    /// Best first.
    pub candidates: Vec<Candidate>,
    /// Failing paths that also fail in successful requests.
    pub noise: Vec<Candidate>,
    /// Failing paths that only ever failed as routine lookups (DirectoryIndex negotiation, the include_path walk,
    /// `.htaccess`/`.user.ini`, opcache's file cache): never causes, even when no request succeeded.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routine: Vec<Candidate>,
}

#[derive(Default)]
struct Tally {
    syscalls: BTreeSet<&'static str>,
    pids: BTreeSet<i32>,
    failing: u32,
    ok: u32,
}

/// One request's path syscalls so far, in order: (syscall, path, errno when it failed).
type InRequest = Vec<(&'static str, PathBuf, Option<String>)>;

pub fn correlate(events: &[TraceEvent]) -> Correlation {
    let mut pending: HashMap<i32, InRequest> = HashMap::new();
    // Workers whose current request already ended with a readable status line: their access-log line that
    // follows is the same request, not another one.
    let mut answered: HashSet<i32> = HashSet::new();
    // Workers whose last event was an access-log line that ended a request (and its status): servers that log
    // before they send (Python's http.server) follow it with the status line of the same request.
    let mut logged: HashMap<i32, u16> = HashMap::new();
    let mut tallies: BTreeMap<(PathBuf, String), Tally> = BTreeMap::new();
    let mut routine: BTreeMap<(PathBuf, String), Tally> = BTreeMap::new();
    // Requests counted where the client saw them (a web server's status line or access-log line) and where PHP-FPM
    // ran them (FastCGI): with nginx and FPM traced together each request is both, and is counted once.
    let (mut front, mut backend) = (Counts::default(), Counts::default());
    let mut fastcgi_workers: HashSet<i32> = HashSet::new();
    for e in events {
        match e {
            TraceEvent::PathFailed { pid, syscall, path, errno } => {
                logged.remove(pid);
                pending.entry(*pid).or_default().push((syscall, path.clone(), Some(errno.clone())));
            }
            // Kept only while a request is open: a routine miss is recognised by what is found after it.
            TraceEvent::PathOk { pid, syscall, path } => {
                pending.entry(*pid).or_default().push((syscall, path.clone(), None));
            }
            // A FastCGI request begins: failures since the worker's last request ended belong to no request.
            TraceEvent::Request { pid, .. } => {
                fastcgi_workers.insert(*pid);
                pending.remove(pid);
            }
            TraceEvent::Logged { pid, .. } if answered.remove(pid) => {}
            // The status line of the request whose access-log line came first: counted already.
            TraceEvent::Response { pid, status } if logged.get(pid) == Some(status) => {
                logged.remove(pid);
            }
            TraceEvent::Response { pid, status } | TraceEvent::Logged { pid, status } => {
                if matches!(e, TraceEvent::Response { .. }) {
                    answered.insert(*pid);
                    logged.remove(pid);
                } else {
                    logged.insert(*pid, *status);
                }
                let request = pending.remove(pid).unwrap_or_default();
                let failing = *status >= 500;
                let ok = *status < 400;
                let counts = if fastcgi_workers.contains(pid) { &mut backend } else { &mut front };
                counts.failing += u32::from(failing);
                counts.ok += u32::from(ok);
                let lookups: Vec<Lookup<'_>> =
                    request.iter().map(|(_, path, errno)| Lookup { path, errno: errno.as_deref() }).collect();
                let routine_here = routine_failures(&lookups);
                // Each failing (path, errno) once per request: as a routine lookup only when every failure of it
                // in this request was one.
                let mut failed: BTreeMap<(PathBuf, String), (BTreeSet<&'static str>, bool)> = BTreeMap::new();
                for (i, (syscall, path, errno)) in request.into_iter().enumerate() {
                    let Some(errno) = errno else { continue };
                    let entry = failed.entry((path, errno)).or_insert_with(|| (BTreeSet::new(), true));
                    entry.0.insert(syscall);
                    entry.1 &= routine_here.contains(&i);
                }
                for (key, (syscalls, is_routine)) in failed {
                    let t = if is_routine { routine.entry(key) } else { tallies.entry(key) }.or_default();
                    t.syscalls.extend(syscalls);
                    t.pids.insert(*pid);
                    t.failing += u32::from(failing);
                    t.ok += u32::from(ok);
                }
            }
        }
    }
    let Counts { failing: failing_requests, ok: ok_requests } =
        if front.failing + front.ok > 0 { front } else { backend };
    let (mut candidates, mut noise) = (Vec::new(), Vec::new());
    let routine: Vec<Candidate> = routine
        .into_iter()
        .filter(|(key, _)| !tallies.contains_key(key))
        .map(|((path, errno), t)| candidate(path, errno, t, None))
        .collect();
    for ((path, errno), t) in tallies {
        let hint = if errno == "ENOENT" { hints::enoent(&path) } else { None };
        let c = candidate(path, errno, t, hint);
        if c.in_failing_requests > 0 && c.in_ok_requests == 0 {
            candidates.push(c);
        } else if c.in_ok_requests > 0 {
            noise.push(c);
        }
    }
    // Most failing requests first; then a permission problem (rarely noise); then a file that has a near namesake
    // (a typo); then opens over stats.
    candidates.sort_by(|a, b| {
        b.in_failing_requests
            .cmp(&a.in_failing_requests)
            .then_with(|| (a.errno != "EACCES").cmp(&(b.errno != "EACCES")))
            .then_with(|| has_suggestion(b).cmp(&has_suggestion(a)))
            .then_with(|| b.syscalls.contains(&"openat").cmp(&a.syscalls.contains(&"openat")))
            .then_with(|| a.path.cmp(&b.path))
    });
    Correlation { failing_requests, ok_requests, candidates, noise, routine }
}

/// Requests answered 5xx and below 400.
#[derive(Default)]
struct Counts {
    failing: u32,
    ok: u32,
}

fn candidate(path: PathBuf, errno: String, t: Tally, hint: Option<Missing>) -> Candidate {
    Candidate {
        path,
        errno,
        syscalls: t.syscalls.into_iter().collect(),
        pids: t.pids.into_iter().collect(),
        in_failing_requests: t.failing,
        in_ok_requests: t.ok,
        hint,
    }
}

impl Candidate {
    /// Which program failed on the path: with several traced (nginx and PHP-FPM), the one whose pid it was, not
    /// the first one named; `fallback` when that pid is gone.
    fn process(&self, fallback: &str) -> String {
        self.pids.first().and_then(|p| crate::live::process_label(*p)).unwrap_or_else(|| fallback.to_string())
    }
}

fn has_suggestion(c: &Candidate) -> bool {
    c.hint.as_ref().is_some_and(|h| !h.suggestions().is_empty())
}

impl Correlation {
    /// The verdict, e.g. `Probable root cause: /srv/www/inc/settings.phpp does not exist (ENOENT in openat by
    /// pid 4242, in 10 of 10 failing requests, 0 of 5 successful); did you mean /srv/www/inc/settings.php?`
    pub fn verdict(&self, process: &str) -> String {
        let Some(c) = self.candidates.first() else {
            return if self.failing_requests == 0 {
                format!("No failing requests were seen while tracing ({} successful)", self.ok_requests)
            } else {
                format!(
                    "No failing file operations in failing requests ({} failing, {} successful): look at the error log (a PHP parse error fails no syscall)",
                    self.failing_requests, self.ok_requests
                )
            };
        };
        let what = match c.errno.as_str() {
            "ENOENT" => "does not exist",
            "EACCES" | "EPERM" => "cannot be opened by the server (permission denied)",
            _ => "fails",
        };
        let pids: Vec<String> = c.pids.iter().take(3).map(ToString::to_string).collect();
        let mut s = format!(
            "Probable root cause: {} {what} ({} in {} by {} pid {}, in {} of {} failing requests, {} of {} successful)",
            c.path.display(),
            c.errno,
            c.syscalls.join("/"),
            c.process(process),
            pids.join(","),
            c.in_failing_requests,
            self.failing_requests,
            c.in_ok_requests,
            self.ok_requests
        );
        if let Some(best) = c.hint.as_ref().and_then(|h| h.suggestions().first()) {
            s.push_str(&format!("; did you mean {}?", best.display()));
        }
        // The name is there, as a link to nothing (a release directory removed under a `current` symlink).
        if c.errno == "ENOENT"
            && let Some(target) = hints::dangling(&c.path)
        {
            s.push_str(&format!("; it is a symlink to {}, which does not exist", target.display()));
        }
        if c.errno == "EACCES"
            && let Some(pid) = c.pids.first()
        {
            s.push_str(&permission_explanation(&c.path, *pid));
        }
        s
    }
}

impl Correlation {
    /// The verdict with its structure, for incidents: what failed, where, and the traced calls behind it. `None`
    /// when no failing path explains the failing requests.
    pub fn diagnosis(&self, process: &str) -> Option<lookout_core::Diagnosis> {
        let c = self.candidates.first()?;
        let cause = match c.errno.as_str() {
            "ENOENT" => lookout_core::Cause::Missing,
            "EACCES" | "EPERM" => lookout_core::Cause::Unreadable,
            _ => lookout_core::Cause::Failing,
        };
        let evidence = self
            .candidates
            .iter()
            .take(3)
            .map(|c| {
                format!(
                    "{}(\"{}\") = -1 {} in {} of {} failing requests and {} of {} successful ({} pids {})",
                    c.syscalls.join("/"),
                    c.path.display(),
                    c.errno,
                    c.in_failing_requests,
                    self.failing_requests,
                    c.in_ok_requests,
                    self.ok_requests,
                    c.process(process),
                    c.pids.iter().take(3).map(ToString::to_string).collect::<Vec<_>>().join(",")
                )
            })
            .collect();
        Some(lookout_core::Diagnosis {
            verdict: self.verdict(process),
            cause: Some(cause),
            path: Some(c.path.display().to_string()),
            source: "trace".into(),
            evidence,
        })
    }
}

/// `; uid 33 (gids 33) lacks read (r) on /srv/www/inc/settings.php (owner 0:0, mode 600)` — from the worker's
/// credentials in /proc and each step of the path.
fn permission_explanation(path: &std::path::Path, pid: i32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| -> Vec<u32> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.split_whitespace().filter_map(|n| n.parse().ok()).collect())
            .unwrap_or_default()
    };
    let (Some(&uid), gids) = (field("Uid:").get(1), {
        let mut g = field("Gid:").into_iter().skip(1).take(1).collect::<Vec<_>>();
        // The primary group is usually among the supplementary ones too: each is shown once.
        for extra in field("Groups:") {
            if !g.contains(&extra) {
                g.push(extra);
            }
        }
        g
    }) else {
        return String::new();
    };
    let steps = hints::eacces(path, uid, &gids);
    match steps.iter().find(|s| s.missing.is_some()) {
        Some(step) => format!(
            "; uid {uid} (gids {}) lacks {} on {} (owner {}:{}, mode {:o})",
            gids.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
            step.missing.as_deref().unwrap_or("access"),
            step.path.display(),
            step.uid,
            step.gid,
            step.mode
        ),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(pid: i32, syscall: &'static str, path: &str) -> TraceEvent {
        TraceEvent::PathFailed { pid, syscall, path: PathBuf::from(path), errno: "ENOENT".into() }
    }

    fn response(pid: i32, status: u16) -> TraceEvent {
        TraceEvent::Response { pid, status }
    }

    #[test]
    fn causes_fail_only_in_failing_requests_and_noise_everywhere() {
        let mut events = Vec::new();
        for i in 0..4 {
            // Pids no process can have (above PID_MAX_LIMIT): the verdict names the program given, not a live one.
            let pid = 5_000_100 + i % 2;
            events.push(failed(pid, "newfstatat", "/nonexistent-lookout/www/index.html"));
            events.push(failed(pid, "newfstatat", "/nonexistent-lookout/www/inc/settings.phpp"));
            events.push(failed(pid, "openat", "/nonexistent-lookout/www/inc/settings.phpp"));
            events.push(response(pid, 500));
            events.push(failed(pid, "newfstatat", "/nonexistent-lookout/www/index.html"));
            events.push(response(pid, 200));
        }
        events.push(failed(5_000_100, "openat", "/in/flight"));
        // Per-directory config lookups fail in every request: routine, never a cause.
        events.push(failed(5_000_102, "openat", "/.htaccess"));
        events.push(failed(5_000_102, "openat", "/nonexistent-lookout/www/inc/settings.phpp"));
        events.push(response(5_000_102, 500));
        let c = correlate(&events);
        assert_eq!((c.failing_requests, c.ok_requests), (5, 4));
        assert_eq!(c.candidates.len(), 1);
        assert_eq!(c.routine.len(), 1);
        assert_eq!(c.routine[0].path, PathBuf::from("/.htaccess"));
        assert_eq!(c.candidates[0].path, PathBuf::from("/nonexistent-lookout/www/inc/settings.phpp"));
        assert_eq!(c.candidates[0].syscalls, vec!["newfstatat", "openat"]);
        assert_eq!(c.candidates[0].in_failing_requests, 5);
        assert_eq!(c.noise.len(), 1, "index.html fails in successful requests too");
        assert_eq!(
            c.verdict("apache2"),
            "Probable root cause: /nonexistent-lookout/www/inc/settings.phpp does not exist (ENOENT in newfstatat/openat by apache2 pid 5000100,5000101,5000102, in 5 of 5 failing requests, 0 of 4 successful)"
        );
    }

    #[test]
    fn routine_lookups_and_permissions_rank_by_meaning_not_by_name() {
        let mut events = Vec::new();
        for _ in 0..3 {
            events.push(failed(7, "openat", "/.htaccess"));
            events.push(TraceEvent::PathFailed {
                pid: 7,
                syscall: "openat",
                path: PathBuf::from("/srv/www/inc/settings.php"),
                errno: "EACCES".into(),
            });
            events.push(failed(7, "openat", "/srv/www/a-missing-optional.conf"));
            events.push(response(7, 500));
        }
        let c = correlate(&events);
        let order: Vec<&str> = c.candidates.iter().map(|c| c.path.to_str().unwrap()).collect();
        assert_eq!(order, ["/srv/www/inc/settings.php", "/srv/www/a-missing-optional.conf"]);
    }

    fn found(pid: i32, syscall: &'static str, path: &str) -> TraceEvent {
        TraceEvent::PathOk { pid, syscall, path: PathBuf::from(path) }
    }

    fn request(pid: i32) -> TraceEvent {
        TraceEvent::Request { pid, script: None, uri: None }
    }

    /// The whole site down (no successful request): what is routine is told by its shape in each request.
    #[test]
    fn a_full_outage_lists_no_routine_lookup() {
        let mut events = Vec::new();
        for i in 0..5 {
            // Apache mod_php: DirectoryIndex "index.html index.php", then an unreadable include.
            let pid = 10 + i % 2;
            events.push(failed(pid, "newfstatat", "/nonexistent-lookout/www/index.html"));
            events.push(found(pid, "newfstatat", "/nonexistent-lookout/www/index.php"));
            events.push(failed(pid, "newfstatat", "/nonexistent-lookout/www/.htaccess"));
            events.push(TraceEvent::PathFailed {
                pid,
                syscall: "openat",
                path: PathBuf::from("/nonexistent-lookout/www/inc/settings.php"),
                errno: "EACCES".into(),
            });
            events.push(response(pid, 500));
            // PHP-FPM: .user.ini lookups and the include_path walk, then a missing require.
            let pid = 20 + i % 3;
            events.push(request(pid));
            events.push(failed(pid, "newfstatat", "/nonexistent-lookout/www/.user.ini"));
            events.push(failed(pid, "newfstatat", "/nonexistent-lookout/www/Mail/mime.php"));
            events.push(found(pid, "newfstatat", "/usr/share/php/Mail/mime.php"));
            events.push(found(pid, "openat", "/usr/share/php/Mail/mime.php"));
            events.push(failed(pid, "newfstatat", "/nonexistent-lookout/www/inc/settings.phpp"));
            events.push(failed(pid, "openat", "/nonexistent-lookout/www/inc/settings.phpp"));
            events.push(response(pid, 500));
        }
        let c = correlate(&events);
        // Requests are counted where clients saw them (the status lines), not again as FastCGI requests.
        assert_eq!((c.failing_requests, c.ok_requests), (5, 0));
        let causes: Vec<&str> = c.candidates.iter().map(|c| c.path.to_str().unwrap()).collect();
        assert_eq!(causes, ["/nonexistent-lookout/www/inc/settings.php", "/nonexistent-lookout/www/inc/settings.phpp"]);
        let routine: Vec<&str> = c.routine.iter().map(|c| c.path.to_str().unwrap()).collect();
        assert_eq!(
            routine,
            [
                "/nonexistent-lookout/www/.htaccess",
                "/nonexistent-lookout/www/.user.ini",
                "/nonexistent-lookout/www/Mail/mime.php",
                "/nonexistent-lookout/www/index.html"
            ]
        );
        assert!(c.noise.is_empty());
    }

    /// A missing index with no other index found after it is what fails the request; so is a path that is routine
    /// in one request but fails plainly in another.
    #[test]
    fn a_missing_index_not_followed_by_another_stays_a_cause() {
        let events = vec![
            failed(1, "openat", "/nonexistent-lookout/www/index.php"),
            found(1, "openat", "/nonexistent-lookout/www/style.css"),
            response(1, 500),
            failed(1, "newfstatat", "/nonexistent-lookout/www/index.html"),
            found(1, "newfstatat", "/nonexistent-lookout/www/index.php"),
            response(1, 500),
            failed(1, "newfstatat", "/nonexistent-lookout/www/index.html"),
            response(1, 500),
        ];
        let c = correlate(&events);
        let causes: Vec<(&str, u32)> =
            c.candidates.iter().map(|c| (c.path.to_str().unwrap(), c.in_failing_requests)).collect();
        assert_eq!(causes, [("/nonexistent-lookout/www/index.php", 1), ("/nonexistent-lookout/www/index.html", 1)]);
        assert!(c.routine.is_empty(), "index.html failed plainly once: it is not only routine");
    }

    #[test]
    fn access_log_lines_end_requests_only_when_the_status_line_was_unreadable() {
        let logged = |pid, status| TraceEvent::Logged { pid, status };
        let events = vec![
            // Plain HTTP: status line, then the access-log line of the same request.
            failed(1, "openat", "/nonexistent-lookout/a.php"),
            response(1, 500),
            logged(1, 500),
            // TLS: only the access-log line tells the status.
            failed(2, "openat", "/nonexistent-lookout/a.php"),
            logged(2, 500),
            logged(2, 200),
        ];
        let c = correlate(&events);
        assert_eq!((c.failing_requests, c.ok_requests), (2, 1));
        assert_eq!(c.candidates[0].in_failing_requests, 2);
    }

    #[test]
    fn an_access_log_line_written_before_the_status_line_is_the_same_request() {
        let logged = |pid, status| TraceEvent::Logged { pid, status };
        let events = vec![
            // Python's http.server: log line, then the response (sendto), for each request.
            failed(1, "openat", "/nonexistent-lookout/conf.jsn"),
            logged(1, 500),
            response(1, 500),
            logged(1, 200),
            response(1, 200),
            failed(1, "openat", "/nonexistent-lookout/conf.jsn"),
            logged(1, 500),
            response(1, 500),
            // A TLS request (log line only) followed by a plain one with a failing path between: two requests.
            logged(2, 200),
            failed(2, "openat", "/nonexistent-lookout/conf.jsn"),
            response(2, 500),
        ];
        let c = correlate(&events);
        assert_eq!((c.failing_requests, c.ok_requests), (3, 2));
        assert_eq!(c.candidates[0].in_failing_requests, 3);
    }

    #[test]
    fn json_shape() {
        let events = vec![
            failed(9, "newfstatat", "/nonexistent-lookout/www/inc/settings.phpp"),
            failed(9, "openat", "/nonexistent-lookout/www/inc/settings.phpp"),
            failed(9, "newfstatat", "/nonexistent-lookout/www/index.html"),
            response(9, 500),
            failed(9, "newfstatat", "/nonexistent-lookout/www/index.html"),
            response(9, 200),
        ];
        insta::assert_json_snapshot!(correlate(&events));
    }

    #[test]
    fn a_dangling_symlink_is_named_with_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("settings.php");
        std::os::unix::fs::symlink(dir.path().join("releases/41/settings.php"), &link).unwrap();
        let events = [
            TraceEvent::Request { pid: 5_000_003, script: None, uri: None },
            TraceEvent::PathFailed { pid: 5_000_003, syscall: "openat", path: link.clone(), errno: "ENOENT".into() },
            response(5_000_003, 500),
        ];
        let v = correlate(&events).verdict("php-fpm8.2");
        let says = format!(
            "{} does not exist (ENOENT in openat by php-fpm8.2 pid 5000003, in 1 of 1 failing requests, 0 of 0 successful); it is a symlink to {}, which does not exist",
            link.display(),
            dir.path().join("releases/41/settings.php").display()
        );
        assert!(v.ends_with(&says), "{v}");
    }

    #[test]
    fn verdicts_without_a_cause() {
        assert_eq!(
            correlate(&[response(1, 200)]).verdict("x"),
            "No failing requests were seen while tracing (1 successful)"
        );
        assert!(
            correlate(&[response(1, 500)]).verdict("x").starts_with("No failing file operations in failing requests")
        );
    }

    /// nginx and PHP-FPM traced together: each request is nginx's status line and FPM's FastCGI request, and is
    /// counted once, where the client saw it.
    #[test]
    fn a_request_seen_by_the_web_server_and_by_fpm_counts_once() {
        let (nginx, fpm) = (5_000_001, 5_000_002);
        let mut events = Vec::new();
        for _ in 0..3 {
            events.push(request(fpm));
            events.push(failed(fpm, "openat", "/srv/www/inc/settings.phpp"));
            events.push(response(fpm, 500));
            events.push(response(nginx, 500));
        }
        events.push(found(nginx, "openat", "/srv/www/logo.png"));
        events.push(response(nginx, 200));
        let c = correlate(&events);
        assert_eq!((c.failing_requests, c.ok_requests), (3, 1));
        assert_eq!(c.candidates[0].in_failing_requests, 3);
        assert!(c.verdict("nginx").contains("by nginx pid 5000002, in 3 of 3 failing requests, 0 of 1 successful"));
        // FPM alone: its FastCGI requests are the requests.
        let fpm_only: Vec<TraceEvent> = events
            .iter()
            .filter(|e| !matches!(e, TraceEvent::Response { pid, .. } if *pid == nginx))
            .cloned()
            .collect();
        let c = correlate(&fpm_only);
        assert_eq!((c.failing_requests, c.ok_requests), (3, 0));
    }
}
