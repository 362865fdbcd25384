//! Components: reusable definitions with their own typed parameters and
//! resources (Puppet's `define`, Chef's custom resources), in files with
//! `kind: Component`, instantiated with `use`.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use indexmap::IndexMap;
use serde_yaml::Value;

use crate::data::Level;
use crate::diag::{Diagnostic, Diagnostics};
use crate::load::{SourceFile, join_normalized};
use crate::locate::YamlPath;
use crate::params::ParamSpec;
use crate::suggest::did_you_mean;

pub const TOP_KEYS: &[&str] = &["kind", "name", "description", "parameters", "data", "resources"];

/// Components used inside one another.
pub const MAX_DEPTH: usize = 16;

/// A loaded component file.
pub struct Component {
    pub file: Rc<SourceFile>,
    pub name: String,
    pub specs: IndexMap<String, ParamSpec>,
    pub levels: Vec<Level>,
}

/// Where `use: NAME` is looked for, in order: `components/NAME.yaml` beside
/// the file that uses it, `NAME.yaml` beside it (a component using a sibling),
/// then `components/NAME.yaml` beside the root recipe. A value with a `/` or a
/// `.yaml` suffix is a path relative to the using file.
pub fn candidates(name: &str, using: &Path, root_dir: &Path) -> Vec<PathBuf> {
    if name.contains('/') || name.ends_with(".yaml") || name.ends_with(".yml") {
        return vec![join_normalized(using, name)];
    }
    let file = format!("{name}.yaml");
    let mut v = vec![
        join_normalized(using, &format!("components/{file}")),
        join_normalized(using, &file),
        join_normalized(root_dir, &format!("components/{file}")),
    ];
    let mut seen = std::collections::HashSet::new();
    v.retain(|p| seen.insert(p.clone()));
    v
}

/// A valid component name: what `use:` can name without a path.
pub fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 64 && n.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

/// Reads and checks a component file. Problems go to `diags`; None when the
/// file cannot be used at all.
pub fn load(path: &Path, bytes: Vec<u8>, diags: &mut Diagnostics) -> Option<Component> {
    let file = match SourceFile::parse(path, bytes, "component") {
        Ok(f) => f,
        Err(d) => {
            diags.push(*d);
            return None;
        }
    };
    let root = YamlPath::root();
    let Value::Mapping(m) = &file.doc else {
        diags.push(file.diag_value(&root, "a component is a mapping with `kind: Component`, `name` and `resources`"));
        return None;
    };
    for k in m.keys() {
        let key = k.as_str().unwrap_or("?");
        if !TOP_KEYS.contains(&key) {
            diags.push(
                file.diag_key(&root.key(key), format!("unknown top-level key `{key}` in a component"))
                    .hint(did_you_mean(key, TOP_KEYS.iter().copied())),
            );
        }
    }
    if m.get("kind").and_then(Value::as_str) != Some("Component") {
        diags.push(
            Diagnostic::new(&file.path, format!("{} is not a component: it needs `kind: Component`", path.display()))
                .at(file.locations().value(&root.key("kind"))),
        );
        return None;
    }
    let name = match m.get("name") {
        Some(Value::String(n)) if valid_name(n) => n.clone(),
        _ => {
            diags.push(file.diag_value(&root.key("name"), "a component needs a `name` (letters, digits, `-`, `_`)"));
            return None;
        }
    };
    let specs = crate::compile::declared_params(&file, diags);
    let levels = crate::data::declaration(&file, diags);
    Some(Component { file: Rc::new(file), name, specs, levels })
}
