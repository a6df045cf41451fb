//! Any text as an Apache or nginx error-log line: parsing must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lookout_logs::error_log::{parse, ErrorFormat};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = parse(ErrorFormat::Apache, &text);
    let _ = parse(ErrorFormat::Nginx, &text);
});
