//! Handlebars rendering in strict mode with no HTML escaping: a missing value
//! is an error, never an empty string.

use handlebars::{Handlebars, RenderErrorReason};
use serde_json::Value;

use crate::suggest::did_you_mean;

/// Why a template did not render.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct RenderFailure {
    pub message: String,
    /// Position inside the template text (1-based), when known.
    pub line: Option<usize>,
    pub col: Option<usize>,
    /// The variable that was missing, when that was the problem.
    pub missing: Option<String>,
    pub hint: Option<String>,
}

/// A strict, non-escaping handlebars renderer.
pub struct Renderer {
    hb: Handlebars<'static>,
}

impl Default for Renderer {
    fn default() -> Self {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        hb.register_escape_fn(handlebars::no_escape);
        Self { hb }
    }
}

/// True if the string contains template syntax (the fast path skips rendering).
pub fn is_template(s: &str) -> bool {
    s.contains("{{")
}

impl Renderer {
    /// Renders `text` against `ctx`.
    pub fn render(&self, text: &str, ctx: &Value) -> Result<String, RenderFailure> {
        if let Some(out) = interpolate(text, ctx) {
            return Ok(out);
        }
        self.hb.render_template(text, ctx).map_err(|e| {
            let (mut line, mut col) = (e.line_no, e.column_no);
            let mut missing = None;
            let message = match e.reason() {
                RenderErrorReason::MissingVariable(Some(v)) => {
                    missing = Some(v.clone());
                    format!("template references `{v}`, which has no value")
                }
                RenderErrorReason::MissingVariable(None) => "template references a missing value".to_string(),
                RenderErrorReason::TemplateError(t) => {
                    if let Some((l, c)) = t.pos() {
                        (line, col) = (Some(l), Some(c));
                    }
                    let reason = t.reason().to_string();
                    // pest lists every token it expected; that helps nobody.
                    match reason.split_once(": expected") {
                        Some((head, _)) => {
                            format!("template syntax error: {head} (an unclosed {{{{#block}}}}, or a stray brace?)")
                        }
                        None => format!("template syntax error: {reason}"),
                    }
                }
                RenderErrorReason::HelperNotFound(h) => format!("unknown template helper `{h}`"),
                other => format!("template error: {other}"),
            };
            let hint = missing.as_deref().and_then(|m| {
                let paths = leaf_paths(ctx);
                did_you_mean(m, paths.iter().map(String::as_str))
            });
            RenderFailure { message, line, col, missing, hint }
        })
    }
}

/// The fast path for the common case, a string whose only template syntax is
/// plain `{{a.b.c}}` references to scalar values: substitutes them without
/// parsing a template (a recipe of 1,000 resources has thousands of these).
/// Returns None for anything else (helpers, blocks, whitespace control,
/// missing or non-scalar values), which handlebars then renders, so results
/// and errors are exactly handlebars' own.
fn interpolate(text: &str, ctx: &Value) -> Option<String> {
    let mut out = String::with_capacity(text.len() + 32);
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let (before, after) = rest.split_at(start);
        if before.ends_with('\\') {
            return None;
        }
        out.push_str(before);
        let after = &after[2..];
        let end = after.find("}}")?;
        let expr = after[..end].trim();
        let simple = !expr.is_empty()
            && !after.starts_with('{')
            && expr.split('.').all(|seg| {
                !seg.is_empty()
                    && seg != "this"
                    && seg != "else"
                    && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            });
        if !simple {
            return None;
        }
        let mut v = ctx;
        for seg in expr.split('.') {
            v = v.as_object()?.get(seg)?;
        }
        match v {
            Value::String(s) => out.push_str(s),
            Value::Number(n) => out.push_str(&n.to_string()),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            _ => return None,
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Some(out)
}

/// Every dotted path into a JSON value (`facts.os.family`, …), for suggestions.
pub fn leaf_paths(v: &Value) -> Vec<String> {
    fn walk(v: &Value, prefix: &str, out: &mut Vec<String>) {
        if let Value::Object(m) = v {
            for (k, child) in m {
                let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                out.push(p.clone());
                walk(child, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(v, "", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fast_path_matches_handlebars() {
        let ctx = json!({"facts": {"hostname": "web-1", "cpu": {"count": 2}, "ok": true, "n": 1.5, "list": [1]},
                         "params": {"site": "a&b", "root": ""}});
        let hb = Renderer::default().hb;
        for t in [
            "{{params.root}}/etc/motd",
            "x {{ facts.hostname }} y {{facts.cpu.count}}{{facts.ok}} {{facts.n}}",
            "{{params.site}}<{{params.site}}>",
            "no template at all",
            "{{facts.list}}",
            "{{#if facts.ok}}yes{{/if}}",
            "{{{params.site}}}",
            "{{~facts.hostname~}} x",
        ] {
            let fast = interpolate(t, &ctx);
            if let Some(f) = &fast {
                assert_eq!(f, &hb.render_template(t, &ctx).unwrap(), "{t}");
            }
        }
        assert!(interpolate("{{facts.nope}}", &ctx).is_none(), "missing values go to handlebars for its error");
        assert!(interpolate("{{#if facts.ok}}y{{/if}}", &ctx).is_none());
    }

    #[test]
    fn strict_and_unescaped() {
        let r = Renderer::default();
        let ctx = json!({"facts": {"hostname": "web-1"}, "params": {"site": "a&b.org"}});
        assert_eq!(r.render("{{facts.hostname}} <{{params.site}}>", &ctx).unwrap(), "web-1 <a&b.org>");
        let e = r.render("{{facts.hostnme}}", &ctx).unwrap_err();
        assert_eq!(e.missing.as_deref(), Some("facts.hostnme"));
        assert_eq!(e.hint.as_deref(), Some("did you mean `facts.hostname`?"));
        assert!(r.render("{{#if}}", &ctx).is_err());
    }
}
