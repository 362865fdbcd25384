//! A recipe file, loaded and compiled as `tend-agent validate` and
//! `tend recipe push` do (placeholder facts, templates rendered).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = tend_model::fuzzing::recipe(text);
});
