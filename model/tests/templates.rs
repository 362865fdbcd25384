//! Template golden files: tests/fixtures/templates/ok/*.hbs must render to
//! their .out files exactly; bad/*.hbs must fail with the snapshotted message.
//! `UPDATE_GOLDEN=1 cargo test -p tend-model --test templates` rewrites the .out files.

use std::path::{Path, PathBuf};

use tend_model::render::Renderer;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/templates")
}

fn context() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(fixtures().join("context.json")).unwrap()).unwrap()
}

fn templates(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixtures().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "hbs"))
        .collect();
    v.sort();
    v
}

#[test]
fn good_templates_render_exactly() {
    let r = Renderer::default();
    let ctx = context();
    let all = templates("ok");
    assert!(all.len() >= 5);
    for t in all {
        let got =
            r.render(&std::fs::read_to_string(&t).unwrap(), &ctx).unwrap_or_else(|e| panic!("{}: {e}", t.display()));
        let golden = t.with_extension("out");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&golden, &got).unwrap();
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        assert_eq!(got, want, "{} differs from its golden file", t.display());
    }
}

#[test]
fn bad_templates_fail_clearly() {
    let r = Renderer::default();
    let ctx = context();
    let all = templates("bad");
    assert!(all.len() >= 5);
    for t in all {
        let name = t.file_stem().unwrap().to_string_lossy().into_owned();
        let e = match r.render(&std::fs::read_to_string(&t).unwrap(), &ctx) {
            Ok(out) => panic!("{name} rendered but must fail: {out:?}"),
            Err(e) => e,
        };
        let text = format!(
            "{}:{}:{}: {}{}",
            name,
            e.line.unwrap_or(0),
            e.col.unwrap_or(0),
            e.message,
            e.hint.map(|h| format!(" ({h})")).unwrap_or_default()
        );
        insta::assert_snapshot!(name, text);
    }
}
