//! A helper's arguments, read with checks: each accessor names the helper
//! and the argument in its error, so that a template author reads
//! `join: expects a list as LIST, got a string (`params.site`)`.

use std::borrow::Cow;

use handlebars::{Helper, PathAndJson};
use serde_json::{Map, Value};

use super::HelperError;

/// The positional and hash arguments of one helper call, and the root of
/// the data being rendered (for `version_compare`'s host).
pub struct Args<'a, 'rc> {
    helper: &'static str,
    usage: &'static str,
    h: &'a Helper<'rc>,
    root: &'a Value,
}

/// "a string", "a list", … for messages.
pub fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

impl<'a, 'rc> Args<'a, 'rc> {
    pub fn new(helper: &'static str, usage: &'static str, h: &'a Helper<'rc>, root: &'a Value) -> Self {
        Self { helper, usage, h, root }
    }

    pub fn helper(&self) -> &'static str {
        self.helper
    }

    /// The data being rendered (`facts`, `params`, …).
    pub fn root(&self) -> &Value {
        self.root
    }

    /// Requires exactly `n` positional arguments and no options other than `options`.
    pub fn expect(&self, n: usize, options: &[&str]) -> Result<(), HelperError> {
        let got = self.h.params().len();
        if got != n {
            let expected = match n {
                1 => "1 argument".to_string(),
                n => format!("{n} arguments"),
            };
            return Err(HelperError::Count { helper: self.helper, expected, got, usage: self.usage });
        }
        if let Some(option) = self.h.hash().keys().find(|k| !options.contains(k)) {
            let known = match options {
                [] => "no options".to_string(),
                _ => options.iter().map(|o| format!("`{o}`")).collect::<Vec<_>>().join(", "),
            };
            return Err(HelperError::Option { helper: self.helper, option: option.to_string(), known });
        }
        Ok(())
    }

    fn param(&self, i: usize) -> Option<&'a PathAndJson<'rc>> {
        self.h.param(i)
    }

    /// The argument's value, or None when it refers to a missing value.
    /// Literal `null` is a value, not missing.
    pub fn maybe(&self, i: usize) -> Option<&'a Value> {
        self.param(i).filter(|p| !p.is_value_missing()).map(PathAndJson::value)
    }

    /// The argument's value; a reference to a missing value is strict mode's error.
    pub fn value(&self, i: usize) -> Result<&'a Value, HelperError> {
        match self.param(i) {
            Some(p) if !p.is_value_missing() => Ok(p.value()),
            Some(p) => Err(HelperError::Missing(p.relative_path().cloned().unwrap_or_else(|| format!("argument {i}")))),
            None => Err(HelperError::Count {
                helper: self.helper,
                expected: format!("at least {} arguments", i + 1),
                got: self.h.params().len(),
                usage: self.usage,
            }),
        }
    }

    fn mismatch(&self, i: usize, param: &'static str, expected: &'static str, v: &Value) -> HelperError {
        let mut got = describe(v).to_string();
        if let Some(path) = self.param(i).and_then(PathAndJson::relative_path) {
            got.push_str(&format!(" (`{path}`)"));
        }
        HelperError::Type { helper: self.helper, param, expected, got }
    }

    /// A string argument; numbers count, written as handlebars writes them.
    pub fn text(&self, i: usize, param: &'static str) -> Result<Cow<'a, str>, HelperError> {
        match self.value(i)? {
            Value::String(s) => Ok(Cow::Borrowed(s.as_str())),
            Value::Number(n) => Ok(Cow::Owned(n.to_string())),
            other => Err(self.mismatch(i, param, "a string", other)),
        }
    }

    pub fn list(&self, i: usize, param: &'static str) -> Result<&'a Vec<Value>, HelperError> {
        match self.value(i)? {
            Value::Array(a) => Ok(a),
            other => Err(self.mismatch(i, param, "a list", other)),
        }
    }

    pub fn mapping(&self, i: usize, param: &'static str) -> Result<&'a Map<String, Value>, HelperError> {
        match self.value(i)? {
            Value::Object(m) => Ok(m),
            other => Err(self.mismatch(i, param, "a mapping", other)),
        }
    }

    /// A boolean option (`pretty=true`), `default` when absent.
    pub fn flag(&self, name: &'static str, default: bool) -> Result<bool, HelperError> {
        match self.h.hash_get(name) {
            None => Ok(default),
            Some(p) if p.is_value_missing() => {
                Err(HelperError::Missing(p.relative_path().cloned().unwrap_or_else(|| name.to_string())))
            }
            Some(p) => p.value().as_bool().ok_or_else(|| HelperError::Type {
                helper: self.helper,
                param: name,
                expected: "true or false",
                got: describe(p.value()).to_string(),
            }),
        }
    }

    /// A string option (`scheme="rpm"`), None when absent.
    pub fn option_text(&self, name: &'static str) -> Result<Option<&'a str>, HelperError> {
        match self.h.hash_get(name) {
            None => Ok(None),
            Some(p) if p.is_value_missing() => {
                Err(HelperError::Missing(p.relative_path().cloned().unwrap_or_else(|| name.to_string())))
            }
            Some(p) => p.value().as_str().map(Some).ok_or_else(|| HelperError::Type {
                helper: self.helper,
                param: name,
                expected: "a string",
                got: describe(p.value()).to_string(),
            }),
        }
    }

    /// A value of the helper's own making is wrong (an empty separator, …).
    pub fn invalid(&self, message: impl Into<String>) -> HelperError {
        HelperError::Invalid { helper: self.helper, message: message.into() }
    }
}
