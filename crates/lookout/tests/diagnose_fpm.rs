//! `lookout diagnose --process php-fpm8.2` on a real nginx + PHP-FPM: the workers speak FastCGI, not HTTP, and
//! their requests are still told apart and judged — a missing required file and an unreadable one are named, a
//! healthy site gives "no failing requests", and a lookout killed mid-trace leaves every worker serving.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::lookout_bin;
use crate::support::php_fpm::PhpFpm;
use crate::support::tracing::{
    MISNAMED_REQUIRE, assert_eacces_verdict, assert_untraced, diagnose_process as diagnose_fpm, get, root_only,
    routine_listed, sigkill_mid_trace, tracing_allowed,
};

/// What lookout printed (shown in the test's output).
fn shown(out: &Output) -> String {
    crate::support::tracing::shown("(nginx + PHP-FPM)", out)
}

/// No FPM process is left traced or stopped.
fn untraced(fpm: &PhpFpm, when: &str) {
    assert_untraced(fpm.workers(), fpm.master(), when);
}

#[tokio::test(flavor = "multi_thread")]
async fn names_the_missing_required_file_from_fastcgi_requests() {
    if !tracing_allowed() {
        return;
    }
    let Some(fpm) = PhpFpm::start(MISNAMED_REQUIRE) else {
        return;
    };
    assert_eq!(get(&fpm.url("/")).await.0, Some(500), "the broken page answers 500 through nginx");
    let out = diagnose_fpm(PhpFpm::COMM, fpm.url("/")).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let all = shown(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let missing = fpm.docroot.join("inc/settings.phpp");
    let meant = fpm.docroot.join("inc/settings.php");
    let first = stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("Probable root cause: {} does not exist (ENOENT in ", missing.display())),
        "{stdout}"
    );
    assert!(first.contains(&format!("by {} pid ", PhpFpm::COMM)), "{stdout}");
    assert!(first.contains("in 5 of 5 failing requests, 0 of 0 successful"), "{stdout}");
    assert!(first.ends_with(&format!("; did you mean {}?", meant.display())), "{stdout}");
    untraced(&fpm, "after the trace");
}

#[tokio::test(flavor = "multi_thread")]
async fn names_the_unreadable_required_file_with_eacces() {
    if !tracing_allowed() {
        return;
    }
    let Some(fpm) = PhpFpm::start(&[
        ("index.php", "<?php require_once __DIR__ . '/inc/settings.php'; ?>\n<h1>Shop</h1>\n"),
        ("inc/settings.php", "<?php $currency = 'EUR';\n"),
    ]) else {
        return;
    };
    let secret = fpm.docroot.join("inc/settings.php");
    root_only(&secret);
    assert_eq!(get(&fpm.url("/")).await.0, Some(500), "root-owned 0600: the www-data worker cannot read it");
    let out = diagnose_fpm(PhpFpm::COMM, fpm.url("/")).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let all = shown(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let first = assert_eacces_verdict(&stdout, &secret);
    assert!(first.contains("in 5 of 5 failing requests"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_site_has_no_failing_requests_and_every_request_is_seen() {
    if !tracing_allowed() {
        return;
    }
    let Some(fpm) = PhpFpm::start(&[("index.php", "<?php echo 'shop';\n")]) else { return };
    assert_eq!(get(&fpm.url("/")).await, (Some(200), "shop".to_string()));
    // By every name FPM goes by: its command, the unversioned name, its pool's process title.
    for name in [PhpFpm::COMM, "php-fpm", "php-fpm: pool www"] {
        let out = diagnose_fpm(name, fpm.url("/")).await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let all = shown(&out);
        assert_eq!(out.status.code(), Some(1), "--process {name:?}: {all}");
        // Every one of the 5 requests was seen as a FastCGI request answered 200 (before, FPM's were never seen).
        assert!(
            stdout.starts_with("No failing requests were seen while tracing (5 successful)"),
            "--process {name:?}: {stdout}"
        );
        // Nothing failed: the trace lasts its whole window, to catch a failure in other clients' requests.
        assert!(stdout.contains(&format!("Traced {name} for 3.0s")), "--process {name:?}: {stdout}");
    }
    untraced(&fpm, "after the traces");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_worker_keeps_serving_untraced_after_sigkill_of_lookout_mid_trace() {
    if !tracing_allowed() {
        return;
    }
    let Some(fpm) = PhpFpm::start(&[("index.php", "<?php echo 'alive';\n")]) else { return };
    // `--pid` of the master traces it and its workers.
    let args = ["--pid".to_string(), fpm.master().to_string()];
    sigkill_mid_trace(&args, &fpm.url("/"), || fpm.workers(), fpm.master(), true).await;
}

/// The whole site down (no successful request to compare with), nginx negotiating `index index.html index.php`
/// with no index.html in the docroot: the missing require is the verdict, and neither FPM's `.user.ini` lookups
/// nor nginx's index.html miss are listed as "also failing" — with nginx traced as well as FPM.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_outage_on_nginx_and_fpm_lists_no_routine_lookup() {
    if !tracing_allowed() {
        return;
    }
    let Some(fpm) = PhpFpm::start_with_index(MISNAMED_REQUIRE, "index.html index.php") else {
        return;
    };
    assert!(!fpm.docroot.join("index.html").exists());
    assert_eq!(get(&fpm.url("/")).await.0, Some(500), "every request to / fails");
    let missing = fpm.docroot.join("inc/settings.phpp");
    let nginx = fpm.nginx_master().expect("nginx's pid file").to_string();
    for args in [
        // nginx's own index.html miss (then index.php found) is seen too when nginx is traced. First: a second
        // trace of the same nginx worker has been seen to miss its path syscalls.
        vec!["--process", PhpFpm::COMM, "--pid", &nginx],
        vec!["--process", PhpFpm::COMM],
    ] {
        let mut args: Vec<String> = args.into_iter().map(String::from).collect();
        args.extend(["--url", &fpm.url("/"), "--duration", "3s"].map(String::from));
        let out = crate::support::tracing::diagnose(args.clone()).await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let all = shown(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {all}");
        let first = stdout.lines().next().unwrap_or_default();
        assert!(
            first.starts_with(&format!("Probable root cause: {} does not exist (ENOENT in ", missing.display())),
            "{args:?}: {stdout}"
        );
        assert!(first.contains(", 0 of 0 successful)"), "{args:?}: a full outage: {stdout}");
        assert_eq!(routine_listed(&stdout), Vec::<&str>::new(), "{args:?}: {stdout}");
    }
    untraced(&fpm, "after the traces");
}

/// The same on Apache + mod_php (`DirectoryIndex index.html index.php`, no index.html) with a root-owned 0600
/// include: the verdict is the permission denial and index.html is not "also failing".
#[tokio::test(flavor = "multi_thread")]
async fn a_full_outage_on_apache_mod_php_does_not_list_directory_index_negotiation() {
    if !tracing_allowed() {
        return;
    }
    let Some(apache) = crate::support::apache::Apache::start(&[
        ("index.php", "<?php require_once __DIR__ . '/inc/settings.php'; ?>\nshop\n"),
        ("inc/settings.php", "<?php $currency = 'EUR';\n"),
    ]) else {
        return;
    };
    let secret = apache.docroot.join("inc/settings.php");
    root_only(&secret);
    assert!(!apache.docroot.join("index.html").exists());
    let args = ["--pid", &apache.pid().to_string(), "--url", &apache.url("/"), "--duration", "3s"].map(String::from);
    let out = crate::support::tracing::diagnose(args.to_vec()).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let all = shown(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let first = assert_eacces_verdict(&stdout, &secret);
    assert!(first.contains(", 0 of 0 successful)"), "a full outage: {stdout}");
    assert_eq!(routine_listed(&stdout), Vec::<&str>::new(), "{stdout}");
}

/// `lookout run` on nginx + PHP-FPM (issue 15 item 6): the target's `[target.diagnose]` names two process groups
/// (nginx by its pid file, FPM's workers by name) and the nginx and FPM error logs. The root cause found by tracing rides on the firing notification, is recorded on
/// the incident (JSON API and incident page, escaped there) with the error logs' finding as evidence, and the
/// postmortem draft of that incident names the missing file as the root cause. One nginx + FPM for all of it.
#[tokio::test(flavor = "multi_thread")]
async fn lookout_run_names_the_root_cause_on_nginx_and_fpm_in_the_message_incident_and_postmortem() {
    if !tracing_allowed() {
        return;
    }
    let Some(fpm) = PhpFpm::start(MISNAMED_REQUIRE) else {
        return;
    };
    let hook = crate::support::Receiver::start().await;
    let port = crate::support::free_port().await;
    let dir = tempfile::tempdir().unwrap();
    let config = crate::support::write_config(
        dir.path(),
        &format!(
            "[store]\npath = \"lookout.sqlite\"\n[web]\nlisten = \"127.0.0.1:{port}\"\ntokens_env = \"{TOKENS_ENV}\"\n\
             public_reads = false\n\n[[target]]\nname = \"shop\"\nurl = \"{}\"\ninterval = \"500ms\"\n\
             failure_threshold = 2\n[target.diagnose]\npid_file = {:?}\nprocesses = [\"php-fpm8.2\"]\n\
             error_log = [{:?}, {:?}]\n\n[[notify]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\n",
            fpm.url("/"),
            // Two process groups: nginx by its pid file (named first), FPM by name.
            fpm.nginx_pid_file().display().to_string(),
            fpm.nginx_error_log.display().to_string(),
            fpm.fpm_log.display().to_string(),
            hook.url()
        ),
    );
    let run_log = dir.path().join("run.log");
    let _run = crate::support::Running(
        Command::new(lookout_bin())
            .args(["run", "--config"])
            .arg(&config)
            .env(TOKENS_ENV, TOKEN)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&run_log).unwrap())
            .spawn()
            .unwrap(),
    );
    let said = || std::fs::read_to_string(&run_log).unwrap_or_default();
    let fired = hook.wait_for_target("shop", "firing", Duration::from_secs(30)).await;
    let body = fired.body.to_string();
    eprintln!("firing message: {body}");
    let missing = fpm.docroot.join("inc/settings.phpp");
    let meant = fpm.docroot.join("inc/settings.php");
    assert!(
        body.contains(&format!("{} does not exist", missing.display())),
        "the verdict rides on the message: {body}\n{}",
        said()
    );
    assert!(body.contains("php-fpm8.2"), "traced FPM's workers: {body}");
    untraced(&fpm, "after lookout run's trace");

    // The incident, read through the JSON API (reads need the token here): the traced diagnosis, with what the
    // nginx and FPM error logs say about the same file as evidence.
    let id = fired.body["incident"].as_str().expect("the firing message names its incident").to_string();
    let base = format!("http://127.0.0.1:{port}");
    let (status, _) = read(&format!("{base}/api/v1/incidents/{id}"), None).await;
    assert_eq!(status, 401, "reads need the token");
    let (status, json) = read(&format!("{base}/api/v1/incidents/{id}"), Some(TOKEN)).await;
    assert_eq!(status, 200, "{json}");
    let incident: serde_json::Value = serde_json::from_str(&json).unwrap();
    let alert = incident["incident"]["alerts"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["target"] == "shop"))
        .unwrap_or_else(|| panic!("the incident has the shop's alert: {json}"));
    let d = &alert["diagnosis"];
    eprintln!("incident's diagnosis: {d:#}");
    let verdict = d["verdict"].as_str().unwrap_or_else(|| panic!("the incident carries the diagnosis: {json}"));
    assert!(
        verdict.starts_with(&format!("Probable root cause: {} does not exist (ENOENT in ", missing.display())),
        "{verdict}"
    );
    assert!(verdict.contains(&format!("by {} pid ", PhpFpm::COMM)), "the process that failed: {verdict}");
    assert!(verdict.ends_with(&format!("; did you mean {}?", meant.display())), "the suggestion: {verdict}");
    assert_eq!(d["source"], "trace", "{d}");
    assert_eq!(d["cause"], "missing", "{d}");
    assert_eq!(d["path"], missing.display().to_string(), "{d}");
    let evidence: Vec<&str> =
        d["evidence"].as_array().map(|e| e.iter().filter_map(|l| l.as_str()).collect()).unwrap_or_default();
    let from_logs: Vec<&str> = evidence.iter().copied().filter(|e| e.starts_with("error log: ")).collect();
    assert!(
        from_logs.iter().any(|e| e.contains(&format!(
            "{} does not exist (required by {}:1; ",
            missing.display(),
            fpm.docroot.join("index.php").display()
        ))),
        "the error logs' finding backs the trace up: {evidence:#?}\nnginx: {}\nfpm: {}",
        std::fs::read_to_string(&fpm.nginx_error_log).unwrap_or_default(),
        std::fs::read_to_string(&fpm.fpm_log).unwrap_or_default()
    );

    // The incident page shows the same, escaped as HTML.
    let (status, page) = read(&format!("{base}/incidents/{id}"), Some(TOKEN)).await;
    assert_eq!(status, 200, "{page}");
    // Under the heading "Probable root cause", the verdict without those words again.
    let shown = verdict.strip_prefix("Probable root cause: ").unwrap_or(verdict);
    assert!(
        page.contains(&format!("<h2>Probable root cause</h2><p><b>{}</b>", html(shown))),
        "the verdict, escaped: {page}"
    );
    assert!(page.contains("Evidence from the trace:"), "{page}");
    for e in &from_logs {
        assert!(page.contains(&format!("<li><code>{}</code></li>", html(e))), "{e:?} on the page: {page}");
    }

    // The postmortem draft of the incident (still open) names the missing file as the root cause.
    let draft = dir.path().join("postmortem.md");
    let out = Command::new(lookout_bin())
        .args(["postmortem", &id, "-o"])
        .arg(&draft)
        .arg("--config")
        .arg(&config)
        .env(TOKENS_ENV, TOKEN)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with(&format!("{id}: shop for ")) && stdout.contains("(still open)"), "{stdout}");
    let md = std::fs::read_to_string(&draft).unwrap();
    eprintln!("{md}");
    // Markdown escapes `_` (a temporary directory's name may have one).
    let settings = missing.display().to_string().replace('_', "\\_");
    let (root_cause, _) = md
        .split_once("## Root cause analysis\n")
        .and_then(|(_, rest)| rest.split_once("Five whys"))
        .unwrap_or_else(|| panic!("a root cause analysis: {md}"));
    assert!(
        root_cause.trim_start().starts_with(&format!("Probable root cause: {settings} does not exist (ENOENT in ")),
        "the draft names the missing file first: {root_cause}"
    );
    assert!(root_cause.contains(&format!("by {} pid ", PhpFpm::COMM)), "{root_cause}");
    assert!(root_cause.contains("Evidence from the trace:"), "{root_cause}");
    assert!(
        root_cause.contains(&format!("- error log: {settings} does not exist (required by ")),
        "the error logs' finding in the evidence: {root_cause}"
    );
}

/// The environment variable the `lookout run` of the test above reads its web token from.
const TOKENS_ENV: &str = "LOOKOUT_TEST_FPM_TOKENS";
const TOKEN: &str = "fpm-incident-token";

/// GET `url` (with `Accept: text/html`, as a browser asks for a page) with `token` as the bearer: (status, body).
async fn read(url: &str, token: Option<&str>) -> (u16, String) {
    let mut req = lookout_http::HttpRequest::get(url.parse().unwrap(), Duration::from_secs(5));
    req.max_body = 4 << 20;
    req.headers.push(("accept".into(), "text/html, application/json".into()));
    if let Some(t) = token {
        req.headers.push(("authorization".into(), format!("Bearer {t}")));
    }
    let obs = lookout_http::fetch(&req).await;
    (obs.status.unwrap_or(0), obs.body)
}

/// `text` as the incident page's templates escape it.
fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('/', "&#x2f;")
}
