//! Known answers from independent implementations, replayed without a peer process.
//!
//! `tests/vectors/*.json` were captured once by the scripts in `tests/vectors/capture/`,
//! each running another implementation from its package registry with fixed private keys
//! (where it lets a caller fix them; the keys it draws itself are recorded). With the same
//! keys confide must read every captured message and, where it draws the same keys in the
//! same order, write the same bytes: a wrong derivation (a zeroed chain
//! key, a swapped IV, a wrong label) fails here in milliseconds, where before only the
//! interop runs against those implementations noticed it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;

use confide::group::{
    DistributionId, GroupDecryptError, Layout, SenderKeyDistributionMessage, SenderKeyMessage,
    SenderKeyRecord,
};
use confide::hazmat;
use confide::keys::{
    KemKeyPair, KemSecretKey, KeyPair, KyberPreKeyRecord, PreKeyPublic, PreKeyRecord, PrivateKey,
    PublicKey, SignedPreKeyPublic, SignedPreKeyRecord,
};
use confide::sealed::{
    self, CertificateError, ContentType, MultiRecipientMessage, SealedOpenError, SenderCertificate,
    ServiceId, ServiceIdKind, TrustRoots,
};
use confide::session::Versions;
use confide::session::cipher;
use confide::store::{InMemoryStore, PreKeyStore, SessionStore, SignedPreKeyStore};
use confide::{
    Address, CiphertextMessage, DecryptError, IdentityKey, IdentityKeyPair, PreKeyBundle, Timestamp,
};
use prost::Message as _;
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};
use serde_json::Value;

const NOW: Timestamp = Timestamp::from_millis(1_700_000_000_000);

/// Hands out the scripted 32-byte private keys, in order, and nothing else: a draw of
/// any other size, or one too many, fails the test.
struct Scripted(VecDeque<[u8; 32]>);

impl Scripted {
    fn new(keys: &[Value]) -> Self {
        Self(keys.iter().map(bytes::<32>).collect())
    }
}

impl RngCore for Scripted {
    fn next_u32(&mut self) -> u32 {
        panic!("scripted rng: next_u32 drawn")
    }
    fn next_u64(&mut self) -> u64 {
        panic!("scripted rng: next_u64 drawn")
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        assert_eq!(
            dest.len(),
            32,
            "scripted rng: only 32-byte keys are scripted"
        );
        dest.copy_from_slice(&self.0.pop_front().expect("scripted rng: no key left"));
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for Scripted {}

fn vectors(name: &str) -> Value {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn bytes<const N: usize>(v: &Value) -> [u8; N] {
    unhex(v).try_into().unwrap()
}

fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn private(v: &Value) -> PrivateKey {
    PrivateKey::from_bytes(bytes(v))
}

fn public(v: &Value) -> PublicKey {
    PublicKey::try_from(unhex(v).as_slice()).unwrap()
}

/// libsignal-node numbers a whisper message 1, libsignal 2; prekey messages are 3.
fn message(m: &Value) -> CiphertextMessage {
    let kind = match m["type"].as_u64().unwrap() {
        1 => 2,
        3 => 3,
        t => panic!("message type {t}"),
    };
    CiphertextMessage::from_parts(kind, &unhex(&m["serialized"])).unwrap()
}

struct V3 {
    v: Value,
    alice: Address,
    bob: Address,
}

impl V3 {
    fn load() -> Self {
        Self {
            v: vectors("v3_libsignal_node.json"),
            alice: Address::new("alice", 1),
            bob: Address::new("bob", 1),
        }
    }

    fn messages(&self, from: &str) -> Vec<&Value> {
        let all = self.v["messages"].as_array().unwrap();
        all.iter().filter(|m| m["from"] == from).collect()
    }

    fn bob_store(&self) -> InMemoryStore {
        let b = &self.v["bob"];
        let store = InMemoryStore::new(
            IdentityKeyPair::from_private(private(&b["identity_private"])),
            2222,
        );
        let signed = KeyPair::from_private(private(&b["signed_pre_key_private"]));
        store
            .save_signed_pre_key(&SignedPreKeyRecord::new(
                7,
                NOW,
                signed,
                bytes(&b["signed_pre_key_signature"]),
            ))
            .unwrap();
        let one_time = KeyPair::from_private(private(&b["pre_key_private"]));
        store
            .save_pre_key(&PreKeyRecord::new(31, one_time))
            .unwrap();
        store
    }

    fn bob_bundle(&self) -> PreKeyBundle {
        let b = &self.v["bob"];
        PreKeyBundle::new(
            2222,
            1,
            IdentityKey::new(public(&b["identity_public"])),
            SignedPreKeyPublic {
                id: 7,
                key: public(&b["signed_pre_key_public"]),
                signature: bytes(&b["signed_pre_key_signature"]),
            },
        )
        .with_pre_key(PreKeyPublic {
            id: 31,
            key: public(&b["pre_key_public"]),
        })
    }
}

/// Bob's side: confide reads libsignal-node's prekey messages out of order, then its
/// first answer, drawn with libsignal-node's ratchet key, is libsignal-node's answer byte
/// for byte, and it reads Alice's message after her ratchet step.
#[test]
fn v3_bob_matches_libsignal_node_byte_for_byte() {
    let t = V3::load();
    let store = t.bob_store();
    let alice = t.messages("alice");
    let mut rng = Scripted::new(t.v["bob"]["drawn_privates"].as_array().unwrap());
    // Out of order, as libsignal-node's Bob read them.
    for i in [2usize, 0, 1] {
        let got =
            cipher::decrypt(&store, &t.bob, &t.alice, &message(alice[i]), &mut rng, NOW).unwrap();
        assert_eq!(&*got.plaintext, unhex(&alice[i]["plaintext"]).as_slice());
    }
    for m in t.messages("bob") {
        let out = cipher::encrypt(
            &store,
            &t.bob,
            &t.alice,
            &unhex(&m["plaintext"]),
            &mut rng,
            NOW,
        )
        .unwrap();
        assert_eq!(out.message_type(), 2);
        assert_eq!(
            hex::encode(out.serialized()),
            m["serialized"].as_str().unwrap()
        );
    }
    assert!(rng.0.is_empty());
    // Reading Alice's new ratchet key starts Bob's next sending chain: a key of his own
    // (the capture stopped before libsignal-node's Bob drew one).
    rng.0.push_back([0x42; 32]);
    let last = alice[3];
    let got = cipher::decrypt(&store, &t.bob, &t.alice, &message(last), &mut rng, NOW).unwrap();
    assert_eq!(&*got.plaintext, unhex(&last["plaintext"]).as_slice());
    assert!(rng.0.is_empty());
}

/// Alice's side: with libsignal-node's base and ratchet keys, confide's prekey messages
/// are libsignal-node's byte for byte, it reads Bob's answers, and its message after the
/// ratchet step is the same bytes too.
#[test]
fn v3_alice_matches_libsignal_node_byte_for_byte() {
    let t = V3::load();
    let a = &t.v["alice"];
    let store = InMemoryStore::new(
        IdentityKeyPair::from_private(private(&a["identity_private"])),
        1111,
    );
    let mut rng = Scripted::new(a["drawn_privates"].as_array().unwrap());
    cipher::start_session(
        &store,
        &t.bob,
        &t.bob_bundle(),
        Versions::V3Only,
        &mut rng,
        NOW,
    )
    .unwrap();
    let alice = t.messages("alice");
    for m in &alice[..3] {
        let out = cipher::encrypt(
            &store,
            &t.alice,
            &t.bob,
            &unhex(&m["plaintext"]),
            &mut rng,
            NOW,
        )
        .unwrap();
        assert_eq!(out.message_type(), 3);
        assert_eq!(
            hex::encode(out.serialized()),
            m["serialized"].as_str().unwrap()
        );
    }
    for m in t.messages("bob") {
        let got = cipher::decrypt(&store, &t.alice, &t.bob, &message(m), &mut rng, NOW).unwrap();
        assert_eq!(&*got.plaintext, unhex(&m["plaintext"]).as_slice());
    }
    let last = alice[3];
    let out = cipher::encrypt(
        &store,
        &t.alice,
        &t.bob,
        &unhex(&last["plaintext"]),
        &mut rng,
        NOW,
    )
    .unwrap();
    assert_eq!(
        hex::encode(out.serialized()),
        last["serialized"].as_str().unwrap()
    );
    assert!(rng.0.is_empty());
}

// ---------------------------------------------------------------------------------------
// The official libsignal client (npm @signalapp/libsignal-client 0.103.0), captured by
// tests/vectors/capture/official_libsignal_client.js: sender keys, sealed sender v1 and
// v2, and PQXDH (v4, with SPQR). Its signatures, ephemeral keys, base key and Kyber
// encapsulation are its own randomness, which no API of it lets a caller script, so
// confide reads these messages but cannot write them again byte for byte.
// ---------------------------------------------------------------------------------------

/// libsignal's storage format for a Kyber prekey (its `SignedPreKeyRecordStructure`),
/// declared here by hand: the fields a Kyber prekey record carries.
#[derive(Clone, PartialEq, prost::Message)]
struct LibsignalKyberRecord {
    #[prost(uint32, tag = "1")]
    id: u32,
    #[prost(bytes = "vec", tag = "2")]
    public_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    private_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    signature: Vec<u8>,
    #[prost(fixed64, tag = "5")]
    timestamp: u64,
}

/// `bytes` with bit 0 of byte `at` flipped.
fn flipped(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[at] ^= 0x01;
    out
}

/// Where the last MAC byte of a prekey message's inner SignalMessage is.
fn inner_mac_at(prekey: &[u8]) -> usize {
    let CiphertextMessage::PreKey(pk) = CiphertextMessage::from_parts(3, prekey).unwrap() else {
        panic!("a prekey message")
    };
    let inner = pk.message().serialized();
    let start = prekey
        .windows(inner.len())
        .position(|w| w == inner)
        .unwrap();
    start + inner.len() - 1
}

fn u32_of(v: &Value) -> u32 {
    u32::try_from(v.as_u64().unwrap()).unwrap()
}

struct Official {
    v: Value,
    alice: Address,
    bob: Address,
}

impl Official {
    fn load() -> Self {
        let v = vectors("official_libsignal_client.json");
        let alice = Address::new(v["alice"]["name"].as_str().unwrap(), 1);
        let bob = Address::new(v["bob"]["name"].as_str().unwrap(), 1);
        Self { v, alice, bob }
    }

    fn bob_identity(&self) -> IdentityKeyPair {
        let id = IdentityKeyPair::from_private(private(&self.v["bob"]["identity_private"]));
        assert_eq!(
            hex::encode(id.identity_key().serialize()),
            self.v["bob"]["identity_public"].as_str().unwrap()
        );
        id
    }

    fn alice_identity(&self) -> IdentityKey {
        IdentityKey::new(public(&self.v["alice"]["identity_public"]))
    }

    fn signed_pre_key(&self) -> KeyPair {
        let pair = KeyPair::from_private(private(&self.v["bob"]["signed_pre_key_private"]));
        assert_eq!(
            pair.public(),
            public(&self.v["bob"]["signed_pre_key_public"])
        );
        pair
    }

    fn one_time_pre_key(&self) -> KeyPair {
        let pair = KeyPair::from_private(private(&self.v["bob"]["pre_key_private"]));
        assert_eq!(pair.public(), public(&self.v["bob"]["pre_key_public"]));
        pair
    }

    /// Bob's Kyber prekey, imported from the record as libsignal serialized it: its
    /// secret key (which embeds the public key) becomes confide's record, signed again
    /// by Bob's identity (the signature only matters in a bundle, which Bob never reads).
    fn kyber_pre_key(&self) -> KyberPreKeyRecord {
        let b = &self.v["bob"];
        let theirs = LibsignalKyberRecord::decode(&unhex(&b["kyber_pre_key_record"])[..]).unwrap();
        assert_eq!(theirs.id, u32_of(&b["kyber_pre_key_id"]));
        assert_eq!(
            theirs.timestamp,
            b["kyber_pre_key_timestamp"].as_u64().unwrap()
        );
        assert_eq!(theirs.private_key, unhex(&b["kyber_secret_key"]));
        assert_eq!(theirs.public_key, unhex(&b["kyber_public_key"]));
        assert_eq!(theirs.signature, unhex(&b["kyber_signature"]));
        let pair = KemKeyPair::from_secret(KemSecretKey::from_bytes(&theirs.private_key).unwrap())
            .unwrap();
        assert_eq!(pair.public.serialize(), theirs.public_key);
        // libsignal's XEdDSA signature over it verifies under Bob's identity.
        let bob = self.bob_identity();
        assert!(
            bob.identity_key()
                .verify_signature(&theirs.public_key, &theirs.signature)
        );
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        KyberPreKeyRecord::from_key_pair(
            &mut rng,
            &bob,
            theirs.id,
            pair,
            Timestamp::from_millis(theirs.timestamp),
        )
    }

    /// Bob's store: his fixed identity and prekeys, the Kyber prekey one-time.
    fn bob_store(&self) -> InMemoryStore {
        let b = &self.v["bob"];
        let store = InMemoryStore::new(self.bob_identity(), u32_of(&b["registration_id"]));
        let signature = bytes(&b["signed_pre_key_signature"]);
        assert!(
            self.bob_identity()
                .identity_key()
                .verify_signature(&self.signed_pre_key().public().serialize(), &signature)
        );
        store
            .save_signed_pre_key(&SignedPreKeyRecord::new(
                u32_of(&b["signed_pre_key_id"]),
                Timestamp::from_millis(b["signed_pre_key_timestamp"].as_u64().unwrap()),
                self.signed_pre_key(),
                signature,
            ))
            .unwrap();
        store
            .save_pre_key(&PreKeyRecord::new(
                u32_of(&b["pre_key_id"]),
                self.one_time_pre_key(),
            ))
            .unwrap();
        let kyber = self.kyber_pre_key();
        store
            .kyber_pre_keys()
            .unwrap()
            .save_kyber_pre_key(kyber.id(), &kyber.to_bytes(), false)
            .unwrap();
        store
    }

    fn distribution_id(&self) -> DistributionId {
        self.v["group"]["distribution_id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// A receiver's record of Alice's chain, from libsignal's distribution message.
    fn group_record(&self) -> SenderKeyRecord {
        let g = &self.v["group"];
        let skdm =
            SenderKeyDistributionMessage::parse(&unhex(&g["skdm"]), Layout::Current).unwrap();
        assert_eq!(skdm.layout(), Layout::Current);
        assert_eq!(skdm.distribution_id(), Some(self.distribution_id()));
        assert_eq!(skdm.chain_id(), u32_of(&g["chain_id"]));
        assert_eq!(skdm.iteration(), u32_of(&g["iteration"]));
        assert_eq!(skdm.serialized(), unhex(&g["skdm"]).as_slice());
        let mut record = SenderKeyRecord::new(self.distribution_id(), Layout::Current);
        record.process(&skdm).unwrap();
        assert!(!record.can_send(), "a receiver's record has no signing key");
        record
    }

    fn session_bytes(&self, store: &InMemoryStore) -> Option<Vec<u8>> {
        store
            .session(&self.alice)
            .unwrap()
            .map(|r| r.to_bytes().to_vec())
    }

    fn decrypt_v4(&self, store: &InMemoryStore, bytes: &[u8]) -> Result<Vec<u8>, DecryptError> {
        let m = CiphertextMessage::from_parts(3, bytes).map_err(DecryptError::Wire)?;
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        cipher::decrypt(store, &self.bob, &self.alice, &m, &mut rng, NOW)
            .map(|d| d.plaintext.to_vec())
    }
}

/// Sender keys: confide reads libsignal's distribution message (chain id, iteration,
/// distribution id as libsignal's getters gave them) and every group message, out of
/// order (iterations 40, 0, 5, 2, 1: forward jumps and skipped keys), refuses replays,
/// and refuses a message with one bit flipped as `InvalidMessage`, the record
/// unchanged.
#[test]
fn official_sender_keys_read_out_of_order() {
    let t = Official::load();
    let mut record = t.group_record();
    let messages = t.v["group"]["messages"].as_array().unwrap();
    let by_iteration = |i: u64| messages.iter().find(|m| m["iteration"] == i).unwrap();
    let parse = |m: &Value| {
        let msg = SenderKeyMessage::parse(&unhex(&m["serialized"]), Layout::Current).unwrap();
        assert_eq!(msg.iteration(), u32_of(&m["iteration"]));
        assert_eq!(msg.chain_id(), u32_of(&m["chain_id"]));
        assert_eq!(msg.distribution_id(), Some(t.distribution_id()));
        msg
    };

    // One bit flipped in the last ciphertext byte (before the 64-byte signature).
    let last = unhex(&by_iteration(40)["serialized"]);
    let bad = SenderKeyMessage::parse(&flipped(&last, last.len() - 65), Layout::Current).unwrap();
    let before = record.to_bytes();
    assert_eq!(
        record.decrypt(&bad).unwrap_err(),
        GroupDecryptError::InvalidMessage
    );
    assert_eq!(
        *record.to_bytes(),
        *before,
        "a refused message changes nothing"
    );

    for i in [40u64, 0, 5, 2, 1] {
        let m = by_iteration(i);
        let got = record.decrypt(&parse(m)).unwrap();
        assert_eq!(
            got.as_slice(),
            unhex(&m["plaintext"]).as_slice(),
            "iteration {i}"
        );
    }
    for i in [0u64, 40] {
        let before = record.to_bytes();
        assert!(matches!(
            record.decrypt(&parse(by_iteration(i))),
            Err(GroupDecryptError::DuplicateMessage { iteration }) if u64::from(iteration) == i
        ));
        assert_eq!(*record.to_bytes(), *before);
    }
    // libsignal has one layout: its distribution message is no legacy one.
    assert!(
        SenderKeyDistributionMessage::parse(&unhex(&t.v["group"]["skdm"]), Layout::Legacy).is_err()
    );
}

/// Sealed sender v1 and v2: confide opens libsignal's envelopes with Bob's fixed
/// identity, validates the certificate chain under the fixed trust root at a time
/// before expiry, and sees Alice (uuid, phone number, device, identity key, expiry,
/// server key id) and the inner content (type, hint, group id, bytes) libsignal sealed;
/// the inner group and 1:1 messages then decrypt to their plaintexts. confide's split
/// of libsignal's multi-recipient message is libsignal's split byte for byte. An
/// expired certificate, a wrong trust root and one flipped bit are typed errors.
#[test]
fn official_sealed_sender_v1_and_v2_open_and_validate() {
    let t = Official::load();
    let s = &t.v["sealed"];
    let bob = t.bob_identity();
    let root = KeyPair::from_private(private(&s["trust_root_private"]));
    assert_eq!(root.public(), public(&s["trust_root_public"]));
    let trust = TrustRoots::new(root.public());
    let expiration = Timestamp::from_millis(s["expiration"].as_u64().unwrap());
    assert!(NOW < expiration);
    let cert = SenderCertificate::try_from(unhex(&s["sender_certificate"]).as_slice()).unwrap();
    cert.validate(&trust, NOW).unwrap();
    assert_eq!(
        cert.signer().serialized(),
        unhex(&s["server_certificate"]).as_slice()
    );

    let mut group = t.group_record();
    let messages = s["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3);
    for m in messages {
        let label = m["label"].as_str().unwrap();
        let sealed_bytes = unhex(&m["serialized"]);
        let opened = sealed::open(&sealed_bytes, &bob, &trust, NOW)
            .unwrap_or_else(|e| panic!("{label}: {e:?}"));
        assert_eq!(opened.sender(), &cert, "{label}");
        let info = opened.sender().sender();
        assert_eq!(info.uuid, s["sender_uuid"].as_str().unwrap());
        assert_eq!(info.e164.as_deref(), s["sender_e164"].as_str());
        assert_eq!(info.device_id, u32_of(&s["sender_device_id"]));
        assert_eq!(info.identity_key, t.alice_identity());
        assert_eq!(info.expiration, expiration);
        assert_eq!(
            opened.sender().signer().key_id(),
            u32_of(&s["server_key_id"])
        );
        assert_eq!(*opened.sender().signer().key(), public(&s["server_public"]));
        assert_eq!(
            u64::from(opened.content_type().message_type()),
            m["content_type"].as_u64().unwrap(),
            "{label}"
        );
        assert_eq!(
            u64::from(opened.content_hint().to_u32()),
            m["content_hint"].as_u64().unwrap()
        );
        let group_id = m["group_id"].as_str().map(|g| hex::decode(g).unwrap());
        assert_eq!(opened.group_id(), group_id.as_deref(), "{label}");
        assert_eq!(
            opened.contents(),
            unhex(&m["contents"]).as_slice(),
            "{label}"
        );

        // The inner message reads as the sender's.
        let plaintext = match opened.content_type() {
            ContentType::SenderKey => {
                let inner = SenderKeyMessage::parse(opened.contents(), Layout::Current).unwrap();
                assert_eq!(inner.iteration(), u32_of(&m["iteration"]));
                group.decrypt(&inner).unwrap().to_vec()
            }
            ContentType::PreKey => t.decrypt_v4(&t.bob_store(), opened.contents()).unwrap(),
            other => panic!("{label}: {other:?}"),
        };
        assert_eq!(plaintext, unhex(&m["plaintext"]), "{label}");

        // Validation: the time is an argument, the root must be the one.
        let late = Timestamp::from_millis(expiration.as_millis() + 1);
        assert!(matches!(
            sealed::open(&sealed_bytes, &bob, &trust, late),
            Err(SealedOpenError::Certificate(
                CertificateError::Expired { .. }
            ))
        ));
        let stranger = TrustRoots::new(public(&s["server_public"]));
        assert!(matches!(
            sealed::open(&sealed_bytes, &bob, &stranger, NOW),
            Err(SealedOpenError::Certificate(
                CertificateError::UntrustedServer
            ))
        ));
        let not_bob = IdentityKeyPair::from_private(private(&t.v["alice"]["identity_private"]));
        assert!(matches!(
            sealed::open(&sealed_bytes, &not_bob, &trust, NOW),
            Err(SealedOpenError::InvalidMessage)
        ));
        // One bit flipped anywhere past the version byte: a typed refusal.
        for at in [1, sealed_bytes.len() / 2, sealed_bytes.len() - 1] {
            let r = sealed::open(&flipped(&sealed_bytes, at), &bob, &trust, NOW);
            assert!(
                matches!(
                    r,
                    Err(SealedOpenError::InvalidMessage | SealedOpenError::Wire(_))
                ),
                "{label}, bit flipped at {at}: {r:?}"
            );
        }

        // v2: confide's server-side split is libsignal's.
        if m["version"] == 2 {
            assert_eq!(sealed_bytes[0], sealed::V2_VERSION_BYTE);
            let multi = MultiRecipientMessage::try_from(unhex(&m["multi"]).as_slice()).unwrap();
            let uuid: DistributionId = t.bob.name().parse().unwrap();
            let bob_id = ServiceId::new(ServiceIdKind::Aci, *uuid.as_bytes());
            assert_eq!(multi.recipients().len(), 1);
            assert_eq!(multi.recipients()[0].service_id, bob_id);
            assert_eq!(multi.recipients()[0].devices, vec![(1, 2222)]);
            assert_eq!(multi.for_recipient(&bob_id).unwrap(), sealed_bytes);
        } else {
            assert_eq!(sealed_bytes[0], sealed::V1_VERSION_BYTE);
        }
    }
}

/// PQXDH (v4, SPQR): confide's responder derivation (`hazmat::pqxdh_responder_secrets`)
/// from Bob's fixed keys and the Kyber prekey libsignal drew gives the chain key and
/// SPQR auth key libsignal's Alice holds; confide's Bob then reads Alice's prekey
/// messages out of order (5 first, so the session starts from a later counter and skips
/// 3 and 4 for good), consuming the one-time EC and Kyber prekeys. One flipped bit is
/// `InvalidMessage` before the session exists (nothing stored, no prekey consumed) and
/// after (the session unchanged); a replay is a duplicate, the session unchanged.
#[test]
fn official_pqxdh_v4_prekey_messages_read_as_bob() {
    let t = Official::load();
    let b = &t.v["bob"];
    let p = &t.v["v4"]["pqxdh"];
    let messages = t.v["v4"]["messages"].as_array().unwrap();
    let by_index = |i: u64| messages.iter().find(|m| m["index"] == i).unwrap();
    let first = unhex(&by_index(0)["serialized"]);
    assert_eq!(first[0], 0x44, "a v4 message");

    // The message's fields, and confide's PQXDH against libsignal's.
    let CiphertextMessage::PreKey(pk) = CiphertextMessage::from_parts(3, &first).unwrap() else {
        panic!("a prekey message")
    };
    assert_eq!(
        pk.registration_id(),
        u32_of(&t.v["alice"]["registration_id"])
    );
    assert_eq!(pk.signed_pre_key_id(), u32_of(&b["signed_pre_key_id"]));
    assert_eq!(pk.pre_key_id(), Some(u32_of(&b["pre_key_id"])));
    assert_eq!(pk.kyber_pre_key_id(), Some(u32_of(&b["kyber_pre_key_id"])));
    assert_eq!(*pk.identity_key(), t.alice_identity());
    assert_eq!(*pk.base_key(), public(&p["alice_base_key"]));
    assert_eq!(p["session_version"], 4);
    assert_eq!(p["receiver_chain_index"], 0);
    assert_eq!(
        public(&p["receiver_chain_ratchet_key"]),
        t.signed_pre_key().public()
    );
    let secrets = hazmat::pqxdh_responder_secrets(
        &t.bob_identity(),
        &t.signed_pre_key(),
        Some(&t.one_time_pre_key()),
        &t.kyber_pre_key(),
        pk.identity_key(),
        pk.base_key(),
        pk.kyber_ciphertext().unwrap(),
    )
    .unwrap();
    assert_eq!(
        hex::encode(secrets.chain_key),
        p["chain_key"].as_str().unwrap()
    );
    assert_eq!(
        hex::encode(secrets.spqr_auth_key),
        p["spqr_auth_key"].as_str().unwrap()
    );

    let store = t.bob_store();
    let opk_id = u32_of(&b["pre_key_id"]);
    let kyber_id = u32_of(&b["kyber_pre_key_id"]);
    let has_prekeys = |store: &InMemoryStore| {
        (
            store.pre_key(opk_id).unwrap().is_some(),
            store
                .kyber_pre_keys()
                .unwrap()
                .kyber_pre_key(kyber_id)
                .unwrap()
                .is_some(),
        )
    };

    // Tampered before any session (the base key, the inner message's MAC, the Kyber
    // ciphertext): refused, nothing stored, nothing consumed.
    let fifth = unhex(&by_index(5)["serialized"]);
    for at in [5, 10, inner_mac_at(&fifth), fifth.len() - 1] {
        let r = t.decrypt_v4(&store, &flipped(&fifth, at));
        // Byte 5 is the base key's type byte, 0x05: a parse error. Byte 10 is in the
        // base key: a point outside the prime-order subgroup.
        let typed = match at {
            5 => matches!(r, Err(DecryptError::Wire(_))),
            10 => matches!(r, Err(DecryptError::WeakKey)),
            _ => matches!(r, Err(DecryptError::InvalidMessage)),
        };
        assert!(typed, "bit flipped at {at}: {r:?}");
        assert_eq!(t.session_bytes(&store), None);
        assert_eq!(has_prekeys(&store), (true, true));
    }

    let read = |i: u64| {
        let m = by_index(i);
        let got = t.decrypt_v4(&store, &unhex(&m["serialized"])).unwrap();
        assert_eq!(got, unhex(&m["plaintext"]), "message {i}");
    };
    read(5);
    assert_eq!(
        has_prekeys(&store),
        (false, false),
        "one-time prekeys consumed"
    );
    read(0);

    // Tampered with the session in place: refused, the session as it was.
    let second = unhex(&by_index(2)["serialized"]);
    let before = t.session_bytes(&store);
    let r = t.decrypt_v4(&store, &flipped(&second, inner_mac_at(&second)));
    assert!(matches!(r, Err(DecryptError::InvalidMessage)), "{r:?}");
    assert_eq!(t.session_bytes(&store), before);

    read(2);
    read(1);
    let before = t.session_bytes(&store);
    assert!(matches!(
        t.decrypt_v4(&store, &first),
        Err(DecryptError::DuplicateMessage { counter: 0 })
    ));
    assert_eq!(t.session_bytes(&store), before);
    let record = store.session(&t.alice).unwrap().unwrap();
    assert_eq!(
        record.current().unwrap().protocol_version(),
        confide::session::ProtocolVersion::V4
    );
}
