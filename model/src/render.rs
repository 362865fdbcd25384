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

/// Every dotted path into a JSON value (`facts.os.family`, …), for suggestions.
pub fn leaf_paths(v: &Value) -> Vec<String> {
    fn walk(v: &Value, prefix: &str, out: &mut Vec<String>) {
        if let Value::Object(m) = v {
            for (k, child) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
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
    fn strict_and_unescaped() {
        let r = Renderer::default();
        let ctx = json!({"facts": {"hostname": "web-1"}, "params": {"site": "a&b.org"}});
        assert_eq!(
            r.render("{{facts.hostname}} <{{params.site}}>", &ctx)
                .unwrap(),
            "web-1 <a&b.org>"
        );
        let e = r.render("{{facts.hostnme}}", &ctx).unwrap_err();
        assert_eq!(e.missing.as_deref(), Some("facts.hostnme"));
        assert_eq!(e.hint.as_deref(), Some("did you mean `facts.hostname`?"));
        assert!(r.render("{{#if}}", &ctx).is_err());
    }
}
