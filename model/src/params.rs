//! Typed recipe parameters: declaration, overrides from the command line or a
//! file, and validation.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
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
}

/// A declared parameter.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    #[serde(rename = "type")]
    pub kind: ParamType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
}

/// Where a problem with a parameter lies.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamProblemAt {
    /// In the declaration (the default value, the pattern).
    Declaration(String),
    /// In a value given from outside (command line, params file).
    Override(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParamProblem {
    pub at: ParamProblemAt,
    pub message: String,
    pub hint: Option<String>,
}

impl ParamSpec {
    /// Turns a command-line string into a value of this parameter's type.
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
                    Value::Array(raw.split(',').map(|s| Value::String(s.trim().to_string())).collect())
                }
            }
        })
    }

    /// A stand-in value of the right type, for validation without values.
    pub fn placeholder(&self) -> Value {
        if let Some(first) = self.allowed.as_ref().and_then(|a| a.first()) {
            return first.clone();
        }
        match self.kind {
            ParamType::String => Value::from("placeholder"),
            ParamType::Integer => Value::from(self.min.map(|m| m as i64).unwrap_or(0)),
            ParamType::Number => Value::from(self.min.unwrap_or(0.0)),
            ParamType::Boolean => Value::Bool(false),
            ParamType::List => Value::Array(vec![]),
        }
    }

    /// Checks a value against the type, pattern, allowed values and range.
    pub fn check(&self, v: &Value) -> Result<(), String> {
        let type_ok = match self.kind {
            ParamType::String => v.is_string(),
            ParamType::Integer => v.is_i64() || v.is_u64(),
            ParamType::Number => v.is_number(),
            ParamType::Boolean => v.is_boolean(),
            ParamType::List => v.is_array(),
        };
        if !type_ok {
            return Err(format!("expected a {}, found {}", type_name(self.kind), describe(v)));
        }
        if let Some(p) = &self.pattern {
            let re = regex_lite::Regex::new(p).map_err(|e| format!("invalid pattern {p:?}: {e}"))?;
            let items: Vec<&Value> = match v {
                Value::Array(a) => a.iter().collect(),
                other => vec![other],
            };
            for item in items {
                let s = match item {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                if !re.is_match(&s) {
                    return Err(format!("{s:?} does not match the pattern {p:?}"));
                }
            }
        }
        if let Some(allowed) = &self.allowed {
            if !allowed.contains(v) {
                let list: Vec<String> = allowed.iter().map(|a| a.to_string()).collect();
                return Err(format!("{v} is not one of the allowed values [{}]", list.join(", ")));
            }
        }
        if let Some(n) = v.as_f64() {
            if self.min.is_some_and(|m| n < m) || self.max.is_some_and(|m| n > m) {
                return Err(format!(
                    "{n} is outside the range {}..{}",
                    self.min.map(|m| m.to_string()).unwrap_or_default(),
                    self.max.map(|m| m.to_string()).unwrap_or_default()
                ));
            }
        }
        Ok(())
    }
}

/// A problem message with a sensitive value taken out.
fn redact(message: &str, value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.is_empty() { message.to_string() } else { message.replace(&text, "(sensitive)") }
}

fn type_name(t: ParamType) -> &'static str {
    match t {
        ParamType::String => "string",
        ParamType::Integer => "integer",
        ParamType::Number => "number",
        ParamType::Boolean => "boolean",
        ParamType::List => "list",
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "nothing".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
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

/// Resolves declared parameters against overrides into one JSON object.
pub fn resolve(
    specs: &IndexMap<String, ParamSpec>,
    overrides: &Overrides,
) -> (serde_json::Map<String, Value>, Vec<ParamProblem>) {
    let mut out = serde_json::Map::new();
    let mut problems = Vec::new();
    let names = || specs.keys().map(String::as_str);
    for (name, _) in overrides.raw.iter().map(|(k, v)| (k, v)).chain(overrides.typed.iter().map(|(k, _)| (k, k))) {
        if !specs.contains_key(name) {
            problems.push(ParamProblem {
                at: ParamProblemAt::Override(name.clone()),
                message: format!("unknown parameter `{name}`"),
                hint: did_you_mean(name, names()),
            });
        }
    }
    for (name, spec) in specs {
        let given_raw = overrides.raw.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v);
        let (value, at) = if let Some(raw) = given_raw {
            match spec.coerce(raw) {
                Ok(v) => (v, ParamProblemAt::Override(name.clone())),
                Err(e) => {
                    let e = if spec.sensitive { e.replace(raw.as_str(), "(sensitive)") } else { e };
                    problems.push(ParamProblem {
                        at: ParamProblemAt::Override(name.clone()),
                        message: format!("parameter `{name}`: {e}"),
                        hint: None,
                    });
                    continue;
                }
            }
        } else if let Some(v) = overrides.typed.get(name) {
            (v.clone(), ParamProblemAt::Override(name.clone()))
        } else if let Some(v) = &spec.default {
            (v.clone(), ParamProblemAt::Declaration(name.clone()))
        } else if overrides.placeholders {
            out.insert(name.clone(), spec.placeholder());
            continue;
        } else {
            problems.push(ParamProblem {
                at: ParamProblemAt::Declaration(name.clone()),
                message: format!("missing value for parameter `{name}`, which has no default"),
                hint: Some(format!("pass --param {name}=VALUE")),
            });
            continue;
        };
        if let Err(e) = spec.check(&value) {
            let e = if spec.sensitive { redact(&e, &value) } else { e };
            problems.push(ParamProblem { at, message: format!("parameter `{name}`: {e}"), hint: None });
        }
        // Kept even when invalid, so that templates using it do not report
        // a second, misleading "missing value".
        out.insert(name.clone(), value);
    }
    (out, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(l.coerce("a, b").unwrap(), serde_json::json!(["a", "b"]));
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
