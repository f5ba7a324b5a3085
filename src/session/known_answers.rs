//! Known answers for the v3 derivations, captured once from npm `libsignal` 6.0.0 by
//! `tests/vectors/capture/v3_libsignal_node.js`: a wrong label, a swapped DH or a
//! zeroed key fails here, without a peer process.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;

use super::chain_key::ChainKey;
use super::message_keys::MessageKeys;
use super::root_key::RootKey;
use super::version::ProtocolVersion;
use super::x3dh::{ResponderKeys, responder_secrets};
use crate::keys::{IdentityKey, IdentityKeyPair, KeyPair, PrivateKey, PublicKey};

const V3: &str = include_str!("../../tests/vectors/v3_libsignal_node.json");

fn vectors() -> Value {
    serde_json::from_str(V3).unwrap()
}

fn bytes<const N: usize>(v: &Value) -> [u8; N] {
    hex::decode(v.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

fn private(v: &Value) -> PrivateKey {
    PrivateKey::from_bytes(bytes(v))
}

fn public(v: &Value) -> PublicKey {
    PublicKey::try_from(hex::decode(v.as_str().unwrap()).unwrap().as_slice()).unwrap()
}

#[test]
fn x3dh_matches_libsignal_node() {
    let v = vectors();
    let bob = &v["bob"];
    let identity = IdentityKeyPair::from_private(private(&bob["identity_private"]));
    let signed = KeyPair::from_private(private(&bob["signed_pre_key_private"]));
    let one_time = KeyPair::from_private(private(&bob["pre_key_private"]));
    let alice_identity = IdentityKey::new(public(&v["alice"]["identity_public"]));
    let alice_base = KeyPair::from_private(private(&v["alice"]["drawn_privates"][0])).public;
    let keys = ResponderKeys {
        identity: &identity,
        registration_id: 2222,
        signed_pre_key: &signed,
        one_time_pre_key: Some(&one_time),
        kyber_pre_key: None,
    };
    let s = responder_secrets(
        &keys,
        &alice_identity,
        &alice_base,
        ProtocolVersion::V3,
        None,
    )
    .unwrap();
    let want = &v["x3dh"][0];
    assert_eq!(s.root.as_bytes(), &bytes::<32>(&want["root_key"]));
    assert_eq!(s.chain.key(), &bytes::<32>(&want["chain_key"]));
    assert_eq!(s.chain.index(), 0);
    assert!(s.spqr_auth_key.is_none());
}

#[test]
fn root_steps_match_libsignal_node() {
    let v = vectors();
    let steps = v["ratchet_steps"].as_array().unwrap();
    assert!(steps.len() >= 3);
    for step in steps {
        let root = RootKey::new(bytes(&step["root_key"]));
        let (next, chain) = root
            .create_chain(
                &public(&step["their_public"]),
                &private(&step["our_private"]),
            )
            .unwrap();
        assert_eq!(next.as_bytes(), &bytes::<32>(&step["next_root_key"]));
        assert_eq!(chain.key(), &bytes::<32>(&step["chain_key"]));
        assert_eq!(chain.index(), 0);
    }
}

#[test]
fn chain_steps_match_libsignal_node() {
    let v = vectors();
    let steps = v["chain_steps"].as_array().unwrap();
    assert!(steps.len() >= 6);
    for (i, step) in steps.iter().enumerate() {
        let index = i as u32;
        let chain = ChainKey::new(bytes(&step["chain_key"]), index);
        let (seed, next) = chain.seed_and_next();
        assert_eq!(seed, bytes::<32>(&step["message_seed"]));
        let next = next.unwrap();
        assert_eq!(next.key(), &bytes::<32>(&step["next_chain_key"]));
        assert_eq!(next.index(), index + 1);
        // The same seed through `step` gives the message keys of the next test.
        let (keys, _) = chain.step(None);
        let direct = MessageKeys::derive(&seed, None);
        assert_eq!(keys.cipher_key(), direct.cipher_key());
        assert_eq!(keys.mac_key(), direct.mac_key());
        assert_eq!(keys.iv(), direct.iv());
    }
    assert!(ChainKey::new([7; 32], u32::MAX).seed_and_next().1.is_none());
}

#[test]
fn message_keys_match_libsignal_node() {
    let v = vectors();
    let rows = v["message_keys"].as_array().unwrap();
    assert!(rows.len() >= 6);
    for row in rows {
        let keys = MessageKeys::derive(&bytes(&row["seed"]), None);
        assert_eq!(keys.cipher_key(), &bytes::<32>(&row["cipher_key"]));
        assert_eq!(keys.mac_key(), &bytes::<32>(&row["mac_key"]));
        assert_eq!(keys.iv(), &bytes::<16>(&row["iv"]));
    }
}

/// Keys print as `***`, whatever they hold.
#[test]
fn keys_print_no_secret() {
    let v = vectors();
    let row = &v["message_keys"][0];
    let keys = MessageKeys::derive(&bytes(&row["seed"]), None);
    assert_eq!(format!("{keys:?}"), "MessageKeys(***)");
    let chain = ChainKey::new(bytes(&v["chain_steps"][0]["chain_key"]), 3);
    assert_eq!(format!("{chain:?}"), r#"ChainKey { key: "***", index: 3 }"#);
    let root = RootKey::new(bytes(&v["x3dh"][0]["root_key"]));
    let shown = format!("{root:?}");
    assert!(shown.contains("***"), "{shown}");
    assert!(!shown.contains(&v["x3dh"][0]["root_key"].as_str().unwrap()[..8]));
}
