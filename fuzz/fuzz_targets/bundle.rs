//! A recipe bundle as the server receives it (JSON), then validated.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tend_model::fuzzing::bundle(data);
});
