use std::path::Path;
use std::time::Duration;

use super::*;
use lookout_engine::TargetPolicy;
use lookout_logs::error_log::ErrorFormat;
use lookout_logs::tail::StartAt;

pub(crate) fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("lookout.toml"), &|k| (k == "HOOK").then(|| "http://127.0.0.1:9/secret".to_string()))
}

pub(crate) fn err(text: &str) -> String {
    match parse(text) {
        Ok(_) => panic!("should not parse:\n{text}"),
        Err(e) => e.to_string(),
    }
}

pub(crate) const SITE: &str = r#"
[[target]]
name = "site"
url = "http://127.0.0.1:8080/"
"#;

#[test]
fn example_file_parses_and_shows_every_option() {
    let text = include_str!("../../../lookout.example.toml");
    let cfg = Config::parse(text, Path::new("/etc/lookout/lookout.example.toml"), &|_| None).unwrap();
    assert_eq!(cfg.targets.len(), 6, "four targets, a status page and a process");
    assert_eq!(cfg.store.backend, StoreBackend::Sqlite { path: "/etc/lookout/lookout.sqlite".into() });
    assert_eq!(cfg.store.retention, Duration::from_secs(7 * 86400));
    assert_eq!(cfg.store.raw_retention, Duration::from_secs(86400));
    let site = cfg.target("site").unwrap();
    assert_eq!(site.diagnose.as_ref().unwrap().error_logs, [Path::new("/var/log/apache2/error.log")]);
    assert_eq!(site.interval, Duration::from_secs(10));
    assert_eq!(site.timeout, Duration::from_secs(2));
    assert_eq!(site.conditions.len(), 3);
    let stale_after = Duration::from_secs(3 * 10 + 2);
    assert_eq!(
        site.policy,
        TargetPolicy { failure_threshold: 3, success_threshold: 2, stale_after, ..TargetPolicy::default() }
    );
    assert!(site.locations.is_empty() && site.probed_from("anywhere"));
    let Check::Http(http) = &site.check else { panic!("site is http") };
    assert_eq!(http.headers.len(), 2);
    assert!(matches!(cfg.target("db").unwrap().check, Check::Tcp { .. }));
    assert!(matches!(cfg.target("cert").unwrap().check, Check::Tls { verify: false, .. }));
    assert_eq!(cfg.notify.len(), 1);
    assert_eq!(cfg.notify[0].retry_max, Duration::from_secs(300));
    let log = &cfg.logs[0];
    assert_eq!(log.access.as_deref(), Some(Path::new("/var/log/apache2/access.log")));
    assert_eq!(log.rules.fire_when.len(), 2);
    assert_eq!(log.rules.min_requests, 10);
    assert_eq!(log.start_at, StartAt::End);

    // Every key the raw model accepts appears in the example (uncommented or commented).
    for key in [
        "path",
        "retention",
        "raw_retention",
        "name",
        "url",
        "tcp",
        "tls",
        "interval",
        "timeout",
        "method",
        "headers",
        "body",
        "follow_redirects",
        "verify_tls",
        "http2",
        "dns",
        "icmp",
        "conditions",
        "failure_threshold",
        "success_threshold",
        "type",
        "url_env",
        "retry_initial",
        "retry_max",
        "group",
        "severity",
        "labels",
        "clients",
        "template",
        "routing_key_env",
        "firing_ttl",
        "smtp",
        "username",
        "password_env",
        "from",
        "to",
        "ca_file",
        "depends_on",
        "locations",
        "quorum",
        "match",
        "channels",
        "group_wait",
        "repeat_interval",
        "continue",
        "schedule",
        "duration",
        "start",
        "end",
        "timezone",
        "enabled",
        "listen",
        "tokens_env",
        "public_reads",
        "public_name",
    ] {
        assert!(text.contains(&format!("{key} =")), "lookout.example.toml does not show {key:?}");
    }
}

#[test]
fn defaults_apply() {
    let cfg = parse(SITE).unwrap();
    let t = &cfg.targets[0];
    assert_eq!(t.interval, Duration::from_secs(30));
    assert_eq!(t.timeout, Duration::from_secs(5));
    assert_eq!(t.conditions.len(), 1);
    assert_eq!(t.conditions[0].source(), "[STATUS] < 400");
    assert_eq!(cfg.store.backend, StoreBackend::Sqlite { path: "lookout.sqlite".into() });
}

#[test]
fn unknown_key_names_file_line_section_and_suggestion() {
    let text = "[[target]]\nname = \"site\"\nurl = \"http://127.0.0.1:8080/\"\n\n\n\nintervall = \"10s\"\n";
    assert_eq!(
        err(text),
        "lookout.toml:7: unknown key \"intervall\" in [[target]] \"site\" (did you mean \"interval\"?)"
    );
    assert_eq!(
        err("[store]\npaht = \"x\"\n"),
        "lookout.toml:2: unknown key \"paht\" in [store] (did you mean \"path\"?)"
    );
    assert_eq!(
        err("colour = 1\n"),
        "lookout.toml:1: unknown key \"colour\" in the top level; known keys: store, agent, web, target, notify, log, status, host, process, route, maintenance"
    );
    // The name may come after the bad key; a nameless table is numbered.
    assert_eq!(
        err(&format!("{SITE}\n[[target]]\nfoo = 1\nname = \"b\"\n")),
        "lookout.toml:7: unknown key \"foo\" in [[target]] \"b\"; known keys: name, url, tcp, tls, dns, icmp, http2, metrics, interval, timeout, method, headers, body, follow_redirects, verify_tls, conditions, failure_threshold, success_threshold, group, public_name, severity, labels, depends_on, locations, quorum, diagnose"
    );
}

#[test]
fn bad_duration_names_line_and_key() {
    let text = format!("{SITE}interval = \"10 parsecs\"\n");
    assert_eq!(
        err(&text),
        "lookout.toml:5: invalid value for \"interval\" in [[target]] \"site\": invalid duration \"10 parsecs\": unknown unit (use ms, s, m, h, d or w); write a number and a unit, e.g. \"500ms\", \"10s\", \"2m\", \"1h30m\", \"3d\""
    );
    let text = format!("{SITE}timeout = 5\n");
    assert_eq!(
        err(&text),
        "lookout.toml:5: invalid value for \"timeout\" in [[target]] \"site\": a bare number (5) is ambiguous; write a unit, e.g. \"5s\" or \"5ms\""
    );
    assert_eq!(
        err(&format!("{SITE}interval = \"0s\"\n")),
        "lookout.toml:5: \"interval\" in [[target]] \"site\" is 0ms: the minimum is 100ms"
    );
}

#[test]
fn bad_condition_points_at_it() {
    let text = format!("{SITE}conditions = [\n  \"[STATUS] == 200\",\n  \"[STAUS] == 200\",\n]\n");
    assert_eq!(
        err(&text),
        "lookout.toml:7: invalid condition in [[target]] \"site\": unknown placeholder [STAUS] (did you mean [STATUS]?); known: [STATUS], [RESPONSE_TIME], [BODY], [CONNECTED], [CERTIFICATE_EXPIRATION], [DNS_RCODE], [PROTOCOL], [HEADER], [REQUESTS], [5XX], [5XX_RATIO], [ERROR_LOG], [CLIENTS_AFFECTED], [LATENCY_P50], [LATENCY_P95], [LATENCY_P99], and the readings of status pages and the host ([BUSY_WORKERS], [FS_USED_RATIO], …: README, \"Server status pages\")\n    [STAUS] == 200\n    ^^^^^^^"
    );
}

#[test]
fn type_errors_and_missing_keys() {
    assert_eq!(
        err(&format!("{SITE}failure_threshold = \"three\"\n")),
        "lookout.toml:5: invalid value for \"failure_threshold\" in [[target]] \"site\": invalid type: string \"three\", expected u32"
    );
    assert_eq!(
        err(&format!("{SITE}failure_threshold = 0\n")),
        "lookout.toml:5: \"failure_threshold\" in [[target]] \"site\" must be at least 1"
    );
    let e = err("[[target]]\nurl = \"http://x/\"\n");
    assert!(e.starts_with("lookout.toml:1: missing key \"name\" in [[target]] #1"), "{e}");
    assert!(err("[[target\nname=1").starts_with("lookout.toml:1: "), "syntax errors are located too");
}

#[test]
fn semantic_errors() {
    let t = "[[target]]\nname = \"a\"\ntcp = \"x:1\"\n";
    assert_eq!(
        err(&format!("{t}locations = [\"eu\"]\nquorum = 2\n")),
        "lookout.toml:5: \"quorum\" in [[target]] \"a\" is 2 but it is probed from 1 location(s): it could never fire"
    );
    assert_eq!(err(&format!("{t}quorum = 0\n")), "lookout.toml:4: \"quorum\" in [[target]] \"a\" must be at least 1");
    assert_eq!(
        err(&format!("{t}locations = []\n")),
        "lookout.toml:4: \"locations\" in [[target]] \"a\" is empty: leave it out to probe from every location"
    );
    assert_eq!(
        err(&format!("{t}locations = [\"eu\", \"eu\"]\n")),
        "lookout.toml:4: \"locations\" in [[target]] \"a\" names \"eu\" twice"
    );
    let Ok(ok) = parse(&format!("{t}locations = [\"eu\", \"us\"]\nquorum = 2\n")) else { panic!("parses") };
    assert_eq!(
        (ok.targets[0].policy.quorum, ok.targets[0].probed_from("us"), ok.targets[0].probed_from("asia")),
        (2, true, false)
    );
    assert_eq!(
        err("[[target]]\nname = \"a\"\n"),
        "lookout.toml:2: [[target]] \"a\" has nothing to check: set one of url = \"http://...\", tcp = \"host:port\", tls = \"host:port\", dns = { server = \"host:port\", name = \"...\", type = \"A\" } or icmp = \"host\""
    );
    assert_eq!(
        err("[[target]]\nname = \"a\"\nurl = \"http://x/\"\ntcp = \"x:1\"\n"),
        "lookout.toml:2: [[target]] \"a\" sets more than one of url, tcp, tls, dns and icmp: keep one per target"
    );
    assert_eq!(
        err("[[target]]\nname = \"a\"\nurl = \"ftp://x/\"\n"),
        "lookout.toml:3: url = \"ftp://x/\" in [[target]] \"a\": must start with http:// or https:// (for TCP use tcp = \"host:port\")"
    );
    assert_eq!(
        err("[[target]]\nname = \"a\"\ntcp = \"localhost\"\n"),
        "lookout.toml:3: tcp = \"localhost\" in [[target]] \"a\": has no port; write e.g. \"127.0.0.1:5432\""
    );
    assert_eq!(
        err("[[target]]\nname = \"a\"\ntcp = \"h:1\"\nmethod = \"POST\"\n"),
        "lookout.toml:4: \"method\" in [[target]] \"a\" only applies to url = \"http(s)://...\" targets"
    );
    assert_eq!(err(&format!("{SITE}{SITE}")), "lookout.toml:7: duplicate target name \"site\": names must be unique");
    assert_eq!(
        err("[[target]]\nname = \"a b\"\ntcp = \"h:1\"\n"),
        "lookout.toml:2: invalid name \"a b\" in [[target]]: use letters, digits, '-', '_' or '.' (at most 64)"
    );
    assert_eq!(
        err("[[notify]]\nname = \"ops\"\ntype = \"webhok\"\nurl = \"http://x/\"\n"),
        "lookout.toml:3: unknown notify type \"webhok\" in [[notify]] \"ops\" (did you mean \"webhook\"?); supported: webhook, slack, pagerduty, alertmanager, email"
    );
    assert_eq!(
        err("[[notify]]\nname = \"ops\"\ntype = \"webhook\"\nurl_env = \"NOPE\"\n"),
        "lookout.toml:4: environment variable \"NOPE\" named by url_env in [[notify]] \"ops\" is not set; export it before starting lookout"
    );
}

#[test]
fn target_diagnose_tables() {
    let cfg = parse(&format!("{SITE}\n[target.diagnose]\nerror_log = \"logs/error.log\"\nerror_format = \"nginx\"\n"))
        .unwrap();
    let d = cfg.targets[0].diagnose.as_ref().unwrap();
    assert_eq!(d.error_logs, [Path::new("logs/error.log")]);
    assert_eq!(d.duration, Duration::from_secs(2));
    assert_eq!(d.error_format, ErrorFormat::Nginx);
    assert_eq!(
        err(&format!("{SITE}\n[target.diagnose]\nerror_log = \"e\"\nproceses = [\"apache2\"]\n")),
        "lookout.toml:8: unknown key \"proceses\" in [target.diagnose] (did you mean \"processes\"?)"
    );
    let traced = parse(&format!("{SITE}\n[target.diagnose]\nprocesses = [\"apache2\"]\nduration = \"1s\"\n")).unwrap();
    let d = traced.targets[0].diagnose.as_ref().unwrap();
    assert_eq!(
        (d.processes.clone(), d.duration, d.error_logs.clone()),
        (vec!["apache2".to_string()], Duration::from_secs(1), Vec::new())
    );
    // A stack of several servers: nginx and PHP-FPM, each with its log and pid file.
    let stack = parse(&format!(
        "{SITE}\n[target.diagnose]\nprocesses = [\"php-fpm8.2\"]\npid_file = [\"/run/nginx.pid\", \"/run/php/php8.2-fpm.pid\"]\n\
         error_log = [\"/var/log/nginx/error.log\", \"/var/log/php8.2-fpm.log\"]\n"
    ))
    .unwrap();
    let d = stack.targets[0].diagnose.as_ref().unwrap();
    assert_eq!(d.error_logs, [Path::new("/var/log/nginx/error.log"), Path::new("/var/log/php8.2-fpm.log")]);
    assert_eq!(d.pid_files, [Path::new("/run/nginx.pid"), Path::new("/run/php/php8.2-fpm.pid")]);
    assert_eq!(
        err(&format!("{SITE}\n[target.diagnose]\nerror_log = 3\n")),
        "lookout.toml:7: invalid value for \"error_log\" in [target.diagnose]: a string or an array of strings"
    );
    assert_eq!(
        err(&format!("{SITE}\n[target.diagnose]\nerror_format = \"apache\"\n")),
        "lookout.toml:3: [target.diagnose] of [[target]] \"site\" needs error_log = \"...\", processes = [\"apache2\"] or pid_file = \"...\""
    );
    assert!(
        err(&format!("{SITE}\n[target.diagnose]\nprocesses = [\"x\"]\nduration = \"5m\"\n"))
            .contains("must be between 1ms and 30s")
    );
}

#[test]
fn secret_url_from_env_is_used_but_never_echoed() {
    let cfg = parse("[[notify]]\nname = \"ops\"\ntype = \"webhook\"\nurl_env = \"HOOK\"\n").unwrap();
    let NotifyKind::Webhook { url, .. } = &cfg.notify[0].kind else { panic!("a webhook") };
    assert_eq!(url.expose().path(), "/secret");
    assert_eq!(format!("{:?}", cfg.notify[0]).matches("<secret>").count(), 1, "Debug never shows it");
    let e = Config::parse(
        "[[notify]]\nname = \"ops\"\ntype = \"webhook\"\nurl_env = \"HOOK\"\n",
        Path::new("lookout.toml"),
        &|k| (k == "HOOK").then(|| "ftp://user:hunter2@host/".into()),
    )
    .unwrap_err()
    .to_string();
    assert!(!e.contains("hunter2"), "{e}");
    assert!(e.contains("url (from the environment)"), "{e}");
}

#[test]
fn missing_file_says_what_to_do() {
    let e = Config::load(Path::new("/nonexistent/lookout.toml")).unwrap_err().to_string();
    assert!(e.starts_with("/nonexistent/lookout.toml: cannot read config: "), "{e}");
    assert!(e.contains("pass the right file with --config, write one for this machine's web servers with `lookout init`, or start one from lookout.example.toml"), "{e}");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Arbitrary text never panics the loader, and every error is located on a line of the input.
        #[test]
        fn any_text_gives_a_config_or_a_located_error(text in "(\\[\\[target\\]\\]\n|name = \"é\"\n|url = \"http://x/\"\n|interval = \"[0-9a-z ]{0,4}\"\n|conditions = \\[\".{0,12}\"\\]\n|[a-z_]{1,8} = [0-9]{1,3}\n|.{0,20}\n){0,8}") {
            match parse(&text) {
                Ok(_) => {}
                Err(e) => {
                    let line = e.line().unwrap();
                    prop_assert!(line >= 1 && line <= text.lines().count().max(1) + 1, "line {line} of {text:?}");
                }
            }
        }
    }
}

#[test]
fn reading_commands_do_not_need_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lookout.toml");
    std::fs::write(&path, "[[notify]]\nname = \"ops\"\ntype = \"webhook\"\nurl_env = \"LOOKOUT_TEST_UNSET_SECRET\"\n")
        .unwrap();
    assert!(Config::load(&path).is_err());
    assert_eq!(Config::load_without_secrets(&path).unwrap().notify.len(), 1);
}

#[test]
fn every_channel_type_with_its_own_keys_and_secrets_from_the_environment() {
    let text = r#"
[[notify]]
name = "slack"
type = "slack"
url_env = "SLACK_URL"

[[notify]]
name = "pd"
type = "pagerduty"
routing_key_env = "PD_KEY"
url = "http://127.0.0.1:9/v2/enqueue"

[[notify]]
name = "am"
type = "alertmanager"
url = "http://127.0.0.1:9093"
firing_ttl = "1h"

[[notify]]
name = "mail"
type = "email"
smtp = "127.0.0.1:2525"
tls = "starttls"
username = "lookout"
password_env = "SMTP_PASSWORD"
from = "Lookout <lookout@example.com>"
to = ["ops@example.com", "oncall@example.com"]
ca_file = "ca.pem"

[[notify]]
name = "teams"
type = "webhook"
url = "http://127.0.0.1:9/hook"
template = '{"text": "{{ summary }}"}'
"#;
    let env = |k: &str| match k {
        "SLACK_URL" => Some("https://hooks.slack.com/services/T0/B0/secret".to_string()),
        "PD_KEY" => Some("R0UT1NGKEY".to_string()),
        "SMTP_PASSWORD" => Some("hunter2".to_string()),
        _ => None,
    };
    let cfg = Config::parse(text, Path::new("/etc/lookout/lookout.toml"), &env).unwrap();
    let kinds: Vec<&str> = cfg.notify.iter().map(|n| n.kind.type_name()).collect();
    assert_eq!(kinds, ["slack", "pagerduty", "alertmanager", "email", "webhook"]);
    let debug = format!("{:?}", cfg.notify);
    assert!(!debug.contains("hunter2") && !debug.contains("R0UT1NGKEY") && !debug.contains("/secret"), "{debug}");
    let NotifyKind::Email(mail) = &cfg.notify[3].kind else { panic!("email") };
    assert_eq!((mail.host.as_str(), mail.port, mail.tls), ("127.0.0.1", 2525, lookout_config_tls()));
    assert_eq!(mail.password.as_ref().map(|p| p.expose().as_str()), Some("hunter2"));
    assert_eq!(mail.ca_file.as_deref(), Some(Path::new("/etc/lookout/ca.pem")));
    let NotifyKind::Alertmanager { firing_ttl, .. } = &cfg.notify[2].kind else { panic!("alertmanager") };
    assert_eq!(*firing_ttl, Duration::from_secs(3600));
}

fn lookout_config_tls() -> crate::SmtpTls {
    crate::SmtpTls::Starttls
}

#[test]
fn channel_mistakes_name_the_line_and_what_to_do() {
    assert_eq!(
        err("[[notify]]\nname = \"s\"\ntype = \"slack\"\nurl = \"https://x/\"\nrouting_key_env = \"K\"\n"),
        "lookout.toml:5: \"routing_key_env\" in [[notify]] \"s\" does not apply to type = \"slack\" (only to type = \"pagerduty\")"
    );
    assert_eq!(
        err("[[notify]]\nname = \"pd\"\ntype = \"pagerduty\"\nrouting_key_env = \"NOPE\"\n"),
        "lookout.toml:4: environment variable \"NOPE\" named by routing_key_env in [[notify]] \"pd\" is not set; export it before starting lookout"
    );
    assert_eq!(
        err("[[notify]]\nname = \"m\"\ntype = \"email\"\nsmtp = \"h:25\"\nfrom = \"nobody\"\nto = [\"a@b.c\"]\n"),
        "lookout.toml:5: \"nobody\" in [[notify]] \"m\" is not an e-mail address"
    );
    assert_eq!(
        err(
            "[[notify]]\nname = \"m\"\ntype = \"email\"\nsmtp = \"h:25\"\ntls = \"ssl\"\nfrom = \"a@b.c\"\nto = [\"a@b.c\"]\n"
        ),
        "lookout.toml:5: tls = \"ssl\" in [[notify]] \"m\": use \"starttls\", \"tls\" or \"none\""
    );
    let e = err("[[notify]]\nname = \"w\"\ntype = \"webhook\"\nurl = \"http://x/\"\ntemplate = \"{{ summary \"\n");
    assert!(e.starts_with("lookout.toml:5: template in [[notify]] \"w\" does not compile: "), "{e}");
    assert_eq!(
        err("[[notify]]\nname = \"x\"\ntype = \"slak\"\nurl = \"https://x/\"\n"),
        "lookout.toml:3: unknown notify type \"slak\" in [[notify]] \"x\" (did you mean \"slack\"?); supported: webhook, slack, pagerduty, alertmanager, email"
    );
}

#[test]
fn a_group_of_several_waits_one_check_round_by_default_and_a_target_alone_not_at_all() {
    let text = r#"
[[target]]
name = "web-1"
url = "http://127.0.0.1:8080/1"
group = "shop"
interval = "10s"
timeout = "2s"

[[target]]
name = "web-2"
url = "http://127.0.0.1:8080/2"
group = "shop"
interval = "30s"
timeout = "5s"

[[target]]
name = "alone"
url = "http://127.0.0.1:8080/3"
interval = "1m"

[[log]]
name = "alone-logs"
access = "/var/log/apache2/access.log"
group = "alone"
"#;
    let waits = parse(text).unwrap().default_group_waits();
    assert_eq!(waits["shop"], Duration::from_secs(37), "the longest interval + timeout of the group, + 2 s");
    assert_eq!(waits["alone"], Duration::ZERO, "a target alone in its group (with its logs) is sent at once");
}

#[test]
fn routes_maintenance_and_dependencies() {
    let text = format!(
        r#"{SITE}depends_on = ["db"]

[[target]]
name = "db"
tcp = "127.0.0.1:5432"

[[notify]]
name = "ops"
type = "webhook"
url = "http://127.0.0.1:9/hook"

[[notify]]
name = "pager"
type = "webhook"
url = "http://127.0.0.1:9/pager"

[[route]]
match = ["severity=critical", "group=~\"site|db\""]
channels = ["pager"]
group_wait = "30s"
repeat_interval = "1h"
continue = true

[[route]]
channels = ["ops"]

[[maintenance]]
name = "backup"
match = ["target=db"]
schedule = "0 2 * * SUN"
duration = "2h"
timezone = "Europe/Berlin"

[[maintenance]]
name = "migration"
start = "2026-11-28T02:00"
duration = "90m"
"#
    );
    let cfg = parse(&text).unwrap();
    assert_eq!(cfg.targets[0].depends_on, vec!["db".to_string()]);
    assert_eq!(cfg.routes.len(), 2);
    assert_eq!(cfg.routes[0].channels, vec!["pager".to_string()]);
    assert_eq!(cfg.routes[0].matchers.len(), 2);
    assert_eq!(
        (cfg.routes[0].group_wait, cfg.routes[0].repeat_interval),
        (Some(Duration::from_secs(30)), Duration::from_secs(3600))
    );
    assert!(cfg.routes[0].continue_matching && !cfg.routes[1].continue_matching);
    assert_eq!(cfg.routes[1].group_wait, None, "not set: the group's default");
    assert_eq!(cfg.maintenance.len(), 2);
    // 2026-11-28T02:00 UTC (no timezone: UTC) for 90 minutes.
    let at = |s: &str| lookout_core::Timestamp::from_millis(s.parse::<jiff::Timestamp>().unwrap().as_millisecond());
    assert!(cfg.maintenance[1].schedule.active(at("2026-11-28T03:29:00Z")));
    assert!(!cfg.maintenance[1].schedule.active(at("2026-11-28T03:30:00Z")));

    assert_eq!(
        err(&format!("{SITE}[[route]]\nchannels = [\"pagr\"]\n")),
        "lookout.toml:6: [[route]] sends to \"pagr\", which no [[notify]] defines (defined: )"
    );
    assert_eq!(
        err(&format!("{SITE}[[route]]\nmatch = [\"severity\"]\n")),
        "lookout.toml:6: matcher \"severity\" has no operator: write name=value, name!=value, name=~regex or name!~regex in [[route]]"
    );
    assert_eq!(
        err("[[maintenance]]\nname = \"m\"\nschedule = \"0 2 * *\"\nduration = \"1h\"\n"),
        "lookout.toml:3: \"0 2 * *\" is not a cron expression: write five fields, minute hour day-of-month month day-of-week, e.g. \"0 2 * * SUN\" in [[maintenance]] \"m\""
    );
    assert_eq!(
        err(
            "[[maintenance]]\nname = \"m\"\nschedule = \"0 2 * * *\"\nduration = \"1h\"\ntimezone = \"Mars/Olympus\"\n"
        ),
        "lookout.toml:5: unknown timezone \"Mars/Olympus\" in [[maintenance]] \"m\"; use an IANA name like \"Europe/Berlin\" or \"UTC\""
    );
    assert_eq!(
        err(&format!("{SITE}depends_on = [\"nope\"]\n")),
        "lookout.toml:5: depends_on in [[target]] \"site\" names \"nope\": no target or log of that name"
    );
    let circle = "[[target]]\nname = \"a\"\ntcp = \"h:1\"\ndepends_on = [\"b\"]\n\n[[target]]\nname = \"b\"\ntcp = \"h:1\"\ndepends_on = [\"a\"]\n";
    assert_eq!(err(circle), "lookout.toml:4: depends_on in [[target]] \"a\" makes a circle");
}

#[test]
fn the_store_is_a_path_or_a_url_and_never_echoes_the_url() {
    let backend = |text: &str| parse(text).unwrap().store.backend;
    let sqlite = |p: &str| StoreBackend::Sqlite { path: p.into() };
    assert_eq!(backend("[store]\npath = \"data/l.sqlite\"\n"), sqlite("data/l.sqlite"));
    assert_eq!(backend("[store]\nurl = \"sqlite:l.sqlite\"\n"), sqlite("l.sqlite"));
    assert_eq!(backend("[store]\nurl = \"sqlite://l.sqlite\"\n"), sqlite("l.sqlite"));
    assert_eq!(backend("[store]\nurl = \"sqlite:///var/lib/l.sqlite\"\n"), sqlite("/var/lib/l.sqlite"));
    let from_env = Config::parse("[store]\nurl_env = \"DB\"\n", Path::new("/etc/lookout/lookout.toml"), &|k| {
        (k == "DB").then(|| "sqlite:state/l.sqlite".to_string())
    });
    assert_eq!(from_env.unwrap().store.backend, sqlite("/etc/lookout/state/l.sqlite"));

    assert_eq!(
        err("[store]\npath = \"a\"\nurl = \"sqlite:b\"\n"),
        "lookout.toml:3: [store] sets more than one of path, url and url_env: keep one"
    );
    assert_eq!(
        err("[store]\n\nurl_env = \"UNSET\"\n"),
        "lookout.toml:3: environment variable \"UNSET\" named by url_env in [store] is not set; export the store's URL (e.g. sqlite:/var/lib/lookout/lookout.sqlite) before starting lookout"
    );
    let pg_url = "postgresql://lookout:hunter2@db:5433/lookout?sslmode=require&password=hunter2";
    let pg = backend(&format!("[store]\nurl = \"{pg_url}\"\n"));
    assert_eq!(pg, StoreBackend::Postgres { url: pg_url.into() });
    assert_eq!(pg.to_string(), "postgresql://lookout:***@db:5433/lookout?sslmode=require&password=***");
    let pg = err("[store]\nurl = \"postgres://hunter2@/lookout\"\n");
    assert!(pg.starts_with("lookout.toml:2: url in [store] names no PostgreSQL server"), "{pg}");
    let odd = err("[store]\nurl = \"mysql://root:hunter2@db/x\"\n");
    assert!(odd.starts_with("lookout.toml:2: url in [store] is not a store URL"), "{odd}");
    assert!(!odd.contains("hunter2") && !pg.contains("hunter2"));
    assert!(err("[store]\nurl = \"sqlite:\"\n").contains("names no SQLite file"));
}

#[test]
fn commands_that_only_read_the_store_still_get_its_url_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lookout.toml");
    std::fs::write(&path, "[store]\nurl_env = \"LOOKOUT_CONFIG_TEST_STORE_URL\"\n").unwrap();
    // Read for real, not given the placeholder that stands in for secrets (which would be "not a store URL").
    let unset = Config::load_without_secrets(&path).unwrap_err().to_string();
    assert!(
        unset.ends_with(
            "lookout.toml:2: environment variable \"LOOKOUT_CONFIG_TEST_STORE_URL\" named by url_env in [store] is not set; export the store's URL (e.g. sqlite:/var/lib/lookout/lookout.sqlite) before starting lookout"
        ),
        "{unset}"
    );
}

#[test]
fn dns_icmp_and_http2_targets() {
    let cfg = parse(
        r#"
[[target]]
name = "resolver"
dns = { server = "127.0.0.1:5353", name = "example.test", type = "mx" }

[[target]]
name = "default-port"
dns = { server = "[::1]", name = "example.test." }

[[target]]
name = "gw"
icmp = "127.0.0.1"

[[target]]
name = "h1"
url = "https://127.0.0.1:8443/"
http2 = false
"#,
    )
    .unwrap();
    let Check::Dns(d) = &cfg.target("resolver").unwrap().check else { panic!("dns") };
    assert_eq!((d.server.as_str(), d.name.as_str(), d.record), ("127.0.0.1:5353", "example.test", RecordType::Mx));
    assert_eq!(cfg.target("resolver").unwrap().conditions[0].source(), "[DNS_RCODE] == NOERROR");
    let Check::Dns(d) = &cfg.target("default-port").unwrap().check else { panic!("dns") };
    assert_eq!((d.server.as_str(), d.record), ("[::1]:53", RecordType::A), "port 53 and type A by default");
    assert!(matches!(&cfg.target("gw").unwrap().check, Check::Icmp { host } if host == "127.0.0.1"));
    assert_eq!(cfg.target("gw").unwrap().conditions[0].source(), "[CONNECTED] == true");
    let Check::Http(h) = &cfg.target("h1").unwrap().check else { panic!("http") };
    assert!(!h.http2);
    let Check::Http(h) = &parse(SITE).unwrap().targets[0].check else { panic!("http") };
    assert!(h.http2, "HTTP/2 is offered unless turned off");
    for rt in RecordType::ALL {
        let text = format!(
            "[[target]]\nname = \"x\"\ndns = {{ server = \"127.0.0.1\", name = \"a.test\", type = \"{rt}\" }}\n"
        );
        assert!(parse(&text).is_ok(), "{rt}");
    }
}

#[test]
fn dns_icmp_and_http2_errors_name_file_line_and_key() {
    let t = |body: &str| err(&format!("[[target]]\nname = \"r\"\n{body}\n"));
    assert_eq!(
        t(r#"dns = { server = "127.0.0.1:53", name = "example.test", type = "AAA" }"#),
        "lookout.toml:3: type = \"AAA\" in dns of [[target]] \"r\" is not a record type lookout asks for (did you mean \"AAAA\"?); known: A, AAAA, CNAME, MX, NS, PTR, SOA, SRV, TXT"
    );
    assert_eq!(
        t(r#"dns = { server = "127.0.0.1:99999", name = "example.test" }"#),
        "lookout.toml:3: server = \"127.0.0.1:99999\" in dns of [[target]] \"r\": port 99999 is out of range: use 1 to 65535; write e.g. \"127.0.0.1:53\" or \"[::1]:5353\""
    );
    assert!(
        t(r#"dns = { server = "127.0.0.1", name = "bad name!" }"#)
            .starts_with("lookout.toml:3: name = \"bad name!\" in dns of [[target]] \"r\" is not a domain name")
    );
    let unknown = t(r#"dns = { server = "127.0.0.1", name = "a.test", tpye = "A" }"#);
    assert!(
        unknown.starts_with("lookout.toml:3: unknown key \"tpye\"") && unknown.contains("did you mean \"type\"?"),
        "{unknown}"
    );
    let missing = t(r#"dns = { name = "a.test" }"#);
    assert!(missing.starts_with("lookout.toml:3: missing key \"server\""), "{missing}");
    assert_eq!(
        t("icmp = \"127.0.0.1:80\""),
        "lookout.toml:3: icmp = \"127.0.0.1:80\" in [[target]] \"r\": ping needs a host without a port, e.g. \"127.0.0.1\""
    );
    assert_eq!(
        t("icmp = \"127.0.0.1\"\nhttp2 = true"),
        "lookout.toml:4: \"http2\" in [[target]] \"r\" only applies to url = \"http(s)://...\" targets"
    );
    assert_eq!(
        t("tcp = \"127.0.0.1:1\"\nicmp = \"127.0.0.1\""),
        "lookout.toml:2: [[target]] \"r\" sets more than one of url, tcp, tls, dns and icmp: keep one per target"
    );
    assert_eq!(
        t("icmp = \"127.0.0.1\"\nverify_tls = false"),
        "lookout.toml:4: \"verify_tls\" in [[target]] \"r\" only applies to https and tls targets"
    );
}

#[test]
fn raw_retention_defaults_to_a_day_and_is_checked_against_retention() {
    let store = |text: &str| parse(text).unwrap().store;
    assert_eq!(store("[store]\n").raw_retention, Duration::from_secs(24 * 3600), "the default");
    assert_eq!(store("[store]\nraw_retention = \"12h\"\n").raw_retention, Duration::from_secs(12 * 3600));
    assert_eq!(
        store("[store]\nretention = \"1d\"\n").raw_retention,
        Duration::from_secs(86400),
        "never past retention"
    );
    assert_eq!(
        err("[store]\nraw_retention = \"10m\"\n"),
        "lookout.toml:2: raw_retention in [store] is shorter than 1h: raw results are rolled up by the hour; write e.g. \"48h\""
    );
    assert_eq!(
        err("[store]\nretention = \"1d\"\n\nraw_retention = \"3d\"\n"),
        "lookout.toml:4: raw_retention in [store] is longer than retention (1d): every result would be deleted before it could be rolled up; make raw_retention at most retention"
    );
}

#[test]
fn per_target_metrics_can_be_left_out_one_by_one_or_for_all() {
    let one =
        parse(&format!("{SITE}metrics = false\n\n[[target]]\nname = \"db\"\ntcp = \"127.0.0.1:5432\"\n")).unwrap();
    assert_eq!(one.targets.iter().map(|t| t.metrics).collect::<Vec<_>>(), [false, true]);
    let all = parse(&format!(
        "[web]\ntarget_metrics = false\n{SITE}\n[[target]]\nname = \"db\"\ntcp = \"127.0.0.1:5432\"\nmetrics = true\n"
    ))
    .unwrap();
    assert_eq!(all.targets.iter().map(|t| t.metrics).collect::<Vec<_>>(), [false, true], "a target's own word wins");
}

#[test]
fn an_agent_is_named_by_the_file_or_the_environment_and_defaults_to_the_host() {
    let agent = |text: &str, env: &dyn Fn(&str) -> Option<String>| {
        Config::parse(text, Path::new("lookout.toml"), env).map(|c| c.agent)
    };
    let none = |_: &str| None;
    let default = agent("", &none).unwrap();
    assert_eq!(default.location, "local");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    if crate::load::valid_name(host.trim()) {
        assert_eq!(default.name, host.trim());
    }
    let file = "[agent]\nname = \"probe-1\"\nlocation = \"eu-west\"\n";
    assert_eq!(agent(file, &none).unwrap(), AgentConfig { name: "probe-1".into(), location: "eu-west".into() });
    let env = |k: &str| (k == "LOOKOUT_AGENT_LOCATION").then(|| "us-east".to_string());
    assert_eq!(agent(file, &env).unwrap().location, "us-east", "the environment wins");
    let bad = agent("\n[agent]\nlocation = \"eu west\"\n", &none).unwrap_err().to_string();
    assert_eq!(
        bad,
        "lookout.toml:3: location in [agent] is \"eu west\": use letters, digits, '-', '_' or '.' (at most 64)"
    );
    let env = |k: &str| (k == "LOOKOUT_AGENT_NAME").then(|| "a/b".to_string());
    let bad = agent("", &env).unwrap_err().to_string();
    assert!(bad.starts_with("$LOOKOUT_AGENT_NAME is not a valid agent name"), "{bad}");
    assert!(!bad.contains("a/b"), "an environment value is never echoed: {bad}");
    // Agents sharing a host share the file, not the web port.
    let text = "[web]\nlisten = \"127.0.0.1:9000\"\n";
    let env = |k: &str| (k == "LOOKOUT_WEB_LISTEN").then(|| "127.0.0.1:9001".to_string());
    let Ok(c) = Config::parse(text, Path::new("lookout.toml"), &env) else { panic!("parses") };
    assert_eq!(c.web.listen.port(), 9001);
    let env = |k: &str| (k == "LOOKOUT_WEB_LISTEN").then(|| "nine".to_string());
    let bad = Config::parse(text, Path::new("lookout.toml"), &env).map(|_| ()).unwrap_err().to_string();
    assert!(bad.starts_with("$LOOKOUT_WEB_LISTEN is not an address"), "{bad}");
}

#[test]
fn a_status_page_is_a_target_of_its_own_kind_with_fire_when_rules() {
    let c = parse(
        "[[status]]\nname = \"apache\"\ntype = \"apache\"\nurl = \"http://127.0.0.1:8080/server-status\"\n\n\
         [[status]]\nname = \"fpm\"\ntype = \"php-fpm\"\nurl = \"http://127.0.0.1:8080/fpm-status\"\nworkers = 8\n\
         fire_when = [\"[LISTEN_QUEUE] > 0\"]\nfor = \"30s\"\nseverity = \"warning\"\n\n\
         [[status]]\nname = \"pool\"\ntype = \"php-fpm\"\nurl = \"http://127.0.0.1:8080/fpm-status\"\nworkers = 8\n",
    )
    .unwrap();
    // Default rules: a warning (80 % for 2 minutes) that is not sent while the critical level (95 %) fires.
    let apache = c.target("apache").unwrap();
    let Check::Status(check) = &apache.check else { panic!("{:?}", apache.check) };
    assert_eq!(check.server, crate::Server::Apache);
    assert_eq!(check.http.url.to_string(), "http://127.0.0.1:8080/server-status?auto", "the machine-readable page");
    assert_eq!(apache.interval, Duration::from_secs(10));
    assert_eq!(apache.conditions.len(), 1);
    assert!(apache.conditions[0].fires() && apache.conditions[0].source() == "[WORKER_SATURATION] >= 80%");
    assert_eq!((apache.alert.severity.as_str(), apache.policy.pending_for), ("warning", Duration::from_secs(120)));
    assert_eq!(apache.depends_on, ["apache-critical"]);
    let critical = c.target("apache-critical").unwrap();
    assert_eq!(critical.conditions[0].source(), "[WORKER_SATURATION] >= 95%");
    assert_eq!((critical.alert.severity.as_str(), critical.policy.pending_for), ("critical", Duration::ZERO));
    assert_eq!(critical.group, "apache", "one incident for the server");
    // FPM: a third level for requests queueing 30 s.
    let queue = c.target("pool-queue").unwrap();
    assert_eq!(
        (queue.conditions[0].source(), queue.policy.pending_for),
        ("[LISTEN_QUEUE] > 0", Duration::from_secs(30))
    );
    // Its own rules: one target, with its own severity and `for`.
    let fpm = c.target("fpm").unwrap();
    let Check::Status(check) = &fpm.check else { panic!() };
    assert_eq!((check.workers, check.http.url.query()), (Some(8), Some("json")));
    assert_eq!(fpm.policy.pending_for, Duration::from_secs(30));
    assert_eq!(fpm.alert.severity, "warning");
    assert_eq!(fpm.check.kind_name(), "status");
    assert!(c.target("fpm-critical").is_none());
}

#[test]
fn status_page_mistakes_name_the_line() {
    let e = err("[[status]]\nname = \"web\"\ntype = \"lighttpd\"\nurl = \"http://127.0.0.1/s\"\n");
    assert!(e.starts_with("lookout.toml:3:") && e.contains("use one of apache, nginx, php-fpm"), "{e}");
    let e = err("[[status]]\nname = \"web\"\ntype = \"apache\"\nurl = \"http://127.0.0.1/s\"\nworkers = 0\n");
    assert!(e.starts_with("lookout.toml:5:") && e.contains("\"workers\""), "{e}");
    let e = err("[[status]]\nname = \"web\"\ntype = \"apache\"\nurl = \"http://127.0.0.1/s\"\n\
                 fire_when = [\"[BUSY_WORKER] > 3\"]\n");
    assert!(e.starts_with("lookout.toml:5:") && e.contains("did you mean [BUSY_WORKERS]?"), "{e}");
    let e = err("[[status]]\nname = \"web\"\ntype = \"nginx\"\nurl = \"ftp://127.0.0.1/s\"\n");
    assert!(e.starts_with("lookout.toml:4:"), "{e}");
    // One namespace with targets: alerts, incidents and URLs name them alike.
    let e = err(
        "[[target]]\nname = \"web\"\nurl = \"http://127.0.0.1/\"\n\n[[status]]\nname = \"web\"\ntype = \"nginx\"\nurl = \"http://127.0.0.1/s\"\n",
    );
    assert!(e.contains("duplicate status name \"web\""), "{e}");
    // A default level's name is taken too.
    let e = err("[[target]]\nname = \"web-critical\"\nurl = \"http://127.0.0.1/\"\n\n\
                 [[status]]\nname = \"web\"\ntype = \"apache\"\nurl = \"http://127.0.0.1/s\"\n");
    assert!(e.starts_with("lookout.toml:6:") && e.contains("\"web-critical\""), "{e}");
    // `severity` and `for` belong to one's own rules.
    let e = err("[[status]]\nname = \"web\"\ntype = \"apache\"\nurl = \"http://127.0.0.1/s\"\nfor = \"1m\"\n");
    assert!(e.starts_with("lookout.toml:5:") && e.contains("fire_when"), "{e}");
}
