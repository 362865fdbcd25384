//! Reads the start of small files (sysfs attributes, /proc entries, key
//! files) with one `read`: no `stat` for a size hint and no second read to
//! see the end, since those are a third of the system calls of a fact.

use std::io::Read;
use std::path::Path;

/// Up to `max` bytes from the start of the file; None when it cannot be read.
pub fn read(path: &Path, max: usize) -> Option<Vec<u8>> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut buf = vec![0u8; max];
    let n = f.read(&mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// The first line of a small file (at most 4 KiB is read), trimmed of
/// white space and of the NULs that end device tree strings.
pub fn first_line(path: &Path) -> Option<String> {
    let bytes = read(path, 4096)?;
    let text = String::from_utf8_lossy(&bytes);
    Some(text.lines().next().unwrap_or_default().trim_end_matches('\0').trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_and_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, "QEMU\nsecond\n").unwrap();
        assert_eq!(first_line(&p).as_deref(), Some("QEMU"));
        assert_eq!(read(&p, 3).as_deref(), Some(&b"QEM"[..]));
        std::fs::write(&p, "linux,kvm\0").unwrap();
        assert_eq!(first_line(&p).as_deref(), Some("linux,kvm"));
        std::fs::write(&p, "").unwrap();
        assert_eq!(first_line(&p).as_deref(), Some(""));
        assert_eq!(first_line(&dir.path().join("none")), None);
    }
}
