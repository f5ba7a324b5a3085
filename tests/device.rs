//! Device: the app-facing object over a store, a clock and an RNG.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use confide::business::{
    BusinessId, ChatItem, HostingAttestation, HostingMode, SelfManagedEndpoint,
};
use confide::device::{Device, FixedClock};
use confide::policy::{
    CollectionMethod, ConsentEvent, Decision, PolicyId, timeline_2021, utc_date,
};
use confide::store::{InMemoryStore, SqliteStore, StoreKey};
use confide::{Address, IdentityKeyPair, Timestamp};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

type SqlDevice = Device<SqliteStore, ChaCha20Rng, FixedClock>;

fn at(y: u32, m: u32, d: u32) -> Timestamp {
    utc_date(y, m, d).unwrap()
}

fn device(path: &Path, name: &str, seed: u64, clock: &FixedClock) -> SqlDevice {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let store = SqliteStore::open(path, &StoreKey::from_bytes([seed as u8; 32]), &mut rng).unwrap();
    if !store.has_local_identity().unwrap() {
        store
            .set_local_identity(&IdentityKeyPair::generate(&mut rng), seed as u32)
            .unwrap();
    }
    Device::new(store, Address::new(name, 1), rng, clock.clone())
}

#[test]
fn one_to_one_over_sqlite_with_redelivery_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FixedClock::new(at(2024, 1, 1));
    let alice = device(&dir.path().join("a.db"), "alice", 1, &clock);
    let bob = device(&dir.path().join("b.db"), "bob", 2, &clock);
    let bundle = bob.publish_bundle(1, Some(1)).unwrap();
    assert_eq!(bundle.identity_key, bob.identity_key().unwrap());
    alice.start_session(bob.address(), &bundle).unwrap();
    assert!(alice.has_session(bob.address()).unwrap());
    let m = alice.encrypt(bob.address(), b"hello").unwrap();
    let first = bob.decrypt(alice.address(), &m).unwrap();
    assert!(!first.redelivered);
    let again = bob.decrypt(alice.address(), &m).unwrap();
    assert!(again.redelivered);
    assert_eq!(again.plaintext, first.plaintext);
    drop((alice, bob));

    let alice = device(&dir.path().join("a.db"), "alice", 1, &clock);
    let bob = device(&dir.path().join("b.db"), "bob", 2, &clock);
    let r = bob.encrypt(alice.address(), b"back").unwrap();
    assert_eq!(
        alice
            .decrypt(bob.address(), &r)
            .unwrap()
            .plaintext
            .as_slice(),
        b"back"
    );
    // After the restart the first message is still a redelivery, not a new decrypt.
    assert!(bob.decrypt(alice.address(), &m).unwrap().redelivered);
}

#[test]
fn privacy_state_persists_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.db");
    let clock = FixedClock::new(at(2021, 1, 10));
    let schedule = timeline_2021([b"terms 2016", b"terms 2021"], true);
    let biz = BusinessId::new("acme-shop").unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let biz_key = IdentityKeyPair::generate(&mut rng);
    {
        let d = device(&path, "carol", 3, &clock);
        d.record_connection().unwrap();
        d.record_consent(
            ConsentEvent::new(
                PolicyId::new("2021-01").unwrap(),
                Decision::Accepted,
                at(2021, 1, 10),
                CollectionMethod::InAppNotice,
            ),
            &schedule,
        )
        .unwrap();
        // A business chat message waits for the attestation that says who reads it.
        assert!(d.business_message(&biz, 1, Some(1)).unwrap().is_empty());
        let signed = HostingAttestation::new(
            biz.clone(),
            HostingMode::SelfManaged(SelfManagedEndpoint::OwnApiServers),
            1,
            at(2021, 1, 1),
            at(2030, 1, 1),
        )
        .unwrap()
        .sign(&mut rng, &biz_key);
        let items = d
            .receive_attestation(&signed, &biz, biz_key.identity_key())
            .unwrap();
        assert!(
            items
                .iter()
                .any(|i| matches!(i, ChatItem::Message { id: 1, .. }))
        );
    }
    let d = device(&path, "carol", 3, &clock);
    assert_eq!(d.consent_ledger().unwrap().entries().len(), 1);
    assert!(d.disclosure(&biz).unwrap().told_privacy().is_some());
    assert_eq!(d.disclosure(&biz).unwrap().held_count(), 0);
    d.account_state(&schedule).unwrap();
}

#[test]
fn works_over_the_in_memory_store() {
    let clock = FixedClock::new(at(2024, 1, 1));
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let a = Device::new(
        InMemoryStore::generate(&mut rng),
        Address::new("a", 1),
        ChaCha20Rng::seed_from_u64(6),
        clock.clone(),
    );
    let b = Device::new(
        InMemoryStore::generate(&mut rng),
        Address::new("b", 1),
        ChaCha20Rng::seed_from_u64(7),
        clock,
    );
    let bundle = b.publish_bundle(1, None).unwrap();
    a.start_session(b.address(), &bundle).unwrap();
    let m = a.encrypt(b.address(), b"x").unwrap();
    assert!(!b.decrypt(a.address(), &m).unwrap().redelivered);
    // A plain store cannot tell a redelivery: it is a duplicate.
    assert!(b.decrypt(a.address(), &m).is_err());
    // Privacy state without a state store lives in the device.
    assert!(a.account_state(&timeline_2021([b"a", b"b"], true)).is_err());
    a.record_connection().unwrap();
    a.account_state(&timeline_2021([b"a", b"b"], true)).unwrap();
}
