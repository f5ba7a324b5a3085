//! Secrets never print and are wiped when dropped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Reading a value's bytes after it was dropped needs raw pointers; test-only.
#![allow(unsafe_code)]

use std::mem::MaybeUninit;

use confide::Timestamp;
use confide::keys::{IdentityKeyPair, KeyPair, PreKeyRecord, PrivateKey, SignedPreKeyRecord};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn debug_output_is_pinned() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let private = PrivateKey::from_bytes([0x11; 32]);
    assert_eq!(format!("{private:?}"), "PrivateKey(***)");

    let pair = KeyPair::from_private(private.clone());
    assert_eq!(
        format!("{pair:?}"),
        format!(
            "KeyPair {{ public: PublicKey({}), private: PrivateKey(***) }}",
            hex(pair.public.x25519_bytes())
        )
    );

    let identity = IdentityKeyPair::from_private(private.clone());
    assert_eq!(
        format!("{identity:?}"),
        format!(
            "IdentityKeyPair {{ identity: IdentityKey(PublicKey({})), private: PrivateKey(***) }}",
            hex(identity.identity_key().public_key().x25519_bytes())
        )
    );

    let pre_key = PreKeyRecord::new(5, pair.clone());
    assert!(format!("{pre_key:?}").contains("PrivateKey(***)"));
    let signed = SignedPreKeyRecord::generate(&mut rng, &identity, 1, Timestamp::from_millis(0));
    let dbg = format!("{signed:?}");
    assert!(dbg.contains("PrivateKey(***)"));
    assert!(!dbg.contains(&hex(&signed.key_pair().private.to_bytes()[..])));
}

/// Drops the value in place and returns the bytes it occupied.
fn bytes_after_drop<T>(value: T) -> Vec<u8> {
    let mut slot = MaybeUninit::<T>::uninit();
    slot.write(value);
    // SAFETY: initialised just above; dropped exactly once.
    unsafe { slot.assume_init_drop() };
    // SAFETY: the slot's storage is still ours; we only read its bytes.
    unsafe { std::slice::from_raw_parts(slot.as_ptr().cast::<u8>(), size_of::<T>()) }.to_vec()
}

fn has_secret(bytes: &[u8], secret: &[u8]) -> bool {
    bytes.windows(secret.len()).any(|w| w == secret)
}

#[test]
fn private_keys_are_zeroed_on_drop() {
    // A clamped key whose bytes we know.
    let key = PrivateKey::from_bytes([0x5a; 32]);
    let secret = key.to_bytes();
    // Control: the method does see bytes that nobody wipes.
    assert!(has_secret(&bytes_after_drop(*secret), &secret[1..31]));
    let after = bytes_after_drop(key);
    assert!(!has_secret(&after, &secret[1..31]), "{after:02x?}");

    let pair = KeyPair::from_private(PrivateKey::from_bytes([0x6b; 32]));
    let secret = pair.private.to_bytes();
    let after = bytes_after_drop(pair);
    assert!(!has_secret(&after, &secret[1..31]));

    let identity = IdentityKeyPair::from_private(PrivateKey::from_bytes([0x7c; 32]));
    let secret = identity.private_key().to_bytes();
    let after = bytes_after_drop(identity);
    assert!(!has_secret(&after, &secret[1..31]));
}
