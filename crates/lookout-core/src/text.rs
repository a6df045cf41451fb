//! Text from outside (logs, servers, people) shortened and flattened for one line of a terminal, a condition's
//! reason or a chat message. One definition, so every surface cuts the same way.

/// Control characters (escape sequences, line breaks) as spaces: safe on one line of a terminal.
pub fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// Text from a file, a log or a server made safe for a terminal, keeping every character visible: control
/// characters (escape sequences, line breaks) become `\u{..}` escapes.
pub fn printable(text: &str) -> String {
    // Called for every field of every line a command prints (10,000 findings: 50,000 calls): one allocation each,
    // not one per character.
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// At most `max` (≥ 1) characters: the text itself when it fits, else its first `max - 1` characters and `…`.
pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max.saturating_sub(1)) {
        Some((i, _)) if text[i..].chars().nth(1).is_some() => format!("{}…", &text[..i]),
        _ => text.to_string(),
    }
}

/// `n` with its noun in the right number: `1 check`, `2 checks`, `1 distinct client address`, `3 distinct
/// client addresses` (`plural` when adding an `s` is not how the word goes, else `None`).
pub fn count(n: impl Into<u64>, singular: &str, plural: Option<&str>) -> String {
    let n = n.into();
    match (n, plural) {
        (1, _) => format!("1 {singular}"),
        (n, Some(p)) => format!("{n} {p}"),
        (n, None) => format!("{n} {singular}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_say_one_thing_and_several_things() {
        assert_eq!(count(1u64, "check", None), "1 check");
        assert_eq!(count(0u64, "check", None), "0 checks");
        assert_eq!(count(3u32, "client address", Some("client addresses")), "3 client addresses");
        assert_eq!(count(1u32, "client address", Some("client addresses")), "1 client address");
    }

    #[test]
    fn cuts_to_at_most_max_characters_with_an_ellipsis() {
        assert_eq!(truncate("abcdef", 6), "abcdef");
        assert_eq!(truncate("abcdefg", 6), "abcde…");
        assert_eq!(truncate("äöüßéè-x", 4), "äöü…", "counts characters, not bytes");
        assert_eq!(truncate("", 3), "");
    }

    #[test]
    fn printable_escapes_control_characters_and_keeps_the_rest() {
        assert_eq!(printable("ok\x1b[2Jé\nnext"), "ok\\u{1b}[2Jé\\u{a}next");
        assert_eq!(printable("plain ünïcode"), "plain ünïcode");
        assert_eq!(printable(""), "");
    }

    #[test]
    fn flattens_control_characters() {
        assert_eq!(one_line("ok\x1b[2J\x1b]0;pwned\x07\nnext\r"), "ok [2J ]0;pwned  next ");
    }
}
