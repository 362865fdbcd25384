//! The server's modules keep their layers (see `src/lib.rs`): no import
//! circle between top-level modules, the shared plumbing imports no
//! capability, and nothing imports the composition root. Read from the
//! `crate::` paths in the source, so a new import that breaks a layer fails
//! here, with the files that make the circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Runs at the top: `serve` starts `app`, which builds everything else;
/// nothing else imports either.
const ROOTS: &[&str] = &["app", "serve"];
/// One folder (or file) per capability.
const CAPABILITIES: &[&str] = &["fleet", "commands", "automation", "associations", "rollouts", "install"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (None for lib.rs and binaries).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?.to_string();
    match first.as_str() {
        "lib.rs" | "main.rs" | "bin" => None,
        f => Some(f.trim_end_matches(".rs").to_string()),
    }
}

/// Top-level modules named by `crate::NAME` paths, and by `use crate::{A, B::…}` groups.
fn imports(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let code: String = text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// module → (imported module → a file that imports it).
fn graph(src: &Path) -> BTreeMap<String, BTreeMap<String, PathBuf>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut g: BTreeMap<String, BTreeMap<String, PathBuf>> = BTreeMap::new();
    for f in files {
        let Some(m) = module_of(src, &f) else { continue };
        // Test files may reach up (a type's tests run the engine).
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name == "tests.rs" || name.ends_with("testkit.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("read");
        let edges = g.entry(m.clone()).or_default();
        for to in imports(&text) {
            if to != m {
                edges.entry(to).or_insert_with(|| f.strip_prefix(src).unwrap_or(&f).to_path_buf());
            }
        }
    }
    g
}

/// A circle, as the modules on it, if there is one.
fn find_cycle(g: &BTreeMap<String, BTreeMap<String, PathBuf>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeMap<String, PathBuf>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for to in g.get(n).map(|e| e.keys().cloned().collect::<Vec<_>>()).unwrap_or_default() {
            match state.get(&to).copied() {
                Some(1) => {
                    let start = stack.iter().position(|x| *x == to).unwrap_or(0);
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(to);
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(&to, g, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in g.keys() {
        if !state.contains_key(n)
            && let Some(c) = visit(n, g, &mut state, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

fn describe(g: &BTreeMap<String, BTreeMap<String, PathBuf>>, cycle: &[String]) -> String {
    cycle
        .windows(2)
        .map(|w| format!("{} -> {} (in {})", w[0], w[1], g[&w[0]][&w[1]].display()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn server_modules_form_no_circle_and_keep_their_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let g = graph(&src);
    assert!(g.contains_key("commands") && g.contains_key("store"), "the graph was read: {:?}", g.keys());
    if let Some(c) = find_cycle(&g) {
        panic!("an import circle between top-level modules:\n{}", describe(&g, &c));
    }
    for (from, edges) in &g {
        for (to, file) in edges {
            let allowed = from == "serve" && to == "app";
            assert!(
                allowed || !ROOTS.contains(&to.as_str()),
                "{from} imports {to} (in {}): only serve imports app, and nothing imports serve",
                file.display()
            );
            let plumbing = !ROOTS.contains(&from.as_str()) && !CAPABILITIES.contains(&from.as_str());
            assert!(
                !(plumbing && CAPABILITIES.contains(&to.as_str())),
                "{from} is shared plumbing but imports the capability {to} (in {})",
                file.display()
            );
        }
    }
}

#[test]
fn the_reader_sees_paths_groups_and_skips_comments() {
    let text = "use crate::store::Store;\nuse crate::{auth, error::Error};\n// crate::app is only mentioned\nlet x = crate::pki::random_hex(4);";
    let found: Vec<String> = imports(text).into_iter().collect();
    assert_eq!(found, ["auth", "error", "pki", "store"]);
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), BTreeMap::from([("b".to_string(), PathBuf::from("a.rs"))]));
    g.insert("b".to_string(), BTreeMap::from([("a".to_string(), PathBuf::from("b/x.rs"))]));
    assert_eq!(find_cycle(&g), Some(vec!["a".to_string(), "b".to_string(), "a".to_string()]));
}

#[test]
fn agent_modules_form_no_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../agent/src");
    let g = graph(&src);
    assert!(g.contains_key("engine") && g.contains_key("resources"), "the graph was read: {:?}", g.keys());
    if let Some(c) = find_cycle(&g) {
        panic!("an import circle between the agent's top-level modules:\n{}", describe(&g, &c));
    }
}
