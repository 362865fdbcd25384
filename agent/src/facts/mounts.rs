//! Mounted file systems, from /proc/self/mounts.

use std::io::{BufRead, BufReader, Read};

use serde_json::{Value, json};

/// At most this many mounts are listed (a host with thousands of container
/// mounts must not make every run slow); the rest are not read.
pub const MAX_MOUNTS: usize = 1000;

/// `[{ "mountpoint", "device", "fstype", "options" }, …]` in mount order.
pub fn facts() -> Value {
    match std::fs::File::open("/proc/self/mounts") {
        Ok(f) => parse(f, MAX_MOUNTS),
        Err(e) => {
            tracing::debug!(error = %e, "cannot read /proc/self/mounts");
            Value::Array(Vec::new())
        }
    }
}

/// Parses mounts(5) lines, the first `max` of them; the reader stops there.
pub fn parse(input: impl Read, max: usize) -> Value {
    let mut out = Vec::new();
    for line in BufReader::new(input).split(b'\n') {
        let Ok(line) = line else { break };
        if out.len() == max {
            tracing::debug!(max, "more mounts than are listed");
            break;
        }
        let mut f = line.split(|b| *b == b' ' || *b == b'\t').filter(|w| !w.is_empty());
        let (Some(device), Some(mountpoint), Some(fstype), Some(options)) = (f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        out.push(json!({
            "mountpoint": unescape(mountpoint),
            "device": unescape(device),
            "fstype": unescape(fstype),
            "options": unescape(options),
        }));
    }
    Value::Array(out)
}

/// Decodes the kernel's octal escapes (`\040` space, `\011` tab, `\012`
/// newline, `\134` backslash).
fn unescape(field: &[u8]) -> String {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal =
            field.get(i + 1..i + 4).filter(|d| field[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                let v = d.iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 4;
            }
            None => {
                out.push(field[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTS: &str = "\
/dev/sda1 / ext4 rw,relatime,errors=remount-ro 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
/dev/sdb1 /mnt/my\\040disk vfat rw,fmask=0022 0 0
server:/back\\134slash /srv/tab\\011here nfs4 ro 0 0
";

    #[test]
    fn fields_and_escapes() {
        let m = parse(MOUNTS.as_bytes(), MAX_MOUNTS);
        assert_eq!(m.as_array().map(Vec::len), Some(4));
        assert_eq!(
            m[0],
            json!({ "mountpoint": "/", "device": "/dev/sda1", "fstype": "ext4", "options": "rw,relatime,errors=remount-ro" })
        );
        assert_eq!(m[2]["mountpoint"], "/mnt/my disk");
        assert_eq!(m[3]["device"], "server:/back\\slash");
        assert_eq!(m[3]["mountpoint"], "/srv/tab\there");
    }

    #[test]
    fn bounded_and_tolerant() {
        assert_eq!(parse(MOUNTS.as_bytes(), 2).as_array().map(Vec::len), Some(2));
        assert_eq!(parse("short line\n\n".as_bytes(), 10), json!([]));
        assert_eq!(unescape(b"a\\04"), "a\\04");
        assert_eq!(unescape(b"\\999"), "\\999");
    }
}
