//! Reads recipe files and their includes, and checks their YAML syntax.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use serde_yaml::Value;

use crate::diag::{Diagnostic, Diagnostics};
use crate::locate::{Locations, YamlPath};
use crate::suggest::did_you_mean;

/// Where recipe files (and their templates) come from: the filesystem, or a
/// bundle held in memory by the server.
pub trait RecipeSource {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>>;
}

/// Reads recipes from the local filesystem.
pub struct FsSource;

impl RecipeSource for FsSource {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        std::fs::read(path)
    }
}

/// One parsed recipe file.
#[derive(Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
    pub doc: Value,
    locations: OnceLock<Locations>,
}

impl SourceFile {
    /// Positions of the document's nodes, computed on first use (error paths only).
    pub fn locations(&self) -> &Locations {
        self.locations.get_or_init(|| Locations::of(&self.text))
    }

    /// A diagnostic pointing at the value at `path`.
    pub fn diag_value(&self, path: &YamlPath, msg: impl Into<String>) -> Diagnostic {
        Diagnostic::new(&self.path, msg).at(self.locations().value(path))
    }

    /// A diagnostic pointing at the key of the entry at `path`.
    pub fn diag_key(&self, path: &YamlPath, msg: impl Into<String>) -> Diagnostic {
        Diagnostic::new(&self.path, msg).at(self.locations().key(path))
    }

    /// The directory relative paths in this file are resolved against.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new(""))
    }
}

/// The recipe files of one run: the roots given, then their includes.
#[derive(Debug, Default)]
pub struct RecipeSet {
    pub files: Vec<SourceFile>,
    /// Problems found while loading; `compile` reports them with its own,
    /// so that one run lists every problem.
    pub problems: Diagnostics,
}

/// Recipe files in one recipe set (the roots and everything they include).
pub const MAX_FILES: usize = 256;

pub const TOP_KEYS: &[&str] = &["name", "description", "parameters", "include", "resources"];

/// Joins and normalises a path lexically (no filesystem access), so bundles
/// and directories resolve includes the same way.
pub fn join_normalized(base: &Path, rel: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in base.join(rel).components() {
        match c {
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Loads the given recipe files and everything they include. Files that
/// cannot be read or parsed are left out, with their problems recorded.
pub fn load(source: &dyn RecipeSource, roots: &[PathBuf]) -> RecipeSet {
    let mut set = RecipeSet::default();
    let mut diags = Diagnostics::default();
    let mut seen = HashSet::new();
    // (path, where it was included from)
    let mut queue: Vec<(PathBuf, Option<Diagnostic>)> =
        roots.iter().map(|p| (join_normalized(Path::new(""), &p.to_string_lossy()), None)).collect();
    queue.reverse();
    while let Some((path, from)) = queue.pop() {
        if !seen.insert(path.clone()) {
            continue;
        }
        if set.files.len() >= MAX_FILES {
            diags.push(Diagnostic::new(
                &path,
                format!("more than {MAX_FILES} recipe files in one recipe set (limit: recipe.max_files)"),
            ));
            break;
        }
        let Some(file) = read_one(source, &path, from, &mut diags) else {
            continue;
        };
        if let Some(Value::Sequence(incs)) = file.doc.get("include") {
            let mut next = Vec::new();
            for (i, inc) in incs.iter().enumerate() {
                match inc.as_str() {
                    Some(rel) => next.push((
                        join_normalized(file.dir(), rel),
                        Some(file.diag_value(&YamlPath::root().key("include").index(i), "")),
                    )),
                    None => diags.push(file.diag_value(
                        &YamlPath::root().key("include").index(i),
                        "each include is a path to a recipe file, relative to this one",
                    )),
                }
            }
            queue.extend(next.into_iter().rev());
        }
        set.files.push(file);
    }
    set.problems = diags;
    set
}

fn read_one(
    source: &dyn RecipeSource,
    path: &Path,
    from: Option<Diagnostic>,
    diags: &mut Diagnostics,
) -> Option<SourceFile> {
    let bytes = match source.read(path) {
        Ok(b) => b,
        Err(e) => {
            let msg = format!("cannot read recipe {}: {e}", path.display());
            diags.push(match from {
                Some(d) => Diagnostic { message: format!("include: {msg}"), ..d },
                None => Diagnostic::new(path, msg),
            });
            return None;
        }
    };
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            diags.push(Diagnostic::new(path, format!("recipe is not UTF-8 text: {e}")));
            return None;
        }
    };
    if let Err(e) = crate::yaml::check(&text, &crate::yaml::YamlLimits::RECIPE) {
        diags.push(Diagnostic::new(path, e.message.clone()).at(e.pos()));
        return None;
    }
    let doc: Value = match serde_yaml::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            let pos = e.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
            diags.push(Diagnostic::new(path, format!("invalid YAML: {e}")).at(pos));
            return None;
        }
    };
    let file = SourceFile { path: path.to_path_buf(), text, doc, locations: OnceLock::new() };
    match &file.doc {
        Value::Mapping(m) => {
            for k in m.keys() {
                let key = k.as_str().unwrap_or("?");
                if !TOP_KEYS.contains(&key) {
                    diags.push(
                        file.diag_key(&YamlPath::root().key(key), format!("unknown top-level key `{key}`"))
                            .hint(did_you_mean(key, TOP_KEYS.iter().copied())),
                    );
                }
            }
            if let Some(inc) = m.get("include") {
                if !inc.is_sequence() {
                    diags.push(file.diag_value(&YamlPath::root().key("include"), "`include` must be a list of paths"));
                }
            }
        }
        Value::Null => diags.push(Diagnostic::new(path, "the recipe is empty")),
        _ => diags.push(file.diag_value(&YamlPath::root(), "a recipe is a mapping with `name` and `resources`")),
    }
    Some(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_relative_includes() {
        assert_eq!(join_normalized(Path::new("recipes/web"), "../base.yaml"), PathBuf::from("recipes/base.yaml"));
        assert_eq!(join_normalized(Path::new(""), "./a.yaml"), PathBuf::from("a.yaml"));
    }
}
