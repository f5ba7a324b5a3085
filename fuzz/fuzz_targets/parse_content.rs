//! Fuzz target `parse_content`: see `confide_fuzz::parsers::parse_content`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| confide_fuzz::parsers::parse_content(data));
