//! A real PostgreSQL for tests: the server the PostgreSQL backend's tests (here and in `lookout`'s integration
//! tests, through the cargo feature `testing`) run against. Never a mock: the point of those tests is what a real
//! server does — transactions, locks, concurrent migrations, a connection refused.
//!
//! - [`TestPostgres::shared`]: one server per test process, started at first use, in a temporary directory of its
//!   own (data directory, socket, log) on a free 127.0.0.1 port. Every test gets its own database from
//!   [`TestPostgres::fresh_database`], so tests run in parallel on one server without seeing each other.
//! - [`TestPostgres::start_private`]: a server owned by one test, which it may [`stop`](TestPostgres::stop) and
//!   [`start`](TestPostgres::start) again (same port, same data) to take PostgreSQL away under load. The shared
//!   server has no stop: other tests are using it at the same time.
//! - [`postgres_or_skip`]: the project's missing-package convention (a visible SKIPPED line locally, a failure
//!   under `LOOKOUT_REQUIRE_ALL=1`, as `.ci/run` sets), so every crate handles a missing PostgreSQL alike.
//!
//! **No server outlives its test process**, even one that panics or is killed with SIGKILL (a `static` is never
//! dropped): each server has a watchdog, a small `sh` in a process group of its own that reads a pipe whose only
//! write end this process holds. When the process ends, however it ends, the kernel closes that end; the
//! watchdog then stops the server (`pg_ctl -m immediate stop`) and removes its directory. It ignores SIGINT,
//! SIGTERM and SIGHUP, so a Ctrl-C of `cargo test` reaches the tests but not the clean-up.
//!
//! Why `initdb` + `pg_ctl` rather than the distribution's cluster: a test must not depend on (or disturb) a
//! server someone else configured, and a private cluster with `trust` authentication on 127.0.0.1 needs no
//! password anywhere. `initdb` refuses to run as root, so as root every PostgreSQL binary runs as the `postgres`
//! user the Debian package creates (`runuser -u postgres --`), and the temporary directory is handed to it.

use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// The Debian package that provides the server; named in every "missing" message.
pub const PACKAGE: &str = "postgresql";

/// Why there is no test server.
#[derive(Clone, Debug)]
pub enum Unavailable {
    /// PostgreSQL is not installed: a test may be skipped (see [`postgres_or_skip`]).
    Missing(String),
    /// It is installed but would not start: always a failure, never a skip — a broken start is a bug to see.
    Broken(String),
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unavailable::Missing(m) | Unavailable::Broken(m) => f.write_str(m),
        }
    }
}

/// The shared test server, or `None` after printing `SKIPPED: …` when PostgreSQL is not installed. Under
/// `LOOKOUT_REQUIRE_ALL=1` (set by `.ci/run`) a missing PostgreSQL panics instead, so a missing install step cannot
/// pass CI unseen — the same convention as `missing_package` in `crates/lookout/tests/support`. A server that is
/// installed but fails to start always panics, with its log.
///
/// ```text
/// let Some(pg) = lookout_store::testing::postgres_or_skip() else { return };
/// let url = pg.fresh_database().await;
/// ```
pub fn postgres_or_skip() -> Option<&'static TestPostgres> {
    match TestPostgres::shared() {
        Ok(pg) => Some(pg),
        Err(Unavailable::Missing(what)) => {
            if std::env::var("LOOKOUT_REQUIRE_ALL").is_ok_and(|v| v == "1") {
                panic!("SKIPPED but LOOKOUT_REQUIRE_ALL=1: {what}");
            }
            eprintln!("SKIPPED: {what}");
            None
        }
        Err(Unavailable::Broken(why)) => panic!("{why}"),
    }
}

/// A PostgreSQL server on 127.0.0.1 in a temporary directory, with `trust` authentication for the user `postgres`.
pub struct TestPostgres {
    port: u16,
    /// The temporary directory: `data/` (the cluster), the socket, `log`.
    dir: PathBuf,
    bin: PathBuf,
    /// Run the PostgreSQL binaries as the `postgres` user (this process is root).
    as_postgres: bool,
    /// The server of [`TestPostgres::shared`], which [`TestPostgres::stop`] refuses to stop: other tests use it.
    shared: bool,
    /// The watchdog and the write end of its pipe: closing it (drop, or this process ending) stops the server and
    /// removes `dir`.
    watchdog: Mutex<Option<(Child, ChildStdin)>>,
}

impl std::fmt::Debug for TestPostgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPostgres").field("port", &self.port).field("dir", &self.dir).finish()
    }
}

/// Databases made by [`TestPostgres::fresh_database`] in this process (one server per process, so unique).
static DATABASES: AtomicU64 = AtomicU64::new(0);

impl TestPostgres {
    /// The server every test of this process shares, started at the first call (about a second: `initdb` with no
    /// `fsync`). A failure is remembered, so a broken install costs one attempt, not one per test.
    pub fn shared() -> Result<&'static TestPostgres, Unavailable> {
        static SHARED: OnceLock<Result<TestPostgres, Unavailable>> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                TestPostgres::start_private().map(|mut pg| {
                    pg.shared = true;
                    pg
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// A server of its own, for a test that stops and starts it ([`TestPostgres::stop`], [`TestPostgres::start`]).
    /// Dropping it stops the server and removes its directory.
    pub fn start_private() -> Result<TestPostgres, Unavailable> {
        let bin = find_binaries()?;
        let as_postgres = running_as_root();
        let dir = tempfile::Builder::new()
            .prefix("lookout-pg-")
            .tempdir()
            .map_err(|e| Unavailable::Broken(format!("cannot create a temporary directory for PostgreSQL: {e}")))?
            .keep();
        // The watchdog first: from here on, whatever happens to this process, the directory (and any server
        // started in it) is cleaned up.
        let watchdog = spawn_watchdog(&dir, &bin, as_postgres)
            .map_err(|e| Unavailable::Broken(format!("cannot start the PostgreSQL test watchdog (sh): {e}")))?;
        let mut pg =
            TestPostgres { port: 0, dir, bin, as_postgres, shared: false, watchdog: Mutex::new(Some(watchdog)) };
        if as_postgres {
            pg.hand_to_postgres_user().map_err(Unavailable::Broken)?;
        }
        pg.initdb().map_err(Unavailable::Broken)?;
        // A free port can be taken between our probe and the server's bind (other test processes start servers
        // too): try a few.
        let mut last = String::new();
        for _ in 0..5 {
            pg.port = free_port().map_err(Unavailable::Broken)?;
            match pg.start() {
                Ok(()) => return Ok(pg),
                Err(e) => last = e,
            }
        }
        Err(Unavailable::Broken(last))
    }

    /// The port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `name` for the user `postgres` (no password: `trust` authentication).
    pub fn url(&self, name: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// A new, empty database of a name never used before in this process; its URL. Each test takes its own, so
    /// tests in parallel share the server and nothing else. Panics (it is test support) with the server's answer
    /// if the server refuses.
    pub async fn fresh_database(&self) -> String {
        let name = format!("lookout_test_{}", DATABASES.fetch_add(1, Ordering::Relaxed));
        let client = self.admin().await.unwrap_or_else(|e| panic!("{e}"));
        // The name is ours (a counter), not input: safe to put into the statement.
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name} on the test PostgreSQL: {}", pg_error(&e)));
        self.url(&name)
    }

    /// A connection to the `postgres` database as the superuser, for what tests do by hand (bump a schema
    /// version, count rows). Its connection task runs on the caller's tokio runtime.
    pub async fn admin(&self) -> Result<tokio_postgres::Client, String> {
        self.connect("postgres").await
    }

    /// A connection to database `name` as the superuser (see [`TestPostgres::admin`]).
    pub async fn connect(&self, name: &str) -> Result<tokio_postgres::Client, String> {
        let (client, connection) = tokio_postgres::connect(&self.url(name), tokio_postgres::NoTls)
            .await
            .map_err(|e| format!("cannot connect to the test PostgreSQL on port {}: {}", self.port, pg_error(&e)))?;
        tokio::spawn(async move {
            // It ends with the client, or with an error the client's next query reports.
            let _ = connection.await;
        });
        Ok(client)
    }

    /// Stops the server at once (`-m immediate`: connections are cut as by a crash, no checkpoint), keeping its
    /// data: PostgreSQL taken away under a running lookout. For a server from [`TestPostgres::start_private`].
    /// It blocks (it waits for `pg_ctl`): an async test whose runtime also runs the code under test calls it in
    /// `tokio::task::spawn_blocking` (with the server in an `Arc`), so that code keeps running meanwhile.
    pub fn stop(&self) -> Result<(), String> {
        if self.shared {
            return Err(
                "the shared test PostgreSQL is not stopped (other tests use it): use TestPostgres::start_private"
                    .into(),
            );
        }
        self.pg_ctl(&["stop", "-m", "immediate", "-w", "-t", "60"]).map(drop)
    }

    /// Starts the server (again) on the same port with the same data, waiting until it takes connections.
    pub fn start(&self) -> Result<(), String> {
        let dir = self.dir.to_str().ok_or_else(|| format!("temporary directory {:?} is not UTF-8", self.dir))?;
        // pg_ctl hands `-o` to a shell: quote the directory. `fsync` and `full_page_writes` off only matter when
        // the machine crashes (a test run's data is thrown away then anyway); a commit is still written to the
        // WAL before it returns, so a server stopped with `-m immediate` keeps every commit — what the tests that
        // take PostgreSQL away check. (`synchronous_commit = off` would lose the last ones: not used.)
        let options = format!(
            "-p {} -k '{dir}' -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off \
             -c max_connections=300 -c log_min_messages=warning",
            self.port
        );
        let log = self.dir.join("log");
        let log = log.to_str().unwrap_or_default().to_string();
        self.pg_ctl(&["start", "-w", "-t", "60", "-l", &log, "-o", &options]).map(drop).map_err(|e| {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect();
            format!("{e}\nserver log ({log}):\n{}", tail.join("\n"))
        })
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<String, String> {
        let data = self.dir.join("data");
        let mut cmd = self.command("pg_ctl");
        cmd.arg("-D").arg(&data).args(args);
        run(cmd, "pg_ctl")
    }

    fn initdb(&self) -> Result<(), String> {
        let mut cmd = self.command("initdb");
        cmd.arg("-D").arg(self.dir.join("data")).args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        ]);
        run(cmd, "initdb").map(drop)
    }

    /// A PostgreSQL binary, as the `postgres` user when this process is root, run in the temporary directory
    /// (the test's own working directory may not be readable by `postgres`), in a process group of its own so a
    /// Ctrl-C of the tests does not reach the server mid-start.
    fn command(&self, name: &str) -> Command {
        let path = self.bin.join(name);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        cmd.current_dir(&self.dir).stdin(Stdio::null()).process_group(0);
        cmd
    }

    /// As root: the temporary directory becomes the `postgres` user's (it is 0700 and root's when made).
    fn hand_to_postgres_user(&self) -> Result<(), String> {
        let mut cmd = Command::new("chown");
        cmd.arg("postgres:postgres").arg(&self.dir);
        run(cmd, "chown").map(drop).map_err(|e| {
            format!("{e}; as root the test PostgreSQL runs as the user `postgres`, which the package {PACKAGE} creates")
        })
    }
}

impl Drop for TestPostgres {
    /// Closes the watchdog's pipe and waits for it: the server is stopped and its directory gone on return.
    fn drop(&mut self) {
        let watchdog = self.watchdog.get_mut().map(Option::take).unwrap_or_else(|p| p.into_inner().take());
        if let Some((mut child, stdin)) = watchdog {
            drop(stdin);
            let _ = child.wait();
        }
    }
}

/// The watchdog: `sh` in its own process group, ignoring the signals a terminal or a test runner sends, reads its
/// stdin (the pipe) until end of file, then stops the server and removes the directory. `pg_ctl stop` finds no
/// server if none was started (or it was stopped) and says so harmlessly.
fn spawn_watchdog(dir: &Path, bin: &Path, as_postgres: bool) -> std::io::Result<(Child, ChildStdin)> {
    const SCRIPT: &str = r#"trap '' INT TERM HUP
cat >/dev/null
if [ "$3" = root ]; then
  runuser -u postgres -- "$2/pg_ctl" -D "$1/data" -m immediate -w -t 30 stop >/dev/null 2>&1
else
  "$2/pg_ctl" -D "$1/data" -m immediate -w -t 30 stop >/dev/null 2>&1
fi
rm -rf "$1"
"#;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(SCRIPT)
        .arg("lookout-pg-watchdog")
        .arg(dir)
        .arg(bin)
        .arg(if as_postgres { "root" } else { "user" })
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()?;
    let mut stdin = child.stdin.take().ok_or_else(|| std::io::Error::other("no pipe to the watchdog"))?;
    // Nothing is ever read but the end of file; a byte checks that the pipe is there.
    stdin.write_all(b"\n")?;
    Ok((child, stdin))
}

/// Where `initdb` and `pg_ctl` are: `LOOKOUT_PG_BIN` if set, else the newest `/usr/lib/postgresql/N/bin` (Debian
/// keeps them off `PATH`), else `PATH` (`pg_config --bindir`).
fn find_binaries() -> Result<PathBuf, Unavailable> {
    let missing = |why: String| {
        Unavailable::Missing(format!(
            "PostgreSQL server binaries (initdb, pg_ctl) not found ({why}): install the Debian package {PACKAGE} \
             (apt-get install {PACKAGE}), or set LOOKOUT_PG_BIN to their directory"
        ))
    };
    let has_all = |dir: &Path| ["initdb", "pg_ctl", "postgres"].iter().all(|b| dir.join(b).is_file());
    if let Some(dir) = std::env::var_os("LOOKOUT_PG_BIN") {
        let dir = PathBuf::from(dir);
        return if has_all(&dir) { Ok(dir) } else { Err(missing(format!("not in LOOKOUT_PG_BIN={}", dir.display()))) };
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse::<u32>().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| has_all(bin))
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let from_path = Command::new("pg_config").arg("--bindir").output().ok().filter(|o| o.status.success());
    if let Some(out) = from_path {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_all(&dir) {
            return Ok(dir);
        }
    }
    Err(missing("no /usr/lib/postgresql/*/bin, no pg_config on PATH".into()))
}

/// Root: `/proc/self` belongs to the effective user (no libc call needed, and the workspace forbids `unsafe`).
fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port on 127.0.0.1 for PostgreSQL: {e}"))
}

/// Runs a command to completion; its output, or an error with what it printed.
fn run(mut cmd: Command, what: &str) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("cannot run {what} ({:?}): {e}", cmd.get_program()))?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() { Ok(text) } else { Err(format!("{what} failed ({}): {}", out.status, text.trim())) }
}

/// A tokio-postgres error with the server's message (its `Display` alone says only "db error").
fn pg_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{e}: {}", db.message()),
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shared server takes connections and hands out databases that are distinct and empty.
    #[tokio::test]
    async fn the_shared_server_hands_out_fresh_databases() {
        let Some(pg) = postgres_or_skip() else { return };
        let (a, b) = (pg.fresh_database().await, pg.fresh_database().await);
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("postgresql://postgres@127.0.0.1:{}/lookout_test_", pg.port())), "{a}");
        let name = a.rsplit('/').next().unwrap_or_default();
        let c = pg.connect(name).await.unwrap();
        c.batch_execute("CREATE TABLE t (x INT); INSERT INTO t VALUES (1)").await.unwrap();
        let other = pg.connect(b.rsplit('/').next().unwrap_or_default()).await.unwrap();
        let n: i64 =
            other.query_one("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", &[]).await.unwrap().get(0);
        assert_eq!(n, 0, "a fresh database has no tables of another");
        assert!(pg.stop().is_err(), "the shared server is not stopped under other tests");
    }

    /// A private server stops (connections fail), starts again on the same port with its data, and is gone —
    /// process and directory — once dropped.
    #[tokio::test]
    async fn a_private_server_stops_starts_and_is_cleaned_up() {
        if postgres_or_skip().is_none() {
            return;
        }
        let pg = TestPostgres::start_private().unwrap();
        let c = pg.admin().await.unwrap();
        c.batch_execute("CREATE TABLE kept (x INT); INSERT INTO kept VALUES (7)").await.unwrap();
        pg.stop().unwrap();
        assert!(c.query_one("SELECT 1", &[]).await.is_err(), "the connection is cut");
        assert!(pg.admin().await.is_err(), "nothing listens while stopped");
        pg.start().unwrap();
        let c = pg.admin().await.unwrap();
        let x: i32 = c.query_one("SELECT x FROM kept", &[]).await.unwrap().get(0);
        assert_eq!(x, 7, "the data survives the stop");
        let (port, dir) = (pg.port(), pg.dir.clone());
        drop(c);
        drop(pg);
        assert!(!dir.exists(), "the directory is removed");
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "the server is stopped");
    }
}
