//! Secrets at rest: sensitive parameter values are stored sealed with
//! AES-256-GCM under a server key, and opened only for the agent that runs
//! with them. Every other reader sees `(sensitive)`.
//!
//! The keys live in `DATA_DIR/secrets.keys` (0600), one `ID HEX` line each;
//! the first seals, every one opens. `tend-server rotate-secret-key` puts a
//! new key first, seals every stored value again under it and drops the old
//! keys (docs/limits.md, "Secrets at rest"). Replicas on one PostgreSQL
//! share the file, as they share the CA.

use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value};

pub const KEYS_FILE: &str = "secrets.keys";
/// The key a sealed JSON value is kept under: `{"$sealed": "v1:ID:BASE64"}`.
const SEALED: &str = "$sealed";
/// The prefix of a sealed text column (a command's delivery).
const TEXT_PREFIX: &str = "sealed:";
/// What readers see instead of a sealed value.
pub const REDACTED: &str = "(sensitive)";

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}: each line is `ID HEX` with a 32-byte key")]
    BadKeyFile(PathBuf),
    #[error("the system random number generator failed")]
    Random,
    #[error("a sealed value names key {0}, which is not in {KEYS_FILE}")]
    UnknownKey(String),
    #[error("a sealed value does not open (damaged, or sealed under another key)")]
    Damaged,
}

pub struct Secrets {
    path: PathBuf,
    /// (id, raw key); the first seals.
    keys: Vec<(String, [u8; 32])>,
}

fn random<const N: usize>() -> Result<[u8; N], SecretsError> {
    let mut b = [0u8; N];
    SystemRandom::new().fill(&mut b).map_err(|_| SecretsError::Random)?;
    Ok(b)
}

fn key_id(key: &[u8; 32]) -> String {
    crate::pki::sha256_hex(key)[..8].to_string()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Secrets {
    /// Loads `DIR/secrets.keys`, creating it with one new key if missing.
    pub fn load_or_create(dir: &Path) -> Result<Secrets, SecretsError> {
        let path = dir.join(KEYS_FILE);
        let io = |source| SecretsError::Io { path: path.clone(), source };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let mut keys = Vec::new();
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    let (id, h) = line.split_once(' ').ok_or_else(|| SecretsError::BadKeyFile(path.clone()))?;
                    let bytes: Vec<u8> = (0..h.trim().len())
                        .step_by(2)
                        .map(|i| h.trim().get(i..i + 2).and_then(|x| u8::from_str_radix(x, 16).ok()))
                        .collect::<Option<_>>()
                        .ok_or_else(|| SecretsError::BadKeyFile(path.clone()))?;
                    let key: [u8; 32] = bytes.try_into().map_err(|_| SecretsError::BadKeyFile(path.clone()))?;
                    keys.push((id.to_string(), key));
                }
                if keys.is_empty() {
                    return Err(SecretsError::BadKeyFile(path));
                }
                Ok(Secrets { path, keys })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = random::<32>()?;
                let s = Secrets { path, keys: vec![(key_id(&key), key)] };
                s.save()?;
                Ok(s)
            }
            Err(e) => Err(io(e)),
        }
    }

    fn save(&self) -> Result<(), SecretsError> {
        let text: String = self.keys.iter().map(|(id, k)| format!("{id} {}\n", hex(k))).collect();
        crate::pki::write_secret(&self.path, &text, 0o600)
            .map_err(|e| SecretsError::Io { path: self.path.clone(), source: std::io::Error::other(e.to_string()) })
    }

    /// Puts a new key first (it seals from now on); the old ones still open.
    pub fn add_key(&mut self) -> Result<String, SecretsError> {
        let key = random::<32>()?;
        let id = key_id(&key);
        self.keys.insert(0, (id.clone(), key));
        self.save()?;
        Ok(id)
    }

    /// Keeps only the sealing key.
    pub fn drop_old_keys(&mut self) -> Result<usize, SecretsError> {
        let n = self.keys.len() - 1;
        self.keys.truncate(1);
        self.save()?;
        Ok(n)
    }

    fn cipher(key: &[u8; 32]) -> LessSafeKey {
        // A 32-byte key is always a valid AES-256 key.
        #[allow(clippy::expect_used)]
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("32-byte AES key"))
    }

    /// `v1:ID:BASE64(nonce ‖ ciphertext ‖ tag)`.
    fn seal_bytes(&self, plain: &[u8]) -> Result<String, SecretsError> {
        let (id, key) = &self.keys[0];
        let nonce = random::<NONCE_LEN>()?;
        let mut buf = plain.to_vec();
        Self::cipher(key)
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(id.as_bytes()), &mut buf)
            .map_err(|_| SecretsError::Damaged)?;
        let mut out = nonce.to_vec();
        out.extend(buf);
        Ok(format!("v1:{id}:{}", B64.encode(out)))
    }

    fn open_bytes(&self, sealed: &str) -> Result<Vec<u8>, SecretsError> {
        let mut parts = sealed.splitn(3, ':');
        let (Some("v1"), Some(id), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(SecretsError::Damaged);
        };
        let (_, key) = self.keys.iter().find(|(k, _)| k == id).ok_or_else(|| SecretsError::UnknownKey(id.into()))?;
        let raw = B64.decode(b64).map_err(|_| SecretsError::Damaged)?;
        if raw.len() < NONCE_LEN {
            return Err(SecretsError::Damaged);
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SecretsError::Damaged)?;
        let mut buf = ct.to_vec();
        let plain = Self::cipher(key)
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(id.as_bytes()), &mut buf)
            .map_err(|_| SecretsError::Damaged)?;
        Ok(plain.to_vec())
    }

    /// `params` with the values of `sensitive` sealed.
    pub fn seal_params(
        &self,
        params: &Map<String, Value>,
        sensitive: &[String],
    ) -> Result<Map<String, Value>, SecretsError> {
        params
            .iter()
            .map(|(k, v)| {
                if sensitive.contains(k) && !is_sealed(v) {
                    let sealed = self.seal_bytes(v.to_string().as_bytes())?;
                    Ok((k.clone(), serde_json::json!({ SEALED: sealed })))
                } else {
                    Ok((k.clone(), v.clone()))
                }
            })
            .collect()
    }

    /// `params` with every sealed value opened (for the agent that needs them).
    pub fn open_params(&self, params: &Map<String, Value>) -> Result<Map<String, Value>, SecretsError> {
        params
            .iter()
            .map(|(k, v)| match v.get(SEALED).and_then(Value::as_str) {
                Some(sealed) if is_sealed(v) => {
                    let plain = self.open_bytes(sealed)?;
                    Ok((k.clone(), serde_json::from_slice(&plain).map_err(|_| SecretsError::Damaged)?))
                }
                _ => Ok((k.clone(), v.clone())),
            })
            .collect()
    }

    /// A text column sealed whole: `sealed:v1:ID:…`.
    pub fn seal_text(&self, text: &str) -> Result<String, SecretsError> {
        Ok(format!("{TEXT_PREFIX}{}", self.seal_bytes(text.as_bytes())?))
    }

    /// Opens a column sealed by [`Secrets::seal_text`]; other text passes as it is.
    pub fn open_text(&self, text: &str) -> Result<String, SecretsError> {
        match text.strip_prefix(TEXT_PREFIX) {
            Some(sealed) => String::from_utf8(self.open_bytes(sealed)?).map_err(|_| SecretsError::Damaged),
            None => Ok(text.to_string()),
        }
    }

    /// Raw `name=value` parameters with the values of `sensitive` sealed as text.
    pub fn seal_raw(
        &self,
        raw: &[(String, String)],
        sensitive: &[String],
    ) -> Result<Vec<(String, String)>, SecretsError> {
        raw.iter()
            .map(|(k, v)| {
                let v =
                    if sensitive.contains(k) && !v.starts_with(TEXT_PREFIX) { self.seal_text(v)? } else { v.clone() };
                Ok((k.clone(), v))
            })
            .collect()
    }

    /// Raw parameters with every sealed value opened.
    pub fn open_raw(&self, raw: &[(String, String)]) -> Result<Vec<(String, String)>, SecretsError> {
        raw.iter().map(|(k, v)| Ok((k.clone(), self.open_text(v)?))).collect()
    }

    /// Seals again under the first key whatever `text` holds sealed (a
    /// sealed text column, or JSON with sealed values anywhere inside);
    /// None if it holds nothing sealed.
    pub fn reseal(&self, text: &str) -> Result<Option<String>, SecretsError> {
        if text.starts_with(TEXT_PREFIX) {
            return self.seal_text(&self.open_text(text)?).map(Some);
        }
        let Ok(mut v) = serde_json::from_str::<Value>(text) else { return Ok(None) };
        let mut changed = false;
        self.reseal_value(&mut v, &mut changed)?;
        Ok(changed.then(|| v.to_string()))
    }

    fn reseal_value(&self, v: &mut Value, changed: &mut bool) -> Result<(), SecretsError> {
        if is_sealed(v) {
            let plain = self.open_bytes(v[SEALED].as_str().unwrap_or_default())?;
            *v = serde_json::json!({ SEALED: self.seal_bytes(&plain)? });
            *changed = true;
            return Ok(());
        }
        match v {
            Value::String(s) if s.starts_with(TEXT_PREFIX) => {
                *s = self.seal_text(&self.open_text(s)?)?;
                *changed = true;
            }
            Value::Array(a) => a.iter_mut().try_for_each(|x| self.reseal_value(x, changed))?,
            Value::Object(m) => m.values_mut().try_for_each(|x| self.reseal_value(x, changed))?,
            _ => {}
        }
        Ok(())
    }
}

/// Raw parameters as every reader but the agent sees them.
pub fn redact_raw(raw: &[(String, String)]) -> Vec<(String, String)> {
    raw.iter()
        .map(|(k, v)| (k.clone(), if v.starts_with(TEXT_PREFIX) { REDACTED.to_string() } else { v.clone() }))
        .collect()
}

fn is_sealed(v: &Value) -> bool {
    v.as_object().is_some_and(|o| o.len() == 1 && o.get(SEALED).is_some_and(Value::is_string))
}

/// `params` as every reader but the agent sees them.
pub fn redact_params(params: &Map<String, Value>) -> Map<String, Value> {
    params.iter().map(|(k, v)| (k.clone(), if is_sealed(v) { Value::from(REDACTED) } else { v.clone() })).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_redact_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Secrets::load_or_create(dir.path()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(KEYS_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let params: Map<String, Value> = serde_json::from_str(r#"{"password": "hunter2", "port": 8080}"#).unwrap();
        let sealed = s.seal_params(&params, &["password".into()]).unwrap();
        let text = Value::Object(sealed.clone()).to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert_eq!(redact_params(&sealed)["password"], REDACTED);
        assert_eq!(redact_params(&sealed)["port"], 8080);
        assert_eq!(s.open_params(&sealed).unwrap(), params);
        let col = s.seal_text("{\"env\": \"hunter2\"}").unwrap();
        assert!(!col.contains("hunter2"));
        assert_eq!(s.open_text(&col).unwrap(), "{\"env\": \"hunter2\"}");
        assert_eq!(s.open_text("{}").unwrap(), "{}");
        // A second process reads the same keys.
        let again = Secrets::load_or_create(dir.path()).unwrap();
        assert_eq!(again.open_params(&sealed).unwrap(), params);
        // Rotation: a new first key, values sealed again, old keys dropped.
        s.add_key().unwrap();
        let resealed = s.reseal(&text).unwrap().unwrap();
        let col2 = s.reseal(&col).unwrap().unwrap();
        let raw = s.seal_raw(&[("pw".into(), "hunter2".into()), ("n".into(), "1".into())], &["pw".into()]).unwrap();
        assert!(!format!("{raw:?}").contains("hunter2"));
        assert_eq!(redact_raw(&raw)[0].1, REDACTED);
        let raw_text = serde_json::to_string(&raw).unwrap();
        let raw2: Vec<(String, String)> = serde_json::from_str(&s.reseal(&raw_text).unwrap().unwrap()).unwrap();
        assert_eq!(s.reseal("{\"a\": 1}").unwrap(), None);
        s.drop_old_keys().unwrap();
        let m: Map<String, Value> = serde_json::from_str(&resealed).unwrap();
        assert_eq!(s.open_params(&m).unwrap(), params);
        assert_eq!(s.open_text(&col2).unwrap(), "{\"env\": \"hunter2\"}");
        assert_eq!(s.open_raw(&raw2).unwrap(), [("pw".to_string(), "hunter2".to_string()), ("n".into(), "1".into())]);
        assert!(matches!(s.open_params(&sealed), Err(SecretsError::UnknownKey(_))));
        // Tampering is detected.
        let mut bad = sealed.clone();
        let v = bad["password"][SEALED].as_str().unwrap().to_string();
        bad["password"] = serde_json::json!({ SEALED: format!("{}A", &v[..v.len() - 2]) });
        assert!(s.open_params(&bad).is_err());
    }
}
