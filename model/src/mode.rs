//! File permission modes, written as quoted octal strings ("0644").

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
}
