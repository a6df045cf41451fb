//! A target whose URL carries credentials (`http://admin:hunter2@host/`) is probed with `Authorization: Basic`
//! and a clean `Host` header, against a real receiver on 127.0.0.1 that answers 401 without them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use lookout_config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

async fn protected_site(expected: &'static str) -> (u16, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let ok = header(&head, "authorization") == vec![expected];
            let response = if ok {
                "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
            } else {
                "HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Basic\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            };
            let _ = tx.send(head);
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    });
    (port, rx)
}

fn header<'a>(head: &'a str, name: &str) -> Vec<&'a str> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect()
}

#[tokio::test]
async fn a_target_with_userinfo_authenticates_with_basic_and_keeps_host_clean() {
    // base64("admin:hunter2")
    let (port, mut heads) = protected_site("Basic YWRtaW46aHVudGVyMg==").await;
    let text = format!(
        "[[target]]\nname = \"site\"\nurl = \"http://admin:hunter2@127.0.0.1:{port}/health\"\nconditions = [\"[STATUS] == 200\"]\n"
    );
    let cfg = Config::parse(&text, Path::new("lookout.toml"), &|_| None).unwrap();
    let obs = lookout_probe::probe(&cfg.targets[0]).await;
    let head = heads.recv().await.unwrap();
    assert_eq!(obs.status, Some(200), "{head}");
    assert_eq!(header(&head, "host"), vec![format!("127.0.0.1:{port}")], "{head}");
    assert!(!head.contains("hunter2"), "{head}");
    assert!(format!("{:?}", cfg.targets[0]).contains("admin:***@"), "Debug of the target is redacted");
    assert!(!format!("{:?}", cfg.targets[0]).contains("hunter2"));
}
