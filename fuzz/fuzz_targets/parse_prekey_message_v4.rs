//! Fuzz target `parse_prekey_message_v4`: see `confide_fuzz::v4::parse_prekey_message_v4`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| confide_fuzz::v4::parse_prekey_message_v4(data));
