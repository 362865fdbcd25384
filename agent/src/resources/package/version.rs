//! Version strings as the package managers order them: Debian's
//! (`epoch:upstream-revision`, deb-version(7)) for apt, and glob pins
//! (`1.2.*`) for both providers. rpm's ordering is in `dnf.rs`.

use std::cmp::Ordering;

/// Whether a pin is a glob (`*`, `?`).
pub fn is_glob(pin: &str) -> bool {
    pin.contains(['*', '?'])
}

/// Shell-style matching of the whole text: `*` any run, `?` one character.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                // Let the last `*` take one more character.
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Debian's version ordering: the epoch numerically, then the upstream
/// version and the revision by `verrevcmp`.
pub fn deb_cmp(a: &str, b: &str) -> Ordering {
    let split = |v: &str| -> (u64, String, String) {
        let (epoch, rest) = match v.split_once(':') {
            Some((e, r)) if e.bytes().all(|c| c.is_ascii_digit()) && !e.is_empty() => (e.parse().unwrap_or(0), r),
            _ => (0, v),
        };
        let (up, rev) = rest.rsplit_once('-').unwrap_or((rest, ""));
        (epoch, up.to_string(), rev.to_string())
    };
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb).then_with(|| verrevcmp(&ua, &ub)).then_with(|| verrevcmp(&ra, &rb))
}

/// dpkg's character weight in a non-digit run: `~` before everything (even
/// the end), then the end, then letters, then everything else.
fn order(c: Option<u8>) -> i32 {
    match c {
        Some(b'~') => -1,
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => c as i32,
        Some(c) => c as i32 + 256,
    }
}

fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        // The non-digit prefix, character by character.
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let ac = order(a.get(i).copied().filter(|c| !c.is_ascii_digit()));
            let bc = order(b.get(j).copied().filter(|c| !c.is_ascii_digit()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        // Then the digit run, numerically.
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        let (si, sj) = (i, j);
        while i < a.len() && a[i].is_ascii_digit() {
            i += 1;
        }
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let (na, nb) = (&a[si..i], &b[sj..j]);
        let ord = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
        if ord.is_ne() {
            return ord;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_ordering() {
        use Ordering::*;
        for (a, b, want) in [
            ("1.0", "1.0", Equal),
            ("1.0-1", "1.0-2", Less),
            ("1.10", "1.9", Greater),
            ("1.0~rc1", "1.0", Less),
            ("1.0~rc1-1", "1.0~rc2-1", Less),
            ("1:0.9", "2.0", Greater),
            ("2.0", "1:0.1", Less),
            ("1.0+b1", "1.0", Greater),
            ("1.0a", "1.0+", Less),
            ("7.88.1-10+deb12u5", "7.88.1-10+deb12u12", Less),
            ("1.2.3-1", "1.2.3-1ubuntu1", Less),
            ("001.0", "1.0", Equal),
        ] {
            assert_eq!(deb_cmp(a, b), want, "{a} vs {b}");
            assert_eq!(deb_cmp(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn globs() {
        assert!(glob_match("1.2.*", "1.2.3-1"));
        assert!(glob_match("1.2.*", "1.2."));
        assert!(!glob_match("1.2.*", "1.20.1"));
        assert!(glob_match("1.?.3*", "1.4.3-2"));
        assert!(glob_match("*deb12*", "7.88.1-10+deb12u5"));
        assert!(!glob_match("1.2", "1.2.3"));
        assert!(is_glob("1.*") && !is_glob("1.2"));
    }
}
