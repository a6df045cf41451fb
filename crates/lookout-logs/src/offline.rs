//! Reading whole log files for reports: one reader thread cuts the input into blocks of whole lines, worker
//! threads parse blocks into [`Partial`]s, which are merged at the end. Memory stays bounded by the blocks in
//! flight, whatever the file size.

use std::io::{self, Read};
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex};

use memchr::{memchr, memchr_iter, memrchr};

use crate::access::Malformed;
use crate::format::LogFormat;
use crate::report::{Partial, Report, ReportOptions};

/// Bytes per block handed to a worker.
const BLOCK: usize = 4 << 20;
/// Longer lines are counted as malformed and skipped, so one runaway line cannot exhaust memory.
pub const MAX_LINE: usize = 1 << 20;

/// Analyzes `inputs` in order (as one stream of lines) with `threads` workers. `progress` is called with the
/// number of input bytes consumed as reading goes on.
pub fn analyze(
    inputs: Vec<Box<dyn Read + Send>>,
    format: &LogFormat,
    opts: &ReportOptions,
    threads: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> io::Result<Report> {
    let threads = threads.max(1);
    let (tx, rx) = sync_channel::<Vec<u8>>(threads * 2);
    let rx = Arc::new(Mutex::new(rx));
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let rx = rx.clone();
                scope.spawn(move || work(&rx, format, opts))
            })
            .collect();
        let mut own = Partial::default();
        let read = read_blocks(inputs, &tx, &mut own, progress);
        drop(tx);
        for w in workers {
            match w.join() {
                Ok(p) => own.merge(p),
                Err(_) => return Err(io::Error::other("a log worker thread panicked")),
            }
        }
        read?;
        Ok(own.finish(opts))
    })
}

fn work(rx: &Mutex<Receiver<Vec<u8>>>, format: &LogFormat, opts: &ReportOptions) -> Partial {
    let mut p = Partial::default();
    loop {
        let block = {
            let guard = rx.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            guard.recv()
        };
        let Ok(block) = block else { return p };
        let mut start = 0;
        for nl in memchr_iter(b'\n', &block) {
            p.add_line(format, opts, &block[start..nl]);
            start = nl + 1;
        }
        if start < block.len() {
            p.add_line(format, opts, &block[start..]);
        }
    }
}

/// Cuts the inputs into blocks that end at a newline. Lines longer than [`MAX_LINE`] are counted in `own`.
fn read_blocks(
    inputs: Vec<Box<dyn Read + Send>>,
    tx: &std::sync::mpsc::SyncSender<Vec<u8>>,
    own: &mut Partial,
    progress: &(dyn Fn(u64) + Sync),
) -> io::Result<()> {
    for mut input in inputs {
        let mut buf: Vec<u8> = Vec::with_capacity(BLOCK + MAX_LINE);
        let mut skipping = false;
        loop {
            let old = buf.len();
            buf.resize(old + BLOCK, 0);
            let n = loop {
                match input.read(&mut buf[old..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
            buf.truncate(old + n);
            progress(n as u64);
            if skipping {
                // Inside an over-long line: drop bytes up to its end.
                match memchr(b'\n', &buf) {
                    Some(i) => {
                        buf.drain(..=i);
                        skipping = false;
                    }
                    None => {
                        buf.clear();
                        if n == 0 {
                            break;
                        }
                        continue;
                    }
                }
            }
            if n == 0 {
                if !buf.is_empty() {
                    send(tx, std::mem::take(&mut buf))?;
                }
                break;
            }
            match memrchr(b'\n', &buf) {
                Some(last) => {
                    let rest = buf.split_off(last + 1);
                    let full = std::mem::replace(&mut buf, rest);
                    send(tx, full)?;
                }
                None if buf.len() > MAX_LINE => {
                    own.count_line();
                    own.malformed(Malformed::TooLong, &buf[..256.min(buf.len())]);
                    buf.clear();
                    skipping = true;
                }
                None => {}
            }
        }
    }
    Ok(())
}

fn send(tx: &std::sync::mpsc::SyncSender<Vec<u8>>, block: Vec<u8>) -> io::Result<()> {
    tx.send(block).map_err(|_| io::Error::other("log workers stopped early"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn input(bytes: Vec<u8>) -> Box<dyn Read + Send> {
        Box::new(io::Cursor::new(bytes))
    }

    fn generated(n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..n {
            let status = if i % 7 == 0 { 500 } else { 200 };
            out.extend_from_slice(
                format!(
                    "10.0.{}.{} - - [25/Nov/2026:14:{:02}:00 +0000] \"GET /p{} HTTP/1.1\" {status} 42 \"-\" \"ua\"\n",
                    i % 3,
                    i % 250,
                    (i / 1000) % 60,
                    i % 13
                )
                .as_bytes(),
            );
        }
        out
    }

    #[test]
    fn parallel_result_equals_sequential() {
        let data = generated(50_000);
        let f = LogFormat::named_or_custom("combined").unwrap();
        let opts = ReportOptions::default();
        let consumed = AtomicU64::new(0);
        let par = analyze(vec![input(data.clone())], &f, &opts, 4, &|n| {
            consumed.fetch_add(n, Ordering::Relaxed);
        })
        .unwrap();
        let seq = analyze(vec![input(data.clone())], &f, &opts, 1, &|_| {}).unwrap();
        assert_eq!(par, seq);
        assert_eq!(par.requests, 50_000);
        assert_eq!(par.classes.s5xx, 50_000 / 7 + 1);
        assert_eq!(consumed.load(Ordering::Relaxed), data.len() as u64);
    }

    #[test]
    fn binary_garbage_huge_lines_and_no_final_newline() {
        let mut data = generated(10);
        data.extend_from_slice(&[0xff, 0x00, 0x13, b'\n']);
        data.extend(std::iter::repeat_n(b'x', 10 << 20));
        data.push(b'\n');
        data.extend_from_slice(&generated(5));
        data.extend_from_slice(b"10.0.0.1 - - [25/Nov/2026:14:00:00 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"last\"");
        let f = LogFormat::named_or_custom("combined").unwrap();
        let r = analyze(vec![input(data)], &f, &ReportOptions::default(), 2, &|_| {}).unwrap();
        assert_eq!(r.requests, 16);
        assert_eq!(r.malformed, 2);
        assert_eq!(r.lines, 18);
        assert!(r.malformed_reasons.contains(&("line too long".to_string(), 1)), "{:?}", r.malformed_reasons);
        assert!(r.malformed_reasons.contains(&("not UTF-8".to_string(), 1)), "{:?}", r.malformed_reasons);
    }

    #[test]
    fn several_inputs_are_one_stream() {
        let f = LogFormat::named_or_custom("combined").unwrap();
        let r = analyze(vec![input(generated(100)), input(generated(50))], &f, &ReportOptions::default(), 2, &|_| {})
            .unwrap();
        assert_eq!(r.requests, 150);
    }
}
