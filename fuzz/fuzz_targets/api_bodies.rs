//! The server's JSON request bodies: the first byte picks the route, the
//! rest is the body, parsed and checked as the handler does before it
//! touches the store.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tend_model::fuzzing::api_body(data);
});
