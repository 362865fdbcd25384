//! Helpers over strings: `upper`, `lower`, `trim`, `replace`, `split`,
//! `indent` and `regex_replace`.

use std::sync::Mutex;

use handlebars::{Context, Handlebars, Helper, HelperDef, RenderContext, RenderError, ScopedJson};
use regex_lite::{Captures, Regex, RegexBuilder};
use serde_json::Value;

use super::{Args, HelperError, bounded_text, within_limit};

pub fn upper(a: &Args) -> Result<Value, HelperError> {
    a.expect(1, &[])?;
    bounded_text(a.helper(), a.text(0, "STRING")?.to_uppercase())
}

pub fn lower(a: &Args) -> Result<Value, HelperError> {
    a.expect(1, &[])?;
    bounded_text(a.helper(), a.text(0, "STRING")?.to_lowercase())
}

/// Whitespace off both ends (Unicode's definition, as Rust's `trim`).
pub fn trim(a: &Args) -> Result<Value, HelperError> {
    a.expect(1, &[])?;
    bounded_text(a.helper(), a.text(0, "STRING")?.trim().to_string())
}

/// `replace STRING FROM TO`: every FROM replaced by TO. The result's size is
/// counted before it is built, since a long TO multiplies it.
pub fn replace(a: &Args) -> Result<Value, HelperError> {
    a.expect(3, &[])?;
    let s = a.text(0, "STRING")?;
    let from = a.text(1, "FROM")?;
    let to = a.text(2, "TO")?;
    if from.is_empty() {
        return Err(a.invalid("FROM is empty; there is nothing to replace"));
    }
    let count = s.matches(from.as_ref()).count();
    let size = (s.len() - count * from.len()).saturating_add(count.saturating_mul(to.len()));
    within_limit(a.helper(), size)?;
    Ok(Value::String(s.replace(from.as_ref(), &to)))
}

/// `split STRING SEPARATOR`: the list of pieces between separators (an empty
/// STRING gives one empty piece, as in most languages). The list is
/// counted as JSON text (each piece plus quotes and a comma) against the limit.
pub fn split(a: &Args) -> Result<Value, HelperError> {
    a.expect(2, &[])?;
    let s = a.text(0, "STRING")?;
    let sep = a.text(1, "SEPARATOR")?;
    if sep.is_empty() {
        return Err(a.invalid("SEPARATOR is empty"));
    }
    let pieces = s.matches(sep.as_ref()).count() + 1;
    let size = (s.len() - (pieces - 1) * sep.len()).saturating_add(pieces.saturating_mul(3)).saturating_add(2);
    within_limit(a.helper(), size)?;
    Ok(Value::Array(s.split(sep.as_ref()).map(|p| Value::String(p.to_string())).collect()))
}

/// `indent STRING WIDTH [first=true] [blank=true]`: every line but the first
/// indented by WIDTH spaces (or by WIDTH itself when it is a string), as
/// Ansible's (Jinja's) `indent` does, so that `key: {{indent text 2}}`
/// continues a block at the right depth. `first=true` indents the first line
/// too; empty lines stay empty unless `blank=true`. The size of the result
/// (lines × width) is checked before anything is allocated.
pub fn indent(a: &Args) -> Result<Value, HelperError> {
    a.expect(2, &["first", "blank"])?;
    let s = a.text(0, "STRING")?;
    let pad: String = match a.value(1)? {
        Value::Number(n) => {
            let width =
                n.as_u64().ok_or_else(|| a.invalid(format!("WIDTH must be a whole number of spaces, not {n}")))?;
            let width = usize::try_from(width).unwrap_or(usize::MAX);
            within_limit(a.helper(), s.len().saturating_add(width))?;
            " ".repeat(width)
        }
        Value::String(p) => p.clone(),
        other => {
            return Err(HelperError::Type {
                helper: a.helper(),
                param: "WIDTH",
                expected: "a number or a string",
                got: super::args::describe(other).to_string(),
            });
        }
    };
    let first = a.flag("first", false)?;
    let blank = a.flag("blank", false)?;
    let indented = |i: usize, line: &str| (i > 0 || first) && (blank || !line.is_empty());
    let count = s.split('\n').enumerate().filter(|(i, line)| indented(*i, line)).count();
    within_limit(a.helper(), s.len().saturating_add(count.saturating_mul(pad.len())))?;
    let mut out = String::with_capacity(s.len() + count * pad.len());
    for (i, line) in s.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if indented(i, line) {
            out.push_str(&pad);
        }
        out.push_str(line);
    }
    Ok(Value::String(out))
}

/// The longest pattern `regex_replace` compiles: patterns come from
/// templates, and a compiled regex is much larger than its text.
pub const MAX_PATTERN_BYTES: usize = 1 << 10;
/// Compiled patterns kept, so that a call inside `{{#each}}` compiles once.
const CACHED_PATTERNS: usize = 16;

/// `regex_replace STRING PATTERN REPLACEMENT`: every match of PATTERN
/// (regex-lite's syntax, which is the regex crate's without Unicode classes)
/// replaced by REPLACEMENT, in which `$1`, `${1}`, `$name` and `${name}`
/// stand for groups and `$$` for a `$`. The result grows one match at a time
/// and is refused as soon as it passes the limit.
#[derive(Default)]
pub struct RegexReplace {
    cache: Mutex<Vec<(String, Regex)>>,
}

impl RegexReplace {
    fn compile(&self, a: &Args, pattern: &str) -> Result<Regex, HelperError> {
        if pattern.len() > MAX_PATTERN_BYTES {
            return Err(a.invalid(format!("the pattern is {} bytes; the limit is {MAX_PATTERN_BYTES}", pattern.len())));
        }
        let mut cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, re)) = cache.iter().find(|(p, _)| p == pattern) {
            return Ok(re.clone());
        }
        let re = RegexBuilder::new(pattern)
            .build()
            .map_err(|e| a.invalid(format!("invalid regular expression {pattern:?}: {e}")))?;
        if cache.len() >= CACHED_PATTERNS {
            cache.remove(0);
        }
        cache.push((pattern.to_string(), re.clone()));
        Ok(re)
    }

    fn compute(&self, a: &Args) -> Result<Value, HelperError> {
        a.expect(3, &[])?;
        let s = a.text(0, "STRING")?;
        let pattern = a.text(1, "PATTERN")?;
        let replacement = a.text(2, "REPLACEMENT")?;
        let re = self.compile(a, &pattern)?;
        let pieces = parse_replacement(&replacement);
        let mut out = String::new();
        let mut last = 0;
        for caps in re.captures_iter(&s) {
            let Some(m) = caps.get(0) else { continue };
            let before = s.get(last..m.start()).unwrap_or_default();
            let added = before.len().saturating_add(expanded_len(&pieces, &caps));
            within_limit(a.helper(), out.len().saturating_add(added))?;
            out.push_str(before);
            expand(&pieces, &caps, &mut out);
            last = m.end();
        }
        let rest = s.get(last..).unwrap_or_default();
        within_limit(a.helper(), out.len().saturating_add(rest.len()))?;
        out.push_str(rest);
        Ok(Value::String(out))
    }
}

impl HelperDef for RegexReplace {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let args = Args::new("regex_replace", "regex_replace STRING PATTERN REPLACEMENT", h, ctx.data());
        self.compute(&args).map(ScopedJson::Derived).map_err(RenderError::from)
    }
}

/// One part of a replacement: text, or a group by number or by name.
#[derive(Debug, PartialEq)]
enum Piece<'r> {
    Text(&'r str),
    Dollar,
    Index(usize),
    Name(&'r str),
}

/// Reads `$1`, `${1}`, `$name`, `${name}` and `$$` the way the regex crate
/// does: a bare `$name` takes the longest run of letters, digits and `_`
/// (so `$1a` is the group named `1a`; write `${1}a`), and a `$` that starts
/// no reference is itself.
fn parse_replacement(r: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = r;
    while let Some(at) = rest.find('$') {
        if at > 0 {
            out.push(Piece::Text(&rest[..at]));
        }
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push(Piece::Dollar);
            rest = tail;
            continue;
        }
        let (name, tail) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) if end > 0 => (&braced[..end], &braced[end + 1..]),
                _ => ("", after),
            }
        } else {
            let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        if name.is_empty() {
            out.push(Piece::Dollar);
        } else if let Ok(i) = name.parse::<usize>() {
            out.push(Piece::Index(i));
        } else {
            out.push(Piece::Name(name));
        }
        rest = tail;
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    out
}

fn group<'h>(piece: &Piece<'_>, caps: &Captures<'h>) -> &'h str {
    let m = match piece {
        Piece::Index(i) => caps.get(*i),
        Piece::Name(n) => caps.name(n),
        _ => None,
    };
    m.map_or("", |m| m.as_str())
}

fn expanded_len(pieces: &[Piece<'_>], caps: &Captures<'_>) -> usize {
    pieces.iter().fold(0usize, |n, p| {
        n.saturating_add(match p {
            Piece::Text(t) => t.len(),
            Piece::Dollar => 1,
            other => group(other, caps).len(),
        })
    })
}

fn expand(pieces: &[Piece<'_>], caps: &Captures<'_>, out: &mut String) {
    for p in pieces {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Dollar => out.push('$'),
            other => out.push_str(group(other, caps)),
        }
    }
}
