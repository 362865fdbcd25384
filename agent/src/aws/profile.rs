//! AWS shared configuration files (`~/.aws/credentials`, `~/.aws/config`),
//! as the AWS CLI writes them: the S3 source's second source of
//! credentials, after the environment and before the instance profile.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The settings of one profile, merged from both files (the credentials
/// file wins).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Profile {
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
}

/// Reads the profile `AWS_PROFILE` (or `default`) from
/// `AWS_SHARED_CREDENTIALS_FILE` and `AWS_CONFIG_FILE` (or their places
/// under `$HOME/.aws`). Missing files are simply empty.
pub fn from_env() -> Profile {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let home = var("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"));
    let creds = var("AWS_SHARED_CREDENTIALS_FILE").map(PathBuf::from).unwrap_or_else(|| home.join(".aws/credentials"));
    let config = var("AWS_CONFIG_FILE").map(PathBuf::from).unwrap_or_else(|| home.join(".aws/config"));
    let name = var("AWS_PROFILE").unwrap_or_else(|| "default".into());
    load(&creds, &config, &name)
}

pub fn load(credentials: &Path, config: &Path, profile: &str) -> Profile {
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let creds = sections(&read(credentials));
    let conf = sections(&read(config));
    // The config file names profiles `[profile NAME]`, except `[default]`.
    let conf_name = if profile == "default" { "default".to_string() } else { format!("profile {profile}") };
    let get = |key: &str| {
        creds.get(profile).and_then(|s| s.get(key)).or_else(|| conf.get(&conf_name).and_then(|s| s.get(key))).cloned()
    };
    Profile {
        access_key_id: get("aws_access_key_id"),
        secret_access_key: get("aws_secret_access_key"),
        session_token: get("aws_session_token"),
        region: get("region"),
        endpoint_url: get("endpoint_url"),
    }
}

type Sections = BTreeMap<String, BTreeMap<String, String>>;

/// The INI dialect of the AWS files: `[section]`, `key = value`, comments
/// with `#` or `;`. Indented lines (nested settings) are skipped.
fn sections(text: &str) -> Sections {
    let mut out = Sections::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
            out.entry(name.clone()).or_default();
            current = Some(name);
        } else if let (Some(section), Some((k, v))) = (&current, line.split_once('=')) {
            let v = v.trim();
            if !v.is_empty() {
                out.entry(section.clone()).or_default().insert(k.trim().to_lowercase(), v.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_profiles_from_both_files_with_the_credentials_file_winning() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("credentials");
        let config = dir.path().join("config");
        std::fs::write(
            &creds,
            "# comment\n[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key=s3cret\n\n[ops]\naws_access_key_id = AKIAOPS\naws_secret_access_key = opssecret\naws_session_token = tok\n",
        )
        .unwrap();
        std::fs::write(
            &config,
            "[default]\nregion = eu-west-1\n[profile ops]\nregion = us-east-2\nendpoint_url = http://127.0.0.1:9000\naws_access_key_id = IGNORED\ns3 =\n  addressing_style = path\n",
        )
        .unwrap();
        let d = load(&creds, &config, "default");
        assert_eq!(d.access_key_id.as_deref(), Some("AKIADEFAULT"));
        assert_eq!(d.secret_access_key.as_deref(), Some("s3cret"));
        assert_eq!(d.region.as_deref(), Some("eu-west-1"));
        let ops = load(&creds, &config, "ops");
        assert_eq!(ops.access_key_id.as_deref(), Some("AKIAOPS"));
        assert_eq!(ops.session_token.as_deref(), Some("tok"));
        assert_eq!(ops.region.as_deref(), Some("us-east-2"));
        assert_eq!(ops.endpoint_url.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(load(&creds, &config, "nope"), Profile::default());
        assert_eq!(load(&dir.path().join("x"), &dir.path().join("y"), "default"), Profile::default());
    }
}
