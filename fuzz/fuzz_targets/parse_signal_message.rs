//! Fuzz target `parse_signal_message`: see `confide_fuzz::targets::parse_signal_message`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| confide_fuzz::targets::parse_signal_message(data));
