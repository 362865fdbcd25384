//! A template rendered against facts and parameters (strict handlebars).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    tend_model::fuzzing::template(text);
});
