//! `[[log]]` sources: files, formats, default rules and their warning level, groups and client keys.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::tests::{SITE, err, parse};

#[test]
fn log_sections() {
    let cfg = parse("[[log]]\nname = \"web\"\naccess = \"logs/access.log\"\n").unwrap();
    let log = &cfg.logs[0];
    assert_eq!(log.access.as_deref(), Some(Path::new("logs/access.log")));
    assert_eq!(log.rules.fire_when[0].source(), "[5XX_RATIO] > 5%", "a default rule");
    // The other default: a worker pool that ran out, said in Apache's or PHP-FPM's error log, fires at once.
    for line in [
        "[mpm_prefork:error] [pid 1] AH00161: server reached MaxRequestWorkers setting, consider raising the MaxRequestWorkers setting",
        "WARNING: [pool www] server reached pm.max_children setting (5), consider raising it",
    ] {
        let view = lookout_engine::condition::LogView { error_log: line.into(), ..Default::default() };
        let verdict = lookout_engine::condition::judge_log(&log.rules.fire_when, &view);
        assert!(!verdict.ok && verdict.failed_conditions[0].starts_with("[ERROR_LOG]"), "{line}: {verdict:?}");
    }
    let quiet =
        lookout_engine::condition::LogView { error_log: "AH00094: Command line: apache2".into(), ..Default::default() };
    assert!(lookout_engine::condition::judge_log(&log.rules.fire_when, &quiet).ok);
    assert_eq!(log.rules.window, Duration::from_secs(60));
    assert_eq!(log.policy.failure_threshold, 1);
    assert_eq!(
        err("[[log]]\nname = \"web\"\n"),
        "lookout.toml:2: [[log]] \"web\" reads no file: set access = \"/var/log/apache2/access.log\" and/or error = \"...\""
    );
    assert_eq!(
        err("[[log]]\nname = \"web\"\naccess = \"a\"\nformat = \"%h %Z\"\n"),
        "lookout.toml:4: invalid format in [[log]] \"web\": log format \"%h %Z\": unknown directive %Z at column 4"
    );
    assert_eq!(
        err("[[log]]\nname = \"web\"\naccess = \"a\"\nfire_when = [\"[STATUS] == 500\"]\n"),
        "lookout.toml:4: condition \"[STATUS] == 500\" in [[log]] \"web\" reads a probe result; log conditions use [REQUESTS], [5XX], [5XX_RATIO], [ERROR_LOG], [CLIENTS_AFFECTED] or [LATENCY_P50/P95/P99]"
    );
    assert_eq!(
        err(&format!("{SITE}conditions = [\"[5XX_RATIO] > 1%\"]\n")),
        "lookout.toml:5: condition \"[5XX_RATIO] > 1%\" in [[target]] \"site\" reads a log window; put it in a [[log]] section's fire_when"
    );
    assert_eq!(
        err("[[log]]\nname = \"web\"\nerror = \"e\"\nerror_format = \"iis\"\n"),
        "lookout.toml:4: unknown error_format \"iis\" in [[log]] \"web\"; use \"apache\" or \"nginx\" (or \"fpm\", \"php\", \"auto\")"
    );
    assert_eq!(
        err(&format!("{SITE}[[log]]\nname = \"site\"\naccess = \"a\"\n")),
        "lookout.toml:6: duplicate log name \"site\": names must be unique"
    );
}

#[test]
fn a_log_source_warns_at_2_percent_above_120_requests_a_minute_and_pages_at_5() {
    let cfg =
        parse("[[log]]\nname = \"web\"\naccess = \"a.log\"\nwindow = \"30s\"\nseverity = \"critical\"\n").unwrap();
    let [source, warning] = &cfg.logs[..] else { panic!("two levels: {:?}", cfg.logs) };
    assert_eq!(
        (source.name.as_str(), source.follows.as_ref(), source.alert.severity.as_str()),
        ("web", None, "critical")
    );
    assert!(source.read_by("any") && !warning.read_by("any"), "only the source reads the files");
    assert_eq!(warning.name, "web-warning");
    assert_eq!(warning.follows.as_deref(), Some("web"));
    assert_eq!(warning.depends_on, ["web"], "only the worse level is sent");
    assert_eq!(warning.alert.severity, "warning");
    assert_eq!(warning.rules.fire_when.iter().map(|c| c.source()).collect::<Vec<_>>(), ["[5XX_RATIO] > 2%"]);
    assert_eq!((source.rules.min_requests, warning.rules.min_requests), (10, 60), "120 a minute over 30 s");
    assert_eq!(warning.group, source.group, "one incident");
    let view = |requests, errors_5xx, min_requests| lookout_engine::condition::LogView {
        requests,
        errors_5xx,
        min_requests,
        ..Default::default()
    };
    let fires = |l: &LogSource, v| !lookout_engine::condition::judge_log(&l.rules.fire_when, &v).ok;
    assert!(fires(warning, view(100, 3, 60)) && !fires(source, view(100, 3, 10)), "3 %: a warning");
    assert!(fires(warning, view(100, 6, 60)) && fires(source, view(100, 6, 10)), "6 %: both");
    assert!(!fires(warning, view(50, 3, 60)), "below the floor the ratio says nothing");
    // Hysteresis: fired at more than 5 %, it holds until 4.75 %.
    let holds = |v| !lookout_engine::condition::judge_log_while(&source.rules.fire_when, &v, true).ok;
    assert!(holds(view(1000, 48, 10)) && !holds(view(1000, 47, 10)) && !fires(source, view(1000, 48, 10)));

    // Own rules without warn_when, or warn_when = []: one level. warn_when alone: the default pages, beside it.
    for extra in ["fire_when = [\"[5XX] > 3\"]\n", "warn_when = []\n"] {
        let cfg = parse(&format!("[[log]]\nname = \"web\"\naccess = \"a.log\"\n{extra}")).unwrap();
        assert_eq!(cfg.logs.len(), 1, "{extra}");
    }
    let cfg = parse("[[log]]\nname = \"web\"\naccess = \"a.log\"\nwarn_when = [\"[5XX] > 0\"]\nmin_requests = 500\n")
        .unwrap();
    assert_eq!(cfg.logs[1].rules.fire_when[0].source(), "[5XX] > 0");
    assert_eq!(cfg.logs[1].rules.min_requests, 500, "never below the source's own floor");
    assert_eq!(
        err(
            "[[target]]\nname = \"web-warning\"\nurl = \"http://127.0.0.1:8080/\"\n[[log]]\nname = \"web\"\naccess = \"a\"\n"
        ),
        "lookout.toml:5: duplicate log name \"web-warning\": names must be unique (a [[log]]'s warning level is NAME-warning; set warn_when = [] to have none)"
    );
    assert_eq!(
        err(
            "[[log]]\nname = \"web-warning\"\naccess = \"a\"\nwarn_when = []\n[[log]]\nname = \"web\"\naccess = \"a\"\n"
        ),
        "lookout.toml:6: duplicate log name \"web-warning\": names must be unique (a [[log]]'s warning level is NAME-warning; set warn_when = [] to have none)"
    );
}

#[test]
fn groups_and_client_keys() {
    let cfg = parse(&format!("{SITE}group = \"shop\"\n[[log]]\nname = \"apache\"\naccess = \"a.log\"\ngroup = \"shop\"\nclients = \"address+user-agent\"\n")).unwrap();
    assert_eq!(cfg.targets[0].group, "shop");
    assert_eq!(cfg.logs[0].group, "shop");
    assert_eq!(cfg.logs[0].clients, lookout_logs::distinct::ClientKey::AddressAndUserAgent);
    let plain = parse(&format!("{SITE}[[log]]\nname = \"apache\"\naccess = \"a.log\"\n")).unwrap();
    assert_eq!(
        (plain.targets[0].group.as_str(), plain.logs[0].group.as_str()),
        ("site", "apache"),
        "own name by default"
    );
    assert_eq!(plain.logs[0].clients, lookout_logs::distinct::ClientKey::Address);
    assert_eq!(
        err(&format!("{SITE}group = \"my shop\"\n")),
        "lookout.toml:5: invalid group \"my shop\" in [[target]] \"site\": use letters, digits, '-', '_' or '.' (at most 64)"
    );
    assert_eq!(
        err("[[log]]\nname = \"apache\"\naccess = \"a.log\"\nclients = \"ip\"\n"),
        "lookout.toml:4: unknown clients = \"ip\" in [[log]] \"apache\"; use \"address\" or \"address+user-agent\""
    );
}

#[test]
fn public_names_are_one_short_line_and_default_to_none() {
    let cfg = parse(&format!(
        "{SITE}public_name = \"  Shop & Checkout \"\n[[log]]\nname = \"apache\"\naccess = \"a.log\"\npublic_name = \"Shop logs\"\n"
    ))
    .unwrap();
    assert_eq!(cfg.targets[0].public_name.as_deref(), Some("Shop & Checkout"), "trimmed, kept as written");
    assert_eq!(cfg.logs[0].public_name.as_deref(), Some("Shop logs"));
    assert_eq!(cfg.logs[1].public_name.as_deref(), Some("Shop logs"), "the warning level follows its source");
    let plain = parse(&format!("{SITE}[[log]]\nname = \"apache\"\naccess = \"a.log\"\n")).unwrap();
    assert_eq!((plain.targets[0].public_name.as_deref(), plain.logs[0].public_name.as_deref()), (None, None));
    for bad in ["\"\"", "\"   \"", "\"two\\nlines\"", &format!("\"{}\"", "x".repeat(81))] {
        let e = err(&format!("{SITE}public_name = {bad}\n"));
        assert!(
            e.starts_with("lookout.toml:5: invalid public_name") && e.ends_with("one line of 1 to 80 characters"),
            "{e}"
        );
    }
    assert!(err("[[log]]\nname = \"apache\"\naccess = \"a.log\"\npublic_name = \"\"\n").starts_with("lookout.toml:4:"));
}
