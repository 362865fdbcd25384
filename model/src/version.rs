//! Version comparison the way package managers do it: dpkg's order for Debian
//! versions, rpm's `rpmvercmp` for RPM ones. Comparing versions as text gets
//! `1.10 < 1.9` wrong, and comparing them as numbers cannot read `7.4p1`,
//! `1.0~rc1` or `2:1.0`; recipes ask "is the installed openssl at least 3.0?",
//! and the answer must be the one `apt` or `dnf` would give.
//!
//! Both algorithms are written from their published definitions (dpkg's
//! `lib/dpkg/version.c` and deb-version(5); rpm's `rpmio/rpmvercmp.c` and its
//! `rpmvercmp.at` test table) and checked against their test vectors below.
//! Neither can fail: any string compares, as it does in dpkg and rpm.

use std::cmp::Ordering;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which package manager's order to compare versions in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// dpkg's: `[epoch:]upstream[-revision]`, `~` before everything.
    Debian,
    /// rpm's: `[epoch:]version[-release]`, alphanumeric segments, `~` and `^`.
    Rpm,
    /// The host's package manager's when its `os.family` is known; otherwise
    /// dpkg's for two strings in Debian's syntax, rpm's for anything else.
    #[default]
    Auto,
}

impl Scheme {
    /// The names accepted in recipes and templates.
    pub const NAMES: &'static str = "debian, rpm or auto";

    /// `debian`, `rpm` or `auto`.
    pub fn parse(name: &str) -> Option<Scheme> {
        match name {
            "debian" => Some(Scheme::Debian),
            "rpm" => Some(Scheme::Rpm),
            "auto" => Some(Scheme::Auto),
            _ => None,
        }
    }

    /// The package format of an `os.family` fact: versions that come from a
    /// host's package manager are ordered as that package manager orders them.
    /// Arch's pacman uses rpm's algorithm. Other families (Alpine's apk has
    /// its own) are unknown.
    pub fn of_family(family: &str) -> Option<Scheme> {
        match family {
            "debian" => Some(Scheme::Debian),
            "redhat" | "suse" | "arch" => Some(Scheme::Rpm),
            _ => None,
        }
    }

    /// `Auto` made definite for a host with this `os.family` (None or an
    /// unknown family leave it `Auto`); `Debian` and `Rpm` stay as they are.
    pub fn on_host(self, family: Option<&str>) -> Scheme {
        match self {
            Scheme::Auto => family.and_then(Scheme::of_family).unwrap_or(Scheme::Auto),
            definite => definite,
        }
    }
}

/// Compares two versions. Leading and trailing whitespace is ignored.
///
/// `Auto` (with no host to go by) uses dpkg's order when both strings are in
/// Debian's syntax (ASCII letters, digits and `. + ~ : -`), and rpm's
/// otherwise (`_`, `^` or anything else Debian does not allow). On the
/// versions people write (`1.10`, `7.4p1`, `2:1.0`, `1.0~rc1`, `1.2.3-1`) the
/// two agree; dpkg's is preferred because it is a total order, whereas rpm's
/// ignores a release that only one side has (`1.0` equals `1.0-3`) and treats
/// every separator alike (`1_0` equals `1.0`).
pub fn compare(a: &str, b: &str, scheme: Scheme) -> Ordering {
    let (a, b) = (a.trim(), b.trim());
    match scheme {
        Scheme::Debian => debian(a, b),
        Scheme::Rpm => rpm(a, b),
        Scheme::Auto if debian_syntax(a) && debian_syntax(b) => debian(a, b),
        Scheme::Auto => rpm(a, b),
    }
}

fn debian_syntax(v: &str) -> bool {
    !v.is_empty() && v.bytes().all(|c| c.is_ascii_alphanumeric() || b".+~:-".contains(&c))
}

/// Two runs of digits as numbers, however long: leading zeros do not count.
fn numeric(a: &[u8], b: &[u8]) -> Ordering {
    let strip = |s: &[u8]| {
        let zeros = s.iter().take_while(|&&c| c == b'0').count();
        s.get(zeros..).unwrap_or_default().to_vec()
    };
    let (a, b) = (strip(a), strip(b));
    a.len().cmp(&b.len()).then_with(|| a.cmp(&b))
}

// ---- dpkg ----

/// dpkg: epoch (numeric), then upstream version, then revision, the last two
/// with `verrevcmp`. A missing epoch is 0 and a missing revision is empty.
fn debian(a: &str, b: &str) -> Ordering {
    let (ea, ua, ra) = debian_parts(a);
    let (eb, ub, rb) = debian_parts(b);
    numeric(ea.as_bytes(), eb.as_bytes())
        .then_with(|| verrevcmp(ua.as_bytes(), ub.as_bytes()))
        .then_with(|| verrevcmp(ra.as_bytes(), rb.as_bytes()))
}

/// `epoch:upstream-revision`: the epoch ends at the first `:`, the revision
/// starts after the last `-`. dpkg rejects a non-numeric epoch; here it is
/// read as part of the upstream version instead, so that every string compares.
fn debian_parts(v: &str) -> (&str, &str, &str) {
    let (epoch, rest) = match v.split_once(':') {
        Some((e, rest)) if !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit()) => (e, rest),
        _ => ("0", v),
    };
    match rest.rsplit_once('-') {
        Some((upstream, revision)) => (epoch, upstream, revision),
        None => (epoch, rest, ""),
    }
}

/// dpkg's weight of a character in the non-digit part: `~` before the end of
/// the part, the end before letters, letters before everything else.
fn weight(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp`: alternately a non-digit part, compared character by
/// character by [`weight`], and a digit part, compared as a number.
fn verrevcmp(a: &[u8], b: &[u8]) -> Ordering {
    let digit = |s: &[u8], i: usize| s.get(i).is_some_and(u8::is_ascii_digit);
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !digit(a, i)) || (j < b.len() && !digit(b, j)) {
            let (wa, wb) = (weight(a.get(i).copied()), weight(b.get(j).copied()));
            if wa != wb {
                return wa.cmp(&wb);
            }
            // Equal weights of non-digits: the same character on both sides.
            i += 1;
            j += 1;
        }
        let (si, sj) = (i, j);
        while digit(a, i) {
            i += 1;
        }
        while digit(b, j) {
            j += 1;
        }
        let order = numeric(a.get(si..i).unwrap_or_default(), b.get(sj..j).unwrap_or_default());
        if order != Ordering::Equal {
            return order;
        }
    }
    Ordering::Equal
}

// ---- rpm ----

/// rpm's `rpmverCmp`: epoch, then version, then release, each with
/// `rpmvercmp`. A missing epoch is 0; a release is compared only when both
/// sides have one, so `1.0` matches `1.0-3` (as in rpm's dependency checks).
fn rpm(a: &str, b: &str) -> Ordering {
    let (ea, va, ra) = rpm_parts(a);
    let (eb, vb, rb) = rpm_parts(b);
    rpmvercmp(ea, eb).then_with(|| rpmvercmp(va, vb)).then_with(|| match (ra, rb) {
        (Some(ra), Some(rb)) => rpmvercmp(ra, rb),
        _ => Ordering::Equal,
    })
}

/// `epoch:version-release`: the epoch is the leading digits when a `:`
/// follows them (`:1.0` has epoch 0), the release follows the last `-`.
fn rpm_parts(v: &str) -> (&str, &str, Option<&str>) {
    let digits = v.bytes().take_while(u8::is_ascii_digit).count();
    let (epoch, rest) = match (v.as_bytes().get(digits), v.get(digits + 1..)) {
        (Some(b':'), Some(rest)) => (v.get(..digits).filter(|e| !e.is_empty()).unwrap_or("0"), rest),
        _ => ("0", v),
    };
    match rest.rsplit_once('-') {
        Some((version, release)) => (epoch, version, Some(release)),
        None => (epoch, rest, None),
    }
}

/// rpm's `rpmvercmp`: the strings are cut into runs of ASCII digits and runs
/// of ASCII letters; anything else only separates them (and all separators
/// are alike). Runs compare pairwise: numbers as numbers, letters as bytes,
/// and a number is newer than letters. `~` sorts before everything, even the
/// end of the string (`1.0~rc1 < 1.0`); `^` sorts after the end but before
/// any further run (`1.0 < 1.0^git1 < 1.0.1`). Otherwise the side with runs
/// left over is newer.
fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let separator = |c: &u8| !c.is_ascii_alphanumeric() && *c != b'~' && *c != b'^';
    let (mut i, mut j) = (0, 0);
    loop {
        while a.get(i).is_some_and(separator) {
            i += 1;
        }
        while b.get(j).is_some_and(separator) {
            j += 1;
        }
        let (x, y) = (a.get(i).copied(), b.get(j).copied());
        if x == Some(b'~') || y == Some(b'~') {
            if x != Some(b'~') {
                return Ordering::Greater;
            }
            if y != Some(b'~') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        if x == Some(b'^') || y == Some(b'^') {
            match (x, y) {
                (None, _) => return Ordering::Less,
                (_, None) => return Ordering::Greater,
                (Some(b'^'), Some(b'^')) => {
                    i += 1;
                    j += 1;
                    continue;
                }
                (Some(b'^'), _) => return Ordering::Less,
                _ => return Ordering::Greater,
            }
        }
        let (Some(x), Some(_)) = (x, y) else { break };
        let is_num = x.is_ascii_digit();
        let class = |c: &u8| if is_num { c.is_ascii_digit() } else { c.is_ascii_alphabetic() };
        let ei = i + a.get(i..).unwrap_or_default().iter().take_while(|c| class(c)).count();
        let ej = j + b.get(j..).unwrap_or_default().iter().take_while(|c| class(c)).count();
        if ej == j {
            // Different kinds of run: the number is newer.
            return if is_num { Ordering::Greater } else { Ordering::Less };
        }
        let (ra, rb) = (a.get(i..ei).unwrap_or_default(), b.get(j..ej).unwrap_or_default());
        let order = if is_num { numeric(ra, rb) } else { ra.cmp(rb) };
        if order != Ordering::Equal {
            return order;
        }
        (i, j) = (ei, ej);
    }
    match (i >= a.len(), j >= b.len()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(o: Ordering) -> i32 {
        match o {
            Ordering::Less => -1,
            Ordering::Equal => 0,
            Ordering::Greater => 1,
        }
    }

    /// dpkg's own table (scripts/t/Dpkg_Version.t), `a b expected`.
    const DPKG: &[(&str, &str, i32)] = &[
        ("1.0-1", "2.0-2", -1),
        ("2.2~rc-4", "2.2-1", -1),
        ("2.2-1", "2.2~rc-4", 1),
        ("1.0000-1", "1.0-1", 0),
        ("1", "0:1", 0),
        ("0", "0:0-0", 0),
        ("2:2.5", "1:7.5", 1),
        ("1:foo", "foo", 1),
        ("0:foo", "foo", 0),
        ("foo", "foo", 0),
        ("foo-", "foo", 0),
        ("foo-", "foo-0", 0),
        ("foo", "fo", 1),
        ("foo-", "foo+", -1),
        ("foo~1", "foo", -1),
        ("foo~foo+Bar", "foo~foo+bar", -1),
        ("foo~~", "foo~", -1),
        ("1~", "1", -1),
        ("12345+that-really-is-some-ver-0", "12345+that-really-is-some-ver-10", -1),
        ("foo-0", "foo-01", -1),
        ("foo.bar", "foobar", 1),
        ("foo.bar", "foo1bar", 1),
        ("foo.bar", "foo0bar", 1),
        ("1foo-1", "foo-1", -1),
        ("foo2.0", "foo2", 1),
        ("foo2.0.0", "foo2.10.0", -1),
        ("foo2.0", "foo2.0.0", -1),
        ("foo2.0", "foo2.10", -1),
        ("foo2.1", "foo2.10", -1),
        ("1.09", "1.9", 0),
        ("1.0.8+nmu1", "1.0.8", 1),
        ("3.11", "3.10+nmu1", 1),
        ("0.9j-20080306-4", "0.9i-20070324-2", 1),
        ("1.2.0~b7-1", "1.2.0~b6-1", 1),
        ("1.011-1", "1.06-2", 1),
        ("0.0.9+dfsg1-1", "0.0.8+dfsg1-3", 1),
        ("4.6.99+svn6582-1", "4.6.99+svn6496-1", 1),
        ("53", "52", 1),
        ("0.9.9~pre122-1", "0.9.9~pre111-1", 1),
        ("2:2.3.2-2+lenny2", "2:2.3.2-2", 1),
        ("1:3.8.1-1", "3.8.GA-1", 1),
        ("1.0.1+gpl-1", "1.0.1-2", 1),
        ("1a", "1000a", -1),
        // libdpkg's t-version.c: parsing and the parts.
        ("0:0-00", "0:00-0", 0),
        ("1:2-3", "1:2-3", 0),
        ("0:0-0", "1:0-0", -1),
        ("0:a-0", "0:b-0", -1),
        ("0:0-a", "0:0-b", -1),
        ("0:0-0-0", "0-0-0", 0),
        ("0:0:0-0", "0:0:0-0", 0),
        ("0:0-0:0-0", "0:0-0:0-0", 0),
        ("  \t0:0-1", "0:0-1\t  ", 0),
    ];

    #[test]
    fn dpkg_vectors() {
        for &(a, b, want) in DPKG {
            assert_eq!(sign(compare(a, b, Scheme::Debian)), want, "dpkg: {a} vs {b}");
            assert_eq!(sign(compare(b, a, Scheme::Debian)), -want, "dpkg: {b} vs {a}");
        }
    }

    /// rpm's own table (tests/rpmvercmp.at), `a b expected`, for `rpmvercmp`.
    const RPMVERCMP: &[(&str, &str, i32)] = &[
        ("1.0", "1.0", 0),
        ("1.0", "2.0", -1),
        ("2.0", "1.0", 1),
        ("2.0.1", "2.0.1", 0),
        ("2.0", "2.0.1", -1),
        ("2.0.1", "2.0", 1),
        ("2.0.1a", "2.0.1a", 0),
        ("2.0.1a", "2.0.1", 1),
        ("2.0.1", "2.0.1a", -1),
        ("5.5p1", "5.5p1", 0),
        ("5.5p1", "5.5p2", -1),
        ("5.5p2", "5.5p1", 1),
        ("5.5p10", "5.5p10", 0),
        ("5.5p1", "5.5p10", -1),
        ("5.5p10", "5.5p1", 1),
        ("10xyz", "10.1xyz", -1),
        ("10.1xyz", "10xyz", 1),
        ("xyz10", "xyz10", 0),
        ("xyz10", "xyz10.1", -1),
        ("xyz10.1", "xyz10", 1),
        ("xyz.4", "xyz.4", 0),
        ("xyz.4", "8", -1),
        ("8", "xyz.4", 1),
        ("xyz.4", "2", -1),
        ("2", "xyz.4", 1),
        ("5.5p2", "5.6p1", -1),
        ("5.6p1", "5.5p2", 1),
        ("5.6p1", "6.5p1", -1),
        ("6.5p1", "5.6p1", 1),
        ("6.0.rc1", "6.0", 1),
        ("6.0", "6.0.rc1", -1),
        ("10b2", "10a1", 1),
        ("10a2", "10b2", -1),
        ("1.0aa", "1.0aa", 0),
        ("1.0a", "1.0aa", -1),
        ("1.0aa", "1.0a", 1),
        ("10.0001", "10.0001", 0),
        ("10.0001", "10.1", 0),
        ("10.1", "10.0001", 0),
        ("10.0001", "10.0039", -1),
        ("10.0039", "10.0001", 1),
        ("4.999.9", "5.0", -1),
        ("5.0", "4.999.9", 1),
        ("20101121", "20101121", 0),
        ("20101121", "20101122", -1),
        ("20101122", "20101121", 1),
        ("2_0", "2_0", 0),
        ("2.0", "2_0", 0),
        ("2_0", "2.0", 0),
        ("a", "a", 0),
        ("a+", "a+", 0),
        ("a+", "a_", 0),
        ("a_", "a+", 0),
        ("+a", "+a", 0),
        ("+a", "_a", 0),
        ("_a", "+a", 0),
        ("+_", "+_", 0),
        ("_+", "+_", 0),
        ("_+", "_+", 0),
        ("+", "_", 0),
        ("_", "+", 0),
        ("1.0~rc1", "1.0~rc1", 0),
        ("1.0~rc1", "1.0", -1),
        ("1.0", "1.0~rc1", 1),
        ("1.0~rc1", "1.0~rc2", -1),
        ("1.0~rc2", "1.0~rc1", 1),
        ("1.0~rc1~git123", "1.0~rc1~git123", 0),
        ("1.0~rc1~git123", "1.0~rc1", -1),
        ("1.0~rc1", "1.0~rc1~git123", 1),
        ("1.0^", "1.0^", 0),
        ("1.0^", "1.0", 1),
        ("1.0", "1.0^", -1),
        ("1.0^git1", "1.0^git1", 0),
        ("1.0^git1", "1.0", 1),
        ("1.0", "1.0^git1", -1),
        ("1.0^git1", "1.0^git2", -1),
        ("1.0^git2", "1.0^git1", 1),
        ("1.0^git1", "1.01", -1),
        ("1.01", "1.0^git1", 1),
        ("1.0^20160101", "1.0^20160101", 0),
        ("1.0^20160101", "1.0.1", -1),
        ("1.0.1", "1.0^20160101", 1),
        ("1.0^20160101^git1", "1.0^20160101^git1", 0),
        ("1.0^20160102", "1.0^20160101^git1", 1),
        ("1.0^20160101^git1", "1.0^20160102", -1),
        ("1.0~rc1^git1", "1.0~rc1^git1", 0),
        ("1.0~rc1^git1", "1.0~rc1", 1),
        ("1.0~rc1", "1.0~rc1^git1", -1),
        ("1.0^git1~pre", "1.0^git1~pre", 0),
        ("1.0^git1", "1.0^git1~pre", 1),
        ("1.0^git1~pre", "1.0^git1", -1),
        // The "oddities" rpm documents (RhBug:811992): kept as rpm has them.
        ("1b.fc17", "1b.fc17", 0),
        ("1b.fc17", "1.fc17", -1),
        ("1.fc17", "1b.fc17", 1),
        ("1g.fc17", "1g.fc17", 0),
        ("1g.fc17", "1.fc17", 1),
        ("1.fc17", "1g.fc17", -1),
        // Non-ASCII bytes are separators, so these are all the same.
        ("1.1.α", "1.1.α", 0),
        ("1.1.α", "1.1.β", 0),
        ("1.1.αα", "1.1.α", 0),
        ("1.1.ββ", "1.1.αα", 0),
    ];

    #[test]
    fn rpmvercmp_vectors() {
        for &(a, b, want) in RPMVERCMP {
            assert_eq!(sign(rpmvercmp(a, b)), want, "rpmvercmp: {a} vs {b}");
            // None of them has an epoch or a release, so the whole-EVR compare agrees.
            assert_eq!(sign(compare(a, b, Scheme::Rpm)), want, "rpm: {a} vs {b}");
        }
    }

    #[test]
    fn rpm_epoch_and_release() {
        let cmp = |a, b| sign(compare(a, b, Scheme::Rpm));
        assert_eq!(cmp("1:1.0", "2.0"), 1, "an epoch beats any version");
        assert_eq!(cmp("0:1.0", "1.0"), 0);
        assert_eq!(cmp(":1.0", "1.0"), 0, "an empty epoch is 0");
        assert_eq!(cmp("1.0-1", "1.0-2"), -1);
        assert_eq!(cmp("1.0-10.el9", "1.0-9.el9"), 1);
        assert_eq!(cmp("1.0", "1.0-5"), 0, "a release only one side has is not compared");
        assert_eq!(cmp("1:3.0.7-27.el9", "1:3.0.7-24.el9"), 1);
        assert_eq!(cmp("2.34-83.el9_3.7", "2.34-83.el9_3.12"), -1);
        assert_eq!(cmp("a:1.0", "a:1.0"), 0, "not an epoch: just part of the version");
    }

    #[test]
    fn the_usual_questions() {
        for scheme in [Scheme::Debian, Scheme::Rpm, Scheme::Auto] {
            let cmp = |a, b| compare(a, b, scheme);
            assert_eq!(cmp("1.10", "1.9"), Ordering::Greater, "{scheme:?}");
            assert_eq!(cmp("2:1.0", "1.9"), Ordering::Greater, "{scheme:?}");
            assert_eq!(cmp("1.0~rc1", "1.0"), Ordering::Less, "{scheme:?}");
            assert_eq!(cmp("1.2.3-1", "1.2.3-2"), Ordering::Less, "{scheme:?}");
            assert_eq!(cmp("7.4p1", "7.9p1"), Ordering::Less, "{scheme:?}");
            assert_eq!(cmp("1.0", "1.0"), Ordering::Equal, "{scheme:?}");
            assert_eq!(cmp("1.0a", "1.0"), Ordering::Greater, "{scheme:?}");
            assert_eq!(cmp("1.0a", "1.0.1"), Ordering::Less, "{scheme:?}");
            assert_eq!(cmp("1.0", "1.0.0"), Ordering::Less, "{scheme:?}");
            assert_eq!(cmp(" 1.0 ", "1.0"), Ordering::Equal, "{scheme:?}");
            assert_eq!(cmp("3.0.11-1~deb12u2", "3.0.11-1"), Ordering::Less, "{scheme:?}");
            assert_eq!(cmp("99999999999999999999999.1", "99999999999999999999998.2"), Ordering::Greater);
        }
    }

    #[test]
    fn where_the_schemes_differ() {
        // rpm ignores a release that one side lacks; dpkg compares it with "".
        assert_eq!(compare("1.0-1", "1.0", Scheme::Rpm), Ordering::Equal);
        assert_eq!(compare("1.0-1", "1.0", Scheme::Debian), Ordering::Greater);
        // dpkg orders separators, letters before them; rpm treats them alike.
        assert_eq!(compare("1.0+1", "1.0.1", Scheme::Debian), Ordering::Less);
        assert_eq!(compare("1.0+1", "1.0.1", Scheme::Rpm), Ordering::Equal);
        // Auto, with no host: Debian's syntax → dpkg; anything else → rpm.
        assert_eq!(compare("1.0-1", "1.0", Scheme::Auto), Ordering::Greater);
        assert_eq!(compare("1_0", "1.0", Scheme::Auto), Ordering::Equal);
        assert_eq!(compare("1.0^git1", "1.0", Scheme::Auto), Ordering::Greater);
    }

    #[test]
    fn auto_follows_the_host() {
        assert_eq!(Scheme::Auto.on_host(Some("debian")), Scheme::Debian);
        assert_eq!(Scheme::Auto.on_host(Some("redhat")), Scheme::Rpm);
        assert_eq!(Scheme::Auto.on_host(Some("suse")), Scheme::Rpm);
        assert_eq!(Scheme::Auto.on_host(Some("alpine")), Scheme::Auto);
        assert_eq!(Scheme::Auto.on_host(Some("")), Scheme::Auto);
        assert_eq!(Scheme::Auto.on_host(None), Scheme::Auto);
        assert_eq!(Scheme::Rpm.on_host(Some("debian")), Scheme::Rpm);
        assert_eq!(Scheme::parse("rpm"), Some(Scheme::Rpm));
        assert_eq!(Scheme::parse("RPM"), None);
    }

    #[test]
    fn any_bytes_compare_without_panicking() {
        let odd = ["", "~", "^", ":", "-", "0:", ":-", "~~^^", "00000", "1:", "é", "\u{0}", "1-", "-1", "::::", "^~"];
        for a in odd {
            for b in odd {
                for s in [Scheme::Debian, Scheme::Rpm, Scheme::Auto] {
                    let ab = compare(a, b, s);
                    assert_eq!(ab, compare(b, a, s).reverse(), "{a:?} vs {b:?} ({s:?})");
                }
            }
        }
    }
}
