//! Fuzz target `decrypt_group`: see `confide_fuzz::parsers::decrypt_group`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| confide_fuzz::parsers::decrypt_group(data));
