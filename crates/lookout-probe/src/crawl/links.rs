//! The links of an HTML page, found by a small, forgiving attribute scanner, and resolved the way a browser
//! resolves them.
//!
//! Why a scanner and not an HTML parser: the crawler needs six attributes of six elements, from pages that may be
//! broken (a PHP error cut one off half-way); a scanner that never fails and skips what it does not understand
//! is enough, and resolution — the part easy to get subtly wrong (`..`, `//host`, `?q`, a `<base>`) — is the
//! WHATWG algorithm of the `url` crate.

use url::Url;

/// A link found in a page: the attribute's value, entities decoded, not yet resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawLink {
    pub value: String,
}

/// The values of `href`/`src`/`action` of `a`, `area`, `link`, `script`, `img`, `iframe` and `form` (GET forms
/// only: a POST could change something), and of the first `<base href>`, in document order. Comments and the
/// contents of `<script>` and `<style>` are skipped (a `"<a href=…>"` inside JavaScript is not a link).
pub fn scan(html: &str) -> (Vec<RawLink>, Option<String>) {
    let bytes = html.as_bytes();
    let mut links = Vec::new();
    let mut base = None;
    let mut i = 0;
    while let Some(offset) = memchr_lt(&bytes[i..]) {
        i += offset + 1;
        if bytes[i..].starts_with(b"!--") {
            i = find(bytes, i + 3, b"-->").map_or(bytes.len(), |e| e + 3);
            continue;
        }
        let name_len = bytes[i..].iter().take_while(|b| b.is_ascii_alphanumeric()).count();
        if name_len == 0 {
            continue;
        }
        let name = html[i..i + name_len].to_ascii_lowercase();
        let (attrs, end) = attributes(html, i + name_len);
        i = end;
        let get = |wanted: &str| attrs.iter().find(|(n, _)| n == wanted).map(|(_, v)| v.clone());
        let wanted = match name.as_str() {
            "a" | "area" | "link" => get("href"),
            "script" | "img" | "iframe" => get("src"),
            "form" => {
                let method = get("method").unwrap_or_default();
                if method.is_empty() || method.eq_ignore_ascii_case("get") { get("action") } else { None }
            }
            "base" => {
                if base.is_none() {
                    base = get("href");
                }
                None
            }
            _ => None,
        };
        if let Some(value) = wanted {
            links.push(RawLink { value });
        }
        if name == "script" || name == "style" {
            let close = format!("</{name}");
            i = find_ignore_case(bytes, i, close.as_bytes()).unwrap_or(bytes.len());
        }
    }
    (links, base)
}

fn memchr_lt(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'<')
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}

fn find_ignore_case(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes.get(from..)?.windows(needle.len()).position(|w| w.eq_ignore_ascii_case(needle)).map(|p| p + from)
}

/// The attributes of a tag from just after its name, lower-cased names and decoded values, and the offset after
/// its `>` (or the end of the text: an unclosed tag ends the scan).
fn attributes(html: &str, mut i: usize) -> (Vec<(String, String)>, usize) {
    let bytes = html.as_bytes();
    let mut attrs = Vec::new();
    loop {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        if i >= bytes.len() {
            return (attrs, i);
        }
        if bytes[i] == b'>' {
            return (attrs, i + 1);
        }
        let start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() && !matches!(bytes[i], b'=' | b'>' | b'/') {
            i += 1;
        }
        // `i > start` always holds here (the loop above stopped on none of these), so the scan advances.
        let name = html[start..i].to_ascii_lowercase();
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] != b'=' {
            attrs.push((name, String::new()));
            continue;
        }
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let value = match bytes.get(i) {
            Some(&q @ (b'"' | b'\'')) => {
                let end = bytes[i + 1..].iter().position(|&b| b == q).map_or(bytes.len(), |p| p + i + 1);
                let v = &html[i + 1..end];
                i = (end + 1).min(bytes.len());
                v
            }
            _ => {
                let start = i;
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'>' {
                    i += 1;
                }
                &html[start..i]
            }
        };
        attrs.push((name, decode_entities(value)));
    }
}

/// HTML character references: the five named ones an attribute needs and numeric ones (`&#38;`, `&#x26;`);
/// anything else is left as written.
pub fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let decoded = rest.find(';').filter(|&semi| semi <= 10).and_then(|semi| {
            let entity = &rest[1..semi];
            let c = match entity {
                "amp" => Some('&'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "lt" => Some('<'),
                "gt" => Some('>'),
                _ => {
                    let code = if let Some(hex) = entity.strip_prefix("#x").or_else(|| entity.strip_prefix("#X")) {
                        u32::from_str_radix(hex, 16).ok()
                    } else {
                        entity.strip_prefix('#').and_then(|d| d.parse().ok())
                    };
                    code.and_then(char::from_u32)
                }
            };
            c.map(|c| (c, semi))
        });
        match decoded {
            Some((c, semi)) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// What a link is, once resolved against its page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved {
    /// Same scheme, host and port as the start: crawled. Fragment removed, `..` resolved.
    Follow(Url),
    /// Another scheme, host or port: never requested (the resolved URL, to count it).
    OtherOrigin(String),
    /// `mailto:`, `javascript:`, `tel:`, `data:`, a bare `#fragment`, an empty value, or not a URL at all.
    Ignored,
}

/// Resolves `value` (a link found in the page at `page`, whose `<base href>` is `base`) and decides whether the
/// crawl follows it: only to `origin` (the start URL's scheme, host and port).
pub fn resolve(page: &Url, base: Option<&str>, value: &str, origin: &url::Origin) -> Resolved {
    let value = value.trim();
    if value.is_empty() || value.starts_with('#') {
        return Resolved::Ignored;
    }
    let base = base.and_then(|b| page.join(b.trim()).ok());
    let Ok(mut url) = base.as_ref().unwrap_or(page).join(value) else { return Resolved::Ignored };
    if !matches!(url.scheme(), "http" | "https") {
        return Resolved::Ignored;
    }
    if &url.origin() != origin {
        url.set_fragment(None);
        return Resolved::OtherOrigin(url.to_string());
    }
    url.set_fragment(None);
    // A link never carries the start URL's credentials into the crawl's keys (they are added when fetching).
    let _ = url.set_username("");
    let _ = url.set_password(None);
    Resolved::Follow(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(html: &str) -> Vec<String> {
        scan(html).0.into_iter().map(|l| l.value).collect()
    }

    #[test]
    fn finds_the_attributes_of_the_elements_that_link() {
        let html = r#"<html><head><link rel=stylesheet href="/s.css"><script src='/app.js'></script>
            <BASE HREF="/root/"></head><body>
            <a href="a.php?x=1&amp;y=2">A</a> <A class=x HREF=b.php>B</A>
            <img alt="a > b" src="/i.png"><iframe src="/frame.php"></iframe>
            <area href="/map.php"><form action="/search.php"><input name=q></form>
            <form method="POST" action="/delete.php"></form><form method=get action=/find.php></form>
            <div href="/not-a-link.php"></div>"#;
        assert_eq!(
            values(html),
            [
                "/s.css",
                "/app.js",
                "a.php?x=1&y=2",
                "b.php",
                "/i.png",
                "/frame.php",
                "/map.php",
                "/search.php",
                "/find.php"
            ]
        );
        assert_eq!(scan(html).1.as_deref(), Some("/root/"));
    }

    #[test]
    fn skips_comments_scripts_and_styles() {
        let html = r#"<!-- <a href="/commented.php"> --><script>document.write('<a href="/js.php">')</script>
            <style>a[href="/css.php"] {}</style><a href="/real.php">"#;
        assert_eq!(values(html), ["/real.php"]);
    }

    #[test]
    fn forgives_broken_html() {
        // Cut off by a fatal error, unquoted and unterminated values, stray `<`: no panic, what can be read is read.
        assert_eq!(values(r#"<a href="/ok.php">x</a> 1 < 2 <a href="/cut"#), ["/ok.php", "/cut"]);
        assert_eq!(values("<a href=/x.php"), ["/x.php"]);
        assert_eq!(values("<a href"), [""]);
        assert_eq!(values("<a"), Vec::<String>::new());
        assert_eq!(values("<"), Vec::<String>::new());
        assert_eq!(values("<!-- never closed <a href=/x>"), Vec::<String>::new());
        assert_eq!(values("<script src=/s.js>never closed <a href=/y>"), ["/s.js"]);
        assert_eq!(values("<a href='é/ü.php'>"), ["é/ü.php"], "multi-byte text");
    }

    #[test]
    fn decodes_character_references() {
        assert_eq!(decode_entities("a&amp;b&#38;c&#x26;d&quot;&lt;&gt;"), "a&b&c&d\"<>");
        assert_eq!(decode_entities("a&b;c &unknown; &#xZZ; &"), "a&b;c &unknown; &#xZZ; &");
        assert_eq!(decode_entities("&#1114112;"), "&#1114112;", "not a char");
    }

    #[test]
    fn resolves_like_a_browser_and_stays_on_the_origin() {
        let page = Url::parse("http://127.0.0.1:8080/shop/cart/view.php?id=3").unwrap();
        let origin = page.origin();
        let follow = |v: &str| match resolve(&page, None, v, &origin) {
            Resolved::Follow(u) => u.to_string(),
            other => format!("{other:?}"),
        };
        assert_eq!(follow("../list.php#top"), "http://127.0.0.1:8080/shop/list.php");
        assert_eq!(follow("/a/./b/../c.php"), "http://127.0.0.1:8080/a/c.php");
        assert_eq!(follow("../../../../x"), "http://127.0.0.1:8080/x", "never above the root");
        assert_eq!(follow("?id=4"), "http://127.0.0.1:8080/shop/cart/view.php?id=4");
        assert_eq!(follow("HTTP://127.0.0.1:8080/Up"), "http://127.0.0.1:8080/Up");
        assert_eq!(follow("//127.0.0.1:8080/p"), "http://127.0.0.1:8080/p");
        assert_eq!(follow(" edit.php "), "http://127.0.0.1:8080/shop/cart/edit.php");
        assert_eq!(follow("http://user:pw@127.0.0.1:8080/in"), "http://127.0.0.1:8080/in");
        for other in ["http://127.0.0.1:8081/", "https://127.0.0.1:8080/", "http://localhost:8080/", "//evil.example/"]
        {
            assert!(matches!(resolve(&page, None, other, &origin), Resolved::OtherOrigin(_)), "{other}");
        }
        for ignored in ["mailto:a@b.example", "javascript:void(0)", "tel:+1", "#top", "", "  ", "data:text/html,x"] {
            assert_eq!(resolve(&page, None, ignored, &origin), Resolved::Ignored, "{ignored:?}");
        }
        let based = resolve(&page, Some("/root/"), "x.php", &origin);
        assert_eq!(based, Resolved::Follow(Url::parse("http://127.0.0.1:8080/root/x.php").unwrap()));
        let http80 = Url::parse("http://127.0.0.1/").unwrap();
        assert_eq!(
            resolve(&http80, None, "http://127.0.0.1:80/d", &http80.origin()),
            Resolved::Follow(Url::parse("http://127.0.0.1/d").unwrap()),
            "the default port is the same origin"
        );
    }
}
