//! TLS client side: configurations (verifying against the system roots, or not verifying at all), the handshake
//! with timing, and the leaf certificate's `notAfter`.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use lookout_core::{Observation, ProbeError, ProbeErrorKind, Timestamp};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio::time::{Instant as TokioInstant, timeout_at};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::net;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The shared client configuration: `verify` checks the chain against the system's trust store. ALPN offers
/// `http/1.1` only.
pub fn client_config(verify: bool) -> Arc<ClientConfig> {
    client_config_alpn(verify, false)
}

/// As [`client_config`], offering `h2` before `http/1.1` when `h2` is set: the server picks, so a server without
/// HTTP/2 still gets HTTP/1.1. Four configurations at most, each built once (loading the system roots is slow).
pub fn client_config_alpn(verify: bool, h2: bool) -> Arc<ClientConfig> {
    static CONFIGS: [OnceLock<Arc<ClientConfig>>; 4] = [const { OnceLock::new() }; 4];
    let cell = &CONFIGS[usize::from(verify) * 2 + usize::from(h2)];
    cell.get_or_init(|| Arc::new(build_config(verify, h2))).clone()
}

fn build_config(verify: bool, h2: bool) -> ClientConfig {
    let builder = match ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions() {
        Ok(b) => b,
        Err(e) => unreachable!("ring supports the default TLS versions: {e}"),
    };
    let mut config = if verify {
        let mut roots = RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::warn!(error = %e, "Could not load some system CA certificates.");
        }
        let (added, _ignored) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            tracing::warn!(
                "No system CA certificates found: every verified TLS check will fail. Install ca-certificates."
            );
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(AcceptAny(provider()))).with_no_client_auth()
    };
    config.alpn_protocols = if h2 { vec![b"h2".to_vec(), b"http/1.1".to_vec()] } else { vec![b"http/1.1".to_vec()] };
    config
}

/// Accepts any certificate (for `verify_tls = false`, and PostgreSQL's `sslmode=prefer` in lookout-store) while
/// still checking handshake signatures, so the connection is at least with the holder of the presented key.
#[derive(Debug)]
pub struct AcceptAny(pub Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Performs the TLS handshake on `stream`, recording `tls_ms` and the leaf certificate's `notAfter`.
pub async fn handshake(
    stream: TcpStream,
    host: &str,
    verify: bool,
    deadline: TokioInstant,
    obs: &mut Observation,
) -> Result<TlsStream<TcpStream>, ProbeError> {
    handshake_alpn(stream, host, verify, false, deadline, obs).await
}

/// As [`handshake`], offering HTTP/2 by ALPN when `h2` is set; `negotiated_h2` tells what the server chose.
pub async fn handshake_alpn(
    stream: TcpStream,
    host: &str,
    verify: bool,
    h2: bool,
    deadline: TokioInstant,
    obs: &mut Observation,
) -> Result<TlsStream<TcpStream>, ProbeError> {
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| net::error(ProbeErrorKind::Config, format!("{host:?} is not a valid TLS server name")))?;
    let start = Instant::now();
    let connector = TlsConnector::from(client_config_alpn(verify, h2));
    let result = timeout_at(deadline, connector.connect(name, stream)).await;
    obs.timings.tls_ms = Some(*obs.timings.tls_ms.get_or_insert(0.0) + net::ms_since(start));
    let tls = match result {
        Err(_) => return Err(net::timed_out("TLS handshake")),
        Ok(Err(e)) => {
            return Err(net::error(ProbeErrorKind::Tls, format!("TLS handshake with {host}: {e}")));
        }
        Ok(Ok(tls)) => tls,
    };
    obs.cert_not_after =
        tls.get_ref().1.peer_certificates().and_then(|chain| chain.first()).and_then(|leaf| not_after(leaf.as_ref()));
    Ok(tls)
}

/// Whether the server chose HTTP/2 in the handshake.
pub fn negotiated_h2(tls: &TlsStream<TcpStream>) -> bool {
    tls.get_ref().1.alpn_protocol() == Some(b"h2")
}

/// `notAfter` of a DER certificate.
pub fn not_after(der: &[u8]) -> Option<Timestamp> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(Timestamp::from_millis(cert.validity().not_after.timestamp().saturating_mul(1000)))
}
