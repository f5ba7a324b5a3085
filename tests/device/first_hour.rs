//! A new user's first hour, all through `Device`: open or create a persistent device,
//! publish bundles under ids the device allocates, keep one-time prekeys topped up,
//! chat in padded content, hand a group key over as content, acknowledge, and compare
//! safety numbers.

use std::path::Path;

use confide::device::GroupReceiveError;
use confide::device::{Device, FixedClock, PRE_KEY_BATCH, ReceiveError, SafetyNumberError};
use confide::envelope::{Body, PADDING_BLOCK};
use confide::fingerprint::Comparison;
use confide::group::{DistributionId, GroupDecryptError};
use confide::keys::PreKeyRecord;
use confide::store::{
    DurableStore, IdentityStore, MessageId, PreKeyStore, SignedPreKeyStore, SqliteStore, StoreKey,
};
use confide::{Address, DecryptError};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::{SqlDevice, at};

/// Opens (or creates) `name`'s device in `dir` with `Device::open`.
fn open(dir: &Path, name: &str, seed: u64, clock: &FixedClock) -> SqlDevice {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let key = StoreKey::from_bytes([name.as_bytes()[0]; 32]);
    let store = SqliteStore::open(dir.join(format!("{name}.db")), &key, &mut rng).unwrap();
    Device::open(store, Address::new(name, 1), rng, clock.clone())
        .unwrap()
        .with_versions(confide::session::Versions::V3AndV4)
}

fn text_of(d: &SqlDevice, from: &SqlDevice, m: &confide::CiphertextMessage) -> String {
    d.decrypt(from.address(), m)
        .unwrap()
        .text()
        .unwrap()
        .to_owned()
}

#[test]
fn open_creates_the_identity_once_and_reopens_it() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FixedClock::new(at(2024, 1, 1));
    let first = open(dir.path(), "alice", 1, &clock);
    assert!(first.store().has_local_identity().unwrap());
    let (key, reg) = (
        first.identity_key().unwrap(),
        first.store().local_registration_id().unwrap(),
    );
    drop(first);
    // Another RNG on reopen: the stored identity is kept, not replaced.
    let again = open(dir.path(), "alice", 2, &clock);
    assert_eq!(again.identity_key().unwrap(), key);
    assert_eq!(again.store().local_registration_id().unwrap(), reg);
}

#[test]
fn publish_bundle_allocates_fresh_ids_and_earlier_bundles_stay_valid() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FixedClock::new(at(2024, 1, 1));
    let alice = open(dir.path(), "alice", 1, &clock);
    let carol = open(dir.path(), "carol", 3, &clock);
    let bob = open(dir.path(), "bob", 2, &clock);
    let b1 = bob.publish_bundle().unwrap();
    let b2 = bob.publish_bundle().unwrap();
    assert_eq!((b1.signed_pre_key.id, b1.pre_key.unwrap().id), (1, 1));
    assert_eq!((b2.signed_pre_key.id, b2.pre_key.unwrap().id), (2, 2));
    // The first bundle was not replaced by the second: a session from it works.
    alice.start_session(bob.address(), &b1).unwrap();
    carol.start_session(bob.address(), &b2).unwrap();
    let m = alice
        .encrypt(bob.address(), &alice.text("from b1").unwrap())
        .unwrap();
    assert_eq!(text_of(&bob, &alice, &m), "from b1");
    let m = carol
        .encrypt(bob.address(), &carol.text("from b2").unwrap())
        .unwrap();
    assert_eq!(text_of(&bob, &carol, &m), "from b2");

    // The counter survives a restart, and an id the store already holds (say one an
    // app chose by hand) is skipped, never overwritten.
    drop(bob);
    let bob = open(dir.path(), "bob", 4, &clock);
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let by_hand = PreKeyRecord::generate(&mut rng, 3);
    bob.store().save_pre_key(&by_hand).unwrap();
    let b3 = bob.publish_bundle().unwrap();
    assert_eq!(b3.signed_pre_key.id, 3);
    assert_eq!(b3.pre_key.unwrap().id, 4);
    assert_eq!(
        bob.store().pre_key(3).unwrap().unwrap().to_bytes(),
        by_hand.to_bytes()
    );
    assert!(bob.store().signed_pre_key(1).unwrap().is_some());
}

#[test]
fn top_up_keeps_a_batch_of_unused_one_time_prekeys() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FixedClock::new(at(2024, 1, 1));
    let alice = open(dir.path(), "alice", 1, &clock);
    let bob = open(dir.path(), "bob", 2, &clock);
    let bundle = bob.publish_bundle().unwrap();
    // The bundle's one-time prekey counts toward the batch.
    let fresh = bob.top_up_pre_keys().unwrap();
    assert_eq!(fresh.len(), PRE_KEY_BATCH - 1);
    let mut ids: Vec<u32> = fresh.iter().map(|p| p.id).collect();
    ids.push(bundle.pre_key.unwrap().id);
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), PRE_KEY_BATCH, "distinct ids");
    for p in &fresh {
        assert_eq!(bob.store().pre_key(p.id).unwrap().unwrap().public(), *p);
    }
    assert!(
        bob.top_up_pre_keys().unwrap().is_empty(),
        "the batch is full"
    );
    // A session consumes the bundle's one-time prekey: one new key, under a new id.
    alice.start_session(bob.address(), &bundle).unwrap();
    let m = alice
        .encrypt(bob.address(), &alice.text("hi").unwrap())
        .unwrap();
    bob.decrypt(alice.address(), &m).unwrap();
    let refill = bob.top_up_pre_keys().unwrap();
    assert_eq!(refill.len(), 1);
    assert!(!ids.contains(&refill[0].id));
}

#[test]
fn messages_are_padded_content_and_raw_bytes_are_refused_as_content() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FixedClock::new(at(2024, 1, 1));
    let alice = open(dir.path(), "alice", 1, &clock);
    let bob = open(dir.path(), "bob", 2, &clock);
    alice
        .start_session(bob.address(), &bob.publish_bundle().unwrap())
        .unwrap();
    let first = alice
        .encrypt(bob.address(), &alice.text("hi").unwrap())
        .unwrap();
    bob.decrypt(alice.address(), &first).unwrap();
    let reply = bob
        .encrypt(alice.address(), &bob.text("ok").unwrap())
        .unwrap();
    alice.decrypt(bob.address(), &reply).unwrap();
    // Lengths 1 and 120 land in one size class: the ciphertexts are the same size.
    let short = alice
        .encrypt(bob.address(), &alice.text("a").unwrap())
        .unwrap();
    let long = alice
        .encrypt(bob.address(), &alice.text(&"b".repeat(120)).unwrap())
        .unwrap();
    assert_eq!(short.serialized().len(), long.serialized().len());
    let raw_short = alice.encrypt_raw(bob.address(), b"a").unwrap();
    assert!(raw_short.serialized().len() < short.serialized().len());
    let got = bob.decrypt(alice.address(), &short).unwrap();
    assert_eq!(got.text(), Some("a"));
    assert!(
        !format!("{got:?}").contains("\"a\""),
        "Debug hides the text"
    );
    assert_eq!(got.id, MessageId::of(&short));
    assert!(!got.redelivered);
    let content = got.content.clone();
    assert_eq!(content.to_padded().len(), PADDING_BLOCK);
    // A redelivery comes back from the store, the same content, marked.
    let again = bob.decrypt(alice.address(), &short).unwrap();
    assert!(again.redelivered);
    assert_eq!(again.content, content);
    // Acknowledged: the store forgets the plaintext; a replay is a duplicate.
    assert!(bob.acknowledge(alice.address(), &got.id).unwrap());
    assert!(matches!(
        bob.decrypt(alice.address(), &short),
        Err(ReceiveError::Decrypt(DecryptError::DuplicateMessage { .. }))
    ));
    assert_eq!(text_of(&bob, &alice, &long), "b".repeat(120));

    // Bytes that are not padded content decrypt (and are stored) but are refused as
    // content, under the id to acknowledge them by; the raw call reads them.
    let e = bob.decrypt(alice.address(), &raw_short).unwrap_err();
    let ReceiveError::Content { id, .. } = e else {
        panic!("{e}")
    };
    assert_eq!(id, MessageId::of(&raw_short));
    let raw = bob.decrypt_raw(alice.address(), &raw_short).unwrap();
    assert!(raw.redelivered);
    assert_eq!(raw.plaintext.as_slice(), b"a");
    assert!(bob.acknowledge(alice.address(), &id).unwrap());
    assert!(
        !bob.acknowledge(alice.address(), &MessageId::from_bytes([0; 32]))
            .unwrap()
    );
}

#[test]
fn group_key_travels_as_content_and_group_messages_are_padded() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FixedClock::new(at(2024, 1, 1));
    let alice = open(dir.path(), "alice", 1, &clock);
    let bob = open(dir.path(), "bob", 2, &clock);
    alice
        .start_session(bob.address(), &bob.publish_bundle().unwrap())
        .unwrap();
    let group = DistributionId::from_bytes([5; 16]);
    let invite = alice.group_distribution(group).unwrap();
    let wire = alice.encrypt(bob.address(), &invite).unwrap();
    let got = bob.decrypt(alice.address(), &wire).unwrap();
    assert_eq!(got.content, invite);
    let Body::SenderKeyDistribution(key) = got.content.body() else {
        panic!("not a group key: {:?}", got.content)
    };
    assert_eq!(key.distribution_id(), Some(group));
    assert!(format!("{got:?}").contains("chain_key: \"***\""));
    bob.group_process(alice.address(), group, key).unwrap();
    bob.acknowledge(alice.address(), &got.id).unwrap();

    let short = alice
        .group_encrypt(group, &alice.text("x").unwrap())
        .unwrap();
    let long = alice
        .group_encrypt(group, &alice.text(&"y".repeat(100)).unwrap())
        .unwrap();
    assert_eq!(short.serialized().len(), long.serialized().len());
    let got = bob.group_decrypt(alice.address(), group, &short).unwrap();
    assert_eq!(got.text(), Some("x"));
    assert_eq!(got.id, MessageId::of_group(group, &short));
    assert!(
        bob.group_decrypt(alice.address(), group, &short)
            .unwrap()
            .redelivered
    );
    assert!(bob.acknowledge(alice.address(), &got.id).unwrap());
    assert!(matches!(
        bob.group_decrypt(alice.address(), group, &short),
        Err(ReceiveError::Group(GroupReceiveError::Decrypt(
            GroupDecryptError::DuplicateMessage { .. }
        )))
    ));
    assert_eq!(
        bob.group_decrypt(alice.address(), group, &long)
            .unwrap()
            .text(),
        Some("y".repeat(100).as_str())
    );
    // A raw group message is not content.
    let raw = alice.group_encrypt_raw(group, b"raw").unwrap();
    assert!(matches!(
        bob.group_decrypt(alice.address(), group, &raw),
        Err(ReceiveError::Content { .. })
    ));
    assert_eq!(
        bob.group_decrypt_raw(alice.address(), group, &raw)
            .unwrap()
            .plaintext
            .as_slice(),
        b"raw"
    );
}

#[test]
fn safety_numbers_and_remote_identities() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FixedClock::new(at(2024, 1, 1));
    let alice = open(dir.path(), "alice", 1, &clock);
    let bob = open(dir.path(), "bob", 2, &clock);
    assert_eq!(alice.remote_identity(bob.address()).unwrap(), None);
    assert!(matches!(
        alice.safety_number(bob.address()),
        Err(SafetyNumberError::UnknownIdentity)
    ));
    alice
        .start_session(bob.address(), &bob.publish_bundle().unwrap())
        .unwrap();
    let m = alice
        .encrypt(bob.address(), &alice.text("hi").unwrap())
        .unwrap();
    bob.decrypt(alice.address(), &m).unwrap();
    assert_eq!(
        alice.remote_identity(bob.address()).unwrap(),
        Some(bob.identity_key().unwrap())
    );
    assert_eq!(
        bob.remote_identity(alice.address()).unwrap(),
        Some(alice.identity_key().unwrap())
    );
    let on_alice = alice.safety_number(bob.address()).unwrap();
    let on_bob = bob.safety_number(alice.address()).unwrap();
    assert_eq!(
        on_alice.displayable().to_string(),
        on_bob.displayable().to_string()
    );
    assert_eq!(
        on_alice
            .scannable()
            .compare(&on_bob.scannable().to_bytes())
            .unwrap(),
        Comparison::Match
    );
    // Another identity under Bob's address is another safety number.
    let mallory = open(dir.path(), "mallory", 3, &clock);
    alice
        .accept_identity(bob.address(), &mallory.identity_key().unwrap())
        .unwrap();
    assert_ne!(
        alice
            .safety_number(bob.address())
            .unwrap()
            .displayable()
            .to_string(),
        on_alice.displayable().to_string()
    );
    let _: &dyn DurableStore = alice.store();
}

/// `acknowledge` needs no concrete store type: a device over `Box<dyn ProtocolStore>`
/// holding a SQLite store acknowledges through its transactional interface, and an
/// in-memory device (which keeps no messages) answers `false`.
#[test]
fn acknowledge_works_through_a_boxed_store() {
    use confide::store::{InMemoryStore, ProtocolStore};
    let dir = tempfile::tempdir().unwrap();
    let clock = FixedClock::new(at(2026, 3, 1));
    let mut rng = ChaCha20Rng::seed_from_u64(41);
    let key = StoreKey::from_bytes([7; 32]);
    let sqlite = SqliteStore::open(dir.path().join("bob.db"), &key, &mut rng).unwrap();
    sqlite.bootstrap_identity(&mut rng).unwrap();
    let boxed: Box<dyn ProtocolStore> = Box::new(sqlite);
    let bob = Device::new(boxed, Address::new("bob", 1), rng, clock.clone())
        .with_versions(confide::session::Versions::V3AndV4);
    let alice = open(dir.path(), "alice", 42, &clock);

    alice
        .start_session(bob.address(), &bob.publish_bundle().unwrap())
        .unwrap();
    let m = alice
        .encrypt(bob.address(), &alice.text("boxed").unwrap())
        .unwrap();
    let got = bob.decrypt(alice.address(), &m).unwrap();
    assert_eq!(got.text(), Some("boxed"));
    assert!(bob.acknowledge(alice.address(), &got.id).unwrap());
    assert!(matches!(
        bob.decrypt(alice.address(), &m),
        Err(ReceiveError::Decrypt(DecryptError::DuplicateMessage { .. }))
    ));

    let memory: Box<dyn ProtocolStore> =
        Box::new(InMemoryStore::generate(&mut ChaCha20Rng::seed_from_u64(43)));
    let carol = Device::new(
        memory,
        Address::new("carol", 1),
        ChaCha20Rng::seed_from_u64(44),
        clock,
    )
    .with_versions(confide::session::Versions::V3AndV4);
    assert!(!carol.acknowledge(alice.address(), &got.id).unwrap());
}
