//! Glob pins (`version: "1.2.*"`) for both providers. The ordering of
//! versions is the model's (`tend_model::version::compare`, dpkg's and rpm's
//! algorithms), shared with the recipe language's version helpers.

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

#[cfg(test)]
mod tests {
    use super::*;

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
