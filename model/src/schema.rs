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
        props.insert("for_each".into(), json!({ "$ref": "#/$defs/ForEach" }));
        props.insert("as".into(), json!({ "$ref": "#/$defs/LoopVar" }));
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

    let when = generator.subschema_for::<crate::condition::When>().to_value();
    let refs = json!({ "type": "array", "items": { "type": "string" } });
    let block = json!({
        "title": "for_each block",
        "description": "Repeats its resources for every item of a list or map: {{item}}, {{index}}, and {{key}} for a map",
        "type": "object",
        "required": ["for_each", "resources"],
        "additionalProperties": false,
        "properties": {
            "for_each": { "$ref": "#/$defs/ForEach" },
            "as": { "$ref": "#/$defs/LoopVar" },
            "when": when,
            "resources": { "type": "array", "items": { "$ref": "#/$defs/Entry" } }
        }
    });
    let instance = json!({
        "title": "component instance",
        "description": "An instance of a component (components/NAME.yaml beside the recipe, or a path)",
        "type": "object",
        "required": ["use", "name"],
        "additionalProperties": false,
        "properties": {
            "use": { "type": "string", "description": "The component: a name (components/NAME.yaml) or a path" },
            "name": { "type": "string", "description": "The instance's name; `use:COMPONENT[NAME]` refers to it" },
            "with": { "type": "object", "description": "The component's parameters" },
            "when": when,
            "requires": refs,
            "notifies": refs,
            "for_each": { "$ref": "#/$defs/ForEach" },
            "as": { "$ref": "#/$defs/LoopVar" }
        }
    });
    variants.push(block);
    variants.push(instance);
    let mut defs = generator.take_definitions(true);
    defs.insert("Entry".into(), json!({ "oneOf": variants }));
    defs.insert(
        "ForEach".into(),
        json!({
            "description": "A list, a map, or a whole reference to one (\"{{params.users}}\")",
            "anyOf": [{ "type": "array" }, { "type": "object" }, { "type": "string", "pattern": "^\\s*\\{\\{.*\\}\\}\\s*$" }]
        }),
    );
    defs.insert(
        "LoopVar".into(),
        json!({ "type": "string", "pattern": "^[A-Za-z0-9_]+$", "description": "Also binds the item as {{NAME.item}}, {{NAME.key}}, {{NAME.index}}, visible in nested loops" }),
    );
    let include = json!({
        "anyOf": [
            { "type": "string" },
            { "type": "object", "required": ["file"], "additionalProperties": false,
              "properties": { "file": { "type": "string" }, "when": when } }
        ]
    });
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
            "kind": { "const": "Component", "description": "Marks a component file (used with `use:`)" },
            "include": { "type": "array", "items": include, "description": "Recipe files relative to this one, each with an optional `when`" },
            "data": {
                "type": "object",
                "additionalProperties": false,
                "required": ["hierarchy"],
                "properties": { "hierarchy": { "type": "array", "items": { "type": "string" },
                    "description": "Data files (parameter name to value), highest precedence first; paths may use {{facts.NAME}}" } }
            },
            "resources": { "type": "array", "items": { "$ref": "#/$defs/Entry" } }
        },
        "$defs": Value::Object(defs),
    })
}

/// The schema as committed: pretty JSON with a trailing newline.
pub fn recipe_schema_text() -> String {
    let mut s = serde_json::to_string_pretty(&recipe_schema()).unwrap_or_default();
    s.push('\n');
    s
}
