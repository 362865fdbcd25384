//! Reads recipe files and their includes, and checks their YAML syntax.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use serde_yaml::Value;

use crate::condition::When;
use crate::diag::{Diagnostic, Diagnostics};
use crate::locate::{Locations, YamlPath};
use crate::suggest::did_you_mean;

/// Where recipe files (and their templates) come from: the filesystem, or a
/// bundle held in memory by the server.
pub trait RecipeSource {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>>;

    /// The names of the entries of a directory (files and directories), to
    /// find every data file a hierarchy level can match. A source that cannot
    /// list returns nothing.
    fn list(&self, _dir: &Path) -> Vec<String> {
        Vec::new()
    }
}

/// Reads recipes from the local filesystem.
pub struct FsSource;

impl RecipeSource for FsSource {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn list(&self, dir: &Path) -> Vec<String> {
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
        entries.filter_map(Result::ok).filter_map(|e| e.file_name().into_string().ok()).take(MAX_LISTED).collect()
    }
}

/// Entries looked at in one directory when matching hierarchy levels.
pub const MAX_LISTED: usize = 10_000;

/// One parsed recipe file.
#[derive(Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
    pub doc: Value,
    /// The files that include this one, each with the include's condition
    /// (empty for a root).
    pub included_by: Vec<IncludeEdge>,
    locations: OnceLock<Locations>,
}

/// One `include:` entry that named a file.
#[derive(Debug, Clone)]
pub struct IncludeEdge {
    /// The including file (an index into `RecipeSet::files`).
    pub parent: usize,
    /// `include: [{file: x.yaml, when: …}]`: the file's resources take part
    /// only when this holds.
    pub when: Option<When>,
}

impl SourceFile {
    /// Parses one YAML file (a recipe, a component, a data level), bounded
    /// before parsing. `what` names it in messages.
    pub fn parse(path: &Path, bytes: Vec<u8>, what: &str) -> Result<SourceFile, Box<Diagnostic>> {
        let text =
            String::from_utf8(bytes).map_err(|e| Diagnostic::new(path, format!("{what} is not UTF-8 text: {e}")))?;
        if let Err(e) = crate::yaml::check(&text, &crate::yaml::YamlLimits::RECIPE) {
            return Err(Diagnostic::new(path, e.message.clone()).at(e.pos()).into());
        }
        let doc: Value = serde_yaml::from_str(&text).map_err(|e| {
            let pos = e.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
            Diagnostic::new(path, format!("invalid YAML: {e}")).at(pos)
        })?;
        Ok(SourceFile { path: path.to_path_buf(), text, doc, included_by: Vec::new(), locations: OnceLock::new() })
    }

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

pub const TOP_KEYS: &[&str] = &["name", "description", "parameters", "include", "data", "resources"];

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
    let mut index: HashMap<PathBuf, usize> = HashMap::new();
    // (path, the include that named it)
    let mut queue: Vec<(PathBuf, Option<(Diagnostic, IncludeEdge)>)> =
        roots.iter().map(|p| (join_normalized(Path::new(""), &p.to_string_lossy()), None)).collect();
    queue.reverse();
    let mut failed: HashSet<PathBuf> = HashSet::new();
    while let Some((path, from)) = queue.pop() {
        if let Some(&i) = index.get(&path) {
            if let Some((_, edge)) = from {
                set.files[i].included_by.push(edge);
            }
            continue;
        }
        if failed.contains(&path) {
            continue;
        }
        if set.files.len() >= MAX_FILES {
            diags.push(Diagnostic::new(
                &path,
                format!("more than {MAX_FILES} recipe files in one recipe set (limit: recipe.max_files)"),
            ));
            break;
        }
        let (from_diag, edge) = match from {
            Some((d, e)) => (Some(d), Some(e)),
            None => (None, None),
        };
        let Some(mut file) = read_one(source, &path, from_diag, &mut diags) else {
            failed.insert(path);
            continue;
        };
        let me = set.files.len();
        file.included_by.extend(edge);
        if let Some(Value::Sequence(incs)) = file.doc.get("include") {
            let mut next = Vec::new();
            for (i, inc) in incs.iter().enumerate() {
                let at = YamlPath::root().key("include").index(i);
                match include_entry(&file, inc, &at, &mut diags) {
                    Some((rel, when)) => next.push((
                        join_normalized(file.dir(), &rel),
                        Some((file.diag_value(&at, ""), IncludeEdge { parent: me, when })),
                    )),
                    None => continue,
                }
            }
            queue.extend(next.into_iter().rev());
        }
        index.insert(path, me);
        set.files.push(file);
    }
    set.problems = diags;
    set
}

/// One `include:` entry: a path, or `{file: PATH, when: CONDITION}`.
fn include_entry(
    file: &SourceFile,
    inc: &Value,
    at: &YamlPath,
    diags: &mut Diagnostics,
) -> Option<(String, Option<When>)> {
    const SHAPE: &str =
        "each include is a path to a recipe file, relative to this one, or `{file: PATH, when: CONDITION}`";
    match inc {
        Value::String(rel) => Some((rel.clone(), None)),
        Value::Mapping(m) => {
            for k in m.keys() {
                let key = k.as_str().unwrap_or("?");
                if key != "file" && key != "when" {
                    diags.push(
                        file.diag_key(&at.key(key), format!("unknown include key `{key}`"))
                            .hint(did_you_mean(key, ["file", "when"])),
                    );
                }
            }
            let Some(Value::String(rel)) = m.get("file") else {
                diags.push(file.diag_value(at, SHAPE));
                return None;
            };
            let when = match m.get("when") {
                None => None,
                Some(w) => match serde_path_to_error::deserialize::<_, When>(w.clone()) {
                    Ok(c) => {
                        for p in c.problems() {
                            diags.push(file.diag_value(&at.key("when"), p));
                        }
                        Some(c)
                    }
                    Err(e) => {
                        diags.push(file.diag_value(&at.key("when"), format!("invalid condition: {}", e.inner())));
                        return None;
                    }
                },
            };
            Some((rel.clone(), when))
        }
        _ => {
            diags.push(file.diag_value(at, SHAPE));
            None
        }
    }
}

fn read_one(
    source: &dyn RecipeSource,
    path: &Path,
    from: Option<Diagnostic>,
    diags: &mut Diagnostics,
) -> Option<SourceFile> {
    let file = match source.read(path) {
        Err(e) => {
            let msg = format!("cannot read recipe {}: {e}", path.display());
            diags.push(match from {
                Some(d) => Diagnostic { message: format!("include: {msg}"), ..d },
                None => Diagnostic::new(path, msg),
            });
            return None;
        }
        Ok(bytes) => match SourceFile::parse(path, bytes, "recipe") {
            Ok(f) => f,
            Err(d) => {
                diags.push(*d);
                return None;
            }
        },
    };
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
