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
        let build_info = Family::<BuildLabel, Gauge>::default();
        build_info.get_or_create(&BuildLabel { version: env!("CARGO_PKG_VERSION").to_string() }).set(1);
        registry.register("lookout_build_info", "The running lookout's version", build_info);
        Metrics {
            registry: Mutex::new(registry),
            probe_success,
            probe_duration,
            http_status,
            log_lines,
            alerts_firing,
            store_writable,
            store_held,
            notifications,
        }
    }

    pub fn observe_probe(&self, obs: &Observation, ok: bool) {
        let t = TargetLabel { target: obs.target.clone() };
        self.probe_success.get_or_create(&t).set(i64::from(ok));
        self.probe_duration.get_or_create(&t).observe(obs.timings.total_ms / 1000.0);
        if let Some(code) = obs.status {
            self.http_status.get_or_create(&StatusLabel { target: obs.target.clone(), code: code.to_string() }).inc();
        }
    }

    pub fn observe_log(&self, batch: &LogBatch) {
        let label = |result: &str| LogLabel { source: batch.target.clone(), result: result.into() };
        self.log_lines.get_or_create(&label("parsed")).inc_by(batch.requests);
        self.log_lines.get_or_create(&label("malformed")).inc_by(batch.malformed);
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
    pub fn render_prometheus(&self) -> String {
        let open = self.render();
        let counters: Vec<String> = open
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE ").and_then(|r| r.strip_suffix(" counter")).map(str::to_string))
            .collect();
        let mut out = String::with_capacity(open.len());
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
