//! Fuzz target `decrypt_pq_ratchet`: see `confide_fuzz::v4::decrypt_pq_ratchet`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| confide_fuzz::v4::decrypt_pq_ratchet(data));
