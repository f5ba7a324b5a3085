//! Persisted state written by release 0.1 (storage format 1) must load in every later
//! version. The files in `tests/fixtures/v1/` are committed and never regenerated;
//! `CONFIDE_WRITE_FIXTURES=1 cargo test --test storage_fixture` wrote them once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;

use common::{Device, rng};
use confide::keys::{PreKeyRecord, SignedPreKeyRecord};
use confide::session::Versions;
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

/// A v4 session (PQXDH, SPQR mid-epoch, a kept key) and a Kyber prekey, written once by
/// the first release with protocol v4 (`CONFIDE_WRITE_V4_FIXTURES=1`), must keep loading and
/// decrypting: the SPQR state's stored form is versioned like the rest.
mod v4 {
    use super::*;
    use confide::keys::KyberPreKeyRecord;
    use confide::session::cipher::{self, BundleSpec};
    use confide::store::{InMemoryStore, PreKeyStore};
    use confide::{Address, Timestamp};

    const NOW: Timestamp = Timestamp::from_millis(1_765_000_000_000);
    const KYBER_ID: u32 = 77;
    const LATE: &[u8] = b"skipped, then read from the stored record";
    const LAST: &[u8] = b"written by the first v4 release";

    fn dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v4-session")
    }

    fn write_fixtures() {
        let mut r = rng(4044);
        let alice = (
            InMemoryStore::generate(&mut r),
            Address::new("9d0652a3-dcc3-4d11-975f-74d61598733f", 1),
        );
        let bob = (
            InMemoryStore::generate(&mut r),
            Address::new("0e4b5b6c-1f2a-4b3c-8d9e-0a1b2c3d4e5f", 2),
        );
        let spec = BundleSpec::new(2, 5)
            .with_pre_key(Some(9))
            .with_kyber_pre_key(Some(KYBER_ID), true);
        let bundle = cipher::publish_bundle(&bob.0, &mut r, &spec, NOW).unwrap();
        cipher::start_session(&alice.0, &bob.1, &bundle, Versions::V3AndV4, &mut r, NOW).unwrap();
        let send = |from: &(InMemoryStore, Address),
                    to: &(InMemoryStore, Address),
                    text: &[u8],
                    r: &mut _| {
            cipher::encrypt(&from.0, &from.1, &to.1, text, r, NOW).unwrap()
        };
        let recv = |at: &(InMemoryStore, Address),
                    from: &(InMemoryStore, Address),
                    m: &CiphertextMessage,
                    r: &mut _| {
            cipher::decrypt(&at.0, &at.1, &from.1, m, r, NOW).unwrap();
        };
        // Enough traffic both ways for SPQR to finish an epoch and stand mid-way in the next.
        for round in 0..70 {
            let m = send(&alice, &bob, format!("a{round}").as_bytes(), &mut r);
            recv(&bob, &alice, &m, &mut r);
            let m = send(&bob, &alice, format!("b{round}").as_bytes(), &mut r);
            recv(&alice, &bob, &m, &mut r);
        }
        let late = send(&alice, &bob, LATE, &mut r);
        let between = send(&alice, &bob, b"between", &mut r);
        recv(&bob, &alice, &between, &mut r);
        let last = send(&alice, &bob, LAST, &mut r);

        let record = bob.0.session(&alice.1).unwrap().unwrap();
        let kyber = bob
            .0
            .kyber_pre_keys()
            .unwrap()
            .kyber_pre_key(KYBER_ID)
            .unwrap()
            .unwrap();
        let d = dir();
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("session_record.bin"), record.to_bytes()).unwrap();
        std::fs::write(
            d.join("identity_key_pair.bin"),
            bob.0.local_identity().unwrap().to_bytes(),
        )
        .unwrap();
        std::fs::write(d.join("kyber_pre_key.bin"), kyber.as_slice()).unwrap();
        std::fs::write(d.join("late.bin"), late.serialized()).unwrap();
        std::fs::write(d.join("message.bin"), last.serialized()).unwrap();
    }

    #[test]
    fn v4_fixtures_still_load_and_decrypt() {
        if std::env::var_os("CONFIDE_WRITE_V4_FIXTURES").is_some() {
            write_fixtures();
        }
        let d = dir();
        let read =
            |name: &str| std::fs::read(d.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let identity = IdentityKeyPair::from_bytes(&read("identity_key_pair.bin")).unwrap();
        let bytes = read("session_record.bin");
        let mut record = SessionRecord::from_bytes(&bytes).unwrap();
        // The stored form is stable: loading and saving gives the same bytes.
        assert_eq!(record.to_bytes().as_slice(), bytes.as_slice());
        let session = record.current().unwrap();
        assert_eq!(session.version(), 4);
        assert_eq!(session.local_identity(), identity.identity_key());

        let signal = |name: &str| match CiphertextMessage::from_parts(2, &read(name)).unwrap() {
            CiphertextMessage::Signal(m) => m,
            _ => panic!("type 2 expected"),
        };
        let (last, late) = (signal("message.bin"), signal("late.bin"));
        assert!(!last.pq_ratchet().is_empty());
        let mut r = rng(1);
        assert_eq!(record.decrypt(&last, &mut r).unwrap().as_slice(), LAST);
        // The kept key (a Double Ratchet seed, salted by SPQR's key on arrival).
        assert_eq!(record.decrypt(&late, &mut r).unwrap().as_slice(), LATE);
        assert!(record.decrypt(&late, &mut r).is_err());

        let kyber = KyberPreKeyRecord::from_bytes(&read("kyber_pre_key.bin")).unwrap();
        assert_eq!(kyber.id(), KYBER_ID);
        assert!(kyber.public().has_valid_signature(identity.identity_key()));
    }
}
