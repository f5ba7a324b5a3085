//! Sender keys through a store (`group::cipher`), in memory and in SQLite (whose commits
//! are compare-and-swap): a device's chain is created once and reused, a new layout
//! replaces it, and a failed receive names its cause.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use confide::group::cipher;
use confide::group::{DistributionId, GroupReceiveError, Layout};
use confide::store::{DurableStore, InMemoryStore, SenderKeyStore, SqliteStore, StoreKey};
use confide::{Address, IdentityKeyPair, Timestamp};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const NOW: Timestamp = Timestamp::from_millis(1_700_000_000_000);

fn sqlite(dir: &std::path::Path, name: &str, seed: u8) -> SqliteStore {
    let mut r = ChaCha20Rng::seed_from_u64(u64::from(seed));
    let store =
        SqliteStore::open(dir.join(name), &StoreKey::from_bytes([seed; 32]), &mut r).unwrap();
    store
        .set_local_identity(&IdentityKeyPair::generate(&mut r), 1000 + u32::from(seed))
        .unwrap();
    store
}

fn exercise(alice_store: &dyn SenderKeyStore, bob_store: &dyn SenderKeyStore) {
    let mut r = ChaCha20Rng::seed_from_u64(7);
    let alice = Address::new("alice", 1);
    let id = DistributionId::random(&mut r);

    // The chain is made once: asking again gives the same chain at the same iteration.
    let first = cipher::distribution(alice_store, &alice, id, Layout::Current, &mut r).unwrap();
    let again = cipher::distribution(alice_store, &alice, id, Layout::Current, &mut r).unwrap();
    assert_eq!(again.serialized(), first.serialized());
    assert_eq!(again.layout(), Layout::Current);

    cipher::process(bob_store, &alice, id, &first).unwrap();
    let mut sent = Vec::new();
    for i in 0..3u8 {
        let m = cipher::encrypt(alice_store, &alice, id, &[i; 20], &mut r).unwrap();
        assert_eq!(m.iteration(), u32::from(i));
        sent.push(m);
    }
    // The saved chain moved on: the next distribution starts where sending stopped.
    let later = cipher::distribution(alice_store, &alice, id, Layout::Current, &mut r).unwrap();
    assert_eq!(later.chain_id(), first.chain_id());
    assert_eq!(later.iteration(), 3);
    for (i, m) in sent.iter().enumerate().rev() {
        let got = cipher::decrypt(bob_store, &alice, id, m, NOW).unwrap();
        assert_eq!(&*got.plaintext, &[i as u8; 20]);
    }

    // A replay names its cause through the store error type.
    match cipher::decrypt(bob_store, &alice, id, &sent[0], NOW) {
        Ok(d) => assert!(
            d.redelivered,
            "a replay without the stored plaintext decrypted"
        ),
        Err(e) => {
            assert!(matches!(e, GroupReceiveError::Decrypt(_)));
            assert_eq!(e.code(), "DuplicateMessage");
        }
    }
    let unknown = Address::new("carol", 1);
    let e = cipher::decrypt(bob_store, &unknown, id, &sent[0], NOW).unwrap_err();
    assert_eq!(e.code(), "NoSenderKeyState");

    // Another layout replaces the chain with a new one of that layout.
    let legacy = cipher::distribution(alice_store, &alice, id, Layout::Legacy, &mut r).unwrap();
    assert_eq!(legacy.layout(), Layout::Legacy);
    assert_ne!(legacy.serialized(), first.serialized());
    assert_eq!(legacy.iteration(), 0);
    let legacy_again =
        cipher::distribution(alice_store, &alice, id, Layout::Legacy, &mut r).unwrap();
    assert_eq!(legacy_again.serialized(), legacy.serialized());
}

#[test]
fn in_memory_stores() {
    let mut r = ChaCha20Rng::seed_from_u64(1);
    exercise(
        &InMemoryStore::generate(&mut r),
        &InMemoryStore::generate(&mut r),
    );
}

#[test]
fn sqlite_stores_commit_by_compare_and_swap() {
    let dir = tempfile::tempdir().unwrap();
    let a = sqlite(dir.path(), "alice.db", 1);
    let b = sqlite(dir.path(), "bob.db", 2);
    exercise(&a, &b);
}
