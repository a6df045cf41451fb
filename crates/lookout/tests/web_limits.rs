//! The web port cannot starve lookout: slow and silent connections are closed, connections stay below the
//! descriptor limit (a slowloris of 2,000 connections against `lookout run` under `ulimit -n 1024` while a target
//! breaks and is notified), and a client without a token costs no memory whatever body it sends.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::support::{Receiver, Target, free_port, lookout_bin, wait_until, write_config};

/// One HTTP/1.1 exchange over a fresh connection (`Connection: close`): the status and the whole answer. Raw,
/// so a test can send what a well-behaved client never would (another Host, a lower-case scheme, no body type).
pub(crate) async fn raw_http(addr: SocketAddr, request: &str) -> (u16, String) {
    let exchange = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        s.write_all(request.as_bytes()).await.ok()?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.ok()?;
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text.split(' ').nth(1)?.parse().ok()?;
        Some((status, text))
    };
    tokio::time::timeout(Duration::from_secs(10), exchange).await.ok().flatten().unwrap_or((0, String::new()))
}

/// The JSON body of a raw answer.
pub(crate) fn json_body(answer: &str) -> serde_json::Value {
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {answer}"))
}

/// `lookout run` under `ulimit -n {nofile}` (soft and hard: it cannot raise it), stderr into `log`.
fn run_limited(config: &Path, nofile: u32, log: &Path) -> Child {
    Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n {nofile} && exec \"$0\" run --config \"$1\""))
        .arg(lookout_bin())
        .arg(config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// This test process opens thousands of sockets itself.
fn raise_own_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft < 8192 {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard.min(1 << 16), hard);
    }
}

/// A slowloris client: connects, then either sends nothing or one byte of a request header every two seconds,
/// and connects again whenever lookout closes it.
async fn slow_client(addr: SocketAddr, trickle: bool, mut stop: watch::Receiver<bool>) {
    let mut buf = [0u8; 512];
    while !*stop.borrow() {
        if let Ok(mut s) = TcpStream::connect(addr).await {
            let _ = s.write_all(if trickle { b"GET / HTTP/1.1\r\nX-a: " } else { b"" }).await;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)), if trickle => {
                        if s.write_all(b"a").await.is_err() { break; }
                    }
                    r = s.read(&mut buf) => if !matches!(r, Ok(n) if n > 0) { break; },
                    _ = stop.changed() => return,
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn slowloris_of_2000_connections_under_ulimit_1024_does_not_stop_alerting() {
    raise_own_limit();
    let healthy = Target::start().await;
    let broken = Target::start().await;
    let receiver = Receiver::start().await;
    let port = free_port().await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[store]\npath = \"lookout.sqlite\"\n\n[web]\nlisten = \"127.0.0.1:{port}\"\n\n\
         [[target]]\nname = \"healthy\"\nurl = \"{}\"\ninterval = \"200ms\"\nconditions = [\"[STATUS] == 200\"]\nfailure_threshold = 2\n\n\
         [[target]]\nname = \"broken\"\nurl = \"{}\"\ninterval = \"200ms\"\nconditions = [\"[STATUS] == 200\"]\nfailure_threshold = 2\n\n\
         [[notify]]\nname = \"ops\"\ntype = \"webhook\"\nurl = \"{}\"\nretry_initial = \"100ms\"\n",
        healthy.url("/"),
        broken.url("/"),
        receiver.url()
    );
    let config = write_config(dir.path(), &text);
    let log = dir.path().join("stderr.log");
    let mut lookout = run_limited(&config, 1024, &log);
    let pid = lookout.id();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let targets = format!("GET /api/v1/targets HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    wait_until("the API", Duration::from_secs(15), || async { raw_http(addr, &targets).await.0 == 200 }).await;

    let (stop, stop_rx) = watch::channel(false);
    let attackers: Vec<_> = (0..2000).map(|i| tokio::spawn(slow_client(addr, i % 2 == 0, stop_rx.clone()))).collect();
    // The attack is on: lookout holds as many connections as it allows itself.
    let mut most = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        most = most.max(open_fds(pid));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(most > 400, "the attack never reached lookout's connection limit: {most} descriptors");

    // A target breaks during the attack: it fires, and the notification arrives.
    broken.set(500, "down");
    let started = Instant::now();
    receiver.wait_for_target("broken", "firing", Duration::from_secs(20)).await;
    eprintln!("the broken target was notified {:?} after it broke, under attack", started.elapsed());
    // The API still answers while the attack goes on.
    let mut answered = None;
    for _ in 0..5 {
        let t = Instant::now();
        let (status, body) = raw_http(addr, &targets).await;
        if status == 200 {
            answered = Some((t.elapsed(), body));
            break;
        }
    }
    let (took, body) = answered.expect("the API answered during the attack");
    eprintln!("the API answered in {took:?} under attack");
    let states = json_body(&body);
    let healthy_state = states.as_array().unwrap().iter().find(|t| t["name"] == "healthy").unwrap()["state"].clone();
    assert_eq!(healthy_state, "ok", "{states}");
    for _ in 0..20 {
        most = most.max(open_fds(pid));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.send(true).unwrap();
    for a in attackers {
        let _ = a.await;
    }
    assert!(most < 1024, "lookout ran out of descriptors: {most}");
    assert!(
        !receiver.received().iter().any(|r| r.body.to_string().contains("\"healthy\"")),
        "the healthy target fired: {:?}",
        receiver.received()
    );
    lookout.kill().unwrap();
    lookout.wait().unwrap();
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(!stderr.contains("os error 24"), "{stderr}");
    eprintln!("most descriptors lookout held: {most}");
}

/// Without a token nothing is read: 300 clients sending 2 MB bodies at once get 401 and lookout stays small.
#[tokio::test(flavor = "multi_thread")]
async fn unauthenticated_2_mb_posts_cost_no_memory() {
    let port = free_port().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!("[store]\npath = \"lookout.sqlite\"\n\n[web]\nlisten = \"127.0.0.1:{port}\"\ntokens_env = \"T\"\n"),
    );
    let mut lookout = Command::new(lookout_bin())
        .args(["run", "--config"])
        .arg(&config)
        .env("T", "a-token")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = lookout.id();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let get = "GET /api/v1/silences HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    wait_until("the API", Duration::from_secs(15), || async { raw_http(addr, get).await.0 == 200 }).await;
    let before = rss_kib(pid);
    const BODY: usize = 2 * 1024 * 1024;
    let posts: Vec<_> = (0..300)
        .map(|_| {
            tokio::spawn(async move {
                let Ok(s) = TcpStream::connect(addr).await else { return 0 };
                let (mut r, mut w) = s.into_split();
                let head = format!(
                    "POST /api/v1/silences HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {BODY}\r\n\r\n"
                );
                let writer = tokio::spawn(async move {
                    let _ = w.write_all(head.as_bytes()).await;
                    let chunk = vec![b'['; 64 * 1024];
                    for _ in 0..BODY / chunk.len() {
                        if w.write_all(&chunk).await.is_err() {
                            break;
                        }
                    }
                });
                let mut answer = Vec::new();
                let _ = tokio::time::timeout(Duration::from_secs(10), r.read_to_end(&mut answer)).await;
                writer.abort();
                let text = String::from_utf8_lossy(&answer);
                if text.starts_with("HTTP/1.1 401") {
                    assert!(text.contains("{\"error\":"), "{text}");
                    401
                } else {
                    assert!(text.is_empty(), "{text}");
                    0
                }
            })
        })
        .collect();
    let mut refused = 0;
    for p in posts {
        if p.await.unwrap() == 401 {
            refused += 1;
        }
    }
    let after = rss_kib(pid);
    lookout.kill().unwrap();
    lookout.wait().unwrap();
    eprintln!("RSS {before} KiB before, {after} KiB after 300 unauthenticated 2 MB POSTs ({refused} answered 401)");
    assert!(refused >= 150, "most clients got their 401: {refused}");
    assert!(after < 100 * 1024, "RSS {after} KiB after the POSTs (before: {before} KiB)");
}

/// A connection that sends nothing, or one byte now and then, is closed after the header timeout; a client that
/// asks promptly is served meanwhile.
#[tokio::test(flavor = "multi_thread")]
async fn silent_and_trickling_connections_are_closed() {
    let port = free_port().await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!("[store]\npath = \"lookout.sqlite\"\n\n[web]\nlisten = \"127.0.0.1:{port}\"\n");
    let cfg = lookout_config::Config::parse(&text, &dir.path().join("lookout.toml"), &|_| None).unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let runtime = tokio::spawn(lookout::runtime::run(cfg, stop_rx, None));
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let get = "GET /status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    wait_until("the web side", Duration::from_secs(10), || async { raw_http(addr, get).await.0 == 200 }).await;
    let closed_after = |trickle: bool| async move {
        let started = Instant::now();
        let give_up = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut s = TcpStream::connect(addr).await.unwrap();
        if trickle {
            s.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        }
        let mut buf = [0u8; 256];
        loop {
            tokio::select! {
                r = s.read(&mut buf) => {
                    if !matches!(r, Ok(n) if n > 0) {
                        return started.elapsed();
                    }
                }
                _ = tokio::time::sleep(Duration::from_secs(1)), if trickle => {
                    if s.write_all(b"X").await.is_err() {
                        return started.elapsed();
                    }
                }
                _ = tokio::time::sleep_until(give_up) => panic!("still open after 30 s"),
            }
        }
    };
    let (silent, trickling) = tokio::join!(closed_after(false), closed_after(true));
    let limit = lookout_web::HEADER_TIMEOUT + Duration::from_secs(2);
    assert!(silent <= limit, "a silent connection was closed after {silent:?}");
    assert!(trickling <= limit, "a trickling connection was closed after {trickling:?}");
    assert_eq!(raw_http(addr, get).await.0, 200);
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), runtime).await.unwrap().unwrap().unwrap();
}
