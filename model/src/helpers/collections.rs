//! Helpers over lists and mappings: `join`, `sort`, `unique`, `keys`, `values`.

use std::cmp::Ordering;
use std::collections::HashSet;

use serde_json::Value;

use super::args::describe;
use super::{Args, HelperError, bounded_text, within_limit};

/// `join LIST SEPARATOR`: the items (strings, numbers, booleans) written as
/// handlebars writes them, with SEPARATOR between them.
pub fn join(a: &Args) -> Result<Value, HelperError> {
    a.expect(2, &[])?;
    let list = a.list(0, "LIST")?;
    let sep = a.text(1, "SEPARATOR")?;
    let mut out = String::new();
    for (i, item) in list.iter().enumerate() {
        let text = match item {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                return Err(a.invalid(format!(
                    "item {i} of LIST is {}; join takes strings, numbers and booleans",
                    describe(other)
                )));
            }
        };
        let sep_len = if i == 0 { 0 } else { sep.len() };
        within_limit(a.helper(), out.len().saturating_add(sep_len).saturating_add(text.len()))?;
        if i > 0 {
            out.push_str(&sep);
        }
        out.push_str(&text);
    }
    bounded_text(a.helper(), out)
}

/// `sort LIST`: strings in byte order, or numbers in numeric order.
pub fn sort(a: &Args) -> Result<Value, HelperError> {
    a.expect(1, &[])?;
    let list = a.list(0, "LIST")?;
    if list.iter().all(Value::is_string) {
        let mut v = list.clone();
        v.sort_by(|x, y| x.as_str().cmp(&y.as_str()));
        return Ok(Value::Array(v));
    }
    if list.iter().all(Value::is_number) {
        let mut v = list.clone();
        v.sort_by(compare_numbers);
        return Ok(Value::Array(v));
    }
    let first_string = list.first().is_some_and(Value::is_string);
    let odd = list.iter().enumerate().find(|(_, v)| if first_string { !v.is_string() } else { !v.is_number() });
    let (i, v) = odd.unwrap_or((0, &Value::Null));
    Err(a.invalid(format!("LIST must hold only strings or only numbers; item {i} is {}", describe(v))))
}

/// Numbers in order: exactly when both are integers, else as floating point
/// (JSON numbers are never NaN).
fn compare_numbers(x: &Value, y: &Value) -> Ordering {
    if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
        return x.cmp(&y);
    }
    if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
        return x.cmp(&y);
    }
    x.as_f64().unwrap_or(0.0).total_cmp(&y.as_f64().unwrap_or(0.0))
}

/// `unique LIST`: the first of each distinct item, in their order.
pub fn unique(a: &Args) -> Result<Value, HelperError> {
    a.expect(1, &[])?;
    let list = a.list(0, "LIST")?;
    // Values are not hashable; their JSON text is, and equal values have equal text.
    let mut seen = HashSet::new();
    let out = list.iter().filter(|v| seen.insert(v.to_string())).cloned().collect();
    Ok(Value::Array(out))
}

/// `keys MAPPING`: the keys, in the mapping's order (alphabetical).
pub fn keys(a: &Args) -> Result<Value, HelperError> {
    a.expect(1, &[])?;
    let m = a.mapping(0, "MAPPING")?;
    Ok(Value::Array(m.keys().cloned().map(Value::String).collect()))
}

/// `values MAPPING`: the values, in the order of their keys.
pub fn values(a: &Args) -> Result<Value, HelperError> {
    a.expect(1, &[])?;
    let m = a.mapping(0, "MAPPING")?;
    Ok(Value::Array(m.values().cloned().collect()))
}
