//! What was probably meant: for a path that does not exist, the closest existing names (edit distance, case,
//! extension) and how they differ, the same path with other case at every step, a symlink pointing nowhere — or,
//! when a directory on the way is missing, the deepest existing ancestor and the names closest to the first
//! missing component; for a path that cannot be read, who owns each step and which permission is missing where.

use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

/// Suggestions kept per hint.
const MAX_SUGGESTIONS: usize = 3;

/// Why a path does not resolve, and the names closest to what was asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Missing {
    /// The directory exists; the last component does not.
    File { path: PathBuf, suggestions: Vec<PathBuf> },
    /// A directory on the way does not exist.
    Directory { path: PathBuf, deepest_existing: PathBuf, missing: String, suggestions: Vec<PathBuf> },
}

impl Missing {
    pub fn suggestions(&self) -> &[PathBuf] {
        match self {
            Missing::File { suggestions, .. } | Missing::Directory { suggestions, .. } => suggestions,
        }
    }
}

/// Explains an ENOENT for an absolute `path`; `None` if it exists after all (or is not absolute).
pub fn enoent(path: &Path) -> Option<Missing> {
    if !path.is_absolute() || path.symlink_metadata().is_ok() {
        return None;
    }
    // Walk down from the root to the first component that does not exist.
    let mut existing = PathBuf::from("/");
    let components: Vec<Component<'_>> = path.components().collect();
    for (i, c) in components.iter().enumerate() {
        let Component::Normal(name) = c else { continue };
        let next = existing.join(name);
        if next.symlink_metadata().is_ok() {
            existing = next;
            continue;
        }
        let name = name.to_string_lossy().into_owned();
        let suggestions: Vec<PathBuf> = closest_names(&existing, &name).into_iter().map(|n| existing.join(n)).collect();
        let is_last = i == components.len() - 1;
        return Some(if is_last {
            Missing::File { path: path.to_path_buf(), suggestions }
        } else {
            Missing::Directory { path: path.to_path_buf(), deepest_existing: existing, missing: name, suggestions }
        });
    }
    None
}

/// Names in `dir` closest to `wanted`, best first: same name in another case, same stem with another
/// extension, then small edit distances.
pub fn closest_names(dir: &Path, wanted: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    closest_among(entries.flatten().filter_map(|e| e.file_name().into_string().ok()), wanted)
}

/// As [`closest_names`], among `names` already read (preflight reads each directory once for a whole tree).
pub fn closest_among(names: impl Iterator<Item = String>, wanted: &str) -> Vec<String> {
    let wanted_lower = wanted.to_lowercase();
    let (wanted_stem, _) = split_ext(wanted);
    let mut scored: Vec<(usize, String)> = names
        .filter_map(|name| {
            let score = if name.to_lowercase() == wanted_lower {
                0
            } else {
                let d = strsim::damerau_levenshtein(wanted, &name);
                let same_stem = split_ext(&name).0 == wanted_stem;
                let limit = 2.max(wanted.chars().count() / 3);
                if same_stem {
                    1 + d.min(2)
                } else if d <= limit {
                    2 + d
                } else {
                    return None;
                }
            };
            Some((score, name))
        })
        .collect();
    scored.sort();
    scored.into_iter().take(MAX_SUGGESTIONS).map(|(_, n)| n).collect()
}

/// How a suggestion differs from the name asked for — what to tell people, since each points at a different
/// mistake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Difference {
    /// `Settings.php` for `settings.php`: works on the developer's macOS or Windows laptop, fails on Linux.
    Case,
    /// `settings.phpp` for `settings.php`, `footer.php` for `footer.inc`.
    Extension,
    /// Any other small edit.
    Spelling,
}

impl Difference {
    /// Between the name asked for and an existing one.
    pub fn between(wanted: &str, existing: &str) -> Difference {
        if wanted != existing && wanted.to_lowercase() == existing.to_lowercase() {
            Difference::Case
        } else if split_ext(wanted).0 == split_ext(existing).0 {
            Difference::Extension
        } else {
            Difference::Spelling
        }
    }

    /// What the summary adds after "did you mean …?", if anything: only a difference of case needs saying (the
    /// others are plain to see, and "it works on my machine" is not).
    pub fn says(self) -> Option<&'static str> {
        match self {
            Difference::Case => Some("it differs only by case — code written on a case-insensitive system?"),
            Difference::Extension | Difference::Spelling => None,
        }
    }
}

impl Missing {
    /// The best suggestion and how it differs from the name that was asked for (the file's, or the missing
    /// directory's).
    pub fn best(&self) -> Option<(&Path, Difference)> {
        let best = self.suggestions().first()?;
        let wanted = match self {
            Missing::File { path, .. } => path.file_name()?.to_string_lossy().into_owned(),
            Missing::Directory { missing, .. } => missing.clone(),
        };
        let existing = best.file_name()?.to_string_lossy();
        Some((best.as_path(), Difference::between(&wanted, &existing)))
    }
}

/// The existing path that `path` names when case is ignored at every step (one match per step, else `None`):
/// `/www/Inc/Settings.php` → `/www/inc/settings.php`. `None` when `path` exists as written.
pub fn ignoring_case(path: &Path) -> Option<PathBuf> {
    if !path.is_absolute() || path.symlink_metadata().is_ok() {
        return None;
    }
    let mut found = PathBuf::from("/");
    for c in path.components().take(MAX_DEPTH) {
        let Component::Normal(name) = c else { continue };
        let exact = found.join(name);
        if exact.symlink_metadata().is_ok() {
            found = exact;
            continue;
        }
        let wanted = name.to_string_lossy().to_lowercase();
        let mut matches = std::fs::read_dir(&found)
            .ok()?
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| n.to_string_lossy().to_lowercase() == wanted)
            .take(2);
        let (Some(one), None) = (matches.next(), matches.next()) else { return None };
        found = found.join(one);
    }
    (found != path).then_some(found)
}

/// Components walked at most (a path deeper than this is not a path a server was asked for).
const MAX_DEPTH: usize = 256;

/// A symlink that points nowhere: its target, when `path` is a link whose target does not exist.
pub fn dangling(path: &Path) -> Option<PathBuf> {
    let meta = path.symlink_metadata().ok()?;
    if !meta.file_type().is_symlink() || path.metadata().is_ok() {
        return None;
    }
    std::fs::read_link(path).ok()
}

fn split_ext(name: &str) -> (&str, &str) {
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, ext),
        _ => (name, ""),
    }
}

/// One step of a path, as the kernel checks it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    pub path: PathBuf,
    pub uid: u32,
    pub gid: u32,
    /// Permission bits, e.g. `0o750`.
    pub mode: u32,
    pub is_dir: bool,
    /// What the process lacks here, if anything: `search (x)` on a directory, `read (r)` on the file.
    pub missing: Option<String>,
}

/// Explains an EACCES for `path` opened for reading by a process with `uid` and `gids`: each existing step from
/// the root, its owner and mode, and the permission that is missing where.
pub fn eacces(path: &Path, uid: u32, gids: &[u32]) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut current = PathBuf::from("/");
    let mut todo: Vec<PathBuf> = vec![current.clone()];
    for c in path.components() {
        if let Component::Normal(name) = c {
            current = current.join(name);
            todo.push(current.clone());
        }
    }
    let last = todo.len().saturating_sub(1);
    for (i, p) in todo.into_iter().enumerate() {
        let Ok(meta) = std::fs::metadata(&p) else { break };
        let mode = meta.mode() & 0o7777;
        let is_dir = meta.is_dir();
        let (needed, label) = if i == last && !is_dir { (0o4, "read (r)") } else { (0o1, "search (x)") };
        let class_bits = if uid == 0 {
            // root passes r and x checks on anything with at least one x bit (for x) or always (for r).
            if needed == 0o1 && mode & 0o111 == 0 { 0 } else { 0o7 }
        } else if meta.uid() == uid {
            (mode >> 6) & 0o7
        } else if gids.contains(&meta.gid()) {
            (mode >> 3) & 0o7
        } else {
            mode & 0o7
        };
        let missing = (class_bits & needed == 0).then(|| label.to_string());
        steps.push(Step { path: p, uid: meta.uid(), gid: meta.gid(), mode, is_dir, missing });
    }
    steps
}

/// Whose permissions a path is checked with: a process's (from `/proc/PID/status`) or a user's (from
/// `/etc/passwd` and `/etc/group`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Reader {
    /// The user's name, when `/etc/passwd` has the uid.
    pub name: Option<String>,
    pub uid: u32,
    /// The primary group first, then the supplementary ones.
    pub gids: Vec<u32>,
    /// The process the credentials were read from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

impl Reader {
    /// `www-data (uid 33)`, or `uid 1001` without a name.
    pub fn label(&self) -> String {
        match &self.name {
            Some(name) => format!("{name} (uid {})", self.uid),
            None => format!("uid {}", self.uid),
        }
    }
}

/// Process names whose credentials are worth reading for a denial their log reports: a pid in an old log line may
/// since belong to something else (a root shell would say "may read it now").
const SERVER_NAMES: [&str; 9] = ["apache", "httpd", "nginx", "php", "lsphp", "lighttpd", "caddy", "frankenphp", "hhvm"];

/// The file-system credentials of a running web server or PHP process `pid` (`None` when it is gone or is not
/// one of [`SERVER_NAMES`]).
pub fn process_reader(pid: u32) -> Option<Reader> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    if !SERVER_NAMES.iter().any(|n| comm.trim().starts_with(n)) {
        return None;
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Vec<u32> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.split_whitespace().filter_map(|n| n.parse().ok()).collect())
            .unwrap_or_default()
    };
    // Real, effective, saved, file-system: the kernel checks paths against the last.
    let uid = *field("Uid:").get(3)?;
    let mut gids: Vec<u32> = field("Gid:").get(3).copied().into_iter().collect();
    for g in field("Groups:") {
        if !gids.contains(&g) {
            gids.push(g);
        }
    }
    Some(Reader { name: user_name(uid), uid, gids, pid: Some(pid) })
}

/// The user `name` from `/etc/passwd`, with its groups from `/etc/group`.
pub fn user_reader(name: &str) -> Option<Reader> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    reader_from(name, &passwd, &group)
}

fn reader_from(name: &str, passwd: &str, group: &str) -> Option<Reader> {
    let mut fields = passwd.lines().map(|l| l.split(':')).find(|f| f.clone().next() == Some(name))?.skip(2);
    let uid = fields.next()?.parse().ok()?;
    let primary: u32 = fields.next()?.parse().ok()?;
    let mut gids = vec![primary];
    for line in group.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if let [_, _, gid, members] = f[..]
            && members.split(',').any(|m| m == name)
            && let Ok(gid) = gid.parse()
            && !gids.contains(&gid)
        {
            gids.push(gid);
        }
    }
    Some(Reader { name: Some(name.to_string()), uid, gids, pid: None })
}

/// The name `/etc/passwd` gives `uid`.
pub fn user_name(uid: u32) -> Option<String> {
    id_name(&std::fs::read_to_string("/etc/passwd").ok()?, uid)
}

/// The name `/etc/group` gives `gid`.
pub fn group_name(gid: u32) -> Option<String> {
    id_name(&std::fs::read_to_string("/etc/group").ok()?, gid)
}

fn id_name(db: &str, id: u32) -> Option<String> {
    db.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)?.parse::<u32>().ok()? == id).then(|| name.to_string())
    })
}

/// `owner root, mode 0700` — with the group when the group's bits differ from everyone else's (then it matters).
fn owner_and_mode(step: &Step) -> String {
    let owner = user_name(step.uid).unwrap_or_else(|| format!("uid {}", step.uid));
    let group = if (step.mode >> 3) & 0o7 != step.mode & 0o7 {
        format!(", group {}", group_name(step.gid).unwrap_or_else(|| format!("gid {}", step.gid)))
    } else {
        String::new()
    };
    format!("owner {owner}{group}, mode {:04o}", step.mode)
}

/// Why `reader` may not read `path`, as a clause: `its directory /srv/www/inc (owner root, mode 0700) does not
/// let www-data (uid 33) enter`. Without a reader, each step's owner and mode (`on its path: /srv (owner root,
/// mode 0755), …`). Plain text: callers escape for their medium.
pub fn eacces_says(path: &Path, reader: Option<&Reader>) -> String {
    let Some(reader) = reader else {
        let steps = eacces(path, u32::MAX, &[]);
        if steps.last().map(|s| s.path.as_path()) != Some(path) {
            return "it does not exist now".into();
        }
        let each: Vec<String> =
            steps.iter().skip(1).map(|s| format!("{} ({})", s.path.display(), owner_and_mode(s))).collect();
        return format!("on its path: {}", each.join(", "));
    };
    let who = reader.label();
    let steps = eacces(path, reader.uid, &reader.gids);
    match steps.iter().find(|s| s.missing.is_some()) {
        Some(step) if step.is_dir => {
            let whose = if Some(step.path.as_path()) == path.parent() { "its directory" } else { "the directory" };
            let on_path = if whose == "the directory" { " on its path" } else { "" };
            format!("{whose} {}{on_path} ({}) does not let {who} enter", step.path.display(), owner_and_mode(step))
        }
        Some(step) => format!("it has {}, which does not let {who} read it", owner_and_mode(step)),
        None if steps.last().map(|s| s.path.as_path()) != Some(path) => "it does not exist now".into(),
        None => format!(
            "{who} may read it now (fixed since, or refused by an ACL, SELinux or AppArmor rather than the mode)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("www/inc")).unwrap();
        for f in ["settings.php", "Header.php", "footer.inc", "db.php", "unrelated-name.txt"] {
            std::fs::write(dir.path().join("www/inc").join(f), "x").unwrap();
        }
        dir
    }

    #[test]
    fn misspelled_extension_suggests_the_real_file() {
        let dir = tree();
        let inc = dir.path().join("www/inc");
        let hint = enoent(&inc.join("settings.phpp")).unwrap();
        assert_eq!(
            hint,
            Missing::File { path: inc.join("settings.phpp"), suggestions: vec![inc.join("settings.php")] }
        );
    }

    #[test]
    fn case_and_other_extensions_rank_first() {
        let dir = tree();
        let inc = dir.path().join("www/inc");
        assert_eq!(enoent(&inc.join("header.php")).unwrap().suggestions(), [inc.join("Header.php")]);
        assert_eq!(enoent(&inc.join("footer.php")).unwrap().suggestions(), [inc.join("footer.inc")]);
        assert!(enoent(&inc.join("completely-different")).unwrap().suggestions().is_empty());
        assert_eq!(enoent(&inc.join("settings.php")), None, "it exists");
        assert_eq!(enoent(Path::new("relative/path")), None);
    }

    #[test]
    fn differences_are_named() {
        let dir = tree();
        let inc = dir.path().join("www/inc");
        let case = enoent(&inc.join("header.php")).unwrap();
        assert_eq!(case.best(), Some((inc.join("Header.php").as_path(), Difference::Case)));
        assert_eq!(
            Difference::Case.says(),
            Some("it differs only by case — code written on a case-insensitive system?")
        );
        let ext = enoent(&inc.join("settings.phpp")).unwrap();
        assert_eq!(ext.best().map(|b| b.1), Some(Difference::Extension));
        let typo = enoent(&inc.join("setings.php")).unwrap();
        assert_eq!(typo.best().map(|b| b.1), Some(Difference::Spelling));
        let dir_case = enoent(&dir.path().join("www/INC/settings.php")).unwrap();
        assert_eq!(dir_case.best().map(|b| b.1), Some(Difference::Case));
    }

    #[test]
    fn a_path_that_exists_ignoring_case_is_found_whole() {
        let dir = tree();
        let www = dir.path().join("www");
        assert_eq!(ignoring_case(&www.join("INC/header.PHP")), Some(www.join("inc/Header.php")));
        assert_eq!(ignoring_case(&www.join("inc/Header.php")), None, "it exists as written");
        assert_eq!(ignoring_case(&www.join("inc/nothing.php")), None);
        assert_eq!(ignoring_case(Path::new("relative")), None);
        // Two names equal but for case: ambiguous, no answer.
        std::fs::write(www.join("inc/DB.php"), "x").unwrap();
        assert_eq!(ignoring_case(&www.join("inc/Db.php")), None);
    }

    #[test]
    fn dangling_symlinks_name_their_target() {
        let dir = tree();
        let link = dir.path().join("www/inc/getid3.php");
        std::os::unix::fs::symlink("/nonexistent-lookout/getid3.php", &link).unwrap();
        assert_eq!(dangling(&link), Some(PathBuf::from("/nonexistent-lookout/getid3.php")));
        assert_eq!(dangling(&dir.path().join("www/inc/db.php")), None);
        assert_eq!(dangling(&dir.path().join("www/inc/nothing")), None);
    }

    #[test]
    fn a_missing_directory_names_the_deepest_existing_ancestor() {
        let dir = tree();
        let www = dir.path().join("www");
        let hint = enoent(&www.join("incc/settings.php")).unwrap();
        assert_eq!(
            hint,
            Missing::Directory {
                path: www.join("incc/settings.php"),
                deepest_existing: www.clone(),
                missing: "incc".into(),
                suggestions: vec![www.join("inc")],
            }
        );
    }

    #[test]
    fn users_and_groups_are_read_from_passwd_and_group() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\nbad\n";
        let group = "root:x:0:\nwww-data:x:33:\nssl-cert:x:110:postgres,www-data\nbroken:x\n";
        let r = reader_from("www-data", passwd, group).unwrap();
        assert_eq!((r.uid, r.gids.as_slice(), r.label()), (33, &[33, 110][..], "www-data (uid 33)".to_string()));
        assert_eq!(reader_from("nginx", passwd, group), None);
        assert_eq!(reader_from("bad", passwd, group), None);
        assert_eq!(id_name(passwd, 33).as_deref(), Some("www-data"));
        assert_eq!(id_name(group, 110).as_deref(), Some("ssl-cert"));
        assert_eq!(id_name(passwd, 7), None);
        let nameless = Reader { name: None, uid: 1001, gids: vec![], pid: None };
        assert_eq!(nameless.label(), "uid 1001");
    }

    #[test]
    fn a_denial_names_the_step_that_blocks() {
        let dir = tree();
        let inc = dir.path().join("www/inc");
        let file = inc.join("settings.php");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&inc, std::fs::Permissions::from_mode(0o700)).unwrap();
        let meta = std::fs::metadata(&inc).unwrap();
        let owner = user_name(meta.uid()).unwrap_or_else(|| format!("uid {}", meta.uid()));
        let other =
            Reader { name: Some("someone".into()), uid: meta.uid().wrapping_add(4242), gids: vec![], pid: None };
        assert_eq!(
            eacces_says(&file, Some(&other)),
            format!(
                "its directory {} (owner {owner}, mode 0700) does not let someone (uid {}) enter",
                inc.display(),
                other.uid
            )
        );
        // Higher up the path, it is "the directory … on its path".
        std::fs::set_permissions(&inc, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(dir.path().join("www"), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(
            eacces_says(&file, Some(&other))
                .starts_with(&format!("the directory {} on its path (owner", dir.path().join("www").display())),
            "{}",
            eacces_says(&file, Some(&other))
        );
        // The file itself; the group is named when its bits differ from everyone else's.
        std::fs::set_permissions(dir.path().join("www"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        let group = group_name(meta.gid()).unwrap_or_else(|| format!("gid {}", meta.gid()));
        assert_eq!(
            eacces_says(&file, Some(&other)),
            format!(
                "it has owner {owner}, group {group}, mode 0640, which does not let someone (uid {}) read it",
                other.uid
            )
        );
        // Its owner may read it: the mode is not why.
        let owner_reader = Reader { name: None, uid: meta.uid(), gids: vec![], pid: None };
        assert!(eacces_says(&file, Some(&owner_reader)).contains("may read it now"));
        assert_eq!(eacces_says(&inc.join("gone.php"), Some(&other)), "it does not exist now");
        // Nobody to check for: each step's owner and mode.
        let listed = eacces_says(&file, None);
        assert!(listed.starts_with("on its path: "), "{listed}");
        assert!(
            listed.ends_with(&format!(
                "{} (owner {owner}, mode 0755), {} (owner {owner}, group {group}, mode 0640)",
                inc.display(),
                file.display()
            )),
            "{listed}"
        );
    }

    #[test]
    fn a_running_server_process_lends_its_credentials() {
        // This test process is no web server: its pid says nothing about who read the file.
        assert_eq!(process_reader(std::process::id()), None);
        assert_eq!(process_reader(u32::MAX), None);
    }

    #[test]
    fn permission_steps_say_what_is_missing_where() {
        let dir = tree();
        let inc = dir.path().join("www/inc");
        let file = inc.join("settings.php");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let meta = std::fs::metadata(&file).unwrap();
        // Someone else (not the owner, not in its group) cannot read a 0600 file.
        let other_uid = meta.uid().wrapping_add(12345);
        let steps = eacces(&file, other_uid, &[meta.gid().wrapping_add(999)]);
        let last = steps.last().unwrap();
        assert_eq!(last.path, file);
        assert_eq!(last.mode, 0o600);
        assert_eq!(last.missing.as_deref(), Some("read (r)"));
        // The owner can.
        let owner = eacces(&file, meta.uid(), &[]);
        assert_eq!(owner.last().unwrap().missing, None);
        // A directory without x for others blocks the search.
        std::fs::set_permissions(&inc, std::fs::Permissions::from_mode(0o750)).unwrap();
        let blocked = eacces(&file, other_uid, &[]);
        let inc_step = blocked.iter().find(|s| s.path == inc).unwrap();
        assert_eq!(inc_step.missing.as_deref(), Some("search (x)"));
        assert!(inc_step.is_dir);
    }
}
