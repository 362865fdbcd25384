//! Automation documents (`kind: Automation`): runbooks the server executes
//! step by step. Steps run commands, apply recipes, sleep, wait for
//! approvals or a resume, and branch on parameters and earlier outputs.
//! The whole document is checked when it is pushed: unknown step
//! references, unreachable steps and loops without an exit are errors.

use std::collections::{BTreeMap, BTreeSet};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::diag::{Diagnostic, Diagnostics};
use crate::locate::{Locations, YamlPath};
use crate::params::ParamSpec;
use crate::suggest::did_you_mean;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    RunCommand,
    ApplyRecipe,
    Sleep,
    Approve,
    Branch,
    Pause,
}

/// A condition of a branch choice.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Condition {
    /// `{{params.NAME}}` or `{{steps.STEP.outputs.KEY}}` (or a literal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variable: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_equals: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "in")]
    pub in_: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numeric_equals: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numeric_greater: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numeric_greater_or_equals: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numeric_less: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numeric_less_or_equals: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub and: Option<Vec<Condition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub or: Option<Vec<Condition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not: Option<Box<Condition>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Choice {
    pub next_step: String,
    pub condition: Condition,
}

/// Where an output comes from: the first invocation's stdout, read as JSON
/// (`json: a.b`) or matched by a regular expression (its first group).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Step {
    pub name: String,
    pub action: Action,
    /// The action's inputs (see docs/automation.md); strings may hold
    /// `{{params.NAME}}` and `{{steps.STEP.outputs.KEY}}`.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub inputs: serde_json::Map<String, Value>,
    /// Seconds the step may take (approve, pause and runCommand included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    #[serde(default = "one")]
    pub max_attempts: u32,
    /// `abort` (default), `continue`, or `step:NAME`.
    #[serde(default = "abort")]
    pub on_failure: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_step: Option<String>,
    #[serde(default)]
    pub is_end: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<Output>,
}

fn one() -> u32 {
    1
}
fn abort() -> String {
    "abort".into()
}

/// What a failed step leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnFailure {
    Abort,
    Continue,
    Step(String),
}

impl Step {
    pub fn on_failure(&self) -> OnFailure {
        match self.on_failure.as_str() {
            "continue" => OnFailure::Continue,
            s => match s.strip_prefix("step:") {
                Some(n) => OnFailure::Step(n.to_string()),
                None => OnFailure::Abort,
            },
        }
    }

    /// The branch's choices and default.
    pub fn branch(&self) -> (Vec<Choice>, Option<String>) {
        let choices = self
            .inputs
            .get("choices")
            .and_then(|c| serde_json::from_value::<Vec<Choice>>(c.clone()).ok())
            .unwrap_or_default();
        let default = self.inputs.get("default").and_then(|d| d.as_str()).map(str::to_string);
        (choices, default)
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Automation {
    pub name: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub parameters: IndexMap<String, ParamSpec>,
    pub steps: Vec<Step>,
}

/// True if a document's text says `kind: Automation`, even when it does
/// not parse (so that its errors come from the automation checks).
pub fn is_automation(text: &str) -> bool {
    match crate::yaml::parse::<Value>(text, &crate::yaml::YamlLimits::DOCUMENT) {
        Ok(v) => v.get("kind").and_then(|k| k.as_str()) == Some("Automation"),
        Err(_) => text.lines().any(|l| l.trim() == "kind: Automation"),
    }
}

/// The inputs each action takes: (name, required).
fn inputs_of(a: Action) -> &'static [(&'static str, bool)] {
    match a {
        Action::RunCommand => &[
            ("document", true),
            ("params", false),
            ("targets", true),
            ("maxConcurrency", false),
            ("maxErrors", false),
            ("timeout", false),
        ],
        Action::ApplyRecipe => &[("recipe", true), ("targets", true), ("maxConcurrency", false), ("maxErrors", false)],
        Action::Sleep => &[("duration", false), ("until", false)],
        Action::Approve => &[("approvers", true), ("minRequired", false), ("message", false)],
        Action::Branch => &[("choices", true), ("default", false)],
        Action::Pause => &[("message", false)],
    }
}

/// Every `{{…}}` reference in a value: `params.X` or `steps.S.outputs.K`.
pub fn references(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            let mut rest = s.as_str();
            while let Some(start) = rest.find("{{") {
                let Some(end) = rest[start..].find("}}") else { break };
                out.push(rest[start + 2..start + end].trim().to_string());
                rest = &rest[start + end + 2..];
            }
        }
        Value::Array(a) => a.iter().for_each(|x| references(x, out)),
        Value::Object(m) => m.values().for_each(|x| references(x, out)),
        _ => {}
    }
}

impl Automation {
    /// Parses and checks a document; every problem, located in `file`.
    pub fn parse(file: &str, text: &str) -> Result<Automation, Diagnostics> {
        if let Err(e) = crate::yaml::check(text, &crate::yaml::YamlLimits::DOCUMENT) {
            return Err(Diagnostics(vec![Diagnostic::new(file, e.message.clone()).at(e.pos())]));
        }
        let locs = Locations::of(text);
        let doc: Automation = match serde_yaml::from_str(text) {
            Ok(d) => d,
            Err(e) => {
                let at = e.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
                let msg = e.to_string();
                let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
                return Err(Diagnostics(vec![Diagnostic::new(file, msg).at(at)]));
            }
        };
        let mut d = Diagnostics::default();
        doc.check(file, &locs, &mut d);
        d.sorted().into_result().map(|()| doc)
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.name == name)
    }

    /// Where a step goes on success (a branch: all its choices and default).
    pub fn successors(&self, i: usize) -> Vec<usize> {
        let s = &self.steps[i];
        if s.action == Action::Branch {
            let (choices, default) = s.branch();
            return choices.iter().map(|c| c.next_step.clone()).chain(default).filter_map(|n| self.index(&n)).collect();
        }
        if s.is_end {
            return Vec::new();
        }
        match &s.next_step {
            Some(n) => self.index(n).into_iter().collect(),
            None => (i + 1 < self.steps.len()).then_some(i + 1).into_iter().collect(),
        }
    }

    /// True if the execution ends after this step succeeds (no successor).
    fn ends(&self, i: usize) -> bool {
        let s = &self.steps[i];
        if s.action == Action::Branch {
            // A branch without a default ends when no choice matches.
            return s.branch().1.is_none();
        }
        s.is_end || (s.next_step.is_none() && i + 1 == self.steps.len())
    }

    fn failure_successor(&self, i: usize) -> Option<usize> {
        match self.steps[i].on_failure() {
            OnFailure::Abort => None,
            OnFailure::Continue => self.successors(i).into_iter().next().or(Some(usize::MAX)),
            OnFailure::Step(n) => self.index(&n),
        }
        .filter(|&j| j != usize::MAX)
    }

    fn check(&self, file: &str, locs: &Locations, d: &mut Diagnostics) {
        let root = YamlPath::root();
        let mut diag = |path: &YamlPath, msg: String, hint: Option<String>| {
            d.push(Diagnostic::new(file, msg).at(locs.value(path)).hint(hint));
        };
        if self.kind != "Automation" {
            diag(&root.key("kind"), format!("kind {:?}: this is an Automation document", self.kind), None);
        }
        if self.steps.is_empty() {
            diag(&root.key("steps"), "an automation needs at least one step".into(), None);
            return;
        }
        let names: Vec<&str> = self.steps.iter().map(|s| s.name.as_str()).collect();
        let mut seen = BTreeSet::new();
        // Declared outputs, and the built-in ones: a command step's
        // `commandId` and `status`, a branch's `nextStep`.
        let outputs: BTreeMap<&str, BTreeSet<&str>> = self
            .steps
            .iter()
            .map(|s| {
                let builtin: &[&str] = match s.action {
                    Action::RunCommand | Action::ApplyRecipe => &["commandId", "status"],
                    Action::Branch => &["nextStep"],
                    _ => &[],
                };
                (s.name.as_str(), s.outputs.iter().map(|o| o.name.as_str()).chain(builtin.iter().copied()).collect())
            })
            .collect();
        let step_ref = |n: &str| (!names.contains(&n)).then(|| did_you_mean(n, names.iter().copied()));
        for (i, s) in self.steps.iter().enumerate() {
            let p = root.key("steps").index(i);
            if !seen.insert(s.name.as_str()) {
                diag(&p.key("name"), format!("step name `{}` is used twice", s.name), None);
            }
            if s.is_end && s.next_step.is_some() {
                diag(&p.key("isEnd"), format!("step `{}`: isEnd and nextStep contradict each other", s.name), None);
            }
            if s.max_attempts == 0 {
                diag(&p.key("maxAttempts"), "maxAttempts must be at least 1".into(), None);
            }
            for (key, target) in [("nextStep", s.next_step.as_deref())] {
                if let Some(t) = target
                    && let Some(hint) = step_ref(t)
                {
                    diag(&p.key(key), format!("step `{}`: {key} names no step `{t}`", s.name), hint);
                }
            }
            match s.on_failure.as_str() {
                "abort" | "continue" => {}
                other => match other.strip_prefix("step:") {
                    Some(t) => {
                        if let Some(hint) = step_ref(t) {
                            diag(
                                &p.key("onFailure"),
                                format!("step `{}`: onFailure names no step `{t}`", s.name),
                                hint,
                            );
                        }
                    }
                    None => diag(
                        &p.key("onFailure"),
                        format!("step `{}`: onFailure is abort, continue or step:NAME, not {other:?}", s.name),
                        None,
                    ),
                },
            }
            let allowed = inputs_of(s.action);
            for k in s.inputs.keys() {
                if !allowed.iter().any(|(n, _)| n == k) {
                    let hint = did_you_mean(k, allowed.iter().map(|(n, _)| *n));
                    diag(&p.key("inputs").key(k.clone()), format!("step `{}`: unknown input `{k}`", s.name), hint);
                }
            }
            for (k, required) in allowed {
                if *required && !s.inputs.contains_key(*k) {
                    diag(&p.key("inputs"), format!("step `{}`: {:?} needs input `{k}`", s.name, s.action), None);
                }
            }
            if s.action == Action::Sleep && s.inputs.contains_key("duration") == s.inputs.contains_key("until") {
                diag(&p.key("inputs"), format!("step `{}`: sleep needs `duration` or `until`", s.name), None);
            }
            if let Some(Value::String(dur)) = s.inputs.get("duration")
                && !dur.contains("{{")
                && humantime::parse_duration(dur).is_err()
            {
                diag(
                    &p.key("inputs").key("duration"),
                    format!("step `{}`: duration {dur:?} (10m, 1h30m)", s.name),
                    None,
                );
            }
            if s.action == Action::Branch {
                match s.inputs.get("choices").map(|c| serde_json::from_value::<Vec<Choice>>(c.clone())) {
                    Some(Ok(choices)) => {
                        for (j, c) in choices.iter().enumerate() {
                            if let Some(hint) = step_ref(&c.next_step) {
                                let at = p.key("inputs").key("choices").index(j).key("nextStep");
                                diag(&at, format!("step `{}`: choice names no step `{}`", s.name, c.next_step), hint);
                            }
                        }
                    }
                    Some(Err(e)) => {
                        diag(&p.key("inputs").key("choices"), format!("step `{}`: choices: {e}", s.name), None)
                    }
                    None => {}
                }
                if let Some(t) = s.inputs.get("default").and_then(|v| v.as_str())
                    && let Some(hint) = step_ref(t)
                {
                    diag(
                        &p.key("inputs").key("default"),
                        format!("step `{}`: default names no step `{t}`", s.name),
                        hint,
                    );
                }
            }
            for o in &s.outputs {
                if let Some(why) = o.problem() {
                    diag(&p.key("outputs"), why, None);
                }
            }
            // References: declared parameters, and outputs of declared steps.
            let mut refs = Vec::new();
            references(&Value::Object(s.inputs.clone()), &mut refs);
            for r in refs {
                let parts: Vec<&str> = r.split('.').collect();
                let problem = match parts.as_slice() {
                    ["params", n] if self.parameters.contains_key(*n) => None,
                    ["params", n] => Some(format!("`{{{{{r}}}}}`: no parameter `{n}`")),
                    ["steps", st, "outputs", k] => match outputs.get(st) {
                        None => Some(format!("`{{{{{r}}}}}`: no step `{st}`")),
                        Some(ks) if !ks.contains(k) => Some(format!("`{{{{{r}}}}}`: step `{st}` has no output `{k}`")),
                        Some(_) => None,
                    },
                    _ => Some(format!("`{{{{{r}}}}}`: use params.NAME or steps.STEP.outputs.KEY")),
                };
                if let Some(m) = problem {
                    diag(&p.key("inputs"), format!("step `{}`: {m}", s.name), None);
                }
            }
        }
        // Reachability from the first step (success and failure paths).
        let n = self.steps.len();
        let edges =
            |i: usize| -> Vec<usize> { self.successors(i).into_iter().chain(self.failure_successor(i)).collect() };
        let mut reach = vec![false; n];
        let mut stack = vec![0];
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut reach[i], true) {
                continue;
            }
            stack.extend(edges(i));
        }
        for (i, s) in self.steps.iter().enumerate() {
            if !reach[i] {
                diag(&root.key("steps").index(i).key("name"), format!("step `{}` can never be reached", s.name), None);
            }
        }
        // Loops without an exit: reachable steps from which no end can be reached.
        let mut can_end: Vec<bool> = (0..n).map(|i| self.ends(i)).collect();
        loop {
            let mut changed = false;
            for i in 0..n {
                if !can_end[i] && edges(i).iter().any(|&j| can_end[j]) {
                    can_end[i] = true;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        for (i, s) in self.steps.iter().enumerate() {
            if reach[i] && !can_end[i] {
                diag(
                    &root.key("steps").index(i).key("name"),
                    format!("step `{}` is in a loop without an exit: no path from it ends the execution", s.name),
                    None,
                );
            }
        }
    }
}

/// Evaluates a branch condition; `resolve` turns a `{{…}}` string into its value.
pub fn evaluate(c: &Condition, resolve: &dyn Fn(&str) -> Value) -> bool {
    if let Some(all) = &c.and {
        return all.iter().all(|x| evaluate(x, resolve));
    }
    if let Some(any) = &c.or {
        return any.iter().any(|x| evaluate(x, resolve));
    }
    if let Some(n) = &c.not {
        return !evaluate(n, resolve);
    }
    let v = c.variable.as_deref().map(resolve).unwrap_or(Value::Null);
    // A compared value may itself be a reference (`equals: "{{params.x}}"`).
    let value = |x: &Value| match x.as_str() {
        Some(t) if t.contains("{{") => resolve(t),
        _ => x.clone(),
    };
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let num = || text(&v).trim().parse::<f64>().ok();
    let same = |a: &Value, b: &Value| {
        let b = value(b);
        *a == b || text(a) == text(&b)
    };
    if let Some(e) = &c.equals {
        return same(&v, e);
    }
    if let Some(e) = &c.not_equals {
        return !same(&v, e);
    }
    if let Some(list) = &c.in_ {
        return list.iter().any(|e| same(&v, e));
    }
    let cmp = |want: Option<f64>, f: fn(f64, f64) -> bool| want.map(|w| num().is_some_and(|x| f(x, w)));
    #[allow(clippy::float_cmp)]
    let checks = [
        cmp(c.numeric_equals, |x, w| x == w),
        cmp(c.numeric_greater, |x, w| x > w),
        cmp(c.numeric_greater_or_equals, |x, w| x >= w),
        cmp(c.numeric_less, |x, w| x < w),
        cmp(c.numeric_less_or_equals, |x, w| x <= w),
    ];
    checks.into_iter().flatten().next().unwrap_or(false)
}

/// Reads an output from a command's stdout.
impl Output {
    /// What is wrong with this output's declaration, if anything.
    pub fn problem(&self) -> Option<String> {
        if self.json.is_some() == self.regex.is_some() {
            return Some(format!("output `{}`: give `json` or `regex`", self.name));
        }
        match &self.regex {
            Some(r) if regex_lite::Regex::new(r).is_err() => {
                Some(format!("output `{}`: invalid regex {r:?}", self.name))
            }
            _ => None,
        }
    }
}

pub fn extract(o: &Output, stdout: &str) -> Option<Value> {
    if let Some(path) = &o.json {
        let v: Value = serde_json::from_str(stdout.trim()).ok()?;
        return path.split('.').filter(|k| !k.is_empty()).try_fold(v, |v, k| v.get(k).cloned());
    }
    let re = regex_lite::Regex::new(o.regex.as_deref()?).ok()?;
    let caps = re.captures(stdout)?;
    caps.get(1).or_else(|| caps.get(0)).map(|m| Value::from(m.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUNBOOK: &str = r#"name: Rolling
kind: Automation
parameters:
  service: { type: string, default: app }
steps:
  - name: check
    action: runCommand
    inputs: { document: Health, targets: ["tag:role=web"], params: { service: "{{params.service}}" } }
    outputs:
      - { name: healthy, json: healthy }
      - { name: count, regex: "count=(\\d+)" }
  - name: decide
    action: branch
    inputs:
      choices:
        - nextStep: restart
          condition: { and: [ { variable: "{{steps.check.outputs.healthy}}", equals: true }, { variable: "{{steps.check.outputs.count}}", numericGreater: 2 } ] }
      default: stop
  - name: restart
    action: runCommand
    inputs: { document: RunShellScript, targets: ["tag:role=web"], params: { commands: "true" } }
    isEnd: true
  - name: stop
    action: sleep
    inputs: { duration: 1s }
"#;

    #[test]
    fn a_valid_runbook_and_its_conditions() {
        let a = Automation::parse("r.yaml", RUNBOOK).unwrap();
        let (choices, default) = a.steps[1].branch();
        assert_eq!(default.as_deref(), Some("stop"));
        let out = |v: &str| match v {
            "{{steps.check.outputs.healthy}}" => Value::Bool(true),
            "{{steps.check.outputs.count}}" => Value::from("3"),
            _ => Value::Null,
        };
        assert!(evaluate(&choices[0].condition, &out));
        let o = &a.steps[0].outputs;
        assert_eq!(extract(&o[0], "{\"healthy\": false}\n"), Some(Value::Bool(false)));
        assert_eq!(extract(&o[1], "x\ncount=12\n"), Some(Value::from("12")));
        assert_eq!(extract(&o[0], "not json"), None);
    }

    #[test]
    fn built_in_outputs_contradictions_and_referenced_comparisons() {
        let text = "name: B\nkind: Automation\nparameters:\n  want: { type: string, default: ok }\nsteps:\n  - name: run\n    action: runCommand\n    inputs: { document: X, targets: [n] }\n  - name: pick\n    action: branch\n    inputs:\n      choices: [ { nextStep: done, condition: { variable: \"{{steps.run.outputs.status}}\", equals: \"{{params.want}}\" } } ]\n      default: done\n  - name: done\n    action: pause\n    inputs: { message: \"{{steps.pick.outputs.nextStep}} {{steps.run.outputs.commandId}}\" }\n";
        let a = Automation::parse("b.yaml", text).unwrap();
        let (choices, _) = a.steps[1].branch();
        let resolve = |r: &str| match r {
            "{{steps.run.outputs.status}}" => Value::from("ok"),
            "{{params.want}}" => Value::from("ok"),
            _ => Value::Null,
        };
        assert!(evaluate(&choices[0].condition, &resolve), "equals resolves its own reference");
        let both = text.replace("  - name: pick\n", "    isEnd: true\n    nextStep: done\n  - name: pick\n");
        let e = Automation::parse("b.yaml", &both).unwrap_err().to_string();
        assert!(e.contains("isEnd and nextStep contradict"), "{e}");
        assert!(is_automation("name: x\nkind: Automation\nsteps: [ oops"));
    }

    #[test]
    fn bad_references_unreachable_steps_and_endless_loops_are_errors() {
        let text = "name: Bad\nkind: Automation\nsteps:\n  - name: a\n    action: sleep\n    inputs: { duration: 1s }\n    nextStep: c\n  - name: b\n    action: pause\n  - name: c\n    action: runCommand\n    inputs: { document: X, targets: [n], params: { v: \"{{steps.a.outputs.nope}}\" } }\n    onFailure: step:zz\n  - name: d\n    action: sleep\n    inputs: { duration: 1s }\n    nextStep: c\n";
        let e = Automation::parse("bad.yaml", text).unwrap_err().to_string();
        assert!(e.contains("step `b` can never be reached"), "{e}");
        assert!(e.contains("has no output `nope`"), "{e}");
        assert!(e.contains("onFailure names no step `zz`"), "{e}");
        let looped = "name: Loop\nkind: Automation\nsteps:\n  - name: a\n    action: sleep\n    inputs: { duration: 1s }\n    nextStep: b\n  - name: b\n    action: sleep\n    inputs: { duration: 1s }\n    nextStep: a\n";
        let e = Automation::parse("loop.yaml", looped).unwrap_err().to_string();
        assert!(e.contains("loop without an exit"), "{e}");
        // A loop with a branch out of it is fine.
        let ok = "name: Retry\nkind: Automation\nsteps:\n  - name: a\n    action: sleep\n    inputs: { duration: 1s }\n  - name: b\n    action: branch\n    inputs:\n      choices: [ { nextStep: a, condition: { variable: x, equals: y } } ]\n      default: c\n  - name: c\n    action: pause\n";
        assert!(Automation::parse("ok.yaml", ok).is_ok());
    }
}

/// `POST /v1/automations`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ExecutionStart {
    /// `NAME` or `NAME@VERSION`.
    pub document: String,
    #[serde(default)]
    pub params: serde_json::Map<String, Value>,
    /// `--param k=v` as typed.
    #[serde(default)]
    pub raw_params: Vec<(String, String)>,
}

/// One step attempt in an execution's timeline.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct StepView {
    pub name: String,
    pub attempt: u32,
    pub status: String,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub outputs: serde_json::Map<String, Value>,
    pub error: Option<String>,
    pub command_id: Option<String>,
}

/// An execution as operators see it.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ExecutionView {
    pub id: String,
    pub document: String,
    /// InProgress, Waiting, Success, Failed, Cancelled, TimedOut.
    pub status: String,
    pub params: serde_json::Map<String, Value>,
    pub created_at: String,
    pub created_by: String,
    pub finished_at: Option<String>,
    pub error: Option<String>,
    pub current: Option<String>,
    /// What a waiting execution waits for.
    pub waiting: Option<String>,
    pub steps: Vec<StepView>,
}

/// `POST /v1/automations/{id}/approve|reject|resume|cancel`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Decision {
    #[serde(default)]
    pub comment: Option<String>,
}
