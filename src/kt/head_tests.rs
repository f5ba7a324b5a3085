//! Signed heads: Plexi's test vector, the round trip, and every refusal.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::Timestamp;

fn unhex<const N: usize>(s: &str) -> [u8; N] {
    hex::decode(s).unwrap().try_into().unwrap()
}

fn vrf() -> VrfPublicKey {
    // Any curve point will do: heads do not involve the VRF.
    VrfPublicKey::from_bytes(
        &AuditorSigningKey::from_seed([9; 32])
            .public_key()
            .to_bytes(),
    )
    .unwrap()
}

const T: Timestamp = Timestamp::from_millis(1_800_000_000_000);

fn setup() -> (AuditorSigningKey, DirectoryTrust) {
    let key = AuditorSigningKey::from_seed([3; 32]);
    let trust = DirectoryTrust::new(vrf(), vec![key.public_key()], "ns");
    (key, trust)
}

/// cloudflare/plexi `plexi_core/tests/test-vectors.json` (Apache-2.0), the vector in the
/// protobuf+Ed25519 ciphersuite: our signed bytes and signature are Plexi's.
#[test]
fn plexi_test_vector_signs_and_verifies_byte_for_byte() {
    let key = AuditorSigningKey::from_seed(unhex(
        "d6af1bca3db4fc2766b0c483706c20bf4837a46d54c1d39c2a34a9088572d712",
    ));
    assert_eq!(
        key.public_key().to_bytes(),
        unhex::<32>("606a878700158d92b3a14a0fd37ec82e0f05f92fcf23146abfda2e3a2f10a9bc")
    );
    let at = Timestamp::from_millis(1_717_084_639_921);
    let head = key.sign("log1.example.com", at, 1, [0x11; 32]);
    let expected: [u8; 64] = unhex(
        "769d1ae73792dd8da1515793ba29f2f33f2fca84ba7386f9a01d8272e67c4379\
         bdcfd91ea4fa49eafd8f243ac36fe3a7aae90ae92f1729c3c468ddf4e6d2a309",
    );
    assert_eq!(head.signature(), Some(expected));
    let trust = DirectoryTrust::new(vrf(), vec![key.public_key()], "log1.example.com");
    head.verify(&trust, at).unwrap();
    // A head built from the parts and Plexi's signature verifies too.
    let rebuilt =
        SignedHead::unsigned("log1.example.com", at, 1, [0x11; 32]).with_signature(expected);
    rebuilt.verify(&trust, at).unwrap();
}

#[test]
fn public_key_derivation_matches_aws_lc() {
    for seed in [[0u8; 32], [3; 32], [0xff; 32]] {
        assert_eq!(
            Some(AuditorSigningKey::from_seed(seed).public_key().to_bytes()),
            crate::crypto::ed25519_public_key(&seed)
        );
    }
}

#[test]
fn bytes_round_trip_signed_and_unsigned() {
    let (key, _) = setup();
    let signed = key.sign("ns", T, 0, [0; 32]);
    assert_eq!(SignedHead::from_bytes(&signed.to_bytes()).unwrap(), signed);
    let unsigned = SignedHead::unsigned("ns", T, u64::MAX, [0xab; 32]);
    let back = SignedHead::from_bytes(&unsigned.to_bytes()).unwrap();
    assert_eq!(back, unsigned);
    assert_eq!(back.signature(), None);
    assert_eq!(
        (
            back.namespace(),
            back.timestamp(),
            back.epoch(),
            back.root()
        ),
        ("ns", T, u64::MAX, [0xab; 32])
    );
}

#[test]
fn malformed_bytes_are_refused() {
    use prost::Message;
    let (key, _) = setup();
    let good = key.sign("ns", T, 1, [1; 32]);
    let mut p = crate::proto::kt::SignedHead::decode(good.to_bytes().as_slice()).unwrap();
    assert_eq!(
        SignedHead::from_bytes(&[0xff, 0xff]),
        Err(HeadError::Malformed)
    );
    let mut bad = p.clone();
    bad.format_version = 2;
    assert_eq!(
        SignedHead::from_bytes(&bad.encode_to_vec()),
        Err(HeadError::Malformed)
    );
    let mut bad = p.clone();
    bad.signature.pop();
    assert_eq!(
        SignedHead::from_bytes(&bad.encode_to_vec()),
        Err(HeadError::Malformed)
    );
    let mut bad = p.clone();
    bad.message = None;
    assert_eq!(
        SignedHead::from_bytes(&bad.encode_to_vec()),
        Err(HeadError::Malformed)
    );
    if let Some(m) = p.message.as_mut() {
        m.digest.push(0);
    }
    assert_eq!(
        SignedHead::from_bytes(&p.encode_to_vec()),
        Err(HeadError::Malformed)
    );
}

#[test]
fn an_unsigned_head_is_refused() {
    let (_, trust) = setup();
    let head = SignedHead::unsigned("ns", T, 1, [1; 32]);
    assert_eq!(head.verify(&trust, T), Err(HeadError::Unsigned));
}

#[test]
fn a_head_signed_by_another_key_or_changed_after_signing_is_refused() {
    let (key, trust) = setup();
    let other = AuditorSigningKey::from_seed([4; 32]);
    assert_eq!(
        other.sign("ns", T, 1, [1; 32]).verify(&trust, T),
        Err(HeadError::BadSignature)
    );
    let sig = key.sign("ns", T, 1, [1; 32]).signature().unwrap();
    for changed in [
        SignedHead::unsigned("ns", T, 2, [1; 32]),
        SignedHead::unsigned("ns", T, 1, [2; 32]),
        SignedHead::unsigned("ns", Timestamp::from_millis(T.as_millis() - 1), 1, [1; 32]),
    ] {
        assert_eq!(
            changed.with_signature(sig).verify(&trust, T),
            Err(HeadError::BadSignature)
        );
    }
    let mut flipped = sig;
    flipped[10] ^= 1;
    assert_eq!(
        SignedHead::unsigned("ns", T, 1, [1; 32])
            .with_signature(flipped)
            .verify(&trust, T),
        Err(HeadError::BadSignature)
    );
    // No auditors trusted: nothing verifies.
    let mut none = trust.clone();
    none.auditors.clear();
    assert_eq!(
        key.sign("ns", T, 1, [1; 32]).verify(&none, T),
        Err(HeadError::BadSignature)
    );
}

#[test]
fn any_one_trusted_auditor_suffices() {
    let (key, mut trust) = setup();
    let other = AuditorSigningKey::from_seed([4; 32]);
    trust.auditors.insert(0, other.public_key());
    key.sign("ns", T, 1, [1; 32]).verify(&trust, T).unwrap();
    other.sign("ns", T, 1, [1; 32]).verify(&trust, T).unwrap();
}

#[test]
fn a_head_for_another_namespace_is_refused() {
    let (key, trust) = setup();
    assert_eq!(
        key.sign("other", T, 1, [1; 32]).verify(&trust, T),
        Err(HeadError::WrongNamespace {
            expected: "ns".into(),
            got: "other".into()
        })
    );
}

#[test]
fn stale_and_future_heads_are_refused_at_their_bounds() {
    let (key, trust) = setup();
    let head = key.sign("ns", T, 1, [1; 32]);
    let at = |ms: u64| Timestamp::from_millis(ms);
    let t = T.as_millis();
    head.verify(&trust, at(t + DEFAULT_MAX_HEAD_AGE_MS))
        .unwrap();
    assert_eq!(
        head.verify(&trust, at(t + DEFAULT_MAX_HEAD_AGE_MS + 1)),
        Err(HeadError::Stale {
            age_ms: DEFAULT_MAX_HEAD_AGE_MS + 1
        })
    );
    head.verify(&trust, at(t - MAX_HEAD_CLOCK_SKEW_MS)).unwrap();
    assert_eq!(
        head.verify(&trust, at(t - MAX_HEAD_CLOCK_SKEW_MS - 1)),
        Err(HeadError::FromTheFuture {
            ahead_ms: MAX_HEAD_CLOCK_SKEW_MS + 1
        })
    );
    let mut strict = trust.clone();
    strict.max_head_age_ms = 10;
    assert_eq!(
        head.verify(&strict, at(t + 11)),
        Err(HeadError::Stale { age_ms: 11 })
    );
}

#[test]
fn another_ciphersuite_is_refused() {
    use prost::Message;
    let (key, trust) = setup();
    let mut p =
        crate::proto::kt::SignedHead::decode(key.sign("ns", T, 1, [1; 32]).to_bytes().as_slice())
            .unwrap();
    if let Some(m) = p.message.as_mut() {
        m.ciphersuite = 0x0002;
    }
    let head = SignedHead::from_bytes(&p.encode_to_vec()).unwrap();
    assert_eq!(
        head.verify(&trust, T),
        Err(HeadError::UnsupportedCiphersuite(2))
    );
}

#[test]
fn auditor_keys_must_be_32_byte_points_and_the_seed_never_prints() {
    assert_eq!(AuditorKey::from_bytes(&[0; 31]), Err(HeadError::Malformed));
    let mut not_a_point = [0u8; 32];
    not_a_point[0] = 2;
    assert_eq!(
        AuditorKey::from_bytes(&not_a_point),
        Err(HeadError::Malformed)
    );
    let key = AuditorSigningKey::from_seed([0x5a; 32]);
    let public = key.public_key();
    assert_eq!(AuditorKey::from_bytes(&public.to_bytes()), Ok(public));
    let shown = format!("{key:?}");
    assert_eq!(shown, "AuditorSigningKey(***)");
    let mut rng = rand_core::OsRng;
    assert_ne!(
        AuditorSigningKey::generate(&mut rng).public_key(),
        AuditorSigningKey::generate(&mut rng).public_key()
    );
}
