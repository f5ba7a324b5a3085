//! Device: the app-facing object over a store, a clock and an RNG.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "device/first_hour.rs"]
mod first_hour;
#[path = "device/privacy_cas.rs"]
mod privacy_cas;
#[path = "common/stores.rs"]
mod stores;

use std::path::Path;

use confide::business::{
    BusinessId, ChatItem, HostingAttestation, HostingMode, SelfManagedEndpoint,
};
use confide::device::{
    Device, FixedClock, GroupKeyProcessError, GroupReceiveError, SealAs, SealFor, SealMessageError,
    SealVersion, UnsealError,
};
use confide::envelope::Body;
use confide::export::{AccountInfo, MessageTimer, PrivacySettings, Profile, Visibility};
use confide::group::{
    DistributionId, GroupDecryptError, GroupProcessError, Layout, SenderKeyDistributionMessage,
    SenderKeyMessage,
};
use confide::keys::KeyPair;
use confide::policy::{
    CollectionMethod, ConsentEvent, Decision, PolicyId, timeline_2021, utc_date,
};
use confide::sealed::{
    CertificateError, ContentHint, ContentType, MultiRecipientMessage, Recipient, SealedOpenError,
    SenderCertificate, SenderInfo, ServerCertificate, ServiceId, TrustRoots,
    UnidentifiedSenderMessageContent,
};
use confide::store::{
    DurableStore, IdentityStore, InMemoryStore, MessageId, SenderKeyStore, SqliteStore, StoreKey,
};
use confide::{Address, IdentityKeyPair, Timestamp};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

type SqlDevice = Device<SqliteStore, ChaCha20Rng, FixedClock>;

fn at(y: u32, m: u32, d: u32) -> Timestamp {
    utc_date(y, m, d).unwrap()
}

fn device(path: &Path, name: &str, seed: u64, clock: &FixedClock) -> SqlDevice {
    device_keyed(path, name, seed as u8, seed, clock)
}

/// As [`device`], with the store key's byte apart from the RNG seed (for a second
/// connection to the same file).
fn device_keyed(path: &Path, name: &str, key: u8, seed: u64, clock: &FixedClock) -> SqlDevice {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let store = SqliteStore::open(path, &StoreKey::from_bytes([key; 32]), &mut rng).unwrap();
    if !store.has_local_identity().unwrap() {
        store
            .set_local_identity(&IdentityKeyPair::generate(&mut rng), seed as u32)
            .unwrap();
    }
    Device::new(store, Address::new(name, 1), rng, clock.clone())
        .with_versions(confide::session::Versions::V3AndV4)
}

#[test]
fn one_to_one_over_sqlite_with_redelivery_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FixedClock::new(at(2024, 1, 1));
    let alice = device(&dir.path().join("a.db"), "alice", 1, &clock);
    let bob = device(&dir.path().join("b.db"), "bob", 2, &clock);
    let bundle = bob.publish_bundle().unwrap();
    assert_eq!(bundle.identity_key, bob.identity_key().unwrap());
    alice.start_session(bob.address(), &bundle).unwrap();
    assert!(alice.has_session(bob.address()).unwrap());
    let m = alice.encrypt_raw(bob.address(), b"hello").unwrap();
    let first = bob.decrypt_raw(alice.address(), &m).unwrap();
    assert!(!first.redelivered);
    let again = bob.decrypt_raw(alice.address(), &m).unwrap();
    assert!(again.redelivered);
    assert_eq!(again.plaintext, first.plaintext);
    drop((alice, bob));

    let alice = device(&dir.path().join("a.db"), "alice", 1, &clock);
    let bob = device(&dir.path().join("b.db"), "bob", 2, &clock);
    let r = bob.encrypt_raw(alice.address(), b"back").unwrap();
    assert_eq!(
        alice
            .decrypt_raw(bob.address(), &r)
            .unwrap()
            .plaintext
            .as_slice(),
        b"back"
    );
    // After the restart the first message is still a redelivery, not a new decrypt.
    assert!(bob.decrypt_raw(alice.address(), &m).unwrap().redelivered);
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
    )
    .with_versions(confide::session::Versions::V3AndV4);
    let b = Device::new(
        InMemoryStore::generate(&mut rng),
        Address::new("b", 1),
        ChaCha20Rng::seed_from_u64(7),
        clock,
    )
    .with_versions(confide::session::Versions::V3AndV4);
    let bundle = b.publish_bundle().unwrap();
    a.start_session(b.address(), &bundle).unwrap();
    let m = a.encrypt_raw(b.address(), b"x").unwrap();
    assert!(!b.decrypt_raw(a.address(), &m).unwrap().redelivered);
    // A plain store cannot tell a redelivery: it is a duplicate.
    assert!(b.decrypt_raw(a.address(), &m).is_err());
    // Privacy state without a state store lives in the device.
    assert!(a.account_state(&timeline_2021([b"a", b"b"], true)).is_err());
    a.record_connection().unwrap();
    a.account_state(&timeline_2021([b"a", b"b"], true)).unwrap();
}

// ---- groups ------------------------------------------------------------------------

const GROUP: DistributionId = DistributionId::from_bytes([0x42; 16]);

/// Sends `skdm` from `from` to `to` the way apps do: inside their pairwise session,
/// as typed content for the current layout, as raw bytes the app frames for the legacy
/// one.
fn hand_over(from: &SqlDevice, to: &SqlDevice, skdm: &SenderKeyDistributionMessage) {
    if !from.has_session(to.address()).unwrap() {
        let bundle = to.publish_bundle().unwrap();
        from.start_session(to.address(), &bundle).unwrap();
    }
    if skdm.layout() == Layout::Current {
        let content = from
            .compose(Body::SenderKeyDistribution(skdm.clone()))
            .unwrap();
        let wire = from.encrypt(to.address(), &content).unwrap();
        let got = to.decrypt(from.address(), &wire).unwrap();
        let Body::SenderKeyDistribution(skdm) = got.content.body() else {
            panic!("not a group key: {:?}", got.content)
        };
        to.group_process(from.address(), GROUP, skdm).unwrap();
        return;
    }
    let wire = from.encrypt_raw(to.address(), skdm.serialized()).unwrap();
    let got = to.decrypt_raw(from.address(), &wire).unwrap();
    let skdm = SenderKeyDistributionMessage::parse(&got.plaintext, skdm.layout()).unwrap();
    to.group_process(from.address(), GROUP, &skdm).unwrap();
}

fn shuffle<T>(items: &mut [T], rng: &mut ChaCha20Rng) {
    for i in (1..items.len()).rev() {
        let j = (rng.next_u32() as usize) % (i + 1);
        items.swap(i, j);
    }
}

/// Every row of every table, as text, for byte-for-byte comparisons of a database.
fn dump(path: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut out = Vec::new();
    for t in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM {t}")).unwrap();
        let n = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(r) = rows.next().unwrap() {
            let cols: Vec<String> = (0..n)
                .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                .collect();
            out.push(format!("{t}: {}", cols.join(" | ")));
        }
    }
    out
}

fn no_key(e: GroupReceiveError) -> bool {
    matches!(
        e,
        GroupReceiveError::Decrypt(GroupDecryptError::NoSenderKey { .. })
    )
}

#[test]
fn group_round_trip_with_shuffled_delivery_and_replay_refused() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FixedClock::new(at(2024, 1, 1));
    let alice = device(&dir.path().join("a.db"), "alice", 11, &clock);
    let bob = device(&dir.path().join("b.db"), "bob", 12, &clock);
    let carol = device(&dir.path().join("c.db"), "carol", 13, &clock);
    // Before any distribution there is nothing to send or receive with.
    assert!(alice.group_encrypt_raw(GROUP, b"too early").is_err());
    let skdm = alice
        .group_distribution_raw(GROUP, Layout::Current)
        .unwrap();
    // Asking again hands out the same chain, not a new one.
    assert_eq!(
        alice
            .group_distribution_raw(GROUP, Layout::Current)
            .unwrap()
            .chain_id(),
        skdm.chain_id()
    );
    hand_over(&alice, &bob, &skdm);
    hand_over(&alice, &carol, &skdm);
    let skdm_b = bob.group_distribution_raw(GROUP, Layout::Current).unwrap();
    hand_over(&bob, &alice, &skdm_b);
    hand_over(&bob, &carol, &skdm_b);

    let mut sent: Vec<(usize, SenderKeyMessage)> = (0..12)
        .map(|i| {
            let text = format!("alice #{i}");
            (i, alice.group_encrypt_raw(GROUP, text.as_bytes()).unwrap())
        })
        .collect();
    let from_bob = bob.group_encrypt_raw(GROUP, b"bob here").unwrap();
    let mut order = ChaCha20Rng::seed_from_u64(99);
    for member in [&bob, &carol] {
        shuffle(&mut sent, &mut order);
        for (i, m) in &sent {
            // Over the wire and back.
            let m = SenderKeyMessage::parse(m.serialized(), Layout::Current).unwrap();
            let got = member
                .group_decrypt_raw(alice.address(), GROUP, &m)
                .unwrap();
            assert_eq!(got.plaintext.as_slice(), format!("alice #{i}").as_bytes());
            assert!(!got.redelivered);
        }
        // Every message again: each comes back from the store, marked; once the app
        // acknowledged it, it is refused as a duplicate.
        for (i, m) in &sent {
            let again = member.group_decrypt_raw(alice.address(), GROUP, m).unwrap();
            assert!(again.redelivered);
            assert_eq!(again.plaintext.as_slice(), format!("alice #{i}").as_bytes());
            let id = MessageId::of_group(GROUP, m);
            assert!(member.acknowledge(alice.address(), &id).unwrap());
            assert!(matches!(
                member.group_decrypt_raw(alice.address(), GROUP, m),
                Err(GroupReceiveError::Decrypt(
                    GroupDecryptError::DuplicateMessage { .. }
                ))
            ));
        }
    }
    assert_eq!(
        carol
            .group_decrypt_raw(bob.address(), GROUP, &from_bob)
            .unwrap()
            .plaintext
            .as_slice(),
        b"bob here"
    );
    assert_eq!(
        alice
            .group_decrypt_raw(bob.address(), GROUP, &from_bob)
            .unwrap()
            .plaintext
            .as_slice(),
        b"bob here"
    );
    // A message signed by Alice's chain but attributed to Bob is refused.
    let (_, m) = &sent[0];
    assert!(bob.group_decrypt_raw(carol.address(), GROUP, m).is_err());
}

#[test]
fn rotation_leaves_the_departed_member_behind() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FixedClock::new(at(2024, 1, 1));
    let alice = device(&dir.path().join("a.db"), "alice", 21, &clock);
    let bob = device(&dir.path().join("b.db"), "bob", 22, &clock);
    let carol = device(&dir.path().join("c.db"), "carol", 23, &clock);
    let old = alice
        .group_distribution_raw(GROUP, Layout::Current)
        .unwrap();
    hand_over(&alice, &bob, &old);
    hand_over(&alice, &carol, &old);
    let before = alice.group_encrypt_raw(GROUP, b"before").unwrap();
    let in_flight = alice.group_encrypt_raw(GROUP, b"in flight").unwrap();
    assert_eq!(
        carol
            .group_decrypt_raw(alice.address(), GROUP, &before)
            .unwrap()
            .plaintext
            .as_slice(),
        b"before"
    );

    // Carol leaves: Alice rotates and tells only Bob.
    let new = alice.group_rotate(GROUP).unwrap();
    assert_ne!(new.chain_id(), old.chain_id());
    assert_ne!(new.signing_key(), old.signing_key());
    let own = alice
        .store()
        .sender_key(alice.address(), GROUP)
        .unwrap()
        .unwrap();
    assert_eq!(own.chain_count(), 1, "the old chain is gone from the store");
    hand_over(&alice, &bob, &new);
    let after = alice.group_encrypt_raw(GROUP, b"after").unwrap();
    assert_eq!(after.chain_id(), new.chain_id());
    // Carol holds only the old chain: the new message is refused for her.
    assert!(no_key(
        carol
            .group_decrypt_raw(alice.address(), GROUP, &after)
            .unwrap_err()
    ));
    assert_eq!(
        bob.group_decrypt_raw(alice.address(), GROUP, &after)
            .unwrap()
            .plaintext
            .as_slice(),
        b"after"
    );
    // A message sent on the old chain before the rotation still reaches Bob.
    assert_eq!(
        bob.group_decrypt_raw(alice.address(), GROUP, &in_flight)
            .unwrap()
            .plaintext
            .as_slice(),
        b"in flight"
    );
    // Asking for the distribution again gives the new chain, never the old.
    assert_eq!(
        alice
            .group_distribution_raw(GROUP, Layout::Current)
            .unwrap()
            .chain_id(),
        new.chain_id()
    );
}

#[test]
fn sender_keys_survive_closing_and_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FixedClock::new(at(2024, 1, 1));
    let (pa, pb) = (dir.path().join("a.db"), dir.path().join("b.db"));
    let first;
    let chain;
    {
        let alice = device(&pa, "alice", 31, &clock);
        let bob = device(&pb, "bob", 32, &clock);
        let skdm = alice
            .group_distribution_raw(GROUP, Layout::Current)
            .unwrap();
        chain = skdm.chain_id();
        hand_over(&alice, &bob, &skdm);
        first = alice.group_encrypt_raw(GROUP, b"first").unwrap();
        bob.group_decrypt_raw(alice.address(), GROUP, &first)
            .unwrap();
    }
    let alice = device(&pa, "alice", 31, &clock);
    let bob = device(&pb, "bob", 32, &clock);
    assert_eq!(
        alice
            .group_distribution_raw(GROUP, Layout::Current)
            .unwrap()
            .chain_id(),
        chain
    );
    let second = alice.group_encrypt_raw(GROUP, b"second").unwrap();
    assert_eq!(second.iteration(), first.iteration() + 1);
    assert_eq!(
        bob.group_decrypt_raw(alice.address(), GROUP, &second)
            .unwrap()
            .plaintext
            .as_slice(),
        b"second"
    );
    // The first message, delivered again after the restart, comes from the store.
    let again = bob
        .group_decrypt_raw(alice.address(), GROUP, &first)
        .unwrap();
    assert!(again.redelivered);
    assert_eq!(again.plaintext.as_slice(), b"first");
    assert_eq!(bob.store().verify().unwrap().sender_keys, 1);
}

#[test]
fn a_failed_group_decrypt_leaves_the_database_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FixedClock::new(at(2024, 1, 1));
    let pb = dir.path().join("b.db");
    let alice = device(&dir.path().join("a.db"), "alice", 41, &clock);
    let bob = device(&pb, "bob", 42, &clock);
    let skdm = alice
        .group_distribution_raw(GROUP, Layout::Current)
        .unwrap();
    hand_over(&alice, &bob, &skdm);
    let skipped = alice.group_encrypt_raw(GROUP, b"skipped").unwrap();
    let good = alice.group_encrypt_raw(GROUP, b"good").unwrap();

    let before = dump(&pb);
    assert!(before.iter().any(|r| r.starts_with("sender_key: ")));
    let wire = good.serialized();
    // A flipped ciphertext byte, a flipped signature byte, a truncated signature.
    let mut bad_body = wire.to_vec();
    let mid = wire.len() - 70;
    bad_body[mid] ^= 0x01;
    let mut bad_sig = wire.to_vec();
    *bad_sig.last_mut().unwrap() ^= 0x80;
    let mut tried = 0;
    for bytes in [bad_body, bad_sig, wire[..wire.len() - 1].to_vec()] {
        if let Ok(m) = SenderKeyMessage::parse(&bytes, Layout::Current) {
            tried += 1;
            assert!(matches!(
                bob.group_decrypt_raw(alice.address(), GROUP, &m),
                Err(GroupReceiveError::Decrypt(
                    GroupDecryptError::InvalidMessage
                ))
            ));
        }
        assert_eq!(dump(&pb), before, "a failed decrypt wrote to the database");
    }
    assert!(
        tried >= 2,
        "the corrupted messages should parse and fail to decrypt"
    );
    // The wrong sender, and a distribution message for another group than the one
    // named: nothing written.
    assert!(no_key(
        bob.group_decrypt_raw(&Address::new("mallory", 1), GROUP, &good)
            .unwrap_err()
    ));
    let elsewhere = alice
        .group_distribution_raw(DistributionId::from_bytes([9; 16]), Layout::Current)
        .unwrap();
    assert!(matches!(
        bob.group_process(alice.address(), GROUP, &elsewhere),
        Err(GroupKeyProcessError::Process(
            GroupProcessError::WrongDistribution
        ))
    ));
    assert_eq!(dump(&pb), before);

    // The intact message still decrypts afterwards (and that does write), then the
    // skipped one.
    assert_eq!(
        bob.group_decrypt_raw(alice.address(), GROUP, &good)
            .unwrap()
            .plaintext
            .as_slice(),
        b"good"
    );
    assert_ne!(dump(&pb), before);
    assert_eq!(
        bob.group_decrypt_raw(alice.address(), GROUP, &skipped)
            .unwrap()
            .plaintext
            .as_slice(),
        b"skipped"
    );
}

#[test]
fn legacy_layout_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FixedClock::new(at(2024, 1, 1));
    let alice = device(&dir.path().join("a.db"), "alice", 51, &clock);
    let bob = device(&dir.path().join("b.db"), "bob", 52, &clock);
    let skdm = alice.group_distribution_raw(GROUP, Layout::Legacy).unwrap();
    assert_eq!(skdm.layout(), Layout::Legacy);
    // It names no distribution: the one the app names is the group.
    assert_eq!(skdm.distribution_id(), None);
    hand_over(&alice, &bob, &skdm);
    for text in [&b"one"[..], b"two", b"three"] {
        let m = alice.group_encrypt_raw(GROUP, text).unwrap();
        assert_eq!(m.layout(), Layout::Legacy);
        let m = SenderKeyMessage::parse(m.serialized(), Layout::Legacy).unwrap();
        assert_eq!(
            bob.group_decrypt_raw(alice.address(), GROUP, &m)
                .unwrap()
                .plaintext
                .as_slice(),
            text
        );
        // Legacy bytes name no group: the id binds the one the app named.
        assert!(
            bob.group_decrypt_raw(alice.address(), GROUP, &m)
                .unwrap()
                .redelivered
        );
        let other = DistributionId::from_bytes([0x43; 16]);
        assert!(bob.group_decrypt_raw(alice.address(), other, &m).is_err());
    }
    // Switching the group to the current layout replaces the own chain.
    let current = alice
        .group_distribution_raw(GROUP, Layout::Current)
        .unwrap();
    assert_ne!(current.chain_id(), skdm.chain_id());
    assert_eq!(current.distribution_id(), Some(GROUP));
}

// ---- sealed sender ---------------------------------------------------------------

const ALICE_UUID: &str = "9d0652a3-dcc3-4d11-975f-74d61598733f";
const BOB_UUID: &str = "796abedb-ca4e-4f18-8803-1fde5b921f9f";
const CAROL_UUID: &str = "e80f7bbe-5b94-471e-bd8c-2173654ea3d1";

struct Authority {
    root: KeyPair,
    server: KeyPair,
    server_cert: ServerCertificate,
}

impl Authority {
    fn new(rng: &mut ChaCha20Rng) -> Self {
        let root = KeyPair::generate(rng);
        let server = KeyPair::generate(rng);
        let server_cert = ServerCertificate::new(7, server.public(), root.private(), rng);
        Self {
            root,
            server,
            server_cert,
        }
    }

    fn certify(
        &self,
        d: &SqlDevice,
        expiration: Timestamp,
        rng: &mut ChaCha20Rng,
    ) -> SenderCertificate {
        let info = SenderInfo {
            uuid: d.address().name().to_owned(),
            e164: None,
            device_id: d.address().device_id(),
            identity_key: d.identity_key().unwrap(),
            expiration,
        };
        SenderCertificate::new(info, self.server_cert.clone(), self.server.private(), rng)
    }
}

fn recipient(d: &SqlDevice) -> Recipient {
    Recipient {
        service_id: d.address().name().parse().unwrap(),
        device_id: d.address().device_id(),
        registration_id: d.store().local_registration_id().unwrap(),
        identity_key: d.identity_key().unwrap(),
    }
}

/// The per-recipient message the server would deliver to `d` out of a `0x23` message.
fn delivered_to(multi: &[u8], d: &SqlDevice) -> Vec<u8> {
    let sid: ServiceId = d.address().name().parse().unwrap();
    MultiRecipientMessage::try_from(multi)
        .unwrap()
        .for_recipient(&sid)
        .unwrap()
}

#[test]
fn sealed_one_to_one_v1_and_v2() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FixedClock::new(at(2024, 1, 1));
    let mut rng = ChaCha20Rng::seed_from_u64(60);
    let ca = Authority::new(&mut rng);
    let alice = device(&dir.path().join("a.db"), ALICE_UUID, 61, &clock);
    let bob = device(&dir.path().join("b.db"), BOB_UUID, 62, &clock);
    let expires = at(2024, 1, 2);
    let cert_a = ca.certify(&alice, expires, &mut rng);
    let cert_b = ca.certify(&bob, expires, &mut rng);

    // No session yet: nothing known about Bob to seal to.
    assert!(matches!(
        alice.seal_message_raw(bob.address(), b"x", &SealAs::new(&cert_a)),
        Err(SealMessageError::UnknownRecipient)
    ));
    let bundle = bob.publish_bundle().unwrap();
    alice.start_session(bob.address(), &bundle).unwrap();
    // Padded content by default: the envelope's inner plaintext is 160 bytes.
    let hello = alice.text("sealed hello").unwrap();
    let v1 = alice
        .seal_message(
            bob.address(),
            &hello,
            &SealAs::new(&cert_a).hint(ContentHint::Resendable),
        )
        .unwrap();
    let got = bob.unseal(&v1, &TrustRoots::new(ca.root.public())).unwrap();
    assert_eq!(&got.sender, alice.address());
    assert_eq!(got.content_type, ContentType::PreKey);
    assert_eq!(got.content_hint, ContentHint::Resendable);
    assert_eq!(got.group_id, None);
    assert_eq!(got.plaintext.len(), 160);
    assert_eq!(got.content().unwrap(), hello);
    assert!(!got.redelivered);
    assert_eq!(got.certificate.sender().uuid, ALICE_UUID);
    // The same envelope again comes from the store, marked, without a ratchet step.
    let again = bob.unseal(&v1, &TrustRoots::new(ca.root.public())).unwrap();
    assert!(again.redelivered);
    assert_eq!(again.content().unwrap(), hello);

    // Bob answers by v2 (one recipient device), which completes Alice's session.
    // The recipient is named once; v2 builds its entry from the session.
    assert_eq!(bob.recipient(alice.address()).unwrap(), recipient(&alice));
    let multi = bob
        .seal_message_raw(
            alice.address(),
            b"sealed reply",
            &SealAs::new(&cert_b).version(SealVersion::V2),
        )
        .unwrap();
    let got = alice
        .unseal(
            &delivered_to(&multi, &alice),
            &TrustRoots::new(ca.root.public()),
        )
        .unwrap();
    assert_eq!(&got.sender, bob.address());
    assert_eq!(got.content_type, ContentType::Whisper);
    assert_eq!(got.plaintext.as_slice(), b"sealed reply");
    let v1 = alice
        .seal_message_raw(
            bob.address(),
            b"now plain whisper",
            &SealAs::new(&cert_a).hint(ContentHint::Implicit),
        )
        .unwrap();
    let got = bob.unseal(&v1, &TrustRoots::new(ca.root.public())).unwrap();
    assert_eq!(got.content_type, ContentType::Whisper);
    assert_eq!(got.content_hint, ContentHint::Implicit);
    assert_eq!(got.plaintext.as_slice(), b"now plain whisper");
}

#[test]
fn sealed_group_messages_v1_and_v2() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FixedClock::new(at(2024, 1, 1));
    let mut rng = ChaCha20Rng::seed_from_u64(70);
    let ca = Authority::new(&mut rng);
    let alice = device(&dir.path().join("a.db"), ALICE_UUID, 71, &clock);
    let bob = device(&dir.path().join("b.db"), BOB_UUID, 72, &clock);
    let carol = device(&dir.path().join("c.db"), CAROL_UUID, 73, &clock);
    let cert_a = ca.certify(&alice, at(2024, 2, 1), &mut rng);
    let skdm = alice
        .group_distribution_raw(GROUP, Layout::Current)
        .unwrap();
    hand_over(&alice, &bob, &skdm);
    hand_over(&alice, &carol, &skdm);
    let group_id = b"group-master-id-of-the-app".as_slice();

    let multi = alice
        .seal_group_message_raw(
            GROUP,
            b"to everyone, sealed",
            &SealAs::new(&cert_a)
                .hint(ContentHint::Resendable)
                .group_id(group_id),
            SealFor::V2(&[recipient(&bob), recipient(&carol)]),
        )
        .unwrap();
    for member in [&bob, &carol] {
        let got = member
            .unseal(
                &delivered_to(&multi, member),
                &TrustRoots::new(ca.root.public()),
            )
            .unwrap();
        assert_eq!(&got.sender, alice.address());
        assert_eq!(got.content_type, ContentType::SenderKey);
        assert_eq!(got.content_hint, ContentHint::Resendable);
        assert_eq!(got.group_id.as_deref(), Some(group_id));
        assert_eq!(got.plaintext.as_slice(), b"to everyone, sealed");
        assert!(!got.redelivered);
        // The same envelope again: the stored plaintext, marked as a redelivery.
        let again = member
            .unseal(
                &delivered_to(&multi, member),
                &TrustRoots::new(ca.root.public()),
            )
            .unwrap();
        assert!(again.redelivered);
        assert_eq!(again.plaintext.as_slice(), b"to everyone, sealed");
    }

    // v1: one group message, sealed once per member.
    let m = alice
        .group_encrypt_raw(GROUP, b"one ciphertext, two envelopes")
        .unwrap();
    let content = UnidentifiedSenderMessageContent::new(
        ContentType::SenderKey,
        cert_a.clone(),
        m.serialized().to_vec(),
        ContentHint::Default,
        Some(group_id.to_vec()),
    );
    for member in [&bob, &carol] {
        let sealed = alice.seal(&content, SealFor::V1(member.address())).unwrap();
        let got = member
            .unseal(&sealed, &TrustRoots::new(ca.root.public()))
            .unwrap();
        assert_eq!(got.plaintext.as_slice(), b"one ciphertext, two envelopes");
        assert_eq!(got.group_id.as_deref(), Some(group_id));
        assert!(
            member
                .unseal(&sealed, &TrustRoots::new(ca.root.public()))
                .unwrap()
                .redelivered
        );
        // Once acknowledged (under the inner group message's id), a duplicate.
        let id = MessageId::of_group(GROUP, &m);
        assert!(member.acknowledge(alice.address(), &id).unwrap());
        assert!(matches!(
            member.unseal(&sealed, &TrustRoots::new(ca.root.public())),
            Err(UnsealError::GroupDecrypt(
                GroupDecryptError::DuplicateMessage { .. }
            ))
        ));
    }
    // And the one-call form for a single member.
    let sealed = alice
        .seal_group_message(
            GROUP,
            &alice.text("just bob").unwrap(),
            &SealAs::new(&cert_a),
            SealFor::V1(bob.address()),
        )
        .unwrap();
    let got = bob
        .unseal(&sealed, &TrustRoots::new(ca.root.public()))
        .unwrap();
    let Body::Message(m) = got.content().unwrap().into_body() else {
        panic!("a chat message")
    };
    assert_eq!(m.text(), Some("just bob"));
    assert_eq!(got.group_id, None);
}

#[test]
fn unseal_refuses_wrong_root_expired_certificate_and_wrong_identity() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FixedClock::new(at(2024, 1, 1));
    let mut rng = ChaCha20Rng::seed_from_u64(80);
    let ca = Authority::new(&mut rng);
    let other_ca = Authority::new(&mut rng);
    let pb = dir.path().join("b.db");
    let alice = device(&dir.path().join("a.db"), ALICE_UUID, 81, &clock);
    let bob = device(&pb, BOB_UUID, 82, &clock);
    let mallory = device(&dir.path().join("m.db"), CAROL_UUID, 83, &clock);
    let cert_a = ca.certify(&alice, at(2024, 1, 2), &mut rng);
    let bundle = bob.publish_bundle().unwrap();
    alice.start_session(bob.address(), &bundle).unwrap();
    let sealed = alice
        .seal_message_raw(bob.address(), b"check me", &SealAs::new(&cert_a))
        .unwrap();
    let before = dump(&pb);

    assert!(matches!(
        bob.unseal(&sealed, &TrustRoots::new(other_ca.root.public())),
        Err(UnsealError::Open(SealedOpenError::Certificate(
            CertificateError::UntrustedServer
        )))
    ));
    clock.set(at(2024, 1, 3));
    assert!(matches!(
        bob.unseal(&sealed, &TrustRoots::new(ca.root.public())),
        Err(UnsealError::Open(SealedOpenError::Certificate(
            CertificateError::Expired { .. }
        )))
    ));
    let mut corrupt = sealed.clone();
    *corrupt.last_mut().unwrap() ^= 1;
    clock.set(at(2024, 1, 1));
    assert!(matches!(
        bob.unseal(&corrupt, &TrustRoots::new(ca.root.public())),
        Err(UnsealError::Open(_))
    ));
    assert_eq!(
        dump(&pb),
        before,
        "a refused envelope wrote to the database"
    );
    // Within the validity and under the right root it opens.
    let got = bob
        .unseal(&sealed, &TrustRoots::new(ca.root.public()))
        .unwrap();
    assert_eq!(got.plaintext.as_slice(), b"check me");

    // Mallory gets a genuine certificate naming Alice's UUID but Mallory's own key:
    // Bob knows Alice's identity and refuses it.
    let info = SenderInfo {
        uuid: ALICE_UUID.into(),
        e164: None,
        device_id: 1,
        identity_key: mallory.identity_key().unwrap(),
        expiration: at(2024, 1, 2),
    };
    let forged =
        SenderCertificate::new(info, ca.server_cert.clone(), ca.server.private(), &mut rng);
    mallory
        .accept_identity(bob.address(), &bob.identity_key().unwrap())
        .unwrap();
    let content = UnidentifiedSenderMessageContent::new(
        ContentType::Whisper,
        forged,
        b"whatever".to_vec(),
        ContentHint::Default,
        None,
    );
    let bytes = mallory.seal(&content, SealFor::V1(bob.address())).unwrap();
    let before = dump(&pb);
    assert!(matches!(
        bob.unseal(&bytes, &TrustRoots::new(ca.root.public())),
        Err(UnsealError::UntrustedIdentity { .. })
    ));
    assert_eq!(dump(&pb), before);
    // A certificate naming Bob himself is refused as a self-send.
    let self_cert = ca.certify(&bob, at(2024, 1, 2), &mut rng);
    let content = UnidentifiedSenderMessageContent::new(
        ContentType::Whisper,
        self_cert,
        b"whatever".to_vec(),
        ContentHint::Default,
        None,
    );
    bob.accept_identity(bob.address(), &bob.identity_key().unwrap())
        .unwrap();
    let bytes = bob.seal(&content, SealFor::V1(bob.address())).unwrap();
    assert!(matches!(
        bob.unseal(&bytes, &TrustRoots::new(ca.root.public())),
        Err(UnsealError::SelfSend)
    ));
}

// ---- account report ---------------------------------------------------------------

#[test]
fn account_report_shows_recorded_consent_and_legacy_opt_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.db");
    let clock = FixedClock::new(at(2016, 8, 20));
    let schedule = timeline_2021([b"terms 2016", b"terms 2021"], false);
    let v2016 = PolicyId::new("2016-08").unwrap();
    {
        let d = device(&path, "dana", 90, &clock);
        d.record_connection().unwrap();
        clock.set(at(2016, 8, 26));
        d.record_consent(
            ConsentEvent::new(
                v2016.clone(),
                Decision::Accepted,
                at(2016, 8, 26),
                CollectionMethod::InAppNotice,
            ),
            &schedule,
        )
        .unwrap();
        clock.set(at(2016, 9, 12));
        d.record_connection().unwrap();
        d.record_consent(
            ConsentEvent::new(
                v2016.clone(),
                Decision::LegacyOptOut,
                at(2016, 9, 12),
                CollectionMethod::Settings,
            ),
            &schedule,
        )
        .unwrap();
    }
    // Reopened from the file: the report is built from what the store kept.
    clock.set(at(2016, 10, 1));
    let d = device(&path, "dana", 90, &clock);
    d.record_connection().unwrap();
    let info = AccountInfo {
        phone_number: "+1 555 0199".into(),
        profile: Profile {
            name: "Dana".into(),
            about: "hi".into(),
            has_photo: false,
        },
        privacy: PrivacySettings {
            last_seen: Visibility::Contacts,
            profile_photo: Visibility::Everyone,
            about: Visibility::Everyone,
            groups: Visibility::Contacts,
            read_receipts: false,
            default_message_timer: MessageTimer::Off,
        },
        devices: Vec::new(),
        groups: Vec::new(),
        business_chats: Vec::new(),
    };
    let report = d.account_report(&info, &schedule).unwrap();
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["registration"]["phone_number"], "+1 555 0199");
    assert!(
        json["registration"]["registered_at"]
            .as_str()
            .unwrap()
            .starts_with("2016-08-20")
    );
    let history = json["consent_history"].as_array().unwrap();
    let decisions: Vec<(&str, &str)> = history
        .iter()
        .map(|e| {
            (
                e["policy_version"].as_str().unwrap(),
                e["decision"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        decisions,
        [("2016-08", "accepted"), ("2016-08", "legacy_opt_out")]
    );
    assert!(history[1]["at"].as_str().unwrap().starts_with("2016-09-12"));
    assert_eq!(history[1]["method"], CollectionMethod::Settings.as_str());
    let opt_out = &json["legacy_opt_out"];
    assert_eq!(opt_out["opted_out"], true);
    assert_eq!(opt_out["policy_version"], "2016-08");
    assert!(
        opt_out["recorded_at"]
            .as_str()
            .unwrap()
            .starts_with("2016-09-12")
    );
    assert!(
        opt_out["statement"]
            .as_str()
            .unwrap()
            .contains("2016-09-12")
    );
    assert_eq!(
        json["consent_ledger_head"],
        hex::encode(d.consent_ledger().unwrap().head())
    );
    assert_eq!(json["profile"]["name"], "Dana");
}

// ---- group messages: redelivery, acknowledge, purge, concurrency -------------------

/// The sealed sender-key row of `sender` in the database at `path`, as stored.
fn sender_key_row(path: &Path, sender: &Address) -> Vec<u8> {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row(
        "SELECT v FROM sender_key WHERE name = ?1 AND device = ?2 AND distribution = ?3",
        rusqlite::params![sender.name(), sender.device_id(), &GROUP.as_bytes()[..]],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn group_redelivery_comes_from_the_store_until_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FixedClock::new(at(2024, 1, 1));
    let pb = dir.path().join("b.db");
    let alice = device(&dir.path().join("a.db"), "alice", 81, &clock);
    let mut bob = device(&pb, "bob", 82, &clock);
    let skdm = alice
        .group_distribution_raw(GROUP, Layout::Current)
        .unwrap();
    hand_over(&alice, &bob, &skdm);
    let m = alice.group_encrypt_raw(GROUP, b"kept until acked").unwrap();
    // A 1:1 message from the same sender, to show the two kinds of id never collide.
    let direct = alice.encrypt_raw(bob.address(), b"direct").unwrap();
    assert!(
        !bob.decrypt_raw(alice.address(), &direct)
            .unwrap()
            .redelivered
    );

    let first = bob.group_decrypt_raw(alice.address(), GROUP, &m).unwrap();
    assert!(!first.redelivered);
    assert_eq!(first.plaintext.as_slice(), b"kept until acked");
    let row = sender_key_row(&pb, alice.address());
    let before = dump(&pb);

    // The same bytes again (as after a crash before the app saved the plaintext): the
    // stored plaintext, and nothing in the database changes, the sender key included.
    let again = bob.group_decrypt_raw(alice.address(), GROUP, &m).unwrap();
    assert!(again.redelivered);
    assert_eq!(again.plaintext, first.plaintext);
    assert_eq!(sender_key_row(&pb, alice.address()), row);
    assert_eq!(dump(&pb), before);

    // Still so after a restart.
    drop(bob);
    bob = device(&pb, "bob", 82, &clock);
    let again = bob.group_decrypt_raw(alice.address(), GROUP, &m).unwrap();
    assert!(again.redelivered);
    assert_eq!(again.plaintext.as_slice(), b"kept until acked");
    assert_eq!(sender_key_row(&pb, alice.address()), row);

    // Acknowledged: the plaintext is gone from the store and a redelivery is refused,
    // again without touching the sender key.
    let id = MessageId::of_group(GROUP, &m);
    assert_ne!(id, MessageId::of(&direct));
    assert!(bob.acknowledge(alice.address(), &id).unwrap());
    assert!(
        bob.store()
            .message(alice.address(), &id)
            .unwrap()
            .unwrap()
            .plaintext
            .is_none()
    );
    assert!(matches!(
        bob.group_decrypt_raw(alice.address(), GROUP, &m),
        Err(GroupReceiveError::Decrypt(
            GroupDecryptError::DuplicateMessage { iteration: 0 }
        ))
    ));
    assert_eq!(sender_key_row(&pb, alice.address()), row);
    // The 1:1 message from the same sender is untouched by the group acknowledge.
    let d = bob.decrypt_raw(alice.address(), &direct).unwrap();
    assert!(d.redelivered);
    assert_eq!(d.plaintext.as_slice(), b"direct");
    assert_eq!(bob.store().verify().unwrap().unacknowledged, 2); // direct + the SKDM

    // Disappearing-message purge drops stored group plaintexts too; the message key is
    // long spent, so a redelivery after the purge is a duplicate, never a decrypt.
    let m2 = alice.group_encrypt_raw(GROUP, b"disappears").unwrap();
    assert!(
        !bob.group_decrypt_raw(alice.address(), GROUP, &m2)
            .unwrap()
            .redelivered
    );
    let id2 = MessageId::of_group(GROUP, &m2);
    assert!(
        bob.store()
            .set_message_expiry(alice.address(), &id2, Some(at(2024, 1, 2)))
            .unwrap()
    );
    let rows = bob.store().verify().unwrap().messages;
    assert_eq!(
        bob.store()
            .purge_messages(at(2024, 1, 3), at(2000, 1, 1))
            .unwrap(),
        1
    );
    assert_eq!(bob.store().verify().unwrap().messages, rows - 1);
    assert!(
        bob.store()
            .message(alice.address(), &id2)
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        bob.group_decrypt_raw(alice.address(), GROUP, &m2),
        Err(GroupReceiveError::Decrypt(
            GroupDecryptError::DuplicateMessage { .. }
        ))
    ));
}

#[test]
fn group_over_the_in_memory_store_behaves_as_before() {
    let clock = FixedClock::new(at(2024, 1, 1));
    let mut rng = ChaCha20Rng::seed_from_u64(90);
    let new = |name: &str, seed: u64, rng: &mut ChaCha20Rng| {
        Device::new(
            InMemoryStore::generate(rng),
            Address::new(name, 1),
            ChaCha20Rng::seed_from_u64(seed),
            clock.clone(),
        )
        .with_versions(confide::session::Versions::V3AndV4)
    };
    let alice = new("alice", 91, &mut rng);
    let bob = new("bob", 92, &mut rng);
    let skdm = alice
        .group_distribution_raw(GROUP, Layout::Current)
        .unwrap();
    bob.group_process(alice.address(), GROUP, &skdm).unwrap();
    let m = alice.group_encrypt_raw(GROUP, b"plain store").unwrap();
    let got = bob.group_decrypt_raw(alice.address(), GROUP, &m).unwrap();
    assert_eq!(got.plaintext.as_slice(), b"plain store");
    assert!(!got.redelivered);
    // No message table: a redelivery is a duplicate, as it always was.
    assert!(matches!(
        bob.group_decrypt_raw(alice.address(), GROUP, &m),
        Err(GroupReceiveError::Decrypt(
            GroupDecryptError::DuplicateMessage { .. }
        ))
    ));
}

#[test]
fn concurrent_group_decrypts_never_lose_or_double_decrypt() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FixedClock::new(at(2024, 1, 1));
    let pb = dir.path().join("b.db");
    let alice = device(&dir.path().join("a.db"), "alice", 101, &clock);
    let bob = device(&pb, "bob", 102, &clock);
    let skdm = alice
        .group_distribution_raw(GROUP, Layout::Current)
        .unwrap();
    hand_over(&alice, &bob, &skdm);

    // One Device (one store, one connection) shared by two threads.
    let sent = stores::decrypted_once_from_two_threads(&alice, [&bob, &bob], GROUP, 40, "shared");
    // Two Devices on two connections to the same file, as two processes would be.
    let bob2 = device_keyed(&pb, "bob", 102, 103, &clock);
    let sent2 = stores::decrypted_once_from_two_threads(
        &alice,
        [&bob, &bob2],
        GROUP,
        40,
        "two connections",
    );

    // Every message is stored once (beside the SKDM, a 1:1 message), and no key is
    // left to decrypt any of them again.
    let all: Vec<_> = sent.iter().chain(&sent2).collect();
    let times = (at(2024, 1, 1), at(2100, 1, 1));
    stores::every_key_spent(&bob, &bob2, alice.address(), GROUP, &all, 1, times);
}

#[test]
fn concurrent_group_encrypts_on_two_connections_never_reuse_a_chain_step() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FixedClock::new(at(2024, 1, 1));
    let pa = dir.path().join("a.db");
    let alice = device(&pa, "alice", 111, &clock);
    let bob = device(&dir.path().join("b.db"), "bob", 112, &clock);
    let skdm = alice
        .group_distribution_raw(GROUP, Layout::Current)
        .unwrap();
    hand_over(&alice, &bob, &skdm);
    let alice2 = device_keyed(&pa, "alice", 111, 113, &clock);
    let sent = stores::encrypted_from_threads(&[&alice, &alice2], &bob, GROUP, 30);
    assert_eq!(sent.len(), 60);
}
