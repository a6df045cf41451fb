//! A path that is not a regular file (FIFO, socket, directory) is refused with the reason, never opened for
//! reading, and the tailer reads the path again once a regular file is back there.

use crate::tail::*;
use std::io::Write;
use std::sync::mpsc;
use std::time::Duration;

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// Polls on another thread, so that a tailer that blocks (as opening a FIFO without a writer does) fails the
/// test instead of hanging it.
fn poll_within(t: Tailer, limit: Duration) -> (Tailer, io::Result<Vec<String>>) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut t = t;
        let got = t.poll(1 << 20).map(|b| b.lines().map(|l| String::from_utf8_lossy(l).into_owned()).collect());
        let _ = tx.send((t, got));
    });
    rx.recv_timeout(limit).expect("the tailer blocked on a special file")
}

fn mkfifo(p: &Path) {
    nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
}

#[test]
fn a_fifo_replacing_the_log_is_refused_and_the_regular_file_after_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("access.log");
    append(&p, "1\n");
    let (t, got) = poll_within(Tailer::new(&p, None, StartAt::Beginning), Duration::from_secs(5));
    assert_eq!(got.unwrap(), ["1"]);

    // The log is replaced by a FIFO while a line of the old file is still unread: that line is handed out, and
    // the FIFO refused (not opened, so no blocking and no `Illegal seek`).
    append(&p, "2\n");
    std::fs::remove_file(&p).unwrap();
    mkfifo(&p);
    let (t, got) = poll_within(t, Duration::from_secs(5));
    assert_eq!(got.unwrap(), ["2"], "lines read before the refusal are not lost");
    let (t, got) = poll_within(t, Duration::from_secs(5));
    let e = got.unwrap_err();
    assert!(e.to_string().contains("is a FIFO (named pipe), not a regular file (only regular files are read)"), "{e}");
    assert_eq!(
        read_error(&p, &e),
        format!(
            "cannot read {}: it is a FIFO (named pipe), not a regular file (only regular files are read)",
            p.display()
        )
    );
    let (t, got) = poll_within(t, Duration::from_secs(5));
    assert!(got.is_err(), "refused again on every poll while the FIFO is there");

    // A regular file again: read from its start.
    std::fs::remove_file(&p).unwrap();
    append(&p, "500\n500\n");
    let (_, got) = poll_within(t, Duration::from_secs(5));
    assert_eq!(got.unwrap(), ["500", "500"]);
}

#[test]
fn a_fifo_at_the_path_from_the_start_is_refused_then_followed_when_it_becomes_a_file() {
    for start_at in [StartAt::End, StartAt::Beginning] {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("access.log");
        mkfifo(&p);
        let (t, got) = poll_within(Tailer::new(&p, None, start_at), Duration::from_secs(5));
        assert!(got.unwrap_err().to_string().contains("FIFO"));
        std::fs::remove_file(&p).unwrap();
        append(&p, "a\n");
        let (_, got) = poll_within(t, Duration::from_secs(5));
        assert_eq!(got.unwrap(), ["a"], "{start_at:?}: a file that appears later is read from its start");
    }
}

#[test]
fn directories_and_sockets_are_refused_with_what_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("access.log");
    std::fs::create_dir(&d).unwrap();
    let (_, got) = poll_within(Tailer::new(&d, None, StartAt::End), Duration::from_secs(5));
    assert!(got.unwrap_err().to_string().contains("is a directory, not a regular file (only regular files are read)"));

    let s = dir.path().join("error.log");
    let _listener = std::os::unix::net::UnixListener::bind(&s).unwrap();
    let (_, got) = poll_within(Tailer::new(&s, None, StartAt::Beginning), Duration::from_secs(5));
    assert!(got.unwrap_err().to_string().contains("is a socket, not a regular file (only regular files are read)"));
}

#[test]
fn a_fifo_among_the_rotated_files_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("access.log");
    append(&p, "1\n");
    let (t, got) = poll_within(Tailer::new(&p, None, StartAt::Beginning), Duration::from_secs(5));
    assert_eq!(got.unwrap(), ["1"]);
    mkfifo(&dir.path().join("access.log.9"));
    append(&p, "2\n");
    std::fs::rename(&p, dir.path().join("access.log.1")).unwrap();
    append(&p, "3\n");
    let (_, got) = poll_within(t, Duration::from_secs(5));
    assert_eq!(got.unwrap(), ["2", "3"]);
    assert!(!siblings(&p).unwrap().iter().any(|s| s.ends_with("access.log.9")));
}
