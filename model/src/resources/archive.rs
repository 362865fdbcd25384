use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An archive on the host extracted into a directory (`archive: /opt/app`).
/// A downloaded archive is a `download` of `source` first (ordered
/// implicitly), which verifies it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArchiveProps {
    /// The archive, an absolute path on the host.
    pub source: String,
    /// The archive's SHA-256, checked before anything is extracted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The format; by default from `source`'s extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<ArchiveFormat>,
    /// Leading path components dropped from each entry (`tar --strip-components`).
    #[serde(default)]
    pub strip_components: u32,
    /// Owner of everything extracted (default: root, whatever the archive records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// A path whose existence means "already extracted": then the archive is not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creates: Option<String>,
    /// The most bytes extracted in all (default 4 GiB): an archive that
    /// expands beyond it is refused before anything is written.
    #[serde(default = "default_max_size")]
    pub max_size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
pub enum ArchiveFormat {
    #[serde(rename = "tar")]
    Tar,
    #[serde(rename = "tar.gz")]
    TarGz,
    #[serde(rename = "tar.xz")]
    TarXz,
    #[serde(rename = "tar.zst")]
    TarZst,
    #[serde(rename = "zip")]
    Zip,
}

fn default_max_size() -> u64 {
    4 << 30
}

impl ArchiveFormat {
    /// The format a file name's extension names.
    pub fn from_name(name: &str) -> Option<Self> {
        let n = name.to_ascii_lowercase();
        [
            (".tar.gz", Self::TarGz),
            (".tgz", Self::TarGz),
            (".tar.xz", Self::TarXz),
            (".txz", Self::TarXz),
            (".tar.zst", Self::TarZst),
            (".tzst", Self::TarZst),
            (".zip", Self::Zip),
            (".tar", Self::Tar),
        ]
        .into_iter()
        .find_map(|(ext, f)| n.ends_with(ext).then_some(f))
    }
}

impl ArchiveProps {
    /// The format given or implied by the source's name.
    pub fn format(&self) -> Option<ArchiveFormat> {
        self.format.or_else(|| ArchiveFormat::from_name(&self.source))
    }

    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(e) = super::check_absolute_path(&self.source) {
            out.push((
                "source",
                format!("{e}; fetch a remote archive with a `download` resource and extract its path"),
            ));
        } else if self.format().is_none() {
            out.push((
                "format",
                format!("{:?} has no known extension: give `format` (tar, tar.gz, tar.xz, tar.zst, zip)", self.source),
            ));
        }
        if let Some(h) = &self.sha256 {
            if !super::download::is_sha256(h) {
                out.push(("sha256", format!("{h:?} is not 64 hex digits")));
            }
        }
        if let Some(c) = &self.creates {
            out.extend(super::check_absolute_path(c).map(|e| ("creates", e)));
        }
        if self.strip_components > 64 {
            out.push(("strip_components", "at most 64".into()));
        }
        if self.max_size == 0 {
            out.push(("max_size", "at least 1 byte".into()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_comes_from_the_extension_unless_given() {
        let p: ArchiveProps = serde_yaml::from_str("source: /tmp/app-1.2.TGZ\n").expect("props");
        assert_eq!(p.format(), Some(ArchiveFormat::TarGz));
        assert!(p.problems().is_empty());
        let p: ArchiveProps = serde_yaml::from_str("source: /tmp/app.bin\n").expect("props");
        assert_eq!(p.problems()[0].0, "format");
        let p: ArchiveProps = serde_yaml::from_str("source: /tmp/app.bin\nformat: tar.zst\n").expect("props");
        assert!(p.problems().is_empty());
        let p: ArchiveProps = serde_yaml::from_str("source: https://x/app.zip\n").expect("props");
        assert!(p.problems()[0].1.contains("`download`"), "{:?}", p.problems());
    }
}
