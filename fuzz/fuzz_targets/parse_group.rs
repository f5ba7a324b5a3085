//! Fuzz target `parse_group`: see `confide_fuzz::parsers::parse_group`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| confide_fuzz::parsers::parse_group(data));
