//! The examples of docs/recipes.md are real: every YAML block whose first
//! line is `# file: DIR/PATH` is a file of the bundle DIR, whose root is
//! `DIR/main.yaml`, and each bundle compiles against Debian facts and
//! validates without a host.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::json;
use tend_model::bundle::Bundle;
use tend_model::params::Overrides;

fn bundles() -> BTreeMap<String, BTreeMap<String, String>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/recipes.md");
    let text = std::fs::read_to_string(&path).expect("docs/recipes.md");
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "```yaml" {
            continue;
        }
        let block: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
        let Some(name) = block.first().and_then(|l| l.strip_prefix("# file: ")) else { continue };
        let (dir, file) = name.split_once('/').expect("# file: DIR/PATH");
        out.entry(dir.to_string()).or_default().insert(file.to_string(), block[1..].join("\n") + "\n");
    }
    out
}

#[test]
fn every_example_in_the_recipe_reference_compiles_and_validates() {
    let all = bundles();
    assert!(all.len() >= 5, "examples found: {:?}", all.keys().collect::<Vec<_>>());
    let mut facts = tend_model::facts::skeleton();
    facts["hostname"] = json!("web-1");
    facts["os"]["family"] = json!("debian");
    facts["os"]["version_major"] = json!("12");
    let skeleton = tend_model::facts::skeleton();
    for (dir, files) in all {
        let b = Bundle { name: dir.clone(), root: "main.yaml".into(), files, signature: None };
        let plan = b.compile(&facts, &skeleton, &Overrides::default()).unwrap_or_else(|d| panic!("{dir}: {d}"));
        assert!(!plan.resources.is_empty(), "{dir}");
        b.validate(&skeleton).unwrap_or_else(|d| panic!("{dir} (validate): {d}"));
        if dir == "data-demo" {
            assert!(plan.resources.iter().any(|r| r.id.to_string() == "package:chrony"), "{dir}: the os level wins");
        }
        if dir == "components-demo" {
            let exec = plan.resources.iter().find(|r| r.id.to_string() == "exec:smoke-test").expect("exec");
            assert_eq!(exec.requires.len(), 1, "{dir}: requires the shop instance's one resource");
        }
    }
}
