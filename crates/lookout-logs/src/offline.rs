//! Reading whole log files for reports: one reader thread cuts the input into blocks of whole lines, worker
//! threads parse blocks into [`Partial`]s, which are merged at the end. Memory stays bounded by the blocks in
//! flight, whatever the file size. Workers hand their blocks back for reuse: fresh 4 MiB buffers cost page faults
//! and zeroing on every block, more than reading the block does.

use std::io::{self, Read};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};

use memchr::{memchr, memchr_iter, memrchr};

use crate::access::Malformed;
use crate::format::LogFormat;
use crate::report::{Partial, Report, ReportOptions};

/// Bytes per block handed to a worker.
const BLOCK: usize = 4 << 20;
/// Longer lines are counted as malformed and skipped, so one runaway line cannot exhaust memory.
pub const MAX_LINE: usize = 1 << 20;

/// A block of whole lines: `data[..len]`. The rest of `data` is a reused buffer's old bytes; keeping them (rather
/// than truncating) spares zeroing the buffer again when it comes back.
struct Block {
    data: Vec<u8>,
    len: usize,
}

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
    let (tx, rx) = sync_channel::<Block>(threads * 2);
    let rx = Arc::new(Mutex::new(rx));
    let (used_tx, used_rx) = channel::<Vec<u8>>();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let rx = rx.clone();
                let used = used_tx.clone();
                scope.spawn(move || work(&rx, &used, format, opts))
            })
            .collect();
        drop(used_tx);
        let mut own = Partial::default();
        let read = read_blocks(inputs, &tx, &used_rx, &mut own, progress);
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

fn work(rx: &Mutex<Receiver<Block>>, used: &Sender<Vec<u8>>, format: &LogFormat, opts: &ReportOptions) -> Partial {
    let mut p = Partial::default();
    loop {
        let block = {
            let guard = rx.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            guard.recv()
        };
        let Ok(Block { data, len }) = block else { return p };
        let mut rest = &data[..len.min(data.len())];
        while !rest.is_empty() {
            let cut = match rest.get(..PIECE).and_then(|head| memrchr(b'\n', head)) {
                Some(nl) => nl + 1,
                None => rest.len(),
            };
            let (piece, after) = rest.split_at(cut);
            add_piece(&mut p, format, opts, piece);
            rest = after;
        }
        // The reader may have stopped taking them back; then the buffer is just freed.
        let _ = used.send(data);
    }
}

/// Bytes of a block checked and parsed together: small enough to stay in the core's cache between the UTF-8 check
/// and the parse.
const PIECE: usize = 64 << 10;

/// Counts the lines of `piece` (whole lines). One UTF-8 check for the piece instead of one per line; a piece with
/// a bad byte is checked line by line, so the bad line alone is malformed.
fn add_piece(p: &mut Partial, format: &LogFormat, opts: &ReportOptions, piece: &[u8]) {
    match std::str::from_utf8(piece) {
        Ok(text) => {
            let mut start = 0;
            for nl in memchr_iter(b'\n', piece) {
                // Cut at a '\n', so at char boundaries.
                p.add_text(format, opts, text.get(start..nl).unwrap_or_default());
                start = nl + 1;
            }
            if start < text.len() {
                p.add_text(format, opts, text.get(start..).unwrap_or_default());
            }
        }
        Err(_) => {
            let mut start = 0;
            for nl in memchr_iter(b'\n', piece) {
                p.add_line(format, opts, &piece[start..nl]);
                start = nl + 1;
            }
            if start < piece.len() {
                p.add_line(format, opts, &piece[start..]);
            }
        }
    }
}

/// Cuts the inputs into blocks that end at a newline. Lines longer than [`MAX_LINE`] are counted in `own`.
fn read_blocks(
    inputs: Vec<Box<dyn Read + Send>>,
    tx: &SyncSender<Block>,
    used: &Receiver<Vec<u8>>,
    own: &mut Partial,
    progress: &(dyn Fn(u64) + Sync),
) -> io::Result<()> {
    for mut input in inputs {
        let mut buf: Vec<u8> = Vec::with_capacity(BLOCK + MAX_LINE);
        // Bytes of `buf` that hold input; the rest is room to read into.
        let mut filled = 0;
        let mut skipping = false;
        loop {
            if buf.len() < filled + BLOCK {
                buf.resize(filled + BLOCK, 0);
            }
            let n = loop {
                match input.read(&mut buf[filled..filled + BLOCK]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
            filled += n;
            progress(n as u64);
            if skipping {
                // Inside an over-long line: drop bytes up to its end.
                match memchr(b'\n', &buf[..filled]) {
                    Some(i) => {
                        buf.copy_within(i + 1..filled, 0);
                        filled -= i + 1;
                        skipping = false;
                    }
                    None => {
                        filled = 0;
                        if n == 0 {
                            break;
                        }
                        continue;
                    }
                }
            }
            if n == 0 {
                if filled > 0 {
                    send(tx, Block { data: std::mem::take(&mut buf), len: filled })?;
                }
                break;
            }
            match memrchr(b'\n', &buf[..filled]) {
                Some(last) => {
                    let rest = filled - (last + 1);
                    let mut next = used.try_recv().unwrap_or_else(|_| Vec::with_capacity(BLOCK + MAX_LINE));
                    if next.len() < rest {
                        next.resize(rest, 0);
                    }
                    next[..rest].copy_from_slice(&buf[last + 1..filled]);
                    let full = std::mem::replace(&mut buf, next);
                    send(tx, Block { data: full, len: last + 1 })?;
                    filled = rest;
                }
                None if filled > MAX_LINE => {
                    own.count_line();
                    own.malformed(Malformed::TooLong, &buf[..256.min(filled)]);
                    filled = 0;
                    skipping = true;
                }
                None => {}
            }
        }
    }
    Ok(())
}

fn send(tx: &SyncSender<Block>, block: Block) -> io::Result<()> {
    tx.send(block).map_err(|_| io::Error::other("log workers stopped early"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distinct::ClientKey;
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
    fn the_fast_path_reports_what_the_general_parser_reports() {
        let mut data = generated(20_000);
        for odd in [
            &b"::1 - - [25/Nov/2026:14:03:00 +0000] \"GET /x?\\\"q HTTP/1.1\" 503 - \"-\" \"a \\\"b\\\"\""[..],
            b"10.0.0.1 - - [25/Nov/2026:14:03:61 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"ua\"",
            b"10.0.0.1 - - [25/Nov/2026:14:03:00 +0000] \"-\" 000 1 \"-\" \"ua\"",
            b"10.0.0.1 - - [25/Nov/2026:14:03:00 +0000] \"GET / HTTP/1.1\" 500",
            b"10.0.0.2 - - 25/Nov/2026:14:03:00 \"GET /bare-time HTTP/1.1\" 502 7 \"-\" \"ua\"",
            b"10.0.0.3 - - [25/Nov/2026:14:03:00 +0000] \"GET /\xff HTTP/1.1\" 500 1 \"-\" \"ua\"",
            b"garbage",
        ] {
            data.extend_from_slice(odd);
            data.push(b'\n');
            data.extend_from_slice(&generated(1000));
        }
        for format in ["combined", "common"] {
            let fast = LogFormat::named_or_custom(format).unwrap();
            assert!(fast.shape.is_some());
            let general = fast.clone().without_fast_path();
            for clients in [ClientKey::Address, ClientKey::AddressAndUserAgent] {
                let opts = ReportOptions { clients, ..ReportOptions::default() };
                let a = analyze(vec![input(data.clone())], &fast, &opts, 2, &|_| {}).unwrap();
                let b = analyze(vec![input(data.clone())], &general, &opts, 1, &|_| {}).unwrap();
                assert_eq!(a, b, "{format}");
                assert_eq!(a.lines, 27_007);
                assert!(a.malformed >= 3, "{format}: {:?}", a.malformed_reasons);
            }
        }
    }

    #[test]
    fn several_inputs_are_one_stream() {
        let f = LogFormat::named_or_custom("combined").unwrap();
        let r = analyze(vec![input(generated(100)), input(generated(50))], &f, &ReportOptions::default(), 2, &|_| {})
            .unwrap();
        assert_eq!(r.requests, 150);
    }
}
