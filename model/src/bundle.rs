//! Recipe bundles: a recipe with every file it reads (includes, templates,
//! sources), as the server stores them and agents fetch them. A bundle's
//! version is the hash of its content, so versions are immutable.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::diag::{Diagnostic, Diagnostics};
use crate::load::{FsSource, RecipeSource, join_normalized};
use crate::params::Overrides;
use crate::{CompileOptions, Plan};

/// A recipe and the files it reads, by path relative to the recipe's directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    /// The recipe's name (its `name:` key).
    pub name: String,
    /// The root recipe file, a key of `files`.
    pub root: String,
    pub files: BTreeMap<String, String>,
    /// An ed25519 signature over `canonical()`, by the key that pushed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<BundleSignature>,
}

/// Who signed a bundle, and the signature (both hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleSignature {
    pub public_key: String,
    pub signature: String,
}

/// Serves a bundle's files to the loader.
impl RecipeSource for Bundle {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        let key = join_normalized(Path::new(""), &path.to_string_lossy());
        self.files.get(key.to_string_lossy().as_ref()).map(|s| s.clone().into_bytes()).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, format!("{} is not in the bundle", path.display()))
        })
    }

    fn list(&self, dir: &Path) -> Vec<String> {
        let dir = join_normalized(Path::new(""), &dir.to_string_lossy());
        let prefix = dir.to_string_lossy();
        let mut out: Vec<String> = self
            .files
            .keys()
            .filter_map(|k| {
                if prefix.is_empty() { Some(k.as_str()) } else { k.strip_prefix(prefix.as_ref())?.strip_prefix('/') }
            })
            .map(|rest| rest.split('/').next().unwrap_or(rest).to_string())
            .collect();
        out.dedup();
        out
    }
}

/// Records every file the loader reads from disk.
struct Recording {
    read: RefCell<BTreeMap<PathBuf, Vec<u8>>>,
}

impl RecipeSource for Recording {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        let bytes = FsSource.read(path)?;
        self.read.borrow_mut().insert(path.to_path_buf(), bytes.clone());
        Ok(bytes)
    }

    fn list(&self, dir: &Path) -> Vec<String> {
        FsSource.list(dir)
    }
}

impl Bundle {
    /// Loads and validates a recipe file (with placeholder facts), and bundles
    /// every file it read. Invalid recipes give their diagnostics.
    pub fn from_file(path: &Path, skeleton: &serde_json::Value) -> Result<Bundle, Diagnostics> {
        let rec = Recording { read: RefCell::new(BTreeMap::new()) };
        let set = crate::load(&rec, &[path.to_path_buf()]);
        let opts = CompileOptions {
            facts: skeleton,
            fact_skeleton: skeleton,
            placeholder_facts: true,
            overrides: &Overrides::default(),
        };
        let overrides = Overrides { placeholders: true, ..Overrides::default() };
        let opts = CompileOptions { overrides: &overrides, ..opts };
        let plan = crate::compile(&set, &rec, &opts)?;
        let root = join_normalized(Path::new(""), &path.to_string_lossy());
        let base = root.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut files = BTreeMap::new();
        let mut diags = Diagnostics::default();
        for (p, bytes) in rec.read.into_inner() {
            let Ok(rel) = p.strip_prefix(&base) else {
                diags.push(Diagnostic::new(
                    &p,
                    format!("{} is outside the recipe's directory {}", p.display(), base.display()),
                ));
                continue;
            };
            match String::from_utf8(bytes) {
                Ok(text) => {
                    files.insert(rel.to_string_lossy().into_owned(), text);
                }
                Err(_) => diags.push(Diagnostic::new(&p, "bundles carry text files only; this file is binary")),
            }
        }
        diags.into_result()?;
        let root = root.strip_prefix(&base).unwrap_or(&root).to_string_lossy().into_owned();
        Ok(Bundle { name: plan.recipes.first().cloned().unwrap_or_default(), root, files, signature: None })
    }

    /// Compiles the bundle against real facts and parameters.
    pub fn compile(
        &self,
        facts: &serde_json::Value,
        skeleton: &serde_json::Value,
        overrides: &Overrides,
    ) -> Result<Plan, Diagnostics> {
        let set = crate::load(self, &[PathBuf::from(&self.root)]);
        let opts = CompileOptions { facts, fact_skeleton: skeleton, placeholder_facts: false, overrides };
        crate::compile(&set, self, &opts)
    }

    /// Validates the bundle as the agent would, without a host. Parameters
    /// with no value get placeholders (values come with assignments).
    pub fn validate(&self, skeleton: &serde_json::Value) -> Result<Plan, Diagnostics> {
        self.validate_with(skeleton, &Overrides { placeholders: true, ..Overrides::default() })
    }

    /// Validates the bundle with these parameter values, without a host.
    pub fn validate_with(&self, skeleton: &serde_json::Value, overrides: &Overrides) -> Result<Plan, Diagnostics> {
        let set = crate::load(self, &[PathBuf::from(&self.root)]);
        let opts = CompileOptions { facts: skeleton, fact_skeleton: skeleton, placeholder_facts: true, overrides };
        crate::compile(&set, self, &opts)
    }

    /// The bytes a signature covers: the bundle without its signature.
    pub fn canonical(&self) -> Vec<u8> {
        let unsigned = Bundle { signature: None, ..self.clone() };
        serde_json::to_vec(&unsigned).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundles_the_example_recipe_with_its_include_and_template() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../recipes/web.yaml");
        let skel = crate::facts::skeleton();
        let b = Bundle::from_file(&root, &skel).unwrap();
        assert_eq!(b.name, "web");
        assert_eq!(b.root, "web.yaml");
        let keys: Vec<&str> = b.files.keys().map(String::as_str).collect();
        assert_eq!(keys, ["base.yaml", "templates/app.conf.hbs", "web.yaml"]);
        let plan = b.validate(&skel).unwrap();
        assert_eq!(plan.resources.len(), 6);
    }

    #[test]
    fn bundles_carry_components_their_templates_and_every_data_file() {
        let skel = crate::facts::skeleton();
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../recipes/examples");
        let ntp = Bundle::from_file(&examples.join("ntp/ntp.yaml"), &skel).unwrap();
        for f in [
            "chrony.yaml",
            "ntpsec.yaml",
            "data/common.yaml",
            "data/os/debian.yaml",
            "data/os/redhat.yaml",
            "data/virt/container.yaml",
        ] {
            assert!(ntp.files.contains_key(f), "{f} not in {:?}", ntp.files.keys());
        }
        ntp.validate(&skel).unwrap();
        let nginx = Bundle::from_file(&examples.join("nginx/site.yaml"), &skel).unwrap();
        for f in ["components/vhost.yaml", "components/templates/server.conf.hbs"] {
            assert!(nginx.files.contains_key(f), "{f} not in {:?}", nginx.files.keys());
        }
        nginx.validate(&skel).unwrap();
    }
}
