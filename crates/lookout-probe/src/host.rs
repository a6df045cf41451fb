//! The machine lookout runs on, from `/proc` and `statvfs`: CPU and load, memory and swap, open file descriptors,
//! each filesystem's use (bytes and inodes) with a predicted time until full, and named processes — read into
//! [`Observation::readings`] like a status page (`[MEMORY_USED_RATIO]`, `[FS_USED_RATIO]`, `[TIME_TO_FULL]`, …).
//!
//! Time until full is the free space divided by the growth of the used space, fitted by least squares over the
//! readings of the last `[host] trend` (default an hour; at least [`MIN_TREND`] of them, over at least a sixth of
//! it): a
//! filesystem that is not growing has none, so a rule on it does not hold.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lookout_config::HostCheck;
use lookout_core::{Observation, ProbeError, ProbeErrorKind, ProbeKind, Timestamp};

/// Readings needed before a trend is trusted (and they must span a sixth of the trend window).
const MIN_TREND: usize = 4;

/// What a host probe keeps between readings: CPU times (for the busy share since), a filesystem's recent use
/// (for its trend), a process's start (for restarts).
#[derive(Clone, Debug, Default)]
pub struct Memory {
    cpu: Option<(u64, u64)>,
    used: VecDeque<(Timestamp, f64)>,
    process_start: Option<u64>,
}

/// Reads the part of the host `check` names.
pub fn probe(name: &str, check: &HostCheck, memory: &mut Memory) -> Observation {
    let at = Timestamp::now();
    let mut obs = Observation::new(name, ProbeKind::Host, at);
    let read = match check {
        HostCheck::Cpu => cpu(memory),
        HostCheck::Memory => self::memory(),
        HostCheck::Descriptors => descriptors(),
        HostCheck::Filesystem { mount, trend } => filesystem(mount, *trend, at, memory),
        HostCheck::Process(process) => Ok(self::process(process, memory)),
    };
    match read {
        Ok(readings) => {
            obs.connected = true;
            obs.readings = readings.into_iter().map(|(n, v)| (n.to_string(), v)).collect();
        }
        Err(message) => obs.error = Some(ProbeError { kind: ProbeErrorKind::Io, message }),
    }
    obs
}

type Readings = Vec<(&'static str, f64)>;

fn read(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))
}

/// `cpu  user nice system idle iowait irq softirq steal …` (first line of /proc/stat): busy and total jiffies.
pub fn cpu_times(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    if v.len() < 4 {
        return None;
    }
    // Guest time is already counted in user and nice.
    let total: u64 = v.iter().take(8).sum();
    let idle = v[3] + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

fn cpu(memory: &mut Memory) -> Result<Readings, String> {
    let mut out = Readings::new();
    let (busy, total) = cpu_times(&read("/proc/stat")?).ok_or("/proc/stat has no cpu line")?;
    if let Some((b0, t0)) = memory.cpu
        && total > t0
    {
        out.push(("CPU_BUSY_RATIO", busy.saturating_sub(b0) as f64 / (total - t0) as f64));
    }
    memory.cpu = Some((busy, total));
    let load = read("/proc/loadavg")?;
    let mut loads = load.split_whitespace().filter_map(|x| x.parse::<f64>().ok());
    for name in ["LOAD1", "LOAD5", "LOAD15"] {
        out.extend(loads.next().map(|v| (name, v)));
    }
    out.push(("CPUS", std::thread::available_parallelism().map_or(1, |n| n.get()) as f64));
    Ok(out)
}

/// `/proc/meminfo` in kB: MemTotal, MemAvailable, SwapTotal, SwapFree.
pub fn memory_readings(meminfo: &str) -> Option<Readings> {
    let kb = |key: &str| {
        meminfo.lines().find_map(|l| l.strip_prefix(key)?.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
    };
    let total = kb("MemTotal:").filter(|t| *t > 0.0)?;
    let available = kb("MemAvailable:")?;
    let mut out = vec![("MEMORY_USED_RATIO", 1.0 - available / total), ("MEMORY_AVAILABLE_MB", available / 1024.0)];
    if let (Some(swap), Some(free)) = (kb("SwapTotal:"), kb("SwapFree:"))
        && swap > 0.0
    {
        out.push(("SWAP_USED_RATIO", 1.0 - free / swap));
    }
    Some(out)
}

fn memory() -> Result<Readings, String> {
    memory_readings(&read("/proc/meminfo")?).ok_or_else(|| "/proc/meminfo has no MemTotal/MemAvailable".into())
}

/// `/proc/sys/fs/file-nr`: allocated, unused, maximum.
fn descriptors() -> Result<Readings, String> {
    let text = read("/proc/sys/fs/file-nr")?;
    let v: Vec<f64> = text.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    let [allocated, _, max] = v.as_slice() else { return Err("/proc/sys/fs/file-nr is not three numbers".into()) };
    Ok(vec![("OPEN_FILES", *allocated), ("OPEN_FILES_RATIO", if *max > 0.0 { allocated / max } else { 0.0 })])
}

fn filesystem(mount: &Path, trend: Duration, at: Timestamp, memory: &mut Memory) -> Result<Readings, String> {
    let s = nix::sys::statvfs::statvfs(mount).map_err(|e| format!("statvfs {}: {e}", mount.display()))?;
    let unit = s.fragment_size() as f64;
    let (blocks, free, available) = (s.blocks() as f64, s.blocks_free() as f64, s.blocks_available() as f64);
    let used = blocks - free;
    let mut out = Readings::new();
    // As df counts: the blocks reserved for root are neither used nor available to others.
    if used + available > 0.0 {
        out.push(("FS_USED_RATIO", used / (used + available)));
    }
    out.push(("FS_AVAILABLE_MB", available * unit / (1024.0 * 1024.0)));
    let files = s.files() as f64;
    if files > 0.0 {
        out.push(("FS_INODES_USED_RATIO", (files - s.files_free() as f64) / files));
    }
    memory.used.push_back((at, used * unit));
    while memory.used.front().is_some_and(|(t, _)| at.since(*t) > trend) {
        memory.used.pop_front();
    }
    if let Some(seconds) = time_to_full(&memory.used, available * unit, trend / 6) {
        out.push(("TIME_TO_FULL", seconds * 1000.0));
    }
    Ok(out)
}

/// Seconds until `available` bytes are used up at the growth fitted to `used` (time, bytes used); `None` when
/// there are too few readings, they span less than `min_span`, or use is not growing.
pub fn time_to_full(used: &VecDeque<(Timestamp, f64)>, available: f64, min_span: Duration) -> Option<f64> {
    let (first, last) = (used.front()?, used.back()?);
    if used.len() < MIN_TREND || last.0.since(first.0) < min_span {
        return None;
    }
    let n = used.len() as f64;
    let xs = used.iter().map(|(t, _)| (t.as_millis() - first.0.as_millis()) as f64 / 1000.0);
    let mean_x = xs.clone().sum::<f64>() / n;
    let mean_y = used.iter().map(|(_, y)| y).sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (x, (_, y)) in xs.zip(used) {
        sxy += (x - mean_x) * (y - mean_y);
        sxx += (x - mean_x) * (x - mean_x);
    }
    let slope = sxy / sxx;
    (sxx > 0.0 && slope > 0.0 && slope.is_finite()).then(|| available / slope)
}

/// Processes whose command name (`/proc/PID/comm`) is `name`: how many, their resident memory, and whether the
/// oldest of them (a server's master) started anew since the previous reading.
fn process(name: &str, memory: &mut Memory) -> Readings {
    let mut count = 0.0;
    let mut rss_pages = 0.0;
    let mut oldest: Option<u64> = None;
    for pid in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let dir = pid.path();
        if !pid.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())) {
            continue;
        }
        if std::fs::read_to_string(dir.join("comm")).ok().as_deref().map(str::trim_end) != Some(name) {
            continue;
        }
        count += 1.0;
        if let Some(pages) = std::fs::read_to_string(dir.join("statm"))
            .ok()
            .and_then(|s| s.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        {
            rss_pages += pages;
        }
        if let Some(start) = start_time(&dir) {
            oldest = Some(oldest.map_or(start, |o| o.min(start)));
        }
    }
    let page_mb = page_size() as f64 / (1024.0 * 1024.0);
    let mut out = vec![("PROCESS_COUNT", count), ("PROCESS_RSS_MB", rss_pages * page_mb)];
    let restarted = matches!((memory.process_start, oldest), (Some(before), Some(now)) if now != before);
    out.push(("PROCESS_RESTARTS", if restarted { 1.0 } else { 0.0 }));
    if oldest.is_some() {
        memory.process_start = oldest;
    }
    out
}

/// A process's start time (field 22 of `/proc/PID/stat`, after the parenthesised command name).
fn start_time(dir: &Path) -> Option<u64> {
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE).ok().flatten().map_or(4096, |v| v as u64)
}

/// Mounted filesystems worth watching (from `/proc/self/mounts`): those that hold data — not the kernel's
/// pseudo filesystems, not tmpfs (memory, watched as memory), not read-only images (a squashfs is always full).
pub fn mounts() -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mounts") else { return Vec::new() };
    mounts_of(&text)
}

/// [`mounts`] from the text of a mounts file.
pub fn mounts_of(text: &str) -> Vec<PathBuf> {
    const DATA: [&str; 10] = ["ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "f2fs", "vfat", "overlay", "nfs4"];
    let mut out: Vec<PathBuf> = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [_, mount, kind, options, ..] = f.as_slice() else { continue };
        if !DATA.contains(kind) || options.split(',').any(|o| o == "ro") {
            continue;
        }
        // Mount points escape spaces as \040.
        let mount = PathBuf::from(mount.replace("\\040", " "));
        if !out.contains(&mount) {
            out.push(mount);
        }
    }
    out
}

#[cfg(test)]
mod tests;
