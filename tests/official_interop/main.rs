//! Interop with the official libsignal (npm `@signalapp/libsignal-client` 0.103.0, run
//! as a separate Node process by driver.js): sender-key distribution and group messages
//! both directions, shuffled, replays refused, rotation; certificates made by either
//! side validated by the other; sealed sender v1 and v2 wrapping sender-key messages
//! both directions; wrong trust root, expired certificates and corrupted bytes refused.
//! Protocol v4 (PQXDH + SPQR) 1:1 sessions against it are in `v4`; `peer_suite` runs its
//! scenarios with confide's peer in v3 and in v4 mode.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;
mod layout;
mod peer_suite;
mod persistent;
mod unseal;
mod v4;

use confide::group::{
    DistributionId, GroupDecryptError, GroupSessions, Layout, SenderKeyDistributionMessage,
    SenderKeyMessage,
};
use confide::keys::{IdentityKeyPair, KeyPair, PublicKey};
use confide::sealed::{
    self, ContentHint, ContentType, MultiRecipientMessage, Recipient, SenderCertificate,
    SenderInfo, ServerCertificate, ServiceId, TrustRoots, UnidentifiedSenderMessageContent,
};
use confide::{Address, IdentityKey, Timestamp};
use harness::Node;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use serde_json::{Value, json};

const CONFIDE_UUID: &str = "c0ff1de0-0000-4000-8000-000000000001";
const NODE_UUID: &str = "11b51911-0000-4000-8000-000000000002";

fn now() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}

fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("hex")
}

fn shuffle<T>(v: &mut [T], rng: &mut ChaCha20Rng) {
    for i in (1..v.len()).rev() {
        let j = (rng.next_u32() as usize) % (i + 1);
        v.swap(i, j);
    }
}

struct Setup {
    rng: ChaCha20Rng,
    node: Node,
    node_identity: IdentityKey,
    me: Address,
    them: Address,
    identity: IdentityKeyPair,
}

fn setup(seed: u64) -> Setup {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut node = Node::spawn();
    let r = node.ok(
        "generate_identity",
        json!({"name": NODE_UUID, "device_id": 1}),
    );
    let node_identity =
        IdentityKey::new(PublicKey::try_from(&unhex(&r["identity_key"])[..]).unwrap());
    let identity = IdentityKeyPair::generate(&mut rng);
    Setup {
        rng,
        node,
        node_identity,
        me: Address::new(CONFIDE_UUID, 1),
        them: Address::new(NODE_UUID, 1),
        identity,
    }
}

fn addr_json(a: &Address) -> Value {
    json!({"name": a.name(), "device_id": a.device_id()})
}

#[test]
fn group_confide_to_libsignal() {
    let mut s = setup(1);
    let group = DistributionId::random(&mut s.rng);
    let mut mine = GroupSessions::new();
    let skdm = mine.distribution(&s.me, group, Layout::Current, &mut s.rng);
    s.node.ok(
        "group_process",
        json!({"sender": addr_json(&s.me), "skdm": hex::encode(skdm.serialized())}),
    );
    let mut msgs: Vec<(String, String)> = (0..24)
        .map(|i| {
            let text = format!("confide message {i}");
            let m = mine
                .encrypt(&s.me, group, text.as_bytes(), &mut s.rng)
                .unwrap();
            (hex::encode(m.serialized()), text)
        })
        .collect();
    shuffle(&mut msgs, &mut s.rng);
    for (ct, text) in &msgs {
        let r = s.node.ok(
            "group_decrypt",
            json!({"sender": addr_json(&s.me), "ciphertext": ct}),
        );
        assert_eq!(r["text"], json!(text));
    }
    for (ct, _) in msgs.iter().take(5) {
        let r = s.node.call(
            "group_decrypt",
            json!({"sender": addr_json(&s.me), "ciphertext": ct}),
        );
        assert_eq!(r["ok"], json!(false), "replay accepted by libsignal");
    }
    // Rotation: a new chain, read by libsignal after it processes the new message.
    let skdm = mine.rotate(&s.me, group, &mut s.rng);
    let m = mine
        .encrypt(&s.me, group, b"after rotation", &mut s.rng)
        .unwrap();
    let r = s.node.call(
        "group_decrypt",
        json!({"sender": addr_json(&s.me), "ciphertext": hex::encode(m.serialized())}),
    );
    assert_eq!(
        r["ok"],
        json!(false),
        "new chain read without its distribution message"
    );
    s.node.ok(
        "group_process",
        json!({"sender": addr_json(&s.me), "skdm": hex::encode(skdm.serialized())}),
    );
    let r = s.node.ok(
        "group_decrypt",
        json!({"sender": addr_json(&s.me), "ciphertext": hex::encode(m.serialized())}),
    );
    assert_eq!(r["text"], json!("after rotation"));
}

#[test]
fn group_libsignal_to_confide() {
    let mut s = setup(2);
    let group = DistributionId::random(&mut s.rng);
    let r = s.node.ok(
        "group_create",
        json!({"distribution_id": group.to_string()}),
    );
    let skdm = SenderKeyDistributionMessage::try_from(&unhex(&r["skdm"])[..]).unwrap();
    assert_eq!(skdm.distribution_id(), Some(group));
    let mut mine = GroupSessions::new();
    mine.process(&s.them, group, &skdm).unwrap();
    let mut msgs: Vec<(Vec<u8>, String)> = (0..24)
        .map(|i| {
            let text = format!("libsignal message {i}");
            let r = s.node.ok(
                "group_encrypt",
                json!({"distribution_id": group.to_string(), "text": text}),
            );
            (unhex(&r["ciphertext"]), text)
        })
        .collect();
    shuffle(&mut msgs, &mut s.rng);
    for (ct, text) in &msgs {
        let m = SenderKeyMessage::try_from(&ct[..]).unwrap();
        assert_eq!(
            mine.decrypt(&s.them, group, &m).unwrap().as_slice(),
            text.as_bytes()
        );
    }
    for (ct, _) in &msgs {
        let m = SenderKeyMessage::try_from(&ct[..]).unwrap();
        assert!(matches!(
            mine.decrypt(&s.them, group, &m),
            Err(GroupDecryptError::DuplicateMessage { .. })
        ));
    }
    // Corrupted bytes are refused and change nothing.
    let r = s.node.ok(
        "group_encrypt",
        json!({"distribution_id": group.to_string(), "text": "last"}),
    );
    let mut bad = unhex(&r["ciphertext"]);
    let n = bad.len();
    bad[n - 80] ^= 1;
    let m = SenderKeyMessage::try_from(&bad[..]).unwrap();
    assert_eq!(
        mine.decrypt(&s.them, group, &m),
        Err(GroupDecryptError::InvalidMessage)
    );
    let m = SenderKeyMessage::try_from(&unhex(&r["ciphertext"])[..]).unwrap();
    assert_eq!(
        mine.decrypt(&s.them, group, &m).unwrap().as_slice(),
        b"last"
    );
}

fn confide_cert(s: &mut Setup, expiration: Timestamp, key_id: u32) -> (KeyPair, SenderCertificate) {
    let root = KeyPair::generate(&mut s.rng);
    let server = KeyPair::generate(&mut s.rng);
    let sc = ServerCertificate::new(key_id, server.public(), root.private(), &mut s.rng);
    let info = SenderInfo {
        uuid: CONFIDE_UUID.into(),
        e164: Some("+15550123".into()),
        device_id: 1,
        identity_key: *s.identity.identity_key(),
        expiration,
    };
    let cert = SenderCertificate::new(info, sc, server.private(), &mut s.rng);
    (root, cert)
}

#[test]
fn certificates_validate_across() {
    let mut s = setup(3);
    let t = now();
    // confide's certificate, validated by libsignal.
    let exp = Timestamp::from_millis(t.as_millis() + 60_000);
    let (root, cert) = confide_cert(&mut s, exp, 9);
    let check = |node: &mut Node, root: &PublicKey, at: u64| {
        node.ok(
            "validate_cert",
            json!({
                "sender_cert": hex::encode(cert.serialized()),
                "trust_root": hex::encode(root.serialize()),
                "timestamp": at,
            }),
        )
    };
    let r = check(&mut s.node, &root.public(), t.as_millis());
    assert_eq!(r["valid"], json!(true));
    assert_eq!(r["uuid"], json!(CONFIDE_UUID));
    assert_eq!(r["e164"], json!("+15550123"));
    assert_eq!(
        check(&mut s.node, &root.public(), exp.as_millis() + 1)["valid"],
        json!(false)
    );
    let wrong = KeyPair::generate(&mut s.rng).public();
    assert_eq!(
        check(&mut s.node, &wrong, t.as_millis())["valid"],
        json!(false)
    );
    let (revoked_root, revoked) = confide_cert(&mut s, exp, 0xDEAD_C357);
    let r = s.node.ok(
        "validate_cert",
        json!({
            "sender_cert": hex::encode(revoked.serialized()),
            "trust_root": hex::encode(revoked_root.public().serialize()),
            "timestamp": t.as_millis(),
        }),
    );
    assert_eq!(r["valid"], json!(false));

    // libsignal's certificate, validated by confide.
    let r = s.node.ok(
        "sender_cert",
        json!({"e164": "+15550199", "expiration": exp.as_millis()}),
    );
    let theirs = SenderCertificate::try_from(&unhex(&r["sender_cert"])[..]).unwrap();
    let their_root = PublicKey::try_from(&unhex(&r["trust_root"])[..]).unwrap();
    theirs.validate(&TrustRoots::new(their_root), t).unwrap();
    assert_eq!(theirs.sender().uuid, NODE_UUID);
    assert_eq!(theirs.sender().e164.as_deref(), Some("+15550199"));
    assert_eq!(theirs.sender().identity_key, s.node_identity);
    assert!(theirs.validate(&TrustRoots::new(wrong), t).is_err());
    assert!(
        theirs
            .validate(
                &TrustRoots::new(their_root),
                Timestamp::from_millis(exp.as_millis() + 1)
            )
            .is_err()
    );
    let mut bytes = unhex(&r["sender_cert"]);
    let n = bytes.len();
    bytes[n / 2] ^= 0x01;
    assert!(
        SenderCertificate::try_from(&bytes[..])
            .and_then(|c| c.validate(&TrustRoots::new(their_root), t))
            .is_err()
    );
}

/// confide seals a sender-key message with v1 and v2 for libsignal, which opens them.
#[test]
fn sealed_confide_to_libsignal() {
    let mut s = setup(4);
    let t = now();
    let (root, cert) = confide_cert(&mut s, Timestamp::from_millis(t.as_millis() + 60_000), 1);
    let group = DistributionId::random(&mut s.rng);
    let mut mine = GroupSessions::new();
    let skdm = mine.distribution(&s.me, group, Layout::Current, &mut s.rng);
    s.node.ok(
        "group_process",
        json!({"sender": addr_json(&s.me), "skdm": hex::encode(skdm.serialized())}),
    );
    let seal = |s: &mut Setup, mine: &mut GroupSessions, text: &str| {
        let m = mine
            .encrypt(&s.me, group, text.as_bytes(), &mut s.rng)
            .unwrap();
        UnidentifiedSenderMessageContent::new(
            ContentType::SenderKey,
            cert.clone(),
            m.serialized().to_vec(),
            ContentHint::Resendable,
            Some(b"group-1".to_vec()),
        )
    };
    let decrypt = |node: &mut Node, ct: &[u8], root: &PublicKey, at: u64| {
        node.call(
            "sealed_decrypt",
            json!({
                "ciphertext": hex::encode(ct),
                "trust_root": hex::encode(root.serialize()),
                "timestamp": at,
            }),
        )
    };
    // v1
    let c = seal(&mut s, &mut mine, "sealed v1 from confide");
    let v1 = sealed::seal_v1(&c, &s.identity, &s.node_identity, &mut s.rng).unwrap();
    let r = decrypt(&mut s.node, &v1, &root.public(), t.as_millis());
    assert_eq!(r["ok"], json!(true), "{r}");
    assert_eq!(r["text"], json!("sealed v1 from confide"));
    assert_eq!(r["sender"]["name"], json!(CONFIDE_UUID));
    assert_eq!(r["inner_type"], json!(7));
    assert_eq!(r["content_hint"], json!(1));
    assert_eq!(r["group_id"], json!(hex::encode(b"group-1")));
    // v2: confide's multi-recipient blob, split by libsignal and by confide.
    let node_sid: ServiceId = NODE_UUID.parse().unwrap();
    let recipients = [Recipient {
        service_id: node_sid,
        device_id: 1,
        registration_id: 4242,
        identity_key: s.node_identity,
    }];
    for (i, split_by_node) in [true, false].into_iter().enumerate() {
        let text = format!("sealed v2 from confide {i}");
        let c = seal(&mut s, &mut mine, &text);
        let multi = sealed::seal_v2(&c, &s.identity, &recipients, &mut s.rng).unwrap();
        let one = if split_by_node {
            unhex(
                &s.node
                    .ok("split_multi", json!({"multi": hex::encode(&multi)}))["ciphertext"],
            )
        } else {
            MultiRecipientMessage::try_from(&multi[..])
                .unwrap()
                .for_recipient(&node_sid)
                .unwrap()
        };
        let r = decrypt(&mut s.node, &one, &root.public(), t.as_millis());
        assert_eq!(r["ok"], json!(true), "{r}");
        assert_eq!(r["text"], json!(text));
    }
    // Refusals: wrong trust root, expired, corrupted.
    let c = seal(&mut s, &mut mine, "refused");
    let v1 = sealed::seal_v1(&c, &s.identity, &s.node_identity, &mut s.rng).unwrap();
    let wrong = KeyPair::generate(&mut s.rng).public();
    assert_eq!(
        decrypt(&mut s.node, &v1, &wrong, t.as_millis())["ok"],
        json!(false)
    );
    assert_eq!(
        decrypt(&mut s.node, &v1, &root.public(), t.as_millis() + 120_000)["ok"],
        json!(false)
    );
    let mut bad = v1.clone();
    let n = bad.len();
    bad[n - 20] ^= 1;
    assert_eq!(
        decrypt(&mut s.node, &bad, &root.public(), t.as_millis())["ok"],
        json!(false)
    );
}

/// libsignal seals its sender-key messages with v1 and v2 for confide, which opens them.
#[test]
fn sealed_libsignal_to_confide() {
    let mut s = setup(5);
    let t = now();
    let group = DistributionId::random(&mut s.rng);
    let r = s.node.ok(
        "group_create",
        json!({"distribution_id": group.to_string()}),
    );
    let mut mine = GroupSessions::new();
    mine.process(
        &s.them,
        group,
        &SenderKeyDistributionMessage::try_from(&unhex(&r["skdm"])[..]).unwrap(),
    )
    .unwrap();
    let exp = t.as_millis() + 60_000;
    let r = s.node.ok("sender_cert", json!({"expiration": exp}));
    let cert = unhex(&r["sender_cert"]);
    let root = PublicKey::try_from(&unhex(&r["trust_root"])[..]).unwrap();
    s.node.ok(
        "learn",
        json!({
            "address": addr_json(&s.me),
            "identity_key": hex::encode(s.identity.identity_key().serialize()),
            "identity_private": hex::encode(s.identity.private_key().to_bytes().as_ref()),
            "registration_id": 77,
        }),
    );
    let open_group = |mine: &mut GroupSessions,
                      bytes: &[u8],
                      root: &PublicKey,
                      at: Timestamp,
                      me: &IdentityKeyPair| {
        let content = sealed::open(bytes, me, &TrustRoots::new(*root), at)?;
        let sender = content.sender().sender();
        let from = Address::new(sender.uuid.clone(), sender.device_id);
        assert_eq!(content.content_type(), ContentType::SenderKey);
        let m = SenderKeyMessage::try_from(content.contents()).unwrap();
        Ok::<_, sealed::SealedOpenError>(mine.decrypt(&from, group, &m).unwrap().to_vec())
    };
    // v1
    let r = s.node.ok("sealed_encrypt", json!({
        "version": 1, "address": addr_json(&s.me), "sender_cert": hex::encode(&cert),
        "distribution_id": group.to_string(), "text": "sealed v1 from libsignal", "content_hint": 2,
    }));
    let v1 = unhex(&r["ciphertext"]);
    assert_eq!(v1[0], 0x11);
    assert_eq!(
        open_group(&mut mine, &v1, &root, t, &s.identity).unwrap(),
        b"sealed v1 from libsignal"
    );
    // v2: libsignal's multi-recipient blob, parsed and split by confide.
    let r = s.node.ok(
        "sealed_encrypt",
        json!({
            "version": 2, "addresses": [addr_json(&s.me)], "sender_cert": hex::encode(&cert),
            "distribution_id": group.to_string(), "text": "sealed v2 from libsignal",
        }),
    );
    let multi = unhex(&r["multi"]);
    assert_eq!(multi[0], 0x23);
    let parsed = MultiRecipientMessage::try_from(&multi[..]).unwrap();
    assert_eq!(parsed.recipients()[0].devices, vec![(1, 77)]);
    let sid: ServiceId = CONFIDE_UUID.parse().unwrap();
    let one = parsed.for_recipient(&sid).unwrap();
    assert_eq!(
        open_group(&mut mine, &one, &root, t, &s.identity).unwrap(),
        b"sealed v2 from libsignal"
    );
    // libsignal's own split opens too.
    let r = s.node.ok(
        "sealed_encrypt",
        json!({
            "version": 2, "addresses": [addr_json(&s.me)], "sender_cert": hex::encode(&cert),
            "distribution_id": group.to_string(), "text": "split by libsignal",
        }),
    );
    let one = unhex(&s.node.ok("split_multi", json!({"multi": r["multi"]}))["ciphertext"]);
    assert_eq!(
        open_group(&mut mine, &one, &root, t, &s.identity).unwrap(),
        b"split by libsignal"
    );
    // Refusals: wrong root, expired, corrupted.
    let r = s.node.ok(
        "sealed_encrypt",
        json!({
            "version": 1, "address": addr_json(&s.me), "sender_cert": hex::encode(&cert),
            "distribution_id": group.to_string(), "text": "refused",
        }),
    );
    let v1 = unhex(&r["ciphertext"]);
    let wrong = KeyPair::generate(&mut s.rng).public();
    assert!(sealed::open(&v1, &s.identity, &TrustRoots::new(wrong), t).is_err());
    assert!(
        sealed::open(
            &v1,
            &s.identity,
            &TrustRoots::new(root),
            Timestamp::from_millis(exp + 1)
        )
        .is_err()
    );
    for i in [1usize, 10, v1.len() / 2, v1.len() - 1] {
        let mut bad = v1.clone();
        bad[i] ^= 0x04;
        assert!(
            sealed::open(&bad, &s.identity, &TrustRoots::new(root), t).is_err(),
            "byte {i}"
        );
    }
}
