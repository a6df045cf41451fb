use super::*;
use crate::Finding;
use crate::extract::Keyword;

fn finding(file: &str, line: u32, severity: Severity, kind: FindingKind, message: &str) -> Finding {
    Finding {
        file: file.to_owned(),
        line,
        column: 5,
        severity,
        kind,
        statement: Keyword::RequireOnce,
        expression: "__DIR__ . '/x.php'".to_owned(),
        resolved: Some("/srv/x.php".to_owned()),
        suggestion: None,
        message: message.to_owned(),
    }
}

fn report(findings: Vec<Finding>) -> Report {
    Report { findings, ..Report::default() }
}

/// The parts of SARIF 2.1.0 GitHub code scanning requires of an upload (docs: "SARIF support for code
/// scanning"): `version` 2.1.0, `runs`, each with `tool.driver.name`; each result with `ruleId` naming a rule of
/// the driver, `message.text`, a valid `level`, and a location with `artifactLocation.uri` and `region.startLine`
/// ≥ 1. Returns what is wrong, empty when the log passes.
pub(crate) fn code_scanning_problems(log: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    if log["version"] != "2.1.0" {
        bad.push("version is not 2.1.0".to_owned());
    }
    if !log["$schema"].as_str().is_some_and(|s| s.contains("sarif-2.1.0")) {
        bad.push("$schema is not SARIF 2.1.0's".to_owned());
    }
    let Some(runs) = log["runs"].as_array() else {
        bad.push("no runs array".to_owned());
        return bad;
    };
    for (r, run) in runs.iter().enumerate() {
        let driver = &run["tool"]["driver"];
        if driver["name"].as_str().is_none_or(str::is_empty) {
            bad.push(format!("run {r}: tool.driver.name missing"));
        }
        let rules: Vec<&str> =
            driver["rules"].as_array().map(|a| a.iter().filter_map(|r| r["id"].as_str()).collect()).unwrap_or_default();
        for rule in driver["rules"].as_array().into_iter().flatten() {
            if !rule["shortDescription"]["text"].is_string() {
                bad.push(format!("run {r}: rule {} without shortDescription.text", rule["id"]));
            }
        }
        let Some(results) = run["results"].as_array() else {
            bad.push(format!("run {r}: no results array"));
            continue;
        };
        for (i, res) in results.iter().enumerate() {
            let id = res["ruleId"].as_str().unwrap_or("");
            if !rules.contains(&id) {
                bad.push(format!("result {i}: ruleId {id:?} is not a rule of the driver"));
            }
            if let Some(index) = res["ruleIndex"].as_u64()
                && rules.get(usize::try_from(index).unwrap()) != Some(&id)
            {
                bad.push(format!("result {i}: ruleIndex {index} is not rule {id:?}"));
            }
            if !["none", "note", "warning", "error"].contains(&res["level"].as_str().unwrap_or("")) {
                bad.push(format!("result {i}: level {} invalid", res["level"]));
            }
            if res["message"]["text"].as_str().is_none_or(str::is_empty) {
                bad.push(format!("result {i}: message.text missing"));
            }
            let Some(locations) = res["locations"].as_array().filter(|l| !l.is_empty()) else {
                bad.push(format!("result {i}: no locations"));
                continue;
            };
            for l in locations {
                let p = &l["physicalLocation"];
                let uri = p["artifactLocation"]["uri"].as_str().unwrap_or("");
                if uri.is_empty() || uri.contains('\\') || uri.contains(' ') || uri.starts_with('/') {
                    bad.push(format!("result {i}: uri {uri:?} is not a relative URI reference"));
                }
                if p["region"]["startLine"].as_u64().is_none_or(|n| n < 1) {
                    bad.push(format!("result {i}: region.startLine missing or < 1"));
                }
                if p["region"]["startColumn"].as_u64().is_some_and(|n| n < 1) {
                    bad.push(format!("result {i}: region.startColumn < 1"));
                }
            }
        }
    }
    bad
}

#[test]
fn sarif_has_the_shape_code_scanning_requires() {
    let r = report(vec![
        finding("index.php", 3, Severity::Error, FindingKind::Missing, "require_once target /srv/x.php does not exist"),
        finding("lib/a b#c.php", 7, Severity::Info, FindingKind::Missing, "include target (guarded by is_file)"),
        finding("vendor/composer/autoload_static.php", 38, Severity::Error, FindingKind::ComposerAutoload, "gone"),
    ]);
    let log = sarif(&r, "1.2.3", Some("file:///srv/site/"));
    assert_eq!(code_scanning_problems(&log), Vec::<String>::new(), "{log:#}");
    let run = &log["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "lookout preflight");
    assert_eq!(run["tool"]["driver"]["version"], "1.2.3");
    assert_eq!(run["tool"]["driver"]["rules"].as_array().unwrap().len(), KINDS.len());
    assert_eq!(run["originalUriBaseIds"]["%SRCROOT%"]["uri"], "file:///srv/site/");
    let res = &run["results"];
    assert_eq!(res[0]["ruleId"], "missing");
    assert_eq!(res[0]["level"], "error");
    assert_eq!(res[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], "index.php");
    assert_eq!(res[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uriBaseId"], "%SRCROOT%");
    assert_eq!(res[0]["locations"][0]["physicalLocation"]["region"]["startLine"], 3);
    assert_eq!(res[0]["locations"][0]["physicalLocation"]["region"]["startColumn"], 5);
    assert_eq!(res[1]["level"], "note");
    assert_eq!(res[1]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], "lib/a%20b%23c.php");
    assert_eq!(res[2]["ruleId"], "composer-autoload");
    assert_eq!(res[2]["ruleIndex"], 6);
}

#[test]
fn the_validator_catches_what_code_scanning_would_refuse() {
    // The check above can fail: a log with a bad level, an unknown rule and an absolute Windows path is refused.
    let r = report(vec![finding("index.php", 3, Severity::Error, FindingKind::Missing, "m")]);
    let mut log = sarif(&r, "1", None);
    log["runs"][0]["results"][0]["level"] = json!("info");
    log["runs"][0]["results"][0]["ruleId"] = json!("nope");
    log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] = json!("C:\\x.php");
    log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] = json!(0);
    assert_eq!(code_scanning_problems(&log).len(), 5, "{:?}", code_scanning_problems(&log));
    assert!(log["runs"][0].get("originalUriBaseIds").is_none());
}

#[test]
fn every_kind_has_a_rule_and_its_id_is_the_json_name() {
    for k in KINDS {
        assert_eq!(serde_json::to_value(k).unwrap(), json!(rule_id(k)));
    }
}

#[test]
fn uris_are_percent_encoded_with_forward_slashes() {
    assert_eq!(uri_of("wp-includes/class-wp.php"), "wp-includes/class-wp.php");
    assert_eq!(uri_of("a b/c%d?e#f.php"), "a%20b/c%25d%3Fe%23f.php");
    assert_eq!(uri_of("dir\\x.php"), "dir/x.php");
    assert_eq!(uri_of("café.php"), "caf%C3%A9.php");
}

#[test]
fn github_commands_escape_hostile_names_and_messages() {
    let r = report(vec![
        finding(
            "a,b:c%d\r\n::error file=x::pwned.php",
            3,
            Severity::Error,
            FindingKind::CaseOnly,
            "target 100% gone\r\n::error::injected, really: yes",
        ),
        finding("ok.php", 9, Severity::Info, FindingKind::Missing, "optional"),
    ]);
    let out = github(&r, "");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "::error file=a%2Cb%3Ac%25d%0D%0A%3A%3Aerror file=x%3A%3Apwned.php,line=3,col=5,title=case-only::target 100%25 gone%0D%0A::error::injected, really: yes",
            "::notice file=ok.php,line=9,col=5,title=missing::optional",
        ]
    );
    // One finding is one line, whatever the names hold.
    assert_eq!(out.matches('\n').count(), 2);
    assert_eq!(
        github(&r, "site/").lines().nth(1),
        Some("::notice file=site/ok.php,line=9,col=5,title=missing::optional")
    );
}

#[test]
fn escaping_follows_githubs_toolkit() {
    assert_eq!(escape_data("a%b\rc\nd:e,f"), "a%25b%0Dc%0Ad:e,f");
    assert_eq!(escape_property("a%b\rc\nd:e,f"), "a%25b%0Dc%0Ad%3Ae%2Cf");
    // `%` first: an already-escaped-looking sequence is escaped again, not passed through.
    assert_eq!(escape_data("%0A"), "%250A");
}
