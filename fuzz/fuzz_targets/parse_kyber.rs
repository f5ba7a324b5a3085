//! Fuzz target `parse_kyber`: see `confide_fuzz::v4::parse_kyber`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| confide_fuzz::v4::parse_kyber(data));
