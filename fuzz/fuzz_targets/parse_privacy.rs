//! Fuzz target `parse_privacy`: see `confide_fuzz::parsers::parse_privacy`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| confide_fuzz::parsers::parse_privacy(data));
