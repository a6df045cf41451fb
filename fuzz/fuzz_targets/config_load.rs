//! Any text as `lookout.toml`: loading and validating must never panic, every error must name a line inside the
//! file, and neither an error nor the `Debug` of a loaded config may show a secret from the environment (here a
//! URL with a password, given to every `*_env` key). Redaction of URLs written in the file is unit-tested.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use lookout_config::{Config, ConfigError};

/// The password of the URL every `*_env` variable holds, so that any echo of it is caught.
const PASSWORD: &str = "Fz9pw";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // Secrets named by *_env come from "the environment": a URL with credentials, or the input's last line.
    let last = text.lines().last().unwrap_or("").to_string();
    let env = move |k: &str| -> Option<String> {
        match k.len() % 3 {
            0 => Some(format!("http://u:{PASSWORD}@127.0.0.1:9/x")),
            1 => Some(last.clone()),
            _ => None,
        }
    };
    let result = Config::parse(text, Path::new("fuzz.toml"), &env);
    let shown = match &result {
        Ok(cfg) => format!("{cfg:?}"),
        Err(e) => {
            if let ConfigError::At { line, .. } = e {
                assert!(*line >= 1 && *line <= text.lines().count().max(1) + 1, "line {line} outside the file: {e}");
            }
            e.to_string()
        }
    };
    // Unless the input wrote it itself (then it may be echoed, e.g. in an invalid name).
    if !text.contains(PASSWORD) {
        assert!(!shown.contains(PASSWORD), "a password was shown: {shown}");
    }
});
