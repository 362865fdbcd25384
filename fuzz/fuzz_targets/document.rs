//! A command or automation document, as `tend document push` sends it.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    tend_model::fuzzing::document(text);
});
