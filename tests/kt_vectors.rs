//! akd's pinned `whatsapp_v1` test vectors (tests/fixtures/kt/whatsapp_v1.yaml, from
//! facebook/akd): confide's verifier accepts the lookup proof and the complete history
//! proof, and refuses them with a byte changed, against another root, label, epoch or VRF
//! key. If akd's proof format or hashing ever changes under the pinned version, this fails.
#![cfg(feature = "kt")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use confide::Timestamp;
use confide::kt::{DirectoryTrust, ProofError, SignedHead, Verified, VrfPublicKey};
use confide::kt::{verify_history, verify_lookup};

const VECTORS: &str = include_str!("fixtures/kt/whatsapp_v1.yaml");

/// The file's documents by their `# Title` comment: each is `# Title`, `---`, the value.
/// (A hand parser: the file is a handful of scalars, and a YAML crate would be a
/// dependency for one test.)
fn documents() -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut title: Option<String> = None;
    let mut body: Option<Vec<&str>> = None;
    for line in VECTORS.lines().chain(std::iter::once("")) {
        match (line, body.as_mut()) {
            ("---", None) => body = Some(Vec::new()),
            ("", Some(lines)) => {
                if let Some(t) = title.take() {
                    out.insert(t, lines.join("\n"));
                }
                body = None;
            }
            (l, Some(lines)) => lines.push(l),
            (l, None) => {
                if let Some(t) = l.strip_prefix("# ") {
                    title = Some(t.trim().to_owned());
                }
            }
        }
    }
    out
}

struct Vectors {
    trust: DirectoryTrust,
    head: SignedHead,
    label: Vec<u8>,
    lookup: Vec<u8>,
    recent: Vec<u8>,
    complete: Vec<u8>,
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.trim().trim_matches('\'')).unwrap()
}

fn vectors() -> Vectors {
    let d = documents();
    let get = |k: &str| {
        d.get(k)
            .unwrap_or_else(|| panic!("no document {k:?}"))
            .clone()
    };
    assert!(get("Metadata").contains("configuration: whatsapp_v1"));
    let trust = DirectoryTrust::new(
        VrfPublicKey::from_bytes(&unhex(&get("Public Key"))).unwrap(),
        vec![],
        "akd.test",
    );
    let root: [u8; 32] = unhex(&get("Epoch Hash")).try_into().unwrap();
    let epoch: u64 = get("Epoch").trim().parse().unwrap();
    Vectors {
        trust,
        head: head(epoch, root),
        label: unhex(&get("Label")),
        lookup: unhex(&get("Lookup Proof")),
        recent: unhex(&get("History Proof (HistoryParams::MostRecent(1))")),
        complete: unhex(&get(
            "History Proof (HistoryParams::Complete with 3 versions)",
        )),
    }
}

/// Proofs are checked against a head's epoch and root only; its signature is
/// `SignedHead::verify`'s business.
fn head(epoch: u64, root: [u8; 32]) -> SignedHead {
    SignedHead::unsigned("akd.test", Timestamp::from_millis(0), epoch, root)
}

/// The generator (akd `examples/src/test_vectors/mod.rs`) publishes label `i` with value
/// `"i,e"` at every epoch `e` divisible by `i`, for epochs 1 to 49, and writes label 16.
fn published(version: u64) -> Verified {
    let epoch = 16 * version;
    Verified {
        epoch,
        version,
        value: format!("16,{epoch}").into_bytes(),
    }
}

#[test]
fn the_vectors_are_label_16_at_epoch_49() {
    let v = vectors();
    assert_eq!(v.label, b"16");
    assert_eq!(v.head.epoch(), 49);
}

#[test]
fn the_lookup_proof_verifies() {
    let v = vectors();
    let got = verify_lookup(&v.trust, &v.head, &v.label, &v.lookup).unwrap();
    assert_eq!(got, published(3));
}

#[test]
fn the_complete_history_proof_verifies_newest_first() {
    let v = vectors();
    let got = verify_history(&v.trust, &v.head, &v.label, &v.complete).unwrap();
    assert_eq!(got, vec![published(3), published(2), published(1)]);
}

/// confide asks for complete histories: a most-recent-only proof is not one, and is
/// refused rather than read as a history of one version. (akd itself verifies it under
/// the parameters it was made with, so the vector is sound.)
#[test]
fn the_most_recent_history_proof_is_refused_as_a_complete_one_and_verifies_as_what_it_is() {
    let v = vectors();
    assert!(matches!(
        verify_history(&v.trust, &v.head, &v.label, &v.recent),
        Err(ProofError::Invalid(_))
    ));
    use akd::HistoryVerificationParams;
    use akd::verify::history::HistoryParams;
    use protobuf::Message;
    let proto = akd::proto::specs::types::HistoryProof::parse_from_bytes(&v.recent).unwrap();
    let proof = akd::HistoryProof::try_from(&proto).unwrap();
    let got = akd::verify::key_history_verify::<akd::WhatsAppV1Configuration>(
        v.trust.vrf_public_key.as_bytes(),
        v.head.root(),
        v.head.epoch(),
        akd::AkdLabel(v.label.clone()),
        proof,
        HistoryVerificationParams::Default {
            history_params: HistoryParams::MostRecent(1),
        },
    )
    .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].epoch, got[0].version), (48, 3));
    assert_eq!(got[0].value.0, b"16,48");
}

#[test]
fn a_flipped_byte_fails() {
    let v = vectors();
    // Bytes deep inside the proofs: hashes, VRF proofs, sibling labels.
    for (name, proof) in [("lookup", &v.lookup), ("history", &v.complete)] {
        for at in [
            proof.len() / 5,
            proof.len() / 3,
            proof.len() / 2,
            proof.len() - 40,
        ] {
            let mut bad = proof.clone();
            bad[at] ^= 0x01;
            let r = if name == "lookup" {
                verify_lookup(&v.trust, &v.head, &v.label, &bad).map(|_| ())
            } else {
                verify_history(&v.trust, &v.head, &v.label, &bad).map(|_| ())
            };
            assert!(r.is_err(), "{name} proof with byte {at} flipped verified");
        }
    }
}

#[test]
fn a_wrong_root_fails() {
    let v = vectors();
    let mut root = v.head.root();
    root[0] ^= 0x80;
    let wrong = head(v.head.epoch(), root);
    assert!(matches!(
        verify_lookup(&v.trust, &wrong, &v.label, &v.lookup),
        Err(ProofError::Invalid(_))
    ));
    assert!(matches!(
        verify_history(&v.trust, &wrong, &v.label, &v.complete),
        Err(ProofError::Invalid(_))
    ));
}

#[test]
fn a_wrong_label_fails() {
    let v = vectors();
    for label in [&b"17"[..], b"160", b""] {
        assert!(verify_lookup(&v.trust, &v.head, label, &v.lookup).is_err());
        assert!(verify_history(&v.trust, &v.head, label, &v.complete).is_err());
    }
}

#[test]
fn a_wrong_epoch_fails() {
    let v = vectors();
    // Epoch 47 is before the version the proofs show was published (48).
    let early = head(47, v.head.root());
    assert!(matches!(
        verify_lookup(&v.trust, &early, &v.label, &v.lookup),
        Err(ProofError::Invalid(_))
    ));
    assert!(matches!(
        verify_history(&v.trust, &early, &v.label, &v.complete),
        Err(ProofError::Invalid(_))
    ));
    // A root does not commit to its epoch (the auditor's signature binds the two), but
    // a history proof does through the future markers it must prove absent: past epoch
    // 256 (akd's marker skip list) version 256 becomes one of them.
    let late = head(300, v.head.root());
    assert!(matches!(
        verify_history(&v.trust, &late, &v.label, &v.complete),
        Err(ProofError::Invalid(_))
    ));
}

#[test]
fn a_wrong_vrf_key_fails() {
    let v = vectors();
    let mut trust = v.trust.clone();
    // The Ed25519 base point: a valid key, not the directory's.
    let mut base = [0x66u8; 32];
    base[0] = 0x58;
    trust.vrf_public_key = VrfPublicKey::from_bytes(&base).unwrap();
    assert!(verify_lookup(&trust, &v.head, &v.label, &v.lookup).is_err());
    assert!(verify_history(&trust, &v.head, &v.label, &v.complete).is_err());
}
