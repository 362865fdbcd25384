//! Typing a resource's rendered properties: each type's own struct, with
//! every unknown property and every type error reported, not just the first.

use serde_yaml::{Mapping, Value};

use crate::diag::{Diagnostic, Diagnostics};
use crate::load::SourceFile;
use crate::locate::{Seg, YamlPath};
use crate::resource::{Common, Kind, ResourceId, Spec};
use crate::suggest::did_you_mean;

/// Deserializes a type's properties. The fast path is one attempt; on failure
/// every unknown property and every type error is reported, not just the first.
pub fn typed_spec(
    kind: Kind,
    props: Mapping,
    file: &SourceFile,
    path: &YamlPath,
    id: &ResourceId,
    diags: &mut Diagnostics,
) -> Option<Spec> {
    let whole = Value::Mapping(props);
    if let Ok(spec) = kind.spec_fast(&whole) {
        return Some(spec);
    }
    let Value::Mapping(mut props) = whole else { return None };
    let known = known_fields(kind);
    let candidates: Vec<&str> = known.iter().map(String::as_str).chain(Common::KEYS.iter().copied()).collect();
    let unknown: Vec<Value> =
        props.keys().filter(|k| !known.iter().any(|f| Some(f.as_str()) == k.as_str())).cloned().collect();
    for k in unknown {
        let key = k.as_str().unwrap_or("?").to_string();
        let hint = did_you_mean(&key, candidates.iter().copied())
            .or_else(|| (Kind::parse(&key).is_some()).then(|| "a resource has exactly one type".to_string()));
        diags.push(
            file.diag_key(&path.key(key.clone()), format!("unknown property `{key}` for type `{kind}`"))
                .resource(id.to_string())
                .hint(hint),
        );
        props.remove(&k);
    }
    for _ in 0..known.len() + 1 {
        match kind.spec_from(&Value::Mapping(props.clone())) {
            Ok(_) => break,
            Err(e) => {
                let first_key = e.path().iter().find_map(|s| match s {
                    serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                    _ => None,
                });
                diags.push(serde_diag(file, path, &e, Some(id.to_string()), &[]));
                match first_key {
                    Some(k) if props.remove(k.as_str()).is_some() => {}
                    _ => break,
                }
            }
        }
    }
    None
}

/// The properties of a type whose schema accepts only a string (or null):
/// a number or a boolean from a whole reference is written as text there,
/// as `content: "{{params.port}}"` means.
pub fn string_props(kind: Kind) -> &'static [String] {
    static ALL: std::sync::OnceLock<std::collections::HashMap<Kind, Vec<String>>> = std::sync::OnceLock::new();
    let all = ALL.get_or_init(|| {
        let mut generator = schemars::SchemaGenerator::default();
        Kind::ALL
            .iter()
            .map(|&k| {
                let schema = k.props_schema(&mut generator).to_value();
                let props = schema.get("properties").and_then(|p| p.as_object()).cloned().unwrap_or_default();
                let names = props
                    .into_iter()
                    .filter(|(_, p)| match p.get("type") {
                        Some(serde_json::Value::String(t)) => t == "string",
                        Some(serde_json::Value::Array(ts)) => {
                            ts.iter().all(|t| t == "string" || t == "null") && ts.iter().any(|t| t == "string")
                        }
                        _ => false,
                    })
                    .map(|(n, _)| n)
                    .collect();
                (k, names)
            })
            .collect()
    });
    all.get(&kind).map(Vec::as_slice).unwrap_or(&[])
}

/// Writes numbers and booleans as text in string-only properties.
pub fn stringify_scalars(kind: Kind, props: &mut Mapping) {
    for (k, v) in props.iter_mut() {
        if !matches!(v, Value::Number(_) | Value::Bool(_)) {
            continue;
        }
        if k.as_str().is_some_and(|k| string_props(kind).iter().any(|p| p == k)) {
            match v {
                Value::Number(n) => *v = Value::String(n.to_string()),
                Value::Bool(b) => *v = Value::String(b.to_string()),
                _ => {}
            }
        }
    }
}

/// The property names a type accepts, from its JSON Schema.
fn known_fields(kind: Kind) -> Vec<String> {
    let mut generator = schemars::SchemaGenerator::default();
    let schema = kind.props_schema(&mut generator);
    schema.get("properties").and_then(|p| p.as_object()).map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

/// A diagnostic from a serde error, located by the error's path.
pub fn serde_diag(
    file: &SourceFile,
    base: &YamlPath,
    e: &serde_path_to_error::Error<serde_yaml::Error>,
    id: Option<String>,
    known: &[&str],
) -> Diagnostic {
    let mut at = base.clone();
    for seg in e.path().iter() {
        match seg {
            serde_path_to_error::Segment::Map { key } => at.0.push(Seg::Key(key.clone())),
            serde_path_to_error::Segment::Seq { index } => at.0.push(Seg::Index(*index)),
            _ => {}
        }
    }
    let inner = e.inner().to_string();
    let message = tidy_serde_message(&inner);
    let hint = unknown_field_name(&inner).and_then(|f| did_you_mean(f, known.iter().copied()));
    let d =
        if unknown_field_name(&inner).is_some() { file.diag_key(&at, message) } else { file.diag_value(&at, message) };
    let d = d.hint(hint);
    match id {
        Some(id) => d.resource(id),
        None => d,
    }
}

fn unknown_field_name(msg: &str) -> Option<&str> {
    msg.strip_prefix("unknown field `").and_then(|r| r.split('`').next())
}

/// serde's messages, minus the noise that the location already says.
fn tidy_serde_message(msg: &str) -> String {
    let msg = msg.split(" at line ").next().unwrap_or(msg);
    msg.replace("unknown variant", "unknown value")
        .replace("expected one of", "expected one of:")
        .replace("expected u64", "expected a whole number")
        .replace("expected i32", "expected an integer")
        .replace("expected f64", "expected a number")
}
