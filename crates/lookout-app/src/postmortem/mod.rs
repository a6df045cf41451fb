//! Postmortem drafts in the structure of the founding document (summary, timeline, root cause with five whys,
//! impact, response, lessons, preventive measures), from a recorded incident ([`from_incident`]) or from the
//! logs of an outage lookout did not watch ([`from_logs`]). Both fill a [`Draft`]; one renderer lays it out.
//!
//! Everything that came from a log, a request or a person is escaped with [`md`] as the draft is filled, so it
//! cannot break the Markdown or inject HTML; the renderer adds only its own structure.

pub mod from_incident;
pub mod from_logs;

use std::fmt::Write as _;

use lookout_core::Timestamp;

/// A postmortem's parts, each already Markdown (log text escaped).
#[derive(Clone, Debug, Default)]
pub struct Draft {
    /// The bold first line, e.g. "HTTP 5xx errors from … to …".
    pub heading: String,
    /// Where the draft comes from, in italics under the heading.
    pub provenance: String,
    pub summary: String,
    /// (time, event) rows of the timeline table.
    pub timeline: Vec<(Timestamp, String)>,
    /// Root cause analysis before the five whys: verdict, evidence.
    pub root_cause: String,
    pub whys: Vec<String>,
    pub impact: Vec<String>,
    pub response: String,
    pub lessons: Vec<String>,
    pub measures: Vec<String>,
}

/// Lays a draft out as Markdown.
pub fn render(d: &Draft) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "**Postmortem (draft):** {}\n", d.heading);
    let _ = writeln!(s, "*{}*\n", d.provenance);
    let _ = writeln!(s, "## Summary\n");
    let _ = writeln!(s, "{}\n", d.summary);
    let _ = writeln!(s, "## Timeline (UTC)\n");
    let _ = writeln!(s, "| time | event |\n|---|---|");
    for (at, event) in &d.timeline {
        let _ = writeln!(s, "| {} | {event} |", at.to_rfc3339_seconds());
    }
    let _ = writeln!(s, "\n## Root cause analysis\n");
    let _ = writeln!(s, "{}", d.root_cause);
    let _ = writeln!(s, "Five whys (the first answers come from the evidence; the later ones are for the team):\n");
    for (i, why) in d.whys.iter().enumerate() {
        let _ = writeln!(s, "{}. {why}", i + 1);
    }
    let _ = writeln!(s, "\n## Impact assessment\n");
    for line in &d.impact {
        let _ = writeln!(s, "- {line}");
    }
    let _ = writeln!(s, "\n## Response and resolution\n");
    let _ = writeln!(s, "{}\n", d.response);
    let _ = writeln!(s, "## Lessons learned\n");
    for line in &d.lessons {
        let _ = writeln!(s, "- {line}");
    }
    let _ = writeln!(s, "\n## Preventive measures\n");
    for line in &d.measures {
        let _ = writeln!(s, "- {line}");
    }
    s
}

/// Escapes text from logs for Markdown: no formatting, links, tables or HTML can come out of it, and it stays on
/// one line.
pub fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for (i, c) in text.chars().enumerate() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' => {
                out.push('\\');
                out.push(c);
            }
            // Only at the start of a line do these make lists or headings.
            '-' | '+' | '#' | '.' | '!' if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Unix seconds as RFC 3339 UTC to the second.
pub(crate) fn time(secs: i64) -> String {
    Timestamp::from_millis(secs.saturating_mul(1000)).to_rfc3339_seconds()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_escaping_neutralises_log_text() {
        assert_eq!(md("<script>alert(1)</script>"), "&lt;script&gt;alert(1)&lt;/script&gt;");
        assert_eq!(md("a|b `x` *y* [l](u)\nnext"), "a\\|b \\`x\\` \\*y\\* \\[l\\](u) next");
        assert_eq!(md("- not a list. #1"), "\\- not a list. #1");
        assert_eq!(md("# not a heading"), "\\# not a heading");
    }
}
