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
pub mod host;
pub mod icmp;
pub mod status;
pub mod tcp;
pub mod tls;

use lookout_config::{Check, Target};
use lookout_core::{Observation, ProbeKind, Timestamp};
use lookout_http::{FetchOptions, HttpRequest, MAX_BODY, fetch_with};

/// What a target's probe keeps from one reading to the next (a probe loop owns one): a status page's counters,
/// the host's CPU times, a filesystem's recent use, a process's start.
#[derive(Clone, Debug, Default)]
pub struct Memory {
    status: status::Memory,
    host: host::Memory,
}

/// Runs one probe of `target` now.
pub async fn probe(target: &Target) -> Observation {
    probe_with(target, &mut Memory::default()).await
}

/// Runs one probe of `target` now, against what `memory` kept of the previous one (rates, trends, restarts).
pub async fn probe_with(target: &Target, memory: &mut Memory) -> Observation {
    let at = Timestamp::now();
    match &target.check {
        Check::Status(check) => status::probe(&target.name, check, target.timeout, &mut memory.status).await,
        // On a blocking thread, within the timeout: /proc answers at once, but statvfs on a hung network mount
        // never does (the thread is then given up; the next reading starts a new trend).
        Check::Host(check) => {
            let (name, check, mut kept) = (target.name.clone(), check.clone(), std::mem::take(&mut memory.host));
            let read = tokio::task::spawn_blocking(move || {
                let obs = host::probe(&name, &check, &mut kept);
                (obs, kept)
            });
            match tokio::time::timeout(target.timeout, read).await {
                Ok(Ok((obs, kept))) => {
                    memory.host = kept;
                    obs
                }
                failed => {
                    let mut obs = Observation::new(&target.name, ProbeKind::Host, at);
                    let message = match failed {
                        Err(_) => format!("no answer from the kernel in {} ms", target.timeout.as_millis()),
                        Ok(Err(e)) => format!("the reading failed: {e}"),
                        Ok(Ok(_)) => unreachable!("handled above"),
                    };
                    obs.error = Some(lookout_core::ProbeError { kind: lookout_core::ProbeErrorKind::Timeout, message });
                    obs
                }
            }
        }
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
