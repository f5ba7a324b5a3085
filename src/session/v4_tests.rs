//! v4 sessions at the `Session` level, where the tests can forge messages that
//! authenticate: an SPQR message that is missing or altered under a valid MAC.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::Session;
use crate::Timestamp;
use crate::error::DecryptError;
use crate::keys::{IdentityKeyPair, KyberPreKeyRecord, PreKeyBundle, SignedPreKeyRecord};
use crate::session::version::ProtocolVersion;
use crate::session::x3dh::{self, ResponderKeys};
use crate::wire::{CiphertextMessage, SignalMessage};

fn now() -> Timestamp {
    Timestamp::from_millis(1_700_000_000_000)
}

/// Alice's and Bob's v4 sessions after Alice's first message reached Bob.
fn pair(seed: u64) -> (Session, Session, ChaCha20Rng) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let bob_id = IdentityKeyPair::generate(&mut rng);
    let alice_id = IdentityKeyPair::generate(&mut rng);
    let signed = SignedPreKeyRecord::generate(&mut rng, &bob_id, 1, now());
    let kyber = KyberPreKeyRecord::generate(&mut rng, &bob_id, 2, now());
    let bundle = PreKeyBundle::new(7, 1, *bob_id.identity_key(), signed.public())
        .with_kyber_pre_key(kyber.public());
    let mut alice = x3dh::initiate(
        (&alice_id, 9),
        &bundle,
        ProtocolVersion::V4,
        &mut rng,
        now(),
    )
    .unwrap();
    let CiphertextMessage::PreKey(first) = alice.encrypt(b"first", &mut rng).unwrap() else {
        panic!("a prekey message")
    };
    let keys = ResponderKeys {
        identity: &bob_id,
        registration_id: 7,
        signed_pre_key: signed.key_pair(),
        one_time_pre_key: None,
        kyber_pre_key: Some(&kyber),
    };
    let mut bob = x3dh::respond(&keys, &first.header(), ProtocolVersion::V4).unwrap();
    let mut copy = bob.clone();
    assert_eq!(
        &copy
            .decrypt_in_place(first.message(), None, &mut rng)
            .unwrap()[..],
        b"first"
    );
    bob = copy;
    (alice, bob, rng)
}

fn signal(m: CiphertextMessage) -> SignalMessage {
    match m {
        CiphertextMessage::Signal(m) => m,
        CiphertextMessage::PreKey(p) => p.message().clone(),
    }
}

fn drop_all(pq: &mut Vec<u8>) {
    pq.clear();
}

// The tampering functions share `encrypt_inner`'s `fn(&mut Vec<u8>)` type.
#[allow(clippy::ptr_arg)]
/// SPQR version 0, below the minimum (V1) every v4 session demands.
fn version_zero(pq: &mut Vec<u8>) {
    if let Some(b) = pq.first_mut() {
        *b = 0;
    }
}

#[allow(clippy::ptr_arg)]
/// Cut inside the header (version, epoch, index, type): not an SPQR message.
fn truncate(pq: &mut Vec<u8>) {
    pq.truncate(2);
}

#[test]
fn an_authenticated_message_with_an_unacceptable_pq_ratchet_changes_nothing() {
    let (mut alice, mut bob, mut rng) = pair(1);
    for round in 0..30 {
        for tamper in [drop_all as fn(&mut Vec<u8>), version_zero, truncate] {
            // A message that authenticates under this counter's DR keys (a peer with
            // the keys, or a bug) whose SPQR message SPQR cannot accept.
            let mut forger = bob.clone();
            let bad = signal(
                forger
                    .encrypt_inner(b"forged", None, &mut rng, tamper)
                    .unwrap(),
            );
            let before = alice.to_debug();
            let refused = alice.decrypt(&bad, &mut rng);
            assert!(
                matches!(refused, Err(DecryptError::PostQuantumRatchet)),
                "round {round}: {refused:?}"
            );
            assert_eq!(alice.to_debug(), before);
        }
        let good = signal(
            bob.encrypt(format!("b{round}").as_bytes(), &mut rng)
                .unwrap(),
        );
        assert_eq!(
            &alice.decrypt(&good, &mut rng).unwrap()[..],
            format!("b{round}").as_bytes()
        );
        let back = signal(alice.encrypt(b"a", &mut rng).unwrap());
        assert_eq!(&bob.decrypt(&back, &mut rng).unwrap()[..], b"a");
    }
}

#[test]
fn a_message_without_pq_ratchet_is_refused_by_spqr() {
    let (mut a, mut b, mut rng) = pair(2);
    let bad = signal(b.encrypt_inner(b"x", None, &mut rng, drop_all).unwrap());
    assert!(bad.pq_ratchet().is_empty());
    let before = a.to_debug();
    assert!(matches!(
        a.decrypt(&bad, &mut rng),
        Err(DecryptError::PostQuantumRatchet)
    ));
    assert_eq!(a.to_debug(), before);
    // The genuine next message still decrypts.
    let good = signal(b.encrypt(b"y", &mut rng).unwrap());
    assert_eq!(&a.decrypt(&good, &mut rng).unwrap()[..], b"y");
}

impl Session {
    /// Everything a failed decrypt must leave as it was, comparable.
    fn to_debug(&self) -> String {
        format!(
            "{:?} {:?} {:?} {:?}",
            self.spqr.as_ref().map(|s| s.to_bytes().to_vec()),
            self.receivers
                .iter()
                .map(|r| (r.chain_key.index(), r.skipped.len()))
                .collect::<Vec<_>>(),
            self.sender.chain_key.index(),
            self.pending_pre_key.is_some()
        )
    }
}
