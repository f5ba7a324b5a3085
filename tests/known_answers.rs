//! Known answers from independent implementations, replayed without a peer process.
//!
//! `tests/vectors/*.json` were captured once by the scripts in `tests/vectors/capture/`,
//! each running another implementation from its package registry with fixed private keys.
//! With the same keys confide must read every captured message and, where it draws the
//! same keys in the same order, write the same bytes: a wrong derivation (a zeroed chain
//! key, a swapped IV, a wrong label) fails here in milliseconds, where before only the
//! interop runs against those implementations noticed it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;

use confide::keys::{
    KeyPair, PreKeyPublic, PreKeyRecord, PrivateKey, PublicKey, SignedPreKeyPublic,
    SignedPreKeyRecord,
};
use confide::session::Versions;
use confide::session::cipher;
use confide::store::{InMemoryStore, PreKeyStore, SignedPreKeyStore};
use confide::{Address, CiphertextMessage, IdentityKey, IdentityKeyPair, PreKeyBundle, Timestamp};
use rand_core::{CryptoRng, RngCore};
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
