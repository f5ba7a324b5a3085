//! Byte-for-byte check of confide's PQXDH against libsignal's: libsignal (Alice) starts
//! a session from a bundle confide built from fixed private keys and encrypts a first
//! message; its session record (decoded here with the structs of `wire`) exposes the
//! PQXDH chain key (its receiving chain, index 0), SPQR's auth key (the negotiation
//! record) and the root after its first ratchet step. confide's
//! `hazmat::pqxdh_responder_secrets` for the message's base key and Kyber ciphertext
//! must give the same; the root step, the sending chain, SPQR's first message key and
//! the message keys salted with it are then recomputed in the test from those secrets,
//! and with them the first message's MAC verifies and its ciphertext decrypts. Last,
//! confide's device on those keys decrypts the message and answers.

use confide::hazmat;
use confide::keys::{
    KemCiphertext, KeyPair, KyberPreKeyRecord, PreKeyPublic, PreKeyRecord, PrivateKey, PublicKey,
    SignedPreKeyRecord,
};
use confide::store::{PreKeyStore, SignedPreKeyStore};
use confide::{IdentityKey, IdentityKeyPair, PreKeyBundle};
use prost::Message;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::json;

use super::wire::{self, PqRatchetStatePb, RecordPb, SignalMessagePb};
use super::{CONFIDE_NAME, Confide, LIBSIGNAL_NAME, Libsignal, addr_json, bundle_to_json, unhex};

const SPK_ID: u32 = 5;
const OPK_ID: u32 = 7;
const KYBER_ID: u32 = 9;
const REG: u32 = 2468;

fn key(b: u8) -> KeyPair {
    KeyPair::from_private(PrivateKey::from_bytes([b; 32]))
}

/// What the fixed-key handshake leaves: both devices with the session between them
/// (confide has read libsignal's first message and answered, libsignal has read the
/// answer), and the secrets the test derived.
struct Handshake {
    alice: Libsignal,
    bob: Confide,
    /// SPQR's epoch-0 chain seeds (A2B, B2A), from PQXDH's auth key.
    spqr_seeds: (Vec<u8>, Vec<u8>),
}

/// The handshake with fixed keys, checking every derivation on the way.
fn handshake(one_time: bool) -> Handshake {
    {
        let mut rng = ChaCha20Rng::seed_from_u64(404);
        let now = super::now();
        let identity = IdentityKeyPair::from_private(PrivateKey::from_bytes([0x11; 32]));
        let spk = key(0x22);
        let sig = hazmat::xeddsa_sign(identity.private_key(), &mut rng, &spk.public().serialize());
        let spk_record = SignedPreKeyRecord::new(SPK_ID, now, key(0x22), sig);
        let opk = key(0x33);
        let kyber = KyberPreKeyRecord::generate(&mut rng, &identity, KYBER_ID, now);
        let mut bundle = PreKeyBundle::new(REG, 1, *identity.identity_key(), spk_record.public())
            .with_kyber_pre_key(kyber.public());
        if one_time {
            bundle = bundle.with_pre_key(PreKeyPublic {
                id: OPK_ID,
                key: opk.public(),
            });
        }

        // libsignal is Alice.
        let mut alice = Libsignal::new(LIBSIGNAL_NAME);
        let bob_addr = json!({"name": CONFIDE_NAME, "device_id": 1});
        alice.p.ok(
            "process_bundle",
            json!({"address": bob_addr, "bundle": bundle_to_json(&bundle)}),
        );
        let r = alice
            .p
            .ok("encrypt", json!({"address": bob_addr, "text": "first"}));
        assert_eq!(r["type"], json!(3));
        let bytes = unhex(&r["ciphertext"]);
        let rec = alice.p.ok("session_record", json!({"address": bob_addr}));
        let s = RecordPb::decode(&unhex(&rec["record"])[..])
            .unwrap()
            .current_session
            .expect("current session");

        // The prekey message.
        let (version, pk) = wire::parse_prekey(&bytes);
        assert_eq!(version, wire::V4);
        assert_eq!(pk.signed_pre_key_id, Some(SPK_ID));
        assert_eq!(pk.kyber_pre_key_id, Some(KYBER_ID));
        assert_eq!(pk.pre_key_id, one_time.then_some(OPK_ID));
        let alice_identity =
            IdentityKey::new(PublicKey::try_from(&pk.identity_key.clone().unwrap()[..]).unwrap());
        assert_eq!(alice_identity, alice.identity);
        let base = PublicKey::try_from(&pk.base_key.clone().unwrap()[..]).unwrap();
        let ct = KemCiphertext::from_bytes(&pk.kyber_ciphertext.clone().unwrap()).unwrap();

        // confide's PQXDH, as Bob.
        let secrets = hazmat::pqxdh_responder_secrets(
            &identity,
            &spk,
            one_time.then_some(&opk),
            &kyber,
            &alice_identity,
            &base,
            &ct,
        )
        .unwrap();

        // libsignal's record against it.
        assert_eq!(s.session_version, 4);
        assert_eq!(
            s.remote_identity_public,
            identity.identity_key().serialize()
        );
        assert_eq!(s.alice_base_key, base.serialize());
        assert_eq!(s.receiver_chains.len(), 1);
        let rc = &s.receiver_chains[0];
        assert_eq!(rc.sender_ratchet_key, spk.public().serialize());
        let rck = rc.chain_key.clone().unwrap();
        assert_eq!(rck.index, 0);
        assert_eq!(
            hex::encode(&rck.key),
            hex::encode(&secrets.chain_key[..]),
            "PQXDH chain key"
        );
        let pq = PqRatchetStatePb::decode(&s.pq_ratchet_state[..]).unwrap();
        let neg = pq
            .version_negotiation
            .expect("negotiation record before any receive");
        assert_eq!(
            hex::encode(&neg.auth_key),
            hex::encode(&secrets.spqr_auth_key[..]),
            "SPQR auth key"
        );
        assert_eq!(
            (neg.direction, neg.min_version),
            (0, 1),
            "A2B, min version V1"
        );

        // The first ratchet step, recomputed from confide's root.
        let sc = s.sender_chain.clone().expect("sender chain");
        let step = wire::hkdf(
            &secrets.root_key[..],
            &wire::x25519(&sc.sender_ratchet_key_private, &spk.public().serialize()),
            b"WhisperRatchet",
            64,
        );
        assert_eq!(
            hex::encode(&s.root_key),
            hex::encode(&step[..32]),
            "root after one step"
        );
        let send_ck0 = &step[32..];
        let sck = sc.chain_key.unwrap();
        assert_eq!(
            (sck.index, sck.key),
            (1, wire::hmac(send_ck0, &[2]).to_vec())
        );

        // The first message, opened with keys derived here.
        let inner = pk.message.clone().unwrap();
        let (v, m, mac) = wire::parse_signal(&inner);
        assert_eq!(v, wire::V4);
        assert_eq!(m.ratchet_key.as_deref(), Some(&sc.sender_ratchet_key[..]));
        assert_eq!(m.counter, Some(0));
        assert_eq!(
            m.addresses.as_deref(),
            Some(&wire::addresses((LIBSIGNAL_NAME, 1), (CONFIDE_NAME, 1))[..]),
            "field 6 of a prekey message's SignalMessage"
        );
        let h = wire::spqr_header(m.pq_ratchet.as_deref().unwrap());
        assert_eq!(
            (h.epoch, h.index, h.kind, h.chunk),
            (1, 1, 1, Some(0)),
            "Alice's first SPQR message: epoch 1, key 1, Hdr chunk 0"
        );
        let start = wire::hkdf(
            &[],
            &secrets.spqr_auth_key[..],
            b"Signal PQ Ratchet V1 Chain  Start",
            96,
        );
        let spqr_key = wire::spqr_chain_key(&start[32..64], 1);
        let (cipher, mac_key, iv) = wire::message_keys(send_ck0, Some(&spqr_key));
        let body = &inner[..inner.len() - wire::MAC_LEN];
        assert_eq!(
            wire::mac(
                &mac_key,
                &alice_identity.serialize(),
                &identity.identity_key().serialize(),
                body
            ),
            mac,
            "MAC with SPQR-salted keys"
        );
        assert_eq!(
            wire::aes_cbc_decrypt(&cipher, &iv, m.ciphertext.as_deref().unwrap()),
            b"first"
        );

        // confide's device on these keys reads it and answers.
        let bob = Confide::with_identity(CONFIDE_NAME, identity.clone(), REG, rng);
        let store = bob.dev.store();
        store.save_signed_pre_key(&spk_record).unwrap();
        if one_time {
            store
                .save_pre_key(&PreKeyRecord::new(OPK_ID, key(0x33)))
                .unwrap();
        }
        store
            .kyber_pre_keys()
            .expect("InMemoryStore keeps Kyber prekeys")
            .save_kyber_pre_key(KYBER_ID, &kyber.to_bytes(), true)
            .unwrap();
        let msg = confide::CiphertextMessage::from_parts(3, &bytes).unwrap();
        let d = bob.dev.decrypt_raw(&alice.addr, &msg).unwrap();
        assert_eq!(&d.plaintext[..], b"first");
        let reply = bob.dev.encrypt_raw(&alice.addr, b"second").unwrap();
        let r = alice.p.ok(
            "decrypt",
            json!({"address": addr_json(bob.addr()), "type": reply.message_type(),
                   "ciphertext": hex::encode(reply.serialized())}),
        );
        assert_eq!(r["text"], json!("second"));
        let seeds = (start[32..64].to_vec(), start[64..96].to_vec());
        Handshake {
            alice,
            bob,
            spqr_seeds: seeds,
        }
    }
}

#[test]
fn v4_pqxdh_derivation_matches_libsignal_byte_for_byte() {
    for one_time in [true, false] {
        handshake(one_time);
    }
}

fn record(h: &mut Handshake) -> wire::SessionPb {
    let r = h.alice.p.ok(
        "session_record",
        json!({"address": addr_json(h.bob.addr())}),
    );
    RecordPb::decode(&unhex(&r["record"])[..])
        .unwrap()
        .current_session
        .expect("current session")
}

/// A SignalMessage forged in the test from a chain key at `counter` of the chain
/// `ratchet_key`: with `pq` = (the `pq_ratchet` bytes, SPQR's key) the keys are v4's,
/// without it v3-style (no salt, no field 5). The MAC is right either way.
fn forge(
    ratchet_key: &[u8],
    counter: u32,
    chain_key: &[u8],
    pq: Option<(&[u8], &[u8])>,
    (sender, receiver): (&[u8; 33], &[u8; 33]),
    text: &[u8],
) -> Vec<u8> {
    forge_with(
        ratchet_key,
        counter,
        chain_key,
        pq,
        (sender, receiver),
        text,
        None,
    )
}

/// [`forge`] with an `addresses` field (6).
fn forge_with(
    ratchet_key: &[u8],
    counter: u32,
    chain_key: &[u8],
    pq: Option<(&[u8], &[u8])>,
    (sender, receiver): (&[u8; 33], &[u8; 33]),
    text: &[u8],
    addresses: Option<Vec<u8>>,
) -> Vec<u8> {
    let (cipher, mac, iv) = wire::message_keys(chain_key, pq.map(|p| p.1));
    let pb = SignalMessagePb {
        ratchet_key: Some(ratchet_key.to_vec()),
        counter: Some(counter),
        previous_counter: Some(0),
        ciphertext: Some(wire::aes_cbc_encrypt(&cipher, &iv, text)),
        pq_ratchet: pq.map(|p| p.0.to_vec()),
        addresses,
    };
    wire::signal_message(&pb, &mac, sender, receiver)
}

/// A message with a right MAC and no `pq_ratchet` (a v4 peer that skipped SPQR) is
/// refused by both sides (by confide as SPQR's refusal, since the MAC is right). The
/// forging is shown right first: the same code, given the genuine message's `pq_ratchet` and SPQR's key for it (derived here from PQXDH's auth
/// key: epoch 1 takes chain epoch 0's keys), makes a message the receiver accepts. Each
/// refusal changes nothing: the sender's genuine next message then opens.
#[test]
fn v4_message_without_pq_ratchet_refused_though_its_mac_is_right() {
    let mut h = handshake(false);
    let li = h.alice.identity.serialize();
    let bi = h.bob.identity_key().serialize();
    let alice_addr = h.alice.addr.clone();
    let bob_addr = addr_json(h.bob.addr());

    // libsignal → confide. libsignal ratcheted on reading confide's answer: its sender
    // chain is new, at index 0.
    let s = record(&mut h);
    let sc = s.sender_chain.expect("sender chain");
    let ck = sc.chain_key.expect("chain key");
    let genuine = h
        .alice
        .p
        .ok("encrypt", json!({"address": bob_addr, "text": "genuine 0"}));
    assert_eq!(genuine["type"], json!(2));
    let g = unhex(&genuine["ciphertext"]);
    let (_, gm, _) = wire::parse_signal(&g);
    assert_eq!(gm.counter, Some(ck.index));
    let pq = gm.pq_ratchet.clone().unwrap();
    let hd = wire::spqr_header(&pq);
    assert_eq!(hd.epoch, 1, "still in SPQR epoch 1");
    let spqr_key = wire::spqr_chain_key(&h.spqr_seeds.0, hd.index);
    let ok = forge(
        &sc.sender_ratchet_key,
        ck.index,
        &ck.key,
        Some((&pq, &spqr_key)),
        (&li, &bi),
        b"forged with SPQR",
    );
    let m = confide::CiphertextMessage::from_parts(2, &ok).unwrap();
    let d = h
        .bob
        .dev
        .decrypt_raw(&alice_addr, &m)
        .expect("the forging is right: confide reads it");
    assert_eq!(&d.plaintext[..], b"forged with SPQR");
    let s = record(&mut h);
    let ck = s.sender_chain.unwrap().chain_key.unwrap();
    let bad = forge(
        &sc.sender_ratchet_key,
        ck.index,
        &ck.key,
        None,
        (&li, &bi),
        b"no pq",
    );
    let m = confide::CiphertextMessage::from_parts(2, &bad).unwrap();
    let e = h.bob.dev.decrypt_raw(&alice_addr, &m);
    assert!(
        matches!(e, Err(confide::DecryptError::PostQuantumRatchet)),
        "confide on a MACed message without pq_ratchet: {e:?}"
    );
    let next = h
        .alice
        .p
        .ok("encrypt", json!({"address": bob_addr, "text": "genuine 1"}));
    let m = confide::CiphertextMessage::from_parts(2, &unhex(&next["ciphertext"])).unwrap();
    assert_eq!(wire::parse_signal(m.serialized()).1.counter, Some(ck.index));
    assert_eq!(
        &h.bob.dev.decrypt_raw(&alice_addr, &m).unwrap().plaintext[..],
        b"genuine 1"
    );

    // confide → libsignal, from libsignal's receiving chain for confide's ratchet key.
    let c0 = h
        .bob
        .dev
        .encrypt_raw(&alice_addr, b"confide genuine 0")
        .unwrap();
    let (_, cm, _) = wire::parse_signal(c0.serialized());
    let ratchet = cm.ratchet_key.clone().unwrap();
    let pq = cm.pq_ratchet.clone().unwrap();
    let hd = wire::spqr_header(&pq);
    assert_eq!(hd.epoch, 1, "still in SPQR epoch 1");
    // libsignal has no chain for this ratchet key until it reads a message on it; the
    // forged one is the first, so its chain key comes from libsignal's root step, which
    // the record does not show yet: read the genuine one first, forge the next.
    let r = h.alice.p.ok(
        "decrypt",
        json!({"address": bob_addr, "type": 2, "ciphertext": hex::encode(c0.serialized())}),
    );
    assert_eq!(r["text"], json!("confide genuine 0"));
    let c1 = h
        .bob
        .dev
        .encrypt_raw(&alice_addr, b"confide genuine 1")
        .unwrap();
    let (_, cm1, _) = wire::parse_signal(c1.serialized());
    let pq1 = cm1.pq_ratchet.clone().unwrap();
    let hd1 = wire::spqr_header(&pq1);
    assert_eq!(hd1.epoch, 1);
    let s = record(&mut h);
    let rc = s
        .receiver_chains
        .iter()
        .find(|c| c.sender_ratchet_key == ratchet)
        .expect("libsignal's receiving chain for confide's ratchet key")
        .chain_key
        .clone()
        .unwrap();
    assert_eq!(cm1.counter, Some(rc.index));
    let spqr_key = wire::spqr_chain_key(&h.spqr_seeds.1, hd1.index);
    let ok = forge(
        &ratchet,
        rc.index,
        &rc.key,
        Some((&pq1, &spqr_key)),
        (&bi, &li),
        b"forged with SPQR",
    );
    let r = h.alice.p.call(
        "decrypt",
        json!({"address": bob_addr, "type": 2, "ciphertext": hex::encode(&ok)}),
    );
    assert_eq!(
        r["text"],
        json!("forged with SPQR"),
        "the forging is right: libsignal reads it: {r}"
    );
    let s = record(&mut h);
    let rc = s
        .receiver_chains
        .iter()
        .find(|c| c.sender_ratchet_key == ratchet)
        .unwrap()
        .chain_key
        .clone()
        .unwrap();
    let bad = forge(&ratchet, rc.index, &rc.key, None, (&bi, &li), b"no pq");
    let r = h.alice.p.call(
        "decrypt",
        json!({"address": bob_addr, "type": 2, "ciphertext": hex::encode(&bad)}),
    );
    assert_eq!(
        r["ok"],
        json!(false),
        "libsignal accepted a message without pq_ratchet: {r}"
    );
    eprintln!("libsignal refuses a MACed message without pq_ratchet: {r}");
    let c2 = h
        .bob
        .dev
        .encrypt_raw(&alice_addr, b"confide genuine 2")
        .unwrap();
    assert_eq!(
        wire::parse_signal(c2.serialized()).1.counter,
        Some(rc.index)
    );
    let r = h.alice.p.ok(
        "decrypt",
        json!({"address": bob_addr, "type": 2, "ciphertext": hex::encode(c2.serialized())}),
    );
    assert_eq!(r["text"], json!("confide genuine 2"));
}

/// The `addresses` field (6) as libsignal checks it: present, it must name (sender,
/// recipient) as the receiver knows them. Messages with a right MAC and SPQR key are
/// forged with a wrong field (sender and recipient swapped, or another device id) and
/// with the right one: both receivers refuse the wrong ones, changing nothing, and
/// accept the right one.
#[test]
fn v4_addresses_field_checked_as_libsignal_does() {
    let mut h = handshake(true);
    let li = h.alice.identity.serialize();
    let bi = h.bob.identity_key().serialize();
    let alice_addr = h.alice.addr.clone();
    let bob_addr = addr_json(h.bob.addr());
    let right = wire::addresses((LIBSIGNAL_NAME, 1), (CONFIDE_NAME, 1));
    let wrongs = [
        wire::addresses((CONFIDE_NAME, 1), (LIBSIGNAL_NAME, 1)),
        wire::addresses((LIBSIGNAL_NAME, 2), (CONFIDE_NAME, 1)),
        right[..35].to_vec(),
    ];

    // libsignal → confide.
    let s = record(&mut h);
    let sc = s.sender_chain.expect("sender chain");
    let ck = sc.chain_key.expect("chain key");
    let g = h
        .alice
        .p
        .ok("encrypt", json!({"address": bob_addr, "text": "genuine"}));
    let (_, gm, _) = wire::parse_signal(&unhex(&g["ciphertext"]));
    let pq = gm.pq_ratchet.clone().unwrap();
    let hd = wire::spqr_header(&pq);
    assert_eq!(hd.epoch, 1);
    let key = wire::spqr_chain_key(&h.spqr_seeds.0, hd.index);
    let forged = |a: Option<Vec<u8>>| {
        let b = forge_with(
            &sc.sender_ratchet_key,
            ck.index,
            &ck.key,
            Some((&pq, &key)),
            (&li, &bi),
            b"with addresses",
            a,
        );
        // A field of the wrong length is refused already by the parser.
        confide::CiphertextMessage::from_parts(2, &b).map_err(confide::DecryptError::Wire)
    };
    for w in &wrongs {
        let e = forged(Some(w.clone())).and_then(|m| h.bob.dev.decrypt_raw(&alice_addr, &m));
        assert!(e.is_err(), "confide accepted addresses {}", hex::encode(w));
    }
    let d = forged(Some(right.clone())).and_then(|m| h.bob.dev.decrypt_raw(&alice_addr, &m));
    assert_eq!(
        &d.expect("the right addresses").plaintext[..],
        b"with addresses"
    );

    // confide → libsignal.
    let c0 = h.bob.dev.encrypt_raw(&alice_addr, b"confide 0").unwrap();
    let ratchet = wire::parse_signal(c0.serialized()).1.ratchet_key.unwrap();
    h.alice.p.ok(
        "decrypt",
        json!({"address": bob_addr, "type": 2, "ciphertext": hex::encode(c0.serialized())}),
    );
    let c1 = h.bob.dev.encrypt_raw(&alice_addr, b"confide 1").unwrap();
    let (_, cm, _) = wire::parse_signal(c1.serialized());
    let pq = cm.pq_ratchet.clone().unwrap();
    let hd = wire::spqr_header(&pq);
    assert_eq!(hd.epoch, 1);
    let key = wire::spqr_chain_key(&h.spqr_seeds.1, hd.index);
    let s = record(&mut h);
    let rc = s
        .receiver_chains
        .iter()
        .find(|c| c.sender_ratchet_key == ratchet)
        .unwrap()
        .chain_key
        .clone()
        .unwrap();
    let right = wire::addresses((CONFIDE_NAME, 1), (LIBSIGNAL_NAME, 1));
    let wrongs = [
        wire::addresses((LIBSIGNAL_NAME, 1), (CONFIDE_NAME, 1)),
        wire::addresses((CONFIDE_NAME, 1), (LIBSIGNAL_NAME, 3)),
    ];
    let forged = |a: Option<Vec<u8>>| {
        let b = forge_with(
            &ratchet,
            rc.index,
            &rc.key,
            Some((&pq, &key)),
            (&bi, &li),
            b"with addresses",
            a,
        );
        json!({"address": bob_addr, "type": 2, "ciphertext": hex::encode(b)})
    };
    for w in &wrongs {
        let r = h.alice.p.call("decrypt", forged(Some(w.clone())));
        assert_eq!(
            r["ok"],
            json!(false),
            "libsignal accepted addresses {}: {r}",
            hex::encode(w)
        );
    }
    let r = h.alice.p.call("decrypt", forged(Some(right)));
    assert_eq!(r["text"], json!("with addresses"), "{r}");
}
