//! Issue 16, group side: a sender-key distribution whose signing key is of small order
//! (so anyone, the server included, could sign that member's group messages) is refused
//! when it is processed, and the stored record stays as it was.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use confide::group::cipher as group;
use confide::group::{
    DistributionId, GroupProcessError, GroupSessions, Layout, SenderKeyDistributionMessage,
};
use confide::store::{InMemoryStore, SenderKeyStore};
use confide::{Address, KeyError};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// Little-endian u-coordinates of small-order Curve25519 points (orders 2/4 and 8);
/// `src/keys/xeddsa.rs` derives the list from the torsion points.
const SMALL_ORDER: [&str; 5] = [
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
];

fn alice() -> Address {
    Address::new("alice", 1)
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn field_u32(out: &mut Vec<u8>, number: u64, v: u32) {
    varint(out, number << 3);
    varint(out, u64::from(v));
}

fn field_bytes(out: &mut Vec<u8>, number: u64, b: &[u8]) {
    varint(out, (number << 3) | 2);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A distribution message as a peer (or the server) could send it: `0x33` ‖ protobuf,
/// field for field as `proto/group.proto` has them, with `key` as its signing key.
fn distribution_bytes(layout: Layout, id: DistributionId, chain_id: u32, key: [u8; 32]) -> Vec<u8> {
    let mut signing = vec![0x05];
    signing.extend_from_slice(&key);
    let mut out = vec![0x33];
    // The legacy layout has no uuid; its fields start one number lower.
    let first = match layout {
        Layout::Current => {
            field_bytes(&mut out, 1, id.as_bytes());
            2
        }
        _ => 1,
    };
    field_u32(&mut out, first, chain_id);
    field_u32(&mut out, first + 1, 0);
    field_bytes(&mut out, first + 2, &[0x42; 32]);
    field_bytes(&mut out, first + 3, &signing);
    out
}

fn small_order_keys() -> Vec<[u8; 32]> {
    SMALL_ORDER
        .iter()
        .map(|h| {
            let mut k = [0u8; 32];
            hex::decode_to_slice(h, &mut k).unwrap();
            k
        })
        .collect()
}

#[test]
fn small_order_signing_keys_are_refused_and_change_nothing() {
    let mut r = ChaCha20Rng::seed_from_u64(1600);
    let id = DistributionId::random(&mut r);
    for layout in [Layout::Current, Layout::Legacy] {
        let mut alice_keys = GroupSessions::new();
        let mut bob_keys = GroupSessions::new();
        let real = alice_keys.distribution(&alice(), id, layout, &mut r);
        bob_keys.process(&alice(), id, &real).unwrap();
        let before = bob_keys.record(&alice(), id).unwrap().to_bytes();
        for key in small_order_keys() {
            // Once under the real chain's id (which would replace it), once under a new one.
            for chain_id in [real.chain_id(), real.chain_id() ^ 1] {
                let bytes = distribution_bytes(layout, id, chain_id, key);
                let skdm = SenderKeyDistributionMessage::parse(&bytes, layout).unwrap();
                let result = bob_keys.process(&alice(), id, &skdm);
                assert_eq!(
                    result,
                    Err(GroupProcessError::WeakSigningKey),
                    "{layout:?} {key:02x?}"
                );
                assert_eq!(bob_keys.record(&alice(), id).unwrap().to_bytes(), before);
            }
        }
        // The real chain still reads the sender's messages.
        let m = alice_keys
            .encrypt(&alice(), id, b"still here", &mut r)
            .unwrap();
        assert_eq!(
            bob_keys.decrypt(&alice(), id, &m).unwrap().as_slice(),
            b"still here"
        );
    }
}

#[test]
fn the_store_keeps_its_record_when_a_small_order_key_arrives() {
    let mut r = ChaCha20Rng::seed_from_u64(1601);
    let id = DistributionId::random(&mut r);
    let alice_store = InMemoryStore::generate(&mut r);
    let bob_store = InMemoryStore::generate(&mut r);
    let real = group::distribution(&alice_store, &alice(), id, Layout::Current, &mut r).unwrap();
    group::process(&bob_store, &alice(), id, &real).unwrap();
    let before = bob_store
        .sender_key(&alice(), id)
        .unwrap()
        .unwrap()
        .to_bytes();
    for key in small_order_keys() {
        let bytes = distribution_bytes(Layout::Current, id, real.chain_id(), key);
        let skdm = SenderKeyDistributionMessage::try_from(&bytes[..]).unwrap();
        let result = group::process(&bob_store, &alice(), id, &skdm);
        assert!(
            matches!(
                result,
                Err(group::GroupKeyProcessError::Process(
                    GroupProcessError::WeakSigningKey
                ))
            ),
            "{key:02x?}: {result:?}"
        );
        let after = bob_store
            .sender_key(&alice(), id)
            .unwrap()
            .unwrap()
            .to_bytes();
        assert_eq!(after, before);
    }
    // A first distribution with such a key stores nothing at all.
    let other = DistributionId::random(&mut r);
    let bytes = distribution_bytes(Layout::Current, other, 9, small_order_keys()[3]);
    let skdm = SenderKeyDistributionMessage::try_from(&bytes[..]).unwrap();
    assert!(matches!(
        group::process(&bob_store, &alice(), other, &skdm),
        Err(group::GroupKeyProcessError::Process(
            GroupProcessError::WeakSigningKey
        ))
    ));
    assert!(bob_store.sender_key(&alice(), other).unwrap().is_none());
}

#[test]
fn non_canonical_signing_keys_do_not_parse() {
    let mut r = ChaCha20Rng::seed_from_u64(1602);
    let id = DistributionId::random(&mut r);
    // p (an alias of 0) and a real-looking key with bit 255 set.
    let mut p = [0xffu8; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    let mut high = [0x11u8; 32];
    high[31] |= 0x80;
    for key in [p, high] {
        let bytes = distribution_bytes(Layout::Current, id, 1, key);
        assert_eq!(
            SenderKeyDistributionMessage::try_from(&bytes[..]).map(|_| ()),
            Err(confide::group::GroupWireError::InvalidKey(
                KeyError::NonCanonical
            ))
        );
    }
}
