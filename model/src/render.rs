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
        crate::helpers::register(&mut hb);
        Self { hb }
    }
}

/// True if the string contains template syntax (the fast path skips rendering).
pub fn is_template(s: &str) -> bool {
    s.contains("{{")
}

/// Bytes of one template.
pub const MAX_TEMPLATE_BYTES: usize = 4 << 20;
/// Blocks (`{{#if}}`, `{{#each}}`, …) open inside one another.
pub const MAX_BLOCK_DEPTH: usize = 32;
/// Subexpressions (`(eq a (eq b c))`) inside one another.
pub const MAX_SUBEXPR_DEPTH: usize = 16;

/// Refuses templates whose size or nesting would make the parser (which
/// recurses per level) overflow its stack: a linear scan before parsing.
/// Counts conservatively: block openers inside comments count too.
pub fn check_bounds(text: &str) -> Result<(), RenderFailure> {
    let failure = |message: String, offset: usize| {
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before.rfind('\n').map_or(offset, |n| offset - n - 1) + 1;
        RenderFailure { message, line: Some(line), col: Some(col), missing: None, hint: None }
    };
    if text.len() > MAX_TEMPLATE_BYTES {
        return Err(failure(
            format!(
                "the template is {} bytes; the limit is {MAX_TEMPLATE_BYTES} (limit: template.max_bytes)",
                text.len()
            ),
            0,
        ));
    }
    let bytes = text.as_bytes();
    let (mut depth, mut i) = (0usize, 0usize);
    while let Some(found) = text[i..].find("{{") {
        let start = i + found;
        let mut j = start + 2;
        while j < bytes.len() && matches!(bytes[j], b'{' | b'~' | b' ' | b'\t' | b'\n' | b'\r') {
            j += 1;
        }
        match bytes.get(j) {
            Some(b'#' | b'^') => {
                depth += 1;
                if depth > MAX_BLOCK_DEPTH {
                    return Err(failure(
                        format!("blocks nested more than {MAX_BLOCK_DEPTH} deep (limit: template.max_block_depth)"),
                        start,
                    ));
                }
            }
            Some(b'/') => depth = depth.saturating_sub(1),
            _ => {}
        }
        let end = text[j..].find("}}").map_or(bytes.len(), |e| j + e);
        let mut parens = 0usize;
        for &b in &bytes[j..end] {
            match b {
                b'(' => {
                    parens += 1;
                    if parens > MAX_SUBEXPR_DEPTH {
                        return Err(failure(
                            format!(
                                "subexpressions nested more than {MAX_SUBEXPR_DEPTH} deep (limit: template.max_subexpr_depth)"
                            ),
                            start,
                        ));
                    }
                }
                b')' => parens = parens.saturating_sub(1),
                _ => {}
            }
        }
        i = end.max(start + 2);
    }
    Ok(())
}

impl Renderer {
    /// Renders `text` against `ctx`.
    pub fn render(&self, text: &str, ctx: &Value) -> Result<String, RenderFailure> {
        if let Some(out) = interpolate(text, ctx) {
            return Ok(out);
        }
        check_bounds(text)?;
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

    #[test]
    fn nesting_is_bounded_before_parsing() {
        let r = Renderer::default();
        let ctx = json!({"t": true});
        // At the limit it renders, on a thread with no more stack than a runtime worker.
        let at_limit = format!("{}x{}", "{{#if t}}".repeat(MAX_BLOCK_DEPTH), "{{/if}}".repeat(MAX_BLOCK_DEPTH));
        let subexpr =
            format!("{{{{#if {}t{}}}}}y{{{{/if}}}}", "(not ".repeat(MAX_SUBEXPR_DEPTH), ")".repeat(MAX_SUBEXPR_DEPTH));
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                let r = Renderer::default();
                assert_eq!(r.render(&at_limit, &ctx).unwrap(), "x");
                assert_eq!(r.render(&subexpr, &ctx).unwrap(), "y");
            })
            .unwrap()
            .join()
            .unwrap();
        let deep = format!("{}x{}", "{{#if t}}".repeat(5_000), "{{/if}}".repeat(5_000));
        let e = r.render(&deep, &json!({"t": true})).unwrap_err();
        assert!(e.message.contains("template.max_block_depth"), "{e:?}");
        assert_eq!((e.line, e.col), (Some(1), Some(9 * MAX_BLOCK_DEPTH + 1)));
        let e = r.render(&format!("{{{{x {}}}}}", "(a ".repeat(1_000)), &json!({})).unwrap_err();
        assert!(e.message.contains("template.max_subexpr_depth"), "{e:?}");
        // Sequential blocks are not nested.
        assert!(check_bounds(&"{{#if t}}a{{/if}}".repeat(1_000)).is_ok());
    }
}
