//! An incident that stays open while hundreds of newer ones open and resolve must still show: the status page's
//! headline and the dashboard's list ask the store for the open ones, not for the newest.

use std::sync::Arc;

use lookout_core::{Timestamp, Transition, TransitionKind};
use lookout_store::{AnyStore, Record, Store};
use tower::Service;

use crate::{WebState, router};

/// A router over a store where group "shop"'s incident opened an hour ago and is still open, and `newer`
/// incidents of other groups (not on any page) opened and resolved after it.
async fn an_old_open_incident_behind(newer: i64) -> axum::Router {
    let text = "[[target]]\nname = \"site\"\nurl = \"http://127.0.0.1:1/\"\ngroup = \"shop\"\n";
    let config = lookout_config::Config::parse(text, &std::env::temp_dir().join("lookout.toml"), &|_| None)
        .expect("the test config parses");
    let store = Arc::new(AnyStore::in_memory().expect("an in-memory store"));
    let mut book = lookout_engine::IncidentBook::default();
    let t0 = Timestamp::now().as_millis() - 3_600_000;
    let mut record = async |group: &str, target: &str, kind, at: i64| {
        let t = Transition {
            target: target.into(),
            kind,
            at: Timestamp(at),
            alert_id: Some(format!("{target}@1")),
            failing_since: Some(Timestamp(at)),
            reasons: vec![],
            consecutive: 1,
            diagnosis: None,
        };
        let change = book.on_transition(group, &t).expect("a change");
        store.record(Record { incidents: vec![change], ..Record::default() }).await.expect("recorded");
    };
    record("shop", "site", TransitionKind::Firing, t0).await;
    for n in 0..newer {
        let group = format!("other-{n}");
        record(&group, "x", TransitionKind::Firing, t0 + 1000 + n).await;
        record(&group, "x", TransitionKind::Resolved, t0 + 2000 + n).await;
    }
    let newest = store.incidents(newer as usize).await.expect("incidents");
    assert!(newest.iter().all(|i| i.group != "shop"), "the open one is behind the newest {newer}");
    router(WebState {
        store,
        config: Arc::new(config),
        metrics: Arc::new(lookout_app::metrics::Metrics::new()),
        events: None,
        health: Default::default(),
        reload: None,
    })
}

async fn page(app: &mut axum::Router, path: &str) -> String {
    let request = axum::http::Request::builder()
        .uri(path)
        .header(axum::http::header::HOST, "127.0.0.1:9898")
        .body(axum::body::Body::empty())
        .expect("a request");
    let answer = match app.call(request).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    assert_eq!(answer.status(), 200, "{path}");
    let body = axum::body::to_bytes(answer.into_body(), 1 << 22).await.expect("a body");
    String::from_utf8_lossy(&body).into_owned()
}

#[tokio::test]
async fn the_status_page_counts_an_open_incident_behind_newer_ones() {
    let mut app = an_old_open_incident_behind(250).await;
    let status = page(&mut app, "/status").await;
    assert!(!status.contains("All systems operational"), "{status}");
    assert!(status.contains("incident in progress"), "{status}");
}

#[tokio::test]
async fn the_dashboard_lists_an_open_incident_behind_newer_ones() {
    let mut app = an_old_open_incident_behind(250).await;
    let dashboard = page(&mut app, "/").await;
    let open = dashboard.split("<h2>Open incidents</h2>").nth(1).unwrap_or_default();
    assert!(open.contains("-shop-1\">"), "the shop's incident is listed: {open}");
    assert!(!open.contains("other-"), "resolved ones are not: {open}");
}
