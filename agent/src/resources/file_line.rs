//! `file_line`: one line in a file the recipe does not own. The match regex picks
//! the line that must become `line` (the last match, or every match with
//! `multiple`); without a match the line is inserted after the last line
//! `after` matches, before the first line `before` matches, or at the end.
//! `state: absent` removes every line `match` matches or equal to `line`. The
//! rest of the file is kept byte for byte, with its owner and mode.

use std::path::Path;

use tend_model::resources::Presence;
use tend_model::resources::file_line::{FileLineProps, regex};
use tend_model::{CompiledResource, Spec};

use super::support::edit::{Edit, join, lines, read_text};
use super::{Applied, Ctx, Error, ResourceType, Result, mismatch};
use crate::report::Change;

pub struct FileLineType;

fn props(r: &CompiledResource) -> Result<&FileLineProps> {
    match &r.spec {
        Spec::FileLine(p) => Ok(p),
        _ => Err(mismatch(r)),
    }
}

fn edit<'a>(p: &'a FileLineProps, sensitive: bool) -> Result<Edit<'a>> {
    let path = Path::new(&p.path);
    let text = edited(read_text(path)?.as_deref(), p).map_err(|e| Error::Failed(format!("{}: {e}", path.display())))?;
    Ok(Edit { path, text, validate: p.validate.as_deref(), sensitive })
}

impl ResourceType for FileLineType {
    fn check(&self, r: &CompiledResource, ctx: &mut Ctx) -> Result<Vec<Change>> {
        edit(props(r)?, r.sensitive)?.check(ctx)
    }

    fn apply(&self, r: &CompiledResource, changes: &[Change], ctx: &mut Ctx) -> Result<Applied> {
        edit(props(r)?, r.sensitive)?.apply(changes, ctx)?;
        Ok(Applied::Done)
    }
}

/// A line without the `\r` of a CRLF file (what regexes and `line` see).
fn body(l: &str) -> &str {
    l.strip_suffix('\r').unwrap_or(l)
}

/// The file's new text, or None when it already holds what `p` wants.
/// `text` is None when the file is missing.
pub fn edited(text: Option<&str>, p: &FileLineProps) -> std::result::Result<Option<String>, String> {
    let Some(text) = text else {
        return match (p.state, &p.line) {
            (Presence::Absent, _) => Ok(None),
            (Presence::Present, _) if !p.create => Err("the file does not exist (and `create: false`)".into()),
            (Presence::Present, Some(l)) => Ok(Some(format!("{l}\n"))),
            (Presence::Present, None) => Err("`state: present` needs `line`".into()),
        };
    };
    let re = |p: &Option<String>| p.as_deref().map(regex).transpose();
    let pattern = re(&p.pattern)?;
    let (old, mut trailing) = lines(text);
    let mut new: Vec<String> = old.iter().map(|s| s.to_string()).collect();
    if p.state == Presence::Absent {
        new.retain(|l| !(pattern.as_ref().is_some_and(|r| r.is_match(body(l))) || p.line.as_deref() == Some(body(l))));
        return Ok((new.len() != old.len()).then(|| join(&new, trailing)));
    }
    let line = p.line.as_deref().ok_or("`state: present` needs `line`")?;
    let matched: Vec<usize> = match &pattern {
        Some(r) => (0..old.len()).filter(|&i| r.is_match(body(old[i]))).collect(),
        None => Vec::new(),
    };
    if !matched.is_empty() {
        let targets = if p.multiple { &matched[..] } else { &matched[matched.len() - 1..] };
        for &i in targets {
            // A CRLF line stays CRLF.
            new[i] = if old[i].ends_with('\r') { format!("{line}\r") } else { line.to_string() };
        }
    } else if !old.iter().any(|l| body(l) == line) {
        let at = match (p.after.as_deref(), p.before.as_deref()) {
            (Some("EOF"), _) | (None, None) => None,
            (_, Some("BOF")) => Some(0),
            (Some(a), _) => {
                let r = regex(a)?;
                (0..old.len()).rev().find(|&i| r.is_match(body(old[i]))).map(|i| i + 1)
            }
            (None, Some(b)) => {
                let r = regex(b)?;
                (0..old.len()).find(|&i| r.is_match(body(old[i])))
            }
        };
        match at {
            Some(i) if i < new.len() => new.insert(i, line.to_string()),
            _ => {
                new.push(line.to_string());
                trailing = true;
            }
        }
    }
    let out = join(&new, trailing);
    Ok((out != text).then_some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(yaml: &str) -> FileLineProps {
        serde_yaml::from_str(&format!("path: /etc/x\n{yaml}")).expect("props")
    }

    fn run(text: Option<&str>, yaml: &str) -> Option<String> {
        let p = props(yaml);
        assert!(p.problems().is_empty(), "{:?}", p.problems());
        edited(text, &p).expect("edit")
    }

    #[test]
    fn a_matching_line_is_replaced_in_place_and_the_rest_kept_byte_for_byte() {
        let crlf = "a\r\nPermitRootLogin yes\r\n";
        let out = run(Some(crlf), "line: PermitRootLogin no\nmatch: '^#?PermitRootLogin\\s'");
        assert_eq!(out.as_deref(), Some("a\r\nPermitRootLogin no\r\n"), "CRLF kept");
        assert_eq!(run(out.as_deref(), "line: PermitRootLogin no\nmatch: '^#?PermitRootLogin\\s'"), None);
        assert_eq!(run(Some(crlf), "line: a"), None, "an equal CRLF line is present");
        let text = "# keep\r\nPermitRootLogin yes\n\tindented\n";
        let out = run(Some(text), "line: PermitRootLogin no\nmatch: '^#?PermitRootLogin'");
        assert_eq!(out.as_deref(), Some("# keep\r\nPermitRootLogin no\n\tindented\n"));
        assert_eq!(run(out.as_deref(), "line: PermitRootLogin no\nmatch: '^#?PermitRootLogin'"), None);
    }

    #[test]
    fn the_last_match_is_replaced_unless_multiple() {
        let text = "a=1\nb\na=2\n";
        assert_eq!(run(Some(text), "line: a=3\nmatch: '^a='").as_deref(), Some("a=1\nb\na=3\n"));
        assert_eq!(run(Some(text), "line: a=3\nmatch: '^a='\nmultiple: true").as_deref(), Some("a=3\nb\na=3\n"));
    }

    #[test]
    fn a_missing_line_goes_after_before_or_at_the_end() {
        let text = "[a]\nx\n[b]\ny\n";
        assert_eq!(run(Some(text), "line: z").as_deref(), Some("[a]\nx\n[b]\ny\nz\n"));
        assert_eq!(run(Some(text), "line: z\nafter: '^\\[a\\]'").as_deref(), Some("[a]\nz\nx\n[b]\ny\n"));
        assert_eq!(run(Some(text), "line: z\nbefore: '^\\['").as_deref(), Some("z\n[a]\nx\n[b]\ny\n"));
        assert_eq!(run(Some(text), "line: z\nbefore: BOF").as_deref(), Some("z\n[a]\nx\n[b]\ny\n"));
        assert_eq!(run(Some(text), "line: z\nafter: nomatch").as_deref(), Some("[a]\nx\n[b]\ny\nz\n"));
        // Present already: nothing to do.
        assert_eq!(run(Some(text), "line: x\nafter: '^\\[b\\]'"), None);
    }

    #[test]
    fn a_file_without_a_final_newline_keeps_it_unless_a_line_is_appended() {
        assert_eq!(run(Some("a\nb"), "line: c").as_deref(), Some("a\nb\nc\n"));
        assert_eq!(run(Some("a\nb"), "line: B\nmatch: '^[bB]$'").as_deref(), Some("a\nB"));
        assert_eq!(run(Some(""), "line: c").as_deref(), Some("c\n"));
    }

    #[test]
    fn absent_removes_every_matching_or_equal_line() {
        let text = "keep\nauth x\nauth y\nexact\n";
        assert_eq!(run(Some(text), "state: absent\nmatch: '^auth '").as_deref(), Some("keep\nexact\n"));
        assert_eq!(run(Some(text), "state: absent\nline: exact").as_deref(), Some("keep\nauth x\nauth y\n"));
        assert_eq!(run(Some("keep\n"), "state: absent\nline: exact"), None);
        assert_eq!(run(None, "state: absent\nline: exact"), None);
    }

    #[test]
    fn a_missing_file_is_created_unless_create_is_false() {
        assert_eq!(run(None, "line: hello").as_deref(), Some("hello\n"));
        let p = props("line: hello\ncreate: false");
        assert!(edited(None, &p).expect_err("refused").contains("create: false"));
    }

    #[test]
    fn bad_properties_are_refused_before_any_run() {
        let problems = |y: &str| props(y).problems().into_iter().map(|(f, m)| format!("{f}: {m}")).collect::<Vec<_>>();
        assert!(problems("line: PermitRootLogin no\nmatch: '^Port'")[0].contains("never converge"));
        assert!(problems("line: x\nmatch: '('")[0].starts_with("match: invalid regular expression"));
        assert!(problems("state: present")[0].starts_with("line:"));
        assert!(problems("line: x\nvalidate: sshd -t")[0].contains("%s"));
        assert!(problems("line: \"a\\nb\"")[0].contains("newline"));
        assert!(problems("line: x\nafter: a\nbefore: b")[0].contains("not both"));
    }
}
