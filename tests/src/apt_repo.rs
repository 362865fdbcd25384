//! A signed flat apt repository built on this machine in a temporary
//! directory, for tests that serve it on loopback: its own throwaway
//! OpenPGP key (a private `GNUPGHOME`, removed afterwards), one
//! `Architecture: all` package per name and version, `Packages`, `Release`
//! and a clear-signed `InRelease`. Needs `gpg`, `dpkg-deb` and
//! `dpkg-scanpackages` (`.ci/run` installs them).

use std::path::Path;
use std::process::Command;

/// The repository's files by name (served at the repository's root) and the
/// armored public key and fingerprint that sign it.
pub struct SignedRepo {
    pub files: Vec<(String, Vec<u8>)>,
    pub key: String,
    pub fingerprint: String,
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn sha256(path: &Path) -> String {
    let out = run(Command::new("sha256sum").arg(path));
    String::from_utf8_lossy(&out).split_whitespace().next().unwrap_or_default().to_string()
}

/// Builds the repository with an `Architecture: all` package per `(name,
/// version)`; each installs `/usr/share/NAME/version` holding its version.
pub fn build(packages: &[(&str, &str)]) -> SignedRepo {
    let all: Vec<(&str, &str, &str)> = packages.iter().map(|(n, v)| (*n, *v, "all")).collect();
    build_for(&all)
}

/// Builds the repository with a package per `(name, version, architecture)`;
/// one that is not `all` is `Multi-Arch: same` and installs
/// `/usr/share/NAME/version-ARCH`.
pub fn build_for(packages: &[(&str, &str, &str)]) -> SignedRepo {
    let dir = tempfile::tempdir().expect("tempdir");
    let gnupg = dir.path().join("gnupg");
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).expect("repo dir");
    std::fs::create_dir(&gnupg).expect("gnupg dir");
    std::fs::set_permissions(&gnupg, std::os::unix::fs::PermissionsExt::from_mode(0o700)).expect("chmod");
    let gpg = || {
        let mut c = Command::new("gpg");
        c.env("GNUPGHOME", &gnupg).args(["--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", ""]);
        c
    };
    run(gpg().args(["--quick-gen-key", "tend test <test@tend.invalid>", "ed25519", "sign", "never"]));
    let colons = String::from_utf8(run(gpg().args(["--with-colons", "--list-keys"]))).expect("utf-8");
    let fingerprint = colons
        .lines()
        .find_map(|l| l.strip_prefix("fpr:").map(|r| r.trim_matches(':').to_string()))
        .expect("a fingerprint");
    let key = String::from_utf8(run(gpg().args(["--armor", "--export", &fingerprint]))).expect("armored key");

    for (name, version, arch) in packages {
        let root = dir.path().join(format!("{name}-{version}-{arch}"));
        let (payload, multi) = if *arch == "all" {
            ("version".to_string(), "")
        } else {
            (format!("version-{arch}"), "Multi-Arch: same\n")
        };
        std::fs::create_dir_all(root.join("DEBIAN")).expect("DEBIAN");
        std::fs::create_dir_all(root.join(format!("usr/share/{name}"))).expect("share");
        std::fs::write(root.join(format!("usr/share/{name}/{payload}")), format!("{version}\n")).expect("payload");
        std::fs::write(
            root.join("DEBIAN/control"),
            format!(
                "Package: {name}\nVersion: {version}\nArchitecture: {arch}\n{multi}\
                 Maintainer: tend <test@tend.invalid>\nDescription: a tend test package\n"
            ),
        )
        .expect("control");
        let deb = format!("{name}_{}_{arch}.deb", version.replace(':', "%3a"));
        run(Command::new("dpkg-deb").args(["--build", "--root-owner-group"]).arg(&root).arg(repo.join(deb)));
    }
    let index = run(Command::new("dpkg-scanpackages").arg("--multiversion").arg(".").current_dir(&repo));
    std::fs::write(repo.join("Packages"), &index).expect("Packages");
    let release = format!(
        "Origin: tend-test\nLabel: tend-test\nDate: {}\nSHA256:\n {} {} Packages\n",
        String::from_utf8_lossy(&run(Command::new("date").args(["-u", "-R"]))).trim(),
        sha256(&repo.join("Packages")),
        index.len()
    );
    std::fs::write(repo.join("Release"), release).expect("Release");
    run(gpg().args(["--clearsign", "-u", &fingerprint, "-o"]).arg(repo.join("InRelease")).arg(repo.join("Release")));
    let _ = Command::new("gpgconf").env("GNUPGHOME", &gnupg).args(["--kill", "all"]).status();

    let mut files = Vec::new();
    for entry in std::fs::read_dir(&repo).expect("read repo").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        files.push((name, std::fs::read(entry.path()).expect("read")));
    }
    SignedRepo { files, key, fingerprint }
}
