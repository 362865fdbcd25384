//! Turns loaded recipe files into a plan: parameters resolved, conditions
//! evaluated, strings rendered, properties typed and checked, references
//! resolved and resources ordered. Every problem is collected, then reported
//! together.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::{Value as Json, json};
use serde_yaml::{Mapping, Value};

use crate::condition::When;
use crate::diag::{Diagnostic, Diagnostics};
use crate::graph::toposort;
use crate::load::{RecipeSet, RecipeSource, SourceFile, join_normalized};
use crate::locate::{Seg, YamlPath};
use crate::params::{self, Overrides, ParamProblemAt, ParamSpec};
use crate::render::{RenderFailure, Renderer, is_template};
use crate::resource::{Common, Kind, ResourceId, Spec};
use crate::resources::Presence;
use crate::suggest::did_you_mean;

/// What the plan is compiled against.
pub struct CompileOptions<'a> {
    /// The host's facts, or a skeleton with every standard fact (validation).
    pub facts: &'a Json,
    /// Every standard fact path with a placeholder value, to check `fact:`
    /// references and template variables against.
    pub fact_skeleton: &'a Json,
    /// True when `facts` is the skeleton: custom facts are unknown, so
    /// references to `facts.custom.*` are not errors.
    pub placeholder_facts: bool,
    pub overrides: &'a Overrides,
}

/// One resource, ready to converge.
#[derive(Debug, Clone)]
pub struct CompiledResource {
    pub id: ResourceId,
    pub spec: Spec,
    /// File content for `file` (content or source) and `template` (rendered).
    pub payload: Option<Vec<u8>>,
    pub requires: Vec<ResourceId>,
    pub notifies: Vec<ResourceId>,
    /// False when the resource's `when:` condition does not hold.
    pub enabled: bool,
    pub sensitive: bool,
    /// A stable hash of the desired state, to tell drift from recipe changes.
    pub desired_hash: u64,
    /// The recipe file that declared it.
    pub origin: PathBuf,
}

/// Resources in converge order, with their prerequisites.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub resources: Vec<CompiledResource>,
    /// For each resource, the indices (into `resources`) it depends on.
    pub prereqs: Vec<Vec<usize>>,
    /// For each resource, the indices of the resources that notify it.
    pub notified_by: Vec<Vec<usize>>,
    /// Resolved parameters.
    pub params: serde_json::Map<String, Json>,
    /// Names of parameters marked sensitive.
    pub sensitive_params: Vec<String>,
    /// Recipe names, in load order.
    pub recipes: Vec<String>,
}

impl Plan {
    /// The values of sensitive parameters, to be scrubbed from all output.
    pub fn secrets(&self) -> Vec<String> {
        self.sensitive_params
            .iter()
            .filter_map(|k| self.params.get(k))
            .map(|v| match v {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            })
            .filter(|s| !s.is_empty())
            .collect()
    }

    pub fn index_of(&self, id: &ResourceId) -> Option<usize> {
        self.resources.iter().position(|r| &r.id == id)
    }
}

struct Pending {
    res: CompiledResource,
    file: usize,
    path: YamlPath,
    common: Common,
}

/// Compiles a loaded recipe set into a plan, or every problem found.
/// Resources declared by one recipe set (its files and their includes).
pub const MAX_RESOURCES: usize = 20_000;

pub fn compile(set: &RecipeSet, source: &dyn RecipeSource, opts: &CompileOptions) -> Result<Plan, Diagnostics> {
    let mut diags = set.problems.clone();
    let renderer = Renderer::default();

    let (specs, recipes) = collect_params(set, &mut diags);
    let (params, problems) =
        params::resolve(&specs.iter().map(|(k, (s, _))| (k.clone(), s.clone())).collect(), opts.overrides);
    for p in problems {
        let d = match &p.at {
            ParamProblemAt::Declaration(name) => {
                let (spec, file) = &specs[name];
                let at = YamlPath::root().key("parameters").key(name.clone());
                match spec.default {
                    Some(_) => set.files[*file].diag_value(&at.key("default"), p.message),
                    None => set.files[*file].diag_key(&at, p.message),
                }
            }
            ParamProblemAt::Override(_) => Diagnostic::new("command line", p.message),
        };
        diags.push(d.hint(p.hint));
    }
    let ctx = json!({ "facts": opts.facts, "params": params });

    let mut pending: Vec<Pending> = Vec::new();
    let mut by_id: HashMap<ResourceId, usize> = HashMap::new();
    let mut declared = 0usize;
    'files: for (fi, file) in set.files.iter().enumerate() {
        let Some(items) = file.doc.get("resources") else {
            continue;
        };
        let base = YamlPath::root().key("resources");
        let Value::Sequence(items) = items else {
            diags.push(file.diag_value(&base, "`resources` must be a list"));
            continue;
        };
        for (i, item) in items.iter().enumerate() {
            let path = base.index(i);
            declared += 1;
            if declared > MAX_RESOURCES {
                diags.push(file.diag_value(
                    &path,
                    format!("more than {MAX_RESOURCES} resources in one recipe set (limit: recipe.max_resources)"),
                ));
                break 'files;
            }
            let Some(p) = compile_resource(file, fi, item, &path, &ctx, &renderer, source, opts, &mut diags) else {
                continue;
            };
            match by_id.get(&p.res.id) {
                Some(&prev) if same_desired(&pending[prev].res, &p.res) => {
                    // The same declaration twice: one resource, with the union of its edges.
                    let first = &mut pending[prev];
                    for r in p.common.requires {
                        if !first.common.requires.contains(&r) {
                            first.common.requires.push(r);
                        }
                    }
                    for n in p.common.notifies {
                        if !first.common.notifies.contains(&n) {
                            first.common.notifies.push(n);
                        }
                    }
                    first.res.sensitive |= p.res.sensitive;
                }
                Some(&prev) => {
                    let other = &pending[prev];
                    let (l, c) = set.files[other.file].locations().value(&other.path);
                    diags.push(
                        file.diag_value(
                            &path,
                            format!(
                                "declared twice with different properties (first at {}:{l}:{c})",
                                set.files[other.file].path.display()
                            ),
                        )
                        .resource(p.res.id.to_string()),
                    );
                }
                None => {
                    by_id.insert(p.res.id.clone(), pending.len());
                    pending.push(p);
                }
            }
        }
    }

    // References.
    let all_ids: Vec<String> = pending.iter().map(|p| p.res.id.to_string()).collect();
    let mut edges: Vec<(usize, usize)> = Vec::new();
    let mut notify_edges: Vec<(usize, usize)> = Vec::new();
    for (idx, p) in pending.iter_mut().enumerate() {
        let file = &set.files[p.file];
        for (field, list) in [("requires", &p.common.requires), ("notifies", &p.common.notifies)] {
            for (j, r) in list.iter().enumerate() {
                let at = p.path.key(field).index(j);
                let target = match ResourceId::parse(r) {
                    Ok(id) => id,
                    Err(e) => {
                        diags.push(file.diag_value(&at, e).resource(p.res.id.to_string()));
                        continue;
                    }
                };
                let Some(&t) = by_id.get(&target) else {
                    diags.push(
                        file.diag_value(&at, format!("{field} `{r}`, which no recipe declares"))
                            .resource(p.res.id.to_string())
                            .hint(did_you_mean(r, all_ids.iter().map(String::as_str))),
                    );
                    continue;
                };
                if field == "requires" {
                    edges.push((t, idx));
                    p.res.requires.push(target);
                } else {
                    edges.push((idx, t));
                    notify_edges.push((idx, t));
                    p.res.notifies.push(target);
                }
            }
        }
    }
    let (implicit, implicit_notify) = implicit_edges(&pending, &by_id);
    edges.extend(implicit);
    for e in implicit_notify {
        if !notify_edges.contains(&e) {
            notify_edges.push(e);
        }
    }

    if !diags.is_empty() {
        return Err(diags.sorted());
    }

    let order = match toposort(pending.len(), &edges) {
        Ok(o) => o,
        Err(cycle) => {
            let names: Vec<String> = cycle.iter().map(|&i| pending[i].res.id.to_string()).collect();
            let first = &pending[cycle[0]];
            diags.push(
                set.files[first.file]
                    .diag_value(&first.path, format!("dependency cycle: {}", names.join(" -> ")))
                    .resource(first.res.id.to_string()),
            );
            return Err(diags);
        }
    };
    let mut pos = vec![0; pending.len()];
    for (new, &old) in order.iter().enumerate() {
        pos[old] = new;
    }
    let mut prereqs = vec![Vec::new(); order.len()];
    let mut notified_by = vec![Vec::new(); order.len()];
    for &(a, b) in &edges {
        if !prereqs[pos[b]].contains(&pos[a]) {
            prereqs[pos[b]].push(pos[a]);
        }
    }
    for &(a, b) in &notify_edges {
        notified_by[pos[b]].push(pos[a]);
    }
    let mut slots: Vec<Option<Pending>> = pending.into_iter().map(Some).collect();
    let resources = order.iter().filter_map(|&i| slots[i].take().map(|p| p.res)).collect();
    let sensitive_params = specs.iter().filter(|(_, (s, _))| s.sensitive).map(|(k, _)| k.clone()).collect();
    Ok(Plan { resources, prereqs, notified_by, params, sensitive_params, recipes })
}

/// Gathers parameter declarations from every file; the same name declared
/// differently in two files is an error.
fn collect_params(set: &RecipeSet, diags: &mut Diagnostics) -> (IndexMap<String, (ParamSpec, usize)>, Vec<String>) {
    let mut specs: IndexMap<String, (ParamSpec, usize)> = IndexMap::new();
    let mut recipes = Vec::new();
    for (fi, file) in set.files.iter().enumerate() {
        match file.doc.get("name") {
            Some(Value::String(n)) => recipes.push(n.clone()),
            Some(_) => diags.push(file.diag_value(&YamlPath::root().key("name"), "`name` must be a string")),
            None => diags.push(file.diag_value(&YamlPath::root(), "the recipe has no `name`")),
        }
        let Some(ps) = file.doc.get("parameters") else {
            continue;
        };
        let base = YamlPath::root().key("parameters");
        let Value::Mapping(ps) = ps else {
            diags.push(file.diag_value(&base, "`parameters` must be a mapping of name to declaration"));
            continue;
        };
        for (k, v) in ps {
            let name = k.as_str().unwrap_or("?").to_string();
            let at = base.key(name.clone());
            match serde_path_to_error::deserialize::<_, ParamSpec>(v.clone()) {
                Ok(spec) => {
                    if let Some(p) = &spec.pattern {
                        if let Err(e) = regex_lite::Regex::new(p) {
                            diags.push(file.diag_value(&at.key("pattern"), format!("invalid pattern: {e}")));
                        }
                    }
                    match specs.get(&name) {
                        Some((prev, _)) if *prev != spec => diags.push(file.diag_key(
                            &at,
                            format!("parameter `{name}` is declared differently in another included recipe"),
                        )),
                        Some(_) => {}
                        None => {
                            specs.insert(name, (spec, fi));
                        }
                    }
                }
                Err(e) => diags.push(serde_diag(file, &at, &e, None, known_param_fields())),
            }
        }
    }
    (specs, recipes)
}

fn known_param_fields() -> &'static [&'static str] {
    &["type", "description", "default", "pattern", "allowed", "min", "max", "sensitive"]
}

#[allow(clippy::too_many_arguments)]
fn compile_resource(
    file: &SourceFile,
    fi: usize,
    item: &Value,
    path: &YamlPath,
    ctx: &Json,
    renderer: &Renderer,
    source: &dyn RecipeSource,
    opts: &CompileOptions,
    diags: &mut Diagnostics,
) -> Option<Pending> {
    let Value::Mapping(map) = item else {
        diags.push(file.diag_value(path, "a resource is a mapping such as `- file: /etc/motd`"));
        return None;
    };
    // The type is the first key that names one (`- file: /etc/motd`); later
    // keys are properties, even when they also name a type (`group: root`).
    let Some((kind, name_value)) = map.iter().find_map(|(k, v)| k.as_str().and_then(Kind::parse).map(|kind| (kind, v)))
    else {
        let first = map.keys().next().and_then(Value::as_str).unwrap_or("?");
        let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
        diags.push(file.diag_key(&path.key(first), format!("unknown resource type `{first}`")).hint(
            did_you_mean(first, names.iter().copied()).or_else(|| Some(format!("known types: {}", names.join(", ")))),
        ));
        return None;
    };
    let raw_name = match name_value {
        Value::String(s) if !s.is_empty() => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => {
            diags
                .push(file.diag_value(&path.key(kind.name()), format!("`{kind}` needs a name, e.g. `- {kind}: NAME`")));
            return None;
        }
    };

    // The condition is read before anything is rendered: a false condition may
    // guard values that do not exist on this host.
    let mut when: Option<When> = None;
    if let Some(w) = map.get("when") {
        match serde_path_to_error::deserialize::<_, When>(w.clone()) {
            Ok(c) => {
                for p in c.problems() {
                    diags.push(file.diag_value(&path.key("when"), p).resource(format!("{kind}:{raw_name}")));
                }
                for (is_fact, subject) in c.subjects() {
                    check_subject(
                        file,
                        &path.key("when"),
                        is_fact,
                        subject,
                        ctx,
                        opts,
                        &format!("{kind}:{raw_name}"),
                        diags,
                    );
                }
                when = Some(c);
            }
            Err(e) => {
                diags.push(serde_diag(file, &path.key("when"), &e, Some(format!("{kind}:{raw_name}")), &[]));
                return None;
            }
        }
    }
    // Validation (placeholder facts) checks every resource, whatever its condition.
    let enabled = opts.placeholder_facts || when.as_ref().is_none_or(|c| c.eval(&ctx["facts"], &ctx["params"]));

    // Render every string (except the condition), then split common properties
    // from the type's own.
    let mut render_diags = Diagnostics::default();
    let mut rendered = Mapping::new();
    for (k, v) in map {
        let key = k.as_str().unwrap_or("");
        if key == "when" {
            continue;
        }
        let mut v = v.clone();
        render_value(&mut v, &path.key(key), file, ctx, renderer, opts, &mut render_diags);
        rendered.insert(k.clone(), v);
    }
    let name = rendered.get(kind.name()).and_then(Value::as_str).map(str::to_string).unwrap_or(raw_name.clone());
    let id = ResourceId::new(kind, name);
    if enabled {
        for mut d in render_diags.0 {
            d.resource = Some(id.to_string());
            diags.push(d);
        }
    }
    rendered.remove(kind.name());
    let mut common_map = Mapping::new();
    for key in Common::KEYS {
        if let Some(v) = rendered.remove(*key) {
            common_map.insert(Value::from(*key), v);
        }
    }
    let common: Common = match serde_path_to_error::deserialize(Value::Mapping(common_map)) {
        Ok(c) => c,
        Err(e) => {
            diags.push(serde_diag(file, path, &e, Some(id.to_string()), Common::KEYS));
            Common::default()
        }
    };
    let spec = typed_spec(kind, rendered, file, path, &id, diags)?;
    for (field, msg) in spec.problems(&id.name) {
        // Without a host, a name made from a host-specific fact is unknown.
        if field.is_empty() && opts.placeholder_facts && is_template(&id.name) {
            continue;
        }
        let at = if field.is_empty() { path.key(kind.name()) } else { path.key(field) };
        diags.push(file.diag_value(&at, msg).resource(id.to_string()));
    }
    let payload = if enabled { payload(&spec, file, path, &id, ctx, renderer, source, opts, diags) } else { None };
    let desired_hash = desired_hash(&id, &spec, payload.as_deref());
    Some(Pending {
        res: CompiledResource {
            id,
            spec,
            payload,
            requires: Vec::new(),
            notifies: Vec::new(),
            enabled,
            sensitive: common.sensitive,
            desired_hash,
            origin: file.path.clone(),
        },
        file: fi,
        path: path.clone(),
        common,
    })
}

#[allow(clippy::too_many_arguments)]
fn check_subject(
    file: &SourceFile,
    at: &YamlPath,
    is_fact: bool,
    subject: &str,
    ctx: &Json,
    opts: &CompileOptions,
    id: &str,
    diags: &mut Diagnostics,
) {
    if is_fact {
        if known_fact(opts.fact_skeleton, subject) {
            return;
        }
        let known = crate::render::leaf_paths(opts.fact_skeleton);
        diags.push(
            file.diag_value(at, format!("unknown fact `{subject}`"))
                .resource(id)
                .hint(did_you_mean(subject, known.iter().map(String::as_str))),
        );
    } else if ctx["params"].get(subject).is_none() {
        let known: Vec<&str> =
            ctx["params"].as_object().map(|m| m.keys().map(String::as_str).collect()).unwrap_or_default();
        diags.push(
            file.diag_value(at, format!("unknown parameter `{subject}`"))
                .resource(id)
                .hint(did_you_mean(subject, known)),
        );
    }
}

/// True if `path` is a standard fact, or lies inside an open namespace of the
/// skeleton (an empty object: `custom`, `interfaces`), whose keys depend on the host.
fn known_fact(skeleton: &Json, path: &str) -> bool {
    let mut cur = skeleton;
    for seg in path.split('.') {
        match cur {
            Json::Object(m) if m.is_empty() => return true,
            Json::Object(m) => match m.get(seg) {
                Some(next) => cur = next,
                None => return false,
            },
            _ => return false,
        }
    }
    true
}

/// True if rendering failed only because the placeholder facts cannot know a
/// host-specific value (a custom fact, an interface name).
fn tolerated(f: &RenderFailure, opts: &CompileOptions) -> bool {
    opts.placeholder_facts
        && f.missing
            .as_deref()
            .and_then(|m| m.strip_prefix("facts."))
            .is_some_and(|m| known_fact(opts.fact_skeleton, m))
}

fn render_value(
    v: &mut Value,
    path: &YamlPath,
    file: &SourceFile,
    ctx: &Json,
    renderer: &Renderer,
    opts: &CompileOptions,
    diags: &mut Diagnostics,
) {
    match v {
        Value::String(s) if is_template(s) => match renderer.render(s, ctx) {
            Ok(out) => *s = out,
            Err(f) if tolerated(&f, opts) => {}
            Err(f) => diags.push(file.diag_value(path, f.message).hint(f.hint)),
        },
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                render_value(item, &path.index(i), file, ctx, renderer, opts, diags);
            }
        }
        Value::Mapping(m) => {
            for (k, item) in m.iter_mut() {
                let key = k.as_str().unwrap_or("?").to_string();
                render_value(item, &path.key(key), file, ctx, renderer, opts, diags);
            }
        }
        _ => {}
    }
}

/// Deserializes a type's properties. The fast path is one attempt; on failure
/// every unknown property and every type error is reported, not just the first.
fn typed_spec(
    kind: Kind,
    props: Mapping,
    file: &SourceFile,
    path: &YamlPath,
    id: &ResourceId,
    diags: &mut Diagnostics,
) -> Option<Spec> {
    let whole = Value::Mapping(props);
    if let Ok(spec) = kind.spec_from(&whole) {
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

/// The property names a type accepts, from its JSON Schema.
fn known_fields(kind: Kind) -> Vec<String> {
    let mut generator = schemars::SchemaGenerator::default();
    let schema = kind.props_schema(&mut generator);
    schema.get("properties").and_then(|p| p.as_object()).map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

/// A diagnostic from a serde error, located by the error's path.
fn serde_diag(
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

#[allow(clippy::too_many_arguments)]
fn payload(
    spec: &Spec,
    file: &SourceFile,
    path: &YamlPath,
    id: &ResourceId,
    ctx: &Json,
    renderer: &Renderer,
    source: &dyn RecipeSource,
    opts: &CompileOptions,
    diags: &mut Diagnostics,
) -> Option<Vec<u8>> {
    let read = |rel: &str, diags: &mut Diagnostics| -> Option<(PathBuf, Vec<u8>)> {
        let p = join_normalized(file.dir(), rel);
        match source.read(&p) {
            Ok(b) => Some((p, b)),
            Err(e) => {
                diags.push(
                    file.diag_value(&path.key("source"), format!("cannot read {}: {e}", p.display()))
                        .resource(id.to_string()),
                );
                None
            }
        }
    };
    match spec {
        Spec::File(p) if p.state == Presence::Present => {
            if let Some(c) = &p.content {
                Some(c.clone().into_bytes())
            } else {
                p.source.as_deref().and_then(|s| read(s, diags)).map(|(_, b)| b)
            }
        }
        Spec::SystemdUnit(p) if p.state == Presence::Present => {
            if let Some(c) = &p.content {
                Some(c.clone().into_bytes())
            } else {
                p.source.as_deref().and_then(|s| read(s, diags)).map(|(_, b)| b)
            }
        }
        Spec::Template(p) if p.state == Presence::Present => {
            let (tpath, bytes) = read(p.source.as_deref()?, diags)?;
            let Ok(text) = String::from_utf8(bytes) else {
                diags.push(Diagnostic::new(&tpath, "template is not UTF-8 text").resource(id.to_string()));
                return None;
            };
            let mut tctx = ctx.clone();
            tctx["vars"] = serde_json::to_value(&p.vars).unwrap_or(Json::Null);
            match renderer.render(&text, &tctx) {
                Ok(out) => Some(out.into_bytes()),
                Err(f) if tolerated(&f, opts) => Some(Vec::new()),
                Err(f) => {
                    diags.push(
                        Diagnostic::new(&tpath, f.message)
                            .at((f.line.unwrap_or(0), f.col.unwrap_or(0)))
                            .resource(id.to_string())
                            .hint(f.hint),
                    );
                    None
                }
            }
        }
        _ => None,
    }
}

/// `(before, after)` pairs of plan indices.
type Edges = Vec<(usize, usize)>;

/// Edges that follow from the resources themselves: a directory before what
/// it contains (after, when both are being removed); an owner, a group or a
/// package before what uses it; a unit file before its service, which it also
/// notifies. Only resources the recipes declare take part. Returns
/// `(edges, notify_edges)`.
fn implicit_edges(pending: &[Pending], by_id: &HashMap<ResourceId, usize>) -> (Edges, Edges) {
    let dirs: HashMap<&str, (usize, Presence)> = pending
        .iter()
        .enumerate()
        .filter_map(|(i, p)| match &p.res.spec {
            Spec::Directory(d) => Some((p.res.id.name.as_str(), (i, d.state))),
            _ => None,
        })
        .collect();
    let mut edges = Vec::new();
    let mut notify = Vec::new();
    let mut seen = HashSet::new();
    let mut add = |e: (usize, usize), edges: &mut Vec<(usize, usize)>| {
        if e.0 != e.1 && seen.insert(e) {
            edges.push(e);
        }
    };
    for (i, p) in pending.iter().enumerate() {
        if p.res.spec.is_path() {
            let mut cur = Path::new(&p.res.id.name).parent();
            while let Some(dir) = cur {
                if let Some(&(d, state)) = dir.to_str().and_then(|s| dirs.get(s)) {
                    add(if state == Presence::Absent { (i, d) } else { (d, i) }, &mut edges);
                    break;
                }
                cur = dir.parent();
            }
        }
        for dep in p.res.spec.implicit_after(&p.res.id.name) {
            if let Some(&d) = by_id.get(&dep) {
                add((d, i), &mut edges);
            }
        }
        match &p.res.spec {
            // Members that are declared users come first, unless the user
            // itself names this group (then the group comes first).
            Spec::Group(g) => {
                for m in g.members.iter().flatten() {
                    if let Some(&u) = by_id.get(&ResourceId::new(crate::resource::Kind::User, m.clone())) {
                        let names_group = match &pending[u].res.spec {
                            Spec::User(up) => {
                                up.group.as_deref() == Some(p.res.id.name.as_str())
                                    || up.groups.iter().flatten().any(|x| *x == p.res.id.name)
                            }
                            _ => false,
                        };
                        if !names_group {
                            add((u, i), &mut edges);
                        }
                    }
                }
            }
            // A unit file (or drop-in) before the service that uses it, and a
            // change to it restarts that service.
            Spec::SystemdUnit(_) => {
                let (unit, _) = crate::resources::systemd_unit::SystemdUnitProps::split(&p.res.id.name);
                for (j, q) in pending.iter().enumerate() {
                    if let Spec::Service(s) = &q.res.spec {
                        if s.unit_name(&q.res.id.name) == unit {
                            add((i, j), &mut edges);
                            if !notify.contains(&(i, j)) {
                                notify.push((i, j));
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    (edges, notify)
}

fn same_desired(a: &CompiledResource, b: &CompiledResource) -> bool {
    a.spec == b.spec && a.payload == b.payload && a.enabled == b.enabled
}

/// A hash that is stable across runs, builds and machines (unlike
/// `DefaultHasher`): FNV-1a over 8-byte words, so large inputs hash quickly.
pub fn stable_hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for bytes in parts {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut buf = [0u8; 8];
            buf.copy_from_slice(w);
            h = (h ^ u64::from_le_bytes(buf)).wrapping_mul(0x0100_0000_01b3);
        }
        for b in words.remainder() {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        h = (h ^ bytes.len() as u64).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The desired state's hash: id, typed properties and payload.
fn desired_hash(id: &ResourceId, spec: &Spec, payload: Option<&[u8]>) -> u64 {
    let spec = serde_json::to_vec(spec).unwrap_or_default();
    stable_hash(&[id.to_string().as_bytes(), &spec, payload.unwrap_or_default()])
}
