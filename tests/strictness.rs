//! README "Stricter than its peers": one fast test per claim that no other fast test
//! pins exactly (no peer process, no Node). Each fails if the check it names is removed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Device, NOW, rng};
use confide::keys::{PreKeyPublic, PublicKey, SignedPreKeyPublic, SignedPreKeyRecord};
use confide::session::Versions;
use confide::session::cipher::{self, BundleSpec};
use confide::{
    BundleError, CiphertextMessage, DecryptError, IdentityKey, IdentityKeyPair, KeyError,
    PreKeyBundle, WireError,
};

// ---------------------------------------------------------------------------------------
// A minimal protobuf editor, to forge messages field by field.

#[derive(Clone, Debug)]
enum Val {
    Varint(u64),
    Bytes(Vec<u8>),
}

fn take_varint(b: &[u8], i: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let byte = b[*i];
        *i += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return v;
        }
        shift += 7;
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn fields(body: &[u8]) -> Vec<(u64, Val)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < body.len() {
        let tag = take_varint(body, &mut i);
        let val = match tag & 7 {
            0 => Val::Varint(take_varint(body, &mut i)),
            2 => {
                let n = take_varint(body, &mut i) as usize;
                i += n;
                Val::Bytes(body[i - n..i].to_vec())
            }
            w => panic!("wire type {w}"),
        };
        out.push((tag >> 3, val));
    }
    out
}

fn encode(fields: &[(u64, Val)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (n, v) in fields {
        match v {
            Val::Varint(x) => {
                put_varint(&mut out, n << 3);
                put_varint(&mut out, *x);
            }
            Val::Bytes(b) => {
                put_varint(&mut out, (n << 3) | 2);
                put_varint(&mut out, b.len() as u64);
                out.extend_from_slice(b);
            }
        }
    }
    out
}

/// A SignalMessage (`version ‖ protobuf ‖ MAC`) with its fields edited; the MAC is kept.
fn edit_signal(bytes: &[u8], edit: impl FnOnce(&mut Vec<(u64, Val)>)) -> Vec<u8> {
    let n = bytes.len();
    let mut f = fields(&bytes[1..n - 8]);
    edit(&mut f);
    [&[bytes[0]][..], &encode(&f), &bytes[n - 8..]].concat()
}

/// A PreKeySignalMessage (`version ‖ protobuf`) with its fields edited.
fn edit_prekey(bytes: &[u8], edit: impl FnOnce(&mut Vec<(u64, Val)>)) -> Vec<u8> {
    let mut f = fields(&bytes[1..]);
    edit(&mut f);
    [&[bytes[0]][..], &encode(&f)].concat()
}

fn set(f: &mut Vec<(u64, Val)>, n: u64, v: Val) {
    f.retain(|(m, _)| *m != n);
    f.push((n, v));
    f.sort_by_key(|(m, _)| *m);
}

fn get_bytes(f: &[(u64, Val)], n: u64) -> Vec<u8> {
    match f.iter().find(|(m, _)| *m == n) {
        Some((_, Val::Bytes(b))) => b.clone(),
        other => panic!("field {n}: {other:?}"),
    }
}

fn unhex32(h: &str) -> [u8; 32] {
    let mut k = [0u8; 32];
    hex::decode_to_slice(h, &mut k).unwrap();
    k
}

/// The low-order u-coordinates (canonical spellings): 0, 1, p − 1 and the two of order 8.
const LOW_ORDER: [&str; 5] = [
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
];

/// A v3 pair: Alice's first (prekey) message to Bob, decrypted, then Bob's reply and
/// Alice's next message in the established session (neither yet delivered).
struct V3 {
    alice: Device,
    bob: Device,
    prekey: Vec<u8>,
    signal: Vec<u8>,
}

fn v3_pair(seed: u64) -> V3 {
    let mut r = rng(seed);
    let alice = Device::new("alice", &mut r);
    let mut bob = Device::new("bob", &mut r);
    alice.start(&mut bob, &mut r, true);
    let first = alice.send(&bob, b"first");
    let signal = alice.send(&bob, b"second");
    assert_eq!(first.message_type(), 3);
    let prekey = first.serialized().to_vec();
    // Bob reads the first message later (each test decides); the second one is a
    // prekey message too until Alice hears back, so take its inner SignalMessage.
    let CiphertextMessage::PreKey(p) = signal else {
        panic!("prekey message")
    };
    V3 {
        alice,
        bob,
        prekey,
        signal: p.message().serialized().to_vec(),
    }
}

/// Alice's first v4 prekey message to Bob and the SignalMessage it carries.
fn v4_prekey(seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut r = rng(seed);
    let alice = Device::new("alice", &mut r);
    let bob = Device::new("bob", &mut r);
    let spec = BundleSpec::new(1, 5)
        .with_pre_key(Some(6))
        .with_kyber_pre_key(Some(7), true);
    let bundle = cipher::publish_bundle(&bob.store, &mut r, &spec, NOW).unwrap();
    cipher::start_session(
        &alice.store,
        &bob.address,
        &bundle,
        Versions::V4Only,
        &mut r,
        NOW,
    )
    .unwrap();
    let CiphertextMessage::PreKey(p) = alice.send(&bob, b"pq") else {
        panic!("prekey message")
    };
    assert_eq!(p.serialized()[0], 0x44);
    (p.serialized().to_vec(), p.message().serialized().to_vec())
}

fn parse(ty: u8, bytes: &[u8]) -> Result<CiphertextMessage, WireError> {
    CiphertextMessage::from_parts(ty, bytes)
}

// ---------------------------------------------------------------------------------------
// Claims 1 and 10: only 0x33 is v3 and only 0x44 is v4.

/// Every version byte but `0x33` and `0x44` is refused, on a SignalMessage, on a
/// PreKeySignalMessage and on the SignalMessage inside one (relabelled alone): in
/// particular 0x23, 0x32, 0x34, 0x3F (v3's nibbles half kept) and 0x45, 0x4F (a reader
/// of the high nibble only would take those as v4).
#[test]
fn relabelled_version_bytes_are_refused() {
    let v3 = v3_pair(1);
    let (v4_pre, v4_sig) = v4_prekey(2);
    for byte in 0..=255u8 {
        if byte == 0x33 || byte == 0x44 {
            continue;
        }
        let refused = Err(WireError::UnsupportedVersion { found: byte });
        for (ty, msg) in [(2, &v3.signal), (3, &v3.prekey), (2, &v4_sig), (3, &v4_pre)] {
            let mut b = msg.clone();
            b[0] = byte;
            assert_eq!(parse(ty, &b).map(|_| ()), refused, "type {ty} {byte:#04x}");
        }
        for pre in [&v3.prekey, &v4_pre] {
            let inner = edit_prekey(pre, |f| {
                let mut m = get_bytes(f, 4);
                m[0] = byte;
                set(f, 4, Val::Bytes(m));
            });
            assert!(
                matches!(parse(3, &inner), Err(WireError::UnsupportedVersion { .. })),
                "inner {byte:#04x}"
            );
        }
    }
    // The genuine bytes parse, and Bob still reads them.
    let mut r = rng(3);
    let first = parse(3, &v3.prekey).unwrap();
    let got = cipher::decrypt(
        &v3.bob.store,
        &v3.bob.address,
        &v3.alice.address,
        &first,
        &mut r,
        NOW,
    )
    .unwrap();
    assert_eq!(&got.plaintext[..], b"first");
    assert!(parse(2, &v4_sig).is_ok());
    assert!(parse(3, &v4_pre).is_ok());
}

// ---------------------------------------------------------------------------------------
// Claim 2: non-canonical key encodings.

/// Every u from p = 2^255 − 19 up to 2^255 − 1, and keys with bit 255 set (a real key's,
/// 0's, 9's), are refused as 33-byte and as bare keys, as identity keys, and in a
/// message's `base_key`, `identity_key` and `ratchet_key`.
#[test]
fn non_canonical_key_encodings_are_refused() {
    let mut r = rng(4);
    let real = *IdentityKeyPair::generate(&mut r)
        .identity_key()
        .public_key()
        .x25519_bytes();
    let mut bad = Vec::new();
    // p + k for k = 0..=18: 0xed + k in the low byte, 0xff…ff, 0x7f.
    for k in 0..=18u8 {
        let mut u = [0xffu8; 32];
        u[0] = 0xed + k;
        u[31] = 0x7f;
        bad.push(u);
    }
    let mut nine = [0u8; 32];
    nine[0] = 9;
    for mut u in [real, [0u8; 32], nine] {
        u[31] |= 0x80;
        bad.push(u);
    }
    // p − 1 is the last canonical u.
    let p_minus_1 = unhex32(LOW_ORDER[2]);
    assert!(PublicKey::try_from_x25519(p_minus_1).is_ok());
    assert!(PublicKey::try_from_x25519(real).is_ok());

    let v3 = v3_pair(5);
    for u in &bad {
        assert_eq!(
            PublicKey::try_from_x25519(*u),
            Err(KeyError::NonCanonical),
            "{u:02x?}"
        );
        let full = [&[0x05][..], &u[..]].concat();
        assert_eq!(
            PublicKey::try_from(&full[..]),
            Err(KeyError::NonCanonical),
            "{u:02x?}"
        );
        assert!(IdentityKey::try_from(&full[..]).is_err());
        for (field, name) in [(2, "base_key"), (3, "identity_key")] {
            let b = edit_prekey(&v3.prekey, |f| set(f, field, Val::Bytes(full.clone())));
            assert_eq!(
                parse(3, &b).map(|_| ()),
                Err(WireError::InvalidKey {
                    field: name,
                    source: KeyError::NonCanonical
                })
            );
        }
        let b = edit_signal(&v3.signal, |f| set(f, 1, Val::Bytes(full.clone())));
        assert_eq!(
            parse(2, &b).map(|_| ()),
            Err(WireError::InvalidKey {
                field: "ratchet_key",
                source: KeyError::NonCanonical
            })
        );
    }
}

// ---------------------------------------------------------------------------------------
// Claim 3: low-order keys in agreement.

/// A bundle whose signed prekey (correctly signed) or one-time prekey is one of the five
/// low-order points is refused by `start_session` with `WeakKey`, and nothing is stored.
#[test]
fn low_order_bundle_keys_are_refused_in_agreement() {
    let mut r = rng(6);
    let alice = Device::new("alice", &mut r);
    let bob = IdentityKeyPair::generate(&mut r);
    let bob_address = confide::Address::new("bob", 1);
    let signed = SignedPreKeyRecord::generate(&mut r, &bob, 1, NOW);
    let good = PreKeyBundle::new(7, 1, *bob.identity_key(), signed.public());
    for h in LOW_ORDER {
        let weak = PublicKey::try_from_x25519(unhex32(h)).unwrap();
        let signature = confide::hazmat::xeddsa_sign(bob.private_key(), &mut r, &weak.serialize());
        let weak_signed = PreKeyBundle::new(
            7,
            1,
            *bob.identity_key(),
            SignedPreKeyPublic {
                id: 1,
                key: weak,
                signature,
            },
        );
        assert!(weak_signed.has_valid_signature());
        let weak_one_time = good.clone().with_pre_key(PreKeyPublic { id: 2, key: weak });
        for bundle in [weak_signed, weak_one_time] {
            let got = cipher::start_session(
                &alice.store,
                &bob_address,
                &bundle,
                Versions::V3AndV4,
                &mut r,
                NOW,
            );
            assert!(matches!(got, Err(BundleError::WeakKey)), "{h}: {got:?}");
            use confide::store::SessionStore;
            assert!(alice.store.session(&bob_address).unwrap().is_none());
        }
    }
    cipher::start_session(
        &alice.store,
        &bob_address,
        &good,
        Versions::V3AndV4,
        &mut r,
        NOW,
    )
    .unwrap();
}

/// A prekey message whose base key is a low-order point is refused with `WeakKey`
/// (before the MAC is checked, which would give `InvalidMessage`) and changes nothing;
/// the genuine message still decrypts.
#[test]
fn low_order_message_keys_are_refused_in_agreement() {
    let v3 = v3_pair(7);
    let (alice, bob) = (&v3.alice, &v3.bob);
    let mut r = rng(8);
    let decrypt = |ty: u8, b: &[u8], r: &mut rand_chacha::ChaCha20Rng| {
        let m = parse(ty, b).map_err(DecryptError::from)?;
        cipher::decrypt(&bob.store, &bob.address, &alice.address, &m, r, NOW)
    };
    for h in LOW_ORDER {
        let weak = PublicKey::try_from_x25519(unhex32(h)).unwrap().serialize();
        let b = edit_prekey(&v3.prekey, |f| set(f, 2, Val::Bytes(weak.to_vec())));
        let before = bob.snapshot(alice);
        let got = decrypt(3, &b, &mut r);
        assert!(matches!(got, Err(DecryptError::WeakKey)), "{h}: {got:?}");
        assert_eq!(bob.snapshot(alice), before);
    }
    assert_eq!(
        &decrypt(3, &v3.prekey, &mut r).unwrap().plaintext[..],
        b"first"
    );
}

// ---------------------------------------------------------------------------------------
// Claim 5: non-canonical XEdDSA signatures.

/// ℓ = 2^252 + 27742317777372353535851937790883648493, little-endian.
const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// The signature with `s` written as `s + ℓ` (the sign bit in byte 63 kept).
fn s_plus_l(sig: &[u8; 64]) -> [u8; 64] {
    let mut out = *sig;
    let mut carry = 0u16;
    for i in 0..32 {
        let top = if i == 31 { 0x7f } else { 0xff };
        let sum = u16::from(sig[32 + i] & top) + u16::from(L[i]) + carry;
        out[32 + i] = sum as u8;
        carry = sum >> 8;
    }
    assert!(carry == 0 && out[63] & 0x80 == 0, "s + L fits in 255 bits");
    out[63] |= sig[63] & 0x80;
    out
}

/// A bundle whose signed-prekey signature has `s + ℓ` (same equation, second spelling)
/// is refused by `start_session` with `InvalidSignature`, and
/// `IdentityKey::verify_signature` returns false for it.
#[test]
fn a_bundle_signature_with_s_plus_l_is_refused() {
    let mut r = rng(9);
    let alice = Device::new("alice", &mut r);
    let bob_address = confide::Address::new("bob", 1);
    for round in 0..8u32 {
        let bob = IdentityKeyPair::generate(&mut r);
        let signed = SignedPreKeyRecord::generate(&mut r, &bob, round + 1, NOW);
        let good = PreKeyBundle::new(7, 1, *bob.identity_key(), signed.public());
        let key = good.signed_pre_key.key.serialize();
        let sig = good.signed_pre_key.signature;
        assert!(bob.identity_key().verify_signature(&key, &sig));
        let alias = s_plus_l(&sig);
        assert_ne!(alias, sig);
        assert!(!bob.identity_key().verify_signature(&key, &alias));
        let mut bad = good.clone();
        bad.signed_pre_key.signature = alias;
        assert!(!bad.has_valid_signature());
        let got = cipher::start_session(
            &alice.store,
            &bob_address,
            &bad,
            Versions::V3AndV4,
            &mut r,
            NOW,
        );
        assert!(matches!(got, Err(BundleError::InvalidSignature)), "{got:?}");
        use confide::store::SessionStore;
        assert!(alice.store.session(&bob_address).unwrap().is_none());
    }
}

// ---------------------------------------------------------------------------------------
// Claim 11: a v3 message carrying a v4 field is refused at parse time.

/// `pq_ratchet` or `addresses` in a v3 SignalMessage (alone or inside a prekey message),
/// or a Kyber id or ciphertext in a v3 PreKeySignalMessage, is `UnexpectedField`.
#[test]
fn v3_messages_with_v4_fields_are_refused_at_parse_time() {
    let v3 = v3_pair(10);
    let (v4_pre, _) = v4_prekey(11);
    let v4_fields = fields(&v4_pre[1..]);
    let kyber_id = v4_fields.iter().find(|(n, _)| *n == 7).unwrap().1.clone();
    let kyber_ct = get_bytes(&v4_fields, 8);
    let inner_v4 = get_bytes(&v4_fields, 4);
    let n = inner_v4.len();
    let inner_v4_fields = fields(&inner_v4[1..n - 8]);
    let pq = get_bytes(&inner_v4_fields, 5);
    assert!(!pq.is_empty());
    // `addresses` is sender ‖ device ‖ recipient ‖ device (17 + 1 + 17 + 1 bytes).
    let addresses = vec![0x42; 36];

    for (field, name, value) in [
        (5, "pq_ratchet", pq.clone()),
        (5, "pq_ratchet", vec![]),
        (6, "addresses", addresses.clone()),
    ] {
        let refused = Err(WireError::UnexpectedField { field: name });
        let sig = edit_signal(&v3.signal, |f| set(f, field, Val::Bytes(value.clone())));
        assert_eq!(parse(2, &sig).map(|_| ()), refused, "{name}");
        let pre = edit_prekey(&v3.prekey, |f| {
            let m = edit_signal(&get_bytes(f, 4), |g| set(g, field, Val::Bytes(value)));
            set(f, 4, Val::Bytes(m));
        });
        assert_eq!(parse(3, &pre).map(|_| ()), refused, "prekey {name}");
    }
    let with_id = edit_prekey(&v3.prekey, |f| set(f, 7, kyber_id.clone()));
    let with_ct = edit_prekey(&v3.prekey, |f| set(f, 8, Val::Bytes(kyber_ct.clone())));
    let with_both = edit_prekey(&v3.prekey, |f| {
        set(f, 7, kyber_id.clone());
        set(f, 8, Val::Bytes(kyber_ct.clone()));
    });
    for (b, name) in [
        (with_id, "kyber_pre_key_id"),
        (with_ct, "kyber_ciphertext"),
        (with_both, "kyber_pre_key_id"),
    ] {
        assert_eq!(
            parse(3, &b).map(|_| ()),
            Err(WireError::UnexpectedField { field: name })
        );
    }
    // The editor itself changes nothing when it edits nothing.
    assert_eq!(edit_signal(&v3.signal, |_| {}), v3.signal);
    assert_eq!(edit_prekey(&v3.prekey, |_| {}), v3.prekey);
    assert!(parse(2, &v3.signal).is_ok() && parse(3, &v3.prekey).is_ok());
}
