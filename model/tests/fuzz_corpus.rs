//! Replays the fuzzers' saved inputs (`tests/fixtures/fuzz/TARGET/`: the
//! minimized corpora and every input that once failed) through the same
//! entry points the fuzz targets drive (`tend_model::fuzzing`), so that the
//! ordinary test suite keeps what the fuzzing campaign found fixed. Each
//! input must come back, quickly, without a panic. See docs/fuzzing.md.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/fuzz").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no saved inputs in {}", dir.display());
    files
}

fn replay(target: &str, run: impl Fn(&[u8])) {
    for path in inputs(target) {
        let data = std::fs::read(&path).expect("read");
        let t = Instant::now();
        run(&data);
        let took = t.elapsed();
        // Generous for a debug build on a busy machine; the fuzzers allow 10 s in release.
        assert!(took < Duration::from_secs(20), "{}: took {took:?}", path.display());
    }
}

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

#[test]
fn recipe_inputs() {
    replay("recipe", |d| {
        if let Some(t) = text(d) {
            let _ = tend_model::fuzzing::recipe(t);
        }
    });
}

#[test]
fn template_inputs() {
    replay("template", |d| {
        if let Some(t) = text(d) {
            tend_model::fuzzing::template(t);
        }
    });
}

#[test]
fn document_inputs() {
    replay("document", |d| {
        if let Some(t) = text(d) {
            tend_model::fuzzing::document(t);
        }
    });
}

#[test]
fn bundle_inputs() {
    replay("bundle", tend_model::fuzzing::bundle);
}

#[test]
fn api_body_inputs() {
    replay("api_bodies", tend_model::fuzzing::api_body);
}
