//! Structured `when:` conditions: all / any / not, and equals / in / matches
//! on facts and parameters. No expression language to parse or to get wrong.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A condition. Exactly one of `all`, `any`, `not`, or a subject (`fact` or
/// `param`) with one operator (`equals`, `in`, `matches`, `exists`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct When {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<Vec<When>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub any: Option<Vec<When>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not: Option<Box<When>>,
    /// A fact path, e.g. `os.family`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fact: Option<String>,
    /// A parameter name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<Value>,
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    pub in_: Option<Vec<Value>>,
    /// A regular expression the value (as a string) must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<String>,
    /// True if the fact or parameter must be present (false: absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exists: Option<bool>,
}

/// Looks up a dotted path (`os.family`, `interfaces.0.name`) in a JSON value.
pub fn lookup<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(root, |v, seg| match v {
            Value::Object(m) => m.get(seg),
            Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        })
        .filter(|v| !v.is_null())
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn loosely_equal(a: &Value, b: &Value) -> bool {
    a == b || as_text(a) == as_text(b)
}

impl When {
    /// Structural problems: wrong combinations of keys, bad regexes.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let combinators = [self.all.is_some(), self.any.is_some(), self.not.is_some()].iter().filter(|b| **b).count();
        let subjects = [self.fact.is_some(), self.param.is_some()].iter().filter(|b| **b).count();
        let ops = [self.equals.is_some(), self.in_.is_some(), self.matches.is_some(), self.exists.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if combinators + subjects != 1 {
            out.push("a condition needs exactly one of `all`, `any`, `not`, `fact` or `param`".to_string());
        }
        if subjects == 1 && ops != 1 {
            out.push(
                "a `fact` or `param` condition needs exactly one of `equals`, `in`, `matches` or `exists`".to_string(),
            );
        }
        if combinators == 1 && ops > 0 {
            out.push(
                "`equals`, `in`, `matches` and `exists` go with `fact` or `param`, not with all/any/not".to_string(),
            );
        }
        if let Some(re) = &self.matches {
            if let Err(e) = regex_lite::Regex::new(re) {
                out.push(format!("invalid regular expression {re:?}: {e}"));
            }
        }
        for c in self.all.iter().chain(self.any.iter()).flatten() {
            out.extend(c.problems());
        }
        if let Some(n) = &self.not {
            out.extend(n.problems());
        }
        out
    }

    /// Every fact path and parameter name the condition reads.
    pub fn subjects(&self) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        if let Some(f) = &self.fact {
            out.push((true, f.as_str()));
        }
        if let Some(p) = &self.param {
            out.push((false, p.as_str()));
        }
        for c in self.all.iter().chain(self.any.iter()).flatten() {
            out.extend(c.subjects());
        }
        if let Some(n) = &self.not {
            out.extend(n.subjects());
        }
        out
    }

    /// Evaluates against facts and parameters. Call only after `problems()` is empty.
    pub fn eval(&self, facts: &Value, params: &Value) -> bool {
        if let Some(all) = &self.all {
            return all.iter().all(|c| c.eval(facts, params));
        }
        if let Some(any) = &self.any {
            return any.iter().any(|c| c.eval(facts, params));
        }
        if let Some(n) = &self.not {
            return !n.eval(facts, params);
        }
        let subject = match (&self.fact, &self.param) {
            (Some(f), _) => lookup(facts, f),
            (_, Some(p)) => params.get(p).filter(|v| !v.is_null()),
            _ => None,
        };
        if let Some(want) = self.exists {
            return subject.is_some() == want;
        }
        let Some(v) = subject else { return false };
        if let Some(e) = &self.equals {
            return loosely_equal(v, e);
        }
        if let Some(list) = &self.in_ {
            return list.iter().any(|e| loosely_equal(v, e));
        }
        if let Some(re) = &self.matches {
            return regex_lite::Regex::new(re).is_ok_and(|r| r.is_match(&as_text(v)));
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn when(y: &str) -> When {
        serde_yaml::from_str(y).unwrap()
    }

    #[test]
    fn evaluates_structured_conditions() {
        let facts = json!({"os": {"family": "debian", "version_id": "12"}, "hostname": "web-1"});
        let params = json!({"env": "prod"});
        assert!(when("{fact: os.family, equals: debian}").eval(&facts, &params));
        assert!(when("{fact: os.version_id, equals: 12}").eval(&facts, &params));
        assert!(when("{param: env, in: [prod, staging]}").eval(&facts, &params));
        assert!(when("{fact: hostname, matches: '^web-'}").eval(&facts, &params));
        assert!(when("{not: {fact: ec2, exists: true}}").eval(&facts, &params));
        assert!(!when("{all: [{param: env, equals: prod}, {fact: os.family, equals: redhat}]}").eval(&facts, &params));
        assert!(when("{any: [{param: env, equals: dev}, {fact: os.family, equals: debian}]}").eval(&facts, &params));
    }

    #[test]
    fn reports_malformed_conditions() {
        assert!(!when("{fact: os.family}").problems().is_empty());
        assert!(!when("{fact: a, param: b, equals: 1}").problems().is_empty());
        assert!(!when("{fact: a, matches: '('}").problems().is_empty());
        assert!(when("{all: [{fact: a, equals: 1}]}").problems().is_empty());
    }
}
