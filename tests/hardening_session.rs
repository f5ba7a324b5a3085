//! Audit findings on pairwise sessions (issue 16): a prekey message's header identity
//! when the message continues a kept session, and the work one message may cost.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Device, NOW, rng};
use confide::session::Versions;
use confide::session::cipher::{self, BundleSpec};
use confide::session::limits;
use confide::store::{IdentityStore, InMemoryStore, SessionStore};
use confide::{CiphertextMessage, DecryptError, IdentityKey, IdentityKeyPair};

fn varint(bytes: &[u8], pos: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let b = bytes[*pos];
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return v;
        }
        shift += 7;
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// `message` re-serialized with its header's identity key (field 3) replaced by `key`;
/// everything else, the inner SignalMessage and its MAC included, byte for byte.
fn with_header_identity(message: &CiphertextMessage, key: &IdentityKey) -> CiphertextMessage {
    let CiphertextMessage::PreKey(m) = message else {
        panic!("expected a prekey message");
    };
    let bytes = m.serialized();
    let mut out = vec![bytes[0]];
    let mut pos = 1;
    while pos < bytes.len() {
        let tag = varint(bytes, &mut pos);
        put_varint(&mut out, tag);
        match tag & 7 {
            0 => put_varint(&mut out, varint(bytes, &mut pos)),
            2 => {
                let len = varint(bytes, &mut pos) as usize;
                let mut value = &bytes[pos..pos + len];
                pos += len;
                let swapped = key.serialize();
                if tag >> 3 == 3 {
                    value = &swapped;
                }
                put_varint(&mut out, value.len() as u64);
                out.extend_from_slice(value);
            }
            t => panic!("unexpected wire type {t}"),
        }
    }
    let forged = CiphertextMessage::from_parts(3, &out).unwrap();
    let CiphertextMessage::PreKey(f) = &forged else {
        panic!("still a prekey message");
    };
    assert_eq!(f.identity_key(), key);
    assert_eq!(f.message(), m.message());
    forged
}

fn identity_of(store: &InMemoryStore) -> IdentityKey {
    *store.local_identity().unwrap().identity_key()
}

/// The header's identity is not covered by the inner MAC (that is over the session's
/// identities), so when the message continues a kept session it must name that
/// session's identity, and only the session's identity may ever be trusted from it.
/// Here Bob's store holds the session but no trusted identity (a plain store that
/// failed between saving the session and the identity, or an imported session).
#[test]
fn header_identity_of_a_continued_session_is_never_trusted() {
    let mut r = rng(160);
    let alice = Device::new("alice", &mut r);
    let mut bob = Device::new("bob", &mut r);
    alice.start(&mut bob, &mut r, true);
    let first = alice.send(&bob, b"first");
    let second = alice.send(&bob, b"second");
    bob.recv(&alice, &first, &mut r).unwrap();

    let record = bob.store.session(&alice.address).unwrap().unwrap();
    let fresh = InMemoryStore::new(
        bob.store.local_identity().unwrap(),
        bob.store.local_registration_id().unwrap(),
    );
    fresh.save_session(&alice.address, &record).unwrap();
    let mallory = *IdentityKeyPair::generate(&mut r).identity_key();
    let forged = with_header_identity(&second, &mallory);

    let before = fresh.session(&alice.address).unwrap().unwrap().to_bytes();
    let got = cipher::decrypt(&fresh, &bob.address, &alice.address, &forged, &mut r, NOW);
    assert!(
        matches!(got, Err(DecryptError::InvalidMessage)),
        "forged header gave {got:?}, trusted now: {:?}",
        fresh.identity(&alice.address).unwrap()
    );
    assert_eq!(fresh.identity(&alice.address).unwrap(), None);
    assert_eq!(
        before,
        fresh.session(&alice.address).unwrap().unwrap().to_bytes()
    );

    // The genuine message still decrypts, and the key trusted is the session's.
    let plain =
        cipher::decrypt(&fresh, &bob.address, &alice.address, &second, &mut r, NOW).unwrap();
    assert_eq!(&plain.plaintext[..], b"second");
    assert_eq!(
        fresh.identity(&alice.address).unwrap(),
        Some(identity_of(&alice.store))
    );
}

/// A store that holds a session with Alice but lost (or had deleted) her identity row
/// must not trust a new key for "alice" on first use: the session's identity is the
/// known one, so Mallory's new session under Alice's address is `UntrustedIdentity`,
/// and nothing is saved. Alice herself, continuing the session, still gets through.
#[test]
fn a_lost_identity_row_never_makes_a_new_key_a_first_use() {
    let mut r = rng(161);
    let alice = Device::new("alice", &mut r);
    let mut bob = Device::new("bob", &mut r);
    alice.start(&mut bob, &mut r, true);
    let first = alice.send(&bob, b"first");
    bob.recv(&alice, &first, &mut r).unwrap();

    let record = bob.store.session(&alice.address).unwrap().unwrap();
    let fresh = InMemoryStore::new(
        bob.store.local_identity().unwrap(),
        bob.store.local_registration_id().unwrap(),
    );
    fresh.save_session(&alice.address, &record).unwrap();
    let spec = BundleSpec::new(1, 9).with_pre_key(Some(77));
    let bundle = cipher::publish_bundle(&fresh, &mut r, &spec, NOW).unwrap();
    let mallory = InMemoryStore::generate(&mut r);
    cipher::start_session(
        &mallory,
        &bob.address,
        &bundle,
        Versions::V3AndV4,
        &mut r,
        NOW,
    )
    .unwrap();
    let forged = cipher::encrypt(
        &mallory,
        &alice.address,
        &bob.address,
        b"alice here, new phone",
        &mut confide::SystemRng::new(),
        NOW,
    )
    .unwrap();

    let before = fresh.session(&alice.address).unwrap().unwrap().to_bytes();
    let got = cipher::decrypt(&fresh, &bob.address, &alice.address, &forged, &mut r, NOW);
    let alice_key = identity_of(&alice.store);
    assert!(
        matches!(&got, Err(DecryptError::UntrustedIdentity { known, .. }) if *known == alice_key),
        "a new key for alice gave {:?}",
        got.map(|d| d.plaintext.to_vec())
    );
    assert_eq!(fresh.identity(&alice.address).unwrap(), None);
    assert_eq!(
        before,
        fresh.session(&alice.address).unwrap().unwrap().to_bytes()
    );
    // Starting a session from a bundle under another key is refused the same way.
    let mallory_bundle = {
        let spec = BundleSpec::new(1, 3).with_pre_key(Some(5));
        cipher::publish_bundle(&mallory, &mut r, &spec, NOW).unwrap()
    };
    assert!(matches!(
        cipher::start_session(
            &fresh,
            &alice.address,
            &mallory_bundle,
            Versions::V3AndV4,
            &mut r,
            NOW
        ),
        Err(confide::BundleError::UntrustedIdentity { .. })
    ));

    let reply = alice.send(&bob, b"still me");
    let plain = cipher::decrypt(&fresh, &bob.address, &alice.address, &reply, &mut r, NOW).unwrap();
    assert_eq!(&plain.plaintext[..], b"still me");
}

/// After Alice re-installed (new identity, accepted by Bob), her old session stays as a
/// previous state. An old unacknowledged prekey message relabelled with her new, trusted
/// identity must not pass the trust check and revive the old, no longer trusted session.
#[test]
fn relabelled_old_prekey_message_cannot_revive_an_untrusted_session() {
    let mut r = rng(161);
    let alice = Device::new("alice", &mut r);
    let mut bob = Device::new("bob", &mut r);
    alice.start(&mut bob, &mut r, true);
    let first = alice.send(&bob, b"first");
    let held = alice.send(&bob, b"held back");
    bob.recv(&alice, &first, &mut r).unwrap();

    let alice2 = Device::new("alice", &mut r);
    alice2.start(&mut bob, &mut r, true);
    let hello = alice2.send(&bob, b"new phone");
    assert!(matches!(
        bob.recv(&alice2, &hello, &mut r),
        Err(DecryptError::UntrustedIdentity { .. })
    ));
    cipher::accept_identity(&bob.store, &alice2.address, &identity_of(&alice2.store)).unwrap();
    assert_eq!(bob.recv(&alice2, &hello, &mut r).unwrap(), b"new phone");

    // Genuine, the old message is refused as from an identity no longer trusted.
    assert!(matches!(
        bob.recv(&alice, &held, &mut r),
        Err(DecryptError::UntrustedIdentity { .. })
    ));
    let forged = with_header_identity(&held, &identity_of(&alice2.store));
    let before = bob.snapshot(&alice);
    let got = bob.recv(&alice, &forged, &mut r);
    assert!(
        matches!(got, Err(DecryptError::InvalidMessage)),
        "relabelled old message gave {got:?}"
    );
    assert_eq!(before, bob.snapshot(&alice));
    assert_eq!(
        bob.store.identity(&alice.address).unwrap(),
        Some(identity_of(&alice2.store))
    );
    // Bob still talks to the new installation.
    let m = bob.send(&alice2, b"still you");
    assert_eq!(alice2.recv(&bob, &m, &mut r).unwrap(), b"still you");
}

/// A swapped header on a session whose identity is trusted is a forgery, not a safety
/// number change: reporting `UntrustedIdentity` would invite the user to accept a key
/// that nothing authenticated.
#[test]
fn swapped_header_on_a_known_session_is_not_an_identity_change() {
    let mut r = rng(162);
    let alice = Device::new("alice", &mut r);
    let mut bob = Device::new("bob", &mut r);
    alice.start(&mut bob, &mut r, true);
    let first = alice.send(&bob, b"first");
    let second = alice.send(&bob, b"second");
    bob.recv(&alice, &first, &mut r).unwrap();
    let mallory = *IdentityKeyPair::generate(&mut r).identity_key();
    let forged = with_header_identity(&second, &mallory);
    let before = bob.snapshot(&alice);
    let got = bob.recv(&alice, &forged, &mut r);
    assert!(
        matches!(got, Err(DecryptError::InvalidMessage)),
        "swapped header gave {got:?}"
    );
    assert_eq!(before, bob.snapshot(&alice));
    assert_eq!(bob.recv(&alice, &second, &mut r).unwrap(), b"second");
}

fn trust(bob: &Device, alice: &Device) {
    cipher::accept_identity(&bob.store, &alice.address, &identity_of(&alice.store)).unwrap();
}

/// Bob keeps the most previous states (one per installation of Alice, each answered).
/// Under the per-message work budget a message on a new chain of the oldest state
/// (tried against every state), one far ahead on a known chain of a previous state, and
/// one far ahead on a new chain of the most recent previous state all still decrypt.
/// The bound itself is a unit test in `src/session/record.rs`, its cost the `forged`
/// bench.
#[test]
fn work_budget_keeps_legitimate_messages_working() {
    let mut r = rng(163);
    let mut bob = Device::new("bob", &mut r);
    let mut alices = Vec::new();
    for _ in 0..=limits::MAX_PREVIOUS_STATES {
        let alice = Device::new("alice", &mut r);
        alice.start(&mut bob, &mut r, false);
        let hello = alice.send(&bob, b"hello");
        trust(&bob, &alice);
        assert_eq!(bob.recv(&alice, &hello, &mut r).unwrap(), b"hello");
        let reply = bob.send(&alice, b"hi");
        assert_eq!(alice.recv(&bob, &reply, &mut r).unwrap(), b"hi");
        alices.push(alice);
    }
    let record = bob.store.session(&alices[0].address).unwrap().unwrap();
    assert_eq!(record.previous_count(), limits::MAX_PREVIOUS_STATES);

    // The oldest state, on Alice's new chain: the message is tried against every state.
    let oldest = &alices[0];
    trust(&bob, oldest);
    let m = oldest.send(&bob, b"oldest");
    assert_eq!(bob.recv(oldest, &m, &mut r).unwrap(), b"oldest");

    // The second oldest answers once more, then the oldest (current again) sends the
    // largest jump on the chain Bob knows.
    let second = &alices[1];
    trust(&bob, second);
    let m = second.send(&bob, b"second");
    assert_eq!(bob.recv(second, &m, &mut r).unwrap(), b"second");
    let m = bob.send(second, b"answer");
    assert_eq!(second.recv(&bob, &m, &mut r).unwrap(), b"answer");
    trust(&bob, oldest);
    for _ in 0..limits::MAX_FORWARD_JUMP - 1 {
        oldest.send(&bob, b"lost");
    }
    let far = oldest.send(&bob, b"far on a known chain");
    assert_eq!(
        bob.recv(oldest, &far, &mut r).unwrap(),
        b"far on a known chain"
    );

    // The most recent previous state, on a new chain, the largest jump.
    trust(&bob, second);
    for _ in 0..limits::MAX_FORWARD_JUMP {
        second.send(&bob, b"lost");
    }
    let far = second.send(&bob, b"far on a new chain");
    let CiphertextMessage::Signal(inner) = &far else {
        panic!("an answered session sends SignalMessages");
    };
    assert_eq!(inner.counter(), limits::MAX_FORWARD_JUMP);
    assert_eq!(
        bob.recv(second, &far, &mut r).unwrap(),
        b"far on a new chain"
    );
}
