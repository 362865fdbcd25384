//! The example runbooks and command documents in `recipes/` pass the same
//! checks as `tend document push`.

use std::path::Path;

use tend_model::automation::Automation;
use tend_model::document::Document;

fn recipes() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").join("recipes")
}

#[test]
fn the_example_runbooks_and_their_command_documents_are_valid() {
    for f in ["rolling-restart.yaml", "patch-with-approval.yaml"] {
        let path = recipes().join(f);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if let Err(d) = Automation::parse(f, &text) {
            panic!("{d}");
        }
    }
    let mut n = 0;
    for e in std::fs::read_dir(recipes().join("documents")).expect("recipes/documents") {
        let path = e.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        if let Err(d) = Document::parse(&path.display().to_string(), &text) {
            panic!("{d}");
        }
        n += 1;
    }
    assert!(n >= 2, "the runbooks' command documents are in recipes/documents/");
}
