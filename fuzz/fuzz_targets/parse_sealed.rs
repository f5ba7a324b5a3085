//! Fuzz target `parse_sealed`: see `confide_fuzz::parsers::parse_sealed`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| confide_fuzz::parsers::parse_sealed(data));
