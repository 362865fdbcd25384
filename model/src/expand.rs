//! The expand-and-render phase: walks each recipe's `resources`, expanding
//! `for_each` loops and component instances (`use`), and compiles every
//! resource in its scope (loop variables, the instance's parameters).
//!
//! The render context is one JSON object mutated in place as loops and
//! instances are entered and left, so a loop over a large map never copies
//! the facts or the parameters.

use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;

use indexmap::IndexMap;
use serde_json::{Value as Json, json};
use serde_yaml::{Mapping, Value};

use crate::compile::{
    CompileOptions, CompiledResource, FileRef, MAX_RESOURCES, Pending, Ref, desired_hash, known_fact, same_desired,
};
use crate::component::{self, Component};
use crate::condition::When;
use crate::data::Layers;
use crate::diag::{Diagnostic, Diagnostics};
use crate::load::{RecipeSet, RecipeSource, SourceFile, join_normalized};
use crate::locate::YamlPath;
use crate::params::{self, Overrides, ParamProblemAt, ParamSpec};
use crate::render::{Renderer, is_template};
use crate::resource::{Common, Kind, ResourceId, Spec};
use crate::resources::Presence;
use crate::suggest::did_you_mean;
use crate::values::{render_entry, render_value, to_json, tolerated, whole_reference};

/// Loops inside one another.
pub const MAX_LOOP_DEPTH: usize = 16;
/// Loop iterations in one recipe set (with or without resources in them).
pub const MAX_ITERATIONS: usize = 100_000;

/// Names a loop's `as:` cannot take.
const RESERVED: &[&str] = &["facts", "params", "item", "key", "index", "name", "vars"];

/// Where an entry is being expanded.
#[derive(Clone, Default)]
struct Scope<'a> {
    /// Loop items and instances, outermost first, for messages.
    frames: Vec<String>,
    /// Component instances, outermost first.
    instances: Vec<String>,
    /// A block or instance condition is false here.
    disabled: bool,
    /// Under some condition.
    conditional: bool,
    /// `requires`/`notifies` of the enclosing instances.
    refs: Vec<Ref<'a>>,
    /// Component files being expanded, to refuse a component that uses itself.
    chain: Vec<(PathBuf, String)>,
    loops: usize,
    /// The parameters declared where the entry is written.
    params: Rc<IndexMap<String, ParamSpec>>,
    /// `frames`, joined (kept with them by `enter`).
    joined: Option<Rc<str>>,
}

impl Scope<'_> {
    fn context(&self) -> Option<String> {
        self.joined.as_deref().map(str::to_string)
    }

    /// Adds a frame (a loop item, an instance).
    fn enter(&mut self, frame: String) {
        self.joined = Some(match &self.joined {
            Some(j) => format!("{j}, {frame}").into(),
            None => frame.as_str().into(),
        });
        self.frames.push(frame);
    }
}

pub struct Compiler<'a> {
    set: &'a RecipeSet,
    source: &'a dyn RecipeSource,
    opts: &'a CompileOptions<'a>,
    renderer: Renderer,
    pub diags: Diagnostics,
    pub warnings: Vec<Diagnostic>,
    pub pending: Vec<Pending<'a>>,
    pub by_id: HashMap<ResourceId, usize>,
    /// Instance label (`use:vhost[shop]`) → its resources (indices into `pending`).
    pub instances: HashMap<String, Vec<usize>>,
    pub instance_secrets: Vec<String>,
    /// `{facts, params, item, key, index, …}`.
    pub ctx: Json,
    /// The recipes' own parameter declarations.
    pub declared_params: Rc<IndexMap<String, ParamSpec>>,
    components: HashMap<PathBuf, Option<Rc<Component>>>,
    component_data: HashMap<PathBuf, Rc<Layers>>,
    declared: usize,
    iterations: usize,
    full: bool,
}

impl<'a> Compiler<'a> {
    pub fn new(
        set: &'a RecipeSet,
        source: &'a dyn RecipeSource,
        opts: &'a CompileOptions<'a>,
        renderer: Renderer,
        ctx: Json,
    ) -> Self {
        Self {
            set,
            source,
            opts,
            renderer,
            diags: Diagnostics::default(),
            warnings: Vec::new(),
            pending: Vec::new(),
            by_id: HashMap::new(),
            instances: HashMap::new(),
            instance_secrets: Vec::new(),
            ctx,
            declared_params: Rc::default(),
            components: HashMap::new(),
            component_data: HashMap::new(),
            declared: 0,
            iterations: 0,
            full: false,
        }
    }

    fn root_dir(&self) -> PathBuf {
        self.set.files.first().map(|f| f.dir().to_path_buf()).unwrap_or_default()
    }

    /// Expands one recipe file's resources.
    pub fn recipe_file(&mut self, file: &'a SourceFile, conditional: bool) {
        let scope = Scope { conditional, params: self.declared_params.clone(), ..Scope::default() };
        self.resource_list(FileRef::Set(file), &YamlPath::root(), "resources", &scope);
    }

    fn resource_list(&mut self, file: FileRef<'a>, at: &YamlPath, key: &str, scope: &Scope<'a>) {
        let Some(items) = lookup_yaml(&file.doc, at).and_then(|m| m.get(key)) else { return };
        let base = at.key(key);
        let Value::Sequence(items) = items else {
            self.push(file.diag_value(&base, format!("`{key}` must be a list")), scope);
            return;
        };
        for i in 0..items.len() {
            if self.full {
                return;
            }
            self.entry(file.clone(), &base.index(i), scope);
        }
    }

    fn push(&mut self, mut d: Diagnostic, scope: &Scope) {
        if d.context.is_none() {
            d.context = scope.context();
        }
        self.diags.push(d);
    }

    fn entry(&mut self, file: FileRef<'a>, path: &YamlPath, scope: &Scope<'a>) {
        // Borrowed from a handle of our own, so `self` stays free to change.
        let doc = file.clone();
        let Some(item) = lookup_yaml(&doc.doc, path) else { return };
        let Value::Mapping(map) = item else {
            self.push(file.diag_value(path, "a resource is a mapping such as `- file: /etc/motd`"), scope);
            return;
        };
        if map.contains_key("for_each") {
            self.for_each(file, map, path, scope);
        } else if map.contains_key("use") {
            self.instance(file, map, path, scope);
        } else {
            self.resource(file, map, path, scope);
        }
    }

    /// Renders a condition in the current scope, checks what it reads, and
    /// evaluates it (true during validation: every branch is checked).
    fn condition(&mut self, file: &FileRef<'a>, w: &Value, at: &YamlPath, scope: &Scope<'a>, id: &str) -> Option<bool> {
        let mut w = w.clone();
        let mut rd = Diagnostics::default();
        render_value(&mut w, at, file, &self.ctx, &self.renderer, self.opts, &mut rd);
        for d in rd.0 {
            self.push(d.resource(id), scope);
        }
        let c = match serde_path_to_error::deserialize::<_, When>(w) {
            Ok(c) => c,
            Err(e) => {
                self.push(crate::typing::serde_diag(file, at, &e, Some(id.to_string()), When::KEYS), scope);
                return None;
            }
        };
        let mut bad = false;
        for p in c.problems() {
            bad = true;
            self.push(file.diag_value(at, p).resource(id), scope);
        }
        for (is_fact, subject) in c.subjects() {
            if let Some(d) = self.check_subject(file, at, is_fact, subject, &scope.params) {
                bad = true;
                self.push(d.resource(id), scope);
            }
        }
        if bad {
            return None;
        }
        Some(self.opts.placeholder_facts || c.eval(&self.ctx["facts"], &self.ctx["params"]))
    }

    fn check_subject(
        &self,
        file: &SourceFile,
        at: &YamlPath,
        is_fact: bool,
        subject: &str,
        params: &IndexMap<String, ParamSpec>,
    ) -> Option<Diagnostic> {
        if is_fact {
            if known_fact(self.opts.fact_skeleton, subject) {
                return None;
            }
            let known = crate::render::leaf_paths(self.opts.fact_skeleton);
            return Some(
                file.diag_value(at, format!("unknown fact `{subject}`"))
                    .hint(did_you_mean(subject, known.iter().map(String::as_str))),
            );
        }
        let top = subject.split('.').next().unwrap_or(subject);
        if params.contains_key(top) {
            return None;
        }
        Some(
            file.diag_value(at, format!("unknown parameter `{subject}`"))
                .hint(did_you_mean(top, params.keys().map(String::as_str))),
        )
    }

    /// `for_each` over a list or a map, around one entry or a block of them.
    fn for_each(&mut self, file: FileRef<'a>, map: &Mapping, path: &YamlPath, scope: &Scope<'a>) {
        let block = map.contains_key("resources");
        if block {
            for k in map.keys() {
                let key = k.as_str().unwrap_or("?");
                if !["for_each", "as", "when", "resources"].contains(&key) {
                    self.push(
                        file.diag_key(&path.key(key), format!("unknown key `{key}` in a for_each block"))
                            .hint(Some("a block has `for_each`, `as`, `when` and `resources`".into())),
                        scope,
                    );
                }
            }
        }
        if scope.loops >= MAX_LOOP_DEPTH {
            let d = file.diag_key(
                &path.key("for_each"),
                format!("loops nested more than {MAX_LOOP_DEPTH} deep (limit: recipe.max_loop_depth)"),
            );
            self.push(d, scope);
            return;
        }
        let var = match map.get("as") {
            None => None,
            Some(Value::String(v))
                if !v.is_empty()
                    && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    && !RESERVED.contains(&v.as_str()) =>
            {
                Some(v.clone())
            }
            Some(_) => {
                let d = file.diag_value(
                    &path.key("as"),
                    format!("`as` names the loop variable: letters, digits or `_`, not one of {}", RESERVED.join(", ")),
                );
                self.push(d, scope);
                return;
            }
        };
        let Some(items) = self.loop_items(&file, map.get("for_each"), &path.key("for_each"), scope) else { return };

        let saved: Vec<(String, Option<Json>)> = ["item", "key", "index"]
            .iter()
            .map(|s| s.to_string())
            .chain(var.clone())
            .map(|k| {
                let old = self.ctx.as_object().and_then(|m| m.get(&k)).cloned();
                (k, old)
            })
            .collect();
        for (index, key, item) in items {
            self.iterations += 1;
            if self.iterations > MAX_ITERATIONS {
                let d = file.diag_key(
                    &path.key("for_each"),
                    format!(
                        "more than {MAX_ITERATIONS} loop iterations in one recipe set (limit: recipe.max_iterations)"
                    ),
                );
                self.push(d, scope);
                self.full = true;
                break;
            }
            if self.full {
                break;
            }
            let mut child = scope.clone();
            child.loops += 1;
            child.enter(frame(key.as_deref(), index, &item));
            if let Some(m) = self.ctx.as_object_mut() {
                if let Some(v) = &var {
                    m.insert(
                        v.clone(),
                        json!({ "item": item.clone(), "key": key.clone().map(Json::from), "index": index }),
                    );
                }
                m.insert("index".into(), Json::from(index));
                m.insert("key".into(), key.map(Json::from).unwrap_or(Json::Null));
                m.insert("item".into(), item);
            }
            if block {
                if let Some(w) = map.get("when") {
                    child.conditional = true;
                    match self.condition(&file, w, &path.key("when"), &child, "for_each") {
                        Some(true) => {}
                        Some(false) => child.disabled = true,
                        None => continue,
                    }
                }
                self.resource_list(file.clone(), path, "resources", &child);
            } else {
                let mut single = map.clone();
                single.remove("for_each");
                single.remove("as");
                let first = single.keys().next().and_then(Value::as_str).unwrap_or("").to_string();
                if !single.contains_key("use")
                    && Kind::parse(&first).is_none()
                    && !single.keys().any(|k| k.as_str().and_then(Kind::parse).is_some())
                {
                    let d = file
                        .diag_key(&path.key(first.clone()), format!("unknown key `{first}` in a for_each"))
                        .hint(Some(did_you_mean(&first, ["resources"]).unwrap_or_else(|| {
                            "a for_each repeats a block (`resources:`), a resource or a component instance".into()
                        })));
                    self.push(d, scope);
                    break;
                }
                if single.contains_key("use") {
                    self.instance(file.clone(), &single, path, &child);
                } else {
                    self.resource(file.clone(), &single, path, &child);
                }
            }
        }
        if let Some(m) = self.ctx.as_object_mut() {
            for (k, old) in saved {
                match old {
                    Some(v) => m.insert(k, v),
                    None => m.remove(&k),
                };
            }
        }
    }

    /// The items a loop runs over: `(index, key, item)`.
    fn loop_items(
        &mut self,
        file: &FileRef<'a>,
        source: Option<&Value>,
        at: &YamlPath,
        scope: &Scope<'a>,
    ) -> Option<Vec<(usize, Option<String>, Json)>> {
        let value = match source {
            Some(Value::String(s)) if is_template(s) => {
                match whole_reference(s).and_then(|r| crate::values::lookup(&self.ctx, r)) {
                    Some(v) => v.clone(),
                    None => match self.renderer.render(s, &self.ctx) {
                        Err(f) if tolerated(&f, self.opts) => return None,
                        Err(f) => {
                            self.push(file.diag_value(at, f.message).hint(f.hint), scope);
                            return None;
                        }
                        Ok(text) => Json::String(text),
                    },
                }
            }
            Some(v @ (Value::Sequence(_) | Value::Mapping(_))) => {
                let mut v = v.clone();
                let mut rd = Diagnostics::default();
                render_value(&mut v, at, file, &self.ctx, &self.renderer, self.opts, &mut rd);
                let failed = !rd.is_empty();
                for d in rd.0 {
                    self.push(d, scope);
                }
                if failed {
                    return None;
                }
                to_json(&v)
            }
            Some(other) => to_json(other),
            None => Json::Null,
        };
        match value {
            Json::Array(a) => Some(a.into_iter().enumerate().map(|(i, v)| (i, None, v)).collect()),
            Json::Object(m) => Some(m.into_iter().enumerate().map(|(i, (k, v))| (i, Some(k), v)).collect()),
            // An optional parameter that is not set: nothing to repeat.
            Json::Null => Some(Vec::new()),
            other => {
                let d =
                    file.diag_value(at, format!("for_each needs a list or a map, got {}", params::describe(&other)));
                self.push(d, scope);
                None
            }
        }
    }

    /// A component instance: `use: NAME`, `name`, `with`, and optionally
    /// `when`, `requires`, `notifies` (for every resource of the instance).
    fn instance(&mut self, file: FileRef<'a>, map: &Mapping, path: &YamlPath, scope: &Scope<'a>) {
        const KEYS: &[&str] = &["use", "name", "with", "when", "requires", "notifies"];
        for k in map.keys() {
            let key = k.as_str().unwrap_or("?");
            if !KEYS.contains(&key) {
                let d = file.diag_key(&path.key(key), format!("unknown key `{key}` in a component instance")).hint(
                    did_you_mean(key, KEYS.iter().copied())
                        .or_else(|| Some(format!("an instance has {}", KEYS.join(", ")))),
                );
                self.push(d, scope);
            }
        }
        let Some(Value::String(comp_name)) = map.get("use") else {
            self.push(file.diag_value(&path.key("use"), "`use` names a component, e.g. `use: vhost`"), scope);
            return;
        };
        let mut rendered = Mapping::new();
        let mut rd = Diagnostics::default();
        for key in ["name", "with", "requires", "notifies"] {
            if let Some(v) = map.get(key) {
                let mut v = v.clone();
                render_value(&mut v, &path.key(key), &file, &self.ctx, &self.renderer, self.opts, &mut rd);
                rendered.insert(Value::from(key), v);
            }
        }
        let failed = !rd.is_empty();
        for d in rd.0 {
            self.push(d, scope);
        }
        if failed {
            return;
        }
        let name = match rendered.get("name") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                let at = if map.contains_key("name") { path.key("name") } else { path.clone() };
                let d = file.diag_value(&at, format!("`use: {comp_name}` needs a `name` for the instance"));
                self.push(d, scope);
                return;
            }
        };
        let Some(comp) = self.find_component(&file, comp_name, &path.key("use"), scope) else { return };
        let label = format!("use:{}[{}]", comp.name, name);
        if let Some(pos) = scope.chain.iter().position(|(p, _)| *p == *comp.file.path) {
            let names: Vec<&str> =
                scope.chain[pos..].iter().map(|(_, n)| n.as_str()).chain(std::iter::once(comp.name.as_str())).collect();
            let d = file
                .diag_value(&path.key("use"), format!("component `{}` uses itself: {}", comp.name, names.join(" → ")));
            self.push(d, scope);
            return;
        }
        if scope.chain.len() >= component::MAX_DEPTH {
            let d = file.diag_value(
                &path.key("use"),
                format!("components used inside one another more than {} deep", component::MAX_DEPTH),
            );
            self.push(d, scope);
            return;
        }
        let mut child = scope.clone();
        child.enter(label.clone());
        if let Some(w) = map.get("when") {
            child.conditional = true;
            match self.condition(&file, w, &path.key("when"), scope, &label) {
                Some(true) => {}
                Some(false) => child.disabled = true,
                None => return,
            }
        }
        for (field, notify) in [("requires", false), ("notifies", true)] {
            match rendered.get(field) {
                None => {}
                Some(Value::Sequence(list)) => {
                    for (j, r) in list.iter().enumerate() {
                        let target = match r {
                            Value::String(s) => s.clone(),
                            _ => {
                                self.push(
                                    file.diag_value(&path.key(field).index(j), "a reference is `type:name`"),
                                    scope,
                                );
                                continue;
                            }
                        };
                        child.refs.push(Ref {
                            notify,
                            target,
                            file: file.clone(),
                            at: path.key(field).index(j),
                            context: scope.context(),
                        });
                    }
                }
                Some(_) => {
                    self.push(file.diag_value(&path.key(field), format!("`{field}` is a list of references")), scope)
                }
            }
        }

        // The instance's parameters: `with`, then the component's data, then defaults.
        let with = match rendered.get("with") {
            None | Some(Value::Null) => serde_json::Map::new(),
            Some(Value::Mapping(_)) => match to_json(&rendered["with"]) {
                Json::Object(m) => m,
                _ => serde_json::Map::new(),
            },
            Some(_) => {
                self.push(file.diag_value(&path.key("with"), "`with` is a mapping of parameter name to value"), scope);
                return;
            }
        };
        let layers = self.component_layers(&comp);
        let overrides = Overrides { typed: with, ..Overrides::default() };
        let resolved = params::resolve_layered(&comp.specs, &overrides, &layers.layers);
        let mut bad = false;
        for p in &resolved.problems {
            bad = true;
            let mut d = match &p.at {
                ParamProblemAt::Override(n) => {
                    let at = path.key("with").key(n.clone());
                    if comp.specs.contains_key(n) {
                        file.diag_value(&crate::data::value_path(&at, &p.path), p.message.clone())
                    } else {
                        file.diag_key(&at, format!("component `{}` has no parameter `{n}`", comp.name))
                    }
                }
                ParamProblemAt::Declaration(n) => match comp.specs.get(n) {
                    Some(spec) if spec.default.is_some() => crate::compile::declaration_diag(&comp.file, n, spec, p),
                    _ => file
                        .diag_value(
                            &if map.contains_key("with") { path.key("with") } else { path.clone() },
                            format!("component `{}` needs parameter `{n}`, which has no default", comp.name),
                        )
                        .hint(Some(format!("give it in `with: {{{n}: VALUE}}`"))),
                },
                ParamProblemAt::Layer(i, n) => match layers.files.get(*i) {
                    Some(f) => f.diag_value(
                        &crate::data::value_path(&YamlPath::root().key(n.clone()), &p.path),
                        p.message.clone(),
                    ),
                    None => Diagnostic::new(&comp.file.path, p.message.clone()),
                },
            };
            if d.hint.is_none() {
                d = d.hint(p.hint.clone());
            }
            d.context = child.context();
            self.diags.push(d);
        }
        if bad {
            return;
        }
        for (k, spec) in &comp.specs {
            if spec.sensitive {
                if let Some(v) = resolved.values.get(k) {
                    crate::compile::secret_texts(v, &mut self.instance_secrets);
                }
            }
        }
        child.instances.push(label);
        child.chain.push((comp.file.path.clone(), comp.name.clone()));
        child.params = Rc::new(comp.specs.clone());
        child.loops = 0;

        // A fresh context: the facts, the instance's parameters and its name;
        // the caller's loop variables stay outside.
        let mut outer = std::mem::replace(&mut self.ctx, Json::Null);
        let facts = outer.as_object_mut().and_then(|m| m.remove("facts")).unwrap_or(Json::Null);
        self.ctx = json!({ "facts": facts, "params": Json::Object(resolved.values), "name": name });
        self.resource_list(FileRef::Own(comp.file.clone()), &YamlPath::root(), "resources", &child);
        let inner = std::mem::replace(&mut self.ctx, Json::Null);
        if let (Json::Object(mut inner), Some(o)) = (inner, outer.as_object_mut()) {
            o.insert("facts".into(), inner.remove("facts").unwrap_or(Json::Null));
        }
        self.ctx = outer;
    }

    fn component_layers(&mut self, comp: &Rc<Component>) -> Rc<Layers> {
        if let Some(l) = self.component_data.get(&comp.file.path) {
            return l.clone();
        }
        let facts_ctx = CompileOptions { ..*self.opts };
        let layers = Rc::new(crate::data::load(
            &comp.file,
            &comp.levels,
            &comp.specs,
            self.source,
            &self.renderer,
            &facts_ctx,
            &mut self.diags,
            &mut self.warnings,
        ));
        self.component_data.insert(comp.file.path.clone(), layers.clone());
        layers
    }

    fn find_component(
        &mut self,
        file: &FileRef<'a>,
        name: &str,
        at: &YamlPath,
        scope: &Scope<'a>,
    ) -> Option<Rc<Component>> {
        let root = self.root_dir();
        let candidates = component::candidates(name, file.dir(), &root);
        for c in &candidates {
            if let Some(found) = self.components.get(c) {
                match found {
                    Some(comp) => return Some(comp.clone()),
                    None => continue,
                }
            }
            match self.source.read(c) {
                Ok(bytes) => {
                    let mut d = Diagnostics::default();
                    let comp = component::load(c, bytes, &mut d).map(Rc::new);
                    for mut x in d.0 {
                        x.context = scope.context();
                        self.diags.push(x);
                    }
                    self.components.insert(c.clone(), comp.clone());
                    return comp;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    self.components.insert(c.clone(), None);
                }
                Err(e) => {
                    self.push(file.diag_value(at, format!("cannot read component {}: {e}", c.display())), scope);
                    return None;
                }
            }
        }
        let known: Vec<String> = [file.dir().join("components"), root.join("components")]
            .iter()
            .flat_map(|d| self.source.list(d))
            .filter_map(|n| n.strip_suffix(".yaml").map(str::to_string))
            .collect();
        let looked: Vec<String> = candidates.iter().map(|c| c.display().to_string()).collect();
        let d = file
            .diag_value(at, format!("unknown component `{name}` (looked for {})", looked.join(", ")))
            .hint(did_you_mean(name, known.iter().map(String::as_str)));
        self.push(d, scope);
        None
    }

    /// One resource, compiled in the current scope.
    fn resource(&mut self, file: FileRef<'a>, map: &Mapping, path: &YamlPath, scope: &Scope<'a>) {
        self.declared += 1;
        if self.declared > MAX_RESOURCES {
            let d = file.diag_value(
                path,
                format!("more than {MAX_RESOURCES} resources in one recipe set (limit: recipe.max_resources)"),
            );
            self.push(d, scope);
            self.full = true;
            return;
        }
        let start = self.diags.len();
        let p = self.compile_resource(file, map, path, scope);
        for d in &mut self.diags.0[start..] {
            if d.context.is_none() {
                d.context = scope.context();
            }
        }
        if let Some(p) = p {
            self.insert(p, scope);
        }
    }

    fn insert(&mut self, mut p: Pending<'a>, scope: &Scope<'a>) {
        let idx = match self.by_id.get(&p.res.id) {
            Some(&prev) if same_desired(&self.pending[prev].res, &p.res) => {
                // The same declaration twice: one resource, with the union of its edges.
                let first = &mut self.pending[prev];
                for r in p.refs {
                    if !first.refs.iter().any(|x| x.notify == r.notify && x.target == r.target) {
                        first.refs.push(r);
                    }
                }
                first.res.sensitive |= p.res.sensitive;
                prev
            }
            Some(&prev) => {
                let other = &self.pending[prev];
                if !self.opts.placeholder_facts && !other.res.enabled {
                    // A declaration whose condition is false yields to one that holds.
                    if p.res.enabled {
                        self.pending[prev] = p;
                    }
                    prev
                } else if !p.res.enabled && !self.opts.placeholder_facts {
                    return;
                } else if self.opts.placeholder_facts && (p.conditional || other.conditional) {
                    // Without a host, conditions cannot tell which one applies.
                    return;
                } else {
                    let (l, c) = other.file.locations().value(&other.path);
                    let first = match &other.context {
                        Some(ctx) => format!("{}:{l}:{c} in {ctx}", other.file.path.display()),
                        None => format!("{}:{l}:{c}", other.file.path.display()),
                    };
                    let mut d = p
                        .file
                        .diag_value(&p.path, format!("declared twice with different properties (first at {first})"))
                        .resource(p.res.id.to_string());
                    d.context = p.context.take();
                    self.diags.push(d);
                    return;
                }
            }
            None => {
                self.by_id.insert(p.res.id.clone(), self.pending.len());
                self.pending.push(p);
                self.pending.len() - 1
            }
        };
        for label in &scope.instances {
            let members = self.instances.entry(label.clone()).or_default();
            if !members.contains(&idx) {
                members.push(idx);
            }
        }
    }

    fn compile_resource(
        &mut self,
        file: FileRef<'a>,
        map: &Mapping,
        path: &YamlPath,
        scope: &Scope<'a>,
    ) -> Option<Pending<'a>> {
        // The type is the first key that names one (`- file: /etc/motd`); later
        // keys are properties, even when they also name a type (`group: root`).
        let Some((kind, name_value)) =
            map.iter().find_map(|(k, v)| k.as_str().and_then(Kind::parse).map(|kind| (kind, v)))
        else {
            let first = map.keys().next().and_then(Value::as_str).unwrap_or("?");
            let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
            let d = file.diag_key(&path.key(first), format!("unknown resource type `{first}`")).hint(
                did_you_mean(first, names.iter().copied().chain(["for_each", "use"]))
                    .or_else(|| Some(format!("known types: {}", names.join(", ")))),
            );
            self.diags.push(d);
            return None;
        };
        let raw_name = match name_value {
            Value::String(s) if !s.is_empty() => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => {
                let d =
                    file.diag_value(&path.key(kind.name()), format!("`{kind}` needs a name, e.g. `- {kind}: NAME`"));
                self.diags.push(d);
                return None;
            }
        };

        // The condition is read before anything is rendered: a false condition may
        // guard values that do not exist on this host.
        let mut conditional = scope.conditional;
        let mut enabled = !scope.disabled;
        if let Some(w) = map.get("when") {
            conditional = true;
            match self.condition(&file, w, &path.key("when"), scope, &format!("{kind}:{raw_name}")) {
                Some(holds) => enabled &= holds,
                None => return None,
            }
        }
        // Validation (placeholder facts) checks every resource, whatever its condition.
        if self.opts.placeholder_facts {
            enabled = true;
        }

        // Render every value (except the condition), then split common
        // properties from the type's own.
        let mut render_diags = Diagnostics::default();
        let mut rendered = Mapping::new();
        for (k, v) in map {
            let key = k.as_str().unwrap_or("");
            if key == "when" {
                continue;
            }
            let mut v = v.clone();
            render_entry(&mut v, path, key, &file, &self.ctx, &self.renderer, self.opts, &mut render_diags);
            // A reference to a value that is not set leaves the property unset.
            if !v.is_null() || key == kind.name() {
                rendered.insert(k.clone(), v);
            }
        }
        let name = match rendered.get(kind.name()) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => raw_name.clone(),
        };
        let id = ResourceId::new(kind, name);
        let render_failed = enabled && !render_diags.is_empty();
        if enabled {
            for mut d in render_diags.0 {
                d.resource = Some(id.to_string());
                self.diags.push(d);
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
                self.diags.push(crate::typing::serde_diag(&file, path, &e, Some(id.to_string()), Common::KEYS));
                Common::default()
            }
        };
        crate::typing::stringify_scalars(kind, &mut rendered);
        let spec = crate::typing::typed_spec(kind, rendered, &file, path, &id, &mut self.diags)?;
        // A value that did not render is reported once, not again as a bad value.
        for (field, msg) in spec.problems(&id.name).into_iter().filter(|_| !render_failed) {
            // Without a host, a name made from a host-specific fact is unknown.
            if field.is_empty() && self.opts.placeholder_facts && is_template(&id.name) {
                continue;
            }
            let at = if field.is_empty() { path.key(kind.name()) } else { path.key(field) };
            self.diags.push(file.diag_value(&at, msg).resource(id.to_string()));
        }
        let payload = if enabled { self.payload(&spec, &file, path, &id) } else { None };
        let desired_hash = desired_hash(&id, &spec, payload.as_deref());
        let context = scope.context();
        let mut refs: Vec<Ref<'a>> = Vec::new();
        for (field, list, notify) in [("requires", &common.requires, false), ("notifies", &common.notifies, true)] {
            for (j, r) in list.iter().enumerate() {
                refs.push(Ref {
                    notify,
                    target: r.clone(),
                    file: file.clone(),
                    at: path.key(field).index(j),
                    context: context.clone(),
                });
            }
        }
        refs.extend(scope.refs.iter().cloned());
        let instance = (!scope.instances.is_empty()).then(|| scope.instances.join(" > "));
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
                instance,
            },
            file,
            path: path.clone(),
            refs,
            context,
            conditional,
        })
    }

    fn payload(&mut self, spec: &Spec, file: &SourceFile, path: &YamlPath, id: &ResourceId) -> Option<Vec<u8>> {
        let source = self.source;
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
                    p.source.as_deref().and_then(|s| read(s, &mut self.diags)).map(|(_, b)| b)
                }
            }
            Spec::SystemdUnit(p) if p.state == Presence::Present => {
                if let Some(c) = &p.content {
                    Some(c.clone().into_bytes())
                } else {
                    p.source.as_deref().and_then(|s| read(s, &mut self.diags)).map(|(_, b)| b)
                }
            }
            Spec::Template(p) if p.state == Presence::Present => {
                let (tpath, bytes) = read(p.source.as_deref()?, &mut self.diags)?;
                let Ok(text) = String::from_utf8(bytes) else {
                    self.diags.push(Diagnostic::new(&tpath, "template is not UTF-8 text").resource(id.to_string()));
                    return None;
                };
                // `vars` joins the context for this template only.
                let vars = serde_json::to_value(&p.vars).unwrap_or(Json::Null);
                let old = self.ctx.as_object_mut().and_then(|m| m.insert("vars".into(), vars));
                let out = self.renderer.render(&text, &self.ctx);
                if let Some(m) = self.ctx.as_object_mut() {
                    match old {
                        Some(v) => m.insert("vars".into(), v),
                        None => m.remove("vars"),
                    };
                }
                match out {
                    Ok(out) => Some(out.into_bytes()),
                    Err(f) if tolerated(&f, self.opts) => Some(Vec::new()),
                    Err(f) => {
                        self.diags.push(
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
}

/// How a loop item is named in messages: a map's key, a scalar item itself,
/// or an object item's index (and its `name`, when it has one).
fn frame(key: Option<&str>, index: usize, item: &Json) -> String {
    let shown = |s: &str| crate::names::shown(s);
    match (key, item) {
        (Some(k), _) => format!("for_each item {}", shown(k)),
        (None, Json::String(s)) => format!("for_each item {}", shown(s)),
        (None, Json::Number(n)) => format!("for_each item {n}"),
        (None, Json::Object(m)) => match m.get("name").and_then(Json::as_str) {
            Some(n) => format!("for_each item {index} ({})", shown(n)),
            None => format!("for_each item {index}"),
        },
        (None, _) => format!("for_each item {index}"),
    }
}

/// The YAML node at a path.
fn lookup_yaml<'v>(doc: &'v Value, path: &YamlPath) -> Option<&'v Value> {
    use crate::locate::Seg;
    path.0.iter().try_fold(doc, |v, seg| match (seg, v) {
        (Seg::Key(k), Value::Mapping(m)) => m.get(k.as_str()),
        (Seg::Index(i), Value::Sequence(s)) => s.get(*i),
        _ => None,
    })
}
