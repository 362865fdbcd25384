//! Typed parameters: declarations (scalars, lists, maps and objects, each
//! nested declaration with its own checks and defaults), values given from
//! outside or from data layers, and validation that names the exact path of
//! every bad value.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::suggest::did_you_mean;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    String,
    Integer,
    Number,
    Boolean,
    List,
    /// String keys to values (of the `values` declaration, when given).
    Map,
    /// Declared `properties`, nothing else.
    Object,
}

/// How values of one parameter combine across data levels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Merge {
    /// The highest level that has the key wins.
    #[default]
    First,
    /// Maps and objects merge key by key across levels (higher levels win
    /// on conflicts), lists are concatenated without repeats, and the
    /// declaration's default is the lowest level.
    Deep,
}

/// A declared parameter (or a nested declaration: a list's `items`, a
/// map's `values`, an object's `properties`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    #[serde(rename = "type")]
    pub kind: ParamType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The value when none is given. `default: null` makes the parameter
    /// optional: it is then "not set" (null), which `{{#if}}` and
    /// `when: {param: NAME, set: false}` test.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Value>")]
    pub default: Option<Value>,
    /// A regular expression that string values (and list items) must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// The only values allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Never printed or reported.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
    /// For a `list`: the declaration every item follows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Box<ParamSpec>>,
    /// For a `map`: the declaration every value follows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Box<ParamSpec>>,
    /// For an `object`: its properties, each with its own declaration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<IndexMap<String, ParamSpec>>,
    /// For an object's property: it must be given (a property with neither
    /// `default` nor `required` is optional, and null when not given).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    /// How data levels combine for this parameter.
    #[serde(default, skip_serializing_if = "is_first")]
    pub merge: Merge,
}

fn is_first(m: &Merge) -> bool {
    *m == Merge::First
}

/// `default: null` is a default of null, not a missing default.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// Nesting of parameter declarations (object in list in map …).
pub const MAX_DECL_DEPTH: usize = 16;

/// One bad value, at a path inside the parameter's value.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueProblem {
    /// Keys and indices below the parameter (`["bob", "uid"]`).
    pub path: Vec<String>,
    pub message: String,
    pub hint: Option<String>,
}

impl ParamSpec {
    /// A value is optional when its declared default is null.
    pub fn optional(&self) -> bool {
        matches!(self.default, Some(Value::Null))
    }

    /// Turns a command-line string into a value of this parameter's type.
    /// Lists take `a,b,c` or JSON; maps and objects take JSON.
    pub fn coerce(&self, raw: &str) -> Result<Value, String> {
        let bad = |what: &str| format!("{raw:?} is not {what}");
        Ok(match self.kind {
            ParamType::String => Value::String(raw.to_string()),
            ParamType::Integer => raw.trim().parse::<i64>().map(Value::from).map_err(|_| bad("an integer"))?,
            ParamType::Number => raw
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| bad("a number"))?,
            ParamType::Boolean => match raw.trim() {
                "true" | "yes" | "on" | "1" => Value::Bool(true),
                "false" | "no" | "off" | "0" => Value::Bool(false),
                _ => return Err(bad("a boolean (true or false)")),
            },
            ParamType::List => {
                if raw.trim_start().starts_with('[') {
                    serde_json::from_str(raw).map_err(|e| format!("{raw:?} is not a JSON list: {e}"))?
                } else if raw.is_empty() {
                    Value::Array(vec![])
                } else {
                    let item = |s: &str| match &self.items {
                        Some(spec) if !matches!(spec.kind, ParamType::String) => spec.coerce(s.trim()),
                        _ => Ok(Value::String(s.trim().to_string())),
                    };
                    Value::Array(raw.split(',').map(item).collect::<Result<_, _>>()?)
                }
            }
            ParamType::Map | ParamType::Object => {
                let v: Value = serde_json::from_str(raw).map_err(|e| format!("{raw:?} is not a JSON object: {e}"))?;
                if !v.is_object() {
                    return Err(bad("a JSON object"));
                }
                v
            }
        })
    }

    /// A stand-in value of the right type, for validation without values:
    /// one item for a list or map with a declared shape, so that loops over
    /// it are checked too.
    pub fn placeholder(&self) -> Value {
        if let Some(d) = &self.default {
            return d.clone();
        }
        if let Some(first) = self.allowed.as_ref().and_then(|a| a.first()) {
            return first.clone();
        }
        match self.kind {
            ParamType::String => Value::from("placeholder"),
            ParamType::Integer => Value::from(self.min.map(|m| m as i64).unwrap_or(1)),
            ParamType::Number => Value::from(self.min.unwrap_or(1.0)),
            ParamType::Boolean => Value::Bool(false),
            ParamType::List => Value::Array(self.items.iter().map(|i| i.placeholder()).collect()),
            ParamType::Map => match &self.values {
                Some(v) => serde_json::json!({ "placeholder": v.placeholder() }),
                None => Value::Object(Default::default()),
            },
            ParamType::Object => Value::Object(
                self.properties
                    .iter()
                    .flatten()
                    .map(|(k, p)| {
                        (k.clone(), if p.required || p.default.is_some() { p.placeholder() } else { Value::Null })
                    })
                    .collect(),
            ),
        }
    }

    /// Problems of the declaration itself: shapes on the wrong type, bad
    /// patterns, a default that does not fit. `(path below the declaration, message)`.
    pub fn problems(&self) -> Vec<(Vec<String>, String)> {
        let mut out = Vec::new();
        self.decl_problems(&mut Vec::new(), 0, &mut out);
        out
    }

    fn decl_problems(&self, at: &mut Vec<String>, depth: usize, out: &mut Vec<(Vec<String>, String)>) {
        if depth > MAX_DECL_DEPTH {
            out.push((at.clone(), format!("declarations nested more than {MAX_DECL_DEPTH} deep")));
            return;
        }
        let misplaced = |field: &str, want: &str| format!("`{field}` belongs to a `{want}` parameter");
        if self.items.is_some() && self.kind != ParamType::List {
            out.push((at.clone(), misplaced("items", "list")));
        }
        if self.values.is_some() && self.kind != ParamType::Map {
            out.push((at.clone(), misplaced("values", "map")));
        }
        if self.properties.is_some() && self.kind != ParamType::Object {
            out.push((at.clone(), misplaced("properties", "object")));
        }
        if self.kind == ParamType::Object && self.properties.is_none() {
            out.push((at.clone(), "an `object` parameter declares its `properties` (or use `type: map`)".into()));
        }
        if self.merge == Merge::Deep && !matches!(self.kind, ParamType::Map | ParamType::Object | ParamType::List) {
            out.push((at.clone(), "`merge: deep` applies to list, map and object parameters".into()));
        }
        if let Some(p) = &self.pattern {
            if let Err(e) = regex_lite::Regex::new(p) {
                let mut a = at.clone();
                a.push("pattern".into());
                out.push((a, format!("invalid pattern: {e}")));
            }
        }
        if self.required && self.default.is_some() {
            out.push((at.clone(), "a property is either `required` or has a `default`, not both".into()));
        }
        let mut nested = |field: &str, key: Option<&str>, spec: &ParamSpec, out: &mut Vec<(Vec<String>, String)>| {
            at.push(field.to_string());
            if let Some(k) = key {
                at.push(k.to_string());
            }
            spec.decl_problems(at, depth + 1, out);
            at.pop();
            if key.is_some() {
                at.pop();
            }
        };
        if let Some(i) = &self.items {
            nested("items", None, i, out);
        }
        if let Some(v) = &self.values {
            nested("values", None, v, out);
        }
        for (k, p) in self.properties.iter().flatten() {
            nested("properties", Some(k), p, out);
        }
        if out.is_empty() {
            if let Some(d) = &self.default {
                let mut vp = Vec::new();
                self.normalize(d.clone(), true, &mut Vec::new(), &mut vp);
                for p in vp {
                    let mut a = at.clone();
                    a.push("default".into());
                    a.extend(p.path);
                    out.push((a, p.message));
                }
            }
        }
    }

    /// Checks a value; the first problem, if any (see `normalize` for all).
    pub fn check(&self, v: &Value) -> Result<(), String> {
        let mut problems = Vec::new();
        self.normalize(v.clone(), self.optional(), &mut Vec::new(), &mut problems);
        match problems.into_iter().next() {
            None => Ok(()),
            Some(p) if p.path.is_empty() => Err(p.message),
            Some(p) => Err(format!("{}: {}", p.path.join("."), p.message)),
        }
    }

    /// Checks a value against the declaration, recursively, and fills in
    /// the defaults of object properties. Every problem is collected with
    /// its path. `optional`: null is an accepted value ("not set").
    pub fn normalize(&self, v: Value, optional: bool, at: &mut Vec<String>, out: &mut Vec<ValueProblem>) -> Value {
        let mut problem = |at: &[String], message: String, hint: Option<String>| {
            out.push(ValueProblem { path: at.to_vec(), message, hint })
        };
        if v.is_null() {
            if !optional {
                problem(at, format!("expected {}, got nothing", type_name(self.kind)), None);
            }
            return v;
        }
        let type_ok = match self.kind {
            ParamType::String => v.is_string(),
            ParamType::Integer => v.is_i64() || v.is_u64(),
            ParamType::Number => v.is_number(),
            ParamType::Boolean => v.is_boolean(),
            ParamType::List => v.is_array(),
            ParamType::Map | ParamType::Object => v.is_object(),
        };
        if !type_ok {
            problem(at, format!("expected {}, got {}", type_name(self.kind), describe(&v)), None);
            return v;
        }
        if let Some(p) = &self.pattern {
            if let Ok(re) = regex_lite::Regex::new(p) {
                let items: Vec<&Value> = match &v {
                    Value::Array(a) if self.items.is_none() => a.iter().collect(),
                    Value::Array(_) => vec![],
                    other => vec![other],
                };
                for item in items {
                    let s = as_text(item);
                    if !re.is_match(&s) {
                        problem(at, format!("{s:?} does not match the pattern {p:?}"), None);
                    }
                }
            }
        }
        if let Some(allowed) = &self.allowed {
            if !allowed.contains(&v) {
                let list: Vec<String> = allowed.iter().map(|a| a.to_string()).collect();
                problem(at, format!("{v} is not one of the allowed values [{}]", list.join(", ")), None);
            }
        }
        if let Some(n) = v.as_f64() {
            if self.min.is_some_and(|m| n < m) || self.max.is_some_and(|m| n > m) {
                problem(
                    at,
                    format!(
                        "{n} is outside the range {}..{}",
                        self.min.map(|m| m.to_string()).unwrap_or_default(),
                        self.max.map(|m| m.to_string()).unwrap_or_default()
                    ),
                    None,
                );
            }
        }
        match (v, self.kind) {
            (Value::Array(items), ParamType::List) => match &self.items {
                Some(spec) => Value::Array(
                    items
                        .into_iter()
                        .enumerate()
                        .map(|(i, item)| {
                            at.push(i.to_string());
                            let v = spec.normalize(item, spec.optional(), at, out);
                            at.pop();
                            v
                        })
                        .collect(),
                ),
                None => Value::Array(items),
            },
            (Value::Object(m), ParamType::Map) => match &self.values {
                Some(spec) => Value::Object(
                    m.into_iter()
                        .map(|(k, item)| {
                            at.push(k.clone());
                            let v = spec.normalize(item, spec.optional(), at, out);
                            at.pop();
                            (k, v)
                        })
                        .collect(),
                ),
                None => Value::Object(m),
            },
            (Value::Object(mut m), ParamType::Object) => {
                let empty = IndexMap::new();
                let props = self.properties.as_ref().unwrap_or(&empty);
                let mut res = serde_json::Map::new();
                for k in m.keys() {
                    if !props.contains_key(k) {
                        at.push(k.clone());
                        out.push(ValueProblem {
                            path: at.clone(),
                            message: format!("unknown property `{k}`"),
                            hint: did_you_mean(k, props.keys().map(String::as_str))
                                .or_else(|| Some(format!("known: {}", join_keys(props)))),
                        });
                        at.pop();
                    }
                }
                for (k, spec) in props {
                    at.push(k.clone());
                    let value = match m.remove(k) {
                        Some(v) => spec.normalize(v, !spec.required, at, out),
                        None if spec.required => {
                            out.push(ValueProblem {
                                path: at.clone(),
                                message: "missing, and required".into(),
                                hint: None,
                            });
                            Value::Null
                        }
                        None => spec.default.clone().unwrap_or(Value::Null),
                    };
                    at.pop();
                    res.insert(k.clone(), value);
                }
                Value::Object(res)
            }
            (v, _) => v,
        }
    }
}

fn join_keys(m: &IndexMap<String, ParamSpec>) -> String {
    m.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A problem message with a sensitive value taken out.
fn redact(message: &str, value: &Value) -> String {
    let text = as_text(value);
    if text.is_empty() { message.to_string() } else { message.replace(&text, "(sensitive)") }
}

fn type_name(t: ParamType) -> &'static str {
    match t {
        ParamType::String => "a string",
        ParamType::Integer => "an integer",
        ParamType::Number => "a number",
        ParamType::Boolean => "a boolean",
        ParamType::List => "a list",
        ParamType::Map => "a map",
        ParamType::Object => "an object",
    }
}

/// What a value is, for messages.
pub fn describe(v: &Value) -> String {
    match v {
        Value::Null => "nothing".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {}", crate::names::shown(s)),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

/// Where a problem with a parameter lies.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamProblemAt {
    /// In the declaration (the default value, the pattern).
    Declaration(String),
    /// In a value given from outside (command line, params file).
    Override(String),
    /// In a data level (index into the layers given to `resolve_layered`).
    Layer(usize, String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParamProblem {
    pub at: ParamProblemAt,
    /// Keys and indices below the parameter's value, where known.
    pub path: Vec<String>,
    pub message: String,
    pub hint: Option<String>,
}

/// Values supplied from outside the recipe.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--param k=v`, as typed on the command line (coerced by the declared type).
    pub raw: Vec<(String, String)>,
    /// A params file or an API payload: already typed.
    pub typed: serde_json::Map<String, Value>,
    /// Validation before the values are known (a recipe pushed to the
    /// server): a parameter with no value and no default gets a placeholder
    /// of its type instead of an error.
    pub placeholders: bool,
}

/// One level of data (a hierarchy file): parameter name to value.
#[derive(Debug, Clone, Default)]
pub struct Layer {
    /// How the level is named in `explain` and in messages.
    pub label: String,
    pub values: serde_json::Map<String, Value>,
}

/// Where a parameter's value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "from", content = "at")]
pub enum Origin {
    /// `--param NAME=VALUE`.
    CommandLine,
    /// A params file, or the parameters of a server assignment.
    Given,
    /// A data level (index into the layers).
    Layer(usize),
    /// The declaration's default.
    Default,
    /// A stand-in for validation.
    Placeholder,
}

/// Resolved parameters.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    pub values: serde_json::Map<String, Value>,
    /// Where each value came from; several entries when levels were merged
    /// (lowest first).
    pub origins: IndexMap<String, Vec<Origin>>,
    pub problems: Vec<ParamProblem>,
}

/// Resolves declared parameters against overrides into one JSON object.
pub fn resolve(
    specs: &IndexMap<String, ParamSpec>,
    overrides: &Overrides,
) -> (serde_json::Map<String, Value>, Vec<ParamProblem>) {
    let r = resolve_layered(specs, overrides, &[]);
    (r.values, r.problems)
}

/// Resolves parameters; precedence, highest first: `--param`, given values,
/// the data layers (first that has the key, or all merged for `merge:
/// deep`), the declaration's default.
pub fn resolve_layered(specs: &IndexMap<String, ParamSpec>, overrides: &Overrides, layers: &[Layer]) -> Resolved {
    let mut r = Resolved::default();
    let names = || specs.keys().map(String::as_str);
    for (name, _) in overrides.raw.iter().map(|(k, v)| (k, v)).chain(overrides.typed.iter().map(|(k, _)| (k, k))) {
        if !specs.contains_key(name) {
            r.problems.push(ParamProblem {
                at: ParamProblemAt::Override(name.clone()),
                path: vec![],
                message: format!("unknown parameter `{name}`"),
                hint: did_you_mean(name, names()),
            });
        }
    }
    for (name, spec) in specs {
        let Some((value, at, origins)) = pick(name, spec, overrides, layers, &mut r.problems) else {
            continue;
        };
        let mut vp = Vec::new();
        let value = spec.normalize(value, spec.optional(), &mut Vec::new(), &mut vp);
        // A default's problems are the declaration's, reported with it.
        if origins == [Origin::Default] {
            vp.clear();
        }
        for p in vp {
            let shown = if p.path.is_empty() {
                format!("params.{name}")
            } else {
                format!("params.{name}.{}", p.path.join("."))
            };
            let message = format!("{shown}: {}", p.message);
            let message = if spec.sensitive { redact(&message, &value) } else { message };
            r.problems.push(ParamProblem { at: at.clone(), path: p.path, message, hint: p.hint });
        }
        // Kept even when invalid, so that templates using it do not report
        // a second, misleading "missing value".
        r.values.insert(name.clone(), value);
        r.origins.insert(name.clone(), origins);
    }
    r
}

type Picked = (Value, ParamProblemAt, Vec<Origin>);

/// The value of one parameter, before checks, and where it came from.
fn pick(
    name: &str,
    spec: &ParamSpec,
    overrides: &Overrides,
    layers: &[Layer],
    problems: &mut Vec<ParamProblem>,
) -> Option<Picked> {
    if let Some(raw) = overrides.raw.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v) {
        return match spec.coerce(raw) {
            Ok(v) => Some((v, ParamProblemAt::Override(name.into()), vec![Origin::CommandLine])),
            Err(e) => {
                let e = if spec.sensitive { e.replace(raw.as_str(), "(sensitive)") } else { e };
                problems.push(ParamProblem {
                    at: ParamProblemAt::Override(name.into()),
                    path: vec![],
                    message: format!("params.{name}: {e}"),
                    hint: None,
                });
                None
            }
        };
    }
    if let Some(v) = overrides.typed.get(name) {
        return Some((v.clone(), ParamProblemAt::Override(name.into()), vec![Origin::Given]));
    }
    let found: Vec<usize> = (0..layers.len()).filter(|&i| layers[i].values.contains_key(name)).collect();
    if spec.merge == Merge::Deep && !found.is_empty() {
        // Lowest first: the default, then the levels from the bottom up.
        let mut origins = Vec::new();
        let mut acc = match &spec.default {
            Some(d) if !d.is_null() => {
                origins.push(Origin::Default);
                d.clone()
            }
            _ => Value::Null,
        };
        let mut at = ParamProblemAt::Declaration(name.into());
        for &i in found.iter().rev() {
            let v = layers[i].values[name].clone();
            at = ParamProblemAt::Layer(i, name.into());
            match deep_merge(acc, v, &mut Vec::new()) {
                Ok(m) => acc = m,
                Err((path, message)) => {
                    problems.push(ParamProblem {
                        at,
                        path,
                        message: format!("params.{name}: {message} (merge: deep)"),
                        hint: None,
                    });
                    return None;
                }
            }
            origins.push(Origin::Layer(i));
        }
        return Some((acc, at, origins));
    }
    if let Some(&i) = found.first() {
        return Some((layers[i].values[name].clone(), ParamProblemAt::Layer(i, name.into()), vec![Origin::Layer(i)]));
    }
    if let Some(v) = &spec.default {
        return Some((v.clone(), ParamProblemAt::Declaration(name.into()), vec![Origin::Default]));
    }
    if overrides.placeholders {
        return Some((spec.placeholder(), ParamProblemAt::Declaration(name.into()), vec![Origin::Placeholder]));
    }
    problems.push(ParamProblem {
        at: ParamProblemAt::Declaration(name.into()),
        path: vec![],
        message: format!("missing value for parameter `{name}`, which has no default"),
        hint: Some(format!("pass --param {name}=VALUE")),
    });
    None
}

/// Merges `high` over `low`: mappings key by key, lists without repeats,
/// scalars replaced. A mapping or list against a different kind is an error
/// (`(path, message)`).
pub fn deep_merge(low: Value, high: Value, at: &mut Vec<String>) -> Result<Value, (Vec<String>, String)> {
    match (low, high) {
        (Value::Null, h) => Ok(h),
        (Value::Object(mut l), Value::Object(h)) => {
            for (k, hv) in h {
                let merged = match l.remove(&k) {
                    Some(lv) => {
                        at.push(k.clone());
                        let m = deep_merge(lv, hv, at)?;
                        at.pop();
                        m
                    }
                    None => hv,
                };
                l.insert(k, merged);
            }
            Ok(Value::Object(l))
        }
        (Value::Array(mut l), Value::Array(h)) => {
            for item in h {
                if !l.contains(&item) {
                    l.push(item);
                }
            }
            Ok(Value::Array(l))
        }
        (l @ (Value::Object(_) | Value::Array(_)), h) | (l, h @ (Value::Object(_) | Value::Array(_))) => {
            if h.is_null() {
                return Ok(l);
            }
            Err((at.clone(), format!("cannot deep-merge {} with {}", describe(&l), describe(&h))))
        }
        (_, h) => Ok(h),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(yaml: &str) -> ParamSpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn coerces_and_checks() {
        let s = spec("{type: string, default: example.org, pattern: '^[a-z0-9.-]+$'}");
        assert!(s.check(&Value::from("ok.example")).is_ok());
        assert!(s.check(&Value::from("Bad Site")).is_err());
        let i = spec("{type: integer, min: 0, max: 300}");
        assert_eq!(i.coerce("5").unwrap(), Value::from(5));
        assert!(i.coerce("five").is_err());
        assert!(i.check(&Value::from(301)).is_err());
        let l = spec("{type: list}");
        assert_eq!(l.coerce("a, b").unwrap(), json!(["a", "b"]));
        let li = spec("{type: list, items: {type: integer}}");
        assert_eq!(li.coerce("1,2").unwrap(), json!([1, 2]));
        let m = spec("{type: map, values: {type: integer}}");
        assert_eq!(m.coerce(r#"{"a": 1}"#).unwrap(), json!({"a": 1}));
        assert!(m.coerce("[1]").is_err());
    }

    #[test]
    fn nested_values_are_checked_with_their_path_and_defaults_filled() {
        let users = spec(
            "{type: map, values: {type: object, properties: {
                uid: {type: integer, required: true},
                groups: {type: list, items: {type: string}, default: []},
                editor: {type: string}}}}",
        );
        assert!(users.problems().is_empty(), "{:?}", users.problems());
        let mut out = Vec::new();
        let v = users.normalize(
            json!({"bob": {"uid": "x"}, "amy": {"uid": 1, "shel": "/bin/sh"}}),
            false,
            &mut vec![],
            &mut out,
        );
        let got: Vec<(String, String)> = out.iter().map(|p| (p.path.join("."), p.message.clone())).collect();
        assert_eq!(
            got,
            [
                ("amy.shel".to_string(), "unknown property `shel`".to_string()),
                ("bob.uid".to_string(), r#"expected an integer, got the string "x""#.to_string()),
            ]
        );
        assert_eq!(v["amy"], json!({"uid": 1, "groups": [], "editor": null}));
        let mut out = Vec::new();
        users.normalize(json!({"c": {}}), false, &mut vec![], &mut out);
        assert_eq!(out[0].message, "missing, and required");
    }

    #[test]
    fn declarations_are_checked() {
        assert!(!spec("{type: string, items: {type: string}}").problems().is_empty());
        assert!(!spec("{type: object}").problems().is_empty());
        assert!(!spec("{type: string, merge: deep}").problems().is_empty());
        let p = spec("{type: list, items: {type: integer}, default: [1, x]}").problems();
        assert_eq!(p[0].0, ["default", "1"]);
        assert!(spec("{type: string, default: null}").optional());
    }

    #[test]
    fn resolves_defaults_overrides_and_problems() {
        let mut specs = IndexMap::new();
        specs.insert("site".to_string(), spec("{type: string, default: example.org}"));
        specs.insert("port".to_string(), spec("{type: integer}"));
        let o = Overrides { raw: vec![("sitee".into(), "x".into())], typed: Default::default(), placeholders: false };
        let (vals, problems) = resolve(&specs, &o);
        assert_eq!(vals["site"], "example.org");
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(problems[0].hint.as_deref(), Some("did you mean `site`?"));
    }

    #[test]
    fn layers_take_precedence_over_defaults_and_deep_merge() {
        let mut specs = IndexMap::new();
        specs.insert("servers".to_string(), spec("{type: list, default: [a]}"));
        specs.insert("opts".to_string(), spec("{type: map, merge: deep, default: {x: 1}}"));
        let layers = vec![
            Layer { label: "node".into(), values: json!({"opts": {"y": 2}}).as_object().unwrap().clone() },
            Layer {
                label: "os".into(),
                values: json!({"servers": ["b"], "opts": {"x": 3, "z": 4}}).as_object().unwrap().clone(),
            },
        ];
        let r = resolve_layered(&specs, &Overrides::default(), &layers);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(r.values["servers"], json!(["b"]));
        assert_eq!(r.values["opts"], json!({"x": 3, "y": 2, "z": 4}));
        assert_eq!(r.origins["opts"], [Origin::Default, Origin::Layer(1), Origin::Layer(0)]);
        let bad = vec![Layer { label: "os".into(), values: json!({"opts": "flat"}).as_object().unwrap().clone() }];
        let r = resolve_layered(&specs, &Overrides::default(), &bad);
        assert!(r.problems[0].message.contains("cannot deep-merge a mapping with the string"), "{:?}", r.problems);
    }

    #[test]
    fn sensitive_values_stay_out_of_problems() {
        let mut specs = IndexMap::new();
        specs.insert("pw".to_string(), spec("{type: string, pattern: '^[a-z]+$', sensitive: true}"));
        let o =
            Overrides { raw: vec![("pw".into(), "Hunter2".into())], typed: Default::default(), placeholders: false };
        let (_, problems) = resolve(&specs, &o);
        assert_eq!(problems.len(), 1);
        assert!(!problems[0].message.contains("Hunter2"), "{}", problems[0].message);
    }
}
