//! Fuzz target `decrypt_prekey`: see `confide_fuzz::targets::decrypt_prekey`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| confide_fuzz::targets::decrypt_prekey(data));
