//! Rendering the values of a recipe entry in its scope. A string that is
//! exactly one reference (`"{{params.groups}}"`, `"{{item.uid}}"`) takes the
//! referenced value with its type, so lists, maps, numbers and booleans flow
//! into typed properties; any other template renders to text.

use serde_json::Value as Json;
use serde_yaml::Value;

use crate::compile::CompileOptions;
use crate::diag::Diagnostics;
use crate::load::SourceFile;
use crate::locate::YamlPath;
use crate::render::{RenderFailure, Renderer, is_template};

/// The path of a string that is one plain reference and nothing else
/// (`{{ item.uid }}` → `item.uid`).
pub fn whole_reference(s: &str) -> Option<&str> {
    // Nothing around the braces: `"{{params.text}}\n"` is text.
    let inner = s.strip_prefix("{{")?.strip_suffix("}}")?;
    if inner.starts_with('{') || inner.contains("{{") || inner.contains("}}") {
        return None;
    }
    let path = inner.trim();
    let plain = !path.is_empty()
        && path.split('.').all(|seg| {
            !seg.is_empty()
                && seg != "this"
                && seg != "else"
                && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        });
    plain.then_some(path)
}

/// Looks up a dotted path in the context; list items by index. A null value
/// is found (it means "not set").
pub fn lookup<'a>(ctx: &'a Json, path: &str) -> Option<&'a Json> {
    path.split('.').try_fold(ctx, |v, seg| match v {
        Json::Object(m) => m.get(seg),
        Json::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// A JSON value as YAML (for typed properties).
pub fn to_yaml(v: &Json) -> Value {
    serde_yaml::to_value(v).unwrap_or(Value::Null)
}

/// A YAML value as JSON (loop sources, component arguments, data files).
pub fn to_json(v: &Value) -> Json {
    serde_json::to_value(v).unwrap_or(Json::Null)
}

/// True if rendering failed only because the placeholder facts cannot know a
/// host-specific value (a custom fact, an interface name).
pub fn tolerated(f: &RenderFailure, opts: &CompileOptions) -> bool {
    opts.placeholder_facts
        && f.missing
            .as_deref()
            .and_then(|m| m.strip_prefix("facts."))
            .is_some_and(|m| crate::compile::known_fact(opts.fact_skeleton, m))
}

/// `render_value` for the entry `key` below `parent`: the path is built only
/// when it is needed (a problem, or a nested value), so the common case of a
/// scalar property allocates none.
#[allow(clippy::too_many_arguments)]
pub fn render_entry(
    v: &mut Value,
    parent: &YamlPath,
    key: &str,
    file: &SourceFile,
    ctx: &Json,
    renderer: &Renderer,
    opts: &CompileOptions,
    diags: &mut Diagnostics,
) {
    match v {
        Value::String(s) if !is_template(s) => {}
        Value::Bool(_) | Value::Number(_) | Value::Null => {}
        Value::String(s) => {
            if let Some(found) = whole_reference(s).and_then(|r| lookup(ctx, r)) {
                *v = to_yaml(found);
                return;
            }
            let mut scratch = Diagnostics::default();
            render_value(v, &YamlPath::root(), file, ctx, renderer, opts, &mut scratch);
            if !scratch.is_empty() {
                let at = parent.key(key);
                for mut d in scratch.0 {
                    let (l, c) = file.locations().value(&at);
                    d.line = l;
                    d.col = c;
                    diags.push(d);
                }
            }
        }
        _ => render_value(v, &parent.key(key), file, ctx, renderer, opts, diags),
    }
}

/// Renders every string inside `v` against `ctx`, in place. A whole
/// reference keeps its type; one the placeholder facts cannot know becomes
/// null (not set) during validation.
pub fn render_value(
    v: &mut Value,
    path: &YamlPath,
    file: &SourceFile,
    ctx: &Json,
    renderer: &Renderer,
    opts: &CompileOptions,
    diags: &mut Diagnostics,
) {
    match v {
        Value::String(s) if is_template(s) => {
            if let Some(r) = whole_reference(s) {
                if let Some(found) = lookup(ctx, r) {
                    *v = to_yaml(found);
                    return;
                }
            }
            match renderer.render(s, ctx) {
                Ok(out) => *s = out,
                Err(f) if tolerated(&f, opts) => {
                    if whole_reference(s).is_some() {
                        *v = Value::Null;
                    }
                }
                Err(f) => diags.push(file.diag_value(path, f.message).hint(f.hint)),
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_references_only() {
        assert_eq!(whole_reference("{{params.groups}}"), Some("params.groups"));
        assert_eq!(whole_reference("{{ item.uid }}"), Some("item.uid"));
        assert_eq!(whole_reference(" {{ item.uid }}"), None);
        assert_eq!(whole_reference("{{params.text}}\n"), None, "a trailing newline is text");
        assert_eq!(whole_reference("/home/{{key}}"), None);
        assert_eq!(whole_reference("{{a}}{{b}}"), None);
        assert_eq!(whole_reference("{{{a}}}"), None);
        assert_eq!(whole_reference("{{join a ','}}"), None);
        assert_eq!(whole_reference("{{#if a}}x{{/if}}"), None);
    }
}
