//! The store-driven decrypt keeps every message it stores under the caller's clock, so
//! the store's dedupe rules (acknowledge, purge) see real receive times.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use confide::session::Versions;
use confide::session::cipher::{self, BundleSpec};
use confide::store::{DurableStore, MessageId, SqliteStore, StoreKey, TransactionalStore};
use confide::{Address, CiphertextMessage, DecryptError, IdentityKeyPair, Timestamp};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// A realistic wall-clock time (November 2023).
const NOW: Timestamp = Timestamp::from_millis(1_700_000_000_000);
const HOUR: u64 = 3_600_000;

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn open(path: &Path, seed: u8) -> SqliteStore {
    let mut r = rng(u64::from(seed));
    let store = SqliteStore::open(path, &StoreKey::from_bytes([seed; 32]), &mut r).unwrap();
    let id = IdentityKeyPair::generate(&mut r);
    store
        .set_local_identity(&id, 1000 + u32::from(seed))
        .unwrap();
    store
}

/// Defect: a message decrypted at `NOW`, acknowledged, then a purge that forgets
/// acknowledged messages received more than an hour before `NOW`. The dedupe row must
/// survive (the message was received at `NOW`), so a redelivery is refused as a
/// duplicate. The message is chosen so that only the dedupe row can recognise it: its
/// key was evicted from the ratchet, which alone would answer `MessageKeyEvicted`.
#[test]
fn purge_keeps_dedupe_rows_of_messages_received_after_the_cutoff() {
    let dir = tempfile::tempdir().unwrap();
    let (alice_addr, bob_addr) = (Address::new("alice", 1), Address::new("bob", 1));
    let alice = open(&dir.path().join("alice.db"), 1);
    let bob = open(&dir.path().join("bob.db"), 2);
    let mut r = rng(3);
    let spec = BundleSpec::new(1, 7).with_pre_key(Some(42));
    let bundle = cipher::publish_bundle(&bob, &mut r, &spec, NOW).unwrap();
    cipher::start_session(&alice, &bob_addr, &bundle, Versions::V3AndV4, &mut r, NOW).unwrap();

    let first = cipher::encrypt(
        &alice,
        &alice_addr,
        &bob_addr,
        b"first",
        &mut confide::SystemRng::new(),
        NOW,
    )
    .unwrap();
    let got = cipher::decrypt(&bob, &bob_addr, &alice_addr, &first, &mut r, NOW).unwrap();
    assert_eq!(got.plaintext.as_slice(), b"first");
    assert_eq!(got.id, MessageId::of(&first));
    assert_eq!(
        bob.delivered(&alice_addr, &got.id)
            .unwrap()
            .unwrap()
            .received_at,
        NOW
    );
    assert!(bob.acknowledge(&alice_addr, &got.id).unwrap());

    // Skip more messages than the chain keeps keys for: the first message's counter is
    // now below the evicted mark, so the ratchet alone cannot call it a duplicate.
    let mut last = None;
    for _ in 0..=confide::session::limits::MAX_SKIPPED_KEYS_PER_CHAIN + 1 {
        last = Some(
            cipher::encrypt(
                &alice,
                &alice_addr,
                &bob_addr,
                b"later",
                &mut confide::SystemRng::new(),
                NOW,
            )
            .unwrap(),
        );
    }
    let last = last.unwrap();
    cipher::decrypt(&bob, &bob_addr, &alice_addr, &last, &mut r, NOW).unwrap();

    bob.purge_messages(NOW, Timestamp::from_millis(NOW.as_millis() - HOUR))
        .unwrap();

    let again = CiphertextMessage::from_parts(first.message_type(), first.serialized()).unwrap();
    match cipher::decrypt(&bob, &bob_addr, &alice_addr, &again, &mut r, NOW) {
        Err(DecryptError::DuplicateMessage { counter: 0 }) => {}
        other => panic!("redelivery after purge: {other:?}"),
    }
}
