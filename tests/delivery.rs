//! The store-driven decrypt keeps every message it stores under the caller's clock, so
//! the store's dedupe rules (acknowledge, purge) see real receive times; a redelivery is
//! told from a replay whatever the store answers, and a refused one names its counter.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

#[path = "common/forward.rs"]
#[macro_use]
mod forward;

use confide::session::Versions;
use confide::session::cipher::{self, BundleSpec};
use confide::store::{
    Commit, CommitOutcome, DeliveredMessage, DurableStore, MessageId, RowVersion, SessionStore,
    SqliteStore, StoreKey, TransactionalStore,
};
use confide::{
    Address, CiphertextMessage, DecryptError, IdentityKeyPair, SessionRecord, StoreError, Timestamp,
};
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

/// Alice's session with Bob (both in SQLite) and three messages on it, the first of
/// them already decrypted by Bob.
struct Conversation {
    _dir: tempfile::TempDir,
    alice_addr: Address,
    bob_addr: Address,
    bob: SqliteStore,
    messages: Vec<CiphertextMessage>,
}

fn conversation() -> Conversation {
    let dir = tempfile::tempdir().unwrap();
    let (alice_addr, bob_addr) = (Address::new("alice", 1), Address::new("bob", 1));
    let alice = open(&dir.path().join("alice.db"), 1);
    let bob = open(&dir.path().join("bob.db"), 2);
    let mut r = rng(4);
    let spec = BundleSpec::new(1, 7).with_pre_key(Some(42));
    let bundle = cipher::publish_bundle(&bob, &mut r, &spec, NOW).unwrap();
    cipher::start_session(&alice, &bob_addr, &bundle, Versions::V3AndV4, &mut r, NOW).unwrap();
    let messages: Vec<_> = (0..3u8)
        .map(|i| cipher::encrypt(&alice, &alice_addr, &bob_addr, &[i; 9], &mut r, NOW).unwrap())
        .collect();
    cipher::decrypt(&bob, &bob_addr, &alice_addr, &messages[0], &mut r, NOW).unwrap();
    Conversation {
        _dir: dir,
        alice_addr,
        bob_addr,
        bob,
        messages,
    }
}

/// Once acknowledged, a redelivered message is refused, and the error names the
/// message's own counter (here 2, on a chain already in use).
#[test]
fn an_acknowledged_redelivery_names_its_counter() {
    let c = conversation();
    let mut r = rng(5);
    for m in &c.messages[1..] {
        cipher::decrypt(&c.bob, &c.bob_addr, &c.alice_addr, m, &mut r, NOW).unwrap();
    }
    let third = &c.messages[2];
    assert!(
        c.bob
            .acknowledge(&c.alice_addr, &MessageId::of(third))
            .unwrap()
    );
    match cipher::decrypt(&c.bob, &c.bob_addr, &c.alice_addr, third, &mut r, NOW) {
        Err(DecryptError::DuplicateMessage { counter: 2 }) => {}
        other => panic!("acknowledged redelivery: {other:?}"),
    }
}

/// A message whose record is gone (its disappearing timer ran out and it was purged)
/// is refused as a duplicate when it comes again: its key is spent, and no retry loop
/// may turn that into a contention error.
#[test]
fn a_purged_message_delivered_again_is_a_duplicate() {
    let c = conversation();
    let mut r = rng(6);
    let second = &c.messages[1];
    let got = cipher::decrypt(&c.bob, &c.bob_addr, &c.alice_addr, second, &mut r, NOW).unwrap();
    assert!(!got.redelivered);
    assert!(
        c.bob
            .set_message_expiry(&c.alice_addr, &got.id, Some(NOW))
            .unwrap()
    );
    c.bob.purge_messages(NOW, NOW).unwrap();
    assert!(c.bob.message(&c.alice_addr, &got.id).unwrap().is_none());
    match cipher::decrypt(&c.bob, &c.bob_addr, &c.alice_addr, second, &mut r, NOW) {
        Err(DecryptError::DuplicateMessage { counter: 1 }) => {}
        other => panic!("redelivery after its record was purged: {other:?}"),
    }
}

/// Bob's store whose first `delivered` answer is stale: it misses a message another
/// writer has committed, as a read from a lagging replica would. Everything else is
/// Bob's SQLite store.
struct StaleOnce<'a> {
    inner: &'a SqliteStore,
    stale: AtomicBool,
}

impl StaleOnce<'_> {
    fn txn(&self) -> &dyn TransactionalStore {
        self.inner.transactional().unwrap()
    }
}

forward_to_inner!(StaleOnce<'_>: IdentityStore, PreKeyStore, SignedPreKeyStore, SenderKeyStore);

impl SessionStore for StaleOnce<'_> {
    fn session(&self, address: &Address) -> Result<Option<SessionRecord>, StoreError> {
        self.inner.session(address)
    }
    fn save_session(&self, address: &Address, record: &SessionRecord) -> Result<(), StoreError> {
        self.inner.save_session(address, record)
    }
    fn transactional(&self) -> Option<&dyn TransactionalStore> {
        Some(self)
    }
}

impl TransactionalStore for StaleOnce<'_> {
    fn load_session(
        &self,
        address: &Address,
    ) -> Result<(Option<SessionRecord>, RowVersion), StoreError> {
        self.txn().load_session(address)
    }
    fn delivered(
        &self,
        address: &Address,
        id: &MessageId,
    ) -> Result<Option<DeliveredMessage>, StoreError> {
        if self.stale.swap(false, Ordering::SeqCst) {
            return Ok(None);
        }
        self.txn().delivered(address, id)
    }
    fn commit(&self, commit: &Commit<'_>) -> Result<CommitOutcome, StoreError> {
        self.txn().commit(commit)
    }
    fn acknowledge(&self, address: &Address, id: &MessageId) -> Result<bool, StoreError> {
        self.txn().acknowledge(address, id)
    }
}

/// The race a redelivery can lose: the message was committed (by another thread or
/// host) after the delivered check said no, so the ratchet refuses it as a duplicate.
/// The decrypt looks again and returns the stored plaintext as a redelivery; once the
/// message is acknowledged, the same race ends in the duplicate error.
#[test]
fn a_redelivery_that_loses_the_race_still_gets_its_plaintext() {
    let c = conversation();
    let mut r = rng(7);
    let first = &c.messages[0];
    let stale = StaleOnce {
        inner: &c.bob,
        stale: AtomicBool::new(true),
    };
    let again = cipher::decrypt(&stale, &c.bob_addr, &c.alice_addr, first, &mut r, NOW).unwrap();
    assert!(!stale.stale.load(Ordering::SeqCst));
    assert!(again.redelivered);
    assert_eq!(again.id, MessageId::of(first));
    assert_eq!(again.plaintext.as_slice(), &[0u8; 9]);

    assert!(c.bob.acknowledge(&c.alice_addr, &again.id).unwrap());
    stale.stale.store(true, Ordering::SeqCst);
    match cipher::decrypt(&stale, &c.bob_addr, &c.alice_addr, first, &mut r, NOW) {
        Err(DecryptError::DuplicateMessage { counter: 0 }) => {}
        other => panic!("acknowledged redelivery that lost the race: {other:?}"),
    }
}
