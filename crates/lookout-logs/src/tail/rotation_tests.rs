//! Several rotations between two polls, and unread lines left in a copytruncate's copy.

mod multi_rotation {
    use crate::tail::*;
    use std::io::Write;
    fn append(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }
    #[test]
    fn two_renames_between_polls_live() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("access.log");
        append(&p, "1\n");
        let mut t = Tailer::new(&p, None, StartAt::Beginning);
        let b = t.poll(1 << 20).unwrap();
        assert_eq!(b.lines().count(), 1);
        append(&p, "2\n");
        std::fs::rename(&p, dir.path().join("access.log-0000")).unwrap();
        append(&p, "3\n");
        std::fs::rename(&p, dir.path().join("access.log-0001")).unwrap();
        append(&p, "4\n");
        let b = t.poll(1 << 20).unwrap();
        let got: Vec<String> = b.lines().map(|l| String::from_utf8_lossy(l).into_owned()).collect();
        assert_eq!(got, ["2", "3", "4"], "{:?}", b.events);
    }
}

mod copy_tail {
    use crate::tail::*;
    use std::io::Write;
    fn append(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }
    #[test]
    fn unread_lines_in_the_copy_are_read_there() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("access.log");
        let long = "x".repeat(70);
        append(&p, &format!("1{long}\n2{long}\n"));
        let mut t = Tailer::new(&p, None, StartAt::Beginning);
        assert_eq!(t.poll(1 << 20).unwrap().lines().count(), 2);
        append(&p, &format!("3{long}\n"));
        std::fs::copy(&p, dir.path().join("access.log-0001")).unwrap();
        std::fs::OpenOptions::new().write(true).truncate(true).open(&p).unwrap();
        append(&p, "4\n");
        let b = t.poll(1 << 20).unwrap();
        let got: Vec<String> = b.lines().map(|l| String::from_utf8_lossy(&l[..1]).into_owned()).collect();
        assert_eq!(got, ["3", "4"], "{:?}", b.events);
    }
}
