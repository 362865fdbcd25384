//! Man pages and shell completions generated from a binary's clap
//! definition, for the packages: `NAME assets --out DIR` writes
//! `DIR/man/NAME.1` (and one page per subcommand, `NAME-SUB.1`) and
//! `DIR/completions/{NAME.bash,_NAME,NAME.fish}`.

use std::path::Path;

/// Writes the man pages and completions of `cmd` under `dir`.
pub fn write(mut cmd: clap::Command, dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let name = cmd.get_name().to_string();
    let man = dir.join("man");
    let completions = dir.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    cmd.build();
    let mut written = Vec::new();
    write_pages(&cmd, &name, &man, &mut written)?;
    use clap_complete::Shell;
    for (shell, file) in
        [(Shell::Bash, format!("{name}.bash")), (Shell::Zsh, format!("_{name}")), (Shell::Fish, format!("{name}.fish"))]
    {
        let path = completions.join(file);
        let mut out = std::fs::File::create(&path)?;
        clap_complete::generate(shell, &mut cmd, name.clone(), &mut out);
        written.push(path);
    }
    Ok(written)
}

fn write_pages(
    cmd: &clap::Command,
    page: &str,
    dir: &Path,
    written: &mut Vec<std::path::PathBuf>,
) -> std::io::Result<()> {
    let path = dir.join(format!("{page}.1"));
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone()).title(page.to_uppercase()).render(&mut buf)?;
    std::fs::write(&path, buf)?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        write_pages(sub, &format!("{page}-{}", sub.get_name()), dir, written)?;
    }
    Ok(())
}
