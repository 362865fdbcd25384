//! `setting`: one key in a key-value or INI file, edited in place.
//!
//! The key's scope is its `[section]`, or without one the lines before the
//! first section header (and, for blank-separated files like sshd_config,
//! before the first `Match` block). In that scope the first active line with
//! the key gets the value and later duplicates are removed (sshd and most
//! parsers use the first one); without one, a commented-out default
//! (`#PermitRootLogin yes`, no blank after the `#`) is replaced where it
//! stands; otherwise the line goes after the scope's last non-blank line, and
//! a missing section is appended. `state: absent` removes the active lines.
//! Spacing around the separator and the value's surrounding blanks are not
//! differences; the rest of the file is kept byte for byte.

use std::path::Path;

use tend_model::resources::Presence;
use tend_model::resources::setting::SettingProps;
use tend_model::{CompiledResource, Spec};

use super::support::edit::{Edit, join, lines, read_text};
use super::{Applied, Ctx, Error, ResourceType, Result, mismatch};
use crate::report::Change;

pub struct SettingType;

fn props(r: &CompiledResource) -> Result<&SettingProps> {
    match &r.spec {
        Spec::Setting(p) => Ok(p),
        _ => Err(mismatch(r)),
    }
}

fn edit<'a>(p: &'a SettingProps, sensitive: bool) -> Result<Edit<'a>> {
    let path = Path::new(&p.path);
    let text = edited(read_text(path)?.as_deref(), p).map_err(|e| Error::Failed(format!("{}: {e}", path.display())))?;
    Ok(Edit { path, text, validate: p.validate.as_deref(), sensitive })
}

impl ResourceType for SettingType {
    fn check(&self, r: &CompiledResource, ctx: &mut Ctx) -> Result<Vec<Change>> {
        edit(props(r)?, r.sensitive)?.check(ctx)
    }

    fn apply(&self, r: &CompiledResource, changes: &[Change], ctx: &mut Ctx) -> Result<Applied> {
        edit(props(r)?, r.sensitive)?.apply(changes, ctx)?;
        Ok(Applied::Done)
    }
}

/// How one line reads as a setting.
struct Parsed<'a> {
    commented: bool,
    key: &'a str,
    value: &'a str,
}

/// The section a header line opens.
fn header(line: &str) -> Option<&str> {
    let t = line.trim();
    t.strip_prefix('[')?.strip_suffix(']').map(str::trim)
}

/// Reads `line` as `key SEP value`, active or commented out (`#key`, `;key`).
fn parse<'a>(line: &'a str, sep: &str) -> Option<Parsed<'a>> {
    let t = line.trim_start();
    let (commented, body) = match t.strip_prefix(['#', ';']) {
        // A blank after the comment mark is prose, not a commented default.
        Some(rest) if rest.starts_with(char::is_whitespace) || rest.is_empty() => return None,
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let (key, value) = match sep.trim() {
        "" => body.split_once(char::is_whitespace).unwrap_or((body, "")),
        mark => body.split_once(mark)?,
    };
    Some(Parsed { commented, key: key.trim(), value: value.trim() })
}

/// The file's new text, or None when it already holds what `p` wants.
pub fn edited(text: Option<&str>, p: &SettingProps) -> std::result::Result<Option<String>, String> {
    let wanted = |indent: &str, cr: bool| {
        format!("{indent}{}{}{}{}", p.key, p.separator, p.value.as_deref().unwrap_or(""), if cr { "\r" } else { "" })
    };
    let Some(text) = text else {
        return match p.state {
            Presence::Absent => Ok(None),
            Presence::Present if !p.create => Err("the file does not exist (and `create: false`)".into()),
            Presence::Present => Ok(Some(match &p.section {
                Some(s) => format!("[{s}]\n{}\n", wanted("", false)),
                None => format!("{}\n", wanted("", false)),
            })),
        };
    };
    let blank_sep = p.separator.trim().is_empty();
    // Blank-separated keywords (sshd_config) are case-insensitive.
    let same_key = |k: &str| if blank_sep { k.eq_ignore_ascii_case(&p.key) } else { k == p.key };
    let (old, mut trailing) = lines(text);
    // The scope: [start, end) of the lines the key may be in.
    let (start, end) = match &p.section {
        Some(s) => match old.iter().position(|l| header(l) == Some(s.as_str())) {
            Some(h) => (h + 1, (h + 1..old.len()).find(|&i| header(old[i]).is_some()).unwrap_or(old.len())),
            None => (old.len(), old.len()),
        },
        None => {
            let ends = |l: &str| {
                header(l).is_some()
                    || (blank_sep && l.split_whitespace().next().is_some_and(|w| w.eq_ignore_ascii_case("match")))
            };
            (0, old.iter().position(|l| ends(l)).unwrap_or(old.len()))
        }
    };
    let section_found = p.section.is_none() || old.iter().any(|l| header(l) == p.section.as_deref());
    let mut new: Vec<String> = old.iter().map(|s| s.to_string()).collect();
    let active: Vec<usize> = (start..end)
        .filter(|&i| parse(old[i], &p.separator).is_some_and(|x| !x.commented && same_key(x.key)))
        .collect();
    if p.state == Presence::Absent {
        for &i in active.iter().rev() {
            new.remove(i);
        }
        return Ok((!active.is_empty()).then(|| join(&new, trailing)));
    }
    let value = p.value.as_deref().unwrap_or("").trim();
    let indent = |l: &str| l[..l.len() - l.trim_start().len()].to_string();
    if let Some((&first, rest)) = active.split_first() {
        let cur = parse(old[first], &p.separator).map(|x| x.value).unwrap_or_default();
        if cur != value {
            new[first] = wanted(&indent(old[first]), old[first].ends_with('\r'));
        }
        for &i in rest.iter().rev() {
            new.remove(i);
        }
    } else if let Some(i) =
        (start..end).find(|&i| parse(old[i], &p.separator).is_some_and(|x| x.commented && same_key(x.key)))
    {
        new[i] = wanted(&indent(old[i]), old[i].ends_with('\r'));
    } else if section_found {
        // After the scope's last non-blank line (or at its start).
        let at = (start..end).rev().find(|&i| !old[i].trim().is_empty()).map(|i| i + 1).unwrap_or(start);
        if at >= new.len() {
            trailing = true;
        }
        new.insert(at, wanted("", false));
    } else {
        if new.last().is_some_and(|l| !l.trim().is_empty()) {
            new.push(String::new());
        }
        new.push(format!("[{}]", p.section.as_deref().unwrap_or_default()));
        new.push(wanted("", false));
        trailing = true;
    }
    let out = join(&new, trailing);
    Ok((out != text).then_some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: Option<&str>, yaml: &str) -> Option<String> {
        let p: SettingProps = serde_yaml::from_str(&format!("path: /etc/x\n{yaml}")).expect("props");
        assert!(p.problems().is_empty(), "{:?}", p.problems());
        let out = edited(text, &p).expect("edit");
        // Converged after one edit.
        if let Some(o) = &out {
            assert_eq!(edited(Some(o), &p).expect("again"), None, "not idempotent on {o:?}");
        }
        out
    }

    const SSHD: &str = "Include /etc/ssh/sshd_config.d/*.conf\n\n# Authentication:\n#PermitRootLogin prohibit-password\n#MaxAuthTries 6\n\nX11Forwarding yes\n\nMatch User anoncvs\n\tX11Forwarding no\n";

    #[test]
    fn a_commented_default_is_replaced_where_it_stands() {
        let out = run(Some(SSHD), "key: PermitRootLogin\nvalue: 'no'\nseparator: ' '");
        assert_eq!(
            out.as_deref(),
            Some(SSHD.replace("#PermitRootLogin prohibit-password", "PermitRootLogin no").as_str())
        );
    }

    #[test]
    fn an_active_key_gets_the_value_and_later_duplicates_go_but_match_blocks_are_left() {
        let out = run(Some(SSHD), "key: X11Forwarding\nvalue: 'no'\nseparator: ' '");
        assert_eq!(out.as_deref(), Some(SSHD.replacen("X11Forwarding yes", "X11Forwarding no", 1).as_str()));
        let dup = "Port 22\nport   22\nPort 2222\n";
        assert_eq!(run(Some(dup), "key: Port\nvalue: '22'\nseparator: ' '").as_deref(), Some("Port 22\n"));
    }

    #[test]
    fn a_new_key_goes_before_the_first_match_block() {
        let out = run(Some(SSHD), "key: AllowGroups\nvalue: ssh\nseparator: ' '").expect("changed");
        assert!(out.contains("X11Forwarding yes\nAllowGroups ssh\n\nMatch User"), "{out}");
    }

    #[test]
    fn spacing_around_the_separator_is_not_a_difference() {
        let text = "PASS_MAX_DAYS\t99999\nnet.ipv4.ip_forward = 1\n";
        assert_eq!(run(Some(text), "key: PASS_MAX_DAYS\nvalue: '99999'\nseparator: ' '"), None);
        assert_eq!(run(Some(text), "key: net.ipv4.ip_forward\nvalue: '1'\nseparator: '='"), None);
        assert_eq!(
            run(Some(text), "key: net.ipv4.ip_forward\nvalue: '0'\nseparator: '='").as_deref(),
            Some("PASS_MAX_DAYS\t99999\nnet.ipv4.ip_forward=0\n")
        );
    }

    #[test]
    fn sections_scope_the_key_and_a_missing_section_is_appended() {
        let ini = "; top\n[a]\nk = 1\n\n[b]\nk = 2\n";
        assert_eq!(
            run(Some(ini), "section: b\nkey: k\nvalue: '3'").as_deref(),
            Some("; top\n[a]\nk = 1\n\n[b]\nk = 3\n")
        );
        assert_eq!(
            run(Some(ini), "section: a\nkey: j\nvalue: x").as_deref(),
            Some("; top\n[a]\nk = 1\nj = x\n\n[b]\nk = 2\n")
        );
        assert_eq!(
            run(Some(ini), "section: c\nkey: k\nvalue: '1'").as_deref(),
            Some(format!("{ini}\n[c]\nk = 1\n").as_str())
        );
        assert_eq!(
            run(Some(ini), "key: top\nvalue: 'y'").as_deref(),
            Some("; top\ntop = y\n[a]\nk = 1\n\n[b]\nk = 2\n")
        );
        assert_eq!(run(Some("[s]\n"), "section: s\nkey: k\nvalue: v").as_deref(), Some("[s]\nk = v\n"));
    }

    #[test]
    fn absent_removes_active_lines_only() {
        let text = "#Port 22\nPort 2222\nListenAddress ::\n";
        assert_eq!(
            run(Some(text), "key: Port\nstate: absent\nseparator: ' '").as_deref(),
            Some("#Port 22\nListenAddress ::\n")
        );
        assert_eq!(run(None, "key: Port\nstate: absent\nseparator: ' '"), None);
    }

    #[test]
    fn a_missing_file_is_created_with_the_setting() {
        assert_eq!(run(None, "key: k\nvalue: v\nseparator: '='").as_deref(), Some("k=v\n"));
        assert_eq!(run(None, "section: s\nkey: k\nvalue: v").as_deref(), Some("[s]\nk = v\n"));
    }

    #[test]
    fn crlf_lines_and_indentation_are_kept() {
        let text = "[s]\r\n  k = 1\r\n";
        assert_eq!(run(Some(text), "section: s\nkey: k\nvalue: '2'").as_deref(), Some("[s]\r\n  k = 2\r\n"));
    }
}
