//! Probes: turn a configured target into an [`Observation`] of what happened: HTTP(S) (HTTP/2 by ALPN), TCP
//! connect, TLS certificate, DNS query (`dns`) and ICMP ping (`icmp`); and `crawl`, the after-deploy smoke test
//! that follows a site's own links.
//!
//! A probe never fails: connection refused, timeouts, DNS and TLS failures and malformed responses are all
//! recorded in the observation's `error`, with the timings of the phases that did happen.
//!
//! The HTTP(S) client itself (phase timings, redirects, TLS, the [`MAX_BODY`] cap an HTTP probe reads up to) is
//! [`lookout_http`], shared with the notifiers.

pub mod crawl;
pub mod dns;
pub mod icmp;
pub mod tcp;
pub mod tls;

use lookout_config::{Check, Target};
use lookout_core::{Observation, ProbeKind, Timestamp};
use lookout_http::{FetchOptions, HttpRequest, MAX_BODY, fetch_with};

/// Runs one probe of `target` now.
pub async fn probe(target: &Target) -> Observation {
    let at = Timestamp::now();
    match &target.check {
        Check::Http(h) => {
            let req = HttpRequest {
                url: h.url.clone(),
                method: h.method.clone(),
                headers: h.headers.clone(),
                body: h.body.clone().map(Into::into),
                follow_redirects: h.follow_redirects,
                verify_tls: h.verify_tls,
                timeout: target.timeout,
                max_body: MAX_BODY,
            };
            let mut obs = fetch_with(&req, FetchOptions { http2: h.http2 }).await;
            obs.target = target.name.clone();
            obs.at = at;
            obs
        }
        Check::Tcp { address } => {
            let mut obs = Observation::new(&target.name, ProbeKind::Tcp, at);
            tcp::probe(address, target.timeout, &mut obs).await;
            obs
        }
        Check::Tls { address, verify } => {
            let mut obs = Observation::new(&target.name, ProbeKind::Tls, at);
            tls::probe(address, *verify, target.timeout, &mut obs).await;
            obs
        }
        Check::Dns(check) => {
            let mut obs = Observation::new(&target.name, ProbeKind::Dns, at);
            dns::probe(check, target.timeout, &mut obs).await;
            obs
        }
        Check::Icmp { host } => {
            let mut obs = Observation::new(&target.name, ProbeKind::Icmp, at);
            icmp::probe(host, target.timeout, &mut obs).await;
            obs
        }
    }
}
