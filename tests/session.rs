//! Pairwise sessions, confide to confide: the behaviour real users hit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Device, NOW, rng};
use confide::session::Versions;
use confide::session::cipher;
use confide::session::limits;
use confide::{BundleError, CiphertextMessage, DecryptError, IdentityKeyPair};

#[test]
fn basic_conversation_both_bundle_kinds() {
    for one_time in [true, false] {
        let mut r = rng(1);
        let alice = Device::new("alice", &mut r);
        let mut bob = Device::new("bob", &mut r);
        assert!(!cipher::has_session(&alice.store, &bob.address).unwrap());
        alice.start(&mut bob, &mut r, one_time);
        assert!(cipher::has_session(&alice.store, &bob.address).unwrap());
        assert!(!cipher::has_session(&bob.store, &alice.address).unwrap());
        let m1 = alice.send(&bob, b"hello bob");
        assert_eq!(m1.message_type(), 3);
        assert_eq!(m1.serialized()[0], 0x33);
        assert_eq!(bob.recv(&alice, &m1, &mut r).unwrap(), b"hello bob");
        assert!(cipher::has_session(&bob.store, &alice.address).unwrap());
        // Each side's session holds both registration ids (its own goes into prekey
        // messages; sealed sender v2 addresses recipients by the other's).
        for (a, b) in [(&alice, &bob), (&bob, &alice)] {
            let record = confide::store::SessionStore::session(&a.store, &b.address)
                .unwrap()
                .unwrap();
            let session = record.current().unwrap();
            let id_of = |d: &Device| {
                confide::store::IdentityStore::local_registration_id(&d.store).unwrap()
            };
            assert_eq!(session.remote_registration_id(), id_of(b));
            assert_eq!(session.local_registration_id(), id_of(a));
            assert_eq!(session.version(), 3);
            // Only the initiator, not yet answered, still sends prekey messages.
            assert_eq!(session.is_unacknowledged(), a.address == alice.address);
        }
        let m2 = bob.send(&alice, b"hi alice");
        assert_eq!(m2.message_type(), 2);
        assert_eq!(alice.recv(&bob, &m2, &mut r).unwrap(), b"hi alice");
        let record = confide::store::SessionStore::session(&alice.store, &bob.address)
            .unwrap()
            .unwrap();
        assert!(!record.current().unwrap().is_unacknowledged());
        // Alice heard back: no more prekey messages.
        let m3 = alice.send(&bob, b"");
        assert_eq!(m3.message_type(), 2);
        assert_eq!(bob.recv(&alice, &m3, &mut r).unwrap(), b"");
        for i in 0..20u32 {
            let (from, to) = if i % 3 == 0 {
                (&alice, &bob)
            } else {
                (&bob, &alice)
            };
            let text = vec![i as u8; i as usize * 37];
            let m = from.send(to, &text);
            assert_eq!(to.recv(from, &m, &mut r).unwrap(), text);
        }
    }
}

#[test]
fn out_of_order_and_replay() {
    let mut r = rng(2);
    let alice = Device::new("alice", &mut r);
    let mut bob = Device::new("bob", &mut r);
    alice.start(&mut bob, &mut r, true);
    let msgs: Vec<_> = (0..50u8).map(|i| alice.send(&bob, &[i])).collect();
    let mut order: Vec<usize> = (0..50).collect();
    order.reverse();
    order.swap(3, 17);
    for &i in &order {
        assert_eq!(bob.recv(&alice, &msgs[i], &mut r).unwrap(), vec![i as u8]);
    }
    for m in &msgs {
        let before = bob.snapshot(&alice);
        match bob.recv(&alice, m, &mut r) {
            Err(DecryptError::DuplicateMessage { .. }) => {}
            other => panic!("replay gave {other:?}"),
        }
        assert_eq!(before, bob.snapshot(&alice));
    }
}

#[test]
fn held_back_across_ratchet_steps() {
    let mut r = rng(3);
    let alice = Device::new("alice", &mut r);
    let mut bob = Device::new("bob", &mut r);
    alice.start(&mut bob, &mut r, true);
    let first = alice.send(&bob, b"first");
    bob.recv(&alice, &first, &mut r).unwrap();
    let mut held = Vec::new();
    for round in 0..4u8 {
        held.push((alice.send(&bob, &[round, 1]), vec![round, 1]));
        let a = alice.send(&bob, &[round, 2]);
        assert_eq!(bob.recv(&alice, &a, &mut r).unwrap(), [round, 2]);
        let b = bob.send(&alice, &[round, 3]);
        assert_eq!(alice.recv(&bob, &b, &mut r).unwrap(), [round, 3]);
    }
    for (m, text) in held.iter().rev() {
        assert_eq!(&bob.recv(&alice, m, &mut r).unwrap(), text);
    }
}

#[test]
fn forward_jump_limit_is_typed() {
    let mut r = rng(4);
    let alice = Device::new("alice", &mut r);
    let mut bob = Device::new("bob", &mut r);
    alice.start(&mut bob, &mut r, false);
    let first = alice.send(&bob, b"x");
    bob.recv(&alice, &first, &mut r).unwrap();
    for _ in 0..limits::MAX_FORWARD_JUMP + 1 {
        alice.send(&bob, b"skip");
    }
    let far = alice.send(&bob, b"far");
    let before = bob.snapshot(&alice);
    assert!(matches!(
        bob.recv(&alice, &far, &mut r),
        Err(DecryptError::TooFarAhead { .. })
    ));
    assert_eq!(before, bob.snapshot(&alice));
}

#[test]
fn skipped_keys_are_bounded_and_evicted_keys_are_typed() {
    let mut r = rng(5);
    let alice = Device::new("alice", &mut r);
    let mut bob = Device::new("bob", &mut r);
    alice.start(&mut bob, &mut r, false);
    let n = limits::MAX_SKIPPED_KEYS_PER_CHAIN + 10;
    let msgs: Vec<_> = (0..=n)
        .map(|i| alice.send(&bob, &i.to_be_bytes()))
        .collect();
    assert_eq!(bob.recv(&alice, &msgs[n], &mut r).unwrap(), n.to_be_bytes());
    // The oldest 10 keys were dropped, the rest are kept.
    for (i, m) in msgs.iter().enumerate().take(n) {
        let res = bob.recv(&alice, m, &mut r);
        if i < 10 {
            assert!(
                matches!(res, Err(DecryptError::MessageKeyEvicted { .. })),
                "{i}: {res:?}"
            );
        } else {
            assert_eq!(res.unwrap(), i.to_be_bytes());
        }
    }
    // Above the evicted mark a used key is a duplicate, not an evicted one; below it
    // the key is still reported evicted.
    for (i, m) in [(10, &msgs[10]), (n, &msgs[n]), (9, &msgs[9])] {
        let res = bob.recv(&alice, m, &mut r);
        let want_evicted = i < 10;
        assert!(
            match res {
                Err(DecryptError::MessageKeyEvicted { counter }) => want_evicted && counter == 9,
                Err(DecryptError::DuplicateMessage { counter }) => {
                    !want_evicted && counter == i as u32
                }
                _ => false,
            },
            "{i}: {res:?}"
        );
    }
}

#[test]
fn simultaneous_initiation_converges() {
    let mut r = rng(6);
    let mut alice = Device::new("alice", &mut r);
    let mut bob = Device::new("bob", &mut r);
    alice.start(&mut bob, &mut r, true);
    bob.start(&mut alice, &mut r, true);
    let a1 = alice.send(&bob, b"from alice");
    let b1 = bob.send(&alice, b"from bob");
    assert_eq!(bob.recv(&alice, &a1, &mut r).unwrap(), b"from alice");
    assert_eq!(alice.recv(&bob, &b1, &mut r).unwrap(), b"from bob");
    for i in 0..6u8 {
        let a = alice.send(&bob, &[i]);
        assert_eq!(bob.recv(&alice, &a, &mut r).unwrap(), [i]);
        let b = bob.send(&alice, &[i + 100]);
        assert_eq!(alice.recv(&bob, &b, &mut r).unwrap(), [i + 100]);
    }
    // Converged: both now send plain (type 2) messages in one session.
    assert_eq!(alice.send(&bob, b"z").message_type(), 2);
    assert_eq!(bob.send(&alice, b"z").message_type(), 2);
}

#[test]
fn reinitiation_keeps_old_messages_decryptable() {
    let mut r = rng(7);
    let alice = Device::new("alice", &mut r);
    let mut bob = Device::new("bob", &mut r);
    alice.start(&mut bob, &mut r, true);
    let m0 = alice.send(&bob, b"0");
    bob.recv(&alice, &m0, &mut r).unwrap();
    let late = alice.send(&bob, b"late");
    // Alice reinstalls the session (same identity), e.g. after losing state.
    alice.start(&mut bob, &mut r, true);
    let fresh = alice.send(&bob, b"fresh");
    assert_eq!(bob.recv(&alice, &fresh, &mut r).unwrap(), b"fresh");
    assert_eq!(bob.recv(&alice, &late, &mut r).unwrap(), b"late");
    let reply = bob.send(&alice, b"reply");
    assert_eq!(alice.recv(&bob, &reply, &mut r).unwrap(), b"reply");
}

#[test]
fn identity_change_is_typed_and_can_be_accepted() {
    let mut r = rng(8);
    let alice = Device::new("alice", &mut r);
    let mut bob = Device::new("bob", &mut r);
    alice.start(&mut bob, &mut r, true);
    let old_key = *confide::store::IdentityStore::local_identity(&bob.store)
        .unwrap()
        .identity_key();
    // Bob reinstalls: new identity, same address.
    let mut bob2 = Device::new("bob", &mut r);
    let bundle = bob2.bundle(&mut r, true);
    match cipher::start_session(
        &alice.store,
        &bob2.address,
        &bundle,
        Versions::V3AndV4,
        &mut r,
        NOW,
    ) {
        Err(BundleError::UntrustedIdentity { known, received }) => {
            assert_eq!(known, old_key);
            assert_eq!(received, bundle.identity_key);
        }
        other => panic!("expected UntrustedIdentity, got {other:?}"),
    }
    cipher::accept_identity(&alice.store, &bob2.address, &bundle.identity_key).unwrap();
    cipher::start_session(
        &alice.store,
        &bob2.address,
        &bundle,
        Versions::V3AndV4,
        &mut r,
        NOW,
    )
    .unwrap();
    let m = alice.send(&bob2, b"new phone?");
    assert_eq!(bob2.recv(&alice, &m, &mut r).unwrap(), b"new phone?");

    // The other direction: a prekey message from a changed identity.
    let carol_old = Device::new("carol", &mut r);
    carol_old.start(&mut bob2, &mut r, true);
    let m = carol_old.send(&bob2, b"hi");
    bob2.recv(&carol_old, &m, &mut r).unwrap();
    let carol_new = Device::new("carol", &mut r);
    carol_new.start(&mut bob2, &mut r, true);
    let m = carol_new.send(&bob2, b"hi again");
    let before = bob2.snapshot(&carol_new);
    assert!(matches!(
        bob2.recv(&carol_new, &m, &mut r),
        Err(DecryptError::UntrustedIdentity { .. })
    ));
    assert_eq!(before, bob2.snapshot(&carol_new));
}

#[test]
fn every_failure_class_leaves_state_unchanged() {
    let mut r = rng(9);
    let alice = Device::new("alice", &mut r);
    let mut bob = Device::new("bob", &mut r);
    alice.start(&mut bob, &mut r, true);
    let pre = alice.send(&bob, b"prekey");
    let pre_bytes = pre.serialized().to_vec();

    // Failures against a prekey message before any session exists on Bob's side.
    let mut cases: Vec<(u8, Vec<u8>)> = Vec::new();
    let mut flip = pre_bytes.clone();
    let last = flip.len() - 1;
    flip[last] ^= 1; // MAC
    cases.push((3, flip));
    let mut body = pre_bytes.clone();
    body[pre_bytes.len() - 20] ^= 0x40; // ciphertext
    cases.push((3, body));
    cases.push((3, pre_bytes[..pre_bytes.len() / 2].to_vec())); // truncation
    cases.push((2, pre_bytes.clone())); // wrong type
    let mut relabel = pre_bytes.clone();
    relabel[0] = 0x23;
    cases.push((3, relabel));
    cases.push((3, vec![]));
    cases.push((3, vec![0x33, 0xff, 0xff, 0xff]));
    for (ty, bytes) in &cases {
        let before = bob.snapshot(&alice);
        let res = CiphertextMessage::from_parts(*ty, bytes)
            .map_err(DecryptError::from)
            .and_then(|m| {
                cipher::decrypt(&bob.store, &bob.address, &alice.address, &m, &mut r, NOW)
            });
        assert!(res.is_err(), "accepted {bytes:02x?}");
        assert_eq!(
            before,
            bob.snapshot(&alice),
            "state changed by {bytes:02x?}"
        );
    }
    // Unknown prekey: Bob loses the one-time prekey.
    {
        use confide::store::PreKeyStore;
        let CiphertextMessage::PreKey(p) = &pre else {
            panic!()
        };
        let id = p.pre_key_id().unwrap();
        let saved = bob.store.pre_key(id).unwrap().unwrap();
        bob.store.remove_pre_key(id).unwrap();
        let before = bob.snapshot(&alice);
        assert!(matches!(
            bob.recv(&alice, &pre, &mut r),
            Err(DecryptError::UnknownPreKey { .. })
        ));
        assert_eq!(before, bob.snapshot(&alice));
        bob.store.save_pre_key(&saved).unwrap();
    }
    assert_eq!(bob.recv(&alice, &pre, &mut r).unwrap(), b"prekey");

    // Failures against an established session.
    let reply = bob.send(&alice, b"reply");
    alice.recv(&bob, &reply, &mut r).unwrap();
    let good = alice.send(&bob, b"good");
    let bytes = good.serialized().to_vec();
    let mut cases: Vec<(u8, Vec<u8>)> = Vec::new();
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x01;
        cases.push((2, b));
    }
    for cut in [0, 1, 9, bytes.len() - 1] {
        cases.push((2, bytes[..cut].to_vec()));
    }
    cases.push((3, bytes.clone()));
    for (ty, b) in &cases {
        let before = bob.snapshot(&alice);
        let res = CiphertextMessage::from_parts(*ty, b)
            .map_err(DecryptError::from)
            .and_then(|m| {
                cipher::decrypt(&bob.store, &bob.address, &alice.address, &m, &mut r, NOW)
            });
        assert!(res.is_err(), "accepted {b:02x?}");
        assert_eq!(before, bob.snapshot(&alice));
    }
    assert_eq!(bob.recv(&alice, &good, &mut r).unwrap(), b"good");
}

#[test]
fn records_round_trip_through_storage() {
    let mut r = rng(10);
    let alice = Device::new("alice", &mut r);
    let mut bob = Device::new("bob", &mut r);
    alice.start(&mut bob, &mut r, true);
    let m = alice.send(&bob, b"1");
    let _skipped = alice.send(&bob, b"2");
    let m3 = alice.send(&bob, b"3");
    bob.recv(&alice, &m, &mut r).unwrap();
    bob.recv(&alice, &m3, &mut r).unwrap();
    let bytes = bob.snapshot(&alice);
    let record = confide::SessionRecord::from_bytes(&bytes).unwrap();
    assert_eq!(record.to_bytes().to_vec(), bytes);
    let id = IdentityKeyPair::generate(&mut r);
    let back = IdentityKeyPair::from_bytes(&id.to_bytes()).unwrap();
    assert_eq!(back.identity_key(), id.identity_key());
}

#[test]
fn owned_records_without_a_store() {
    use confide::keys::{PreKeyRecord, SignedPreKeyRecord};
    use confide::session::LocalKeys;
    let mut r = rng(11);
    let alice_id = IdentityKeyPair::generate(&mut r);
    let bob_id = IdentityKeyPair::generate(&mut r);
    let signed = SignedPreKeyRecord::generate(&mut r, &bob_id, 5, NOW);
    let one_time = PreKeyRecord::generate(&mut r, 9);
    let bundle = confide::PreKeyBundle::new(22, 1, *bob_id.identity_key(), signed.public())
        .with_pre_key(one_time.public());
    let mut alice = confide::SessionRecord::new();
    alice
        .start_session((&alice_id, 11), &bundle, Versions::V3AndV4, &mut r, NOW)
        .unwrap();
    let CiphertextMessage::PreKey(first) = alice
        .encrypt(b"owned", &mut confide::SystemRng::new())
        .unwrap()
    else {
        panic!("prekey message expected")
    };
    assert_eq!(first.pre_key_id(), Some(9));
    assert_eq!(first.registration_id(), 11);
    let mut bob = confide::SessionRecord::new();
    let keys = LocalKeys::new(&bob_id, 22)
        .with_signed_pre_key(Some(&signed))
        .with_pre_key(Some(&one_time));
    let out = bob.decrypt_prekey(&first, &keys, &mut r).unwrap();
    assert_eq!(out.plaintext.as_slice(), b"owned");
    assert_eq!(out.used_pre_key, Some(9));
    assert!(out.new_session);
    // Debug shows the plaintext's length only.
    assert_eq!(
        format!("{out:?}"),
        "PreKeyDecrypted { plaintext: <5 bytes>, used_pre_key: Some(9), new_session: true, \
         kyber_pre_key_use: None }"
    );
    let CiphertextMessage::Signal(reply) = bob
        .encrypt(b"back", &mut confide::SystemRng::new())
        .unwrap()
    else {
        panic!("signal message expected")
    };
    assert_eq!(alice.decrypt(&reply, &mut r).unwrap().as_slice(), b"back");
    assert_eq!(
        bob.current().unwrap().remote_identity(),
        alice_id.identity_key()
    );

    // A record whose stored ratchet public key is not its private key's is refused by
    // the public loader, which re-derives every key pair.
    let bytes = bob.to_bytes();
    let ours = reply.ratchet_key().serialize();
    let at = bytes
        .windows(ours.len())
        .position(|w| w == &ours[..])
        .expect("the sender ratchet key is in the record");
    let mut forged = bytes.to_vec();
    let other = confide::keys::KeyPair::generate(&mut r)
        .public()
        .serialize();
    forged[at..at + ours.len()].copy_from_slice(&other);
    assert_eq!(
        confide::SessionRecord::from_bytes(&forged).unwrap_err(),
        confide::RecordError::Inconsistent {
            field: "sender_chain.ratchet_public"
        }
    );
    assert!(confide::SessionRecord::from_bytes(&bytes).is_ok());
}

#[test]
fn debug_output_never_shows_secrets() {
    let mut r = rng(12);
    let alice = Device::new("alice", &mut r);
    let mut bob = Device::new("bob", &mut r);
    alice.start(&mut bob, &mut r, true);
    // The first message is held back, so Bob's record keeps a skipped key for it.
    let _held = alice.send(&bob, b"held");
    let m = alice.send(&bob, b"x");
    bob.recv(&alice, &m, &mut r).unwrap();
    let identity = confide::store::IdentityStore::local_identity(&bob.store).unwrap();
    let private_hex: String = identity
        .private_key()
        .to_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let record = confide::store::SessionStore::session(&bob.store, &alice.address)
        .unwrap()
        .unwrap();
    let dbg = format!("{record:?} {identity:?} {:?}", bob.store);
    assert!(!dbg.contains(&private_hex));
    assert!(dbg.contains("PrivateKey(***)"));
    assert!(dbg.contains("RootKey(***)"));
    assert!(dbg.contains("SkippedKey(0, ***)"), "{dbg}");
    assert!(dbg.contains("key: \"***\""));
    assert_eq!(format!("{:?}", identity.private_key()), "PrivateKey(***)");
}

#[test]
fn prekey_id_zero_means_none_unless_held() {
    // The TypeScript port writes pre_key_id = 0 when the bundle had no one-time prekey.
    let mut r = rng(13);
    let alice = Device::new("alice", &mut r);
    let mut bob = Device::new("bob", &mut r);
    alice.start(&mut bob, &mut r, false);
    let m = alice.send(&bob, b"zero");
    let bytes = m.serialized();
    let mut with_zero = vec![0x33, 0x08, 0x00];
    with_zero.extend_from_slice(&bytes[1..]);
    let parsed = CiphertextMessage::from_parts(3, &with_zero).unwrap();
    let CiphertextMessage::PreKey(p) = &parsed else {
        panic!()
    };
    assert_eq!(p.pre_key_id(), Some(0));
    assert_eq!(
        cipher::decrypt(
            &bob.store,
            &bob.address,
            &alice.address,
            &parsed,
            &mut r,
            NOW
        )
        .unwrap()
        .plaintext
        .as_slice(),
        b"zero"
    );
    // Any other unknown id is still refused.
    let mut r = rng(14);
    let carol = Device::new("carol", &mut r);
    carol.start(&mut bob, &mut r, false);
    let m = carol.send(&bob, b"seven");
    let mut with_seven = vec![0x33, 0x08, 0x07];
    with_seven.extend_from_slice(&m.serialized()[1..]);
    let parsed = CiphertextMessage::from_parts(3, &with_seven).unwrap();
    assert!(matches!(
        cipher::decrypt(
            &bob.store,
            &bob.address,
            &carol.address,
            &parsed,
            &mut r,
            NOW
        ),
        Err(DecryptError::UnknownPreKey { id: 7 })
    ));
}

/// Publishing keys under ids the store already holds is refused before anything is
/// saved: silently replacing a published prekey would make every session started from
/// the earlier bundle fail authentication.
#[test]
fn publish_bundle_refuses_ids_in_use() {
    use confide::error::PublishError;
    use confide::session::cipher::BundleSpec;
    use confide::store::{PreKeyStore, SignedPreKeyStore};

    let mut r = rng(41);
    let alice = Device::new("alice", &mut r);
    let bob = Device::new("bob", &mut r);
    let first = BundleSpec::new(1, 7).with_pre_key(Some(70));
    let bundle = cipher::publish_bundle(&bob.store, &mut r, &first, NOW).unwrap();
    let signed_before = bob.store.signed_pre_key(7).unwrap().unwrap().to_bytes();
    let pre_before = bob.store.pre_key(70).unwrap().unwrap().to_bytes();

    let same_signed = BundleSpec::new(1, 7).with_pre_key(Some(71));
    assert!(matches!(
        cipher::publish_bundle(&bob.store, &mut r, &same_signed, NOW),
        Err(PublishError::SignedPreKeyIdInUse { id: 7 })
    ));
    let same_pre = BundleSpec::new(1, 8).with_pre_key(Some(70));
    assert!(matches!(
        cipher::publish_bundle(&bob.store, &mut r, &same_pre, NOW),
        Err(PublishError::PreKeyIdInUse { id: 70 })
    ));
    // Nothing of the refused bundles was saved, nothing published was replaced.
    assert!(bob.store.pre_key(71).unwrap().is_none());
    assert!(bob.store.signed_pre_key(8).unwrap().is_none());
    assert_eq!(
        bob.store.signed_pre_key(7).unwrap().unwrap().to_bytes(),
        signed_before
    );
    assert_eq!(
        bob.store.pre_key(70).unwrap().unwrap().to_bytes(),
        pre_before
    );

    // A session from the first bundle still works.
    cipher::start_session(
        &alice.store,
        &bob.address,
        &bundle,
        Versions::V3AndV4,
        &mut r,
        NOW,
    )
    .unwrap();
    let m = alice.send(&bob, b"still valid");
    assert_eq!(bob.recv(&alice, &m, &mut r).unwrap(), b"still valid");
}

/// The protocol version is a value each state carries; v3 is `0x33` on the wire and
/// `3` in storage, v4 `0x44` and `4`, and bytes naming another version are refused.
#[test]
fn protocol_version_is_carried_by_each_state() {
    use confide::session::ProtocolVersion;

    let v3 = ProtocolVersion::V3;
    assert_eq!(v3.version_byte(), 0x33);
    assert_eq!(v3.number(), 3);
    assert_eq!(ProtocolVersion::from_version_byte(0x33), Some(v3));
    let v4 = ProtocolVersion::V4;
    assert_eq!((v4.version_byte(), v4.number()), (0x44, 4));
    assert_eq!(ProtocolVersion::from_version_byte(0x44), Some(v4));
    // Both nibbles must agree (libsignal reads only the high one; confide is stricter).
    for byte in [0x34, 0x43, 0x45, 0x54, 0x23, 0x32, 0x00] {
        assert_eq!(ProtocolVersion::from_version_byte(byte), None);
    }
    assert_eq!(ProtocolVersion::from_number(3), Some(v3));
    assert_eq!(ProtocolVersion::from_number(4), Some(v4));
    assert_eq!(ProtocolVersion::from_number(5), None);

    let mut r = rng(51);
    let alice = Device::new("alice", &mut r);
    let mut bob = Device::new("bob", &mut r);
    alice.start(&mut bob, &mut r, true);
    let m = alice.send(&bob, b"v3");
    let CiphertextMessage::PreKey(p) = &m else {
        panic!("prekey message expected")
    };
    assert_eq!(p.version(), v3);
    assert_eq!(p.message().version(), v3);
    bob.recv(&alice, &m, &mut r).unwrap();
    use confide::store::SessionStore;
    let record = bob.store.session(&alice.address).unwrap().unwrap();
    assert!(record.states().all(|s| s.protocol_version() == v3));

    // A relabelled version byte (wrapper or inner message) is refused at parse time.
    let mut bytes = m.serialized().to_vec();
    bytes[0] = 0x34;
    assert!(matches!(
        CiphertextMessage::from_parts(3, &bytes),
        Err(confide::WireError::UnsupportedVersion { found: 0x34 })
    ));
}

/// A stored state of a version this release does not speak is a typed load error (the
/// record has room for states of several versions, but never guesses one).
#[test]
fn stored_state_of_unknown_version_is_refused() {
    use confide::store::SessionStore;

    let mut r = rng(52);
    let alice = Device::new("alice", &mut r);
    let mut bob = Device::new("bob", &mut r);
    alice.start(&mut bob, &mut r, false);
    let record = alice.store.session(&bob.address).unwrap().unwrap();
    let bytes = record.to_bytes().to_vec();
    // format_version = 1, then `current` (field 2, a length-delimited state) whose
    // first field is session_version = 3.
    assert_eq!(&bytes[..3], &[0x08, 0x01, 0x12]);
    let len_bytes = if bytes[3] & 0x80 == 0 { 1 } else { 2 };
    let at = 3 + len_bytes;
    assert_eq!(&bytes[at..at + 2], &[0x08, 0x03]);
    assert!(confide::SessionRecord::from_bytes(&bytes).is_ok());
    let mut v5 = bytes.clone();
    v5[at + 1] = 5;
    assert!(matches!(
        confide::SessionRecord::from_bytes(&v5),
        Err(confide::RecordError::UnsupportedVersion { found: 5 })
    ));
    // A v3 state relabelled v4 lacks the SPQR state every v4 state has.
    let mut v4 = bytes.clone();
    v4[at + 1] = 4;
    assert!(confide::SessionRecord::from_bytes(&v4).is_err());
}

/// The README's limits table, number for number (the public constants are what apps size
/// their storage by).
#[test]
fn limits_are_the_documented_numbers() {
    assert_eq!(limits::MAX_SKIPPED_KEYS_PER_CHAIN, 2_000);
    assert_eq!(limits::MAX_RECEIVER_CHAINS, 5);
    assert_eq!(limits::MAX_FORWARD_JUMP, 25_000);
    assert_eq!(limits::MAX_PREVIOUS_STATES, 40);
    assert_eq!(limits::MAX_CHAIN_STEPS_PER_MESSAGE, 50_002);
    // 41 states × 5 chains × 2,000 keys.
    assert_eq!(limits::MAX_SKIPPED_KEYS_PER_DEVICE, 410_000);
    assert_eq!(limits::MAX_UNACKNOWLEDGED_SESSION_AGE, 30 * 86_400_000);
}
