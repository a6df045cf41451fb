//! What is read from /proc's files (as Linux 6 prints them) and the time-to-full fit; the integration tests read
//! the real machine and fill a real tmpfs.

use super::*;

#[test]
fn cpu_busy_and_total_jiffies_leave_idle_and_iowait_out() {
    let stat = "cpu  100 5 50 800 40 3 2 0 0 0\ncpu0 50 2 25 400 20 1 1 0 0 0\nintr 1\n";
    assert_eq!(cpu_times(stat), Some((160, 1000)));
    assert_eq!(cpu_times("intr 1\n"), None);
}

#[test]
fn memory_used_is_what_is_not_available_and_swap_only_when_there_is_some() {
    let meminfo = "MemTotal:       24684124 kB\nMemFree:        19856000 kB\nMemAvailable:   22215712 kB\n\
                   SwapTotal:             0 kB\nSwapFree:              0 kB\n";
    let r = memory_readings(meminfo).unwrap();
    let used = r.iter().find(|(n, _)| *n == "MEMORY_USED_RATIO").unwrap().1;
    assert!((used - 0.1).abs() < 0.001, "{used}");
    assert!(!r.iter().any(|(n, _)| *n == "SWAP_USED_RATIO"), "no swap, no ratio");
    let swapping = meminfo
        .replace("SwapTotal:             0", "SwapTotal:          1000")
        .replace("SwapFree:              0", "SwapFree:            250");
    let r = memory_readings(&swapping).unwrap();
    assert_eq!(r.iter().find(|(n, _)| *n == "SWAP_USED_RATIO").map(|(_, v)| *v), Some(0.75));
    assert_eq!(memory_readings("MemFree: 1 kB\n"), None);
}

#[test]
fn time_to_full_follows_the_growth_and_has_none_while_use_is_flat_or_shrinking() {
    let series = |bytes_per_s: f64| -> VecDeque<(Timestamp, f64)> {
        (0..10).map(|i| (Timestamp(i * 1000), 1e6 + bytes_per_s * i as f64)).collect()
    };
    // 1 MB/s with 60 MB left: a minute.
    let t = time_to_full(&series(1e6), 60e6, Duration::from_secs(3)).unwrap();
    assert!((t - 60.0).abs() < 1e-6, "{t}");
    assert_eq!(time_to_full(&series(0.0), 60e6, Duration::from_secs(3)), None, "flat");
    assert_eq!(time_to_full(&series(-1e6), 60e6, Duration::from_secs(3)), None, "shrinking");
    let few: VecDeque<_> = series(1e6).into_iter().take(3).collect();
    assert_eq!(time_to_full(&few, 60e6, Duration::from_secs(1)), None, "too few readings to trust");
    assert_eq!(time_to_full(&series(1e6), 60e6, Duration::from_secs(10)), None, "9 s of readings: too short a span");
}

#[test]
fn the_filesystems_that_hold_data_are_watched() {
    let mounts = "sysfs /sys sysfs rw,nosuid 0 0\nproc /proc proc rw 0 0\noverlay / overlay rw,relatime 0 0\n\
                  /dev/sda1 /var/lib/docker ext4 rw,relatime 0 0\ntmpfs /run tmpfs rw 0 0\n\
                  /dev/loop0 /snap/core/1 squashfs ro 0 0\n/dev/sdb1 /mnt/my\\040disk xfs rw 0 0\n\
                  /dev/sdc1 /backup ext4 ro,relatime 0 0\n";
    assert_eq!(mounts_of(mounts), [Path::new("/"), Path::new("/var/lib/docker"), Path::new("/mnt/my disk")]);
}
