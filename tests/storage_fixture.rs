//! Persisted state written by release 0.1 (storage format 1) must load in every later
//! version. The files in `tests/fixtures/v1/` are committed and never regenerated;
//! `CONFIDE_WRITE_FIXTURES=1 cargo test --test storage_fixture` wrote them once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;

use common::{Device, rng};
use confide::keys::{PreKeyRecord, SignedPreKeyRecord};
use confide::store::{IdentityStore, SessionStore};
use confide::{CiphertextMessage, IdentityKeyPair, SessionRecord};

const PLAINTEXT: &[u8] = b"written by storage format 1";

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1")
}

fn write_fixtures() {
    let mut r = rng(2024);
    let alice = Device::new("alice", &mut r);
    let mut bob = Device::new("bob", &mut r);
    alice.start(&mut bob, &mut r, true);
    let m = alice.send(&bob, b"hello");
    bob.recv(&alice, &m, &mut r).unwrap();
    let reply = bob.send(&alice, b"reply");
    alice.recv(&bob, &reply, &mut r).unwrap();
    // One message skipped, so the record holds a kept key too.
    let _skipped = alice.send(&bob, b"skipped");
    let later = alice.send(&bob, b"later");
    bob.recv(&alice, &later, &mut r).unwrap();
    let message = alice.send(&bob, PLAINTEXT);

    let record = bob.store.session(&alice.address).unwrap().unwrap();
    let identity = bob.store.local_identity().unwrap();
    let d = dir();
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("session_record.bin"), record.to_bytes()).unwrap();
    std::fs::write(d.join("identity_key_pair.bin"), identity.to_bytes()).unwrap();
    std::fs::write(d.join("message.bin"), message.serialized()).unwrap();
    let pre_key = PreKeyRecord::generate(&mut r, 7);
    std::fs::write(d.join("pre_key.bin"), pre_key.to_bytes()).unwrap();
    let signed = SignedPreKeyRecord::generate(&mut r, &identity, 3, common::NOW);
    std::fs::write(d.join("signed_pre_key.bin"), signed.to_bytes()).unwrap();
}

#[test]
fn format_1_fixtures_still_load_and_decrypt() {
    if std::env::var_os("CONFIDE_WRITE_FIXTURES").is_some() {
        write_fixtures();
    }
    let d = dir();
    let read = |name: &str| std::fs::read(d.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));

    let identity = IdentityKeyPair::from_bytes(&read("identity_key_pair.bin")).unwrap();
    let mut record = SessionRecord::from_bytes(&read("session_record.bin")).unwrap();
    let session = record.current().unwrap();
    assert_eq!(session.local_identity(), identity.identity_key());
    assert_eq!(session.version(), 3);

    let message = CiphertextMessage::from_parts(2, &read("message.bin")).unwrap();
    let CiphertextMessage::Signal(message) = message else {
        panic!("type 2 expected")
    };
    let mut r = rng(1);
    assert_eq!(
        record.decrypt(&message, &mut r).unwrap().as_slice(),
        PLAINTEXT
    );

    let pre_key = PreKeyRecord::from_bytes(&read("pre_key.bin")).unwrap();
    assert_eq!(pre_key.id(), 7);
    let signed = SignedPreKeyRecord::from_bytes(&read("signed_pre_key.bin")).unwrap();
    assert_eq!(signed.id(), 3);
    assert!(
        identity
            .identity_key()
            .verify_signature(&signed.key_pair().public().serialize(), signed.signature())
    );
}

#[test]
fn unknown_format_versions_are_refused() {
    let bytes = std::fs::read(dir().join("session_record.bin")).unwrap();
    let mut record = SessionRecord::from_bytes(&bytes)
        .unwrap()
        .to_bytes()
        .to_vec();
    // Field 1 (format_version) is the first byte pair: 0x08 0x01.
    assert_eq!(&record[..2], &[0x08, 0x01]);
    record[1] = 0x02;
    assert!(matches!(
        SessionRecord::from_bytes(&record),
        Err(confide::RecordError::UnsupportedVersion { found: 2 })
    ));
    assert!(SessionRecord::from_bytes(&bytes[..bytes.len() / 2]).is_err());
}
