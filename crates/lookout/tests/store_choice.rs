//! The store is chosen at start-up from `[store]`: every command opens the one it names, also when its URL comes
//! from the environment (`url_env`), which the read-only commands need as much as `lookout run`.

use lookout_store::OutboxStore;

use crate::support::{lookout_bin, open_store, write_config};

fn lookout(args: &[&str], config: &std::path::Path, url: Option<&str>) -> (i32, String, String) {
    let mut cmd = std::process::Command::new(lookout_bin());
    cmd.args(args).arg("--config").arg(config).env_remove("LOOKOUT_TEST_STORE_URL");
    if let Some(url) = url {
        cmd.env("LOOKOUT_TEST_STORE_URL", url);
    }
    let out = cmd.output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[tokio::test]
async fn every_command_opens_the_store_the_environment_names() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "[store]\nurl_env = \"LOOKOUT_TEST_STORE_URL\"\n");
    let url = Some("sqlite:state/chosen.sqlite");

    let (code, _, err) = lookout(&["silence", "add", "group=shop", "--comment", "deploy"], &config, url);
    assert_eq!(code, 0, "{err}");
    let chosen = dir.path().join("state/chosen.sqlite");
    assert!(chosen.exists(), "the URL's path, relative to the config file, holds the store");
    assert!(!dir.path().join("lookout.sqlite").exists(), "not the default");
    let silences = open_store(&chosen).silences(false, lookout_core::Timestamp::now()).await.unwrap();
    assert_eq!(silences.len(), 1);
    assert_eq!(silences[0].comment, "deploy");

    let (code, out, _) = lookout(&["silence", "list"], &config, url);
    assert_eq!(code, 0);
    assert!(out.contains("group=shop — deploy"), "{out}");
    let (code, out, _) = lookout(&["incidents"], &config, url);
    assert_eq!((code, out.as_str()), (0, "No incidents yet.\n"));

    let (code, _, err) = lookout(&["incidents"], &config, None);
    assert_eq!(code, 2);
    assert!(
        err.contains(
            "lookout.toml:2: environment variable \"LOOKOUT_TEST_STORE_URL\" named by url_env in [store] is not set"
        ),
        "{err}"
    );
}
