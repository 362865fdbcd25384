//! Helpers that answer a question or fill a gap: `contains`,
//! `version_compare` (booleans, for `{{#if (…)}}`) and `default`.

use serde_json::Value;

use super::args::describe;
use super::{Args, HelperError};
use crate::version::{self, Scheme};

/// `default VALUE FALLBACK`: FALLBACK when VALUE is missing, null or the
/// empty string; VALUE otherwise (`false`, `0` and `[]` are values).
///
/// Strict mode does not stop a missing VALUE: handlebars hands helpers a
/// missing argument as "missing" and leaves the error to them, and this one
/// does not raise it. A missing FALLBACK is an error even when VALUE is
/// there, so that a mistyped fallback shows on the first render, not on the
/// host where VALUE happens to be missing.
pub fn default(a: &Args) -> Result<Value, HelperError> {
    a.expect(2, &[])?;
    let fallback = a.value(1)?;
    match a.maybe(0) {
        Some(Value::Null) | None => Ok(fallback.clone()),
        Some(Value::String(s)) if s.is_empty() => Ok(fallback.clone()),
        Some(v) => Ok(v.clone()),
    }
}

/// `contains HAYSTACK ITEM`: a list holds an item equal to ITEM; a string
/// holds ITEM as a substring; a mapping has ITEM as a key.
pub fn contains(a: &Args) -> Result<Value, HelperError> {
    a.expect(2, &[])?;
    let found = match a.value(0)? {
        Value::Array(items) => {
            let item = a.value(1)?;
            items.contains(item)
        }
        Value::String(s) => s.contains(a.text(1, "ITEM")?.as_ref()),
        Value::Object(m) => m.contains_key(a.text(1, "ITEM")?.as_ref()),
        other => {
            return Err(HelperError::Type {
                helper: a.helper(),
                param: "its first argument",
                expected: "a list, a string or a mapping",
                got: describe(other).to_string(),
            });
        }
    };
    Ok(Value::Bool(found))
}

/// The operators `version_compare` takes, in both spellings.
const OPERATORS: &str = "<, <=, ==, !=, >=, > (or lt, le, eq, ne, ge, gt)";

/// `version_compare A OPERATOR B [scheme="debian"|"rpm"|"auto"]`: whether
/// `A OPERATOR B` holds for A and B as versions. With `auto` (the default),
/// the host's package manager's order (from `facts.os.family`), else the
/// order the strings themselves suggest (see `version::compare`).
pub fn version_compare(a: &Args) -> Result<Value, HelperError> {
    a.expect(3, &["scheme"])?;
    let left = version_arg(a, 0, "A")?;
    let op = a.text(1, "OPERATOR")?;
    let right = version_arg(a, 2, "B")?;
    let test: fn(std::cmp::Ordering) -> bool = match op.as_ref() {
        "<" | "lt" => std::cmp::Ordering::is_lt,
        "<=" | "le" => std::cmp::Ordering::is_le,
        "==" | "eq" => std::cmp::Ordering::is_eq,
        "!=" | "ne" => std::cmp::Ordering::is_ne,
        ">=" | "ge" => std::cmp::Ordering::is_ge,
        ">" | "gt" => std::cmp::Ordering::is_gt,
        other => return Err(a.invalid(format!("unknown operator {other:?}; use one of {OPERATORS}"))),
    };
    let scheme = match a.option_text("scheme")? {
        None => Scheme::Auto,
        Some(name) => {
            Scheme::parse(name).ok_or_else(|| a.invalid(format!("unknown scheme {name:?}; use {}", Scheme::NAMES)))?
        }
    };
    let family = a.root().pointer("/facts/os/family").and_then(Value::as_str);
    let scheme = scheme.on_host(family);
    Ok(Value::Bool(test(version::compare(&left, &right, scheme))))
}

/// A version argument: a string, or a whole number. A number with a fraction
/// is refused: the literal `1.10` is the number 1.1 by the time a helper
/// sees it, which is a different version.
fn version_arg(a: &Args, i: usize, param: &'static str) -> Result<String, HelperError> {
    match a.value(i)? {
        Value::Number(n) if !(n.is_i64() || n.is_u64()) => Err(a.invalid(format!(
            "{param} is the number {n}; write versions as strings (\"1.10\"), since the number 1.10 is 1.1"
        ))),
        _ => a.text(i, param).map(|t| t.into_owned()),
    }
}
