//! Sender keys through a store (`group::cipher`), in memory and in SQLite (whose commits
//! are compare-and-swap): a device's chain is created once and reused, a rotated chain
//! keeps the old one readable, a new layout replaces it on both sides, a failed receive
//! names its cause, and a redelivery is told from a replay whatever the store answers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicBool, Ordering};

use confide::group::cipher;
use confide::group::{
    DistributionId, GroupReceiveError, Layout, SenderKeyMessage, SenderKeyRecord,
};
use confide::store::{
    CommitOutcome, DeliveredMessage, DurableStore, GroupCommit, InMemoryStore, MessageId,
    RowVersion, SenderKeyStore, SqliteStore, StoreKey, TransactionalGroupStore, TransactionalStore,
};
use confide::{Address, IdentityKeyPair, StoreError, Timestamp};
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

    // A rotated chain goes in front of the old one, which stays readable for messages
    // still in flight (processing the new chain must not start a fresh record).
    let in_flight = cipher::encrypt(alice_store, &alice, id, b"in flight", &mut r).unwrap();
    let rotated = cipher::rotate(alice_store, &alice, id, &mut r).unwrap();
    assert_ne!(rotated.chain_id(), first.chain_id());
    assert_eq!(rotated.layout(), Layout::Current);
    cipher::process(bob_store, &alice, id, &rotated).unwrap();
    let after = cipher::encrypt(alice_store, &alice, id, b"after", &mut r).unwrap();
    assert_eq!(after.chain_id(), rotated.chain_id());
    let got = cipher::decrypt(bob_store, &alice, id, &after, NOW).unwrap();
    assert_eq!(&*got.plaintext, b"after");
    let got = cipher::decrypt(bob_store, &alice, id, &in_flight, NOW).unwrap();
    assert_eq!(&*got.plaintext, b"in flight");

    // Another layout replaces the chain with a new one of that layout, on the sending
    // side and, once processed, on the receiving side.
    let legacy = cipher::distribution(alice_store, &alice, id, Layout::Legacy, &mut r).unwrap();
    assert_eq!(legacy.layout(), Layout::Legacy);
    assert_ne!(legacy.serialized(), first.serialized());
    assert_eq!(legacy.iteration(), 0);
    let legacy_again =
        cipher::distribution(alice_store, &alice, id, Layout::Legacy, &mut r).unwrap();
    assert_eq!(legacy_again.serialized(), legacy.serialized());
    cipher::process(bob_store, &alice, id, &legacy).unwrap();
    let m = cipher::encrypt(alice_store, &alice, id, b"legacy", &mut r).unwrap();
    assert_eq!(m.layout(), Layout::Legacy);
    let got = cipher::decrypt(bob_store, &alice, id, &m, NOW).unwrap();
    assert_eq!(&*got.plaintext, b"legacy");
    assert_eq!(
        bob_store.sender_key(&alice, id).unwrap().unwrap().layout(),
        Layout::Legacy
    );
}

/// Alice's chain processed by Bob, and one message on it.
fn one_message(
    alice_store: &SqliteStore,
    bob_store: &SqliteStore,
) -> (Address, DistributionId, SenderKeyMessage) {
    let mut r = ChaCha20Rng::seed_from_u64(9);
    let alice = Address::new("alice", 1);
    let id = DistributionId::random(&mut r);
    let skdm = cipher::distribution(alice_store, &alice, id, Layout::Current, &mut r).unwrap();
    cipher::process(bob_store, &alice, id, &skdm).unwrap();
    let m = cipher::encrypt(alice_store, &alice, id, b"once", &mut r).unwrap();
    (alice, id, m)
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

/// A message whose record is gone (its disappearing timer ran out and it was purged)
/// is refused as a duplicate when it comes again: its key is spent, and no retry loop
/// may turn that into a contention error.
#[test]
fn a_purged_message_delivered_again_is_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let a = sqlite(dir.path(), "alice.db", 1);
    let b = sqlite(dir.path(), "bob.db", 2);
    let (alice, id, m) = one_message(&a, &b);
    let got = cipher::decrypt(&b, &alice, id, &m, NOW).unwrap();
    assert!(!got.redelivered);
    assert!(b.set_message_expiry(&alice, &got.id, Some(NOW)).unwrap());
    b.purge_messages(NOW, NOW).unwrap();
    assert!(b.message(&alice, &got.id).unwrap().is_none());
    let e = cipher::decrypt(&b, &alice, id, &m, NOW).unwrap_err();
    assert!(matches!(e, GroupReceiveError::Decrypt(_)), "{e:?}");
    assert_eq!(e.code(), "DuplicateMessage");
}

/// A transactional store whose first `group_delivered` answer is stale: it misses a
/// message another writer has committed, as a read from a lagging replica would.
struct StaleOnce<'a> {
    inner: &'a SqliteStore,
    stale: AtomicBool,
}

impl StaleOnce<'_> {
    fn txn(&self) -> &dyn TransactionalGroupStore {
        self.inner.transactional_group().unwrap()
    }
}

impl SenderKeyStore for StaleOnce<'_> {
    fn sender_key(
        &self,
        sender: &Address,
        distribution_id: DistributionId,
    ) -> Result<Option<SenderKeyRecord>, StoreError> {
        self.inner.sender_key(sender, distribution_id)
    }
    fn save_sender_key(
        &self,
        sender: &Address,
        distribution_id: DistributionId,
        record: &SenderKeyRecord,
    ) -> Result<(), StoreError> {
        self.inner.save_sender_key(sender, distribution_id, record)
    }
    fn transactional_group(&self) -> Option<&dyn TransactionalGroupStore> {
        Some(self)
    }
}

impl TransactionalGroupStore for StaleOnce<'_> {
    fn load_sender_key(
        &self,
        sender: &Address,
        distribution_id: DistributionId,
    ) -> Result<(Option<SenderKeyRecord>, RowVersion), StoreError> {
        self.txn().load_sender_key(sender, distribution_id)
    }
    fn group_delivered(
        &self,
        sender: &Address,
        id: &MessageId,
    ) -> Result<Option<DeliveredMessage>, StoreError> {
        if self.stale.swap(false, Ordering::SeqCst) {
            return Ok(None);
        }
        self.txn().group_delivered(sender, id)
    }
    fn commit_group(&self, commit: &GroupCommit<'_>) -> Result<CommitOutcome, StoreError> {
        self.txn().commit_group(commit)
    }
}

/// The race a redelivery can lose: the message was committed (by another thread or
/// host) after the delivered check said no, so the chain refuses it as a duplicate.
/// The decrypt looks again and returns the stored plaintext as a redelivery.
#[test]
fn a_redelivery_that_loses_the_race_still_gets_its_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let a = sqlite(dir.path(), "alice.db", 1);
    let b = sqlite(dir.path(), "bob.db", 2);
    let (alice, id, m) = one_message(&a, &b);
    let first = cipher::decrypt(&b, &alice, id, &m, NOW).unwrap();
    let stale = StaleOnce {
        inner: &b,
        stale: AtomicBool::new(true),
    };
    let again = cipher::decrypt(&stale, &alice, id, &m, NOW).unwrap();
    assert!(!stale.stale.load(Ordering::SeqCst));
    assert!(again.redelivered);
    assert_eq!(again.id, first.id);
    assert_eq!(&*again.plaintext, b"once");
    // Acknowledged, the same race ends in the duplicate error.
    assert!(b.acknowledge(&alice, &first.id).unwrap());
    stale.stale.store(true, Ordering::SeqCst);
    let e = cipher::decrypt(&stale, &alice, id, &m, NOW).unwrap_err();
    assert_eq!(e.code(), "DuplicateMessage");
}
