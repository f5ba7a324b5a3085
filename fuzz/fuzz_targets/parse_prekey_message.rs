//! Fuzz target `parse_prekey_message`: see `confide_fuzz::targets::parse_prekey_message`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| confide_fuzz::targets::parse_prekey_message(data));
