//! nginx's `log_format` in Apache's `LogFormat` terms, which lookout reads: each variable lookout can use has an
//! Apache twin (`$remote_addr` → `%h`, `[$time_local]` → `%t`, `$http_user_agent` → `%{User-Agent}i`, …). A
//! variable without one is an error that names it: a wrong format would be read as malformed lines.

/// The Apache `LogFormat` string for an nginx `log_format` (its strings already joined).
pub fn to_apache(nginx: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = nginx;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("[$time_local]") {
            out.push_str("%t");
            rest = after;
            continue;
        }
        if let Some(after) = rest.strip_prefix('$') {
            let braced = after.strip_prefix('{');
            let body = braced.unwrap_or(after);
            let len = body.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(body.len());
            let name = &body[..len];
            if braced.is_some() && !body[len..].starts_with('}') {
                return Err(format!("${{{name} is not closed with }}"));
            }
            let consumed = if braced.is_some() { len + 2 } else { len };
            out.push_str(&apache_for(name)?);
            rest = &after[consumed.min(after.len())..];
            continue;
        }
        let c = rest.chars().next().unwrap_or(' ');
        if c == '%' {
            out.push_str("%%");
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    lookout_logs::format::LogFormat::parse(&out).map_err(|e| format!("{out:?} is not readable: {e}"))?;
    Ok(out)
}

fn apache_for(var: &str) -> Result<String, String> {
    let known = match var {
        "remote_addr" | "realip_remote_addr" => "%h",
        "remote_user" => "%u",
        "request" => "%r",
        "status" => "%>s",
        "body_bytes_sent" => "%B",
        "bytes_sent" => "%O",
        "request_method" => "%m",
        "server_port" => "%p",
        "host" | "server_name" => "%v",
        "request_uri" => "%U%q",
        other => {
            return other
                .strip_prefix("http_")
                .map(|h| format!("%{{{}}}i", header_name(h)))
                .ok_or_else(|| format!("${other} has no Apache LogFormat twin that lookout reads"));
        }
    };
    Ok(known.to_string())
}

/// `user_agent` → `User-Agent`.
fn header_name(var: &str) -> String {
    var.split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::to_apache;

    #[test]
    fn variables_braces_percent_signs_and_bad_input() {
        assert_eq!(to_apache("${remote_addr} [$time_local] \"$request\" $status").as_deref(), Ok("%h %t \"%r\" %>s"));
        assert_eq!(to_apache("$remote_addr 100% $status").as_deref(), Ok("%h 100%% %>s"));
        assert_eq!(to_apache("$http_x_forwarded_for").as_deref(), Ok("%{X-Forwarded-For}i"));
        for bad in ["${remote_addré", "${abc", "$request_time", "$é"] {
            assert!(to_apache(bad).is_err(), "{bad}");
        }
    }
}
