//! Sealed sender: certificates (chain, expiry, revocation), USMC, v1 and v2 seal/open,
//! refusal of wrong roots and corrupted bytes, and 1:1 messages inside sealed sender
//! (confide to confide).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use confide::group::{DistributionId, GroupSessions, Layout};
use confide::keys::{IdentityKeyPair, KeyPair};
use confide::sealed::{
    self, CertificateError, ContentHint, ContentType, MultiRecipientMessage, Recipient, SealError,
    SealV2Context, SealedOpenError, SenderCertificate, SenderInfo, ServerCertificate, ServiceId,
    TrustRoots, UnidentifiedSenderMessageContent,
};
use confide::session::Versions;
use confide::session::cipher;
use confide::store::InMemoryStore;
use confide::{Address, CiphertextMessage, Timestamp};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const NOW: Timestamp = Timestamp::from_millis(1_700_000_000_000);
const ALICE: &str = "9d0652a3-dcc3-4d11-975f-74d61598733f";

struct Fixture {
    rng: ChaCha20Rng,
    trust_root: KeyPair,
    server: KeyPair,
    alice: IdentityKeyPair,
    cert: SenderCertificate,
}

fn fixture(seed: u64, key_id: u32) -> Fixture {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let trust_root = KeyPair::generate(&mut rng);
    let server = KeyPair::generate(&mut rng);
    let alice = IdentityKeyPair::generate(&mut rng);
    let server_cert =
        ServerCertificate::new(key_id, server.public(), trust_root.private(), &mut rng);
    let info = SenderInfo {
        uuid: ALICE.into(),
        e164: Some("+15550100".into()),
        device_id: 2,
        identity_key: *alice.identity_key(),
        expiration: Timestamp::from_millis(NOW.as_millis() + 1000),
    };
    let cert = SenderCertificate::new(info, server_cert, server.private(), &mut rng);
    Fixture {
        rng,
        trust_root,
        server,
        alice,
        cert,
    }
}

fn content(f: &Fixture, inner: &[u8]) -> UnidentifiedSenderMessageContent {
    UnidentifiedSenderMessageContent::new(
        ContentType::SenderKey,
        f.cert.clone(),
        inner.to_vec(),
        ContentHint::Resendable,
        Some(b"group-id".to_vec()),
    )
}

#[test]
fn certificates_validate_and_round_trip() {
    let f = fixture(1, 7);
    f.cert
        .validate(&TrustRoots::new(f.trust_root.public()), NOW)
        .unwrap();
    let parsed = SenderCertificate::try_from(f.cert.serialized()).unwrap();
    assert_eq!(parsed, f.cert);
    assert_eq!(parsed.sender().e164.as_deref(), Some("+15550100"));
    assert_eq!(parsed.signer().key_id(), 7);
    assert_eq!(parsed.signer().key(), &f.server.public());
    // Exactly at expiry is still valid; one millisecond later is not.
    let exp = f.cert.sender().expiration;
    f.cert
        .validate(&TrustRoots::new(f.trust_root.public()), exp)
        .unwrap();
    let later = Timestamp::from_millis(exp.as_millis() + 1);
    assert_eq!(
        f.cert
            .validate(&TrustRoots::new(f.trust_root.public()), later),
        Err(CertificateError::Expired {
            expiration: exp,
            now: later
        })
    );
    // A wrong trust root, and the server key standing in for it.
    assert_eq!(
        f.cert.validate(&TrustRoots::new(f.server.public()), NOW),
        Err(CertificateError::UntrustedServer)
    );
}

#[test]
fn revoked_key_id_is_refused() {
    let f = fixture(2, 0xDEAD_C357);
    assert_eq!(
        f.cert
            .validate(&TrustRoots::new(f.trust_root.public()), NOW),
        Err(CertificateError::Revoked {
            key_id: 0xDEAD_C357
        })
    );
}

#[test]
fn forged_sender_certificate_is_refused() {
    let mut f = fixture(3, 1);
    let other = KeyPair::generate(&mut f.rng);
    let forged = SenderCertificate::new(
        f.cert.sender().clone(),
        f.cert.signer().clone(),
        other.private(),
        &mut f.rng,
    );
    assert_eq!(
        forged.validate(&TrustRoots::new(f.trust_root.public()), NOW),
        Err(CertificateError::BadSignature)
    );
    let mut bytes = f.cert.serialized().to_vec();
    for i in 0..bytes.len() {
        bytes[i] ^= 0x40;
        if let Ok(c) = SenderCertificate::try_from(&bytes[..]) {
            assert!(
                c.validate(&TrustRoots::new(f.trust_root.public()), NOW)
                    .is_err(),
                "byte {i}"
            );
        }
        bytes[i] ^= 0x40;
    }
}

#[test]
fn v1_round_trip_and_refusals() {
    let mut f = fixture(4, 1);
    let bob = IdentityKeyPair::generate(&mut f.rng);
    let c = content(&f, b"inner");
    let sealed_bytes = sealed::seal_v1(&c, &f.alice, bob.identity_key(), &mut f.rng).unwrap();
    assert_eq!(sealed_bytes[0], 0x11);
    let opened = sealed::open(
        &sealed_bytes,
        &bob,
        &TrustRoots::new(f.trust_root.public()),
        NOW,
    )
    .unwrap();
    assert_eq!(opened, c);
    assert_eq!(opened.content_hint(), ContentHint::Resendable);
    assert_eq!(opened.group_id(), Some(&b"group-id"[..]));
    assert_eq!(opened.sender().sender().uuid, ALICE);
    // Wrong trust root, expired, wrong recipient, every corrupted byte.
    assert!(matches!(
        sealed::open(
            &sealed_bytes,
            &bob,
            &TrustRoots::new(f.server.public()),
            NOW
        ),
        Err(SealedOpenError::Certificate(
            CertificateError::UntrustedServer
        ))
    ));
    let late = Timestamp::from_millis(NOW.as_millis() + 5000);
    assert_eq!(
        sealed::open(
            &sealed_bytes,
            &bob,
            &TrustRoots::new(f.trust_root.public()),
            late
        )
        .unwrap_err()
        .code(),
        "CertificateExpired"
    );
    let eve = IdentityKeyPair::generate(&mut f.rng);
    assert_eq!(
        sealed::open(
            &sealed_bytes,
            &eve,
            &TrustRoots::new(f.trust_root.public()),
            NOW
        ),
        Err(SealedOpenError::InvalidMessage)
    );
    let mut bad = sealed_bytes.clone();
    for i in 1..bad.len() {
        bad[i] ^= 1;
        assert!(
            sealed::open(&bad, &bob, &TrustRoots::new(f.trust_root.public()), NOW).is_err(),
            "byte {i}"
        );
        bad[i] ^= 1;
    }
    assert!(sealed::open(&[], &bob, &TrustRoots::new(f.trust_root.public()), NOW).is_err());
    assert!(
        sealed::open(
            &[0x44, 0],
            &bob,
            &TrustRoots::new(f.trust_root.public()),
            NOW
        )
        .is_err()
    );
}

#[test]
fn v2_multi_recipient_round_trip() {
    let mut f = fixture(5, 1);
    let c = content(&f, b"for everyone");
    let mut people = Vec::new();
    let mut recipients = Vec::new();
    for i in 0..3u8 {
        let id = IdentityKeyPair::generate(&mut f.rng);
        let sid = ServiceId::new(sealed::ServiceIdKind::Aci, [i + 1; 16]);
        for device in 1..=2u32 {
            recipients.push(Recipient {
                service_id: sid,
                device_id: device,
                registration_id: 1000 + u32::from(i),
                identity_key: *id.identity_key(),
            });
        }
        people.push((sid, id));
    }
    let multi = sealed::seal_v2(&c, &f.alice, &recipients, &mut f.rng).unwrap();
    assert_eq!(multi[0], 0x23);
    let parsed = MultiRecipientMessage::try_from(&multi[..]).unwrap();
    assert_eq!(parsed.recipients().len(), 3);
    assert_eq!(parsed.recipients()[0].devices, vec![(1, 1000), (2, 1000)]);
    for (sid, id) in &people {
        let one = parsed.for_recipient(sid).unwrap();
        assert_eq!(one[0], 0x22);
        let opened = sealed::open(&one, id, &TrustRoots::new(f.trust_root.public()), NOW).unwrap();
        assert_eq!(opened.contents(), b"for everyone");
        // Another recipient's share does not open for this one.
        let (other_sid, _) = people.iter().find(|(s, _)| s != sid).unwrap();
        let wrong = parsed.for_recipient(other_sid).unwrap();
        assert_eq!(
            sealed::open(&wrong, id, &TrustRoots::new(f.trust_root.public()), NOW),
            Err(SealedOpenError::InvalidMessage)
        );
        let mut bad = one.clone();
        for i in 1..bad.len() {
            bad[i] ^= 0x10;
            assert!(
                sealed::open(&bad, id, &TrustRoots::new(f.trust_root.public()), NOW).is_err(),
                "byte {i}"
            );
            bad[i] ^= 0x10;
        }
    }
    assert!(
        parsed
            .for_recipient(&ServiceId::new(sealed::ServiceIdKind::Pni, [1; 16]))
            .is_none()
    );
    for len in 0..multi.len() {
        let _ = MultiRecipientMessage::try_from(&multi[..len]);
    }
    let mut r = recipients[0].clone();
    r.registration_id = 0x4000;
    assert_eq!(
        sealed::seal_v2(&c, &f.alice, &[r], &mut f.rng),
        Err(SealError::InvalidRegistrationId {
            registration_id: 0x4000
        })
    );
    assert_eq!(
        sealed::seal_v2(&c, &f.alice, &[], &mut f.rng),
        Err(SealError::NoRecipients)
    );
}

#[test]
fn service_id_strings() {
    let s: ServiceId = "PNI:9d0652a3-dcc3-4d11-975f-74d61598733f".parse().unwrap();
    assert_eq!(s.to_string(), "PNI:9d0652a3-dcc3-4d11-975f-74d61598733f");
    assert_eq!(s.fixed_width_binary()[0], 1);
    let a: ServiceId = ALICE.parse().unwrap();
    assert_eq!(a.fixed_width_binary()[0], 0);
    assert!("not-a-uuid".parse::<ServiceId>().is_err());
}

#[test]
fn group_message_inside_sealed_sender() {
    let mut f = fixture(6, 1);
    let bob = IdentityKeyPair::generate(&mut f.rng);
    let me = Address::new(ALICE, 2);
    let group = DistributionId::random(&mut f.rng);
    let mut a = GroupSessions::new();
    let mut b = GroupSessions::new();
    let skdm = a.distribution(&me, group, Layout::Current, &mut f.rng);
    b.process(&me, group, &skdm).unwrap();
    let m = a.encrypt(&me, group, b"sealed group", &mut f.rng).unwrap();
    let c = content(&f, m.serialized());
    let bytes = sealed::seal_v1(&c, &f.alice, bob.identity_key(), &mut f.rng).unwrap();
    let opened = sealed::open(&bytes, &bob, &TrustRoots::new(f.trust_root.public()), NOW).unwrap();
    let sender = opened.sender().sender();
    let from = Address::new(sender.uuid.clone(), sender.device_id);
    let inner = confide::group::SenderKeyMessage::try_from(opened.contents()).unwrap();
    assert_eq!(
        b.decrypt(&from, group, &inner).unwrap().as_slice(),
        b"sealed group"
    );
}

#[test]
fn one_to_one_inside_sealed_sender() {
    let mut f = fixture(7, 1);
    let alice_store = InMemoryStore::new(f.alice.clone(), 11);
    let bob_store = InMemoryStore::generate(&mut f.rng);
    let spec = cipher::BundleSpec::new(1, 1).with_pre_key(Some(1));
    let bundle = cipher::publish_bundle(&bob_store, &mut f.rng, &spec, NOW).unwrap();
    let bob_addr = Address::new("bob", 1);
    let alice_addr = Address::new(ALICE, 2);
    cipher::start_session(
        &alice_store,
        &bob_addr,
        &bundle,
        Versions::V3AndV4,
        &mut f.rng,
        NOW,
    )
    .unwrap();
    let bob_identity = confide::store::IdentityStore::local_identity(&bob_store).unwrap();
    for (i, text) in [&b"first"[..], b"second"].into_iter().enumerate() {
        let msg = cipher::encrypt(
            &alice_store,
            &alice_addr,
            &bob_addr,
            text,
            &mut confide::SystemRng::new(),
            NOW,
        )
        .unwrap();
        let kind = ContentType::from_message_type(msg.message_type()).unwrap();
        let c = UnidentifiedSenderMessageContent::new(
            kind,
            f.cert.clone(),
            msg.serialized().to_vec(),
            ContentHint::Default,
            None,
        );
        let bytes = if i == 0 {
            sealed::seal_v1(&c, &f.alice, &bundle.identity_key, &mut f.rng).unwrap()
        } else {
            let r = Recipient {
                service_id: ServiceId::new(sealed::ServiceIdKind::Aci, [9; 16]),
                device_id: 1,
                registration_id: 5,
                identity_key: bundle.identity_key,
            };
            let multi =
                sealed::seal_v2(&c, &f.alice, std::slice::from_ref(&r), &mut f.rng).unwrap();
            MultiRecipientMessage::try_from(&multi[..])
                .unwrap()
                .for_recipient(&r.service_id)
                .unwrap()
        };
        let opened = sealed::open(
            &bytes,
            &bob_identity,
            &TrustRoots::new(f.trust_root.public()),
            NOW,
        )
        .unwrap();
        let inner =
            CiphertextMessage::from_parts(opened.content_type().message_type(), opened.contents())
                .unwrap();
        let pt =
            cipher::decrypt(&bob_store, &bob_addr, &alice_addr, &inner, &mut f.rng, NOW).unwrap();
        assert_eq!(pt.plaintext.as_slice(), text);
    }
}

/// Recipients whose devices are interleaved (A1, B1, A2, C1, B2): the devices of one
/// service id are grouped in first-seen order.
fn interleaved_recipients(
    rng: &mut ChaCha20Rng,
) -> (Vec<Recipient>, Vec<(ServiceId, IdentityKeyPair)>) {
    let people: Vec<(ServiceId, IdentityKeyPair)> = (0..3u8)
        .map(|i| {
            (
                ServiceId::new(sealed::ServiceIdKind::Aci, [i + 0x40; 16]),
                IdentityKeyPair::generate(rng),
            )
        })
        .collect();
    let r = |p: usize, device: u32| Recipient {
        service_id: people[p].0,
        device_id: device,
        registration_id: 0x100 + device,
        identity_key: *people[p].1.identity_key(),
    };
    let recipients = vec![r(0, 1), r(1, 1), r(0, 2), r(2, 1), r(1, 2)];
    (recipients, people)
}

/// The v2 wire output for a fixed seed, pinned: performance work must not change a byte.
#[test]
fn v2_seal_output_is_pinned() {
    let mut f = fixture(42, 1);
    let c = content(&f, b"pinned");
    let (recipients, _) = interleaved_recipients(&mut f.rng);
    let multi = sealed::seal_v2(&c, &f.alice, &recipients, &mut f.rng).unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA256, &multi);
    assert_eq!(
        hex::encode(digest.as_ref()),
        "a313a26bf54652d51fe15bc6d64092b6ba09c830fe30398bc5710785ad338b67"
    );
}

/// A [`SealV2Context`] makes exactly the bytes `seal_v2` makes, cold and warm, every
/// recipient opens them, and a failed seal remembers nothing.
#[test]
fn v2_context_matches_seal_v2_cold_and_warm() {
    let mut f = fixture(42, 1);
    let c = content(&f, b"pinned");
    let (recipients, people) = interleaved_recipients(&mut f.rng);
    let mut ctx = SealV2Context::new(&f.alice);
    assert!(ctx.is_empty());
    assert_eq!(ctx.sender(), f.alice.identity_key());
    for round in 0..3 {
        let seed = 100 + round;
        let plain = sealed::seal_v2(
            &c,
            &f.alice,
            &recipients,
            &mut ChaCha20Rng::seed_from_u64(seed),
        )
        .unwrap();
        let warm = ctx
            .seal(&c, &recipients, &mut ChaCha20Rng::seed_from_u64(seed))
            .unwrap();
        assert_eq!(warm, plain, "round {round}");
        assert_eq!(ctx.len(), 3);
        let parsed = MultiRecipientMessage::try_from(&warm[..]).unwrap();
        assert_eq!(parsed.recipients()[0].devices, vec![(1, 0x101), (2, 0x102)]);
        assert_eq!(parsed.recipients()[1].devices, vec![(1, 0x101), (2, 0x102)]);
        assert_eq!(parsed.recipients()[2].devices, vec![(1, 0x101)]);
        for (sid, id) in &people {
            let one = parsed.for_recipient(sid).unwrap();
            let opened =
                sealed::open(&one, id, &TrustRoots::new(f.trust_root.public()), NOW).unwrap();
            assert_eq!(opened.contents(), b"pinned");
        }
    }
    // The pinned seed through the context gives the pinned bytes.
    let mut f2 = fixture(42, 1);
    let (recipients2, _) = interleaved_recipients(&mut f2.rng);
    let warm = ctx.seal(&c, &recipients2, &mut f2.rng).unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA256, &warm);
    assert_eq!(
        hex::encode(digest.as_ref()),
        "a313a26bf54652d51fe15bc6d64092b6ba09c830fe30398bc5710785ad338b67"
    );

    // A weak recipient key fails the whole seal and adds nothing, even for the good
    // recipients before it.
    let mut fresh = SealV2Context::new(&f.alice);
    let mut bad = recipients.clone();
    bad.push(Recipient {
        service_id: ServiceId::new(sealed::ServiceIdKind::Aci, [0x77; 16]),
        device_id: 1,
        registration_id: 1,
        identity_key: confide::keys::IdentityKey::new(
            confide::keys::PublicKey::try_from_x25519([0; 32]).unwrap(),
        ),
    });
    assert_eq!(fresh.seal(&c, &bad, &mut f.rng), Err(SealError::WeakKey));
    assert!(fresh.is_empty());
    assert_eq!(
        fresh.precompute(&bad[5].identity_key),
        Err(SealError::WeakKey)
    );
    assert!(fresh.is_empty());
    fresh.precompute(people[0].1.identity_key()).unwrap();
    assert_eq!(fresh.len(), 1);

    // forget / clear, and Debug shows no secret.
    assert!(ctx.forget(people[1].1.identity_key()));
    assert!(!ctx.forget(people[1].1.identity_key()));
    assert_eq!(ctx.len(), 2);
    let debug = format!("{ctx:?}");
    assert!(debug.contains("remembered: 2"), "{debug}");
    ctx.clear();
    assert!(ctx.is_empty());
    // Cold again after clear: still the same bytes.
    let again = ctx
        .seal(&c, &recipients, &mut ChaCha20Rng::seed_from_u64(7))
        .unwrap();
    let plain = sealed::seal_v2(
        &c,
        &f.alice,
        &recipients,
        &mut ChaCha20Rng::seed_from_u64(7),
    )
    .unwrap();
    assert_eq!(again, plain);
}
