//! Fuzz target `decrypt_signal`: see `confide_fuzz::targets::decrypt_signal`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| confide_fuzz::targets::decrypt_signal(data));
