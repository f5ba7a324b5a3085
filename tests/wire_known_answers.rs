//! Every field of the messages npm libsignal 6.0.0 wrote (`tests/vectors/
//! v3_libsignal_node.json`), as confide's parser reads them, and the parser's length
//! bounds at their edges.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use confide::keys::{PrivateKey, PublicKey};
use confide::session::ProtocolVersion;
use confide::{CiphertextMessage, IdentityKey, WireError};
use serde_json::Value;

fn vectors() -> Value {
    let path = format!(
        "{}/tests/vectors/v3_libsignal_node.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn public_of(v: &Value) -> PublicKey {
    PrivateKey::from_bytes(unhex(v).try_into().unwrap()).public_key()
}

fn public(v: &Value) -> PublicKey {
    PublicKey::try_from(unhex(v).as_slice()).unwrap()
}

#[test]
fn every_field_of_libsignal_node_messages() {
    let v = vectors();
    let a = &v["alice"];
    let b = &v["bob"];
    let msgs = v["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 6);
    let alice_ratchet_1 = public_of(&a["drawn_privates"][1]);
    let alice_ratchet_2 = public_of(&a["drawn_privates"][2]);
    let bob_ratchet_1 = public_of(&b["drawn_privates"][0]);
    // (from, type, counter, previous counter, ratchet key)
    let want = [
        ("alice", 3, 0, 0, &alice_ratchet_1),
        ("alice", 3, 1, 0, &alice_ratchet_1),
        ("alice", 3, 2, 0, &alice_ratchet_1),
        ("bob", 2, 0, 0, &bob_ratchet_1),
        ("bob", 2, 1, 0, &bob_ratchet_1),
        ("alice", 2, 0, 2, &alice_ratchet_2),
    ];
    for (m, (from, kind, counter, previous, ratchet)) in msgs.iter().zip(want) {
        assert_eq!(m["from"], from);
        let bytes = unhex(&m["serialized"]);
        let parsed = CiphertextMessage::from_parts(kind, &bytes).unwrap();
        assert_eq!(parsed.message_type(), kind);
        assert_eq!(parsed.serialized(), bytes.as_slice());
        let signal = match &parsed {
            CiphertextMessage::PreKey(p) => {
                assert_eq!(p.version(), ProtocolVersion::V3);
                assert_eq!(p.registration_id(), 1111);
                assert_eq!(p.pre_key_id(), Some(31));
                assert_eq!(p.signed_pre_key_id(), 7);
                assert_eq!(p.base_key(), &public_of(&a["drawn_privates"][0]));
                assert_eq!(
                    p.identity_key(),
                    &IdentityKey::new(public(&a["identity_public"]))
                );
                assert_eq!(p.kyber_pre_key_id(), None);
                assert!(p.kyber_ciphertext().is_none());
                p.message()
            }
            CiphertextMessage::Signal(s) => s,
            other => panic!("{other:?}"),
        };
        assert_eq!(signal.version(), ProtocolVersion::V3);
        assert_eq!(signal.counter(), counter, "{m}");
        assert_eq!(signal.previous_counter(), previous, "{m}");
        assert_eq!(signal.ratchet_key(), ratchet);
        assert!(signal.pq_ratchet().is_empty());
        assert!(signal.addresses().is_none());
        // AES-CBC of the plaintext: whole blocks, at least one more byte than the text.
        let text = unhex(&m["plaintext"]).len();
        assert_eq!(signal.ciphertext().len(), (text / 16 + 1) * 16);
    }
}

/// A whisper message is the version byte, a protobuf body and an 8-byte MAC: eight
/// bytes are too short, nine hold an empty body (no ratchet key).
#[test]
fn whisper_length_bounds() {
    for len in 0..=8 {
        let bytes = vec![0x33; len];
        match CiphertextMessage::from_parts(2, &bytes) {
            Err(WireError::TooShort { len: got }) => assert_eq!(got, len),
            other => panic!("{len} bytes gave {other:?}"),
        }
    }
    match CiphertextMessage::from_parts(2, &[0x33; 9]) {
        Err(WireError::MissingField { field }) => assert_eq!(field, "ratchet_key"),
        other => panic!("9 bytes gave {other:?}"),
    }
}
