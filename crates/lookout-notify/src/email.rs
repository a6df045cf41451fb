//! E-mail over SMTP (lettre, rustls): STARTTLS (default, refusing to continue without it), implicit TLS, or
//! plain for a relay on the same host; optional AUTH. Each message has a text and an HTML part, a subject that
//! says what happened, and a `Message-ID` derived from the idempotency key, so a resend after a crash is the
//! same message to mail clients. SMTP 5xx answers are permanent; everything else is retried.

use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use lookout_config::{EmailConfig, SmtpTls};

use crate::{Delivery, Notifier, SendError, SendFuture};

pub struct Email {
    name: String,
    cfg: EmailConfig,
    timeout: Duration,
}

impl Email {
    pub fn new(name: String, cfg: EmailConfig, timeout: Duration) -> Self {
        Email { name, cfg, timeout }
    }

    fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        let c = &self.cfg;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(c.host.as_str())
            .port(c.port)
            .timeout(Some(self.timeout));
        if c.tls != SmtpTls::None {
            let mut params = TlsParameters::builder(c.host.clone());
            if let Some(ca) = &c.ca_file {
                let pem = std::fs::read(ca).map_err(|e| format!("cannot read ca_file {}: {e}", ca.display()))?;
                let cert = Certificate::from_pem(&pem).map_err(|e| format!("ca_file {}: {e}", ca.display()))?;
                params = params.add_root_certificate(cert);
            }
            let params = params.build_rustls().map_err(|e| format!("TLS setup: {e}"))?;
            builder = builder.tls(if c.tls == SmtpTls::Tls { Tls::Wrapper(params) } else { Tls::Required(params) });
        }
        if let (Some(user), Some(password)) = (&c.username, &c.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.expose().clone()));
        }
        Ok(builder.build())
    }
}

/// The subject line: what happened, to what.
pub fn subject(d: &Delivery) -> String {
    match d.notifications.as_slice() {
        [one] if one.state == "firing" => format!("[lookout] FIRING: {}", one.summary),
        [one] => format!("[lookout] RESOLVED: {}", one.summary),
        _ => format!("[lookout] {}", d.summary()),
    }
    .replace(['\r', '\n'], " ")
}

/// The plain-text part.
pub fn text(d: &Delivery) -> String {
    let mut s = String::new();
    for n in &d.notifications {
        s.push_str(&format!("{}\n", n.summary));
        if n.state == "firing" && !n.reasons.is_empty() {
            s.push_str(&format!("  Why: {}\n", n.reasons.join("; ")));
        }
        if let Some(dg) = &n.diagnosis {
            s.push_str(&format!("  Probable cause: {dg}\n"));
        }
        if !n.affected.is_empty() {
            s.push_str(&format!("  Also failing (depend on it): {}\n", n.affected.join(", ")));
        }
        if let Some(since) = &n.since {
            s.push_str(&format!("  Failing since: {since}\n"));
        }
        if let Some(i) = &n.incident {
            s.push_str(&format!("  Incident: {i} (lookout incidents show {i})\n"));
        }
        s.push('\n');
    }
    s.push_str("-- \nlookout\n");
    s
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// The HTML part: the same content, every value escaped.
pub fn html(d: &Delivery) -> String {
    let mut s = String::from("<!doctype html><html><body style=\"font-family:sans-serif\">");
    for n in &d.notifications {
        let color = if n.state == "firing" { "#b00020" } else { "#1b7f3b" };
        s.push_str(&format!("<h2 style=\"color:{color}\">{}</h2><ul>", html_escape(&n.summary)));
        if n.state == "firing" && !n.reasons.is_empty() {
            s.push_str(&format!("<li><b>Why:</b> {}</li>", html_escape(&n.reasons.join("; "))));
        }
        if let Some(dg) = &n.diagnosis {
            s.push_str(&format!("<li><b>Probable cause:</b> <code>{}</code></li>", html_escape(dg)));
        }
        if !n.affected.is_empty() {
            s.push_str(&format!(
                "<li><b>Also failing (depend on it):</b> {}</li>",
                html_escape(&n.affected.join(", "))
            ));
        }
        if let Some(since) = &n.since {
            s.push_str(&format!("<li><b>Failing since:</b> {}</li>", html_escape(since)));
        }
        if let Some(i) = &n.incident {
            s.push_str(&format!("<li><b>Incident:</b> {}</li>", html_escape(i)));
        }
        s.push_str("</ul>");
    }
    s.push_str("<p style=\"color:#666\">lookout</p></body></html>");
    s
}

/// `<lookout.KEY@lookout>` with the key's characters kept to what a Message-ID may hold.
pub fn message_id(key: &str) -> String {
    let id: String =
        key.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '.' }).collect();
    format!("<{id}@lookout>")
}

impl Email {
    fn message(&self, d: &Delivery) -> Result<Message, SendError> {
        let bad = |what: &str, e: &dyn std::fmt::Display| SendError::Permanent(format!("{what}: {e}"));
        let from: Mailbox = self.cfg.from.parse().map_err(|e| bad("from", &e))?;
        let mut builder = Message::builder()
            .from(from)
            .subject(subject(d))
            .message_id(Some(message_id(&d.key)))
            .raw_header(HeaderValue::new(HeaderName::new_from_ascii_str("X-Lookout-Key"), d.key.clone()));
        for to in &self.cfg.to {
            builder = builder.to(to.parse::<Mailbox>().map_err(|e| bad("to", &e))?);
        }
        builder.multipart(MultiPart::alternative_plain_html(text(d), html(d))).map_err(|e| bad("message", &e))
    }
}

impl Notifier for Email {
    fn name(&self) -> &str {
        &self.name
    }

    fn send<'a>(&'a self, d: &'a Delivery) -> SendFuture<'a> {
        Box::pin(async move {
            let message = self.message(d)?;
            // A transport that cannot be built is a configuration problem on this host: retried, so that fixing
            // it and restarting still delivers.
            let transport = self.transport().map_err(SendError::Retry)?;
            match transport.send(message).await {
                Ok(_) => Ok(None),
                Err(e) if e.is_permanent() => Err(SendError::Permanent(format!("SMTP server refused: {e}"))),
                Err(e) => Err(SendError::Retry(format!("SMTP: {e}"))),
            }
        })
    }
}
