//! The verifier against proofs from a real akd directory: honest proofs verify, and a
//! proof moved to another root, epoch, label or key, or with a byte changed, does not.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::test_directory::{NAMESPACE, NOW, TestDirectory};
use super::*;
use crate::keys::IdentityKeyPair;

fn key(seed: u8) -> IdentityKey {
    use rand_core::SeedableRng;
    let mut rng = rand_chacha::ChaCha20Rng::from_seed([seed; 32]);
    *IdentityKeyPair::generate(&mut rng).identity_key()
}

fn alice() -> Vec<u8> {
    label(&Address::new("alice", 1))
}

#[test]
fn label_is_domain_length_name_device() {
    let l = label(&Address::new("bob", 0x0102_0304));
    assert_eq!(l, b"confide.kt.v1\x00\x00\x03bob\x01\x02\x03\x04");
    // The length prefix keeps names that share a prefix apart.
    assert_ne!(label(&Address::new("ab", 1)), label(&Address::new("a", 1)));
    assert_ne!(label(&Address::new("a", 1)), label(&Address::new("a", 2)));
    assert_eq!(value(&key(1)), key(1).serialize().to_vec());
    assert_eq!(value(&key(1)).len(), 33);
}

#[test]
fn lookup_verifies_the_published_key() {
    let d = TestDirectory::new();
    let bob = label(&Address::new("bob", 1));
    let head = d.publish(&[(&alice(), &value(&key(1))), (&bob, &value(&key(2)))]);
    let v = verify_lookup(&d.trust(), &head, &alice(), &d.lookup(&alice())).unwrap();
    assert_eq!(
        v,
        Verified {
            epoch: 1,
            version: 1,
            value: value(&key(1))
        }
    );
    let v = verify_lookup(&d.trust(), &head, &bob, &d.lookup(&bob)).unwrap();
    assert_eq!(v.value, value(&key(2)));
}

#[test]
fn a_rotation_is_the_new_version_and_history_lists_both_newest_first() {
    let d = TestDirectory::new();
    d.publish(&[(&alice(), &value(&key(1)))]);
    d.publish(&[(b"other", b"x")]);
    let head = d.publish(&[(&alice(), &value(&key(2)))]);
    assert_eq!(head.epoch(), 3);
    let v = verify_lookup(&d.trust(), &head, &alice(), &d.lookup(&alice())).unwrap();
    assert_eq!((v.epoch, v.version), (3, 2));
    assert_eq!(v.value, value(&key(2)));
    let h = verify_history(&d.trust(), &head, &alice(), &d.history(&alice())).unwrap();
    let got: Vec<_> = h
        .iter()
        .map(|v| (v.epoch, v.version, v.value.clone()))
        .collect();
    assert_eq!(got, vec![(3, 2, value(&key(2))), (1, 1, value(&key(1)))]);
}

#[test]
fn a_proof_checked_against_another_root_epoch_label_or_key_fails() {
    let d = TestDirectory::new();
    // Alice's key is published at epoch 2: a head for epoch 1 cannot hold it.
    let h1 = d.publish(&[(b"bob", &value(&key(2)))]);
    let h2 = d.publish(&[(&alice(), &value(&key(1)))]);
    let trust = d.trust();
    let proof = d.lookup(&alice());
    let history = d.history(&alice());
    verify_lookup(&trust, &h2, &alice(), &proof).unwrap();
    verify_history(&trust, &h2, &alice(), &history).unwrap();
    let wrong_root = d.head(h2.epoch(), h1.root());
    let wrong_epoch = d.head(h1.epoch(), h2.root());
    let mut wrong_vrf = trust.clone();
    wrong_vrf.vrf_public_key = VrfPublicKey::from_bytes(
        AuditorSigningKey::from_seed([1; 32])
            .public_key()
            .to_bytes()
            .as_slice(),
    )
    .unwrap();
    let other_label = label(&Address::new("alice", 2));
    for (what, t, h, l) in [
        ("root", &trust, &wrong_root, alice()),
        ("epoch", &trust, &wrong_epoch, alice()),
        ("label", &trust, &h2, other_label),
        ("vrf key", &wrong_vrf, &h2, alice()),
    ] {
        assert!(
            matches!(verify_lookup(t, h, &l, &proof), Err(ProofError::Invalid(_))),
            "lookup with the wrong {what}"
        );
        assert!(
            matches!(
                verify_history(t, h, &l, &history),
                Err(ProofError::Invalid(_))
            ),
            "history with the wrong {what}"
        );
    }
}

#[test]
fn every_changed_byte_of_a_lookup_proof_is_refused_or_changes_nothing() {
    let d = TestDirectory::new();
    let head = d.publish(&[(&alice(), &value(&key(1))), (b"bob", b"b")]);
    let trust = d.trust();
    let proof = d.lookup(&alice());
    let honest = verify_lookup(&trust, &head, &alice(), &proof).unwrap();
    let mut refused = 0;
    for i in 0..proof.len() {
        let mut bad = proof.clone();
        bad[i] ^= 0x01;
        match verify_lookup(&trust, &head, &alice(), &bad) {
            Err(_) => refused += 1,
            // A flip the parser reads as an unknown field is dropped; it must not change
            // what the proof shows.
            Ok(v) => assert_eq!(v, honest, "byte {i}"),
        }
    }
    assert!(
        refused * 10 >= proof.len() * 9,
        "{refused} of {}",
        proof.len()
    );
}

#[test]
fn every_changed_byte_of_a_history_proof_is_refused_or_changes_nothing() {
    let d = TestDirectory::new();
    d.publish(&[(&alice(), &value(&key(1)))]);
    let head = d.publish(&[(&alice(), &value(&key(2)))]);
    let trust = d.trust();
    let proof = d.history(&alice());
    let honest = verify_history(&trust, &head, &alice(), &proof).unwrap();
    let mut refused = 0;
    for i in (0..proof.len()).step_by(3) {
        let mut bad = proof.clone();
        bad[i] ^= 0x80;
        match verify_history(&trust, &head, &alice(), &bad) {
            Err(_) => refused += 1,
            Ok(v) => assert_eq!(v, honest, "byte {i}"),
        }
    }
    assert!(
        refused * 10 >= proof.len() / 3 * 9,
        "{refused} of {}",
        proof.len() / 3
    );
}

#[test]
fn garbage_empty_and_oversized_proofs_are_typed_errors() {
    let d = TestDirectory::new();
    let head = d.publish(&[(&alice(), &value(&key(1)))]);
    let trust = d.trust();
    for bytes in [&[][..], &[0xff; 40][..], b"\x0a\x05abc"] {
        assert!(matches!(
            verify_lookup(&trust, &head, &alice(), bytes),
            Err(ProofError::Malformed(_))
        ));
        assert!(matches!(
            verify_history(&trust, &head, &alice(), bytes),
            Err(ProofError::Malformed(_)) | Err(ProofError::Invalid(_))
        ));
    }
    let mut big = d.lookup(&alice());
    big.resize(verify::MAX_PROOF_LEN + 1, 0);
    assert_eq!(
        verify_lookup(&trust, &head, &alice(), &big),
        Err(ProofError::TooLarge)
    );
    assert_eq!(
        verify_history(&trust, &head, &alice(), &big),
        Err(ProofError::TooLarge)
    );
}

#[test]
fn a_lookup_of_an_absent_label_does_not_verify_as_present() {
    let d = TestDirectory::new();
    d.publish(&[(&alice(), &value(&key(1)))]);
    let head = d.publish(&[(b"bob", b"b")]);
    // The directory has no proof for a label never published: proving alice's entry
    // for carol's label fails.
    let carol = label(&Address::new("carol", 1));
    assert!(verify_lookup(&d.trust(), &head, &carol, &d.lookup(&alice())).is_err());
}

#[test]
fn vrf_keys_must_be_curve_points() {
    assert!(matches!(
        VrfPublicKey::from_bytes(&[1; 31]),
        Err(ProofError::Malformed(_))
    ));
    // y = 2 is not on the curve.
    let mut not_a_point = [0u8; 32];
    not_a_point[0] = 2;
    assert!(matches!(
        VrfPublicKey::from_bytes(&not_a_point),
        Err(ProofError::Malformed(_))
    ));
    let d = TestDirectory::new();
    let k = d.trust().vrf_public_key;
    assert_eq!(VrfPublicKey::from_bytes(k.as_bytes()).unwrap(), k);
    assert_eq!(NAMESPACE, d.trust().namespace);
    assert_eq!(d.trust().max_head_age_ms, DEFAULT_MAX_HEAD_AGE_MS);
    let _ = NOW;
}

#[cfg(feature = "kt-audit")]
mod audit {
    use super::*;

    #[test]
    fn an_honest_append_only_step_verifies() {
        let d = TestDirectory::new();
        let h1 = d.publish(&[(&alice(), &value(&key(1)))]);
        let h2 = d.publish(&[(&alice(), &value(&key(2))), (b"bob", b"b")]);
        verify_append_only(&d.trust(), &h1, &h2, &d.audit(1, 2)).unwrap();
    }

    #[test]
    fn swapped_or_foreign_roots_fail() {
        let d = TestDirectory::new();
        let h1 = d.publish(&[(&alice(), &value(&key(1)))]);
        let h2 = d.publish(&[(&alice(), &value(&key(2)))]);
        let h3 = d.publish(&[(b"bob", b"b")]);
        let proof = d.audit(1, 2);
        let trust = d.trust();
        let swapped_to = d.head(2, h1.root());
        let swapped_from = d.head(1, h2.root());
        let foreign_to = d.head(2, h3.root());
        for (from, to) in [(&h1, &swapped_to), (&swapped_from, &h2), (&h1, &foreign_to)] {
            assert!(matches!(
                verify_append_only(&trust, from, to, &proof),
                Err(AuditError::Invalid(_))
            ));
        }
    }

    #[test]
    fn heads_that_are_not_the_proofs_step_are_not_consecutive() {
        let d = TestDirectory::new();
        let h1 = d.publish(&[(&alice(), &value(&key(1)))]);
        let h2 = d.publish(&[(&alice(), &value(&key(2)))]);
        let h3 = d.publish(&[(b"bob", b"b")]);
        let trust = d.trust();
        let step12 = d.audit(1, 2);
        assert_eq!(
            verify_append_only(&trust, &h1, &h3, &step12),
            Err(AuditError::NotConsecutive)
        );
        assert_eq!(
            verify_append_only(&trust, &h2, &h3, &step12),
            Err(AuditError::NotConsecutive)
        );
        assert_eq!(
            verify_append_only(&trust, &h2, &h1, &step12),
            Err(AuditError::NotConsecutive)
        );
        // A two-step proof needs the head in between: refused, not half-checked.
        assert_eq!(
            verify_append_only(&trust, &h1, &h2, &d.audit(1, 3)),
            Err(AuditError::NotConsecutive)
        );
        verify_append_only(&trust, &h2, &h3, &d.audit(2, 3)).unwrap();
    }

    #[test]
    fn garbage_and_oversized_audit_proofs_are_malformed() {
        let d = TestDirectory::new();
        let h1 = d.publish(&[(&alice(), &value(&key(1)))]);
        let h2 = d.publish(&[(&alice(), &value(&key(2)))]);
        let trust = d.trust();
        assert!(matches!(
            verify_append_only(&trust, &h1, &h2, &[0xff; 10]),
            Err(AuditError::Malformed(_))
        ));
        let big = vec![0u8; verify::MAX_PROOF_LEN + 1];
        assert!(matches!(
            verify_append_only(&trust, &h1, &h2, &big),
            Err(AuditError::Malformed(_))
        ));
        let mut bad = d.audit(1, 2);
        let n = bad.len();
        bad[n / 2] ^= 0x55;
        assert!(verify_append_only(&trust, &h1, &h2, &bad).is_err());
    }
}
