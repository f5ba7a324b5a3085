//! Fuzz target `actions`: see `confide_fuzz::targets::run_actions`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| confide_fuzz::targets::run_actions(data));
