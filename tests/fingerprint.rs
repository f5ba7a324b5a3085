//! Safety numbers: libsignal's published vectors, matching and mismatching codes, and
//! version handling. Interop with `@signalapp/libsignal-client` lives in
//! `tests/media_interop/`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use confide::IdentityKey;
use confide::IdentityKeyPair;
use confide::fingerprint::{
    Comparison, DEFAULT_ITERATIONS, Fingerprint, FingerprintError, Party, ScannableFingerprint,
    ScannedFingerprintError,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

// Public test vectors from libsignal's `rust/protocol/src/fingerprint.rs` (the Java
// `testVectorsVersion1`/`testVectorsVersion2`).
const ALICE_IDENTITY: &str = "0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868";
const BOB_IDENTITY: &str = "05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b";
const ALICE_ID: &[u8] = b"+14152222222";
const BOB_ID: &[u8] = b"+14153333333";
const DISPLAYABLE: &str = "300354477692869396892869876765458257569162576843440918079131";
const ALICE_HALF: &str = "1e301a0353dce3dbe7684cb8336e85136cdc0ee96219494ada305d62a7bd61df";
const BOB_HALF: &str = "d62cbf73a11592015b6b9f1682ac306fea3aaf3885b84d12bca631e9d4fb3a4d";

fn key(hex_str: &str) -> IdentityKey {
    IdentityKey::try_from(&hex::decode(hex_str).unwrap()[..]).unwrap()
}

fn scannable_hex(version: u8, local: &str, remote: &str) -> String {
    format!("08{version:02x}12220a20{local}1a220a20{remote}")
}

#[test]
fn libsignal_vectors_versions_1_and_2() {
    let (a, b) = (key(ALICE_IDENTITY), key(BOB_IDENTITY));
    for version in [1u32, 2] {
        let alice = Fingerprint::new(
            version,
            5200,
            Party::new(ALICE_ID, &a),
            Party::new(BOB_ID, &b),
        )
        .unwrap();
        let bob = Fingerprint::new(
            version,
            5200,
            Party::new(BOB_ID, &b),
            Party::new(ALICE_ID, &a),
        )
        .unwrap();
        // The digits do not depend on the version.
        assert_eq!(alice.displayable().to_string(), DISPLAYABLE);
        assert_eq!(bob.displayable().to_string(), DISPLAYABLE);
        assert_eq!(
            hex::encode(alice.scannable().to_bytes()),
            scannable_hex(version as u8, ALICE_HALF, BOB_HALF)
        );
        assert_eq!(
            hex::encode(bob.scannable().to_bytes()),
            scannable_hex(version as u8, BOB_HALF, ALICE_HALF)
        );
        assert_eq!(
            alice
                .scannable()
                .compare(&bob.scannable().to_bytes())
                .unwrap(),
            Comparison::Match
        );
        assert_eq!(
            bob.scannable()
                .compare(&alice.scannable().to_bytes())
                .unwrap(),
            Comparison::Match
        );
        // My own code is not the other side's.
        assert_eq!(
            alice
                .scannable()
                .compare(&alice.scannable().to_bytes())
                .unwrap(),
            Comparison::Mismatch
        );
        assert_eq!(
            alice,
            Fingerprint::new(
                version,
                DEFAULT_ITERATIONS,
                Party::new(ALICE_ID, &a),
                Party::new(BOB_ID, &b)
            )
            .unwrap()
        );
    }
}

#[test]
fn halves_and_groups() {
    let (a, b) = (key(ALICE_IDENTITY), key(BOB_IDENTITY));
    let f = Fingerprint::with_defaults(Party::new(ALICE_ID, &a), Party::new(BOB_ID, &b)).unwrap();
    let d = f.displayable();
    assert_eq!(d.local_digits().len(), 30);
    assert_eq!(d.remote_digits().len(), 30);
    // Ordered by string: the smaller half first.
    assert!(DISPLAYABLE.starts_with(d.local_digits().min(d.remote_digits())));
    let groups = d.groups();
    assert_eq!(groups.len(), 12);
    assert_eq!(groups.concat(), DISPLAYABLE);
    assert_eq!(groups[0], "30035");
    assert_eq!(f.scannable().version(), 2);
    assert_eq!(hex::encode(f.scannable().local()), ALICE_HALF);
    assert_eq!(hex::encode(f.scannable().remote()), BOB_HALF);
}

#[test]
fn scannable_encoding_and_parsing() {
    // libsignal's encoding test: halves of 0x12 and 0xba.
    let bytes = hex::decode(scannable_hex(2, &"12".repeat(32), &"ba".repeat(32))).unwrap();
    let s = ScannableFingerprint::try_from(&bytes[..]).unwrap();
    assert_eq!(s.version(), 2);
    assert_eq!(s.local(), &[0x12; 32]);
    assert_eq!(s.remote(), &[0xba; 32]);
    assert_eq!(s.to_bytes(), bytes);

    assert_eq!(
        ScannableFingerprint::try_from(&[0xff, 0xff][..]).unwrap_err(),
        ScannedFingerprintError::Malformed
    );
    assert_eq!(
        ScannableFingerprint::try_from(&hex::decode("0802").unwrap()[..]).unwrap_err(),
        ScannedFingerprintError::MissingField {
            field: "local_fingerprint"
        }
    );
    let short = hex::decode(format!(
        "080212230a21{}1a220a20{}",
        "12".repeat(33),
        "ba".repeat(32)
    ))
    .unwrap();
    assert_eq!(
        ScannableFingerprint::try_from(&short[..]).unwrap_err(),
        ScannedFingerprintError::WrongLength {
            field: "local_fingerprint",
            found: 33
        }
    );
}

#[test]
fn comparisons_are_typed() {
    let (a, b) = (key(ALICE_IDENTITY), key(BOB_IDENTITY));
    let alice =
        Fingerprint::new(2, 5200, Party::new(ALICE_ID, &a), Party::new(BOB_ID, &b)).unwrap();
    let bob_v1 =
        Fingerprint::new(1, 5200, Party::new(BOB_ID, &b), Party::new(ALICE_ID, &a)).unwrap();
    let bob_v3 =
        Fingerprint::new(3, 5200, Party::new(BOB_ID, &b), Party::new(ALICE_ID, &a)).unwrap();
    assert_eq!(
        alice
            .scannable()
            .compare(&bob_v1.scannable().to_bytes())
            .unwrap(),
        Comparison::OlderVersion { theirs: 1, ours: 2 }
    );
    assert_eq!(
        alice
            .scannable()
            .compare(&bob_v3.scannable().to_bytes())
            .unwrap(),
        Comparison::NewerVersion { theirs: 3, ours: 2 }
    );
    // No version field reads as version 0, as libsignal does.
    let no_version = hex::decode(format!("12220a20{BOB_HALF}1a220a20{ALICE_HALF}")).unwrap();
    assert_eq!(
        alice.scannable().compare(&no_version).unwrap(),
        Comparison::OlderVersion { theirs: 0, ours: 2 }
    );
    // Missing content is an error; content of the wrong length never matches.
    assert_eq!(
        alice
            .scannable()
            .compare(&hex::decode("0802").unwrap())
            .unwrap_err(),
        ScannedFingerprintError::MissingField {
            field: "local_fingerprint"
        }
    );
    let truncated = hex::decode(format!(
        "080212210a1f{}1a220a20{ALICE_HALF}",
        &BOB_HALF[..62]
    ))
    .unwrap();
    assert_eq!(
        alice.scannable().compare(&truncated).unwrap(),
        Comparison::Mismatch
    );
    assert_eq!(
        alice.scannable().compare(b"\xff\xff").unwrap_err(),
        ScannedFingerprintError::Malformed
    );
    assert!(Comparison::Match.is_match());
    assert!(!Comparison::OlderVersion { theirs: 1, ours: 2 }.is_match());
}

#[test]
fn a_man_in_the_middle_or_a_wrong_identifier_shows() {
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let a = IdentityKeyPair::generate(&mut rng);
    let b = IdentityKeyPair::generate(&mut rng);
    let m = IdentityKeyPair::generate(&mut rng);
    let (a, b, m) = (a.identity_key(), b.identity_key(), m.identity_key());
    let bob = Fingerprint::new(2, 1024, Party::new(BOB_ID, b), Party::new(ALICE_ID, a)).unwrap();
    let fooled = Fingerprint::new(2, 1024, Party::new(ALICE_ID, a), Party::new(BOB_ID, m)).unwrap();
    let wrong_id = Fingerprint::new(
        2,
        1024,
        Party::new(b"+141512222222", a),
        Party::new(BOB_ID, b),
    )
    .unwrap();
    let honest = Fingerprint::new(2, 1024, Party::new(ALICE_ID, a), Party::new(BOB_ID, b)).unwrap();
    for bad in [&fooled, &wrong_id] {
        assert_ne!(bad.displayable().to_string(), bob.displayable().to_string());
        assert_eq!(
            bad.scannable()
                .compare(&bob.scannable().to_bytes())
                .unwrap(),
            Comparison::Mismatch
        );
        assert_eq!(
            bob.scannable()
                .compare(&bad.scannable().to_bytes())
                .unwrap(),
            Comparison::Mismatch
        );
    }
    assert_eq!(
        honest.displayable().to_string(),
        bob.displayable().to_string()
    );
    assert_eq!(
        honest
            .scannable()
            .compare(&bob.scannable().to_bytes())
            .unwrap(),
        Comparison::Match
    );
}

#[test]
fn iteration_bounds_follow_libsignal() {
    let a = key(ALICE_IDENTITY);
    let p = Party::new(ALICE_ID, &a);
    for bad in [0u32, 1, 1_000_001, u32::MAX] {
        assert_eq!(
            Fingerprint::new(2, bad, p, p).unwrap_err(),
            FingerprintError::InvalidIterations { iterations: bad }
        );
    }
    assert!(Fingerprint::new(2, 2, p, p).is_ok());
    assert_eq!(p.id(), ALICE_ID);
    assert_eq!(p.key(), &a);
}
