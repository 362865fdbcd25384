//! Command documents: what `tend run` sends to hosts. A document has typed
//! parameters (the recipe parameter declarations) and steps. Parameter
//! values reach scripts only as environment variables (`TEND_PARAM_NAME`),
//! never by substitution into the script text.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::diag::{Diagnostic, Diagnostics};
use crate::locate::{Locations, Seg, YamlPath};
use crate::params::{Overrides, ParamSpec};
use crate::suggest::did_you_mean;

/// Default step timeout (seconds).
pub const DEFAULT_TIMEOUT: u64 = 3600;
/// Longest step timeout accepted (seconds): two days.
pub const MAX_TIMEOUT: u64 = 172_800;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum DocumentKind {
    Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// `run`, with `/bin/sh -c`.
    RunShellScript,
    /// `recipe` (a recipe on the server) converged through the engine.
    ApplyRecipe,
    /// The node's own assigned recipe set, now, as its next run would do it
    /// (fetch, converge, report); with `dryRun`, checked only.
    Converge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    #[default]
    Abort,
    Continue,
}

/// Run the step only where a fact has a value.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Precondition {
    /// A dotted fact path (`os.family`).
    pub fact: String,
    pub equals: Value,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Step {
    pub name: String,
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precondition: Option<Precondition>,
    /// Seconds; the whole process group is killed when it runs out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// Shell text (runShellScript). Parameters are in `$TEND_PARAM_NAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// A recipe name, or `{{params.NAME}}` (applyRecipe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipe: Option<String>,
    /// The recipe's parameters (applyRecipe); a value `{{params.NAME}}` is
    /// the document parameter's value.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub params: serde_json::Map<String, Value>,
    /// converge and applyRecipe: `true`, `false` or `{{params.NAME}}` (a boolean parameter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<Value>,
    /// converge, dry-run only: `RECIPE@VERSION` (or `{{params.NAME}}`), the
    /// version of one assigned recipe to check instead of the assigned one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace: Option<String>,
    /// A local user to run as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub on_failure: OnFailure,
}

impl Step {
    pub fn timeout_secs(&self) -> u64 {
        self.timeout.unwrap_or(DEFAULT_TIMEOUT)
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    pub name: String,
    pub kind: DocumentKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub parameters: IndexMap<String, ParamSpec>,
    pub steps: Vec<Step>,
}

/// `{{params.NAME}}`, the whole string → NAME.
pub fn param_ref(s: &str) -> Option<&str> {
    let inner = s.trim().strip_prefix("{{")?.strip_suffix("}}")?.trim();
    inner.strip_prefix("params.").filter(|n| !n.is_empty() && n.chars().all(|c| c.is_alphanumeric() || c == '_'))
}

/// The environment variable a parameter reaches scripts as.
pub fn env_name(param: &str) -> String {
    let mut s = String::from("TEND_PARAM_");
    s.extend(param.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }));
    s
}

/// A value as an environment variable's text: strings as they are, lists
/// one item per line, everything else as JSON.
pub fn env_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(env_value).collect::<Vec<_>>().join("\n"),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

impl Document {
    /// Parses and checks a document: every problem, located in `file`.
    pub fn parse(file: &str, text: &str) -> Result<Document, Diagnostics> {
        if let Err(e) = crate::yaml::check(text, &crate::yaml::YamlLimits::DOCUMENT) {
            return Err(Diagnostics(vec![Diagnostic::new(file, e.message.clone()).at(e.pos())]));
        }
        let locs = Locations::of(text);
        let de = serde_yaml::Deserializer::from_str(text);
        let doc: Document = match serde_path_to_error::deserialize(de) {
            Ok(d) => d,
            Err(e) => {
                let path = to_yaml_path(e.path());
                let inner = e.into_inner();
                let at = inner.location().map(|l| (l.line(), l.column())).unwrap_or_else(|| locs.value(&path));
                let msg = inner.to_string();
                // serde_yaml appends " at line L column C"; the location is ours.
                let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
                let field = path.to_string();
                let msg = if field.is_empty() || msg.starts_with(&field) { msg } else { format!("{field}: {msg}") };
                return Err(Diagnostics(vec![Diagnostic::new(file, msg).at(at)]));
            }
        };
        let mut d = Diagnostics::default();
        doc.check(file, &locs, &mut d);
        d.sorted().into_result().map(|()| doc)
    }

    fn check(&self, file: &str, locs: &Locations, d: &mut Diagnostics) {
        let root = YamlPath::root();
        let mut diag = |path: &YamlPath, msg: String, hint: Option<String>| {
            d.push(Diagnostic::new(file, msg).at(locs.value(path)).hint(hint));
        };
        if !valid_name(&self.name) {
            diag(
                &root.key("name"),
                format!("document name {:?} must be letters, digits, `-`, `_` or `.`", self.name),
                None,
            );
        }
        for (name, spec) in &self.parameters {
            let p = root.key("parameters").key(name.clone());
            if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || name.is_empty() {
                diag(&p, format!("parameter name {name:?} must be letters, digits or `_`"), None);
            }
            for (path, e) in spec.problems() {
                diag(&crate::data::value_path(&p, &path), format!("parameter `{name}`: {e}"), None);
            }
        }
        if self.steps.is_empty() {
            diag(&root.key("steps"), "a document needs at least one step".into(), None);
        }
        let mut seen = BTreeMap::new();
        for (i, step) in self.steps.iter().enumerate() {
            let p = root.key("steps").index(i);
            if let Some(first) = seen.insert(step.name.clone(), i) {
                diag(&p.key("name"), format!("step name `{}` is already used by step {}", step.name, first + 1), None);
            }
            if step.name.is_empty() {
                diag(&p.key("name"), "a step needs a name".into(), None);
            }
            if let Some(t) = step.timeout
                && !(1..=MAX_TIMEOUT).contains(&t)
            {
                diag(&p.key("timeout"), format!("timeout {t} is outside 1..={MAX_TIMEOUT} seconds"), None);
            }
            let refs = |s: &str| param_ref(s).map(str::to_string);
            let mut used: Vec<(YamlPath, String)> = Vec::new();
            if step.action != Action::Converge {
                let dry_run = step.dry_run.is_some() && step.action != Action::ApplyRecipe;
                for (key, set) in [("dryRun", dry_run), ("replace", step.replace.is_some())] {
                    if set {
                        diag(&p.key(key), format!("step `{}`: `{key}` belongs to converge steps", step.name), None);
                    }
                }
            }
            match step.action {
                Action::RunShellScript => {
                    if step.run.as_deref().is_none_or(|r| r.trim().is_empty()) {
                        diag(&p.key("action"), format!("step `{}`: runShellScript needs `run`", step.name), None);
                    }
                    if step.recipe.is_some() || !step.params.is_empty() {
                        diag(
                            &p.key(if step.recipe.is_some() { "recipe" } else { "params" }),
                            format!("step `{}`: `recipe` and `params` belong to applyRecipe steps", step.name),
                            None,
                        );
                    }
                }
                Action::Converge => {
                    for (key, set) in [
                        ("run", step.run.is_some()),
                        ("recipe", step.recipe.is_some()),
                        ("params", !step.params.is_empty()),
                        ("runAs", step.run_as.is_some()),
                    ] {
                        if set {
                            diag(&p.key(key), format!("step `{}`: a converge step takes no `{key}`", step.name), None);
                        }
                    }
                    match &step.dry_run {
                        None | Some(Value::Bool(_)) => {}
                        Some(Value::String(r)) if refs(r).is_some() => {
                            used.push((p.key("dryRun"), refs(r).unwrap_or_default()));
                        }
                        Some(_) => diag(
                            &p.key("dryRun"),
                            format!("step `{}`: dryRun is true, false or {{{{params.NAME}}}}", step.name),
                            None,
                        ),
                    }
                    if let Some(n) = step.replace.as_deref().and_then(refs) {
                        used.push((p.key("replace"), n));
                    }
                }
                Action::ApplyRecipe => {
                    match step.recipe.as_deref() {
                        None => {
                            diag(&p.key("action"), format!("step `{}`: applyRecipe needs `recipe`", step.name), None)
                        }
                        Some(r) => {
                            if let Some(n) = refs(r) {
                                used.push((p.key("recipe"), n));
                            }
                        }
                    }
                    for (k, v) in &step.params {
                        if let Some(n) = v.as_str().and_then(refs) {
                            used.push((p.key("params").key(k.clone()), n));
                        }
                    }
                    if let Some(n) = step.dry_run.as_ref().and_then(|v| v.as_str()).and_then(refs) {
                        used.push((p.key("dryRun"), n));
                    }
                    if step.run.is_some() {
                        diag(
                            &p.key("run"),
                            format!("step `{}`: `run` belongs to runShellScript steps", step.name),
                            None,
                        );
                    }
                }
            }
            for (path, name) in used {
                if !self.parameters.contains_key(&name) {
                    let hint = did_you_mean(&name, self.parameters.keys().map(String::as_str));
                    diag(&path, format!("`{{{{params.{name}}}}}` names no parameter of this document"), hint);
                }
            }
            for k in step.env.keys() {
                if k.is_empty() || k.contains('=') || k.starts_with("TEND_PARAM_") {
                    diag(&p.key("env").key(k.clone()), format!("environment variable name {k:?} is not allowed"), None);
                }
            }
        }
    }

    /// Checks parameter values against the declarations: the resolved
    /// values, or every problem as one message per line.
    pub fn resolve_params(&self, overrides: &Overrides) -> Result<serde_json::Map<String, Value>, Vec<String>> {
        let (values, problems) = crate::params::resolve(&self.parameters, overrides);
        if problems.is_empty() {
            Ok(values)
        } else {
            Err(problems
                .into_iter()
                .map(|p| match p.hint {
                    Some(h) => format!("{} ({h})", p.message),
                    None => p.message,
                })
                .collect())
        }
    }

    /// The values of the parameters declared sensitive.
    pub fn sensitive_values(&self, values: &serde_json::Map<String, Value>) -> Vec<String> {
        self.parameters
            .iter()
            .filter(|(_, s)| s.sensitive)
            .filter_map(|(n, _)| values.get(n).map(env_value))
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// The values as they may be shown (audit, listings): sensitive ones redacted.
    pub fn shown_params(&self, values: &serde_json::Map<String, Value>) -> serde_json::Map<String, Value> {
        values
            .iter()
            .map(|(k, v)| {
                let sensitive = self.parameters.get(k).is_some_and(|s| s.sensitive);
                (k.clone(), if sensitive { Value::from("(sensitive)") } else { v.clone() })
            })
            .collect()
    }
}

fn valid_name(n: &str) -> bool {
    crate::names::object_name("document", n).is_ok()
}

fn to_yaml_path(p: &serde_path_to_error::Path) -> YamlPath {
    use serde_path_to_error::Segment;
    YamlPath(
        p.iter()
            .filter_map(|s| match s {
                Segment::Seq { index } => Some(Seg::Index(*index)),
                Segment::Map { key } => Some(Seg::Key(key.clone())),
                Segment::Enum { variant } => Some(Seg::Key(variant.clone())),
                Segment::Unknown => None,
            })
            .collect(),
    )
}

/// `RunShellScript`: parameter `commands`, run as shell text.
pub const RUN_SHELL_SCRIPT: &str = r#"name: RunShellScript
kind: Command
description: Runs shell text. The text is the command; it is not a parameter substituted into a script.
parameters:
  commands: { type: string, description: "Shell text, run with /bin/sh -c" }
  workingDirectory: { type: string, default: "/" }
steps:
  - name: run
    action: runShellScript
    run: |
      cd "$TEND_PARAM_WORKINGDIRECTORY" && eval "$TEND_PARAM_COMMANDS"
"#;

/// `ApplyRecipe`: parameter `recipe` (a recipe on the server).
pub const APPLY_RECIPE: &str = r#"name: ApplyRecipe
kind: Command
description: Converges a recipe stored on the server, now; with dryRun, only checks it (an audit).
parameters:
  recipe: { type: string, pattern: "^[A-Za-z0-9_.@-]+$" }
  dryRun: { type: boolean, default: false }
steps:
  - name: apply
    action: applyRecipe
    recipe: "{{params.recipe}}"
    dryRun: "{{params.dryRun}}"
"#;

/// `Converge`: the node's assigned recipes, now (what rollouts wake nodes
/// with); `dryRun` checks only, and `replace` previews another version of
/// one assigned recipe (what plans ask).
pub const CONVERGE: &str = r#"name: Converge
kind: Command
description: Runs the node's assigned recipes now, as its next run would (fetch, converge, report). With dryRun it only checks and changes nothing; replace (RECIPE@VERSION, with dryRun only) checks another version of one assigned recipe.
parameters:
  dryRun: { type: boolean, default: false }
  replace: { type: string, default: "", pattern: "^([A-Za-z0-9_.-]+@[A-Za-z0-9_.-]+)?$" }
steps:
  - name: converge
    action: converge
    dryRun: "{{params.dryRun}}"
    replace: "{{params.replace}}"
"#;

/// The text of a built-in document.
pub fn builtin_text(name: &str) -> Option<&'static str> {
    match name {
        "RunShellScript" => Some(RUN_SHELL_SCRIPT),
        "ApplyRecipe" => Some(APPLY_RECIPE),
        "Converge" => Some(CONVERGE),
        _ => None,
    }
}

/// The built-in documents, by name.
pub fn builtin(name: &str) -> Option<Document> {
    let text = builtin_text(name)?;
    Document::parse(name, text).ok()
}

pub const BUILTINS: &[&str] = &["RunShellScript", "ApplyRecipe", "Converge"];

#[cfg(test)]
mod tests {
    use super::*;

    const RESTART: &str = "name: RestartApp\nkind: Command\nparameters:\n  delay: { type: integer, default: 5, min: 0, max: 300 }\n  service: { type: string, allowed: [nginx, app] }\nsteps:\n  - name: restart\n    action: runShellScript\n    precondition: { fact: os.family, equals: debian }\n    timeout: 600\n    run: |\n      sleep \"$TEND_PARAM_DELAY\"\n      systemctl restart \"$TEND_PARAM_SERVICE\"\n";

    #[test]
    fn the_issue_example_parses_and_checks_values() {
        let d = Document::parse("r.yaml", RESTART).unwrap();
        assert_eq!(d.steps[0].timeout_secs(), 600);
        let ok = d.resolve_params(&Overrides { raw: vec![("service".into(), "nginx".into())], ..Default::default() });
        assert_eq!(ok.unwrap()["delay"], 5);
        let bad = d
            .resolve_params(&Overrides {
                raw: vec![("service".into(), "x; rm -rf /".into()), ("delay".into(), "900".into())],
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(bad.len(), 2, "{bad:?}");
    }

    #[test]
    fn every_problem_is_located() {
        let text = "name: x\nkind: Command\nsteps:\n  - name: a\n    action: runShellScript\n  - name: a\n    action: applyRecipe\n    recipe: \"{{params.nope}}\"\n    timeout: 0\n";
        let e = Document::parse("d.yaml", text).unwrap_err();
        let s = e.to_string();
        assert!(s.contains("d.yaml:5:13") && s.contains("needs `run`"), "{s}");
        assert!(s.contains("d.yaml:6:11") && s.contains("already used"), "{s}");
        assert!(s.contains("d.yaml:8:13") && s.contains("names no parameter"), "{s}");
        assert!(s.contains("d.yaml:9:14") && s.contains("outside"), "{s}");
        let e = Document::parse("d.yaml", "name: x\nkind: Command\nsteps:\n  - name: a\n    action: runShell\n")
            .unwrap_err();
        assert!(e.to_string().contains("d.yaml:5:13") && e.to_string().contains("steps[0].action"), "{e}");
    }

    #[test]
    fn builtins_parse_and_params_become_env() {
        for b in BUILTINS {
            assert!(builtin(b).is_some(), "{b}");
        }
        assert_eq!(env_name("service-name"), "TEND_PARAM_SERVICE_NAME");
        assert_eq!(env_value(&serde_json::json!(["a", 1])), "a\n1");
        assert_eq!(param_ref("{{ params.recipe }}"), Some("recipe"));
        assert_eq!(param_ref("x{{params.recipe}}"), None);
    }
}
