//! Bounded YAML: every YAML text that reaches tend from outside (recipes,
//! command and automation documents, parameter files, the agent's
//! configuration) is measured here before it is parsed into values, so that
//! a hostile text costs at most a linear scan that stops at the first limit.
//!
//! The scan reads parser events only (no values are built, aliases are not
//! expanded) and checks the size, the nesting depth, the number of nodes,
//! the length of keys and the number of aliases. A text over a limit is
//! refused with the limit's name and the position where it was crossed.

use saphyr_parser::{Event, Parser};

/// The bounds for one kind of YAML text. See `docs/limits.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct YamlLimits {
    /// Bytes of text.
    pub max_bytes: usize,
    /// Nested sequences and mappings.
    pub max_depth: usize,
    /// Scalars, sequences, mappings and aliases, counted as written.
    pub max_nodes: usize,
    /// Characters of one mapping key.
    pub max_key_len: usize,
    /// Alias nodes (`*name`); each may expand to a whole subtree.
    pub max_aliases: usize,
}

impl YamlLimits {
    /// A recipe file: a thousand resources of twenty properties fit many times over.
    pub const RECIPE: YamlLimits =
        YamlLimits { max_bytes: 4 << 20, max_depth: 64, max_nodes: 500_000, max_key_len: 1024, max_aliases: 1_000 };
    /// A command or automation document.
    pub const DOCUMENT: YamlLimits =
        YamlLimits { max_bytes: 1 << 20, max_depth: 64, max_nodes: 100_000, max_key_len: 1024, max_aliases: 1_000 };
    /// Small local files: the agent's configuration, parameter files, custom facts.
    pub const CONFIG: YamlLimits =
        YamlLimits { max_bytes: 1 << 20, max_depth: 64, max_nodes: 100_000, max_key_len: 1024, max_aliases: 100 };
}

/// A YAML text over one of its limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct LimitExceeded {
    pub message: String,
    /// 1-based line and column where the limit was crossed; (0, 0) for the size.
    pub line: usize,
    pub col: usize,
}

impl LimitExceeded {
    pub fn pos(&self) -> (usize, usize) {
        (self.line, self.col)
    }
}

/// Checks `text` against `limits`. Syntax errors are left to the parser
/// that follows (it reports them with its own words); the scan stops there.
pub fn check(text: &str, limits: &YamlLimits) -> Result<(), LimitExceeded> {
    if text.len() > limits.max_bytes {
        return Err(LimitExceeded {
            message: format!(
                "the YAML text is {} bytes; the limit is {} (limit: yaml.max_bytes)",
                text.len(),
                limits.max_bytes
            ),
            line: 0,
            col: 0,
        });
    }
    // Per open collection: is it a mapping, is its next node a key, its
    // anchor, and the expanded node count when it opened.
    let mut stack: Vec<(bool, bool, usize, usize)> = Vec::new();
    let (mut nodes, mut aliases) = (0usize, 0usize);
    // Nodes as a parser that expands aliases builds them: an alias counts
    // as the whole subtree its anchor names (an alias bomb is small text
    // that expands to billions of nodes).
    let mut expanded = 0usize;
    let mut anchored: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    for item in Parser::new_from_str(text) {
        let (event, span) = match item {
            Ok(x) => x,
            // The scanner's own bound on flow nesting: refused here, since
            // the parser that follows takes quadratic time to find it.
            Err(e) if e.info().contains("recursion limit") => {
                return Err(LimitExceeded {
                    message: format!("YAML nested more than {} levels deep (limit: yaml.max_depth)", limits.max_depth),
                    line: e.marker().line(),
                    col: e.marker().col() + 1,
                });
            }
            // Other syntax errors are left to the parser, which words them its way.
            Err(_) => return Ok(()),
        };
        let at = |message: String| LimitExceeded { message, line: span.start.line(), col: span.start.col() + 1 };
        let is_node =
            matches!(event, Event::Scalar(..) | Event::SequenceStart(..) | Event::MappingStart(..) | Event::Alias(..));
        if !is_node {
            if matches!(event, Event::SequenceEnd | Event::MappingEnd)
                && let Some((_, _, anchor, opened_at)) = stack.pop()
                && anchor > 0
            {
                anchored.insert(anchor, expanded - opened_at);
            }
            continue;
        }
        nodes += 1;
        expanded += match &event {
            Event::Alias(id) => anchored.get(id).copied().unwrap_or(1),
            _ => 1,
        };
        if nodes > limits.max_nodes {
            return Err(at(format!("more than {} YAML nodes (limit: yaml.max_nodes)", limits.max_nodes)));
        }
        if expanded > limits.max_nodes {
            return Err(at(format!(
                "aliases would expand this YAML to more than {} nodes (limit: yaml.max_nodes)",
                limits.max_nodes
            )));
        }
        let is_key = match stack.last_mut() {
            Some((true, next_is_key, _, _)) => {
                let k = *next_is_key;
                *next_is_key = !k;
                k
            }
            _ => false,
        };
        match &event {
            Event::Scalar(v, ..) if is_key && v.chars().count() > limits.max_key_len => {
                return Err(at(format!(
                    "a mapping key of {} characters; the limit is {} (limit: yaml.max_key_len)",
                    v.chars().count(),
                    limits.max_key_len
                )));
            }
            Event::Alias(..) => {
                aliases += 1;
                if aliases > limits.max_aliases {
                    return Err(at(format!("more than {} YAML aliases (limit: yaml.max_aliases)", limits.max_aliases)));
                }
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if stack.len() >= limits.max_depth {
                    return Err(at(format!(
                        "YAML nested more than {} levels deep (limit: yaml.max_depth)",
                        limits.max_depth
                    )));
                }
                // Counted from before this collection's own node.
                stack.push((matches!(event, Event::MappingStart(..)), true, *anchor, expanded - 1));
            }
            Event::Scalar(_, _, anchor, _) if *anchor > 0 => {
                anchored.insert(*anchor, 1);
            }
            _ => {}
        }
    }
    Ok(())
}

/// Why a bounded parse failed: over a limit, or not valid YAML for `T`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseFailure {
    pub message: String,
    pub line: usize,
    pub col: usize,
}

impl ParseFailure {
    pub fn pos(&self) -> (usize, usize) {
        (self.line, self.col)
    }
}

impl From<LimitExceeded> for ParseFailure {
    fn from(e: LimitExceeded) -> Self {
        ParseFailure { message: e.message, line: e.line, col: e.col }
    }
}

/// Checks `text` against `limits`, then deserializes it.
pub fn parse<T: serde::de::DeserializeOwned>(text: &str, limits: &YamlLimits) -> Result<T, ParseFailure> {
    check(text, limits)?;
    serde_yaml::from_str(text).map_err(|e| {
        let (line, col) = e.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
        let msg = e.to_string();
        // serde_yaml appends " at line L column C"; the position is kept apart.
        let message = msg.split(" at line ").next().unwrap_or(&msg).to_string();
        ParseFailure { message, line, col }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: YamlLimits =
        YamlLimits { max_bytes: 10_000, max_depth: 4, max_nodes: 50, max_key_len: 8, max_aliases: 2 };

    #[test]
    fn ordinary_text_passes() {
        check("a: [1, 2, {b: c}]\nd:\n  - e\n", &SMALL).unwrap();
    }

    #[test]
    fn each_limit_is_named_and_located() {
        let e = check("a:\n  b:\n    c:\n      d:\n        e: 1\n", &SMALL).unwrap_err();
        assert!(e.message.contains("yaml.max_depth"), "{e}");
        assert_eq!(e.pos(), (5, 9));
        let e = check("[[[[[[1]]]]]]", &SMALL).unwrap_err();
        assert!(e.message.contains("yaml.max_depth"), "{e}");
        let e = check("ok: 1\nverylongkey: 2\n", &SMALL).unwrap_err();
        assert!(e.message.contains("yaml.max_key_len"), "{e}");
        assert_eq!(e.pos(), (2, 1));
        // A long value is not a long key.
        check("k: verylongvalue\n", &SMALL).unwrap();
        let e = check(&format!("[{}]", vec!["1"; 60].join(",")), &SMALL).unwrap_err();
        assert!(e.message.contains("yaml.max_nodes"), "{e}");
        let e = check("a: &x [1]\nb: [*x, *x, *x]\n", &SMALL).unwrap_err();
        assert!(e.message.contains("yaml.max_aliases"), "{e}");
        // A few aliases of a large anchor: the expansion counts.
        let e = check(
            "a: &x [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]\nb: [*x, *x]\n",
            &SMALL,
        )
        .unwrap_err();
        assert!(e.message.contains("expand") && e.message.contains("yaml.max_nodes"), "{e}");
        let e = check(&"#".repeat(10_001), &SMALL).unwrap_err();
        assert!(e.message.contains("yaml.max_bytes"), "{e}");
    }

    #[test]
    fn a_billion_laughs_is_refused_before_expansion() {
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let j = i - 1;
            bomb.push_str(&format!("a{i}: &a{i} [{}]\n", vec![format!("*a{j}"); 10].join(", ")));
        }
        let e = check(&bomb, &YamlLimits::RECIPE).unwrap_err();
        assert!(e.message.contains("yaml.max_nodes"), "{e}");
        // Ordinary anchors and merges are fine.
        check("base: &b {mode: '0644', owner: root}\nfile: {<<: *b, path: /x}\n", &YamlLimits::RECIPE).unwrap();
    }

    #[test]
    fn deep_flow_nesting_stops_early() {
        let text = format!("resources: {}{}", "[".repeat(100_000), "]".repeat(100_000));
        let t = std::time::Instant::now();
        let e = check(&text, &YamlLimits::RECIPE).unwrap_err();
        assert!(e.message.contains("yaml.max_depth"), "{e}");
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn parse_reports_syntax_with_position() {
        let e = parse::<serde_yaml::Value>("a: [1, 2\n", &SMALL).unwrap_err();
        assert!(e.line > 0, "{e:?}");
        assert!(!e.message.contains(" at line "), "{e:?}");
    }
}
