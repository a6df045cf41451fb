//! `lookout check` as a deploy script or CI uses it: exit codes, table, `--json`, `--nagios`, selection.

use std::process::Output;

use crate::support::{Target, lookout_bin, write_config};

async fn lookout(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        assert_cmd::Command::new(lookout_bin()).args(&args).env_remove("LOOKOUT_CONFIG").output().unwrap()
    })
    .await
    .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

struct Fixture {
    _dir: tempfile::TempDir,
    config: String,
    good: Target,
    bad: Target,
}

async fn fixture() -> Fixture {
    let good = Target::start().await;
    let bad = Target::start().await;
    bad.set(500, "");
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &format!(
            "[[target]]\nname = \"good\"\nurl = \"{}\"\nconditions = [\"[STATUS] == 200\"]\n\n\
             [[target]]\nname = \"bad\"\nurl = \"{}\"\nconditions = [\"[STATUS] == 200\"]\n\n\
             [[target]]\nname = \"db\"\ntcp = \"{}\"\n",
            good.url("/"),
            bad.url("/"),
            good.addr
        ),
    );
    Fixture { config: path.display().to_string(), _dir: dir, good, bad }
}

/// `check` neither serves nor sends: a web token and a channel secret named by a config need not be set.
#[tokio::test(flavor = "multi_thread")]
async fn check_needs_no_web_token_or_channel_secret() {
    let good = Target::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &format!(
            "[web]\ntokens_env = \"LOOKOUT_TEST_UNSET_TOKENS\"\n\n[[target]]\nname = \"good\"\nurl = \"{}\"\n\n\
             [[notify]]\nname = \"pager\"\ntype = \"pagerduty\"\nrouting_key_env = \"LOOKOUT_TEST_UNSET_KEY\"\n",
            good.url("/")
        ),
    );
    let out = lookout(&["check", "--config", &path.display().to_string()]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("1 check, 1 passed"), "{}", text(&out.stdout));
    // `run` serves and sends: there, they must be set.
    let run = lookout(&["run", "--config", &path.display().to_string()]).await;
    assert_eq!(run.status.code(), Some(2));
    assert!(text(&run.stderr).contains("is not set"), "{}", text(&run.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn all_passing_exits_0_with_a_table() {
    let f = fixture().await;
    let out = lookout(&["check", "--config", &f.config, "--target", "good", "--target", "db"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("TARGET  RESULT  STATUS"), "{stdout}");
    assert!(lines[1].starts_with("good    ok      200"), "{stdout}");
    assert!(lines[2].starts_with("db      ok      connected"), "{stdout}");
    assert_eq!(lines.last(), Some(&"2 checks, 2 passed, 0 failed"));
    assert!(!stdout.contains("\x1b["), "no colours when not on a terminal");
}

#[tokio::test(flavor = "multi_thread")]
async fn any_failure_exits_1_and_names_the_condition() {
    let f = fixture().await;
    let out = lookout(&["check", "--config", &f.config]).await;
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    let bad = stdout.lines().find(|l| l.starts_with("bad")).unwrap();
    assert!(bad.contains("FAIL") && bad.contains("500") && bad.ends_with("[STATUS] (500) == 200"), "{stdout}");
    // The order of the config is kept although checks ran concurrently.
    let names: Vec<&str> = stdout.lines().skip(1).take(3).map(|l| l.split_whitespace().next().unwrap()).collect();
    assert_eq!(names, ["good", "bad", "db"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn json_output_shape() {
    let f = fixture().await;
    let out = lookout(&["check", "--config", &f.config, "--json"]).await;
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 3);
    for item in arr {
        for key in ["name", "ok", "status", "latency_ms", "failed_conditions", "error", "timings"] {
            assert!(item.get(key).is_some(), "{key} missing in {item}");
        }
        assert!(item["latency_ms"].is_number());
    }
    assert_eq!(arr[0]["name"], "good");
    assert_eq!(arr[0]["ok"], true);
    assert_eq!(arr[0]["status"], 200);
    assert_eq!(arr[0]["failed_conditions"], serde_json::json!([]));
    assert_eq!(arr[1]["ok"], false);
    assert_eq!(arr[1]["status"], 500);
    assert_eq!(arr[1]["failed_conditions"], serde_json::json!(["[STATUS] (500) == 200"]));
    assert_eq!(arr[1]["error"], serde_json::Value::Null);
    assert_eq!(arr[2]["status"], serde_json::Value::Null);

    // A refused target reports its error.
    f.bad.set(200, "");
    drop(f.good);
    let out = lookout(&["check", "--config", &f.config, "--json", "--target", "good"]).await;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(v[0]["error"].as_str().unwrap().starts_with("refused: "), "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn nagios_convention() {
    let f = fixture().await;
    let out = lookout(&["check", "--config", &f.config, "--nagios", "--target", "good"]).await;
    assert_eq!(out.status.code(), Some(0));
    let line = text(&out.stdout);
    assert!(line.starts_with("LOOKOUT OK - 1 of 1 check passed | 'good_time'="), "{line}");
    assert_eq!(line.lines().count(), 1);

    let out = lookout(&["check", "--config", &f.config, "--nagios"]).await;
    assert_eq!(out.status.code(), Some(2), "CRITICAL");
    let line = text(&out.stdout);
    assert!(line.starts_with("LOOKOUT CRITICAL - 1 of 3 checks failed: bad: [STATUS] (500) == 200 | "), "{line}");
    assert!(line.contains("'bad_ok'=0;;;0;1"), "{line}");

    let out = lookout(&["check", "--config", "/nonexistent/lookout.toml", "--nagios"]).await;
    assert_eq!(out.status.code(), Some(3), "UNKNOWN");
    assert!(text(&out.stdout).starts_with("LOOKOUT UNKNOWN - /nonexistent/lookout.toml: cannot read config"));
}

#[tokio::test(flavor = "multi_thread")]
async fn config_and_usage_errors_exit_2() {
    let f = fixture().await;
    let out = lookout(&["check", "--config", &f.config, "--target", "nope"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no target named \"nope\""), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("good, bad, db"));

    let dir = tempfile::tempdir().unwrap();
    let bad =
        write_config(dir.path(), "[[target]]\nname = \"site\"\nurl = \"http://127.0.0.1:1/\"\nintervall = \"10s\"\n");
    let out = lookout(&["check", "--config", bad.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr).trim(),
        format!(
            "error: {}:4: unknown key \"intervall\" in [[target]] \"site\" (did you mean \"interval\"?)",
            bad.display()
        )
    );

    let out = lookout(&["check", "--bogus"]).await;
    assert_eq!(out.status.code(), Some(2), "clap usage errors exit 2 too");
    let out = lookout(&["check", "--config", "/nonexistent/lookout.toml"]).await;
    assert_eq!(out.status.code(), Some(2));
}
