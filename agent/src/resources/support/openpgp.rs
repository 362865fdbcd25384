//! Fingerprints of the keys in an ASCII-armored OpenPGP public key block,
//! so that a repository key is checked against the fingerprint the recipe
//! trusts before it is installed. Only the packet framing and the key
//! packets' bodies are read (v4: SHA-1 of `0x99 len body`; v6: SHA-256 of
//! `0x9B len32 body`); signatures are apt's business.

use base64::Engine;

/// The armor's binary content.
fn dearmor(text: &str) -> Result<Vec<u8>, String> {
    let mut lines = text.lines().map(str::trim_end).skip_while(|l| *l != "-----BEGIN PGP PUBLIC KEY BLOCK-----");
    if lines.next().is_none() {
        return Err("no `-----BEGIN PGP PUBLIC KEY BLOCK-----`".into());
    }
    // Armor headers (`Comment: …`) end at the first blank line.
    let mut body = String::new();
    let mut in_headers = true;
    let mut ended = false;
    for l in lines.by_ref() {
        if l.starts_with("-----END") {
            ended = true;
            break;
        }
        if l.starts_with('=') {
            continue;
        }
        if in_headers {
            if l.is_empty() {
                in_headers = false;
                continue;
            }
            if l.contains(": ") {
                continue;
            }
            in_headers = false;
        }
        body.push_str(l.trim());
    }
    // Anything after the block would be installed unchecked: one block only.
    if !ended || lines.any(|l| !l.trim().is_empty()) {
        return Err("one armored public key block is expected, ending with `-----END PGP PUBLIC KEY BLOCK-----` and nothing after it".into());
    }
    base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .map_err(|e| format!("the armor is not base64: {e}"))
}

/// The keys of a block: upper-case hex fingerprints.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Keys {
    pub primary: Vec<String>,
    pub subkeys: Vec<String>,
}

/// The fingerprints of the primary keys and subkeys.
pub fn fingerprints(armored: &str) -> Result<Keys, String> {
    let data = dearmor(armored)?;
    let mut out = Keys::default();
    let mut i = 0;
    while i < data.len() {
        let b = data[i];
        if b & 0x80 == 0 {
            return Err(format!("not an OpenPGP packet at byte {i}"));
        }
        let (tag, len, head) = if b & 0x40 != 0 {
            let tag = b & 0x3f;
            let o1 = *data.get(i + 1).ok_or("truncated packet")? as usize;
            match o1 {
                0..=191 => (tag, o1, 2),
                192..=223 => {
                    let o2 = *data.get(i + 2).ok_or("truncated packet")? as usize;
                    (tag, ((o1 - 192) << 8) + o2 + 192, 3)
                }
                255 => {
                    let l = data.get(i + 2..i + 6).ok_or("truncated packet")?;
                    (tag, u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize, 6)
                }
                _ => return Err("partial-length packets are not keys".into()),
            }
        } else {
            let tag = (b >> 2) & 0x0f;
            match b & 3 {
                0 => (tag, *data.get(i + 1).ok_or("truncated packet")? as usize, 2),
                1 => {
                    let l = data.get(i + 1..i + 3).ok_or("truncated packet")?;
                    (tag, u16::from_be_bytes([l[0], l[1]]) as usize, 3)
                }
                2 => {
                    let l = data.get(i + 1..i + 5).ok_or("truncated packet")?;
                    (tag, u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize, 5)
                }
                _ => return Err("indeterminate-length packets are not keys".into()),
            }
        };
        let end = i.checked_add(head).and_then(|x| x.checked_add(len)).ok_or("truncated packet")?;
        let body = data.get(i + head..end).ok_or("truncated packet")?;
        // 6: public key, 14: public subkey.
        if tag == 6 || tag == 14 {
            let fp = match body.first() {
                Some(4) => {
                    let mut c = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY);
                    c.update(&[0x99]);
                    c.update(&(len as u16).to_be_bytes());
                    c.update(body);
                    c.finish()
                }
                Some(6) => {
                    let mut c = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
                    c.update(&[0x9b]);
                    c.update(&(len as u32).to_be_bytes());
                    c.update(body);
                    c.finish()
                }
                _ => {
                    i = end;
                    continue;
                }
            };
            let hex = fp.as_ref().iter().map(|b| format!("{b:02X}")).collect();
            if tag == 6 { out.primary.push(hex) } else { out.subkeys.push(hex) }
        }
        i = end;
    }
    if out.primary.is_empty() {
        return Err("the block holds no public key".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::fingerprints;

    /// Made with `gpg --quick-gen-key … ed25519` and `--quick-add-key … cv25519`;
    /// `gpg --with-colons --list-keys` printed both fingerprints.
    const KEY: &str = "Comment: a header line\n\nmDMEaxFLOBYJKwYBBAHaRw8BAQdAPt74RuYwyhiyPHrVTgSjVgDisVB04VCclgFP\n\
j3bH/Uq0GGZpeHR1cmUgPGZAdGVuZC5pbnZhbGlkPoiQBBMWCAA4FiEE7qkPoVXU\n\
B2S1K91eyewn9QDQzAAFAmsRSzgCGwMFCwkIBwIGFQoJCAsCBBYCAwECHgECF4AA\n\
CgkQyewn9QDQzABJ/gD+IqW9HBQFS2y7KvWlE3FyaTyGiZnmStR1hbD9pEENPFgB\n\
ANPe9IM226b8Ae+QeiG9ZzMNy91Nc2bSjylMEKXdg68AuDgEaxFLOBIKKwYBBAGX\n\
VQEFAQEHQCC28K2CAKTnyYOwgs0fgQo30JmyqfE4F7N5GFR9pGx+AwEIB4h4BBgW\n\
CAAgFiEE7qkPoVXUB2S1K91eyewn9QDQzAAFAmsRSzgCGwwACgkQyewn9QDQzABj\n\
CQD+Msn5sxdHn8w9fDX4u/TAnCgEhzgtzjXi+0gW2IL0AvoBAM8Bkg6aIg+ripFB\n\
FXbkS0fJeny6OeBKS9mn0gkFRqgO\n\
=EM0S\n\
-----END PGP PUBLIC KEY BLOCK-----";

    #[test]
    fn primary_key_and_subkey_fingerprints() {
        let armored = KEY.replacen("Comment", "-----BEGIN PGP PUBLIC KEY BLOCK-----\nComment", 1);
        let keys = fingerprints(&armored).expect("fingerprints");
        assert_eq!(keys.primary, ["EEA90FA155D40764B52BDD5EC9EC27F500D0CC00"]);
        assert_eq!(keys.subkeys, ["3F1A8A51986A908B3FDE9CCE145331D89E881CFF"]);
        // A second block after the first would be installed unchecked.
        assert!(fingerprints(&format!("{armored}\n{armored}")).unwrap_err().contains("nothing after it"));
    }

    #[test]
    fn broken_blocks_are_errors() {
        assert!(fingerprints("no armor").is_err());
        let cut = KEY.replacen("Comment", "-----BEGIN PGP PUBLIC KEY BLOCK-----\nComment", 1);
        let cut: String = cut.lines().take(6).map(|l| format!("{l}\n")).collect();
        assert!(fingerprints(&cut).is_err(), "a truncated key");
        assert!(
            fingerprints("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n!!!!\n-----END PGP PUBLIC KEY BLOCK-----\n").is_err()
        );
    }
}
