//! Which of the processes named for a trace serve the URL being requested. `--process apache2` on a machine with
//! three Apaches (a staging one, a private one a test started) must trace the one that answers the URL's port,
//! not slow all three down and mix their system calls. A process group (a master and its workers) serves a port
//! when one of its members holds the socket listening on it (`/proc/net/tcp{,6}` → inode → `/proc/PID/fd`).

use std::collections::{BTreeMap, HashSet};

/// The outcome of narrowing: the pids to trace and what to tell the person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Narrowed {
    pub pids: Vec<i32>,
    /// One sentence: which were picked and why, or why all were kept.
    pub why: String,
}

/// Keeps the process groups among `pids` that listen on `port`; all of them when none does (PHP-FPM behind a web
/// server listens on a socket of its own, not on the URL's port) or when there is only one group.
pub fn serving_port(name: &str, pids: &[i32], port: u16) -> Narrowed {
    let groups = groups(pids);
    if groups.len() < 2 {
        return Narrowed { pids: pids.to_vec(), why: String::new() };
    }
    let inodes = listening_inodes(port);
    let serving: Vec<(&i32, &Vec<i32>)> =
        groups.iter().filter(|(_, members)| members.iter().any(|p| holds_any(*p, &inodes))).collect();
    if serving.is_empty() {
        return Narrowed {
            pids: pids.to_vec(),
            why: format!(
                "none of the {} {name} process groups listens on port {port} (behind another server?): tracing all {} processes",
                groups.len(),
                pids.len()
            ),
        };
    }
    let masters: Vec<String> = serving.iter().map(|(m, _)| m.to_string()).collect();
    let picked: Vec<i32> = serving.iter().flat_map(|(_, members)| members.iter().copied()).collect();
    Narrowed {
        why: format!(
            "tracing {name} pid {} and its workers ({} processes): they listen on port {port}; {} other {name} \
             processes left alone",
            masters.join(", "),
            picked.len(),
            pids.len() - picked.len()
        ),
        pids: picked,
    }
}

/// `pids` by their group's root: each walks up its parents while they are among `pids`.
fn groups(pids: &[i32]) -> BTreeMap<i32, Vec<i32>> {
    let set: HashSet<i32> = pids.iter().copied().collect();
    let mut out: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for &pid in pids {
        let mut root = pid;
        for _ in 0..64 {
            match parent(root) {
                Some(p) if set.contains(&p) => root = p,
                _ => break,
            }
        }
        out.entry(root).or_default().push(pid);
    }
    out
}

fn parent(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.split_whitespace().nth(1)?.parse().ok()
}

/// The inodes of the sockets listening on `port` (TCP over IPv4 and IPv6).
fn listening_inodes(port: u16) -> HashSet<u64> {
    let mut out = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            let (Some(local), Some(state), Some(inode)) = (cols.get(1), cols.get(3), cols.get(9)) else { continue };
            let local_port = local.rsplit_once(':').and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if *state == "0A" && local_port == Some(port) {
                out.extend(inode.parse::<u64>().ok());
            }
        }
    }
    out
}

fn holds_any(pid: i32, inodes: &HashSet<u64>) -> bool {
    if inodes.is_empty() {
        return false;
    }
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return false };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .ok()
            .and_then(|l| {
                let l = l.to_string_lossy().into_owned();
                l.strip_prefix("socket:[")?.strip_suffix(']')?.parse::<u64>().ok()
            })
            .is_some_and(|i| inodes.contains(&i))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_listening_is_found_and_one_group_is_kept_whole() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let me = std::process::id() as i32;
        assert!(holds_any(me, &listening_inodes(port)), "this test process listens on {port}");
        assert!(!holds_any(me, &listening_inodes(1)), "nothing here listens on port 1");
        let one = serving_port("x", &[me], port);
        assert_eq!((one.pids, one.why), (vec![me], String::new()), "a single group is traced as named");
    }
}
