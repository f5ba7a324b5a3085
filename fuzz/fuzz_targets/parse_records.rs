//! Fuzz target `parse_records`: see `confide_fuzz::targets::parse_records`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| confide_fuzz::targets::parse_records(data));
