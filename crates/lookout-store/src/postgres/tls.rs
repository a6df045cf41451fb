//! TLS to PostgreSQL over rustls: the small adapter tokio-postgres needs (`MakeTlsConnect`, `TlsConnect`,
//! `TlsStream`) and libpq's `sslmode` / `sslrootcert` URL options, read here because tokio-postgres's own URL parser
//! knows only `disable`, `prefer` and `require` (and refuses `sslrootcert` as an unknown option).
//!
//! What each `sslmode` does, and why (the decision for issue 14):
//!
//! | `sslmode`            | TLS                              | server certificate checked                 |
//! |----------------------|----------------------------------|--------------------------------------------|
//! | `disable`            | never                            | —                                          |
//! | `prefer` (default), `allow` | if the server offers it, else plain | no                                |
//! | `require`            | always                           | chain **and** host name (as `verify-full`) |
//! | `verify-ca`          | always                           | chain only                                 |
//! | `verify-full`        | always                           | chain and host name                        |
//!
//! - `require` verifies, unlike libpq's. Someone who writes `require` asks for a protected connection, and TLS
//!   without a checked certificate protects from nobody who can sit in the middle. Secure by default: a server
//!   with a private CA is one `sslrootcert=PATH` away; there is deliberately no "TLS but trust anyone" mode.
//! - `prefer` does not verify, as libpq's does not: anyone in the middle can answer "no TLS" and get the plain
//!   connection anyway, so verifying there would buy no security and would break the Debian default (a server
//!   with a self-signed "snakeoil" certificate and `ssl = on`). It still keeps passive listeners out, and with
//!   SCRAM passwords the channel binding (below) stops a middle man from replaying the authentication.
//! - `allow` (libpq: plain first, TLS if the server insists) is taken as `prefer`: tokio-postgres cannot try
//!   plain first, and TLS first is the more private of the two.
//! - `sslrootcert=PATH`: the CA certificates (PEM) to verify against instead of the system's trust store
//!   (`rustls-native-certs`); `sslrootcert=system` names the system's store as in libpq 16. Given without
//!   `sslmode`, it means `verify-full` (libpq 16 does the same for `system`); with `disable`, `allow` or `prefer`
//!   it is refused, since it would silently verify nothing. Unlike libpq, `~/.postgresql/root.crt` is not read:
//!   a service's trust should be in its configuration, not in a home directory.
//! - Client certificates and revocation lists (`sslcert`, `sslkey`, `sslpassword`, `sslcrl`, `sslcrldir`) are
//!   refused with a clear message rather than ignored: ignoring a security option is worse than refusing it.
//! - Channel binding: `tls-server-end-point` (RFC 5929), so SCRAM-SHA-256-PLUS works and the URL's
//!   `channel_binding=require` can be honoured.
//!
//! Only the `postgresql://` URL form is rewritten (the form `[store] url` accepts); a `key=value` string goes to
//! tokio-postgres as it is, its `require` verifying against the system's roots.
//! Certificates and keys are never logged; errors say which check failed and what to change.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::Socket;
use tokio_postgres::config::SslMode as ClientSslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tls_tests;

/// libpq's `sslmode`, as lookout carries it out (see the module's table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SslMode {
    Disable,
    /// TLS when the server offers it, the certificate not checked (`prefer`, `allow`).
    Prefer,
    /// TLS required, the chain checked, not the host name.
    VerifyCa,
    /// TLS required, chain and host name checked (`require`, `verify-full`).
    VerifyFull,
}

/// Where the CA certificates to verify against come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Roots {
    /// The system's trust store (`rustls-native-certs`).
    System,
    /// A PEM file of CA certificates (`sslrootcert=PATH`).
    File(PathBuf),
}

impl std::fmt::Display for Roots {
    /// What the certificate must be signed by, for messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Roots::System => f.write_str("a CA this system trusts"),
            Roots::File(path) => write!(f, "a CA in sslrootcert {}", path.display()),
        }
    }
}

/// A URL with lookout's TLS options taken out: `url` is what tokio-postgres parses; `mode` and `roots` are what
/// the URL said, if it said anything.
#[derive(Debug)]
pub(crate) struct SplitUrl {
    pub url: String,
    mode: Option<SslMode>,
    roots: Option<Roots>,
}

/// What a connection does about TLS, settled from the URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TlsOptions {
    pub mode: SslMode,
    pub roots: Roots,
}

/// Takes `sslmode` and `sslrootcert` out of a `postgresql://` URL's options (tokio-postgres would refuse
/// `verify-ca`, `verify-full` and `sslrootcert`), and refuses the TLS options lookout does not carry out.
pub(crate) fn split_url(url: &str) -> Result<SplitUrl, String> {
    let Some(prefix) = ["postgresql://", "postgres://"].into_iter().find(|p| url.starts_with(p)) else {
        return Ok(SplitUrl { url: url.to_string(), mode: None, roots: None });
    };
    // As tokio-postgres reads it: the credentials end at the first `@` (a password may hold a `?`), the options
    // start at the first `?` after them.
    let rest = &url[prefix.len()..];
    let after_credentials = rest.find('@').map_or(0, |at| at + 1);
    let Some(q) = rest[after_credentials..].find('?').map(|q| prefix.len() + after_credentials + q) else {
        return Ok(SplitUrl { url: url.to_string(), mode: None, roots: None });
    };
    let (base, query) = (&url[..q], &url[q + 1..]);
    let (mut mode, mut roots, mut kept) = (None, None, Vec::new());
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match percent_decode(key)?.as_str() {
            "sslmode" => mode = Some(parse_mode(&percent_decode(value)?)?),
            "sslrootcert" => {
                let value = percent_decode(value)?;
                roots = Some(match value.as_str() {
                    "" => return Err("sslrootcert is empty: give the path of the CA certificates (PEM)".into()),
                    "system" => Roots::System,
                    path => Roots::File(PathBuf::from(path)),
                });
            }
            key @ ("sslcert" | "sslkey" | "sslpassword") => {
                return Err(format!(
                    "{key}: client certificates are not supported by lookout's PostgreSQL store yet; authenticate \
                     with a password (SCRAM) over TLS instead"
                ));
            }
            key @ ("sslcrl" | "sslcrldir") => {
                return Err(format!(
                    "{key}: certificate revocation lists are not supported by lookout's PostgreSQL store"
                ));
            }
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
    Ok(SplitUrl { url, mode, roots })
}

fn parse_mode(value: &str) -> Result<SslMode, String> {
    Ok(match value {
        "disable" => SslMode::Disable,
        "allow" | "prefer" => SslMode::Prefer,
        "require" | "verify-full" => SslMode::VerifyFull,
        "verify-ca" => SslMode::VerifyCa,
        other => {
            return Err(format!(
                "sslmode={other} is not known: use disable, prefer, require, verify-ca or verify-full"
            ));
        }
    })
}

/// `%XX` escapes of a URL option (the `+` stays: tokio-postgres does not read it as a space either).
fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| format!("the URL option {s:?} is not UTF-8 once decoded"))
}

impl SplitUrl {
    /// The TLS options, given the mode tokio-postgres parsed from what was left (the URL form never leaves an
    /// `sslmode`, so that is its default, `prefer`; a `key=value` string may carry one).
    pub(crate) fn options(&self, parsed: ClientSslMode) -> Result<TlsOptions, String> {
        let from_client = match parsed {
            ClientSslMode::Disable => SslMode::Disable,
            ClientSslMode::Require => SslMode::VerifyFull,
            _ => SslMode::Prefer,
        };
        let mode = match (self.mode, &self.roots) {
            (Some(mode), _) => mode,
            // A CA given and no mode: the CA is there to be checked against.
            (None, Some(_)) => SslMode::VerifyFull,
            (None, None) => from_client,
        };
        if let (SslMode::Disable | SslMode::Prefer, Some(roots)) = (mode, &self.roots) {
            let name = match roots {
                Roots::System => "system".to_string(),
                Roots::File(path) => path.display().to_string(),
            };
            return Err(format!(
                "sslrootcert={name} asks for the server's certificate to be verified, which sslmode={} does not do: \
                 use sslmode=verify-full (or require, or verify-ca)",
                if mode == SslMode::Disable { "disable" } else { "prefer" }
            ));
        }
        Ok(TlsOptions { mode, roots: self.roots.clone().unwrap_or(Roots::System) })
    }
}

impl TlsOptions {
    /// The mode tokio-postgres negotiates with: whether it asks for TLS, and whether it may do without.
    pub(crate) fn client_mode(&self) -> ClientSslMode {
        match self.mode {
            SslMode::Disable => ClientSslMode::Disable,
            SslMode::Prefer => ClientSslMode::Prefer,
            SslMode::VerifyCa | SslMode::VerifyFull => ClientSslMode::Require,
        }
    }

    /// The connector for the pool: one rustls configuration (the roots loaded once) shared by every connection.
    pub(crate) fn connector(&self) -> Result<MakeRustlsConnect, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot set up TLS: {e}"))?;
        let verifier: Arc<dyn ServerCertVerifier> = match self.mode {
            // Disable never reaches a handshake; Prefer does not check (see the module's doc).
            // `prefer`: any certificate, the handshake's signatures still checked (the peer holds the key it presents,
            // which the channel binding then ties a SCRAM login to).
            SslMode::Disable | SslMode::Prefer => Arc::new(lookout_http::tls::AcceptAny(provider)),
            SslMode::VerifyCa | SslMode::VerifyFull => {
                let roots = load_roots(&self.roots)?;
                let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| format!("cannot verify certificates against {}: {e}", self.roots))?;
                Arc::new(Verified { inner, check_name: self.mode == SslMode::VerifyFull })
            }
        };
        let mut config = builder.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth();
        // What libpq 17 sends, and what PostgreSQL 17 requires for `sslnegotiation=direct`; older servers ignore it.
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(MakeRustlsConnect { config: Arc::new(config), roots: Arc::new(self.roots.clone()) })
    }
}

/// The CA certificates to verify against. Never logs a certificate.
fn load_roots(roots: &Roots) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::System => {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::warn!(error = %e, "Could not load some system CA certificates (for the PostgreSQL store).");
            }
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err("no CA certificates found in this system's trust store: install ca-certificates, or give \
                            the server's CA with sslrootcert=PATH"
                    .into());
            }
        }
        Roots::File(path) => {
            let pem = std::fs::read(path).map_err(|e| format!("cannot read sslrootcert {}: {e}", path.display()))?;
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("sslrootcert {} is not a PEM file of certificates: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "sslrootcert {} holds no certificate (no -----BEGIN CERTIFICATE----- block)",
                    path.display()
                ));
            }
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!("none of the certificates in sslrootcert {} can serve as a CA", path.display()));
            }
        }
    }
    Ok(store)
}

/// Checks the chain against the roots; the host name too when `check_name` (`verify-full`, `require`). The
/// chain is checked before the name, so a name error means the chain was good: `verify-ca` can let it pass.
#[derive(Debug)]
struct Verified {
    inner: Arc<WebPkiServerVerifier>,
    check_name: bool,
}

impl ServerCertVerifier for Verified {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// tokio-postgres's TLS connector factory: one per pool, cloned into it.
#[derive(Clone)]
pub(crate) struct MakeRustlsConnect {
    config: Arc<ClientConfig>,
    roots: Arc<Roots>,
}

impl std::fmt::Debug for MakeRustlsConnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MakeRustlsConnect(verify against {})", self.roots)
    }
}

impl MakeTlsConnect<Socket> for MakeRustlsConnect {
    type Stream = RustlsStream;
    type TlsConnect = RustlsConnect;
    type Error = TlsError;

    /// Never fails here: tokio-postgres calls it for unix sockets too (with an empty name), where no handshake
    /// follows; a name TLS cannot verify fails in `connect`, only if a handshake is attempted.
    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, TlsError> {
        let name = ServerName::try_from(domain.to_string())
            .map_err(|_| format!("{domain:?} is not a host name or IP address a TLS certificate can be checked for"));
        Ok(RustlsConnect { config: self.config.clone(), roots: self.roots.clone(), host: domain.to_string(), name })
    }
}

/// One handshake.
pub(crate) struct RustlsConnect {
    config: Arc<ClientConfig>,
    roots: Arc<Roots>,
    host: String,
    name: Result<ServerName<'static>, String>,
}

impl TlsConnect<Socket> for RustlsConnect {
    type Stream = RustlsStream;
    type Error = TlsError;
    type Future = Pin<Box<dyn Future<Output = Result<RustlsStream, TlsError>> + Send>>;

    fn connect(self, stream: Socket) -> Self::Future {
        Box::pin(async move {
            let name = self.name.map_err(TlsError)?;
            let connector = tokio_rustls::TlsConnector::from(self.config);
            match connector.connect(name, stream).await {
                Ok(tls) => Ok(RustlsStream(Box::new(tls))),
                Err(e) => Err(TlsError(explain(&e, &self.roots, &self.host))),
            }
        })
    }
}

/// A failed handshake in words that say what to change.
fn explain(e: &std::io::Error, roots: &Roots, host: &str) -> String {
    let Some(tls) = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) else {
        return format!("TLS handshake failed: {e}");
    };
    match tls {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => format!(
                "the server's certificate is not trusted: it is not signed by {roots}; give the CA that signed it \
                 with sslrootcert=PATH"
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => format!(
                "the server's certificate is not valid for the host name {host} (sslmode=require and verify-full \
                 check it): connect by a name the certificate lists, or use sslmode=verify-ca to check only who \
                 signed it"
            ),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the server's certificate has expired".into()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "the server's certificate is not valid yet (check this machine's clock)".into()
            }
            other => format!("the server's certificate is not trusted: {other:?}"),
        },
        other => format!("TLS handshake failed: {other}"),
    }
}

/// The handshake's error, already in words (see [`explain`]).
#[derive(Debug)]
pub(crate) struct TlsError(String);

impl From<String> for TlsError {
    fn from(s: String) -> TlsError {
        TlsError(s)
    }
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

/// A TLS connection to the server (boxed: the rustls state is large, and the pool holds many connections).
pub(crate) struct RustlsStream(Box<tokio_rustls::client::TlsStream<Socket>>);

impl TlsStream for RustlsStream {
    /// `tls-server-end-point` (RFC 5929 §4.1): a hash of the server's certificate, with the hash of its signature
    /// algorithm (SHA-256 for MD5 and SHA-1). None for algorithms without one hash (Ed25519, RSA-PSS), where
    /// PostgreSQL cannot bind either; SCRAM then runs without binding unless the URL requires it.
    fn channel_binding(&self) -> ChannelBinding {
        let (_, conn) = self.0.get_ref();
        conn.peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|leaf| end_point_hash(leaf.as_ref()))
            .map_or_else(ChannelBinding::none, ChannelBinding::tls_server_end_point)
    }
}

fn end_point_hash(der: &[u8]) -> Option<Vec<u8>> {
    use ring::digest::{SHA256, SHA384, SHA512, digest};
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let algorithm = match cert.signature_algorithm.algorithm.to_id_string().as_str() {
        // md5WithRSA, sha1WithRSA, sha256WithRSA, ecdsa-with-SHA1, ecdsa-with-SHA256
        "1.2.840.113549.1.1.4"
        | "1.2.840.113549.1.1.5"
        | "1.2.840.113549.1.1.11"
        | "1.2.840.10045.4.1"
        | "1.2.840.10045.4.3.2" => &SHA256,
        // sha384WithRSA, ecdsa-with-SHA384
        "1.2.840.113549.1.1.12" | "1.2.840.10045.4.3.3" => &SHA384,
        // sha512WithRSA, ecdsa-with-SHA512
        "1.2.840.113549.1.1.13" | "1.2.840.10045.4.3.4" => &SHA512,
        _ => return None,
    };
    Some(digest(algorithm, der).as_ref().to_vec())
}

impl AsyncRead for RustlsStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for RustlsStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}
