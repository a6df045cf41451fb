//! `lookout man-pages DIR`: the man pages, generated from the same clap definitions as `--help` (so they cannot
//! drift): `lookout.1` for the program and `lookout-COMMAND.1` for each command, as git and cargo ship theirs.

use std::path::Path;

use anyhow::Context as _;

/// Writes `lookout.1` and a page per subcommand into `dir` (made if missing); returns 0.
pub fn write(command: clap::Command, dir: &Path) -> anyhow::Result<u8> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot make {}", dir.display()))?;
    let command = command.name("lookout");
    page(&command, "lookout", dir)?;
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("lookout-{}", sub.get_name());
        page(&sub.clone().name(name.clone()), &name, dir)?;
    }
    Ok(0)
}

fn page(command: &clap::Command, name: &str, dir: &Path) -> anyhow::Result<()> {
    let mut text = Vec::new();
    clap_mangen::Man::new(command.clone())
        .render(&mut text)
        .with_context(|| format!("cannot render the page of {name}"))?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}
