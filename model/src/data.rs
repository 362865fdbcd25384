//! Layered data: a hierarchy of YAML files chosen by facts, each a mapping of
//! parameter name to value, like Hiera's levels. A recipe (or a component)
//! declares it:
//!
//! ```yaml
//! data:
//!   hierarchy:
//!     - "nodes/{{facts.hostname}}.yaml"
//!     - "os/{{facts.os.family}}.yaml"
//!     - common.yaml
//! ```
//!
//! On a host, each level's path is rendered with the facts and a missing file
//! is normal. Without a host (validation, a push), every file a level could
//! match is read and checked instead.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use indexmap::IndexMap;
use serde_json::{Value as Json, json};
use serde_yaml::Value;

use crate::compile::CompileOptions;
use crate::diag::{Diagnostic, Diagnostics};
use crate::load::{RecipeSource, SourceFile, join_normalized};
use crate::locate::{Seg, YamlPath};
use crate::params::{Layer, ParamSpec};
use crate::render::Renderer;
use crate::suggest::did_you_mean;

/// Levels in one hierarchy.
pub const MAX_LEVELS: usize = 32;
/// Data files one level may match during validation.
pub const MAX_MATCHES: usize = 1_000;

/// One level as declared: its path template and where it is written.
#[derive(Debug, Clone)]
pub struct Level {
    pub pattern: String,
    pub at: YamlPath,
}

/// Data layers chosen for one host, highest precedence first, with the file
/// each came from (to locate problems in its values).
#[derive(Default)]
pub struct Layers {
    pub layers: Vec<Layer>,
    pub files: Vec<Rc<SourceFile>>,
}

/// Reads the `data:` declaration of a recipe or component file.
pub fn declaration(file: &SourceFile, diags: &mut Diagnostics) -> Vec<Level> {
    let Some(d) = file.doc.get("data") else { return Vec::new() };
    let base = YamlPath::root().key("data");
    let Value::Mapping(m) = d else {
        diags.push(file.diag_value(&base, "`data` is a mapping with a `hierarchy` list"));
        return Vec::new();
    };
    for k in m.keys() {
        let key = k.as_str().unwrap_or("?");
        if key != "hierarchy" {
            diags.push(
                file.diag_key(&base.key(key), format!("unknown key `{key}` in `data`"))
                    .hint(did_you_mean(key, ["hierarchy"])),
            );
        }
    }
    let Some(Value::Sequence(levels)) = m.get("hierarchy") else {
        diags.push(file.diag_value(&base, "`data.hierarchy` is a list of data file paths, highest precedence first"));
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, l) in levels.iter().enumerate() {
        let at = base.key("hierarchy").index(i);
        match l.as_str() {
            Some(p) if i < MAX_LEVELS => {
                if p.contains("{{") && (p.contains("params.") || p.contains("#")) {
                    diags.push(file.diag_value(&at, "a hierarchy level may use facts only (`{{facts.NAME}}`)"));
                } else if p.starts_with('/') || p.split('/').any(|s| s == "..") {
                    diags.push(
                        file.diag_value(
                            &at,
                            "a data file path is relative to the recipe and stays inside its directory",
                        ),
                    );
                } else {
                    out.push(Level { pattern: p.to_string(), at });
                }
            }
            Some(_) => {
                diags.push(
                    file.diag_value(&at, format!("more than {MAX_LEVELS} hierarchy levels (limit: data.max_levels)")),
                );
                break;
            }
            None => {
                diags.push(file.diag_value(&at, "each hierarchy level is a path such as `os/{{facts.os.family}}.yaml`"))
            }
        }
    }
    out
}

/// Loads the levels for this host (or, for validation, every file a level
/// could match).
#[allow(clippy::too_many_arguments)]
pub fn load(
    file: &SourceFile,
    levels: &[Level],
    specs: &IndexMap<String, ParamSpec>,
    source: &dyn RecipeSource,
    renderer: &Renderer,
    opts: &CompileOptions,
    diags: &mut Diagnostics,
    warnings: &mut Vec<Diagnostic>,
) -> Layers {
    let mut out = Layers::default();
    let facts_only = json!({ "facts": opts.facts });
    for (n, level) in levels.iter().enumerate() {
        if opts.placeholder_facts {
            // Every file the level can match takes part, in name order, so
            // that each value is checked, loops over data expand, and a
            // deep merge that cannot work on some host is found.
            for path in matching(source, file.dir(), &level.pattern) {
                if let Some(f) = read_level(source, &path, file, level, diags) {
                    let values = check_level(&f, n, specs, diags, warnings);
                    out.layers.push(Layer {
                        label: format!("{} (level {}: {})", f.path.display(), n + 1, level.pattern),
                        values,
                    });
                    out.files.push(Rc::new(f));
                }
            }
            continue;
        }
        let rel = match renderer.render(&level.pattern, &facts_only) {
            Ok(r) => r,
            Err(e) => {
                diags.push(file.diag_value(&level.at, e.message).hint(e.hint));
                continue;
            }
        };
        if rel.split('/').any(|s| s == ".." || s.is_empty()) {
            // A fact with a `/` or an empty fact: no such level here.
            continue;
        }
        let path = join_normalized(file.dir(), &rel);
        let Some(f) = read_level(source, &path, file, level, diags) else { continue };
        let values = check_level(&f, n, specs, diags, warnings);
        out.layers.push(Layer { label: format!("{} (level {}: {})", f.path.display(), n + 1, level.pattern), values });
        out.files.push(Rc::new(f));
    }
    out
}

fn read_level(
    source: &dyn RecipeSource,
    path: &Path,
    file: &SourceFile,
    level: &Level,
    diags: &mut Diagnostics,
) -> Option<SourceFile> {
    match source.read(path) {
        Ok(bytes) => match SourceFile::parse(path, bytes, "data file") {
            Ok(f) => Some(f),
            Err(d) => {
                diags.push(*d);
                None
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            diags.push(file.diag_value(&level.at, format!("cannot read data file {}: {e}", path.display())));
            None
        }
    }
}

/// The values of one level file: a mapping of declared parameter names.
/// Undeclared names are warnings (a typo must not stop a fleet); values of
/// the wrong shape are errors, located in the file.
fn check_level(
    f: &SourceFile,
    level: usize,
    specs: &IndexMap<String, ParamSpec>,
    diags: &mut Diagnostics,
    warnings: &mut Vec<Diagnostic>,
) -> serde_json::Map<String, Json> {
    let mut values = serde_json::Map::new();
    let m = match &f.doc {
        Value::Mapping(m) => m,
        Value::Null => return values,
        _ => {
            diags.push(f.diag_value(
                &YamlPath::root(),
                format!("a data file (level {}) is a mapping of parameter name to value", level + 1),
            ));
            return values;
        }
    };
    for (k, v) in m {
        let Some(name) = k.as_str() else {
            diags.push(f.diag_value(&YamlPath::root(), "data file keys are parameter names"));
            continue;
        };
        let at = YamlPath::root().key(name);
        let Some(spec) = specs.get(name) else {
            warnings.push(
                f.diag_key(&at, format!("`{name}` is not a parameter any recipe declares; ignored"))
                    .hint(did_you_mean(name, specs.keys().map(String::as_str))),
            );
            continue;
        };
        let json = crate::values::to_json(v);
        let mut problems = Vec::new();
        let json = spec.normalize(json, spec.optional(), &mut Vec::new(), &mut problems);
        for p in problems {
            let shown = std::iter::once(name.to_string()).chain(p.path.iter().cloned()).collect::<Vec<_>>().join(".");
            diags.push(f.diag_value(&value_path(&at, &p.path), format!("params.{shown}: {}", p.message)).hint(p.hint));
        }
        values.insert(name.to_string(), json);
    }
    values
}

/// A YAML path below `base` from a value problem's path (digits are list indices).
pub fn value_path(base: &YamlPath, path: &[String]) -> YamlPath {
    let mut at = base.clone();
    for seg in path {
        at.0.push(match seg.parse::<usize>() {
            Ok(i) => Seg::Index(i),
            Err(_) => Seg::Key(seg.clone()),
        });
    }
    at
}

/// Every file under `dir` that a level pattern can match: each `{{…}}` in a
/// path segment matches any text within that segment.
pub fn matching(source: &dyn RecipeSource, dir: &Path, pattern: &str) -> Vec<PathBuf> {
    let mut current = vec![dir.to_path_buf()];
    let segments: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty() && *s != ".").collect();
    for seg in segments {
        let mut next = Vec::new();
        if !seg.contains("{{") {
            next = current.iter().map(|d| join_normalized(d, seg)).collect();
        } else {
            let Some(re) = segment_regex(seg) else { return Vec::new() };
            for d in &current {
                let mut names = source.list(d);
                names.sort();
                next.extend(names.into_iter().filter(|n| re.is_match(n) && !n.starts_with('.')).map(|n| d.join(n)));
                if next.len() > MAX_MATCHES {
                    next.truncate(MAX_MATCHES);
                    break;
                }
            }
        }
        current = next;
    }
    current
}

fn segment_regex(seg: &str) -> Option<regex_lite::Regex> {
    let mut re = String::from("^");
    let mut rest = seg;
    while let Some(start) = rest.find("{{") {
        re.push_str(&regex_lite::escape(&rest[..start]));
        let end = rest[start..].find("}}").map(|e| start + e + 2)?;
        re.push_str(".*");
        rest = &rest[end..];
    }
    re.push_str(&regex_lite::escape(rest));
    re.push('$');
    regex_lite::Regex::new(&re).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_patterns_match_any_text_in_a_segment() {
        let re = segment_regex("{{facts.os.family}}-{{facts.os.version_major}}.yaml").unwrap();
        assert!(re.is_match("debian-12.yaml"));
        assert!(!re.is_match("debian.yaml"));
        assert!(!re.is_match("debian-12.yml"));
    }
}
