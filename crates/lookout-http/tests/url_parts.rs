//! What a URL's parts turn into on the wire, seen by a real receiver on 127.0.0.1: userinfo becomes
//! `Authorization: Basic` and never part of `Host`, a configured Authorization header wins, a port out of range is
//! an error rather than port 80, and credentials do not follow a redirect to another origin.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use lookout_core::ProbeErrorKind;
use lookout_http::{HttpRequest, fetch};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Accepts connections and reports each request head (lower-cased header names); answers `response`.
async fn receiver(response: String) -> (u16, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    });
    (port, rx)
}

const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";

fn header<'a>(head: &'a str, name: &str) -> Vec<&'a str> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect()
}

#[tokio::test]
async fn userinfo_is_sent_as_basic_auth_and_never_in_host() {
    let (port, mut heads) = receiver(OK.into()).await;
    let url = format!("http://admin:hunter2@127.0.0.1:{port}/health").parse().unwrap();
    let obs = fetch(&HttpRequest::get(url, Duration::from_secs(5))).await;
    assert_eq!((obs.status, obs.error.as_ref().map(|e| e.to_string())), (Some(200), None));
    let head = heads.recv().await.unwrap();
    assert_eq!(header(&head, "host"), vec![format!("127.0.0.1:{port}")], "{head}");
    // base64("admin:hunter2")
    assert_eq!(header(&head, "authorization"), vec!["Basic YWRtaW46aHVudGVyMg=="], "{head}");
    assert!(!head.contains("hunter2"), "{head}");
}

#[tokio::test]
async fn userinfo_is_percent_decoded() {
    let (port, mut heads) = receiver(OK.into()).await;
    let url = format!("http://us%20er:p%40ss%3Aw@127.0.0.1:{port}/").parse().unwrap();
    fetch(&HttpRequest::get(url, Duration::from_secs(5))).await;
    let head = heads.recv().await.unwrap();
    // base64("us er:p@ss:w")
    assert_eq!(header(&head, "authorization"), vec!["Basic dXMgZXI6cEBzczp3"], "{head}");
    assert_eq!(header(&head, "host"), vec![format!("127.0.0.1:{port}")]);
}

#[tokio::test]
async fn a_configured_authorization_header_wins_over_userinfo() {
    let (port, mut heads) = receiver(OK.into()).await;
    let url = format!("http://admin:hunter2@127.0.0.1:{port}/").parse().unwrap();
    let mut req = HttpRequest::get(url, Duration::from_secs(5));
    req.headers.push(("Authorization".into(), "Bearer abc".into()));
    fetch(&req).await;
    let head = heads.recv().await.unwrap();
    assert_eq!(header(&head, "authorization"), vec!["Bearer abc"], "{head}");
}

#[tokio::test]
async fn a_port_out_of_range_is_an_error_not_port_80() {
    for port in ["80800", "65536", "99999", "0"] {
        let url = format!("http://127.0.0.1:{port}/").parse().unwrap();
        let obs = fetch(&HttpRequest::get(url, Duration::from_secs(2))).await;
        let e = obs.error.expect("an error");
        assert_eq!(e.kind, ProbeErrorKind::Config, "{port}: {e}");
        assert!(e.message.contains(port), "{e}");
        assert!(!obs.connected);
    }
}

#[tokio::test]
async fn credentials_do_not_follow_a_redirect_to_another_origin() {
    let (other, mut other_heads) = receiver(OK.into()).await;
    let redirect = format!(
        "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:{other}/landing\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
    let (first, mut first_heads) = receiver(redirect).await;
    let url = format!("http://admin:hunter2@127.0.0.1:{first}/").parse().unwrap();
    let mut req = HttpRequest::get(url, Duration::from_secs(5));
    req.headers.push(("X-Api-Key".into(), "k".into()));
    let obs = fetch(&req).await;
    assert_eq!(obs.status, Some(200));
    let first_head = first_heads.recv().await.unwrap();
    assert_eq!(header(&first_head, "authorization").len(), 1, "{first_head}");
    let second = other_heads.recv().await.unwrap();
    assert!(header(&second, "authorization").is_empty(), "{second}");
    assert_eq!(header(&second, "x-api-key"), vec!["k"]);
}
