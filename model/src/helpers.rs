//! Template helpers beyond handlebars' built-ins: text (`upper`, `replace`,
//! `indent`, `regex_replace`, …), lists and mappings (`join`, `sort`, `keys`,
//! …), encodings (`to_json`, `to_yaml`) and tests (`default`, `contains`,
//! `version_compare`). See docs/template-helpers.md.
//!
//! Every helper returns a JSON value rather than writing text, so that they
//! compose as subexpressions (`{{join (sort (keys params.users)) ", "}}`) and
//! their results keep their type (`{{#if (contains …)}}` sees a boolean).
//!
//! Templates come from recipes, which may come from anyone allowed to push
//! one, so helpers treat every argument as hostile: wrong counts and types
//! are errors that name the helper and the argument, nothing indexes without
//! a check, and no helper builds a result larger than a template may be
//! ([`MAX_TEMPLATE_BYTES`]): sizes that arguments multiply (`indent`'s width,
//! `replace`'s replacement) are checked before anything is allocated.

mod args;
mod collections;
mod encode;
mod tests_and_fallbacks;
mod text;

use handlebars::{Context, Handlebars, Helper, HelperDef, RenderContext, RenderError, RenderErrorReason, ScopedJson};
use serde_json::Value;

use crate::render::MAX_TEMPLATE_BYTES;

pub use args::Args;

/// Why a helper refused its arguments. Rendered as the template's error.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HelperError {
    /// An argument refers to a value that does not exist: strict mode's
    /// "missing value" error, with its path, as for `{{params.nope}}`.
    #[error("template references `{0}`, which has no value")]
    Missing(String),
    #[error("{helper}: expects {expected}, got {got} (usage: {usage})")]
    Count { helper: &'static str, expected: String, got: usize, usage: &'static str },
    #[error("{helper}: expects {expected} as {param}, got {got}")]
    Type { helper: &'static str, param: &'static str, expected: &'static str, got: String },
    #[error("{helper}: unknown option `{option}` (it takes {known})")]
    Option { helper: &'static str, option: String, known: String },
    #[error(
        "{helper}: the result would be {size} bytes; the limit is {MAX_TEMPLATE_BYTES} (limit: template.max_bytes)"
    )]
    TooLarge { helper: &'static str, size: usize },
    /// Writing stopped at the limit, so the full size is not known.
    #[error("{helper}: the result would be over the limit of {MAX_TEMPLATE_BYTES} bytes (limit: template.max_bytes)")]
    Overflow { helper: &'static str },
    #[error("{helper}: {message}")]
    Invalid { helper: &'static str, message: String },
}

impl From<HelperError> for RenderError {
    fn from(e: HelperError) -> Self {
        match e {
            HelperError::Missing(path) => RenderError::strict_error(Some(&path)),
            other => RenderErrorReason::Other(other.to_string()).into(),
        }
    }
}

/// What a helper computes from its arguments.
type Compute = fn(&Args) -> Result<Value, HelperError>;

/// A helper computed by a plain function of its arguments.
struct Simple {
    name: &'static str,
    usage: &'static str,
    compute: Compute,
}

impl HelperDef for Simple {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let args = Args::new(self.name, self.usage, h, ctx.data());
        (self.compute)(&args).map(ScopedJson::Derived).map_err(RenderError::from)
    }
}

/// Every helper: its name, its usage line (for error messages) and its code.
const HELPERS: &[(&str, &str, Compute)] = &[
    ("join", "join LIST SEPARATOR", collections::join),
    ("sort", "sort LIST", collections::sort),
    ("unique", "unique LIST", collections::unique),
    ("keys", "keys MAPPING", collections::keys),
    ("values", "values MAPPING", collections::values),
    ("contains", "contains LIST|STRING|MAPPING ITEM", tests_and_fallbacks::contains),
    ("default", "default VALUE FALLBACK", tests_and_fallbacks::default),
    ("version_compare", "version_compare A OPERATOR B [scheme=…]", tests_and_fallbacks::version_compare),
    ("upper", "upper STRING", text::upper),
    ("lower", "lower STRING", text::lower),
    ("trim", "trim STRING", text::trim),
    ("replace", "replace STRING FROM TO", text::replace),
    ("split", "split STRING SEPARATOR", text::split),
    ("indent", "indent STRING WIDTH [first=true] [blank=true]", text::indent),
    ("to_json", "to_json VALUE [pretty=true]", encode::to_json),
    ("to_yaml", "to_yaml VALUE", encode::to_yaml),
];

/// The names of the helpers registered here, for documentation and tests.
pub fn names() -> impl Iterator<Item = &'static str> {
    HELPERS.iter().map(|(name, _, _)| *name).chain(std::iter::once("regex_replace"))
}

/// Registers every helper on a renderer.
pub fn register(hb: &mut Handlebars<'static>) {
    for &(name, usage, compute) in HELPERS {
        hb.register_helper(name, Box::new(Simple { name, usage, compute }));
    }
    hb.register_helper("regex_replace", Box::new(text::RegexReplace::default()));
}

/// Refuses a result of `size` bytes if it is over the limit.
fn within_limit(helper: &'static str, size: usize) -> Result<(), HelperError> {
    if size > MAX_TEMPLATE_BYTES { Err(HelperError::TooLarge { helper, size }) } else { Ok(()) }
}

/// A text result, refused if over the limit.
fn bounded_text(helper: &'static str, s: String) -> Result<Value, HelperError> {
    within_limit(helper, s.len())?;
    Ok(Value::String(s))
}

#[cfg(test)]
mod tests;
