//! recipes/schema.json is generated from the Rust types and must be current.
//! `UPDATE_SCHEMA=1 cargo test -p tend-model --test schema` regenerates it
//! (so does `tend-agent schema > recipes/schema.json`).

use std::path::Path;

#[test]
fn committed_schema_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../recipes/schema.json");
    let fresh = tend_model::schema::recipe_schema_text();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &fresh).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "recipes/schema.json is stale: run `UPDATE_SCHEMA=1 cargo test -p tend-model --test schema` and commit it"
    );
}

#[test]
fn schema_knows_every_resource_type_and_common_property() {
    let s = tend_model::schema::recipe_schema();
    assert_eq!(s["properties"]["resources"]["items"]["$ref"], "#/$defs/Entry");
    let variants = s["$defs"]["Entry"]["oneOf"].as_array().unwrap();
    for title in ["for_each block", "component instance"] {
        assert!(variants.iter().any(|v| v["title"] == title), "{title}");
    }
    for key in ["data", "include", "kind"] {
        assert!(s["properties"][key].is_object(), "{key}");
    }
    for kind in tend_model::resource::Kind::ALL {
        let v = variants.iter().find(|v| v["title"] == kind.name()).unwrap();
        assert_eq!(v["additionalProperties"], false);
        for p in ["requires", "notifies", "when", "sensitive", "for_each", "as", kind.name()] {
            assert!(v["properties"][p].is_object(), "{kind}: {p}");
        }
    }
}
