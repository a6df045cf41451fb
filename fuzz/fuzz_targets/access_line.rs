//! Any bytes, in any of the presets or a format from the input itself: parsing must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lookout_logs::LogFormat;

fuzz_target!(|data: &[u8]| {
    for preset in ["common", "combined", "vhost_combined"] {
        if let Ok(f) = LogFormat::named_or_custom(preset) {
            let _ = f.parse_line(data);
        }
    }
    // The first line is a LogFormat, the rest lines to parse with it.
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some((format, rest)) = text.split_once('\n') {
            if let Ok(f) = LogFormat::parse(format) {
                for line in rest.lines() {
                    let _ = f.parse_line(line.as_bytes());
                }
            }
        }
    }
});
