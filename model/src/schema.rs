//! The JSON Schema of the recipe format, generated from the Rust types so
//! that editors can complete and check recipes. Committed as
//! `recipes/schema.json`; a test fails when it is stale.

use indexmap::IndexMap;
use serde_json::{Value, json};

use crate::params::ParamSpec;
use crate::resource::{Common, Kind};

/// The whole recipe schema (draft 2020-12).
pub fn recipe_schema() -> Value {
    let mut generator = schemars::SchemaGenerator::default();
    let params = generator.subschema_for::<IndexMap<String, ParamSpec>>().to_value();
    let common = <Common as schemars::JsonSchema>::json_schema(&mut generator).to_value();
    let common_props = common.get("properties").cloned().unwrap_or_else(|| json!({}));

    let mut variants = Vec::new();
    for &kind in Kind::ALL {
        let mut s = kind.props_schema(&mut generator).to_value();
        let mut props = serde_json::Map::new();
        props.insert(
            kind.name().to_string(),
            json!({ "type": "string", "description": format!("The {kind} resource's name (its id is `{kind}:NAME`)") }),
        );
        if let Some(own) = s.get("properties").and_then(Value::as_object) {
            props.extend(own.clone());
        }
        if let Some(c) = common_props.as_object() {
            props.extend(c.clone());
        }
        let mut required = vec![Value::from(kind.name())];
        if let Some(r) = s.get("required").and_then(Value::as_array) {
            required.extend(r.iter().cloned());
        }
        s["title"] = Value::from(kind.name());
        s["properties"] = Value::Object(props);
        s["required"] = Value::Array(required);
        s["additionalProperties"] = Value::Bool(false);
        variants.push(s);
    }

    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://tend.dev/schema/recipe-v1.json",
        "title": "tend recipe",
        "type": "object",
        "additionalProperties": false,
        "required": ["name"],
        "properties": {
            "name": { "type": "string", "description": "The recipe's name" },
            "description": { "type": "string" },
            "parameters": params,
            "include": { "type": "array", "items": { "type": "string" }, "description": "Recipe files relative to this one" },
            "resources": { "type": "array", "items": { "oneOf": variants } }
        },
        "$defs": Value::Object(generator.take_definitions(true)),
    })
}

/// The schema as committed: pretty JSON with a trailing newline.
pub fn recipe_schema_text() -> String {
    let mut s = serde_json::to_string_pretty(&recipe_schema()).unwrap_or_default();
    s.push('\n');
    s
}
