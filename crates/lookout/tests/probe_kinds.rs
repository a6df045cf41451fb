//! DNS, ICMP ping and HTTP/2 probes against real peers on 127.0.0.0/8: Debian's dnsmasq, the kernel's own echo
//! replies (in a private network namespace where a host must stay silent), and Apache with mod_http2 + mod_ssl.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lookout_core::{HttpVersion, Observation, ProbeErrorKind};
use lookout_engine::Verdict;

use crate::support::probe_once as probe;
use crate::support::{free_port, lookout_bin, missing_package};

fn which(name: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"].iter().map(|d| Path::new(d).join(name)).find(|p| p.exists())
}

// ---------------------------------------------------------------------------------------------------------------
// DNS against dnsmasq

/// A private dnsmasq on 127.0.0.1:`port` answering for `example.test` only (`--local`: anything else under
/// `.test` is NXDOMAIN, and nothing is forwarded anywhere).
struct Dnsmasq {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Dnsmasq {
    async fn start() -> Option<Dnsmasq> {
        let Some(bin) = which("dnsmasq") else {
            missing_package("dnsmasq is not installed (apt-get install dnsmasq)");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        // UDP and TCP must both be free: dnsmasq binds both.
        let port = free_port().await;
        let child = Command::new(bin)
            .args(["--no-daemon", "--no-resolv", "--no-hosts", "-C", "/dev/null", "--bind-interfaces"])
            .args(["--listen-address=127.0.0.1", "--local=/test/", "--user=root"])
            .arg(format!("--port={port}"))
            .arg(format!("--pid-file={}", dir.path().join("dnsmasq.pid").display()))
            .args([
                "--host-record=example.test,127.0.0.7,::7",
                "--host-record=example.test,127.0.0.8",
                "--cname=www.example.test,example.test",
                "--mx-host=example.test,mail.example.test,10",
                "--txt-record=example.test,v=spf1 -all",
                // NS has no option of its own outside auth mode: type 2 with rdata ns1.example.test.
                "--dns-rr=example.test,2,036e7331076578616d706c65047465737400",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut d = Dnsmasq { child, port, _dir: dir };
        // Ready once it answers a query.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (obs, _) = d.ask("example.test", "A", "200ms").await;
            if obs.dns_rcode.is_some() {
                return Some(d);
            }
            if let Ok(Some(status)) = d.child.try_wait() {
                let mut err = String::new();
                std::io::Read::read_to_string(d.child.stderr.as_mut().unwrap(), &mut err).unwrap();
                panic!("dnsmasq exited with {status}: {err}");
            }
            assert!(Instant::now() < deadline, "dnsmasq did not answer on port {}: {obs:?}", d.port);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn ask(&self, name: &str, record: &str, timeout: &str) -> (Observation, Verdict) {
        probe(&format!(
            "dns = {{ server = \"127.0.0.1:{}\", name = \"{name}\", type = \"{record}\" }}\ntimeout = \"{timeout}\"",
            self.port
        ))
        .await
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn dns_answers_of_every_record_type_from_dnsmasq() {
    let Some(dns) = Dnsmasq::start().await else { return };
    let cases = [
        ("example.test", "A", "127.0.0.7\n127.0.0.8"),
        ("example.test", "AAAA", "::7"),
        ("www.example.test", "CNAME", "example.test"),
        ("example.test", "MX", "10 mail.example.test"),
        ("example.test", "TXT", "v=spf1 -all"),
        ("example.test", "NS", "ns1.example.test"),
    ];
    for (name, record, answers) in cases {
        let (obs, v) = dns.ask(name, record, "2s").await;
        assert_eq!(obs.error, None, "{name} {record}: {obs:?}");
        assert_eq!(obs.dns_rcode, Some(0), "{name} {record}");
        assert_eq!(obs.body, answers, "{name} {record}");
        assert!(obs.connected && v.ok, "{name} {record}: the default condition is [DNS_RCODE] == NOERROR: {v:?}");
        assert!(obs.timings.first_byte_ms.is_some() && obs.timings.total_ms > 0.0, "{:?}", obs.timings);
    }
    // Through the CNAME, an A question's body holds the addresses only, so `[BODY] contains` reads plainly.
    let (obs, v) = probe(&format!(
        "dns = {{ server = \"127.0.0.1:{}\", name = \"www.example.test\" }}\n\
         conditions = [\"[DNS_RCODE] == NOERROR\", \"[BODY] contains 127.0.0.7\", \"[RESPONSE_TIME] < 1000\"]",
        dns.port
    ))
    .await;
    assert!(v.ok, "{v:?} {obs:?}");
    assert_eq!(obs.body, "127.0.0.7\n127.0.0.8");
    // A wrong expectation fails with the answer shown.
    let (_, v) = probe(&format!(
        "dns = {{ server = \"127.0.0.1:{}\", name = \"example.test\", type = \"AAAA\" }}\nconditions = [\"[BODY] == ::1\"]",
        dns.port
    ))
    .await;
    assert_eq!(v.failed_conditions, vec!["[BODY] (::7) == ::1"]);
}

#[tokio::test]
async fn dns_nxdomain_is_an_answer_that_conditions_judge() {
    let Some(dns) = Dnsmasq::start().await else { return };
    let (obs, v) = dns.ask("missing.test", "A", "2s").await;
    assert_eq!(obs.dns_rcode, Some(3), "{obs:?}");
    assert_eq!(obs.error, None, "NXDOMAIN is the server's answer, not a failed probe");
    assert!(obs.connected && obs.body.is_empty());
    assert!(!v.ok);
    assert_eq!(v.failed_conditions, vec!["[DNS_RCODE] (NXDOMAIN) == NOERROR"]);
    // A name that must not exist (a retired host) passes when it is NXDOMAIN.
    let (_, v) = probe(&format!(
        "dns = {{ server = \"127.0.0.1:{}\", name = \"retired.test\" }}\nconditions = [\"[DNS_RCODE] == NXDOMAIN\"]",
        dns.port
    ))
    .await;
    assert!(v.ok, "{v:?}");
}

#[tokio::test]
async fn dns_server_that_never_answers_times_out_and_a_closed_port_is_refused() {
    // A bound UDP socket that reads nothing: the query is delivered and never answered (no ICMP either).
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let started = Instant::now();
    let (obs, v) =
        probe(&format!("dns = {{ server = \"127.0.0.1:{port}\", name = \"example.test\" }}\ntimeout = \"300ms\""))
            .await;
    let took = started.elapsed();
    assert_eq!(obs.error.as_ref().map(|e| e.kind), Some(ProbeErrorKind::Timeout), "{obs:?}");
    assert!(took >= Duration::from_millis(290) && took < Duration::from_secs(2), "{took:?}");
    assert!(!obs.connected && obs.dns_rcode.is_none() && !v.ok);
    assert_eq!(v.failed_conditions, vec!["[DNS_RCODE] (<no DNS response>) == NOERROR"]);
    drop(silent);

    // Nothing bound at all: the kernel's port-unreachable comes back as "refused", long before the timeout.
    let (obs, _) =
        probe(&format!("dns = {{ server = \"127.0.0.1:{port}\", name = \"example.test\" }}\ntimeout = \"5s\"")).await;
    assert_eq!(obs.error.as_ref().map(|e| e.kind), Some(ProbeErrorKind::Refused), "{obs:?}");
    assert!(obs.timings.total_ms < 1000.0, "{:?}", obs.timings);
}

// ---------------------------------------------------------------------------------------------------------------
// ICMP ping

#[tokio::test]
async fn ping_of_loopback_answers_with_a_round_trip() {
    let (obs, v) =
        probe("icmp = \"127.0.0.1\"\nconditions = [\"[CONNECTED] == true\", \"[RESPONSE_TIME] < 1000\"]").await;
    assert_eq!(obs.error, None, "{obs:?}");
    assert!(obs.connected && v.ok, "{v:?}");
    let rtt = obs.timings.connect_ms.unwrap();
    assert!(rtt >= 0.0 && rtt <= obs.timings.total_ms, "{:?}", obs.timings);
    // Another loopback address answers too (the kernel owns all of 127.0.0.0/8).
    let (obs, _) = probe("icmp = \"127.0.0.9\"").await;
    assert!(obs.connected, "{obs:?}");
}

/// Runs `lookout check --json` on `config` inside a new network namespace prepared by `setup` (shell, run as
/// root), then as `user` (`root` or `nobody`). `None` where namespaces cannot be made (not root, no unshare).
fn check_in_netns(config: &Path, setup: &str, as_nobody: bool) -> Option<serde_json::Value> {
    if !nix::unistd::geteuid().is_root() || which("unshare").is_none() || which("setpriv").is_none() {
        missing_package("network namespaces need root, unshare and setpriv");
        return None;
    }
    let bin = lookout_bin();
    let run = if as_nobody {
        format!(
            "setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all {} check --json --config {}",
            bin.display(),
            config.display()
        )
    } else {
        format!("{} check --json --config {}", bin.display(), config.display())
    };
    let out = Command::new("unshare")
        .args(["--net", "sh", "-ec"])
        .arg(format!("ip link set lo up; {setup}; {run}"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "lookout check in a namespace: {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}")))
}

fn ping_config(dir: &Path, timeout: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.join("lookout.toml");
    std::fs::write(&path, format!("[[target]]\nname = \"lo\"\nicmp = \"127.0.0.1\"\ntimeout = \"{timeout}\"\n"))
        .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    path
}

#[test]
fn ping_of_a_host_that_stays_silent_times_out() {
    // In a namespace of its own, the kernel is told to ignore every echo request: a host that is up and silent,
    // as a firewalled one is, without touching the machine's own network.
    let dir = tempfile::tempdir().unwrap();
    let config = ping_config(dir.path(), "400ms");
    let started = Instant::now();
    let Some(report) = check_in_netns(&config, "sysctl -qw net.ipv4.icmp_echo_ignore_all=1", false) else { return };
    let r = &report[0];
    assert_eq!(r["ok"], false, "{report}");
    let error = r["error"].to_string();
    assert!(error.contains("timeout") && error.contains("no echo reply from 127.0.0.1"), "{report}");
    assert!(started.elapsed() >= Duration::from_millis(400), "it waited for the reply");

    // The same namespace answering (the control): the test above failed for the right reason.
    let Some(report) = check_in_netns(&config, "true", false) else { return };
    assert_eq!(report[0]["ok"], true, "{report}");
}

#[test]
fn ping_uses_unprivileged_datagram_sockets_and_says_which_sysctl_when_they_are_not_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let config = ping_config(dir.path(), "2s");
    // As nobody, without CAP_NET_RAW, only the datagram socket can work: allowed by the group range, it does.
    let Some(report) = check_in_netns(&config, "sysctl -qw net.ipv4.ping_group_range='0 2147483647'", true) else {
        return;
    };
    assert_eq!(report[0]["ok"], true, "{report}");
    // Excluded from the range (Debian's kernel default "1 0"), it is a config error naming the sysctl.
    let Some(report) = check_in_netns(&config, "sysctl -qw net.ipv4.ping_group_range='1 0'", true) else { return };
    let error = report[0]["error"].to_string();
    assert_eq!(report[0]["ok"], false, "{report}");
    assert!(error.contains("net.ipv4.ping_group_range") && error.contains("CAP_NET_RAW"), "{report}");
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP/2 against Apache (mod_ssl + mod_http2)

/// A private Apache with two TLS ports: `h2_port` offers `h2` and `http/1.1`, `h1_port` only `http/1.1`. The
/// access log records the protocol of each request (`%H`).
struct ApacheTls {
    root: PathBuf,
    h2_port: u16,
    h1_port: u16,
    _dir: tempfile::TempDir,
}

impl ApacheTls {
    async fn start() -> Option<ApacheTls> {
        let modules = Path::new("/usr/lib/apache2/modules");
        let Some(apache2) = which("apache2") else {
            missing_package("apache2 is not installed (apt-get install apache2)");
            return None;
        };
        if !modules.join("mod_http2.so").exists() || !modules.join("mod_ssl.so").exists() {
            missing_package("apache2's mod_http2 and mod_ssl are missing (apt-get install apache2)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        for sub in ["www", "run", "logs"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        {
            use std::os::unix::fs::PermissionsExt;
            for d in [root.clone(), root.join("www")] {
                std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
        }
        std::fs::write(root.join("www/index.html"), "hello over tls\n").unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        std::fs::write(root.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(root.join("key.pem"), key.serialize_pem()).unwrap();
        let (h2_port, h1_port) = (free_port().await, free_port().await);
        let user = if nix::unistd::geteuid().is_root() { "User www-data\nGroup www-data\n" } else { "" };
        let conf = format!(
            r#"{prologue}
LoadModule mpm_event_module {m}/mod_mpm_event.so
LoadModule authz_core_module {m}/mod_authz_core.so
LoadModule mime_module {m}/mod_mime.so
LoadModule dir_module {m}/mod_dir.so
LoadModule socache_shmcb_module {m}/mod_socache_shmcb.so
LoadModule ssl_module {m}/mod_ssl.so
LoadModule http2_module {m}/mod_http2.so
{user}TypesConfig /etc/mime.types
ErrorLog {root}/logs/error.log
LogLevel warn
LogFormat "%h \"%r\" %>s %H" proto
CustomLog {root}/logs/access.log proto
DocumentRoot {root}/www
DirectoryIndex index.html
SSLSessionCache shmcb:{root}/run/ssl_scache(512000)
SSLCertificateFile {root}/cert.pem
SSLCertificateKeyFile {root}/key.pem
Listen 127.0.0.1:{h2_port} https
Listen 127.0.0.1:{h1_port} https
<VirtualHost 127.0.0.1:{h2_port}>
    SSLEngine on
    Protocols h2 http/1.1
</VirtualHost>
<VirtualHost 127.0.0.1:{h1_port}>
    SSLEngine on
    Protocols http/1.1
</VirtualHost>
<Directory {root}/www>
    Require all granted
</Directory>
"#,
            root = root.display(),
            m = modules.display(),
            prologue = crate::support::apache::prologue(&root),
        );
        std::fs::write(root.join("apache2.conf"), conf).unwrap();
        let ports = crate::support::apache::start_private(&apache2, &root, &[h2_port, h1_port]);
        let (h2_port, h1_port) = (ports[0], ports[1]);
        Some(ApacheTls { root, h2_port, h1_port, _dir: dir })
    }

    /// The protocols of the requests Apache logged, in order (`HTTP/2.0`, `HTTP/1.1`).
    fn logged_protocols(&self) -> Vec<String> {
        std::fs::read_to_string(self.root.join("logs/access.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.rsplit(' ').next().map(str::to_string))
            .collect()
    }
}

impl Drop for ApacheTls {
    fn drop(&mut self) {
        crate::support::apache::stop_private(&self.root);
    }
}

#[tokio::test]
async fn https_negotiates_http2_by_alpn_and_falls_back_to_http1() {
    let Some(apache) = ApacheTls::start().await else { return };
    let target = |port: u16, extra: &str| {
        format!(
            "url = \"https://127.0.0.1:{port}/\"\nverify_tls = false\n{extra}conditions = [\"[STATUS] == 200\", \"[PROTOCOL] == HTTP/2\", \"[BODY] contains hello\"]"
        )
    };

    let (obs, v) = probe(&target(apache.h2_port, "")).await;
    assert!(v.ok, "{v:?} {obs:?}");
    assert_eq!(obs.protocol.map(HttpVersion::as_str), Some("HTTP/2"));
    assert!(obs.timings.tls_ms.is_some() && obs.cert_not_after.is_some(), "{obs:?}");

    // A server without h2: HTTP/1.1, and the [PROTOCOL] condition says so.
    let (obs, v) = probe(&target(apache.h1_port, "")).await;
    assert_eq!((obs.status, obs.protocol.map(HttpVersion::as_str)), (Some(200), Some("HTTP/1.1")), "{obs:?}");
    assert_eq!(v.failed_conditions, vec!["[PROTOCOL] (HTTP/1.1) == HTTP/2"]);

    // http2 = false keeps HTTP/1.1 with a server that offers h2.
    let (obs, _) = probe(&target(apache.h2_port, "http2 = false\n")).await;
    assert_eq!((obs.status, obs.protocol.map(HttpVersion::as_str)), (Some(200), Some("HTTP/1.1")), "{obs:?}");

    // The server's own record: h2 was really spoken, then 1.1 twice.
    let deadline = Instant::now() + Duration::from_secs(5);
    while apache.logged_protocols().len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(apache.logged_protocols(), vec!["HTTP/2.0", "HTTP/1.1", "HTTP/1.1"]);
}
