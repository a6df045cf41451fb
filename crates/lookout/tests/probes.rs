//! Probes against real servers on 127.0.0.1: every failure mode is a result, never a crash.

use std::time::Duration;

use lookout_core::ProbeErrorKind;

use crate::support::probe_once as probe;
use crate::support::{Target, TlsTarget, free_port, raw_server};

#[tokio::test]
async fn http_200_with_phase_timings() {
    let site = Target::start().await;
    let (obs, v) = probe(&format!(
        "url = \"{}\"\nconditions = [\"[STATUS] == 200\", \"[BODY] contains \\\"hello\\\"\"]",
        site.url("/")
    ))
    .await;
    assert!(v.ok, "{v:?}");
    assert_eq!(obs.status, Some(200));
    assert!(obs.connected);
    assert_eq!(obs.error, None);
    assert_eq!(obs.body, "<h1>hello</h1>");
    assert_eq!(obs.header("content-type"), Some("text/html"));
    assert_eq!(obs.timings.dns_ms, None, "an IP literal needs no DNS");
    let connect = obs.timings.connect_ms.unwrap();
    let first_byte = obs.timings.first_byte_ms.unwrap();
    assert!(connect >= 0.0 && first_byte >= 0.0);
    assert!(obs.timings.total_ms >= connect + first_byte, "{:?}", obs.timings);
    assert_eq!(obs.timings.tls_ms, None);
}

#[tokio::test]
async fn localhost_is_resolved_and_timed() {
    let site = Target::start().await;
    let (obs, v) = probe(&format!("url = \"http://localhost:{}/\"", site.addr.port())).await;
    assert!(obs.timings.dns_ms.is_some(), "{obs:?}");
    // localhost may resolve to ::1 first where the server only listens on 127.0.0.1: the probe tries each.
    assert!(v.ok, "{v:?}");
}

#[tokio::test]
async fn http_500_fails_the_status_condition() {
    let site = Target::start().await;
    site.set(500, "");
    let (obs, v) = probe(&format!("url = \"{}\"\nconditions = [\"[STATUS] == 200\"]", site.url("/"))).await;
    assert_eq!(obs.status, Some(500));
    assert!(!v.ok);
    assert_eq!(v.failed_conditions, vec!["[STATUS] (500) == 200"]);
    assert_eq!(v.error, None);

    let (_, default) = probe(&format!("url = \"{}\"", site.url("/"))).await;
    assert_eq!(default.failed_conditions, vec!["[STATUS] (500) < 400"], "the default condition catches 5xx");
}

#[tokio::test]
async fn php_fatal_error_served_with_200_is_caught_by_a_body_condition() {
    let site = Target::start().await;
    site.set(
        200,
        "<br />\n<b>Fatal error</b>:  Uncaught Error: Failed opening required '/var/www/html/inc/settings.phpp' in /var/www/html/index.php:2",
    );
    let (obs, v) = probe(&format!(
        "url = \"{}\"\nconditions = [\"[STATUS] == 200\", \"[BODY] not contains \\\"Fatal error\\\"\"]",
        site.url("/")
    ))
    .await;
    assert_eq!(obs.status, Some(200));
    assert!(!v.ok);
    assert_eq!(v.failed_conditions.len(), 1, "{v:?}");
    assert!(v.failed_conditions[0].starts_with("[BODY] (<br /> <b>Fatal error</b>:"), "{v:?}");
}

#[tokio::test]
async fn slow_server_times_out_as_a_result() {
    let site = Target::start().await;
    site.set_delay(Duration::from_secs(5));
    let started = std::time::Instant::now();
    let (obs, v) = probe(&format!("url = \"{}\"\ntimeout = \"300ms\"", site.url("/"))).await;
    let err = obs.error.clone().unwrap();
    assert_eq!(err.kind, ProbeErrorKind::Timeout, "{err:?}");
    assert_eq!(err.message, "timed out during waiting for the response");
    assert!(obs.connected);
    assert!(obs.timings.total_ms >= 290.0 && started.elapsed() < Duration::from_secs(3), "{:?}", obs.timings);
    assert!(!v.ok);
    assert_eq!(v.reason().unwrap().split(';').next().unwrap(), "timeout: timed out during waiting for the response");
}

#[tokio::test]
async fn refused_port_is_a_result() {
    let port = free_port().await;
    let (obs, v) = probe(&format!("url = \"http://127.0.0.1:{port}/\"")).await;
    let err = obs.error.clone().unwrap();
    assert_eq!(err.kind, ProbeErrorKind::Refused, "{err:?}");
    assert!(!obs.connected);
    assert_eq!(obs.status, None);
    assert!(!v.ok);
    assert!(v.failed_conditions[0].contains("<no response>"), "{v:?}");

    let (tcp, v) = probe(&format!("tcp = \"127.0.0.1:{port}\"")).await;
    assert_eq!(tcp.error.unwrap().kind, ProbeErrorKind::Refused);
    assert!(!v.ok);
    let (_, closed) = probe(&format!("tcp = \"127.0.0.1:{port}\"\nconditions = [\"[CONNECTED] == false\"]")).await;
    assert!(closed.ok, "asserting a port is closed passes when it is");
}

#[tokio::test]
async fn tcp_connect_to_a_listening_port() {
    let site = Target::start().await;
    let (obs, v) = probe(&format!("tcp = \"{}\"", site.addr)).await;
    assert!(v.ok, "{v:?}");
    assert!(obs.connected);
    assert!(obs.timings.connect_ms.is_some());
}

#[tokio::test]
async fn malformed_http_response_is_a_protocol_error() {
    let (addr, task) = raw_server(b"THIS IS NOT HTTP\r\n\r\n").await;
    let (obs, v) = probe(&format!("url = \"http://{addr}/\"")).await;
    let err = obs.error.clone().unwrap();
    assert_eq!(err.kind, ProbeErrorKind::Protocol, "{err:?}");
    assert!(!v.ok);
    let (addr2, task2) = raw_server(b"").await;
    let (obs, _) = probe(&format!("url = \"http://{addr2}/\"")).await;
    assert!(matches!(obs.error.unwrap().kind, ProbeErrorKind::Protocol | ProbeErrorKind::Io));
    task.abort();
    task2.abort();
}

#[tokio::test]
async fn self_signed_certificate_expiring_in_two_days() {
    let tls = TlsTarget::start(time::Duration::days(2)).await;
    let url = format!("https://127.0.0.1:{}/", tls.addr.port());

    // Verification on: the self-signed certificate is refused, as a result.
    let (obs, v) = probe(&format!("url = \"{url}\"")).await;
    let err = obs.error.clone().unwrap();
    assert_eq!(err.kind, ProbeErrorKind::Tls, "{err:?}");
    assert!(err.message.contains("certificate"), "{err:?}");
    assert!(!v.ok);

    // Verification off: the page loads and the expiry is known and judged.
    let (obs, v) = probe(&format!(
        "url = \"{url}\"\nverify_tls = false\nconditions = [\"[STATUS] == 200\", \"[CERTIFICATE_EXPIRATION] > 72h\"]"
    ))
    .await;
    assert_eq!(obs.status, Some(200), "{obs:?}");
    assert_eq!(obs.body, "secure");
    assert!(obs.timings.tls_ms.is_some());
    let not_after = obs.cert_not_after.unwrap();
    assert_eq!(not_after.as_millis(), tls.not_after.unix_timestamp() * 1000);
    assert_eq!(v.failed_conditions.len(), 1);
    assert!(v.failed_conditions[0].starts_with("[CERTIFICATE_EXPIRATION] ("), "{v:?}");
    let (_, v) =
        probe(&format!("url = \"{url}\"\nverify_tls = false\nconditions = [\"[CERTIFICATE_EXPIRATION] > 24h\"]")).await;
    assert!(v.ok, "{v:?}");

    // The dedicated TLS check reads the same certificate.
    let (obs, v) = probe(&format!(
        "tls = \"127.0.0.1:{}\"\nverify_tls = false\nconditions = [\"[CERTIFICATE_EXPIRATION] > 72h\"]",
        tls.addr.port()
    ))
    .await;
    assert!(obs.connected);
    assert_eq!(obs.cert_not_after, Some(not_after));
    assert!(!v.ok);
}

#[tokio::test]
async fn redirects_on_and_off() {
    let site = Target::start().await;
    let (obs, _) = probe(&format!("url = \"{}\"", site.url("/redirect"))).await;
    assert_eq!((obs.status, obs.body.as_str()), (Some(200), "final"));
    let (obs, _) = probe(&format!("url = \"{}\"\nfollow_redirects = false", site.url("/redirect"))).await;
    assert_eq!(obs.status, Some(302));
    assert_eq!(obs.header("location"), Some("/final"));
}

#[tokio::test]
async fn method_headers_and_body_are_sent() {
    let site = Target::start().await;
    let (obs, v) = probe(&format!(
        "url = \"{}\"\nmethod = \"post\"\nheaders = {{ \"X-Probe\" = \"yes\" }}\nbody = \"ping\"\nconditions = [\"[BODY].method == POST\", \"[BODY].headers.x-probe == yes\", \"[BODY].body == ping\", \"[BODY].headers.user-agent == pat(lookout/*)\"]",
        site.url("/echo")
    ))
    .await;
    assert!(v.ok, "{v:?} {}", obs.body);
}

/// Probing 127.0.0.1 as a virtual host: the configured Host replaces the URL's (two would be a 400).
#[tokio::test]
async fn a_configured_host_header_replaces_the_urls() {
    let site = Target::start().await;
    let (obs, v) = probe(&format!(
        "url = \"{}\"\nheaders = {{ Host = \"shop.example\" }}\nconditions = [\"[BODY].headers.host == shop.example\", \"[BODY].host_headers == 1\"]",
        site.url("/echo")
    ))
    .await;
    assert!(v.ok, "{v:?} {}", obs.body);
}

#[tokio::test]
async fn large_bodies_are_capped() {
    let site = Target::start().await;
    let (obs, _) = probe(&format!("url = \"{}\"", site.url("/big"))).await;
    assert_eq!(obs.status, Some(200));
    assert!(obs.body_truncated);
    assert_eq!(obs.body.len(), lookout_http::MAX_BODY);
}
