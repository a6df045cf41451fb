//! `/metrics`: what lookout sees, in the Prometheus text format (prometheus-client). Label values come from the
//! configuration (target, source and channel names) or small fixed sets (result, status code), so the number of
//! series stays bounded whatever the monitored servers answer.

use std::sync::Mutex;

use lookout_core::{LogBatch, Observation};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabel {
    target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    target: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LogLabel {
    source: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabel {
    channel: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerLabel {
    server: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerStateLabel {
    server: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeriodLabel {
    period: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MountLabel {
    mountpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProcessLabel {
    process: String,
}

type FloatGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

/// Where a target's readings go in `/metrics`: its label, by the kind of thing it reads.
#[derive(Clone, Debug)]
enum ReadingSource {
    Server(String),
    Host,
    Filesystem(String),
    Process(String),
}

/// The readings of status pages and of the host, under conventional names and units (bytes, seconds, ratios),
/// each labelled by what the configuration names (a server, a mount point, a process): bounded label sets.
#[derive(Default)]
struct Readings {
    sources: Mutex<std::collections::HashMap<String, ReadingSource>>,
    workers: Family<ServerStateLabel, FloatGauge>,
    worker_limit: Family<ServerLabel, FloatGauge>,
    worker_saturation: Family<ServerLabel, FloatGauge>,
    requests_per_second: Family<ServerLabel, FloatGauge>,
    connections: Family<ServerStateLabel, FloatGauge>,
    listen_queue: Family<ServerLabel, FloatGauge>,
    cpu_busy: FloatGauge,
    load: Family<PeriodLabel, FloatGauge>,
    memory_used: FloatGauge,
    memory_available: FloatGauge,
    swap_used: FloatGauge,
    open_files: FloatGauge,
    open_files_ratio: FloatGauge,
    fs_used: Family<MountLabel, FloatGauge>,
    fs_available: Family<MountLabel, FloatGauge>,
    fs_inodes_used: Family<MountLabel, FloatGauge>,
    fs_time_to_full: Family<MountLabel, FloatGauge>,
    process_count: Family<ProcessLabel, FloatGauge>,
    process_resident: Family<ProcessLabel, FloatGauge>,
}

const MIB: f64 = 1024.0 * 1024.0;

impl Readings {
    fn register(&self, r: &mut Registry) {
        use prometheus_client::registry::Unit;
        // Prometheus's convention is `_ratio` (the crate's `Unit::Ratios` would say `_ratios`).
        let ratio = || Unit::Other("ratio".into());
        r.register(
            "lookout_server_workers",
            "Workers of a server by state (busy, idle), from its status page",
            self.workers.clone(),
        );
        r.register("lookout_server_worker_limit", "The most workers a server can have", self.worker_limit.clone());
        r.register_with_unit(
            "lookout_server_worker_saturation",
            "Busy workers over the worker limit",
            ratio(),
            self.worker_saturation.clone(),
        );
        r.register(
            "lookout_server_requests_per_second",
            "Requests served per second since the previous reading",
            self.requests_per_second.clone(),
        );
        r.register(
            "lookout_server_connections",
            "Client connections of a server by state (active, reading, writing, waiting)",
            self.connections.clone(),
        );
        r.register(
            "lookout_server_listen_queue",
            "Requests waiting for a free PHP-FPM process",
            self.listen_queue.clone(),
        );
        r.register_with_unit(
            "lookout_host_cpu_busy",
            "CPU time not idle since the previous reading, over all CPUs",
            ratio(),
            self.cpu_busy.clone(),
        );
        r.register("lookout_host_load", "Load average by period (1, 5, 15 minutes)", self.load.clone());
        r.register_with_unit(
            "lookout_host_memory_used",
            "Memory not available (1 - MemAvailable / MemTotal)",
            ratio(),
            self.memory_used.clone(),
        );
        r.register_with_unit(
            "lookout_host_memory_available",
            "MemAvailable",
            Unit::Bytes,
            self.memory_available.clone(),
        );
        r.register_with_unit("lookout_host_swap_used", "Swap in use", ratio(), self.swap_used.clone());
        r.register("lookout_host_open_files", "File handles open on the host", self.open_files.clone());
        r.register_with_unit(
            "lookout_host_open_files_used",
            "File handles open over the kernel's maximum",
            ratio(),
            self.open_files_ratio.clone(),
        );
        r.register_with_unit(
            "lookout_host_filesystem_used",
            "A filesystem's space used, as df counts it",
            ratio(),
            self.fs_used.clone(),
        );
        r.register_with_unit(
            "lookout_host_filesystem_available",
            "A filesystem's space available to users",
            Unit::Bytes,
            self.fs_available.clone(),
        );
        r.register_with_unit(
            "lookout_host_filesystem_inodes_used",
            "A filesystem's inodes used",
            ratio(),
            self.fs_inodes_used.clone(),
        );
        r.register_with_unit(
            "lookout_host_filesystem_time_to_full",
            "Until the filesystem is full at its recent growth (absent when not growing)",
            Unit::Seconds,
            self.fs_time_to_full.clone(),
        );
        r.register("lookout_process_count", "Processes of a name", self.process_count.clone());
        r.register_with_unit(
            "lookout_process_resident",
            "Resident memory of the processes of a name",
            Unit::Bytes,
            self.process_resident.clone(),
        );
    }

    fn observe(&self, obs: &Observation) {
        let Some(source) =
            self.sources.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&obs.target).cloned()
        else {
            return;
        };
        let server = |s: &str| ServerLabel { server: s.to_string() };
        let state = |s: &str, st: &str| ServerStateLabel { server: s.to_string(), state: st.to_string() };
        if let ReadingSource::Filesystem(mount) = &source {
            // A filesystem that stopped growing has no time to full: its series goes rather than stays stale.
            let m = MountLabel { mountpoint: mount.clone() };
            if obs.reading("TIME_TO_FULL").is_none() {
                self.fs_time_to_full.remove(&m);
            }
        }
        for (name, v) in &obs.readings {
            let v = *v;
            match (&source, name.as_str()) {
                (ReadingSource::Server(s), "BUSY_WORKERS") => self.workers.get_or_create(&state(s, "busy")).set(v),
                (ReadingSource::Server(s), "IDLE_WORKERS") => self.workers.get_or_create(&state(s, "idle")).set(v),
                (ReadingSource::Server(s), "WORKER_LIMIT") => self.worker_limit.get_or_create(&server(s)).set(v),
                (ReadingSource::Server(s), "WORKER_SATURATION") => {
                    self.worker_saturation.get_or_create(&server(s)).set(v)
                }
                (ReadingSource::Server(s), "REQUESTS_PER_SECOND") => {
                    self.requests_per_second.get_or_create(&server(s)).set(v)
                }
                (ReadingSource::Server(s), "ACTIVE_CONNECTIONS") => {
                    self.connections.get_or_create(&state(s, "active")).set(v)
                }
                (ReadingSource::Server(s), "READING") => self.connections.get_or_create(&state(s, "reading")).set(v),
                (ReadingSource::Server(s), "WRITING") => self.connections.get_or_create(&state(s, "writing")).set(v),
                (ReadingSource::Server(s), "WAITING") => self.connections.get_or_create(&state(s, "waiting")).set(v),
                (ReadingSource::Server(s), "LISTEN_QUEUE") => self.listen_queue.get_or_create(&server(s)).set(v),
                (ReadingSource::Host, "CPU_BUSY_RATIO") => self.cpu_busy.set(v),
                (ReadingSource::Host, "LOAD1" | "LOAD5" | "LOAD15") => {
                    self.load.get_or_create(&PeriodLabel { period: name[4..].to_string() }).set(v)
                }
                (ReadingSource::Host, "MEMORY_USED_RATIO") => self.memory_used.set(v),
                (ReadingSource::Host, "MEMORY_AVAILABLE_MB") => self.memory_available.set(v * MIB),
                (ReadingSource::Host, "SWAP_USED_RATIO") => self.swap_used.set(v),
                (ReadingSource::Host, "OPEN_FILES") => self.open_files.set(v),
                (ReadingSource::Host, "OPEN_FILES_RATIO") => self.open_files_ratio.set(v),
                (ReadingSource::Filesystem(m), reading) => {
                    let m = MountLabel { mountpoint: m.clone() };
                    match reading {
                        "FS_USED_RATIO" => self.fs_used.get_or_create(&m).set(v),
                        "FS_AVAILABLE_MB" => self.fs_available.get_or_create(&m).set(v * MIB),
                        "FS_INODES_USED_RATIO" => self.fs_inodes_used.get_or_create(&m).set(v),
                        "TIME_TO_FULL" => self.fs_time_to_full.get_or_create(&m).set(v / 1000.0),
                        _ => 0.0,
                    };
                    continue;
                }
                (ReadingSource::Process(p), "PROCESS_COUNT") => {
                    self.process_count.get_or_create(&ProcessLabel { process: p.clone() }).set(v)
                }
                (ReadingSource::Process(p), "PROCESS_RSS_MB") => {
                    self.process_resident.get_or_create(&ProcessLabel { process: p.clone() }).set(v * MIB)
                }
                _ => continue,
            };
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabel {
    version: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
}

pub struct Metrics {
    registry: Mutex<Registry>,
    probe_success: Family<TargetLabel, Gauge>,
    probe_duration: Family<TargetLabel, Histogram, fn() -> Histogram>,
    http_status: Family<StatusLabel, Counter>,
    log_lines: Family<LogLabel, Counter>,
    alerts_firing: Gauge,
    store_writable: Gauge,
    store_held: Gauge,
    notifications: Family<ChannelLabel, Counter>,
    start_delay: Histogram,
    readings: Readings,
    reload_ok: Gauge,
    reload_at: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let probe_success = Family::<TargetLabel, Gauge>::default();
        registry.register(
            "lookout_probe_success",
            "Whether the last check of a target passed (1) or not (0)",
            probe_success.clone(),
        );
        let probe_duration =
            Family::<TargetLabel, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "lookout_probe_duration",
            "How long checks took",
            prometheus_client::registry::Unit::Seconds,
            probe_duration.clone(),
        );
        let http_status = Family::<StatusLabel, Counter>::default();
        registry.register("lookout_http_status", "HTTP checks by the status code they got", http_status.clone());
        let log_lines = Family::<LogLabel, Counter>::default();
        registry.register("lookout_log_lines", "Access-log lines read, by whether they parsed", log_lines.clone());
        let alerts_firing = Gauge::default();
        registry.register("lookout_alerts_firing", "Alerts firing now", alerts_firing.clone());
        let notifications = Family::<ChannelLabel, Counter>::default();
        registry.register(
            "lookout_notifications",
            "Notification attempts by channel and result (delivered, retry, abandoned, held_back)",
            notifications.clone(),
        );
        let store_writable = Gauge::default();
        store_writable.set(1);
        registry.register(
            "lookout_store_writable",
            "Whether lookout can write its store (0: it keeps alerting from memory and has alerted about it)",
            store_writable.clone(),
        );
        let store_held = Gauge::default();
        registry.register(
            "lookout_store_held_records",
            "Records held in memory until the store can be written again",
            store_held.clone(),
        );
        // One series for all targets (not per target): at 10,000 targets the per-target families are already
        // most of /metrics, and scheduling lateness is a property of the whole process.
        let start_delay = Histogram::new([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]);
        registry.register_with_unit(
            "lookout_probe_start_delay",
            "How late checks started after the moment their target's phase scheduled them",
            prometheus_client::registry::Unit::Seconds,
            start_delay.clone(),
        );
        let build_info = Family::<BuildLabel, Gauge>::default();
        build_info.get_or_create(&BuildLabel { version: env!("CARGO_PKG_VERSION").to_string() }).set(1);
        registry.register("lookout_build_info", "The running lookout's version", build_info);
        let readings = Readings::default();
        readings.register(&mut registry);
        // As Prometheus names its own: 1 until a reload fails, and when the last one succeeded (or the start).
        let reload_ok = Gauge::default();
        reload_ok.set(1);
        registry.register(
            "lookout_config_last_reload_successful",
            "Whether the last configuration reload succeeded (1) or the old configuration runs on (0)",
            reload_ok.clone(),
        );
        let reload_at = Gauge::default();
        reload_at.set(lookout_core::Timestamp::now().as_millis() / 1000);
        registry.register(
            "lookout_config_last_reload_success_timestamp_seconds",
            "When the configuration was last loaded successfully (the start, or a reload)",
            reload_at.clone(),
        );
        Metrics {
            reload_ok,
            reload_at,
            registry: Mutex::new(registry),
            probe_success,
            probe_duration,
            http_status,
            log_lines,
            alerts_firing,
            store_writable,
            store_held,
            notifications,
            start_delay,
            readings,
        }
    }

    /// Where the readings of status pages (`[[status]]`) and of the host (`[host]`, `[[process]]`) go, by
    /// target: their series are labelled with the server's name, the mount point or the process.
    pub fn watch_readings(&self, targets: &[lookout_config::Target]) {
        use lookout_config::{Check, HostCheck};
        let mut sources = self.readings.sources.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for t in targets {
            let source = match &t.check {
                Check::Status(_) => ReadingSource::Server(t.name.clone()),
                Check::Host(HostCheck::Filesystem { mount, .. }) => {
                    ReadingSource::Filesystem(mount.display().to_string())
                }
                Check::Host(HostCheck::Process(_)) => ReadingSource::Process(t.name.clone()),
                Check::Host(_) => ReadingSource::Host,
                _ => continue,
            };
            sources.insert(t.name.clone(), source);
        }
    }

    /// A check started `late` after its scheduled moment (a busy runtime or a full event channel shows here).
    pub fn probe_started(&self, late: std::time::Duration) {
        self.start_delay.observe(late.as_secs_f64());
    }

    pub fn observe_probe(&self, obs: &Observation, ok: bool) {
        let t = TargetLabel { target: obs.target.clone() };
        self.probe_success.get_or_create(&t).set(i64::from(ok));
        self.probe_duration.get_or_create(&t).observe(obs.timings.total_ms / 1000.0);
        if let Some(code) = obs.status {
            self.http_status.get_or_create(&StatusLabel { target: obs.target.clone(), code: code.to_string() }).inc();
        }
        if !obs.readings.is_empty() {
            self.readings.observe(obs);
        }
    }

    pub fn observe_log(&self, batch: &LogBatch) {
        let label = |result: &str| LogLabel { source: batch.target.clone(), result: result.into() };
        self.log_lines.get_or_create(&label("parsed")).inc_by(batch.requests);
        self.log_lines.get_or_create(&label("malformed")).inc_by(batch.malformed);
    }

    /// A reload's outcome. A successful one forgets the per-target series: targets removed by it leave none
    /// behind (the others are there again at their next check).
    pub fn reloaded(&self, ok: bool) {
        self.reload_ok.set(i64::from(ok));
        if ok {
            self.reload_at.set(lookout_core::Timestamp::now().as_millis() / 1000);
            self.probe_success.clear();
            self.probe_duration.clear();
            self.http_status.clear();
        }
    }

    pub fn set_firing(&self, n: usize) {
        self.alerts_firing.set(n as i64);
    }

    /// Whether the store takes writes, and how many records wait in memory for it.
    pub fn set_store(&self, writable: bool, held: usize) {
        self.store_writable.set(i64::from(writable));
        self.store_held.set(held as i64);
    }

    pub fn notification(&self, channel: &str, result: &str, count: u64) {
        self.notifications
            .get_or_create(&ChannelLabel { channel: channel.into(), result: result.into() })
            .inc_by(count);
    }

    /// The Prometheus text format (0.0.4), which every scraper and `promtool` reads: the OpenMetrics text with
    /// counters' HELP and TYPE named after their `_total` samples, and without `# UNIT` and `# EOF`.
    ///
    /// Converted line by line while encoding, into one string: at 10,000 targets the text is ~10 MB, and a copy
    /// of it per scrape (with a search of every line) cost 20 MB of heap that stayed with the process and a
    /// noticeable share of its CPU.
    pub fn render_prometheus(&self) -> String {
        let mut out = ToPrometheus::default();
        let registry = self.registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if encode(&mut out, &registry).is_err() {
            return String::new();
        }
        drop(registry);
        out.finish()
    }

    /// The OpenMetrics text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }
}

/// OpenMetrics text in, Prometheus text out (see [`Metrics::render_prometheus`]), a line at a time. A `# HELP`
/// line waits for the `# TYPE` line after it, which says whether the metric is a counter.
#[derive(Default)]
struct ToPrometheus {
    out: String,
    line: String,
    help: Option<String>,
}

impl ToPrometheus {
    fn line(&mut self) {
        let line = std::mem::take(&mut self.line);
        if line.starts_with("# UNIT ") || line == "# EOF" {
        } else if line.starts_with("# HELP ") {
            self.flush_help();
            self.help = Some(line);
            return;
        } else if let Some(name) = line.strip_prefix("# TYPE ").and_then(|r| r.strip_suffix(" counter")) {
            if let Some(help) = self.help.take() {
                match help.strip_prefix("# HELP ").and_then(|r| r.strip_prefix(name)).filter(|r| r.starts_with(' ')) {
                    Some(rest) => self.push(&format!("# HELP {name}_total{rest}")),
                    None => self.push(&help),
                }
            }
            self.push(&format!("# TYPE {name}_total counter"));
        } else {
            self.flush_help();
            self.push(&line);
        }
        self.line = line;
        self.line.clear();
    }

    fn flush_help(&mut self) {
        if let Some(help) = self.help.take() {
            self.push(&help);
        }
    }

    fn push(&mut self, line: &str) {
        self.out.push_str(line);
        self.out.push('\n');
    }

    fn finish(mut self) -> String {
        if !self.line.is_empty() {
            self.line();
        }
        self.flush_help();
        self.out
    }
}

impl std::fmt::Write for ToPrometheus {
    fn write_str(&mut self, mut s: &str) -> std::fmt::Result {
        while let Some((head, tail)) = s.split_once('\n') {
            self.line.push_str(head);
            self.line();
            s = tail;
        }
        self.line.push_str(s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_of_servers_and_the_host_have_conventional_names_units_and_bounded_labels() {
        let config = lookout_config::Config::parse(
            "[[status]]\nname = \"apache\"\ntype = \"apache\"\nurl = \"http://127.0.0.1/server-status\"\n\n\
             [[process]]\nname = \"apache2\"\n",
            std::path::Path::new("lookout.toml"),
            &|_| None,
        )
        .unwrap();
        let mut targets = config.targets.clone();
        targets.extend(config.host.targets(&[std::path::PathBuf::from("/")]));
        let m = Metrics::new();
        m.watch_readings(&targets);
        let observe = |target: &str, readings: &[(&str, f64)]| {
            let mut o = Observation::new(target, lookout_core::ProbeKind::Status, lookout_core::Timestamp(0));
            o.readings = readings.iter().map(|(n, v)| ((*n).to_string(), *v)).collect();
            m.observe_probe(&o, true);
        };
        observe("apache", &[("BUSY_WORKERS", 4.0), ("IDLE_WORKERS", 1.0), ("WORKER_SATURATION", 0.8)]);
        observe("fs-root", &[("FS_USED_RATIO", 0.5), ("FS_AVAILABLE_MB", 2.0), ("TIME_TO_FULL", 90_000.0)]);
        observe("host-memory", &[("MEMORY_USED_RATIO", 0.25), ("MEMORY_AVAILABLE_MB", 1.0)]);
        observe("host-cpu", &[("LOAD1", 0.5)]);
        observe("apache2", &[("PROCESS_COUNT", 5.0), ("PROCESS_RSS_MB", 10.0)]);
        // A target that is not a status page or the host adds nothing, whatever it carries.
        observe("unknown", &[("BUSY_WORKERS", 9.0)]);
        let text = m.render_prometheus();
        for line in [
            "lookout_server_workers{server=\"apache\",state=\"busy\"} 4.0",
            "lookout_server_workers{server=\"apache\",state=\"idle\"} 1.0",
            "lookout_server_worker_saturation_ratio{server=\"apache\"} 0.8",
            "lookout_host_filesystem_used_ratio{mountpoint=\"/\"} 0.5",
            "lookout_host_filesystem_available_bytes{mountpoint=\"/\"} 2097152.0",
            "lookout_host_filesystem_time_to_full_seconds{mountpoint=\"/\"} 90.0",
            "lookout_host_memory_used_ratio 0.25",
            "lookout_host_memory_available_bytes 1048576.0",
            "lookout_host_load{period=\"1\"} 0.5",
            "lookout_process_count{process=\"apache2\"} 5.0",
            "lookout_process_resident_bytes{process=\"apache2\"} 10485760.0",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
        }
        assert!(!text.contains("server=\"unknown\""), "{text}");
        // Stopped growing: the time-to-full series goes.
        observe("fs-root-critical", &[("FS_USED_RATIO", 0.5)]);
        assert!(!m.render_prometheus().contains("lookout_host_filesystem_time_to_full_seconds{"));
    }

    #[test]
    fn both_text_formats() {
        let m = Metrics::new();
        m.notification("ops", "delivered", 2);
        let open = m.render();
        assert!(open.contains("# TYPE lookout_notifications counter") && open.ends_with("# EOF\n"), "{open}");
        let prom = m.render_prometheus();
        assert!(prom.contains("# TYPE lookout_notifications_total counter"), "{prom}");
        assert!(prom.contains("# HELP lookout_notifications_total Notification attempts"), "{prom}");
        assert!(prom.contains("lookout_notifications_total{channel=\"ops\",result=\"delivered\"} 2"), "{prom}");
        assert!(!prom.contains("# EOF") && !prom.contains("# UNIT"), "{prom}");
    }

    /// The conversion as it was first written (a copy of the whole text, every line searched for counters).
    fn prometheus_from_openmetrics(open: &str) -> String {
        let counters: Vec<&str> =
            open.lines().filter_map(|l| l.strip_prefix("# TYPE ").and_then(|r| r.strip_suffix(" counter"))).collect();
        let mut out = String::new();
        for line in open.lines() {
            if line.starts_with("# UNIT ") || line == "# EOF" {
                continue;
            }
            let renamed = ["# HELP ", "# TYPE "].iter().find_map(|p| {
                let rest = line.strip_prefix(p)?;
                let name = counters.iter().find(|c| rest.starts_with(&format!("{c} ")))?;
                Some(format!("{p}{name}_total{}", &rest[name.len()..]))
            });
            out.push_str(renamed.as_deref().unwrap_or(line));
            out.push('\n');
        }
        out
    }

    #[test]
    fn the_streamed_prometheus_text_is_the_openmetrics_text_converted() {
        let m = Metrics::new();
        for (i, status) in [(0, Some(200)), (1, Some(503)), (2, None)] {
            let mut obs = Observation::new(format!("t{i}"), lookout_core::ProbeKind::Http, lookout_core::Timestamp(0));
            obs.status = status;
            obs.timings.total_ms = 12.5;
            m.observe_probe(&obs, status == Some(200));
        }
        m.notification("ops", "delivered", 1);
        m.notification("ops", "retry", 3);
        m.probe_started(std::time::Duration::from_millis(7));
        m.set_store(false, 4);
        let prom = m.render_prometheus();
        assert_eq!(prom, prometheus_from_openmetrics(&m.render()));
        assert!(prom.contains("# HELP lookout_http_status_total HTTP checks"), "{prom}");
        assert!(prom.contains("lookout_probe_duration_seconds_count{target=\"t1\"} 1"), "{prom}");
    }

    #[test]
    fn start_delay_is_one_histogram_in_seconds() {
        let m = Metrics::new();
        m.probe_started(std::time::Duration::from_millis(3));
        m.probe_started(std::time::Duration::from_millis(300));
        let prom = m.render_prometheus();
        assert!(prom.contains("lookout_probe_start_delay_seconds_bucket{le=\"0.005\"} 1"), "{prom}");
        assert!(prom.contains("lookout_probe_start_delay_seconds_bucket{le=\"0.5\"} 2"), "{prom}");
        assert!(prom.contains("lookout_probe_start_delay_seconds_count 2"), "{prom}");
    }
}
