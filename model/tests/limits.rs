//! The recipe limits of docs/limits.md: each refusal names its limit and
//! points at where it was crossed.

use std::collections::BTreeMap;

use tend_model::bundle::Bundle;

fn validate(files: BTreeMap<String, String>) -> String {
    let b = Bundle { name: "big".into(), root: "r.yaml".into(), files, signature: None };
    b.validate(&tend_model::facts::skeleton()).expect_err("over a limit").to_string()
}

#[test]
fn too_many_resources_is_one_located_error() {
    let n = tend_model::compile::MAX_RESOURCES + 1;
    let items: String = (0..n).map(|i| format!("  - file: /tmp/f{i}\n    content: x\n")).collect();
    let e = validate(BTreeMap::from([("r.yaml".to_string(), format!("name: big\nresources:\n{items}"))]));
    assert!(e.contains("recipe.max_resources"), "{e}");
    assert!(e.contains(&format!("r.yaml:{}:", 2 * n + 1)), "{e}");
}

#[test]
fn too_many_included_files_is_refused() {
    let n = tend_model::load::MAX_FILES + 10;
    let mut files = BTreeMap::new();
    files.insert("r.yaml".to_string(), "name: big\ninclude: [i0.yaml]\nresources: []\n".to_string());
    for i in 0..n {
        files.insert(format!("i{i}.yaml"), format!("name: i{i}\ninclude: [i{}.yaml]\nresources: []\n", i + 1));
    }
    let e = validate(files);
    assert!(e.contains("recipe.max_files"), "{e}");
}
