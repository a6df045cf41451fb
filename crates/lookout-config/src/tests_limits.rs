//! URLs (credentials never echoed, ports and hosts checked) and the minimums of timeouts, intervals, retries and
//! reminders: every refusal names file, line and key.

use std::path::Path;
use std::time::Duration;

use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("lookout.toml"), &|k| match k {
        "HOOK" => Some("http://hook:s3cr3t@127.0.0.1:80800/x".to_string()),
        "PD_KEY" => Some("routing-key".to_string()),
        _ => None,
    })
}

fn err(text: &str) -> String {
    match parse(text) {
        Ok(_) => panic!("should not parse:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn target(key_value: &str) -> String {
    format!("[[target]]\nname = \"site\"\n{key_value}\n")
}

fn channel(kind: &str, extra: &str) -> String {
    format!("[[notify]]\nname = \"ops\"\ntype = \"{kind}\"\n{extra}\n")
}

#[test]
fn ports_out_of_range_are_errors_with_line_and_key_not_port_80() {
    for port in ["80800", "65536", "99999", "0"] {
        let e = err(&target(&format!("url = \"http://127.0.0.1:{port}/\"")));
        assert!(
            e.starts_with(&format!(
                "lookout.toml:3: url = \"http://127.0.0.1:{port}/\" in [[target]] \"site\": port {port}"
            )),
            "{e}"
        );
        for key in ["tcp", "tls"] {
            let e = err(&target(&format!("{key} = \"127.0.0.1:{port}\"")));
            assert!(
                e.starts_with(&format!(
                    "lookout.toml:3: {key} = \"127.0.0.1:{port}\" in [[target]] \"site\": port {port}"
                )),
                "{e}"
            );
        }
    }
    let e = err(&target("url = \"http://127.0.0.1:8a/\""));
    assert!(e.contains("the port is not a number from 1 to 65535"), "{e}");
    // A password with an unencoded '/' ends the authority early; neither half of it is shown.
    let e = err(&target("url = \"http://admin:pa/ss@127.0.0.1/\""));
    assert!(e.contains("\"http://admin:***@127.0.0.1/\"") && !e.contains("pa") && !e.contains("ss@"), "{e}");
    // The limits themselves are fine.
    parse(&target("url = \"http://127.0.0.1:65535/\"")).unwrap();
    parse(&target("tcp = \"[::1]:1\"")).unwrap();
}

#[test]
fn empty_and_invalid_hosts_are_errors() {
    for (line, why) in [
        ("url = \"http://:8080/\"", "the host is empty"),
        ("url = \"http://admin:pw@:8080/\"", "the host is empty"),
        ("url = \"http://999.1.1.1/\"", "not a valid IPv4 address"),
        ("url = \"http://-bad-.example/\"", "not a valid host name"),
        ("tcp = \":5432\"", "the host is empty"),
        ("tcp = \"999.0.0.1:5432\"", "not a valid IPv4 address"),
        ("tcp = \"::1:5432\"", "in brackets"),
        ("tls = \"example.com\"", "has no port"),
        ("tcp = \"user@db:5432\"", "is not host:port"),
    ] {
        let e = err(&target(line));
        assert!(e.starts_with("lookout.toml:3: ") && e.contains(why), "{line}: {e}");
    }
}

#[test]
fn credentials_in_urls_are_never_echoed() {
    // A target url: the error shows the URL redacted.
    let e = err(&target("url = \"http://admin:hunter2@127.0.0.1:80800/\""));
    assert!(e.contains("\"http://admin:***@127.0.0.1:80800/\""), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
    // Not even when the URL does not parse at all.
    let e = err(&target("url = \"http://admin:hunter 2@127.0.0.1/\""));
    assert!(e.starts_with("lookout.toml:3: url = ") && !e.contains("hunter"), "{e}");
    // Channels: webhook, alertmanager and pagerduty URLs from the file; a URL from the environment is not shown.
    for (kind, extra) in [("webhook", ""), ("alertmanager", ""), ("pagerduty", "routing_key_env = \"PD_KEY\"\n")] {
        let e = err(&channel(kind, &format!("{extra}url = \"https://bot:hunter2@127.0.0.1:99999/\"")));
        assert!(e.starts_with("lookout.toml:"), "{e}");
        assert!(e.contains("url = \"https://bot:***@127.0.0.1:99999/\"") && e.contains("port 99999"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }
    let e = err(&channel("webhook", "url_env = \"HOOK\""));
    assert!(e.starts_with("lookout.toml:4: url (from the environment) in [[notify]] \"ops\": port 80800"), "{e}");
    assert!(!e.contains("s3cr3t") && !e.contains("hook:"), "{e}");
    // A Slack URL is its own credential: not shown even when written in the file.
    let e = err(&channel("slack", "url = \"https://hooks.example:0/services/T/B/TOKEN\""));
    assert!(e.starts_with("lookout.toml:4: url (not shown: it carries a token) in [[notify]] \"ops\": port 0"), "{e}");
    assert!(!e.contains("TOKEN"), "{e}");
}

#[test]
fn debug_of_targets_and_channels_hides_credentials() {
    let text = format!(
        "{}headers = {{ X-Api-Key = \"k3y\" }}\n{}headers = {{ Authorization = \"Bearer t0ken\" }}\n{}",
        target("url = \"http://admin:hunter2@127.0.0.1:8080/\""),
        channel("alertmanager", "url = \"http://am:hunter3@127.0.0.1:9093/\""),
        "[[notify]]\nname = \"pd\"\ntype = \"pagerduty\"\nrouting_key_env = \"PD_KEY\"\n\
         url = \"https://pd:hunter4@127.0.0.1:8443/v2/enqueue\"\n",
    );
    let cfg = parse(&text).unwrap();
    let shown = format!("{cfg:?}");
    for secret in ["hunter2", "hunter3", "hunter4", "k3y", "t0ken", "routing-key"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("admin:***@127.0.0.1:8080"), "{shown}");
    assert!(shown.contains("am:***@127.0.0.1:9093"), "{shown}");
    // The URL itself keeps the credentials: the client sends them as Basic auth.
    let Check::Http(h) = &cfg.targets[0].check else { panic!("http") };
    assert_eq!(h.url.authority().unwrap().as_str(), "admin:hunter2@127.0.0.1:8080");
}

#[test]
fn too_short_timeouts_intervals_retries_and_reminders_are_refused_stating_the_minimum() {
    let site = target("url = \"http://127.0.0.1:8080/\"");
    let hook = channel("webhook", "url = \"http://127.0.0.1:9/\"");
    for (text, line, key, minimum) in [
        (format!("{site}timeout = \"0s\"\n"), 4, "timeout", "100ms"),
        (format!("{site}timeout = \"50ms\"\n"), 4, "timeout", "100ms"),
        (format!("{site}interval = \"0s\"\n"), 4, "interval", "100ms"),
        (format!("{site}interval = \"10ms\"\n"), 4, "interval", "100ms"),
        (format!("{hook}timeout = \"0s\"\n"), 5, "timeout", "100ms"),
        (format!("{hook}retry_initial = \"0s\"\n"), 5, "retry_initial", "100ms"),
        (format!("{hook}retry_initial = \"10ms\"\n"), 5, "retry_initial", "100ms"),
        (format!("{hook}retry_max = \"0s\"\n"), 5, "retry_max", "100ms"),
        (format!("{hook}[[route]]\nrepeat_interval = \"0s\"\n"), 6, "repeat_interval", "1m"),
        (format!("{hook}[[route]]\nrepeat_interval = \"30s\"\n"), 6, "repeat_interval", "1m"),
    ] {
        let e = err(&text);
        assert!(e.starts_with(&format!("lookout.toml:{line}: \"{key}\" in ")), "{text}\n{e}");
        assert!(e.ends_with(&format!("the minimum is {minimum}")), "{text}\n{e}");
    }
    // At the minimum is fine.
    let cfg = parse(&format!(
        "{site}timeout = \"100ms\"\ninterval = \"100ms\"\n{hook}timeout = \"100ms\"\nretry_initial = \"100ms\"\nretry_max = \"100ms\"\n[[route]]\nrepeat_interval = \"1m\"\n"
    ))
    .unwrap();
    assert_eq!(cfg.targets[0].timeout, Duration::from_millis(100));
    assert_eq!(cfg.notify[0].retry_initial, Duration::from_millis(100));
    assert_eq!(cfg.routes[0].repeat_interval, Duration::from_secs(60));
}

#[test]
fn retry_initial_longer_than_retry_max_is_refused() {
    let hook = channel("webhook", "url = \"http://127.0.0.1:9/\"");
    let e = err(&format!("{hook}retry_initial = \"10s\"\nretry_max = \"5s\"\n"));
    assert!(
        e.starts_with(
            "lookout.toml:5: \"retry_initial\" (10s) in [[notify]] \"ops\" is longer than \"retry_max\" (5s)"
        ),
        "{e}"
    );
    // Against the default retry_max (5m), too.
    let e = err(&format!("{hook}retry_initial = \"10m\"\n"));
    assert!(e.contains("is longer than \"retry_max\" (5m)"), "{e}");
}

#[test]
fn unknown_condition_operators_are_config_errors() {
    for op in ["===", "!==", "=>", "=<", "<>"] {
        let e = err(&format!("{}conditions = [\"[STATUS] {op} 200\"]\n", target("url = \"http://127.0.0.1:8080/\"")));
        assert!(
            e.starts_with(&format!(
                "lookout.toml:4: invalid condition in [[target]] \"site\": unknown operator {op:?}"
            )),
            "{e}"
        );
    }
}
