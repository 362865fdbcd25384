//! File permission modes: quoted octal strings ("0644") or chmod's symbolic
//! clauses ("u=rw,go=r", "go-w", "a+X").

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Permission bits (including setuid, setgid and sticky), at most 0o7777.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mode(pub u32);

impl Mode {
    pub fn parse(s: &str) -> Result<Self, String> {
        let digits = s.trim();
        if !(3..=4).contains(&digits.len()) || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return Err(format!("invalid mode {s:?}: expected 3 or 4 octal digits such as \"0644\""));
        }
        u32::from_str_radix(digits, 8).map(Mode).map_err(|e| format!("invalid mode {s:?}: {e}"))
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            S(String),
            N(i64),
        }
        match Raw::deserialize(d)? {
            Raw::S(s) => Mode::parse(&s).map_err(serde::de::Error::custom),
            Raw::N(n) => Err(serde::de::Error::custom(format!(
                "mode must be a quoted string such as \"0644\"; YAML reads the bare number {n} as decimal"
            ))),
        }
    }
}

impl Serialize for Mode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl JsonSchema for Mode {
    fn schema_name() -> Cow<'static, str> {
        "Mode".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^[0-7]{3,4}$",
            "description": "Octal permission bits as a quoted string, e.g. \"0644\""
        })
    }
}

/// A mode as a recipe gives it: absolute octal bits, or symbolic clauses
/// applied to the current bits (to 0644 for a new file, 0755 for a new
/// directory).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FileMode {
    Octal(Mode),
    Symbolic(Symbolic),
}

/// chmod's symbolic clauses, parsed: `[ugoa]*([-+=][rwxXst]*)+`, separated by `,`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Symbolic {
    text: String,
    clauses: Vec<Clause>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Clause {
    /// The classes' bit masks (u: 0o4700, g: 0o2070, o: 0o1007).
    who: u32,
    ops: Vec<(u8, Perms)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
struct Perms {
    r: bool,
    w: bool,
    x: bool,
    /// `X`: execute for directories, or where some execute bit is already set.
    big_x: bool,
    s: bool,
    t: bool,
}

impl Symbolic {
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!("invalid mode {text:?}: {why}; expected octal (\"0644\") or symbolic (\"u=rw,go=r\", \"go-w\")")
        };
        if text.is_empty() || text.len() > 128 {
            return Err(bad("empty or too long"));
        }
        let mut clauses = Vec::new();
        for part in text.split(',') {
            let bytes = part.as_bytes();
            let mut i = 0;
            let mut who = 0;
            while i < bytes.len() && b"ugoa".contains(&bytes[i]) {
                who |= match bytes[i] {
                    b'u' => 0o4700,
                    b'g' => 0o2070,
                    b'o' => 0o1007,
                    _ => 0o7777,
                };
                i += 1;
            }
            if who == 0 {
                // No class: all of them (the umask is not consulted: the result
                // must not depend on the agent's environment).
                who = 0o7777;
            }
            let mut ops = Vec::new();
            while i < bytes.len() {
                let op = bytes[i];
                if !b"+-=".contains(&op) {
                    return Err(bad(&format!("`{}` is not an operator (+, - or =)", op as char)));
                }
                i += 1;
                let mut p = Perms::default();
                while i < bytes.len() && !b"+-=".contains(&bytes[i]) {
                    match bytes[i] {
                        b'r' => p.r = true,
                        b'w' => p.w = true,
                        b'x' => p.x = true,
                        b'X' => p.big_x = true,
                        b's' => p.s = true,
                        b't' => p.t = true,
                        c => return Err(bad(&format!("`{}` is not a permission (r, w, x, X, s, t)", c as char))),
                    }
                    i += 1;
                }
                ops.push((op, p));
            }
            if ops.is_empty() {
                return Err(bad(&format!("clause {part:?} has no operator")));
            }
            clauses.push(Clause { who, ops });
        }
        Ok(Symbolic { text: text.to_string(), clauses })
    }

    /// The bits after applying the clauses to `have`.
    pub fn apply(&self, have: u32, is_dir: bool) -> u32 {
        let mut mode = have & 0o7777;
        for c in &self.clauses {
            for (op, p) in &c.ops {
                let exec = p.x || (p.big_x && (is_dir || mode & 0o111 != 0));
                let mut bits = 0;
                if p.r {
                    bits |= 0o444;
                }
                if p.w {
                    bits |= 0o222;
                }
                if exec {
                    bits |= 0o111;
                }
                if p.s {
                    bits |= 0o6000;
                }
                if p.t {
                    bits |= 0o1000;
                }
                bits &= c.who;
                match op {
                    b'+' => mode |= bits,
                    b'-' => mode &= !bits,
                    // `=` clears the classes' rwx (and their special bits), then sets.
                    _ => mode = (mode & !(c.who & 0o7777)) | bits,
                }
            }
        }
        mode
    }
}

impl FileMode {
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
            return Mode::parse(t).map(FileMode::Octal);
        }
        Symbolic::parse(t).map(FileMode::Symbolic)
    }

    /// The bits a path with `have` must get.
    pub fn resolve(&self, have: u32, is_dir: bool) -> u32 {
        match self {
            FileMode::Octal(m) => m.0,
            FileMode::Symbolic(s) => s.apply(have, is_dir),
        }
    }

    /// The bits of a new path: symbolic clauses start from 0644 (files) or 0755 (directories).
    pub fn for_new(&self, is_dir: bool) -> u32 {
        self.resolve(if is_dir { 0o755 } else { 0o644 }, is_dir)
    }

    pub fn is_symbolic(&self) -> bool {
        matches!(self, FileMode::Symbolic(_))
    }
}

impl From<Mode> for FileMode {
    fn from(m: Mode) -> Self {
        FileMode::Octal(m)
    }
}

impl std::fmt::Display for FileMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileMode::Octal(m) => m.fmt(f),
            FileMode::Symbolic(s) => f.write_str(&s.text),
        }
    }
}

impl<'de> Deserialize<'de> for FileMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            S(String),
            N(i64),
        }
        match Raw::deserialize(d)? {
            Raw::S(s) => FileMode::parse(&s).map_err(serde::de::Error::custom),
            Raw::N(n) => Err(serde::de::Error::custom(format!(
                "mode must be a quoted string such as \"0644\"; YAML reads the bare number {n} as decimal"
            ))),
        }
    }
}

impl Serialize for FileMode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl JsonSchema for FileMode {
    fn schema_name() -> Cow<'static, str> {
        "FileMode".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^([0-7]{3,4}|[ugoa]*([-+=][rwxXst]*)+(,[ugoa]*([-+=][rwxXst]*)+)*)$",
            "description": "Octal bits as a quoted string (\"0644\") or chmod's symbolic clauses (\"u=rw,go=r\", \"go-w\")"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_octal_strings_only() {
        assert_eq!(Mode::parse("0644").unwrap().0, 0o644);
        assert_eq!(Mode::parse("755").unwrap().0, 0o755);
        assert!(Mode::parse("0648").is_err());
        assert!(Mode::parse("rwx").is_err());
        assert!(serde_yaml::from_str::<Mode>("644").is_err());
        assert_eq!(Mode(0o4755).to_string(), "4755");
    }

    #[test]
    fn symbolic_modes_apply_as_chmod_does() {
        let m = |s: &str| FileMode::parse(s).expect(s);
        assert_eq!(m("u=rw,go=r").resolve(0o777, false), 0o644);
        assert_eq!(m("go-w").resolve(0o777, false), 0o755);
        assert_eq!(m("a+X").resolve(0o644, false), 0o644, "X: not for a file without x");
        assert_eq!(m("a+X").resolve(0o744, false), 0o755);
        assert_eq!(m("a+X").resolve(0o644, true), 0o755, "X: always for a directory");
        assert_eq!(m("u+s,+t").resolve(0o755, false), 0o5755);
        assert_eq!(m("o=").resolve(0o777, false), 0o770);
        assert_eq!(m("u=rwx,g=rx,o=").resolve(0o4000, false), 0o750, "= clears u's setuid");
        assert_eq!(m("u+r-x").resolve(0o100, false), 0o400);
        assert_eq!(m("0640").resolve(0o777, true), 0o640);
        assert_eq!(m("go-w").for_new(true), 0o755);
        for bad in ["u", "u+q", "rw", "0648", "u=rw,", ""] {
            assert!(FileMode::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(m("go-w").to_string(), "go-w");
    }
}
