//! Following a log file the way `logrotate` treats it: rename + create, copytruncate, delete + recreate, and a
//! file that does not exist yet.
//!
//! The [`Cursor`] (device, inode, offset, fingerprint of the first bytes) always points just after the last
//! complete line handed out. Callers persist it together with what they made of those lines, so a restart
//! resumes exactly there: in the same file if it is still at the path, else in the rotated file found by inode
//! (renamed) or fingerprint (copied), followed by every newer rotated file, then the current one.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use memchr::{memchr, memrchr};
use serde::{Deserialize, Serialize};

use crate::distinct::hash;

/// Bytes of the file start that identify it across truncation and inode reuse.
const FINGERPRINT_BYTES: u64 = 64;
/// Longer lines are dropped (and counted), so one runaway line cannot stall the tailer or exhaust memory.
pub const MAX_LINE: usize = 1 << 20;

/// Where reading stands in a file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub dev: u64,
    pub ino: u64,
    /// Just after the last complete line handed out.
    pub offset: u64,
    /// Hash of the first `fingerprint_len` bytes of the file.
    pub fingerprint: u64,
    pub fingerprint_len: u64,
}

/// What one poll produced.
#[derive(Debug, Default)]
pub struct Batch {
    /// Complete lines, each ending in `\n`.
    pub data: Vec<u8>,
    /// Lines dropped for being longer than [`MAX_LINE`].
    pub too_long: u64,
    /// Where the next poll continues; persist it with the results of `data`.
    pub cursor: Cursor,
    /// Files finished or switched during this poll, for logging.
    pub events: Vec<String>,
}

impl Batch {
    /// The non-empty lines of `data`, without their newlines (found by `memchr`: this runs for every line).
    pub fn lines(&self) -> impl Iterator<Item = &[u8]> {
        let data = &self.data[..];
        let mut start = 0;
        memchr::memchr_iter(b'\n', data)
            .chain(std::iter::once(data.len()))
            .map(move |end| {
                let line = data.get(start..end).unwrap_or_default();
                start = end + 1;
                line
            })
            .filter(|l| !l.is_empty())
    }
}

struct Open {
    file: File,
    path: PathBuf,
    dev: u64,
    ino: u64,
    /// Opened under a rotated name: it gets no more lines, so its end is final.
    rotated: bool,
}

/// Where to begin when there is no saved cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartAt {
    Beginning,
    /// Skip what is already there (for alerting: history is `lookout logs`' job).
    End,
}

pub struct Tailer {
    path: PathBuf,
    current: Option<Open>,
    queue: VecDeque<PathBuf>,
    cursor: Cursor,
    saved: Option<Cursor>,
    start_at: StartAt,
    started: bool,
    skipping: bool,
    /// The last file read to its end after it was rotated away: anything rotated after it is read before the
    /// path, even if it was rotated while we were switching.
    last_finished: Option<(u64, u64)>,
}

impl Tailer {
    /// Follows `path`, resuming from `saved` if given.
    pub fn new(path: impl Into<PathBuf>, saved: Option<Cursor>, start_at: StartAt) -> Tailer {
        Tailer {
            path: path.into(),
            current: None,
            queue: VecDeque::new(),
            cursor: Cursor::default(),
            saved,
            start_at,
            started: false,
            skipping: false,
            last_finished: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn cursor(&self) -> &Cursor {
        &self.cursor
    }

    /// Reads what is new, at most about `max_bytes`. Never blocks waiting for data.
    ///
    /// An error after some lines were read still hands those lines out (with the cursor just after them, and the
    /// error among the events): dropping them would lose lines the cursor has already passed. The next poll
    /// meets the error again, if it lasts.
    pub fn poll(&mut self, max_bytes: usize) -> io::Result<Batch> {
        let mut batch = Batch::default();
        match self.poll_into(&mut batch, max_bytes) {
            Ok(()) => {}
            Err(e) if batch.data.is_empty() && batch.too_long == 0 => return Err(e),
            Err(e) => batch.events.push(format!("stopped after what was read: {e}")),
        }
        batch.cursor = self.cursor.clone();
        Ok(batch)
    }

    fn poll_into(&mut self, batch: &mut Batch, max_bytes: usize) -> io::Result<()> {
        if !self.started {
            self.start(batch)?;
            self.started = true;
        }
        loop {
            if self.current.is_none() && !self.open_next(batch)? {
                break;
            }
            let Some(cur) = self.current.as_mut() else { break };
            let meta = cur.file.metadata()?;
            if self.cursor.offset > meta.len() || !fingerprint_matches(&mut cur.file, &self.cursor)? {
                // copytruncate: the lines after our offset are in the copy; read them there first.
                if let Some(copy) = find_copy(&self.path, &self.cursor, cur.ino)? {
                    batch.events.push(format!(
                        "{} was truncated (at {} of {}); finishing its copy {} ({} bytes)",
                        cur.path.display(),
                        self.cursor.offset,
                        meta.len(),
                        copy.path.display(),
                        copy.file.metadata().map_or(0, |m| m.len())
                    ));
                    self.cursor.dev = copy.dev;
                    self.cursor.ino = copy.ino;
                    self.current = Some(Open { rotated: true, ..copy });
                    continue;
                }
                batch.events.push(format!(
                    "{} was truncated (at {} of {}, fingerprint of {} bytes); no copy found; reading it from the start",
                    cur.path.display(),
                    self.cursor.offset,
                    meta.len(),
                    self.cursor.fingerprint_len
                ));
                self.cursor.offset = 0;
                self.cursor.fingerprint = 0;
                self.cursor.fingerprint_len = 0;
                self.skipping = false;
            }
            refresh_fingerprint(&mut cur.file, &mut self.cursor)?;
            let room = max_bytes.saturating_sub(batch.data.len());
            let (before_len, before_cursor, before_skipping) = (batch.data.len(), self.cursor.clone(), self.skipping);
            let waiting = meta.len().saturating_sub(self.cursor.offset);
            let read = read_lines(&mut cur.file, &mut self.cursor, &mut self.skipping, room, waiting, batch)?;
            // A copytruncate between the check above and the read would have us read the next generation from
            // the old offset: if the file's start changed meanwhile, forget what was read and look again.
            if read && !fingerprint_matches(&mut cur.file, &before_cursor)? {
                batch.data.truncate(before_len);
                self.cursor = before_cursor;
                self.skipping = before_skipping;
                continue;
            }
            if batch.data.len() >= max_bytes {
                break;
            }
            if read {
                continue;
            }
            // At the end of this file. Is it still the one at the path?
            let still_current = !cur.rotated
                && match std::fs::metadata(&self.path) {
                    Ok(m) => m.dev() == cur.dev && m.ino() == cur.ino,
                    // Deleted, and nothing new yet: the writer may still have it open.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => true,
                    Err(e) => return Err(e),
                };
            if still_current {
                break;
            }
            // Rotated away: the writer has moved on, so a final line without a newline is complete.
            finish_partial(&mut cur.file, &mut self.cursor, batch)?;
            batch.events.push(format!("finished {} (rotated)", cur.path.display()));
            self.last_finished = Some((cur.dev, cur.ino));
            self.current = None;
        }
        Ok(())
    }

    /// Chooses the first file to read, from the saved cursor.
    fn start(&mut self, batch: &mut Batch) -> io::Result<()> {
        let Some(saved) = self.saved.clone() else {
            if self.start_at == StartAt::End
                && let Ok(mut open) = open(&self.path)
            {
                let len = open.file.metadata()?.len();
                // Start after the last complete line.
                let mut cursor = Cursor { dev: open.dev, ino: open.ino, offset: 0, ..Cursor::default() };
                cursor.offset = last_line_end(&mut open.file, len)?;
                refresh_fingerprint(&mut open.file, &mut cursor)?;
                self.cursor = cursor;
                self.current = Some(open);
            }
            return Ok(());
        };
        if let Ok(mut open) = open(&self.path)
            && open.dev == saved.dev
            && open.ino == saved.ino
            && open.file.metadata()?.len() >= saved.offset
            && fingerprint_matches(&mut open.file, &saved)?
        {
            self.cursor = saved;
            self.current = Some(open);
            return Ok(());
        }
        // The saved file is no longer at the path: find it among the rotated files.
        for candidate in siblings(&self.path)? {
            let Ok(mut open) = open(&candidate) else { continue };
            let same_inode = open.dev == saved.dev && open.ino == saved.ino;
            let copy = saved.fingerprint_len > 0 && fingerprint_matches(&mut open.file, &saved)?;
            if (same_inode || copy) && open.file.metadata()?.len() >= saved.offset {
                batch.events.push(format!("resuming in rotated file {}", candidate.display()));
                self.cursor = Cursor { dev: open.dev, ino: open.ino, ..saved };
                self.current = Some(Open { rotated: true, ..open });
                return Ok(());
            }
        }
        batch.events.push(format!(
            "the file last read at {} is gone; reading the current one from the start",
            self.path.display()
        ));
        Ok(())
    }

    /// Rotated files newer than the last file finished, oldest first (not the path itself, nor `except`).
    fn rotated_since_last_finished(&self, except: Option<u64>) -> io::Result<VecDeque<PathBuf>> {
        let Some((dev, ino)) = self.last_finished else { return Ok(VecDeque::new()) };
        let mut q = successors(&self.path, dev, ino)?;
        q.pop_back();
        if let Some(skip) = except {
            q.retain(|p| std::fs::metadata(p).map_or(true, |m| m.ino() != skip));
        }
        Ok(q)
    }

    /// Opens the next queued file, or the path, from offset 0. `false` when there is nothing to open yet.
    fn open_next(&mut self, batch: &mut Batch) -> io::Result<bool> {
        if self.queue.is_empty() {
            self.queue = self.rotated_since_last_finished(None)?;
        }
        while let Some(p) = self.queue.pop_front() {
            match open(&p) {
                Ok(mut o) => {
                    batch.events.push(format!("reading rotated file {}", p.display()));
                    self.cursor = Cursor { dev: o.dev, ino: o.ino, ..Cursor::default() };
                    refresh_fingerprint(&mut o.file, &mut self.cursor)?;
                    self.current = Some(Open { rotated: true, ..o });
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound || is_refused(&e) => continue,
                Err(e) => return Err(e),
            }
        }
        match open(&self.path) {
            Ok(mut o) => {
                // The path may have been rotated again between listing and opening: if a file newer than the
                // last finished one appeared meanwhile, read it first.
                let missed = self.rotated_since_last_finished(Some(o.ino))?;
                if !missed.is_empty() {
                    self.queue = missed;
                    return self.open_next(batch);
                }
                self.cursor = Cursor { dev: o.dev, ino: o.ino, ..Cursor::default() };
                refresh_fingerprint(&mut o.file, &mut self.cursor)?;
                self.current = Some(o);
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Opens a regular file; anything else at the path is refused with the reason, never read.
///
/// Why: opening a FIFO blocks until a writer comes and reading it fails with `Illegal seek`; a device may stream
/// forever or have side effects when opened; a directory cannot be read. The type is checked before opening
/// (so a device is never opened) and again on the open file, which is opened non-blocking so that a FIFO put at
/// the path in between cannot block the tailer.
fn open(path: &Path) -> io::Result<Open> {
    refuse_special(&std::fs::metadata(path)?, path)?;
    let file = std::fs::OpenOptions::new().read(true).custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits()).open(path)?;
    let m = file.metadata()?;
    refuse_special(&m, path)?;
    Ok(Open { file, path: path.to_path_buf(), dev: m.dev(), ino: m.ino(), rotated: false })
}

/// `Ok` for a regular file; otherwise an error naming the path and what it is.
fn refuse_special(meta: &std::fs::Metadata, path: &Path) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    let what = if t.is_file() {
        return Ok(());
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else {
        "not a regular file"
    };
    Err(io::Error::new(io::ErrorKind::InvalidInput, NotRegular { path: path.to_path_buf(), what }))
}

/// A path refused for not being a regular file (carried inside the `io::Error` the tailer returns).
#[derive(Debug, thiserror::Error)]
#[error("{} is {what}, not a regular file (only regular files are read)", path.display())]
pub struct NotRegular {
    pub path: PathBuf,
    /// E.g. `a FIFO (named pipe)`.
    pub what: &'static str,
}

/// Whether `open` refused the path for not being a regular file.
fn is_refused(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<NotRegular>())
}

/// One line saying why `path` cannot be read, e.g. `cannot read /var/log/x: it is a FIFO (named pipe), not a
/// regular file (only regular files are read)` or `cannot read /var/log/x: Permission denied (os error 13)`.
pub fn read_error(path: &Path, e: &io::Error) -> String {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<NotRegular>()) {
        Some(n) => format!(
            "cannot read {}: it is {}, not a regular file (only regular files are read)",
            path.display(),
            n.what
        ),
        None => format!("cannot read {}: {e}", path.display()),
    }
}

fn read_at(file: &mut File, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
    file.seek(SeekFrom::Start(offset))?;
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn fingerprint_matches(file: &mut File, c: &Cursor) -> io::Result<bool> {
    if c.fingerprint_len == 0 {
        return Ok(true);
    }
    let mut buf = vec![0u8; c.fingerprint_len as usize];
    let n = read_at(file, 0, &mut buf)?;
    Ok(n == buf.len() && hash(&buf) == c.fingerprint)
}

/// Extends the fingerprint while the file is shorter than [`FINGERPRINT_BYTES`].
fn refresh_fingerprint(file: &mut File, c: &mut Cursor) -> io::Result<()> {
    if c.fingerprint_len >= FINGERPRINT_BYTES {
        return Ok(());
    }
    let want = file.metadata()?.len().min(FINGERPRINT_BYTES);
    if want > c.fingerprint_len {
        let mut buf = vec![0u8; want as usize];
        let n = read_at(file, 0, &mut buf)?;
        buf.truncate(n);
        c.fingerprint = hash(&buf);
        c.fingerprint_len = n as u64;
    }
    Ok(())
}

/// Reads complete lines from the cursor into the batch (at most about `room` bytes). `true` if it advanced.
fn read_lines(
    file: &mut File,
    c: &mut Cursor,
    skipping: &mut bool,
    room: usize,
    waiting: u64,
    batch: &mut Batch,
) -> io::Result<bool> {
    let chunk = room.clamp(64 << 10, 4 << 20);
    // Read straight into the batch: no zeroed scratch buffer and no second copy (`read_to_end` on a file fills
    // the spare capacity without clearing it first). What is not a complete line is cut off again below.
    // The room reserved is what the file held past the cursor when its size was read (and a little for lines
    // written since; `read_to_end` grows the vector if more came): reserving the whole chunk asked the
    // allocator for 4 MB every poll of a log that grows by a few kilobytes a second (the soak's peak heap).
    let old = batch.data.len();
    file.seek(SeekFrom::Start(c.offset))?;
    batch.data.reserve((waiting as usize).saturating_add(4 << 10).min(chunk));
    let read = file.take(chunk as u64).read_to_end(&mut batch.data);
    if let Err(e) = read {
        batch.data.truncate(old);
        return Err(e);
    }
    let n = batch.data.len() - old;
    if n == 0 {
        return Ok(false);
    }
    let buf = &batch.data[old..];
    let mut start = 0;
    if *skipping {
        match memchr(b'\n', buf) {
            Some(i) => {
                start = i + 1;
                *skipping = false;
            }
            None => {
                batch.data.truncate(old);
                c.offset += n as u64;
                return Ok(true);
            }
        }
    }
    match memrchr(b'\n', &buf[start..]) {
        Some(last) => {
            let end = start + last + 1;
            batch.data.truncate(old + end);
            batch.data.drain(old..old + start);
            c.offset += end as u64;
            Ok(true)
        }
        None => {
            batch.data.truncate(old);
            if n - start >= MAX_LINE {
                batch.too_long += 1;
                *skipping = true;
                c.offset += n as u64;
                Ok(true)
            } else if start > 0 {
                c.offset += start as u64;
                Ok(true)
            } else {
                // A line still being written: wait for its newline.
                Ok(false)
            }
        }
    }
}

/// Hands out a last line without a newline (the file was rotated away, so it will get none).
fn finish_partial(file: &mut File, c: &mut Cursor, batch: &mut Batch) -> io::Result<()> {
    let mut rest = Vec::new();
    file.seek(SeekFrom::Start(c.offset))?;
    file.take(MAX_LINE as u64).read_to_end(&mut rest)?;
    if !rest.is_empty() {
        c.offset += rest.len() as u64;
        batch.data.extend_from_slice(&rest);
        batch.data.push(b'\n');
    }
    Ok(())
}

/// Offset just after the last newline of the first `len` bytes.
fn last_line_end(file: &mut File, len: u64) -> io::Result<u64> {
    let window = len.min(MAX_LINE as u64);
    let mut buf = vec![0u8; window as usize];
    let n = read_at(file, len - window, &mut buf)?;
    Ok(match memrchr(b'\n', &buf[..n]) {
        Some(i) => len - window + i as u64 + 1,
        None => len - window,
    })
}

/// Rotated copies of `path` (`access.log.1`, `access.log-20261125`, ...; compressed ones excluded), oldest first.
pub fn siblings(path: &Path) -> io::Result<Vec<PathBuf>> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Ok(Vec::new());
    };
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let mut found: Vec<(SystemTime, (u8, i64, String), PathBuf)> = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(n) = file_name.to_str() else { continue };
        let Some(suffix) = n.strip_prefix(name) else { continue };
        if !(suffix.starts_with('.') || suffix.starts_with('-')) || suffix.is_empty() {
            continue;
        }
        if [".gz", ".bz2", ".xz", ".zst", ".Z"].iter().any(|ext| n.ends_with(ext)) {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        // Only regular files (or links to them) can be rotated logs; a FIFO or device is never opened.
        if !std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file()) {
            continue;
        }
        let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        // `.N`: a bigger N is older (logrotate); other suffixes (dates, counters) sort by name.
        let order = match suffix.strip_prefix('.').and_then(|s| s.parse::<i64>().ok()) {
            Some(num) => (0, -num, String::new()),
            None => (1, 0, suffix.to_string()),
        };
        found.push((mtime, order, entry.path()));
    }
    found.sort();
    Ok(found.into_iter().map(|(_, _, p)| p).collect())
}

/// A rotated copy of the file the cursor describes (same first bytes, at least as long as the offset).
fn find_copy(path: &Path, c: &Cursor, exclude_ino: u64) -> io::Result<Option<Open>> {
    if c.fingerprint_len == 0 {
        return Ok(None);
    }
    for candidate in siblings(path)?.iter().rev() {
        let Ok(mut o) = open(candidate) else { continue };
        if o.ino != exclude_ino && o.file.metadata()?.len() >= c.offset && fingerprint_matches(&mut o.file, c)? {
            return Ok(Some(o));
        }
    }
    Ok(None)
}

/// Files to read after the one with (dev, ino): newer rotated copies, oldest first, then the path.
fn successors(path: &Path, dev: u64, ino: u64) -> io::Result<VecDeque<PathBuf>> {
    let all = siblings(path)?;
    let pos = all.iter().position(|p| std::fs::metadata(p).is_ok_and(|m| m.dev() == dev && m.ino() == ino));
    let mut q: VecDeque<PathBuf> = match pos {
        Some(i) => all.into_iter().skip(i + 1).collect(),
        None => VecDeque::new(),
    };
    q.push_back(path.to_path_buf());
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn append(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn lines(t: &mut Tailer) -> Vec<String> {
        let b = t.poll(1 << 20).unwrap();
        b.lines().map(|l| String::from_utf8_lossy(l).into_owned()).collect()
    }

    #[test]
    fn batch_lines_are_the_non_empty_lines() {
        for data in ["", "\n", "\n\n", "a", "a\n", "a\nb", "a\n\nb\n", "\na\r\n\n b \n\n\nc"] {
            let b = Batch { data: data.as_bytes().to_vec(), ..Batch::default() };
            let want: Vec<&[u8]> = b.data.split(|c| *c == b'\n').filter(|l| !l.is_empty()).collect();
            assert_eq!(b.lines().collect::<Vec<_>>(), want, "{data:?}");
        }
    }

    #[test]
    fn a_poll_reserves_about_what_the_file_holds_not_the_whole_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("access.log");
        append(&p, "a\nb\n");
        let mut t = Tailer::new(&p, None, StartAt::Beginning);
        let b = t.poll(8 << 20).unwrap();
        assert_eq!(b.lines().count(), 2);
        // It was 8 MB for every poll (4 MB reserved, doubled by `read_to_end` at its end): the soak's largest
        // heap user, for a log growing by kilobytes a second.
        assert!(b.data.capacity() < 64 << 10, "a 4-byte read kept {} bytes", b.data.capacity());
        let line = "x".repeat(99) + "\n";
        append(&p, &line.repeat(30_000));
        let b = t.poll(8 << 20).unwrap();
        assert_eq!(b.lines().count(), 30_000, "a 3 MB backlog is read in one poll");
        assert!(b.data.capacity() < 4 << 20, "{} bytes kept for 3 MB", b.data.capacity());
    }

    #[test]
    fn waits_for_a_file_that_does_not_exist_yet() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("access.log");
        let mut t = Tailer::new(&p, None, StartAt::End);
        assert!(lines(&mut t).is_empty());
        append(&p, "a\nb\n");
        assert_eq!(lines(&mut t), ["a", "b"], "a file created after start is read from its beginning");
    }

    #[test]
    fn start_at_end_skips_history_and_partial_lines_wait_for_their_newline() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("access.log");
        append(&p, "old\nold2\npart");
        let mut t = Tailer::new(&p, None, StartAt::End);
        assert!(lines(&mut t).is_empty());
        append(&p, "ial\nnext");
        assert_eq!(lines(&mut t), ["partial"]);
        assert!(lines(&mut t).is_empty());
        append(&p, "\n");
        assert_eq!(lines(&mut t), ["next"]);
        let mut from_start = Tailer::new(&p, None, StartAt::Beginning);
        assert_eq!(lines(&mut from_start), ["old", "old2", "partial", "next"]);
    }

    #[test]
    fn rename_and_create() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("access.log");
        append(&p, "1\n");
        let mut t = Tailer::new(&p, None, StartAt::Beginning);
        assert_eq!(lines(&mut t), ["1"]);
        append(&p, "2\n3");
        std::fs::rename(&p, dir.path().join("access.log.1")).unwrap();
        append(&p, "4\n");
        assert_eq!(lines(&mut t), ["2", "3", "4"], "the old file is drained, its unterminated last line included");
    }

    #[test]
    fn copytruncate_and_delete_recreate() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("access.log");
        append(&p, "1\n2\n");
        let mut t = Tailer::new(&p, None, StartAt::Beginning);
        assert_eq!(lines(&mut t), ["1", "2"]);
        std::fs::copy(&p, dir.path().join("access.log.1")).unwrap();
        std::fs::OpenOptions::new().write(true).truncate(true).open(&p).unwrap();
        append(&p, "3\n");
        assert_eq!(lines(&mut t), ["3"]);
        // Truncated and rewritten past the old offset between two polls: the fingerprint notices.
        append(&p, "4\n");
        assert_eq!(lines(&mut t), ["4"]);
        std::fs::write(&p, "X-long-enough-to-pass-the-old-offset\n").unwrap();
        assert_eq!(lines(&mut t), ["X-long-enough-to-pass-the-old-offset"]);
        std::fs::remove_file(&p).unwrap();
        assert!(lines(&mut t).is_empty());
        append(&p, "5\n");
        assert_eq!(lines(&mut t), ["5"]);
    }

    #[test]
    fn resumes_from_a_saved_cursor_in_place_and_after_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("access.log");
        append(&p, "1\n2\n");
        let mut t = Tailer::new(&p, None, StartAt::Beginning);
        assert_eq!(lines(&mut t), ["1", "2"]);
        let saved = t.cursor().clone();
        append(&p, "3\n");
        let mut again = Tailer::new(&p, Some(saved.clone()), StartAt::End);
        assert_eq!(lines(&mut again), ["3"]);

        // While lookout was down: two rotations (rename), with lines in each generation.
        std::fs::rename(&p, dir.path().join("access.log.2")).unwrap();
        append(&p, "4\n");
        std::fs::rename(&p, dir.path().join("access.log.1")).unwrap();
        append(&p, "5\n");
        let mut resumed = Tailer::new(&p, Some(saved), StartAt::End);
        assert_eq!(lines(&mut resumed), ["3", "4", "5"]);
    }

    #[test]
    fn over_long_lines_are_dropped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("access.log");
        append(&p, "a\n");
        append(&p, &"x".repeat(3 * MAX_LINE));
        append(&p, "\nb\n");
        let mut t = Tailer::new(&p, None, StartAt::Beginning);
        let mut got = Vec::new();
        let mut too_long = 0;
        for _ in 0..10 {
            let b = t.poll(1 << 20).unwrap();
            too_long += b.too_long;
            got.extend(b.lines().map(|l| String::from_utf8_lossy(l).into_owned()));
        }
        assert_eq!(got, ["a", "b"]);
        assert_eq!(too_long, 1);
    }
}

#[cfg(test)]
mod stress;

#[cfg(test)]
mod rotation_tests;

#[cfg(test)]
mod special_files;
