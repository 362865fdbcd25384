//! Turns loaded recipe files into a plan, as a pipeline of phases: load
//! (`load.rs`) → parameters, resolved from overrides, data layers
//! (`data.rs`) and defaults → expand and render each entry in its scope
//! (`expand.rs`: `for_each`, components, typed references) → type the
//! properties (`typing.rs`) → references and the graph. Every problem is
//! collected, then reported together.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use indexmap::IndexMap;
use serde_json::Value as Json;
use serde_yaml::Value;

use crate::diag::{Diagnostic, Diagnostics};
use crate::graph::toposort;
use crate::load::{RecipeSet, RecipeSource, SourceFile};
use crate::locate::YamlPath;
use crate::params::{self, Layer, Origin, Overrides, ParamProblem, ParamProblemAt, ParamSpec};
use crate::render::Renderer;
use crate::resource::{ResourceId, Spec};
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
    /// The component instance(s) that produced it, outermost first
    /// (`use:vhost[shop]`).
    pub instance: Option<String>,
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
    /// Sensitive values passed to component instances.
    pub instance_secrets: Vec<String>,
    /// Where each parameter's value came from (`explain`), lowest first
    /// when levels were merged.
    pub param_origins: IndexMap<String, Vec<String>>,
    /// Problems that do not stop the run (an undeclared key in a data file).
    pub warnings: Vec<Diagnostic>,
    /// Recipe names, in load order.
    pub recipes: Vec<String>,
}

impl Plan {
    /// The values of sensitive parameters, to be scrubbed from all output.
    pub fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        for v in self.sensitive_params.iter().filter_map(|k| self.params.get(k)) {
            secret_texts(v, &mut out);
        }
        out.extend(self.instance_secrets.iter().cloned());
        out.retain(|s| !s.is_empty());
        out
    }

    pub fn index_of(&self, id: &ResourceId) -> Option<usize> {
        self.resources.iter().position(|r| &r.id == id)
    }
}

/// Every scalar inside a sensitive value, as text (a sensitive map's values
/// are each secret).
pub fn secret_texts(v: &Json, out: &mut Vec<String>) {
    match v {
        Json::Null => {}
        Json::String(s) => out.push(s.clone()),
        Json::Array(a) => a.iter().for_each(|x| secret_texts(x, out)),
        Json::Object(m) => m.values().for_each(|x| secret_texts(x, out)),
        other => out.push(other.to_string()),
    }
}

/// A file a resource or a reference was written in: a recipe of the set, or
/// a file the compiler loaded itself (a component, a data level).
#[derive(Clone)]
pub enum FileRef<'a> {
    Set(&'a SourceFile),
    Own(Rc<SourceFile>),
}

impl std::ops::Deref for FileRef<'_> {
    type Target = SourceFile;
    fn deref(&self) -> &SourceFile {
        match self {
            FileRef::Set(f) => f,
            FileRef::Own(f) => f,
        }
    }
}

/// One `requires` or `notifies` entry, with where it was written.
#[derive(Clone)]
pub struct Ref<'a> {
    pub notify: bool,
    pub target: String,
    pub file: FileRef<'a>,
    pub at: YamlPath,
    pub context: Option<String>,
}

/// A resource compiled but not yet placed in the graph.
pub struct Pending<'a> {
    pub res: CompiledResource,
    pub file: FileRef<'a>,
    pub path: YamlPath,
    pub refs: Vec<Ref<'a>>,
    /// The loop items and instances it came from, for messages.
    pub context: Option<String>,
    /// Under a condition (its own, a block's, an include's): during
    /// validation, a second declaration of its id is not an error.
    pub conditional: bool,
}

/// Resources declared by one recipe set (its files and their includes),
/// after loops and components are expanded.
pub const MAX_RESOURCES: usize = 20_000;

/// Compiles a loaded recipe set into a plan, or every problem found. The
/// phases run in order on one [`Compilation`]; each adds to its diagnostics,
/// and the plan is refused if any were found.
pub fn compile(set: &RecipeSet, source: &dyn RecipeSource, opts: &CompileOptions) -> Result<Plan, Diagnostics> {
    let mut c = Compilation { set, source, opts, diags: set.problems.clone(), warnings: Vec::new() };
    let params = c.parameters();
    let mut expanded = c.resources(params.values, params.declared, params.renderer);
    let mut edges = c.references(&mut expanded);
    c.implicit_edges(&expanded, &mut edges);
    let mut plan = c.order(expanded.pending, &edges)?;
    if !c.diags.is_empty() {
        return Err(c.diags.sorted());
    }
    plan.params = expanded.params;
    plan.sensitive_params = params.sensitive;
    plan.instance_secrets = expanded.instance_secrets;
    plan.param_origins = params.origins;
    plan.warnings = c.warnings;
    plan.recipes = params.recipes;
    Ok(plan)
}

/// One compilation: its inputs, and the diagnostics and warnings its
/// phases add.
struct Compilation<'a> {
    set: &'a RecipeSet,
    source: &'a dyn RecipeSource,
    opts: &'a CompileOptions<'a>,
    diags: Diagnostics,
    warnings: Vec<Diagnostic>,
}

/// What the parameters phase settles.
struct Parameters {
    /// The declarations, merged across the set's files.
    declared: IndexMap<String, ParamSpec>,
    /// Each value, from overrides, data levels or defaults.
    values: serde_json::Map<String, Json>,
    /// Where each value came from, for `explain`.
    origins: IndexMap<String, Vec<String>>,
    sensitive: Vec<String>,
    /// The recipes' names, in order.
    recipes: Vec<String>,
    /// The renderer data levels were rendered with; expansion goes on with it.
    renderer: Renderer,
}

/// What the resources phase produces: every resource, expanded and typed,
/// with its references still by name.
struct Expanded<'a> {
    pending: Vec<Pending<'a>>,
    by_id: HashMap<ResourceId, usize>,
    /// `use:component[name]` → the resources that instance made.
    instances: HashMap<String, Vec<usize>>,
    instance_secrets: Vec<String>,
    /// The parameters as the expansion left them (its context owned them).
    params: serde_json::Map<String, Json>,
}

/// Ordering edges between resources, and the notifying ones among them.
#[derive(Default)]
struct GraphEdges {
    order: Edges,
    notify: Edges,
}

impl<'a> Compilation<'a> {
    /// Parameters: declarations, the data hierarchy (one per recipe set),
    /// and each value resolved with its origins.
    fn parameters(&mut self) -> Parameters {
        let (set, opts) = (self.set, self.opts);
        let renderer = Renderer::default();
        let (specs, recipes) = collect_params(set, &mut self.diags);
        let declared: IndexMap<String, ParamSpec> = specs.iter().map(|(k, (s, _))| (k.clone(), s.clone())).collect();
        let mut data_file: Option<usize> = None;
        let mut layers = crate::data::Layers::default();
        for (fi, file) in set.files.iter().enumerate() {
            let levels = crate::data::declaration(file, &mut self.diags);
            if levels.is_empty() {
                continue;
            }
            if let Some(first) = data_file {
                self.diags.push(file.diag_key(
                    &YamlPath::root().key("data"),
                    format!(
                        "a recipe set has one data hierarchy; {} declares it already",
                        set.files[first].path.display()
                    ),
                ));
                continue;
            }
            data_file = Some(fi);
            layers = crate::data::load(
                file,
                &levels,
                &declared,
                self.source,
                &renderer,
                opts,
                &mut self.diags,
                &mut self.warnings,
            );
        }
        let resolved = params::resolve_layered(&declared, opts.overrides, &layers.layers);
        for p in &resolved.problems {
            self.diags.push(param_diag(p, &specs, set, &layers, |d| d));
        }
        let origins = origin_labels(&resolved.origins, &specs, set, &layers.layers);
        let sensitive = specs.iter().filter(|(_, (s, _))| s.sensitive).map(|(k, _)| k.clone()).collect();
        Parameters { declared, values: resolved.values, origins, sensitive, recipes, renderer }
    }

    /// Resources: each active file's entries, expanded (loops, components)
    /// and rendered in their scope, then typed.
    fn resources(
        &mut self,
        params: serde_json::Map<String, Json>,
        declared: IndexMap<String, ParamSpec>,
        renderer: Renderer,
    ) -> Expanded<'a> {
        let (set, opts) = (self.set, self.opts);
        // Built by hand: `json!` would copy the parameters by serializing them.
        let mut root = serde_json::Map::new();
        root.insert("facts".into(), opts.facts.clone());
        root.insert("params".into(), Json::Object(params));
        let ctx = Json::Object(root);
        let active = active_files(set, opts, &ctx["params"]);
        let mut c = crate::expand::Compiler::new(set, self.source, opts, renderer, ctx);
        c.diags = std::mem::take(&mut self.diags);
        c.warnings = std::mem::take(&mut self.warnings);
        c.declared_params = Rc::new(declared);
        for (fi, file) in set.files.iter().enumerate() {
            let Some(conditional) = active[fi] else { continue };
            c.recipe_file(file, conditional);
        }
        let crate::expand::Compiler { diags, pending, by_id, instances, warnings, instance_secrets, ctx, .. } = c;
        self.diags = diags;
        self.warnings = warnings;
        let params = match ctx {
            Json::Object(mut m) => match m.remove("params") {
                Some(Json::Object(p)) => p,
                _ => Default::default(),
            },
            _ => Default::default(),
        };
        Expanded { pending, by_id, instances, instance_secrets, params }
    }

    /// References: each `requires`/`notifies` (a resource id, or a whole
    /// component instance) resolved to edges; a dangling one is located,
    /// with a did-you-mean.
    fn references(&mut self, x: &mut Expanded<'a>) -> GraphEdges {
        let (pending, by_id, instances) = (&mut x.pending, &x.by_id, &x.instances);
        // Every id, for "did you mean" (built on the first dangling reference only).
        let all_ids = std::cell::OnceCell::new();
        let ids_of = |pending: &[Pending]| -> Vec<String> {
            pending.iter().map(|p| p.res.id.to_string()).chain(instances.keys().cloned()).collect()
        };
        let mut edges = GraphEdges::default();
        for idx in 0..pending.len() {
            let refs = std::mem::take(&mut pending[idx].refs);
            for r in &refs {
                let field = if r.notify { "notifies" } else { "requires" };
                let located = |msg: String| {
                    let mut d = r.file.diag_value(&r.at, msg).resource(pending[idx].res.id.to_string());
                    d.context = r.context.clone();
                    d
                };
                let targets: Vec<usize> = if r.target.starts_with("use:") {
                    match instances.get(&r.target) {
                        Some(members) => members.iter().copied().filter(|&m| m != idx).collect(),
                        None => {
                            self.diags.push(
                                located(format!("{field} `{}`, which no recipe instantiates", r.target)).hint(
                                    did_you_mean(
                                        &r.target,
                                        all_ids.get_or_init(|| ids_of(pending)).iter().map(String::as_str),
                                    ),
                                ),
                            );
                            continue;
                        }
                    }
                } else {
                    let target = match ResourceId::parse(&r.target) {
                        Ok(id) => id,
                        Err(e) => {
                            self.diags.push(located(e));
                            continue;
                        }
                    };
                    match by_id.get(&target) {
                        Some(&t) => vec![t],
                        None => {
                            self.diags.push(located(format!("{field} `{}`, which no recipe declares", r.target)).hint(
                                did_you_mean(
                                    &r.target,
                                    all_ids.get_or_init(|| ids_of(pending)).iter().map(String::as_str),
                                ),
                            ));
                            continue;
                        }
                    }
                };
                for t in targets {
                    let target = pending[t].res.id.clone();
                    if r.notify {
                        edges.order.push((idx, t));
                        edges.notify.push((idx, t));
                        if !pending[idx].res.notifies.contains(&target) {
                            pending[idx].res.notifies.push(target);
                        }
                    } else {
                        edges.order.push((t, idx));
                        if !pending[idx].res.requires.contains(&target) {
                            pending[idx].res.requires.push(target);
                        }
                    }
                }
            }
        }
        edges
    }

    /// Implicit edges: those that follow from the resources themselves
    /// (see [`implicit_edges`]).
    fn implicit_edges(&self, x: &Expanded<'a>, edges: &mut GraphEdges) {
        let (implicit, implicit_notify) = implicit_edges(&x.pending, &x.by_id);
        edges.order.extend(implicit);
        for e in implicit_notify {
            if !edges.notify.contains(&e) {
                edges.notify.push(e);
            }
        }
    }

    /// Order: the resources sorted so that every edge points forward; a
    /// cycle is an error naming it. Refused before sorting if any phase
    /// found a problem.
    fn order(&mut self, pending: Vec<Pending<'a>>, edges: &GraphEdges) -> Result<Plan, Diagnostics> {
        if !self.diags.is_empty() {
            return Err(std::mem::take(&mut self.diags).sorted());
        }
        let order = match toposort(pending.len(), &edges.order) {
            Ok(o) => o,
            Err(cycle) => {
                let names: Vec<String> = cycle.iter().map(|&i| pending[i].res.id.to_string()).collect();
                let first = &pending[cycle[0]];
                let mut d = first
                    .file
                    .diag_value(&first.path, format!("dependency cycle: {}", names.join(" -> ")))
                    .resource(first.res.id.to_string());
                d.context = first.context.clone();
                self.diags.push(d);
                return Err(std::mem::take(&mut self.diags));
            }
        };
        let mut pos = vec![0; pending.len()];
        for (new, &old) in order.iter().enumerate() {
            pos[old] = new;
        }
        let mut prereqs = vec![Vec::new(); order.len()];
        let mut notified_by = vec![Vec::new(); order.len()];
        let mut seen_edge = HashSet::new();
        for &(a, b) in &edges.order {
            if seen_edge.insert((a, b)) {
                prereqs[pos[b]].push(pos[a]);
            }
        }
        let mut seen_notify = HashSet::new();
        for &(a, b) in &edges.notify {
            if seen_notify.insert((a, b)) {
                notified_by[pos[b]].push(pos[a]);
            }
        }
        let mut slots: Vec<Option<Pending>> = pending.into_iter().map(Some).collect();
        let resources = order.iter().filter_map(|&i| slots[i].take().map(|p| p.res)).collect();
        Ok(Plan { resources, prereqs, notified_by, ..Plan::default() })
    }
}

/// A diagnostic for a parameter problem, located where the bad value was
/// written: the declaration, a data file, or the command line. `wrap`
/// adjusts overrides' diagnostics (components locate them at `with:`).
pub fn param_diag(
    p: &ParamProblem,
    specs: &IndexMap<String, (ParamSpec, usize)>,
    set: &RecipeSet,
    layers: &crate::data::Layers,
    wrap: impl Fn(Diagnostic) -> Diagnostic,
) -> Diagnostic {
    let d = match &p.at {
        ParamProblemAt::Declaration(name) => match specs.get(name) {
            Some((spec, file)) => declaration_diag(&set.files[*file], name, spec, p),
            None => Diagnostic::new("parameters", p.message.clone()),
        },
        ParamProblemAt::Layer(i, name) => match layers.files.get(*i) {
            Some(f) => {
                f.diag_value(&crate::data::value_path(&YamlPath::root().key(name.clone()), &p.path), p.message.clone())
            }
            None => Diagnostic::new("data", p.message.clone()),
        },
        ParamProblemAt::Override(_) => wrap(Diagnostic::new("command line", p.message.clone())),
    };
    d.hint(p.hint.clone())
}

/// A problem in a declaration's default, located in the default.
pub fn declaration_diag(file: &SourceFile, name: &str, spec: &ParamSpec, p: &ParamProblem) -> Diagnostic {
    let at = YamlPath::root().key("parameters").key(name.to_string());
    match spec.default {
        Some(_) => file.diag_value(&crate::data::value_path(&at.key("default"), &p.path), p.message.clone()),
        None => file.diag_key(&at, p.message.clone()),
    }
}

fn origin_labels(
    origins: &IndexMap<String, Vec<Origin>>,
    specs: &IndexMap<String, (ParamSpec, usize)>,
    set: &RecipeSet,
    layers: &[Layer],
) -> IndexMap<String, Vec<String>> {
    origins
        .iter()
        .map(|(name, os)| {
            let labels = os
                .iter()
                .map(|o| match o {
                    Origin::CommandLine => "--param".to_string(),
                    Origin::Given => "given values (--params file or the server's assignment)".to_string(),
                    Origin::Layer(i) => format!("data {}", layers.get(*i).map(|l| l.label.as_str()).unwrap_or("?")),
                    // Named by file, not line: locating needs a second parse.
                    Origin::Default => match specs.get(name) {
                        Some((_, fi)) => format!("the default in {}", set.files[*fi].path.display()),
                        None => "the default".to_string(),
                    },
                    Origin::Placeholder => "placeholder (validation)".to_string(),
                })
                .collect();
            (name.clone(), labels)
        })
        .collect()
}

/// Which recipe files take part, from the conditions of the includes that
/// name them: `None` for a file left out, `Some(conditional)` otherwise.
/// A file takes part if any include path to it holds. During validation every
/// file takes part, and those under a condition are marked conditional.
fn active_files(set: &RecipeSet, opts: &CompileOptions, params: &Json) -> Vec<Option<bool>> {
    fn visit(
        i: usize,
        set: &RecipeSet,
        opts: &CompileOptions,
        params: &Json,
        memo: &mut Vec<Option<Option<bool>>>,
        busy: &mut Vec<bool>,
    ) -> Option<bool> {
        if let Some(m) = memo[i] {
            return m;
        }
        if busy[i] {
            return None;
        }
        busy[i] = true;
        let file = &set.files[i];
        let mut result: Option<bool> = if file.included_by.is_empty() { Some(false) } else { None };
        for edge in &file.included_by {
            let Some(parent) = visit(edge.parent, set, opts, params, memo, busy) else { continue };
            let here = match &edge.when {
                None => Some(parent),
                Some(_) if opts.placeholder_facts => Some(true),
                Some(w) => w.eval(opts.facts, params).then_some(parent),
            };
            result = match (result, here) {
                (Some(a), Some(b)) => Some(a && b),
                (a, b) => a.or(b),
            };
        }
        busy[i] = false;
        memo[i] = Some(result);
        result
    }
    let mut memo = vec![None; set.files.len()];
    let mut busy = vec![false; set.files.len()];
    (0..set.files.len()).map(|i| visit(i, set, opts, params, &mut memo, &mut busy)).collect()
}

/// Parameter declarations of one file (a recipe or a component).
pub fn declared_params(file: &SourceFile, diags: &mut Diagnostics) -> IndexMap<String, ParamSpec> {
    let mut out = IndexMap::new();
    let Some(ps) = file.doc.get("parameters") else {
        return out;
    };
    let base = YamlPath::root().key("parameters");
    let Value::Mapping(ps) = ps else {
        diags.push(file.diag_value(&base, "`parameters` must be a mapping of name to declaration"));
        return out;
    };
    for (k, v) in ps {
        let name = k.as_str().unwrap_or("?").to_string();
        let at = base.key(name.clone());
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            diags.push(file.diag_key(&at, format!("parameter name {name:?} must be letters, digits, `_` or `-`")));
            continue;
        }
        match serde_path_to_error::deserialize::<_, ParamSpec>(v.clone()) {
            Ok(spec) => {
                for (path, msg) in spec.problems() {
                    let msg = match path.iter().position(|s| s == "default") {
                        Some(d) => {
                            let below: String = path[d + 1..].iter().map(|s| format!(".{s}")).collect();
                            format!("params.{name}{below}: {msg}")
                        }
                        None => msg,
                    };
                    diags.push(file.diag_value(&crate::data::value_path(&at, &path), msg));
                }
                out.insert(name, spec);
            }
            Err(e) => diags.push(crate::typing::serde_diag(file, &at, &e, None, known_param_fields())),
        }
    }
    out
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
        for (name, spec) in declared_params(file, diags) {
            match specs.get(&name) {
                Some((prev, _)) if *prev != spec => diags.push(file.diag_key(
                    &YamlPath::root().key("parameters").key(name.clone()),
                    format!("parameter `{name}` is declared differently in another included recipe"),
                )),
                Some(_) => {}
                None => {
                    specs.insert(name, (spec, fi));
                }
            }
        }
    }
    (specs, recipes)
}

fn known_param_fields() -> &'static [&'static str] {
    &[
        "type",
        "description",
        "default",
        "pattern",
        "allowed",
        "min",
        "max",
        "sensitive",
        "items",
        "values",
        "properties",
        "required",
        "merge",
    ]
}

/// True if `path` is a standard fact, or lies inside an open namespace of the
/// skeleton (an empty object: `custom`, `interfaces`), whose keys depend on the host.
pub fn known_fact(skeleton: &Json, path: &str) -> bool {
    let mut cur = skeleton;
    for seg in path.split('.') {
        match cur {
            Json::Object(m) if m.is_empty() => return true,
            Json::Object(m) => match m.get(seg) {
                Some(next) => cur = next,
                None => return false,
            },
            Json::Array(_) => return true,
            _ => return false,
        }
    }
    true
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
        if let Some(path) = p.res.spec.edited_path(&p.res.id.name) {
            let mut cur = Path::new(path).parent();
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
            // A repository before every package: a changed one refreshes the
            // package lists before the first install.
            Spec::AptRepository(_) | Spec::YumRepository(_) => {
                for (j, q) in pending.iter().enumerate() {
                    if matches!(q.res.spec, Spec::Package(_)) {
                        add((i, j), &mut edges);
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

pub fn same_desired(a: &CompiledResource, b: &CompiledResource) -> bool {
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
pub fn desired_hash(id: &ResourceId, spec: &Spec, payload: Option<&[u8]>) -> u64 {
    let spec = serde_json::to_vec(spec).unwrap_or_default();
    stable_hash(&[id.to_string().as_bytes(), &spec, payload.unwrap_or_default()])
}
