//! Protocol v4 (PQXDH + SPQR) between confide peers: sessions from every kind of bundle,
//! long runs with DH steps and SPQR epochs, out-of-order delivery, replays, tampering,
//! the Kyber last-resort replay check, v3 and v4 side by side, the `Versions` policy,
//! stored records, the address binding and sealed sender around v4 messages.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use confide::device::{Device, FixedClock, SealAs, SealVersion};
use confide::keys::{IdentityKeyPair, KeyPair, KyberPreKeyRecord};
use confide::sealed::{SenderCertificate, SenderInfo, ServerCertificate, TrustRoots};
use confide::session::cipher::{self, BundleSpec};
use confide::session::{ProtocolVersion, Versions};
use confide::store::{InMemoryStore, PreKeyStore, SessionStore};
use confide::wire::{PreKeySignalMessage, SignalMessage};
use confide::{
    Address, BundleError, CiphertextMessage, DecryptError, SessionRecord, Timestamp, WireError,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const NOW: Timestamp = Timestamp::from_millis(1_700_000_000_000);
const ALICE_ID: &str = "9d0652a3-dcc3-4d11-975f-74d61598733f";
const BOB_ID: &str = "PNI:0e4b5b6c-1f2a-4b3c-8d9e-0a1b2c3d4e5f";

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// One side: a store and its address.
struct Peer {
    store: InMemoryStore,
    address: Address,
}

impl Peer {
    fn new(name: &str, rng: &mut ChaCha20Rng) -> Self {
        Self {
            store: InMemoryStore::generate(rng),
            address: Address::new(name, 1),
        }
    }

    /// A v4 bundle with signed prekey `id`, a Kyber prekey `id + 500` and, when asked,
    /// a one-time EC prekey `id + 1000`.
    fn bundle(
        &self,
        id: u32,
        one_time: bool,
        last_resort: bool,
        rng: &mut ChaCha20Rng,
    ) -> confide::PreKeyBundle {
        let spec = BundleSpec::new(1, id)
            .with_pre_key(one_time.then_some(id + 1000))
            .with_kyber_pre_key(Some(id + 500), last_resort);
        cipher::publish_bundle(&self.store, rng, &spec, NOW).unwrap()
    }

    fn send(&self, to: &Peer, text: &[u8], rng: &mut ChaCha20Rng) -> CiphertextMessage {
        let m = cipher::encrypt(&self.store, &self.address, &to.address, text, rng, NOW).unwrap();
        // Through bytes, as a transport would carry it.
        CiphertextMessage::from_parts(m.message_type(), m.serialized()).unwrap()
    }

    fn recv(
        &self,
        from: &Peer,
        m: &CiphertextMessage,
        rng: &mut ChaCha20Rng,
    ) -> Result<Vec<u8>, DecryptError> {
        cipher::decrypt(&self.store, &self.address, &from.address, m, rng, NOW)
            .map(|d| d.plaintext.to_vec())
    }

    fn record(&self, with: &Peer) -> Vec<u8> {
        self.store
            .session(&with.address)
            .unwrap()
            .map(|r| r.to_bytes().to_vec())
            .unwrap_or_default()
    }

    fn version_with(&self, with: &Peer) -> ProtocolVersion {
        let record = self.store.session(&with.address).unwrap().unwrap();
        record.current().unwrap().protocol_version()
    }
}

fn pair(seed: u64) -> (Peer, Peer, ChaCha20Rng) {
    let mut r = rng(seed);
    let alice = Peer::new(ALICE_ID, &mut r);
    let bob = Peer::new(BOB_ID, &mut r);
    (alice, bob, r)
}

fn prekey(m: &CiphertextMessage) -> &PreKeySignalMessage {
    match m {
        CiphertextMessage::PreKey(p) => p,
        _ => panic!("expected a prekey message"),
    }
}

/// `n` messages from `from` to `to`, each decrypted at once.
fn burst(from: &Peer, to: &Peer, n: usize, tag: &str, r: &mut ChaCha20Rng) {
    for i in 0..n {
        let text = format!("{tag} {i}");
        let m = from.send(to, text.as_bytes(), r);
        assert_eq!(to.recv(from, &m, r).unwrap(), text.as_bytes());
    }
}

#[test]
fn v4_sessions_from_every_kind_of_bundle() {
    for (seed, one_time, last_resort) in [
        (1, false, false),
        (2, true, false),
        (3, false, true),
        (4, true, true),
    ] {
        let (alice, bob, mut r) = pair(seed);
        let bundle = bob.bundle(1, one_time, last_resort, &mut r);
        assert!(bundle.kyber_pre_key.is_some());
        cipher::start_session(
            &alice.store,
            &bob.address,
            &bundle,
            Versions::V3AndV4,
            &mut r,
            NOW,
        )
        .unwrap();
        assert_eq!(alice.version_with(&bob), ProtocolVersion::V4);
        // Every message before Bob answers repeats the one Kyber ciphertext.
        let first = alice.send(&bob, b"one", &mut r);
        let second = alice.send(&bob, b"two", &mut r);
        assert_eq!(first.serialized()[0], 0x44);
        let (p1, p2) = (prekey(&first), prekey(&second));
        assert_eq!(p1.kyber_pre_key_id(), Some(501));
        assert_eq!(p1.kyber_ciphertext(), p2.kyber_ciphertext());
        assert_eq!(p1.base_key(), p2.base_key());
        assert_eq!(p1.pre_key_id(), one_time.then_some(1001));
        assert!(!p1.message().pq_ratchet().is_empty());
        assert_eq!(bob.recv(&alice, &second, &mut r).unwrap(), b"two");
        assert_eq!(bob.recv(&alice, &first, &mut r).unwrap(), b"one");
        assert_eq!(bob.version_with(&alice), ProtocolVersion::V4);
        // A one-time Kyber prekey is gone, a last-resort one stays.
        let kyber = bob.store.kyber_pre_keys().unwrap();
        assert_eq!(kyber.kyber_pre_key(501).unwrap().is_some(), last_resort);
        assert!(bob.store.pre_key(1001).unwrap().is_none());
        burst(&bob, &alice, 3, "reply", &mut r);
        // Acknowledged: Alice's messages are plain SignalMessages now.
        let after = alice.send(&bob, b"after", &mut r);
        assert!(matches!(after, CiphertextMessage::Signal(_)));
        assert_eq!(bob.recv(&alice, &after, &mut r).unwrap(), b"after");
    }
}

#[test]
fn hundreds_of_messages_with_dh_steps_and_spqr_epochs() {
    let (alice, bob, mut r) = pair(10);
    let bundle = bob.bundle(1, true, true, &mut r);
    cipher::start_session(
        &alice.store,
        &bob.address,
        &bundle,
        Versions::V3AndV4,
        &mut r,
        NOW,
    )
    .unwrap();
    // Uneven bursts both ways: DH ratchet steps at every turn, and enough messages for
    // SPQR's chunks (3 + 36 one way, 30 + 5 the other per epoch) to finish epochs.
    let mut total = 0;
    for round in 0..24 {
        let n = 1 + (round * 7) % 13;
        burst(&alice, &bob, n, "a", &mut r);
        burst(&bob, &alice, 1 + (round * 5) % 11, "b", &mut r);
        total += n;
    }
    // A long one-way run: the erasure code carries whole payloads.
    burst(&alice, &bob, 120, "long a", &mut r);
    burst(&bob, &alice, 120, "long b", &mut r);
    assert!(total > 100);
    let alice_after = alice.record(&bob);
    let reloaded = SessionRecord::from_bytes(&alice_after).unwrap();
    assert_eq!(reloaded.to_bytes().to_vec(), alice_after);
}

#[test]
fn out_of_order_and_held_back_delivery() {
    let (alice, bob, mut r) = pair(11);
    let bundle = bob.bundle(1, false, false, &mut r);
    cipher::start_session(
        &alice.store,
        &bob.address,
        &bundle,
        Versions::V3AndV4,
        &mut r,
        NOW,
    )
    .unwrap();
    let first = alice.send(&bob, b"first", &mut r);
    assert_eq!(bob.recv(&alice, &first, &mut r).unwrap(), b"first");
    for round in 0..6 {
        burst(&bob, &alice, 2, "ack", &mut r);
        let msgs: Vec<_> = (0..25)
            .map(|i| {
                (
                    i,
                    alice.send(&bob, format!("{round}/{i}").as_bytes(), &mut r),
                )
            })
            .collect();
        // Reversed, with every third held back to the end.
        let (held, now): (Vec<_>, Vec<_>) = msgs.into_iter().rev().partition(|(i, _)| i % 3 == 0);
        for (i, m) in now.iter().chain(held.iter()) {
            assert_eq!(
                bob.recv(&alice, m, &mut r).unwrap(),
                format!("{round}/{i}").as_bytes()
            );
        }
    }
}

#[test]
fn replays_are_refused() {
    let (alice, bob, mut r) = pair(12);
    let bundle = bob.bundle(1, true, false, &mut r);
    cipher::start_session(
        &alice.store,
        &bob.address,
        &bundle,
        Versions::V3AndV4,
        &mut r,
        NOW,
    )
    .unwrap();
    let hello = alice.send(&bob, b"hello", &mut r);
    bob.recv(&alice, &hello, &mut r).unwrap();
    let before = bob.record(&alice);
    assert!(matches!(
        bob.recv(&alice, &hello, &mut r),
        Err(DecryptError::DuplicateMessage { .. })
    ));
    burst(&bob, &alice, 1, "ack", &mut r);
    let m = alice.send(&bob, b"m", &mut r);
    bob.recv(&alice, &m, &mut r).unwrap();
    let before_replay = bob.record(&alice);
    assert!(bob.recv(&alice, &m, &mut r).is_err());
    assert_eq!(bob.record(&alice), before_replay);
    assert_ne!(before, before_replay);
}

/// `m` with one byte of its SPQR message flipped (the MAC then fails too: the MAC
/// covers the field).
fn corrupt_pq_ratchet(m: &SignalMessage, at: usize) -> SignalMessage {
    let pq = m.pq_ratchet().to_vec();
    let bytes = m.serialized().to_vec();
    let start = bytes
        .windows(pq.len())
        .position(|w| w == pq.as_slice())
        .unwrap();
    let mut bad = bytes;
    bad[start + at.min(pq.len() - 1)] ^= 0x40;
    SignalMessage::try_from(&bad[..]).unwrap()
}

#[test]
fn corrupted_pq_ratchet_is_refused_and_changes_nothing() {
    let (alice, bob, mut r) = pair(13);
    let bundle = bob.bundle(1, false, false, &mut r);
    cipher::start_session(
        &alice.store,
        &bob.address,
        &bundle,
        Versions::V3AndV4,
        &mut r,
        NOW,
    )
    .unwrap();
    let first = alice.send(&bob, b"first", &mut r);
    bob.recv(&alice, &first, &mut r).unwrap();
    for i in 0..40 {
        let m = match bob.send(&alice, format!("r{i}").as_bytes(), &mut r) {
            CiphertextMessage::Signal(m) => m,
            _ => panic!("Bob answers with SignalMessages"),
        };
        let before = alice.record(&bob);
        for at in [0, 1, 3, 10, 36] {
            let bad = CiphertextMessage::Signal(corrupt_pq_ratchet(&m, at));
            assert!(alice.recv(&bob, &bad, &mut r).is_err());
            assert_eq!(alice.record(&bob), before);
        }
        let good = CiphertextMessage::Signal(m);
        assert_eq!(
            alice.recv(&bob, &good, &mut r).unwrap(),
            format!("r{i}").as_bytes()
        );
    }
}

#[test]
fn last_resort_kyber_replay_is_refused() {
    let (alice, bob, mut r) = pair(14);
    let bundle = bob.bundle(1, false, true, &mut r);
    cipher::start_session(
        &alice.store,
        &bob.address,
        &bundle,
        Versions::V3AndV4,
        &mut r,
        NOW,
    )
    .unwrap();
    let hello = alice.send(&bob, b"hello", &mut r);
    bob.recv(&alice, &hello, &mut r).unwrap();
    // Bob forgets the session (say, a reinstall restoring an old backup): the same
    // prekey message again would start a second session from one handshake.
    bob.store
        .save_session(&alice.address, &SessionRecord::new())
        .unwrap();
    assert!(matches!(
        bob.recv(&alice, &hello, &mut r),
        Err(DecryptError::KyberPreKeyReused { id: 501 })
    ));
    // A new handshake with the same last-resort key is fine.
    let again = bob.bundle(2, false, true, &mut r);
    let mut fresh = again.clone();
    fresh.kyber_pre_key = bundle.kyber_pre_key.clone();
    fresh.signed_pre_key = again.signed_pre_key;
    cipher::start_session(
        &alice.store,
        &bob.address,
        &fresh,
        Versions::V3AndV4,
        &mut r,
        NOW,
    )
    .unwrap();
    let second = alice.send(&bob, b"second", &mut r);
    assert_eq!(bob.recv(&alice, &second, &mut r).unwrap(), b"second");
}

#[test]
fn one_time_kyber_prekey_is_consumed() {
    let (alice, bob, mut r) = pair(15);
    let bundle = bob.bundle(1, false, false, &mut r);
    cipher::start_session(
        &alice.store,
        &bob.address,
        &bundle,
        Versions::V3AndV4,
        &mut r,
        NOW,
    )
    .unwrap();
    let hello = alice.send(&bob, b"hello", &mut r);
    bob.recv(&alice, &hello, &mut r).unwrap();
    bob.store
        .save_session(&alice.address, &SessionRecord::new())
        .unwrap();
    assert!(matches!(
        bob.recv(&alice, &hello, &mut r),
        Err(DecryptError::UnknownKyberPreKey { id: 501 })
    ));
}

#[test]
fn v3_and_v4_sessions_side_by_side() {
    let mut r = rng(16);
    let alice = Peer::new(ALICE_ID, &mut r);
    let carol = Peer::new("carol", &mut r);
    let bob = Peer::new(BOB_ID, &mut r);
    let v4 = bob.bundle(1, true, false, &mut r);
    let mut v3 = bob.bundle(2, true, false, &mut r);
    v3.kyber_pre_key = None;
    cipher::start_session(
        &alice.store,
        &bob.address,
        &v4,
        Versions::V3AndV4,
        &mut r,
        NOW,
    )
    .unwrap();
    cipher::start_session(
        &carol.store,
        &bob.address,
        &v3,
        Versions::V3AndV4,
        &mut r,
        NOW,
    )
    .unwrap();
    let from_alice = alice.send(&bob, b"pq", &mut r);
    let from_carol = carol.send(&bob, b"classic", &mut r);
    assert_eq!(from_alice.serialized()[0], 0x44);
    assert_eq!(from_carol.serialized()[0], 0x33);
    assert_eq!(bob.recv(&carol, &from_carol, &mut r).unwrap(), b"classic");
    assert_eq!(bob.recv(&alice, &from_alice, &mut r).unwrap(), b"pq");
    assert_eq!(bob.version_with(&alice), ProtocolVersion::V4);
    assert_eq!(bob.version_with(&carol), ProtocolVersion::V3);
    for i in 0..10 {
        burst(&bob, &alice, 1 + i % 3, "to alice", &mut r);
        burst(&bob, &carol, 1 + i % 2, "to carol", &mut r);
        burst(&alice, &bob, 2, "from alice", &mut r);
        burst(&carol, &bob, 2, "from carol", &mut r);
    }
    // Each record reloads as what it is.
    for with in [&alice, &carol] {
        let bytes = bob.record(with);
        let again = SessionRecord::from_bytes(&bytes).unwrap();
        assert_eq!(again.to_bytes().to_vec(), bytes);
    }
}

#[test]
fn stored_v4_records_continue_after_reload() {
    let (alice, bob, mut r) = pair(17);
    let bundle = bob.bundle(1, true, false, &mut r);
    cipher::start_session(
        &alice.store,
        &bob.address,
        &bundle,
        Versions::V3AndV4,
        &mut r,
        NOW,
    )
    .unwrap();
    // Unacknowledged: the pending Kyber prekey survives the round trip.
    let stored = alice.store.session(&bob.address).unwrap().unwrap();
    let pending = stored.current().unwrap().pending_kyber_pre_key().unwrap();
    assert_eq!(pending.0, 501);
    let reloaded = SessionRecord::from_bytes(&stored.to_bytes()).unwrap();
    assert_eq!(
        reloaded
            .current()
            .unwrap()
            .pending_kyber_pre_key()
            .unwrap()
            .1,
        pending.1
    );
    for round in 0..5 {
        burst(&alice, &bob, 7, "a", &mut r);
        burst(&bob, &alice, 5, "b", &mut r);
        // Reload both records from their bytes, as a restart would.
        for (p, with) in [(&alice, &bob), (&bob, &alice)] {
            let bytes = p.record(with);
            let record = SessionRecord::from_bytes(&bytes).unwrap();
            p.store.save_session(&with.address, &record).unwrap();
        }
        assert_eq!(
            alice.version_with(&bob),
            ProtocolVersion::V4,
            "round {round}"
        );
    }
}

#[test]
fn addresses_are_bound_and_checked() {
    let (alice, bob, mut r) = pair(18);
    let bundle = bob.bundle(1, false, true, &mut r);
    cipher::start_session(
        &alice.store,
        &bob.address,
        &bundle,
        Versions::V3AndV4,
        &mut r,
        NOW,
    )
    .unwrap();
    let hello = alice.send(&bob, b"hello", &mut r);
    let inner = prekey(&hello).message();
    let addresses = inner.addresses().unwrap();
    assert_eq!(addresses[0], 0); // ACI sender
    assert_eq!(addresses[17], 1); // device 1
    assert_eq!(addresses[18], 1); // PNI recipient
    // With a local name that is no service id the binding cannot be checked: refused.
    let plain = cipher::decrypt(
        &bob.store,
        &Address::new("bob", 1),
        &alice.address,
        &hello,
        &mut r,
        NOW,
    );
    assert!(matches!(plain, Err(DecryptError::InvalidMessage)));
    // Addressed to another of Bob's devices: refused as a MAC failure.
    let other = Address::new(BOB_ID, 2);
    let wrong = cipher::decrypt(&bob.store, &other, &alice.address, &hello, &mut r, NOW);
    assert!(matches!(wrong, Err(DecryptError::InvalidMessage)));
    assert!(bob.store.session(&alice.address).unwrap().is_none());
    assert_eq!(bob.recv(&alice, &hello, &mut r).unwrap(), b"hello");
    // Ordinary messages carry none.
    burst(&bob, &alice, 1, "ack", &mut r);
    match alice.send(&bob, b"later", &mut r) {
        CiphertextMessage::Signal(m) => assert!(m.addresses().is_none()),
        _ => panic!("acknowledged"),
    }
    // Names that are not service ids: no addresses at all.
    let mut r = rng(19);
    let (carol, dave) = (Peer::new("carol", &mut r), Peer::new("dave", &mut r));
    let b = dave.bundle(1, false, false, &mut r);
    cipher::start_session(
        &carol.store,
        &dave.address,
        &b,
        Versions::V3AndV4,
        &mut r,
        NOW,
    )
    .unwrap();
    let m = carol.send(&dave, b"x", &mut r);
    assert!(prekey(&m).message().addresses().is_none());
    assert_eq!(dave.recv(&carol, &m, &mut r).unwrap(), b"x");
}

#[test]
fn v4_wire_fields_belong_to_v4_only() {
    let (alice, bob, mut r) = pair(20);
    let bundle = bob.bundle(1, false, false, &mut r);
    let mut v3_bundle = bundle.clone();
    v3_bundle.kyber_pre_key = None;
    // A v4 prekey message relabelled v3 carries Kyber fields v3 lacks.
    cipher::start_session(
        &alice.store,
        &bob.address,
        &bundle,
        Versions::V3AndV4,
        &mut r,
        NOW,
    )
    .unwrap();
    let v4 = alice.send(&bob, b"x", &mut r);
    let mut relabelled = v4.serialized().to_vec();
    relabelled[0] = 0x33;
    assert!(matches!(
        PreKeySignalMessage::try_from(&relabelled[..]),
        Err(WireError::UnexpectedField { .. })
    ));
    // A v3 prekey message relabelled v4 lacks them.
    let carol = Peer::new("carol", &mut r);
    cipher::start_session(
        &carol.store,
        &bob.address,
        &v3_bundle,
        Versions::V3AndV4,
        &mut r,
        NOW,
    )
    .unwrap();
    let v3 = carol.send(&bob, b"y", &mut r);
    let mut relabelled = v3.serialized().to_vec();
    relabelled[0] = 0x44;
    assert!(matches!(
        PreKeySignalMessage::try_from(&relabelled[..]),
        Err(WireError::MissingField {
            field: "kyber_pre_key_id"
        })
    ));
    // Half-relabelled bytes (0x43, 0x34) are no version at all.
    for byte in [0x43, 0x34] {
        relabelled[0] = byte;
        assert!(matches!(
            PreKeySignalMessage::try_from(&relabelled[..]),
            Err(WireError::UnsupportedVersion { .. })
        ));
    }
}

#[test]
fn bundles_carry_signed_kyber_prekeys() {
    let mut r = rng(21);
    let bob = Peer::new(BOB_ID, &mut r);
    let alice = Peer::new(ALICE_ID, &mut r);
    let bundle = bob.bundle(1, true, false, &mut r);
    let again = confide::PreKeyBundle::from_bytes(&bundle.to_bytes()).unwrap();
    assert_eq!(again, bundle);
    assert!(bundle.has_valid_signature());
    // A Kyber key signed by someone else is refused before anything is stored.
    let stranger = IdentityKeyPair::generate(&mut r);
    let forged = KyberPreKeyRecord::generate(&mut r, &stranger, 501, NOW);
    let bad = bundle.clone().with_kyber_pre_key(forged.public());
    assert!(!bad.has_valid_signature());
    assert!(matches!(
        cipher::start_session(
            &alice.store,
            &bob.address,
            &bad,
            Versions::V3AndV4,
            &mut r,
            NOW
        ),
        Err(BundleError::InvalidSignature)
    ));
    assert!(alice.store.session(&bob.address).unwrap().is_none());
}

fn device(
    name: &str,
    seed: u64,
    versions: Versions,
) -> Device<InMemoryStore, ChaCha20Rng, FixedClock> {
    let mut r = rng(seed);
    Device::new(
        InMemoryStore::generate(&mut r),
        Address::new(name, 1),
        r,
        FixedClock::new(NOW),
    )
    .with_versions(versions)
}

#[test]
fn versions_policy_decides_and_refuses() {
    let v4 = device(ALICE_ID, 30, Versions::default());
    assert_eq!(v4.versions(), Versions::V4Only);
    let v3 = device("carol", 31, Versions::V3Only);
    let both = device(BOB_ID, 32, Versions::V3AndV4);
    // A v3-only device publishes no Kyber prekey; a v4-only one refuses such a bundle.
    let v3_bundle = v3.publish_bundle().unwrap();
    assert!(v3_bundle.kyber_pre_key.is_none());
    assert!(matches!(
        v4.start_session(v3.address(), &v3_bundle),
        Err(BundleError::MissingKyberPreKey)
    ));
    // Both: v4 with a Kyber prekey, v3 without.
    let v4_bundle = v4.publish_bundle().unwrap();
    assert!(v4_bundle.kyber_pre_key.is_some());
    both.start_session(v4.address(), &v4_bundle).unwrap();
    both.start_session(v3.address(), &v3_bundle).unwrap();
    let to_v4 = both.encrypt_raw(v4.address(), b"pq").unwrap();
    let to_v3 = both.encrypt_raw(v3.address(), b"classic").unwrap();
    assert_eq!(to_v4.serialized()[0], 0x44);
    assert_eq!(to_v3.serialized()[0], 0x33);
    assert_eq!(
        &v4.decrypt_raw(both.address(), &to_v4).unwrap().plaintext[..],
        b"pq"
    );
    assert_eq!(
        &v3.decrypt_raw(both.address(), &to_v3).unwrap().plaintext[..],
        b"classic"
    );
    // A v3-only device ignores a bundle's Kyber prekey and refuses v4 prekey messages.
    let both_bundle = both.publish_bundle().unwrap();
    v3.start_session(both.address(), &both_bundle).unwrap();
    let classic = v3.encrypt_raw(both.address(), b"v3").unwrap();
    assert_eq!(classic.serialized()[0], 0x33);
    let v4_to_v3 = {
        let other = device("dave", 33, Versions::V4Only);
        let b = v3.store().kyber_pre_keys().map(|_| ());
        assert!(b.is_some());
        let mut r = rng(34);
        let spec = BundleSpec::new(1, 77).with_kyber_pre_key(Some(77), true);
        let bundle = cipher::publish_bundle(v3.store(), &mut r, &spec, NOW).unwrap();
        other.start_session(v3.address(), &bundle).unwrap();
        (
            other.address().clone(),
            other.encrypt_raw(v3.address(), b"pq").unwrap(),
        )
    };
    assert!(matches!(
        v3.decrypt_raw(&v4_to_v3.0, &v4_to_v3.1),
        Err(DecryptError::VersionNotAllowed {
            version: ProtocolVersion::V4
        })
    ));
    // And a v4-only device refuses a v3 prekey message.
    v3.start_session(v4.address(), &v4.publish_bundle().unwrap())
        .unwrap();
    let v3_msg = v3.encrypt_raw(v4.address(), b"old").unwrap();
    assert!(matches!(
        v4.decrypt_raw(v3.address(), &v3_msg),
        Err(DecryptError::VersionNotAllowed {
            version: ProtocolVersion::V3
        })
    ));
}

#[test]
fn devices_top_up_one_time_kyber_prekeys() {
    let bob = device(BOB_ID, 40, Versions::V4Only);
    let alice = device(ALICE_ID, 41, Versions::V4Only);
    let fresh = bob.top_up_kyber_pre_keys().unwrap();
    assert_eq!(fresh.len(), confide::device::KYBER_PRE_KEY_BATCH);
    assert!(bob.top_up_kyber_pre_keys().unwrap().is_empty());
    let identity = bob.identity_key().unwrap();
    assert!(fresh.iter().all(|k| k.has_valid_signature(&identity)));
    // A session from one of them consumes it, and the next top-up replaces just that.
    let bundle = bob
        .publish_bundle()
        .unwrap()
        .with_kyber_pre_key(fresh[3].clone());
    alice.start_session(bob.address(), &bundle).unwrap();
    let m = alice.encrypt_raw(bob.address(), b"hi").unwrap();
    assert_eq!(
        &bob.decrypt_raw(alice.address(), &m).unwrap().plaintext[..],
        b"hi"
    );
    let again = bob.top_up_kyber_pre_keys().unwrap();
    assert_eq!(again.len(), 1);
    assert!(fresh.iter().all(|k| k.id != again[0].id));
}

#[test]
fn sealed_sender_v1_and_v2_carry_v4_messages() {
    let mut r = rng(50);
    let trust_root = KeyPair::generate(&mut r);
    let server = KeyPair::generate(&mut r);
    let server_cert = ServerCertificate::new(1, server.public(), trust_root.private(), &mut r);
    let alice = device(ALICE_ID, 51, Versions::V4Only);
    let bob = device(BOB_ID.trim_start_matches("PNI:"), 52, Versions::V4Only);
    let info = SenderInfo {
        uuid: ALICE_ID.into(),
        e164: None,
        device_id: 1,
        identity_key: alice.identity_key().unwrap(),
        expiration: Timestamp::from_millis(NOW.as_millis() + 60_000),
    };
    let cert = SenderCertificate::new(info, server_cert, server.private(), &mut r);
    let trust = TrustRoots::new(trust_root.public());
    alice
        .start_session(bob.address(), &bob.publish_bundle().unwrap())
        .unwrap();
    for (i, version) in [
        SealVersion::V1,
        SealVersion::V2,
        SealVersion::V1,
        SealVersion::V2,
    ]
    .into_iter()
    .enumerate()
    {
        let mut seal = SealAs::new(&cert);
        seal.version = version;
        let text = format!("sealed {i}");
        let bytes = alice
            .seal_message_raw(bob.address(), text.as_bytes(), &seal)
            .unwrap();
        // The server splits a v2 multi-recipient message into the recipient's own.
        let bytes = match version {
            SealVersion::V1 => bytes,
            _ => {
                let id: confide::sealed::ServiceId = bob.address().name().parse().unwrap();
                confide::sealed::MultiRecipientMessage::try_from(&bytes[..])
                    .unwrap()
                    .for_recipient(&id)
                    .unwrap()
            }
        };
        let opened = bob.unseal(&bytes, &trust).unwrap();
        assert_eq!(opened.sender, *alice.address());
        assert_eq!(&opened.plaintext[..], text.as_bytes());
    }
    let record = bob.store().session(alice.address()).unwrap().unwrap();
    assert_eq!(
        record.current().unwrap().protocol_version(),
        ProtocolVersion::V4
    );
}

#[test]
fn hazmat_pqxdh_secrets_are_deterministic_and_redacted() {
    let mut r = rng(60);
    let bob = IdentityKeyPair::generate(&mut r);
    let alice = IdentityKeyPair::generate(&mut r);
    let signed = KeyPair::generate(&mut r);
    let one_time = KeyPair::generate(&mut r);
    let kyber = KyberPreKeyRecord::generate(&mut r, &bob, 1, NOW);
    let base = KeyPair::generate(&mut r).public();
    // A ciphertext from a real session's prekey message.
    let (a, b) = (Peer::new(ALICE_ID, &mut r), Peer::new(BOB_ID, &mut r));
    let bundle = b.bundle(1, false, false, &mut r);
    cipher::start_session(
        &a.store,
        &b.address,
        &bundle,
        Versions::V3AndV4,
        &mut r,
        NOW,
    )
    .unwrap();
    let m = a.send(&b, b"x", &mut r);
    let ct = prekey(&m).kyber_ciphertext().unwrap().clone();
    let run = |one: Option<&KeyPair>| {
        confide::hazmat::pqxdh_responder_secrets(
            &bob,
            &signed,
            one,
            &kyber,
            alice.identity_key(),
            &base,
            &ct,
        )
        .unwrap()
    };
    let s1 = run(None);
    let s2 = run(None);
    assert_eq!(s1.root_key, s2.root_key);
    assert_eq!(s1.spqr_auth_key, s2.spqr_auth_key);
    assert_ne!(s1.root_key, s1.chain_key);
    assert_ne!(run(Some(&one_time)).root_key, s1.root_key);
    assert_eq!(format!("{s1:?}"), "PqxdhSecrets(***)");
    // A low-order base key is refused.
    let weak = confide::hazmat::public_key_unchecked([0u8; 32]);
    assert!(
        confide::hazmat::pqxdh_responder_secrets(
            &bob,
            &signed,
            None,
            &kyber,
            alice.identity_key(),
            &weak,
            &ct
        )
        .is_err()
    );
}

/// libsignal's rule: a v4 session we started that is still unacknowledged more than
/// `MAX_UNACKNOWLEDGED_SESSION_AGE` later cannot send, so the app fetches a new bundle;
/// the refusal changes nothing. An acknowledged session, and a v3 one, are never refused.
#[test]
fn stale_unacknowledged_v4_session_cannot_send() {
    use confide::EncryptError;
    use confide::session::limits::MAX_UNACKNOWLEDGED_SESSION_AGE;
    const DAY: u64 = 24 * 60 * 60 * 1000;
    let at = |ms: u64| Timestamp::from_millis(NOW.as_millis() + ms);
    let encrypt = |from: &Peer, to: &Peer, r: &mut ChaCha20Rng, now| {
        cipher::encrypt(&from.store, &from.address, &to.address, b"hi", r, now)
    };
    assert_eq!(MAX_UNACKNOWLEDGED_SESSION_AGE, 30 * DAY);

    let (alice, bob, mut r) = pair(80);
    let bundle = bob.bundle(1, true, false, &mut r);
    cipher::start_session(
        &alice.store,
        &bob.address,
        &bundle,
        Versions::V3AndV4,
        &mut r,
        NOW,
    )
    .unwrap();
    assert_eq!(alice.version_with(&bob), ProtocolVersion::V4);
    let early = encrypt(&alice, &bob, &mut r, at(29 * DAY)).unwrap();
    assert!(matches!(early, CiphertextMessage::PreKey(_)));
    assert!(encrypt(&alice, &bob, &mut r, at(30 * DAY)).is_ok());
    let before = alice.record(&bob);
    let stale = encrypt(&alice, &bob, &mut r, at(30 * DAY + 1));
    assert!(matches!(
        stale,
        Err(EncryptError::StaleUnacknowledgedSession)
    ));
    assert_eq!(stale.unwrap_err().code(), "StaleUnacknowledgedSession");
    assert_eq!(
        alice.record(&bob),
        before,
        "a refused encrypt changes nothing"
    );

    // Once Bob answered, the session is acknowledged and sends at any age.
    assert_eq!(bob.recv(&alice, &early, &mut r).unwrap(), b"hi");
    let reply = bob.send(&alice, b"back", &mut r);
    assert_eq!(alice.recv(&bob, &reply, &mut r).unwrap(), b"back");
    let late = encrypt(&alice, &bob, &mut r, at(400 * DAY)).unwrap();
    assert!(matches!(late, CiphertextMessage::Signal(_)));
    assert_eq!(bob.recv(&alice, &late, &mut r).unwrap(), b"hi");
    // Bob's side never was unacknowledged.
    assert!(encrypt(&bob, &alice, &mut r, at(400 * DAY)).is_ok());

    // A v3 session keeps today's behaviour: no age limit.
    let (carol, dave, mut r) = pair(81);
    let spec = BundleSpec::new(1, 1).with_pre_key(Some(1001));
    let v3 = cipher::publish_bundle(&dave.store, &mut r, &spec, NOW).unwrap();
    cipher::start_session(
        &carol.store,
        &dave.address,
        &v3,
        Versions::V3AndV4,
        &mut r,
        NOW,
    )
    .unwrap();
    assert_eq!(carol.version_with(&dave), ProtocolVersion::V3);
    let old = encrypt(&carol, &dave, &mut r, at(400 * DAY)).unwrap();
    assert!(matches!(old, CiphertextMessage::PreKey(_)));
    assert_eq!(dave.recv(&carol, &old, &mut r).unwrap(), b"hi");
}
