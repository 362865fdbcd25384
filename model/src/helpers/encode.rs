//! Helpers that write a value in another format: `to_json`, `to_yaml`. For
//! configuration files that embed JSON or YAML documents, and for `indent`.

use std::io;

use serde_json::Value;

use super::{Args, HelperError};
use crate::render::MAX_TEMPLATE_BYTES;

/// An `io::Write` that refuses to grow past the limit, so that a large value
/// (pretty-printed, or YAML-quoted) is refused while it is being written
/// rather than after it is all in memory.
#[derive(Default)]
struct Bounded {
    buf: Vec<u8>,
    overflowed: bool,
}

impl io::Write for Bounded {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len().saturating_add(data.len()) > MAX_TEMPLATE_BYTES {
            self.overflowed = true;
            return Err(io::Error::other("over the template size limit"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Bounded {
    fn finish(self, a: &Args, result: Result<(), String>) -> Result<Value, HelperError> {
        if self.overflowed {
            return Err(HelperError::Overflow { helper: a.helper() });
        }
        result.map_err(|e| a.invalid(e))?;
        String::from_utf8(self.buf).map(Value::String).map_err(|e| a.invalid(e.to_string()))
    }
}

/// `to_json VALUE [pretty=true]`: compact JSON, or indented by two spaces.
pub fn to_json(a: &Args) -> Result<Value, HelperError> {
    a.expect(1, &["pretty"])?;
    let v = a.value(0)?;
    let mut w = Bounded::default();
    let result = if a.flag("pretty", false)? {
        serde_json::to_writer_pretty(&mut w, v)
    } else {
        serde_json::to_writer(&mut w, v)
    };
    w.finish(a, result.map_err(|e| e.to_string()))
}

/// `to_yaml VALUE`: a YAML document, without the final newline (the
/// template decides what follows; `to_json` has none either).
pub fn to_yaml(a: &Args) -> Result<Value, HelperError> {
    a.expect(1, &[])?;
    let v = a.value(0)?;
    let mut w = Bounded::default();
    let result = serde_yaml::to_writer(&mut w, v).map_err(|e| e.to_string());
    let mut out = w.finish(a, result)?;
    if let Value::String(s) = &mut out {
        if s.ends_with('\n') {
            s.pop();
        }
    }
    Ok(out)
}
