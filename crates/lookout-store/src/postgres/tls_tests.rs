//! TLS to PostgreSQL against a real server with `ssl = on` (a private [`TestPostgres`] given a certificate from a
//! test CA made here with rcgen), and against the shared test server, which has TLS off. Without PostgreSQL
//! installed the server tests print `SKIPPED: …` and pass (they fail under `LOOKOUT_REQUIRE_ALL=1`); the URL
//! tests need no server.
//!
//! The server's certificate names only `127.0.0.1`, so a connection to `localhost` is one whose host name does
//! not match: what tells `verify-full` (and `require`) from `verify-ca`.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use tokio::sync::OnceCell;
use tokio_postgres::config::SslMode as ClientSslMode;

use super::{Roots, SslMode, TlsOptions, split_url};
use crate::postgres::PgStore;
use crate::testing::{TestPostgres, postgres_or_skip};

/// A login that must authenticate with SCRAM over TLS on the TLS server (pg_hba), for the channel-binding test.
const SCRAM_USER: &str = "lookout_scram";
const SCRAM_PASSWORD: &str = "s3cret-Pw";

/// The private server with TLS on, and the client-side files.
struct TlsServer {
    pg: TestPostgres,
    /// The CA that signed the server's certificate (PEM).
    ca: PathBuf,
    /// A CA that signed nothing the server holds.
    other_ca: PathBuf,
}

/// The TLS server, set up once per test process (about two seconds: initdb, certificates, a restart); `None`
/// after a SKIPPED line when PostgreSQL is not installed.
async fn tls_server() -> Option<&'static TlsServer> {
    static SERVER: OnceCell<Option<TlsServer>> = OnceCell::const_new();
    SERVER
        .get_or_init(|| async {
            postgres_or_skip()?;
            Some(start_tls_server().await.unwrap_or_else(|e| panic!("cannot set up the TLS test PostgreSQL: {e}")))
        })
        .await
        .as_ref()
}

/// A CA and a certificate it signed for `127.0.0.1` (only): (CA PEM, server certificate PEM, server key PEM).
fn make_pki(ca_name: &str) -> Result<(String, String, String), rcgen::Error> {
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, ca_name);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca_key = KeyPair::generate()?;
    let ca_pem = ca.self_signed(&ca_key)?.pem();
    let issuer = Issuer::new(ca, ca_key);
    let mut server = CertificateParams::new(vec!["127.0.0.1".to_string()])?;
    server.distinguished_name.push(DnType::CommonName, "127.0.0.1");
    let server_key = KeyPair::generate()?;
    let server_pem = server.signed_by(&server_key, &issuer)?.pem();
    Ok((ca_pem, server_pem, server_key.serialize_pem()))
}

/// Writes `contents` to `path` with `mode`, owned like `owner_of` (as root the server runs as `postgres`, and
/// PostgreSQL refuses a key that is not its user's and 0600).
fn write_owned(path: &Path, contents: &str, mode: u32, owner_of: &Path) -> Result<(), String> {
    let owner = std::fs::metadata(owner_of).map_err(|e| format!("{}: {e}", owner_of.display()))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(contents.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))?;
    std::os::unix::fs::chown(path, Some(owner.uid()), Some(owner.gid()))
        .map_err(|e| format!("chown {}: {e}", path.display()))
}

async fn start_tls_server() -> Result<TlsServer, String> {
    let pg = TestPostgres::start_private().map_err(|e| e.to_string())?;
    let (ca_pem, server_pem, key_pem) = make_pki("lookout test CA").map_err(|e| e.to_string())?;
    let (other_ca_pem, _, _) = make_pki("someone else's CA").map_err(|e| e.to_string())?;
    let admin = pg.admin().await?;
    let show = |name: &'static str| {
        let admin = &admin;
        async move {
            let row = admin.query_one(&format!("SHOW {name}"), &[]).await.map_err(|e| super::super::describe(&e))?;
            row.try_get::<_, String>(0).map(PathBuf::from).map_err(|e| e.to_string())
        }
    };
    let data = show("data_directory").await?;
    let hba = show("hba_file").await?;
    // The server's temporary directory (removed with the server): the client's CA files go there too.
    let dir = data.parent().ok_or("the data directory has no parent")?.to_path_buf();
    write_owned(&data.join("server.crt"), &server_pem, 0o600, &data)?;
    write_owned(&data.join("server.key"), &key_pem, 0o600, &data)?;
    let (ca, other_ca) = (dir.join("client-ca.pem"), dir.join("client-other-ca.pem"));
    write_owned(&ca, &ca_pem, 0o644, &dir)?;
    write_owned(&other_ca, &other_ca_pem, 0o644, &dir)?;
    // SCRAM for one login over TLS, before the `trust` lines initdb wrote (the first matching line wins).
    let rules = std::fs::read_to_string(&hba).map_err(|e| format!("{}: {e}", hba.display()))?;
    let rules =
        format!("hostssl all {SCRAM_USER} 127.0.0.1/32 scram-sha-256\nhost all {SCRAM_USER} 0.0.0.0/0 reject\n{rules}");
    write_owned(&hba, &rules, 0o600, &data)?;
    // One statement at a time: ALTER SYSTEM refuses to run in the implicit transaction of a multi-statement batch.
    for statement in [
        "ALTER SYSTEM SET ssl = on".to_string(),
        "ALTER SYSTEM SET ssl_cert_file = 'server.crt'".into(),
        "ALTER SYSTEM SET ssl_key_file = 'server.key'".into(),
        format!("CREATE ROLE {SCRAM_USER} LOGIN PASSWORD '{SCRAM_PASSWORD}'"),
    ] {
        admin.batch_execute(&statement).await.map_err(|e| format!("{statement}: {}", super::super::describe(&e)))?;
    }
    drop(admin);
    pg.stop()?;
    pg.start()?;
    Ok(TlsServer { pg, ca, other_ca })
}

/// `url` with `options` appended (`url` has no `?` of its own: [`TestPostgres::url`]).
fn with(url: &str, options: &str) -> String {
    if options.is_empty() { url.to_string() } else { format!("{url}?{options}") }
}

/// Whether the store's own connection is encrypted, in the server's words.
async fn uses_tls(store: &PgStore) -> bool {
    let client = store.client("test").await.unwrap();
    client.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await.unwrap().get(0)
}

/// The error `PgStore::open` gives, as the user reads it.
async fn open_error(url: &str) -> String {
    match PgStore::open(url).await {
        Ok(_) => panic!("{url} opened, but should have been refused"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn require_with_the_servers_ca_connects_over_tls() {
    let Some(s) = tls_server().await else { return };
    let url = with(&s.pg.fresh_database().await, &format!("sslmode=require&sslrootcert={}", s.ca.display()));
    let store = PgStore::open(&url).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(uses_tls(&store).await, "sslmode=require: the connection is encrypted");
    // sslrootcert alone means verify-full.
    let url = with(&s.pg.fresh_database().await, &format!("sslrootcert={}", s.ca.display()));
    let store = PgStore::open(&url).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(uses_tls(&store).await, "sslrootcert without sslmode: encrypted");
}

#[tokio::test]
async fn verify_full_checks_the_host_name_and_verify_ca_does_not() {
    let Some(s) = tls_server().await else { return };
    let db = s.pg.fresh_database().await;
    let name = db.rsplit('/').next().unwrap_or_default();
    // The certificate names 127.0.0.1, not localhost.
    let localhost = |mode: &str| {
        format!("postgresql://postgres@localhost:{}/{name}?sslmode={mode}&sslrootcert={}", s.pg.port(), s.ca.display())
    };
    for mode in ["verify-full", "require"] {
        let e = open_error(&localhost(mode)).await;
        assert!(e.contains("the server's certificate is not valid for the host name localhost"), "{mode}: {e}");
        assert!(e.contains("sslmode=verify-ca"), "the message says what else to do: {e}");
    }
    let store = PgStore::open(&localhost("verify-ca")).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(uses_tls(&store).await, "verify-ca: encrypted, the name not checked");
    let e = open_error(&with(&db, "sslmode=verify-ca&sslrootcert=")).await;
    assert!(e.contains("sslrootcert is empty"), "{e}");
    let store = PgStore::open(&with(&db, &format!("sslmode=verify-full&sslrootcert={}", s.ca.display())))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(uses_tls(&store).await, "verify-full at 127.0.0.1: the name matches");
}

#[tokio::test]
async fn a_certificate_from_an_untrusted_ca_is_refused() {
    let Some(s) = tls_server().await else { return };
    let db = s.pg.fresh_database().await;
    let e = open_error(&with(&db, &format!("sslmode=require&sslrootcert={}", s.other_ca.display()))).await;
    assert!(e.contains("the server's certificate is not trusted: it is not signed by a CA in sslrootcert"), "{e}");
    assert!(e.contains("client-other-ca.pem"), "the message names the file: {e}");
    assert!(!e.contains("BEGIN"), "no certificate in messages: {e}");
    // Without sslrootcert, require checks against the system's roots, which do not hold the test CA.
    let e = open_error(&with(&db, "sslmode=require")).await;
    assert!(
        e.contains("the server's certificate is not trusted: it is not signed by a CA this system trusts")
            || e.contains("no CA certificates found in this system's trust store"),
        "{e}"
    );
}

#[tokio::test]
async fn disable_connects_without_tls_and_prefer_with_it_unverified() {
    let Some(s) = tls_server().await else { return };
    let db = s.pg.fresh_database().await;
    let store = PgStore::open(&with(&db, "sslmode=disable")).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(!uses_tls(&store).await, "sslmode=disable: plain");
    // prefer (the default) takes the TLS the server offers, without checking its certificate (see tls.rs).
    for options in ["", "sslmode=prefer", "sslmode=allow"] {
        let store = PgStore::open(&with(&db, options)).await.unwrap_or_else(|e| panic!("{options}: {e}"));
        assert!(uses_tls(&store).await, "{options:?}: TLS, as the server offers it");
    }
}

#[tokio::test]
async fn scram_over_tls_binds_the_channel() {
    let Some(s) = tls_server().await else { return };
    let admin = s.pg.admin().await.unwrap();
    let name = format!("lookout_scram_{}", std::process::id());
    admin.batch_execute(&format!("CREATE DATABASE {name} OWNER {SCRAM_USER}")).await.unwrap();
    let url = |password: &str, options: &str| {
        format!("postgresql://{SCRAM_USER}:{password}@127.0.0.1:{}/{name}?{options}", s.pg.port())
    };
    let verified = format!("sslmode=verify-full&sslrootcert={}&channel_binding=require", s.ca.display());
    // channel_binding=require: tokio-postgres refuses SCRAM without -PLUS, and the server refuses a wrong hash.
    let store = PgStore::open(&url(SCRAM_PASSWORD, &verified)).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(uses_tls(&store).await);
    let store = PgStore::open(&url(SCRAM_PASSWORD, "channel_binding=require")).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(uses_tls(&store).await, "prefer: unverified, but bound to the channel");
    // The password is checked (pg_hba's scram line is in force, not `trust`), and it never reaches the message.
    let e = open_error(&url("wrong-password", &verified)).await;
    assert!(e.contains("password authentication failed"), "{e}");
    assert!(!e.contains("wrong-password") && !e.contains(SCRAM_PASSWORD), "{e}");
    // Plain is rejected for this login (the hba's `reject` line).
    let e = open_error(&url(SCRAM_PASSWORD, "sslmode=disable")).await;
    assert!(e.contains("rejects connection") || e.contains("no pg_hba.conf entry"), "{e}");
}

#[tokio::test]
async fn against_a_server_without_tls_require_fails_and_prefer_falls_back() {
    let Some(pg) = postgres_or_skip() else { return };
    let db = pg.fresh_database().await;
    // The CA does not matter: the server never gets as far as a certificate.
    let e = open_error(&with(&db, "sslmode=require")).await;
    assert!(e.contains("server does not support TLS"), "{e}");
    let store = PgStore::open(&db).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(!uses_tls(&store).await, "prefer: plain when the server has no TLS");
}

// --- The URL options, no server needed. ---

fn options(url: &str) -> Result<(String, TlsOptions), String> {
    let split = split_url(url)?;
    let parsed: tokio_postgres::Config = split.url.parse().map_err(|e| format!("tokio-postgres: {e}"))?;
    let tls = split.options(parsed.get_ssl_mode())?;
    Ok((split.url, tls))
}

#[test]
fn libpq_ssl_options_are_read_and_removed_from_the_url() {
    let system = |mode| TlsOptions { mode, roots: Roots::System };
    assert_eq!(options("postgresql://u@h/db").unwrap(), ("postgresql://u@h/db".into(), system(SslMode::Prefer)));
    assert_eq!(
        options("postgresql://u@h/db?sslmode=require&application_name=x").unwrap(),
        ("postgresql://u@h/db?application_name=x".into(), system(SslMode::VerifyFull))
    );
    assert_eq!(options("postgres://u@h/db?sslmode=verify-ca").unwrap().1, system(SslMode::VerifyCa));
    assert_eq!(options("postgresql://u@h/db?sslmode=disable").unwrap().1, system(SslMode::Disable));
    assert_eq!(options("postgresql://u@h/db?sslmode=allow").unwrap().1, system(SslMode::Prefer));
    let (url, tls) = options("postgresql://u@h/db?connect_timeout=3&sslrootcert=%2Fetc%2Fmy%20ca.pem").unwrap();
    assert_eq!(url, "postgresql://u@h/db?connect_timeout=3");
    assert_eq!(tls, TlsOptions { mode: SslMode::VerifyFull, roots: Roots::File("/etc/my ca.pem".into()) });
    assert_eq!(options("postgresql://u@h/db?sslrootcert=system").unwrap().1, system(SslMode::VerifyFull));
    // A `?` in the password is not the start of the options.
    let (url, tls) = options("postgresql://u:p?ss@h/db?sslmode=verify-full").unwrap();
    assert_eq!((url.as_str(), tls.mode), ("postgresql://u:p?ss@h/db", SslMode::VerifyFull));
    // The key=value form goes to tokio-postgres as it is; its require verifies too.
    let (url, tls) = options("host=h user=u sslmode=require").unwrap();
    assert_eq!((url.as_str(), tls), ("host=h user=u sslmode=require", system(SslMode::VerifyFull)));
    assert_eq!(system(SslMode::VerifyCa).client_mode(), ClientSslMode::Require);
    assert_eq!(system(SslMode::Prefer).client_mode(), ClientSslMode::Prefer);
    assert_eq!(system(SslMode::Disable).client_mode(), ClientSslMode::Disable);
}

#[test]
fn ssl_options_lookout_cannot_honour_are_refused_by_name() {
    let e = options("postgresql://u@h/db?sslmode=verify-all").unwrap_err();
    assert!(e.contains("sslmode=verify-all is not known") && e.contains("verify-full"), "{e}");
    let e = options("postgresql://u@h/db?sslcert=/c.pem&sslkey=/k.pem").unwrap_err();
    assert!(e.starts_with("sslcert: client certificates are not supported"), "{e}");
    let e = options("postgresql://u@h/db?sslcrl=/crl.pem").unwrap_err();
    assert!(e.starts_with("sslcrl: certificate revocation lists are not supported"), "{e}");
    let e = options("postgresql://u@h/db?sslmode=prefer&sslrootcert=/ca.pem").unwrap_err();
    assert!(
        e.contains("sslrootcert=/ca.pem asks for the server's certificate to be verified, which sslmode=prefer"),
        "{e}"
    );
    let e = options("postgresql://u@h/db?sslrootcert=system&sslmode=disable").unwrap_err();
    assert!(e.contains("sslmode=disable does not do"), "{e}");
}

#[test]
fn an_unusable_sslrootcert_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let connector = |path: &Path| {
        TlsOptions { mode: SslMode::VerifyFull, roots: Roots::File(path.to_path_buf()) }.connector().map(drop)
    };
    let missing = dir.path().join("missing.pem");
    let e = connector(&missing).unwrap_err();
    assert!(e.starts_with(&format!("cannot read sslrootcert {}: ", missing.display())), "{e}");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let e = connector(&empty).unwrap_err();
    assert!(e.contains("holds no certificate"), "{e}");
    let (ca, _, key) = make_pki("a CA").unwrap();
    let good = dir.path().join("ca.pem");
    std::fs::write(&good, &ca).unwrap();
    assert!(connector(&good).is_ok());
    // A key is not a certificate, and its text never appears in the message.
    let only_key = dir.path().join("key.pem");
    std::fs::write(&only_key, &key).unwrap();
    let e = connector(&only_key).unwrap_err();
    assert!(e.contains("holds no certificate") && !e.contains("PRIVATE KEY"), "{e}");
}

#[tokio::test]
async fn open_reports_a_bad_tls_option_as_a_connect_error() {
    // No server needed: the option is refused before any connection.
    let e = open_error("postgresql://lookout:hunter2@127.0.0.1:1/db?sslcert=/c.pem").await;
    assert!(
        e.starts_with(
            "cannot use the PostgreSQL store at postgresql://lookout:***@127.0.0.1:1/db?sslcert=/c.pem: sslcert:"
        ),
        "{e}"
    );
    assert!(!e.contains("hunter2"), "{e}");
}
