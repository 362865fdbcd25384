//! Custom facts from the facts directory, merged under `facts.custom`:
//! `*.yaml`/`*.yml` files, and executables (see [`super::executable`]),
//! all in file name order, a later file's top-level key replacing an
//! earlier one's. A file that cannot be used is left out with a warning.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use super::exec_cache::{Cache, Stamp};
use super::executable::{self, ExecFactError};

/// How executables are run and cached.
#[derive(Debug, Clone, Copy)]
pub struct ExecOptions<'a> {
    pub timeout: Duration,
    /// Where the cache lives (None: no cache).
    pub cache_dir: Option<&'a Path>,
    /// How long a run's output is reused (zero: never).
    pub cache_ttl: Duration,
}

/// The merged custom facts and what went wrong on the way.
#[derive(Debug, Default)]
pub struct Custom {
    pub facts: Map<String, Value>,
    pub warnings: Vec<String>,
}

enum Source {
    Yaml,
    Program(Stamp),
}

struct Item {
    path: PathBuf,
    source: Source,
}

pub fn load(dir: &Path, exec: &ExecOptions) -> Custom {
    let mut out = Custom::default();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    // Programs are named by absolute path: they run in `dir`, and the cache
    // is keyed by path (no system call when `dir` is absolute already).
    let dir = &std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let euid = nix::unistd::geteuid().as_raw();
    let mut items = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let path = dir.join(entry.file_name());
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            items.push(Item { path, source: Source::Yaml });
            continue;
        }
        // Anything else is a candidate program: one stat, only for such names.
        if ignored_program_name(&entry.file_name().to_string_lossy()) {
            continue;
        }
        let Ok(meta) = std::fs::metadata(&path) else { continue };
        if !executable::is_executable(&meta) {
            tracing::debug!(file = %path.display(), "not YAML and not executable; ignored");
            continue;
        }
        match executable::check_owner(&meta, euid) {
            Ok(()) => items.push(Item { path, source: Source::Program(Stamp::of(&meta)) }),
            Err(e) => warn(&mut out.warnings, &path, &e.to_string()),
        }
    }
    items.sort_by(|a, b| a.path.file_name().cmp(&b.path.file_name()));
    let mut programs = run_programs(&items, dir, exec);
    for (i, item) in items.iter().enumerate() {
        let parsed = match item.source {
            Source::Yaml => yaml_file(&item.path),
            Source::Program(_) => programs.remove(&i).unwrap_or_else(|| Ok(Map::new())).map_err(|e| e.to_string()),
        };
        match parsed {
            Ok(m) => out.facts.extend(m),
            Err(why) => warn(&mut out.warnings, &item.path, &why),
        }
    }
    out
}

fn warn(warnings: &mut Vec<String>, path: &Path, why: &str) {
    tracing::warn!(file = %path.display(), "custom facts left out: {why}");
    warnings.push(format!("custom facts {}: {why}", path.display()));
}

/// Names that are not programs to run: hidden files, editor backups and
/// package manager leftovers (`run-parts` skips the same kind).
fn ignored_program_name(name: &str) -> bool {
    const LEFTOVERS: &[&str] =
        &[".dpkg-old", ".dpkg-new", ".dpkg-dist", ".dpkg-tmp", ".rpmnew", ".rpmsave", ".rpmorig"];
    name.starts_with('.') || name.ends_with('~') || LEFTOVERS.iter().any(|s| name.ends_with(s))
}

fn yaml_file(path: &Path) -> Result<Map<String, Value>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let parsed = tend_model::yaml::parse::<Value>(&text, &tend_model::yaml::YamlLimits::CONFIG)
        .map_err(|e| format!("line {} column {}: {}", e.line, e.col, e.message))?;
    match parsed {
        Value::Object(m) => Ok(m),
        Value::Null => Ok(Map::new()),
        _ => Err("not a mapping".into()),
    }
}

/// The output of each program among `items` (by index): from the cache when
/// fresh, else run, all at once (the slowest sets the time taken).
fn run_programs(
    items: &[Item],
    dir: &Path,
    exec: &ExecOptions,
) -> std::collections::HashMap<usize, Result<Map<String, Value>, ExecFactError>> {
    let mut results = std::collections::HashMap::new();
    let programs: Vec<(usize, &str, Stamp)> = items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| match item.source {
            Source::Program(stamp) => Some((i, item.path.to_str().unwrap_or_default(), stamp)),
            Source::Yaml => None,
        })
        .collect();
    if programs.is_empty() {
        return results;
    }
    let mut cache = Cache::open(exec.cache_dir, exec.cache_ttl);
    let mut to_run = Vec::new();
    for &(i, program, stamp) in &programs {
        match cache.get(program, stamp) {
            Some(facts) if !program.is_empty() => {
                tracing::debug!(program, "executable facts from the cache");
                results.insert(i, Ok(facts.clone()));
            }
            _ => to_run.push((i, program, stamp)),
        }
    }
    let ran: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = to_run
            .iter()
            .map(|&(i, _, _)| s.spawn(move || executable::run(&items[i].path, dir, exec.timeout)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(ExecFactError::Failed("panicked".into()))))
            .collect()
    });
    for (&(i, program, stamp), result) in to_run.iter().zip(ran) {
        match &result {
            Ok(facts) => cache.put(program, stamp, facts),
            Err(_) => cache.forget(program),
        }
        results.insert(i, result);
    }
    cache.keep_only(&programs.iter().map(|&(_, p, _)| p).collect::<Vec<_>>());
    cache.save();
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn write(dir: &Path, name: &str, text: &str, mode: u32) {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    const NO_CACHE: ExecOptions =
        ExecOptions { timeout: Duration::from_secs(10), cache_dir: None, cache_ttl: Duration::ZERO };

    #[test]
    fn yaml_and_programs_merge_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "10-base.yaml", "role: base\nrack: 1\n", 0o644);
        write(d, "20-cmdb", "#!/bin/sh\necho '{\"role\": \"web\", \"owner\": \"ops\"}'\n", 0o755);
        write(d, "30-late.yml", "owner: dev\n", 0o644);
        write(d, "README", "not facts\n", 0o644);
        write(d, ".hidden", "#!/bin/sh\necho 'hidden: true'\n", 0o755);
        write(d, "40-old~", "#!/bin/sh\necho 'backup: true'\n", 0o755);
        let c = load(d, &NO_CACHE);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(Value::Object(c.facts), serde_json::json!({ "role": "web", "rack": 1, "owner": "dev" }));
    }

    #[test]
    fn bad_files_are_warnings_and_the_rest_stays() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "a.yaml", "ok: true\n", 0o644);
        write(d, "b.yaml", "- a list\n", 0o644);
        write(d, "c", "#!/bin/sh\nexit 2\n", 0o755);
        write(d, "d", "#!/bin/sh\necho 'x: 1'\n", 0o777);
        let c = load(d, &NO_CACHE);
        assert_eq!(Value::Object(c.facts), serde_json::json!({ "ok": true }));
        let w = c.warnings.join("\n");
        assert_eq!(c.warnings.len(), 3, "{w}");
        assert!(w.contains("b.yaml: not a mapping"), "{w}");
        assert!(w.contains("/c: exit code 2"), "{w}");
        assert!(w.contains("/d: not run: writable by group or others"), "{w}");
    }

    #[test]
    fn programs_run_together() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for name in ["a", "b", "c"] {
            write(d, name, &format!("#!/bin/sh\nsleep 0.4\necho '{name}: 1'\n"), 0o755);
        }
        let t = std::time::Instant::now();
        let c = load(d, &NO_CACHE);
        assert_eq!(c.facts.len(), 3);
        assert!(t.elapsed() < Duration::from_millis(1100), "{:?}", t.elapsed());
    }

    #[test]
    fn cached_output_is_reused_until_the_program_changes() {
        let dir = tempfile::tempdir().unwrap();
        let (d, state) = (dir.path().join("facts.d"), dir.path().join("state"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::create_dir_all(&state).unwrap();
        let counter = dir.path().join("runs");
        let script = format!("#!/bin/sh\necho x >> {}\necho 'n: 1'\n", counter.display());
        write(&d, "count", &script, 0o755);
        let opts = ExecOptions { cache_dir: Some(&state), cache_ttl: Duration::from_secs(60), ..NO_CACHE };
        let runs = || std::fs::read_to_string(&counter).unwrap_or_default().lines().count();
        assert_eq!(load(&d, &opts).facts["n"], 1);
        assert_eq!(load(&d, &opts).facts["n"], 1);
        assert_eq!(runs(), 1);
        write(&d, "count", &format!("{script}echo 'm: 2'\n"), 0o755);
        assert_eq!(load(&d, &opts).facts["m"], 2);
        assert_eq!(runs(), 2);
        assert_eq!(load(&d, &NO_CACHE).facts["m"], 2);
        assert_eq!(runs(), 3);
    }
}
