//! What names and labels stored by the server may look like: host names
//! (RFC 1123), tags, and the names of recipes, documents and tokens. Each
//! check says what was wrong, so an API can answer 400 with it; none lets a
//! control character, a line break or a bidirectional override through.

/// Characters of one tag key.
pub const MAX_TAG_KEY: usize = 63;
/// Characters of one tag value.
pub const MAX_TAG_VALUE: usize = 255;
/// Tags on one node or activation.
pub const MAX_TAGS: usize = 64;
/// Characters of a recipe, document or token name.
pub const MAX_NAME: usize = 128;

/// A host name as RFC 1123 allows: dot-separated labels of letters, digits
/// and inner hyphens, 1–63 characters each, 253 in all.
pub fn hostname(h: &str) -> Result<(), String> {
    let shown = shown(h);
    if h.is_empty() || h.len() > 253 {
        return Err(format!("host name {shown} must be 1 to 253 characters"));
    }
    for label in h.trim_end_matches('.').split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(format!(
                "host name {shown} is not valid (RFC 1123: labels of letters, digits and inner hyphens, 1 to 63 characters each)"
            ));
        }
    }
    Ok(())
}

/// Tag keys: letters, digits, `-`, `_`, `.`, `/`; values: also `:`, `@`,
/// `+` and spaces inside; neither has `=` or `,` (they separate targets).
pub fn tags(tags: &std::collections::BTreeMap<String, String>) -> Result<(), String> {
    if tags.len() > MAX_TAGS {
        return Err(format!("{} tags; the limit is {MAX_TAGS} (limit: node.max_tags)", tags.len()));
    }
    for (k, v) in tags {
        let key_ok = !k.is_empty()
            && k.len() <= MAX_TAG_KEY
            && k.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
        if !key_ok {
            return Err(format!(
                "tag key {} must be 1 to {MAX_TAG_KEY} letters, digits, `-`, `_`, `.` or `/`",
                shown(k)
            ));
        }
        let value_ok = v.len() <= MAX_TAG_VALUE
            && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:@+ ".contains(&b))
            && v.trim() == v;
        if !value_ok {
            return Err(format!(
                "tag {k}: value {} must be at most {MAX_TAG_VALUE} letters, digits, spaces inside, or `-_./:@+`",
                shown(v)
            ));
        }
    }
    Ok(())
}

/// Targets of one assignment, command or association.
pub const MAX_TARGETS: usize = 256;
/// Characters of a free-text comment.
pub const MAX_COMMENT: usize = 1024;

/// Targets: node ids, or `tag:k=v[,k=v…]` with tags as [`tags`] allows.
pub fn targets(targets: &[String]) -> Result<(), String> {
    if targets.is_empty() {
        return Err("at least one target is needed".into());
    }
    if targets.len() > MAX_TARGETS {
        return Err(format!("{} targets; the limit is {MAX_TARGETS} (limit: targets.max)", targets.len()));
    }
    for t in targets {
        let ok = !t.chars().any(char::is_control)
            && match t.strip_prefix("tag:") {
                Some(kvs) => {
                    let pairs: Option<std::collections::BTreeMap<String, String>> = kvs
                        .split(',')
                        .map(|kv| kv.split_once('=').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
                        .collect();
                    pairs.is_some_and(|p| !p.is_empty() && tags(&p).is_ok())
                }
                None => !t.is_empty() && t.len() <= 64 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
            };
        if !ok {
            return Err(format!("target {} is neither a node id nor tag:key=value[,key=value…]", shown(t)));
        }
    }
    Ok(())
}

/// A comment: at most [`MAX_COMMENT`] characters, no control characters.
pub fn comment(c: &str) -> Result<(), String> {
    if c.chars().count() > MAX_COMMENT || c.chars().any(char::is_control) {
        return Err(format!("a comment is at most {MAX_COMMENT} characters, with no control characters"));
    }
    Ok(())
}

/// Recipe, document and token names: letters, digits, `-`, `_`, `.`; not
/// starting with `.` (no `..`, no hidden names), at most [`MAX_NAME`].
pub fn object_name(what: &str, n: &str) -> Result<(), String> {
    let ok = !n.is_empty()
        && n.len() <= MAX_NAME
        && !n.starts_with('.')
        && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} name {} must be 1 to {MAX_NAME} letters, digits, `-`, `_` or `.`, not starting with `.`",
            shown(n)
        ))
    }
}

/// A value for an error message: quoted and escaped, at most 64 characters.
pub fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(64).collect::<String>().escape_default().to_string();
    if s.chars().count() > 64 {
        out.push('…');
    }
    format!("\"{out}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        for ok in ["web-1", "web-1.example.org", "a", "x.example.org.", "1host"] {
            hostname(ok).unwrap();
        }
        for bad in ["", "-web", "web-", "a..b", "we b", "web\u{1b}[31m", "a\nb", "\u{202e}x", "a\0", &"a".repeat(64)] {
            assert!(hostname(bad).is_err(), "{bad:?}");
        }
        assert!(hostname(&"a.".repeat(130)).is_err());
        let e = hostname("x\u{1b}[2J").unwrap_err();
        assert!(!e.contains('\u{1b}'), "{e}");
    }

    #[test]
    fn tag_sets() {
        let t = |k: &str, v: &str| std::collections::BTreeMap::from([(k.to_string(), v.to_string())]);
        tags(&t("role", "web")).unwrap();
        tags(&t("team/owner", "ops@example.org")).unwrap();
        assert!(tags(&t("ro le", "web")).is_err());
        assert!(tags(&t("role", "a,b")).is_err());
        assert!(tags(&t("role", "a=b")).is_err());
        assert!(tags(&t("role", "x\u{1b}")).is_err());
        let many = (0..65).map(|i| (format!("k{i}"), "v".to_string())).collect();
        assert!(tags(&many).unwrap_err().contains("node.max_tags"));
    }

    #[test]
    fn target_lists() {
        let t = |v: &[&str]| targets(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        t(&["tag:role=web", "tag:role=web,env=prod", "n-0123abcd"]).unwrap();
        for bad in [&["tag:role"][..], &["tag:"], &["tag:ro le=x"], &["n-1\u{1b}"], &[], &["tag:a=b\n"]] {
            assert!(t(bad).is_err(), "{bad:?}");
        }
        comment("deploy #42").unwrap();
        assert!(comment("a\u{1b}[2J").is_err());
    }

    #[test]
    fn object_names() {
        object_name("recipe", "web.base-1").unwrap();
        for bad in ["../../t", "a@b/c", ".hidden", "", "a b"] {
            assert!(object_name("recipe", bad).is_err(), "{bad}");
        }
    }
}
