//! Why the kernel refused to let lookout trace a process, said as what is really the matter so that the advice
//! fits: "run as root" only when lookout is not root and root would help; for root, what stands in the way
//! instead (a dropped capability, another tracer, Yama, a more privileged target, a security policy).
//!
//! The facts are gathered from /proc ([`Facts::gather`]) and judged by a pure function ([`explain`]), so every
//! case is tested without having to build the situation.

use nix::errno::Errno;

const CAP_SYS_PTRACE: u32 = 19;

/// Capability names by bit, as `capsh` prints them.
const CAP_NAMES: [&str; 41] = [
    "cap_chown",
    "cap_dac_override",
    "cap_dac_read_search",
    "cap_fowner",
    "cap_fsetid",
    "cap_kill",
    "cap_setgid",
    "cap_setuid",
    "cap_setpcap",
    "cap_linux_immutable",
    "cap_net_bind_service",
    "cap_net_broadcast",
    "cap_net_admin",
    "cap_net_raw",
    "cap_ipc_lock",
    "cap_ipc_owner",
    "cap_sys_module",
    "cap_sys_rawio",
    "cap_sys_chroot",
    "cap_sys_ptrace",
    "cap_sys_pacct",
    "cap_sys_admin",
    "cap_sys_boot",
    "cap_sys_nice",
    "cap_sys_resource",
    "cap_sys_time",
    "cap_sys_tty_config",
    "cap_mknod",
    "cap_lease",
    "cap_audit_write",
    "cap_audit_control",
    "cap_setfcap",
    "cap_mac_override",
    "cap_mac_admin",
    "cap_syslog",
    "cap_wake_alarm",
    "cap_block_suspend",
    "cap_audit_read",
    "cap_perfmon",
    "cap_bpf",
    "cap_checkpoint_restore",
];

/// What lookout knows about itself and the process it could not trace.
#[derive(Clone, Debug, Default)]
pub(crate) struct Facts {
    /// lookout's real and effective uid.
    pub uid: u32,
    pub euid: u32,
    /// lookout's permitted and effective capabilities (bit masks).
    pub permitted: u64,
    pub effective: u64,
    /// `kernel.yama.ptrace_scope`, when the kernel has Yama.
    pub yama: Option<u8>,
    /// `None` when its /proc entry cannot be read (hidden: `hidepid`, or gone).
    pub target: Option<TargetFacts>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct TargetFacts {
    /// Real, effective and saved uid.
    pub uids: [u32; 3],
    /// Permitted capabilities.
    pub permitted: u64,
    /// Its tracer's pid, 0 when none, and the tracer's name.
    pub tracer: i32,
    pub tracer_name: Option<String>,
    pub kernel_thread: bool,
    pub zombie: bool,
    /// Whether it lives in another user namespace than lookout (`None`: cannot tell).
    pub other_user_ns: Option<bool>,
}

fn status_field<'a>(status: &'a str, name: &str) -> Option<&'a str> {
    status.lines().find_map(|l| l.strip_prefix(name)).map(str::trim)
}

fn numbers(field: Option<&str>) -> Vec<u32> {
    field.map(|v| v.split_whitespace().filter_map(|n| n.parse().ok()).collect()).unwrap_or_default()
}

fn caps(field: Option<&str>) -> u64 {
    field.and_then(|v| u64::from_str_radix(v, 16).ok()).unwrap_or(0)
}

impl Facts {
    pub(crate) fn gather(pid: i32) -> Facts {
        let own = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let own_uids = numbers(status_field(&own, "Uid:"));
        let target = std::fs::read_to_string(format!("/proc/{pid}/status")).ok().map(|status| {
            let uids = numbers(status_field(&status, "Uid:"));
            // TracerPid is the tracing *thread*; its process (Tgid) is what `ps` shows and what can be stopped.
            let tracer_tid: i32 = status_field(&status, "TracerPid:").and_then(|v| v.parse().ok()).unwrap_or(0);
            let tracer = (tracer_tid != 0)
                .then(|| std::fs::read_to_string(format!("/proc/{tracer_tid}/status")).ok())
                .flatten()
                .and_then(|s| status_field(&s, "Tgid:").and_then(|v| v.parse().ok()))
                .unwrap_or(tracer_tid);
            let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/user")).ok();
            TargetFacts {
                uids: [0, 1, 2].map(|i| uids.get(i).copied().unwrap_or(u32::MAX)),
                permitted: caps(status_field(&status, "CapPrm:")),
                tracer,
                tracer_name: (tracer != 0)
                    .then(|| std::fs::read_to_string(format!("/proc/{tracer}/comm")).ok())
                    .flatten()
                    .map(|c| c.trim().to_string()),
                kernel_thread: status_field(&status, "Kthread:") == Some("1"),
                zombie: status_field(&status, "State:").is_some_and(|s| s.starts_with('Z')),
                other_user_ns: ns("self").zip(ns(&pid.to_string())).map(|(a, b)| a != b),
            }
        });
        Facts {
            uid: own_uids.first().copied().unwrap_or(u32::MAX),
            euid: own_uids.get(1).copied().unwrap_or(u32::MAX),
            permitted: caps(status_field(&own, "CapPrm:")),
            effective: caps(status_field(&own, "CapEff:")),
            yama: std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
                .ok()
                .and_then(|s| s.trim().parse().ok()),
            target,
        }
    }
}

/// `cap_sys_resource, cap_sys_admin`: the capabilities in `mask`.
fn cap_names(mask: u64) -> String {
    (0..64u32)
        .filter(|bit| mask & (1u64 << bit) != 0)
        .map(|bit| CAP_NAMES.get(bit as usize).map_or_else(|| format!("capability {bit}"), |n| (*n).to_string()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What stands between lookout and tracing `pid`, which `PTRACE_SEIZE` refused with `errno`.
pub(crate) fn explain(pid: i32, errno: Errno, f: &Facts) -> String {
    if errno != Errno::EPERM && errno != Errno::EACCES {
        return format!("the kernel refused to attach to pid {pid}");
    }
    if let Some(t) = &f.target {
        if t.kernel_thread {
            return format!("pid {pid} is a kernel thread, and kernel threads cannot be traced");
        }
        if t.zombie {
            return format!("pid {pid} has exited (a zombie its parent has not collected): there is nothing to trace");
        }
        if t.tracer != 0 {
            let name = t.tracer_name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
            return format!(
                "pid {pid} is already traced by pid {}{name}: a process has one tracer at a time; try again once that one (strace, gdb, another lookout diagnose) has let go",
                t.tracer
            );
        }
    }
    if f.yama == Some(3) {
        return "kernel.yama.ptrace_scope is 3: this kernel allows no ptrace attach at all until it reboots; diagnose from the error log instead".into();
    }
    let has_ptrace = f.effective & (1 << CAP_SYS_PTRACE) != 0;
    if !has_ptrace {
        if f.euid == 0 {
            return "lookout runs as root but without CAP_SYS_PTRACE: its container or service manager dropped that capability (add it, e.g. `docker run --cap-add SYS_PTRACE`, or `AmbientCapabilities=CAP_SYS_PTRACE` in the systemd unit)".into();
        }
        let advice = "tracing it needs CAP_SYS_PTRACE (run as root, or `setcap cap_sys_ptrace+ep` on lookout)";
        return match &f.target {
            None => format!(
                "pid {pid} belongs to another user (its /proc entry is hidden from lookout's uid {}): {advice}",
                f.uid
            ),
            Some(t) if t.uids.iter().any(|u| *u != f.uid) => {
                format!("pid {pid} runs as uid {} and lookout as uid {}: {advice}", t.uids[1], f.uid)
            }
            _ if f.yama == Some(2) => {
                format!("kernel.yama.ptrace_scope is 2: only processes with CAP_SYS_PTRACE may trace; {advice}")
            }
            _ if f.yama == Some(1) => format!(
                "kernel.yama.ptrace_scope is 1: without CAP_SYS_PTRACE a process may trace only its own children; {advice}, or set kernel.yama.ptrace_scope=0"
            ),
            Some(t) if t.permitted & !f.permitted != 0 => format!(
                "pid {pid} holds capabilities lookout lacks ({}): {advice}",
                cap_names(t.permitted & !f.permitted)
            ),
            _ => format!(
                "pid {pid} is more privileged than lookout (a setuid program, or one that made itself undumpable): {advice}"
            ),
        };
    }
    // lookout has CAP_SYS_PTRACE: running as root would change nothing.
    let not_root = "this is not a privilege that running as root would add";
    match &f.target {
        Some(t) if t.permitted & !f.permitted != 0 => format!(
            "lookout has CAP_SYS_PTRACE, but pid {pid} holds capabilities lookout lacks ({}): lookout runs with a reduced capability set (its container or sandbox dropped them), and the kernel or a security module will not let it trace a more privileged process; {not_root}",
            cap_names(t.permitted & !f.permitted)
        ),
        Some(t) if t.other_user_ns == Some(true) => format!(
            "lookout has CAP_SYS_PTRACE, but pid {pid} runs in another user namespace (another container?) where that capability does not count; run lookout in that process's namespace"
        ),
        _ => format!(
            "lookout has CAP_SYS_PTRACE, so a security policy refused: a Linux security module (SELinux, AppArmor, Landlock), a seccomp filter, or the kernel's protection of this process; {not_root}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: u64 = 0x1ff_ffff_ffff;
    const PTRACE: u64 = 1 << CAP_SYS_PTRACE;

    fn root(caps: u64) -> Facts {
        Facts { uid: 0, euid: 0, permitted: caps, effective: caps, yama: None, target: None }
    }

    fn target(uid: u32, caps: u64) -> Option<TargetFacts> {
        Some(TargetFacts { uids: [uid; 3], permitted: caps, ..TargetFacts::default() })
    }

    #[test]
    fn pid_1_refused_to_root_with_cap_sys_ptrace_is_not_told_to_run_as_root() {
        // As seen in a sandbox: root with every capability but cap_sys_resource, pid 1 with all of them.
        let f = Facts { target: target(0, ALL), ..root(ALL & !(1 << 24)) };
        let why = explain(1, Errno::EPERM, &f);
        assert!(!why.contains("run as root"), "{why}");
        assert!(why.contains("holds capabilities lookout lacks (cap_sys_resource)"), "{why}");
        assert!(why.contains("not a privilege that running as root would add"), "{why}");
        // Nothing visible explains it: a security policy.
        let f = Facts { target: target(0, ALL), ..root(ALL) };
        assert!(explain(1, Errno::EPERM, &f).contains("a security policy refused"));
    }

    #[test]
    fn root_without_cap_sys_ptrace_is_told_which_capability_was_dropped() {
        let f = Facts { target: target(0, ALL), ..root(ALL & !PTRACE) };
        let why = explain(42, Errno::EPERM, &f);
        assert!(why.starts_with("lookout runs as root but without CAP_SYS_PTRACE"), "{why}");
        assert!(!why.contains("run as root"), "{why}");
    }

    #[test]
    fn another_users_process_and_a_hidden_one_need_cap_sys_ptrace() {
        let nobody = Facts { uid: 65534, euid: 65534, ..Facts::default() };
        let why = explain(42, Errno::EPERM, &Facts { target: target(0, ALL), ..nobody.clone() });
        assert_eq!(
            why,
            "pid 42 runs as uid 0 and lookout as uid 65534: tracing it needs CAP_SYS_PTRACE (run as root, or `setcap cap_sys_ptrace+ep` on lookout)"
        );
        let why = explain(42, Errno::EPERM, &nobody);
        assert!(why.starts_with("pid 42 belongs to another user (its /proc entry is hidden"), "{why}");
        // Same user, Yama 1: only descendants.
        let why = explain(42, Errno::EPERM, &Facts { yama: Some(1), target: target(65534, 0), ..nobody.clone() });
        assert!(why.contains("ptrace_scope is 1"), "{why}");
        // Same user, more capabilities.
        let why = explain(42, Errno::EPERM, &Facts { target: target(65534, 1 << 10), ..nobody });
        assert!(why.contains("holds capabilities lookout lacks (cap_net_bind_service)"), "{why}");
    }

    #[test]
    fn other_tracers_kernel_threads_zombies_and_yama_3() {
        let mut t = target(0, ALL);
        if let Some(t) = t.as_mut() {
            t.tracer = 77;
            t.tracer_name = Some("strace".into());
        }
        let why = explain(42, Errno::EPERM, &Facts { target: t, ..root(ALL) });
        assert!(why.starts_with("pid 42 is already traced by pid 77 (strace)"), "{why}");
        let kthread = Some(TargetFacts { kernel_thread: true, ..TargetFacts::default() });
        assert!(explain(2, Errno::EPERM, &Facts { target: kthread, ..root(ALL) }).contains("kernel thread"));
        let zombie = Some(TargetFacts { zombie: true, ..TargetFacts::default() });
        assert!(explain(9, Errno::EPERM, &Facts { target: zombie, ..root(ALL) }).contains("zombie"));
        let why = explain(9, Errno::EPERM, &Facts { yama: Some(3), target: target(0, 0), ..root(ALL) });
        assert!(why.contains("ptrace_scope is 3"), "{why}");
    }

    #[test]
    fn facts_of_this_process_are_read() {
        let me = std::process::id() as i32;
        let f = Facts::gather(me);
        let t = f.target.as_ref().unwrap();
        assert_eq!(t.uids[0], f.uid);
        assert_eq!(t.permitted, f.permitted);
        assert_eq!(t.other_user_ns, Some(false));
        assert!(!t.kernel_thread && !t.zombie);
        assert!(Facts::gather(i32::MAX - 7).target.is_none());
    }
}
