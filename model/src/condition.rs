//! Structured `when:` conditions: all / any / not, and equals / in / matches
//! / exists / set, numeric and version comparisons on facts and parameters.
//! No expression language to parse or to get wrong.

use std::cmp::Ordering;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Number, Value};

use crate::version::{self, Scheme};

/// A condition. Exactly one of `all`, `any`, `not`, or a subject (`fact` or
/// `param`) with one operator: `equals`, `in`, `matches`, `exists`, `set`,
/// `gt`, `gte`, `lt`, `lte`, or `version_gt`, `version_gte`, `version_lt`,
/// `version_lte`, `version_eq` (with an optional `scheme`).
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
    /// A parameter name, or a dotted path inside a parameter (`users.bob.shell`).
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
    /// True if the fact or parameter must have a value (false: it is missing
    /// or null, as an optional parameter with no value is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<bool>,
    /// The value, as a number (a string that reads as one counts), is greater than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gt: Option<Number>,
    /// The value, as a number, is greater than or equal to this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gte: Option<Number>,
    /// The value, as a number, is less than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<Number>,
    /// The value, as a number, is less than or equal to this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lte: Option<Number>,
    /// The value, as a version, is newer than this (quote it: `'1.10'`).
    #[serde(default, deserialize_with = "version_text", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub version_gt: Option<String>,
    /// The value, as a version, is this one or newer.
    #[serde(default, deserialize_with = "version_text", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub version_gte: Option<String>,
    /// The value, as a version, is older than this.
    #[serde(default, deserialize_with = "version_text", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub version_lt: Option<String>,
    /// The value, as a version, is this one or older.
    #[serde(default, deserialize_with = "version_text", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub version_lte: Option<String>,
    /// The value, as a version, is the same version as this (`1.0` = `1.00`).
    #[serde(default, deserialize_with = "version_text", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub version_eq: Option<String>,
    /// How the version operators order versions: `debian`, `rpm`, or `auto`
    /// (the default: the host's package manager's order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<Scheme>,
}

/// Whether an ordering satisfies an operator (`Ordering::is_ge` for `gte`, …).
type Test = fn(Ordering) -> bool;

/// Every operator that goes with `fact` or `param`, in the order messages list them.
pub const OPERATORS: &[&str] = &[
    "equals",
    "in",
    "matches",
    "exists",
    "set",
    "gt",
    "gte",
    "lt",
    "lte",
    "version_gt",
    "version_gte",
    "version_lt",
    "version_lte",
    "version_eq",
];

impl When {
    /// Every key a condition may have, for "did you mean" hints on unknown ones.
    pub const KEYS: &'static [&'static str] = &[
        "all",
        "any",
        "not",
        "fact",
        "param",
        "equals",
        "in",
        "matches",
        "exists",
        "set",
        "gt",
        "gte",
        "lt",
        "lte",
        "version_gt",
        "version_gte",
        "version_lt",
        "version_lte",
        "version_eq",
        "scheme",
    ];
}

/// A version written as a string. An unquoted `1.10` reaches here as the
/// number 1.1, so a number with a fraction is refused rather than compared
/// as a different version; a whole number (`12`) is unambiguous.
fn version_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    use serde::de::Error;
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(Some(n.to_string())),
        Value::Number(n) => Err(D::Error::custom(format!(
            "write versions as quoted strings: YAML read this one as the number {n} (an unquoted 1.10 is the number 1.1)"
        ))),
        _ => Err(D::Error::custom("expected a version, as a quoted string (e.g. '1.10')")),
    }
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

/// The subject as a number: a JSON number, or a string that reads as one
/// (` 42 `, `1.5`, `-3`, `1e3`; not `inf` or `NaN`). Anything else is not.
fn as_number(v: &Value) -> Option<Number> {
    match v {
        Value::Number(n) => Some(n.clone()),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(i) = s.parse::<i64>() {
                Some(i.into())
            } else if let Ok(u) = s.parse::<u64>() {
                Some(u.into())
            } else {
                s.parse::<f64>().ok().and_then(Number::from_f64)
            }
        }
        _ => None,
    }
}

/// Numbers compared exactly when both are integers (so that large ones do
/// not round), otherwise as floating point.
fn compare_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return Some(x.cmp(&y));
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return Some(x.cmp(&y));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

/// The subject as a version: a string, or a number as written.
fn as_version(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl When {
    /// The operators this condition has, by name.
    fn operators(&self) -> Vec<&'static str> {
        let present = [
            self.equals.is_some(),
            self.in_.is_some(),
            self.matches.is_some(),
            self.exists.is_some(),
            self.set.is_some(),
            self.gt.is_some(),
            self.gte.is_some(),
            self.lt.is_some(),
            self.lte.is_some(),
            self.version_gt.is_some(),
            self.version_gte.is_some(),
            self.version_lt.is_some(),
            self.version_lte.is_some(),
            self.version_eq.is_some(),
        ];
        OPERATORS.iter().zip(present).filter(|(_, p)| *p).map(|(name, _)| *name).collect()
    }

    /// The version operator's comparison and the version, if it has one.
    fn version_operator(&self) -> Option<(Test, &str)> {
        let ops: [(&Option<String>, Test); 5] = [
            (&self.version_gt, Ordering::is_gt),
            (&self.version_gte, Ordering::is_ge),
            (&self.version_lt, Ordering::is_lt),
            (&self.version_lte, Ordering::is_le),
            (&self.version_eq, Ordering::is_eq),
        ];
        ops.into_iter().find_map(|(v, test)| v.as_deref().map(|v| (test, v)))
    }

    /// The numeric operator's comparison and the number, if it has one.
    fn numeric_operator(&self) -> Option<(Test, &Number)> {
        let ops: [(&Option<Number>, Test); 4] = [
            (&self.gt, Ordering::is_gt),
            (&self.gte, Ordering::is_ge),
            (&self.lt, Ordering::is_lt),
            (&self.lte, Ordering::is_le),
        ];
        ops.into_iter().find_map(|(n, test)| n.as_ref().map(|n| (test, n)))
    }

    /// Structural problems: wrong combinations of keys, bad regexes.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let combinators = [self.all.is_some(), self.any.is_some(), self.not.is_some()].iter().filter(|b| **b).count();
        let subjects = [self.fact.is_some(), self.param.is_some()].iter().filter(|b| **b).count();
        let ops = self.operators();
        if combinators + subjects != 1 {
            out.push("a condition needs exactly one of `all`, `any`, `not`, `fact` or `param`".to_string());
        }
        if subjects == 1 && ops.is_empty() {
            out.push(format!("a `fact` or `param` condition needs an operator: {}", list_operators()));
        }
        if subjects == 1 && ops.len() > 1 {
            out.push(format!(
                "a `fact` or `param` condition takes one operator, not {} (for a range, use `all:` with one condition per bound)",
                quoted_and(&ops)
            ));
        }
        if combinators == 1 && !ops.is_empty() {
            let verb = if ops.len() == 1 { "goes" } else { "go" };
            out.push(format!("{} {verb} with `fact` or `param`, not with all/any/not", quoted_and(&ops)));
        }
        if self.scheme.is_some() && self.version_operator().is_none() {
            out.push(
                "`scheme` goes with a version operator (`version_gt`, `version_gte`, `version_lt`, `version_lte` or `version_eq`)"
                    .to_string(),
            );
        }
        if self.version_operator().is_some_and(|(_, v)| v.trim().is_empty()) {
            out.push("a version operator needs a version, not an empty string".to_string());
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

    /// Every fact path and parameter path the condition reads (`true` for
    /// facts), as written: a parameter path's first segment is the parameter.
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
            (_, Some(p)) => lookup(params, p),
            _ => None,
        };
        if let Some(want) = self.exists.or(self.set) {
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
        if let Some((test, bound)) = self.numeric_operator() {
            return as_number(v).and_then(|n| compare_numbers(&n, bound)).is_some_and(test);
        }
        if let Some((test, want)) = self.version_operator() {
            let family = lookup(facts, "os.family").and_then(Value::as_str);
            let scheme = self.scheme.unwrap_or_default().on_host(family);
            return as_version(v).is_some_and(|have| test(version::compare(&have, want, scheme)));
        }
        false
    }
}

/// `a`, `b` or `c`, for messages.
fn list_operators() -> String {
    let (last, rest) = OPERATORS.split_last().unwrap_or((&"", &[]));
    let rest: Vec<String> = rest.iter().map(|o| format!("`{o}`")).collect();
    format!("{} or `{last}`", rest.join(", "))
}

/// `a`, `b` and `c`, for messages.
fn quoted_and(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|o| format!("`{o}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => quoted.join(""),
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
    fn compares_numbers() {
        let facts = json!({"cpu": {"count": 4}, "memory": {"total_mb": "3942"}, "big": 18446744073709551615u64,
                           "neg": -9223372036854775808i64, "word": "many", "flag": true});
        let t = |y: &str| when(y).eval(&facts, &json!({}));
        assert!(t("{fact: cpu.count, gt: 2}"));
        assert!(!t("{fact: cpu.count, gt: 4}"));
        assert!(t("{fact: cpu.count, gte: 4}"));
        assert!(t("{fact: cpu.count, lt: 4.5}"));
        assert!(t("{fact: cpu.count, lte: 4}"));
        assert!(!t("{fact: cpu.count, lt: 4}"));
        assert!(t("{fact: memory.total_mb, gte: 2048}"), "a string that reads as a number counts");
        assert!(t("{fact: memory.total_mb, lt: 3942.5}"));
        assert!(t("{fact: big, gt: 18446744073709551614}"), "large integers compare exactly");
        assert!(t("{fact: neg, lt: 0}"));
        assert!(t("{fact: neg, lt: 18446744073709551615}"));
        assert!(!t("{fact: word, gt: 0}") && !t("{fact: word, lte: 0}"), "not a number: false either way");
        assert!(!t("{fact: flag, gt: 0}"));
        assert!(!t("{fact: missing, lt: 1}"));
        assert!(t("{not: {fact: word, gt: 0}}"));
    }

    #[test]
    fn compares_versions() {
        let deb = json!({"os": {"family": "debian"}, "openssl": "3.0.11-1~deb12u2", "kernel": "6.1.0", "n": 12});
        let rh = json!({"os": {"family": "redhat"}, "openssl": "1:3.0.7-27.el9", "kernel": "6.1.0"});
        let t = |facts: &Value, y: &str| when(y).eval(facts, &json!({}));
        assert!(t(&deb, "{fact: openssl, version_gte: '3.0'}"));
        assert!(t(&deb, "{fact: openssl, version_lt: 3.0.11-1}"), "~ sorts before the end");
        assert!(t(&deb, "{fact: openssl, version_gt: '3.0.9'}"), "1.10 > 1.9, not as text");
        assert!(!t(&deb, "{fact: openssl, version_gt: '3.0.11-1'}"));
        assert!(t(&deb, "{fact: kernel, version_eq: 6.1.0}"));
        assert!(t(&deb, "{fact: kernel, version_eq: '6.01.00'}"));
        assert!(t(&deb, "{fact: kernel, version_lte: '6.1.0'}"));
        assert!(t(&deb, "{fact: n, version_gte: 9}"), "numbers are versions as written");
        assert!(!t(&deb, "{fact: missing, version_gte: '1'}"));
        // The host's package manager decides a release only one side has.
        assert!(t(&rh, "{fact: openssl, version_eq: '1:3.0.7'}"), "rpm: the release is not compared");
        assert!(!t(&rh, "{fact: openssl, version_eq: '1:3.0.7', scheme: debian}"));
        assert!(t(&rh, "{fact: openssl, version_gt: '3.9'}"), "the epoch wins");
        assert!(!t(&deb, "{fact: kernel, version_eq: '6.1.0-1'}"));
        assert!(t(&deb, "{fact: kernel, version_eq: '6.1.0-1', scheme: rpm}"));
        assert!(when("{fact: kernel, version_eq: '6.1', scheme: auto}").problems().is_empty());
    }

    #[test]
    fn version_values_must_be_strings() {
        let e = serde_yaml::from_str::<When>("{fact: k, version_gte: 1.10}").unwrap_err().to_string();
        assert!(e.contains("quoted strings") && e.contains("1.1"), "{e}");
        assert!(serde_yaml::from_str::<When>("{fact: k, version_gte: [1]}").is_err());
        assert!(serde_yaml::from_str::<When>("{fact: k, version_gte: '1', scheme: dpkg}").is_err());
        assert!(serde_yaml::from_str::<When>("{fact: k, gt: '1'}").is_err(), "numeric bounds are numbers");
    }

    #[test]
    fn set_and_exists() {
        let params =
            json!({"proxy": null, "port": 0, "name": "", "users": {"bob": {"shell": "/bin/zsh", "editor": null}}});
        let t = |y: &str| when(y).eval(&json!({}), &params);
        assert!(t("{param: proxy, set: false}"), "null is not set");
        assert!(t("{param: port, set: true}") && t("{param: name, set: true}"), "0 and \"\" are set");
        assert!(t("{param: proxy, exists: false}"), "exists is unchanged: null is absent");
        assert!(t("{param: users.bob.editor, set: false}"));
        assert!(t("{param: users.bob.shell, set: true}"));
        assert!(t("{param: users.alice, set: false}"));
    }

    #[test]
    fn parameters_by_path() {
        let params =
            json!({"env": "prod", "users": {"bob": {"editor": "vim", "uid": "1001"}}, "admins": ["ann", "bo"]});
        let t = |y: &str| when(y).eval(&json!({}), &params);
        assert!(t("{param: users.bob.editor, equals: vim}"));
        assert!(t("{param: users.bob.uid, gte: 1000}"));
        assert!(t("{param: admins.1, equals: bo}"));
        assert!(t("{param: env, equals: prod}"), "a name with no dot still works");
        assert!(!t("{param: users.carol.editor, equals: vim}"));
        let c = when("{all: [{param: users.bob.editor, equals: vim}, {fact: os.family, equals: debian}]}");
        assert_eq!(c.subjects(), vec![(false, "users.bob.editor"), (true, "os.family")]);
    }

    #[test]
    fn operator_messages() {
        let p = when("{fact: a, gt: 1, lt: 5}").problems();
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("`gt` and `lt`") && p[0].contains("all:"), "{p:?}");
        let p = when("{fact: a}").problems();
        assert!(p[0].contains("`set`") && p[0].contains("`version_eq`") && p[0].contains("`gte`"), "{p:?}");
        let p = when("{all: [], version_gte: '1'}").problems();
        assert!(p.iter().any(|m| m.contains("`version_gte` goes with")), "{p:?}");
        let p = when("{fact: a, equals: 1, scheme: rpm}").problems();
        assert!(p.iter().any(|m| m.contains("`scheme` goes with a version operator")), "{p:?}");
        let p = when("{fact: a, version_eq: ' '}").problems();
        assert!(p.iter().any(|m| m.contains("empty")), "{p:?}");
        assert!(when("{fact: a, set: true}").problems().is_empty());
        assert!(!when("{fact: a, set: true, exists: true}").problems().is_empty());
        assert!(when("{fact: a, version_lt: '2', scheme: rpm}").problems().is_empty());
    }

    #[test]
    fn keys_are_every_field() {
        let e = serde_yaml::from_str::<When>("{nope: 1}").unwrap_err().to_string();
        let listed: Vec<&str> = e.split('`').skip(3).step_by(2).collect();
        assert_eq!(listed, When::KEYS, "{e}");
        for op in OPERATORS {
            assert!(When::KEYS.contains(op), "{op}");
        }
    }

    #[test]
    fn round_trips_through_serde() {
        let c =
            when("{any: [{fact: a, version_gte: '1.10', scheme: rpm}, {param: b.c, lte: 2.5}, {param: d, set: true}]}");
        let again: When = serde_json::from_value(serde_json::to_value(&c).unwrap()).unwrap();
        assert_eq!(c, again);
    }

    #[test]
    fn reports_malformed_conditions() {
        assert!(!when("{fact: os.family}").problems().is_empty());
        assert!(!when("{fact: a, param: b, equals: 1}").problems().is_empty());
        assert!(!when("{fact: a, matches: '('}").problems().is_empty());
        assert!(when("{all: [{fact: a, equals: 1}]}").problems().is_empty());
    }
}
