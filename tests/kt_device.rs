//! `Device::verify_contact_key` and `Device::check_key_history` against akd directories
//! in process: what an honest check commits, each `KtError` once, and that every error
//! leaves the device's state rows byte for byte as they were.
#![cfg(feature = "kt")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use akd::append_only_zks::AzksParallelismConfig;
use akd::directory::Directory;
use akd::ecvrf::HardCodedAkdVRF;
use akd::storage::StorageManager;
use akd::storage::memory::AsyncInMemoryDatabase;
use akd::verify::history::HistoryParams;
use akd::{AkdLabel, AkdValue, EpochHash, WhatsAppV1Configuration};
use protobuf::Message;

use confide::assurance::IdentityAssurance;
use confide::device::KtError;
use confide::kt::{self, AuditorSigningKey, DirectoryTrust, KeyCheck, SignedHead, VrfPublicKey};
use confide::kt::{HeadError, ProofError};
use confide::store::IdentityStore;
use confide::{Address, Device, FixedClock, IdentityKey, InMemoryStore, SystemRng, Timestamp};

type Dir = Directory<WhatsAppV1Configuration, AsyncInMemoryDatabase, HardCodedAkdVRF>;
type TestDevice = Device<InMemoryStore, SystemRng, FixedClock>;

const NS: &str = "confide.kt-device-test";
const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);

/// One akd directory (all share akd's fixed test VRF key, so a second one plays the
/// forked or rolled-back view of the same directory) and the auditor signing its heads.
struct TestDir {
    rt: tokio::runtime::Runtime,
    dir: Dir,
}

fn auditor() -> AuditorSigningKey {
    AuditorSigningKey::from_seed([42; 32])
}

impl TestDir {
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let storage = StorageManager::new_no_cache(AsyncInMemoryDatabase::new());
        let dir = rt
            .block_on(Dir::new(
                storage,
                HardCodedAkdVRF {},
                AzksParallelismConfig::default(),
            ))
            .unwrap();
        Self { rt, dir }
    }

    fn trust(&self) -> DirectoryTrust {
        let vrf = self.rt.block_on(self.dir.get_public_key()).unwrap();
        DirectoryTrust::new(
            VrfPublicKey::from_bytes(vrf.as_bytes()).unwrap(),
            vec![auditor().public_key()],
            NS,
        )
    }

    fn publish(&self, entries: &[(&Address, &[u8])]) -> SignedHead {
        let updates = entries
            .iter()
            .map(|(a, v)| (AkdLabel(kt::label(a)), AkdValue(v.to_vec())))
            .collect();
        let EpochHash(epoch, root) = self.rt.block_on(self.dir.publish(updates)).unwrap();
        auditor().sign(NS, NOW, epoch, root)
    }

    fn lookup(&self, a: &Address) -> Vec<u8> {
        let (p, _) = self
            .rt
            .block_on(self.dir.lookup(AkdLabel(kt::label(a))))
            .unwrap();
        akd::proto::specs::types::LookupProof::from(&p)
            .write_to_bytes()
            .unwrap()
    }

    fn history(&self, a: &Address) -> Vec<u8> {
        let label = AkdLabel(kt::label(a));
        let (p, _) = self
            .rt
            .block_on(self.dir.key_history(&label, HistoryParams::Complete))
            .unwrap();
        akd::proto::specs::types::HistoryProof::from(&p)
            .write_to_bytes()
            .unwrap()
    }
}

fn device(name: &str, clock: &FixedClock) -> TestDevice {
    let mut rng = SystemRng::new();
    Device::new(
        InMemoryStore::generate(&mut rng),
        Address::new(name, 1),
        SystemRng::new(),
        clock.clone(),
    )
}

/// Alice, who holds Bob's identity key (from a session), and Bob.
fn alice_and_bob() -> (TestDevice, TestDevice, FixedClock) {
    let clock = FixedClock::new(NOW);
    let alice = device("alice", &clock);
    let bob = device("bob", &clock);
    alice
        .start_session(bob.address(), &bob.publish_bundle().unwrap())
        .unwrap();
    (alice, bob, clock)
}

fn other_key() -> IdentityKey {
    let clock = FixedClock::new(NOW);
    device("mallory", &clock).identity_key().unwrap()
}

fn val(k: &IdentityKey) -> Vec<u8> {
    kt::value(k)
}

/// Every state row a check may write, as stored now.
fn rows(d: &TestDevice, contact: &Address) -> Vec<Option<Vec<u8>>> {
    let st = d.store().state_store().unwrap();
    let key = format!("{}.{}", contact.name(), contact.device_id());
    [
        ("kt.contact", key.as_str()),
        ("kt.heads", ""),
        ("identity.assurance", key.as_str()),
        ("identity.assurance_index", ""),
    ]
    .iter()
    .map(|(k, key)| st.state(k, key).unwrap().map(|v| v.to_vec()))
    .collect()
}

/// Runs `f`, which must fail, and checks it wrote nothing.
fn fails_writing_nothing<T: std::fmt::Debug>(
    d: &TestDevice,
    contact: &Address,
    f: impl FnOnce() -> Result<T, KtError>,
) -> KtError {
    let before = rows(d, contact);
    let e = f().expect_err("the check must fail");
    assert_eq!(rows(d, contact), before, "{e} wrote state");
    e
}

#[test]
fn an_honest_check_commits_record_heads_and_assurance() {
    let (alice, bob, _) = alice_and_bob();
    let d = TestDir::new();
    let bob_key = bob.identity_key().unwrap();
    let head = d.publish(&[(bob.address(), &val(&bob_key))]);
    assert_eq!(alice.kt_record(bob.address()).unwrap(), None);
    let check = alice
        .verify_contact_key(&d.trust(), bob.address(), &head, &d.lookup(bob.address()))
        .unwrap();
    assert_eq!(
        check,
        KeyCheck::Verified {
            epoch: 1,
            version: 1
        }
    );
    let r = alice.kt_record(bob.address()).unwrap().unwrap();
    assert_eq!(
        (r.epoch(), r.root(), r.version(), *r.key(), r.at()),
        (1, head.root(), 1, bob_key, NOW)
    );
    assert_eq!(
        alice.identity_assurance(bob.address()).unwrap(),
        IdentityAssurance::Directory { epoch: 1 }
    );
    assert!(rows(&alice, bob.address()).iter().all(Option::is_some));
}

#[test]
fn a_directory_with_another_key_is_a_mismatch_warning() {
    let (alice, bob, _) = alice_and_bob();
    let d = TestDir::new();
    let head = d.publish(&[(bob.address(), &val(&other_key()))]);
    let check = alice
        .verify_contact_key(&d.trust(), bob.address(), &head, &d.lookup(bob.address()))
        .unwrap();
    assert!(matches!(
        check,
        KeyCheck::Mismatch {
            epoch: 1,
            version: 1,
            ..
        }
    ));
    assert_eq!(
        alice.identity_assurance(bob.address()).unwrap(),
        IdentityAssurance::Mismatch { epoch: 1 }
    );
}

#[test]
fn head_error_stale_head() {
    let (alice, bob, clock) = alice_and_bob();
    let d = TestDir::new();
    let head = d.publish(&[(bob.address(), &val(&bob.identity_key().unwrap()))]);
    clock.advance(kt::DEFAULT_MAX_HEAD_AGE_MS + 1);
    let e = fails_writing_nothing(&alice, bob.address(), || {
        alice.verify_contact_key(&d.trust(), bob.address(), &head, &d.lookup(bob.address()))
    });
    assert!(matches!(e, KtError::Head(HeadError::Stale { .. })), "{e}");
    assert_eq!(e.code(), "StaleHead");
}

#[test]
fn proof_error_garbage_proof() {
    let (alice, bob, _) = alice_and_bob();
    let d = TestDir::new();
    let head = d.publish(&[(bob.address(), &val(&bob.identity_key().unwrap()))]);
    let e = fails_writing_nothing(&alice, bob.address(), || {
        alice.verify_contact_key(&d.trust(), bob.address(), &head, b"not a proof")
    });
    assert!(matches!(e, KtError::Proof(ProofError::Malformed(_))), "{e}");
    // Bob's proof offered for Carol does not verify.
    let carol = Address::new("carol", 1);
    let e = fails_writing_nothing(&alice, &carol, || {
        alice.verify_contact_key(&d.trust(), &carol, &head, &d.lookup(bob.address()))
    });
    assert!(matches!(e, KtError::Proof(ProofError::Invalid(_))), "{e}");
}

#[test]
fn no_identity_for_a_contact_without_a_key() {
    let (alice, _, clock) = alice_and_bob();
    let carol = device("carol", &clock);
    let d = TestDir::new();
    let head = d.publish(&[(carol.address(), &val(&carol.identity_key().unwrap()))]);
    let e = fails_writing_nothing(&alice, carol.address(), || {
        alice.verify_contact_key(
            &d.trust(),
            carol.address(),
            &head,
            &d.lookup(carol.address()),
        )
    });
    assert!(matches!(e, KtError::NoIdentity), "{e}");
}

#[test]
fn malformed_value_in_the_directory() {
    let (alice, bob, _) = alice_and_bob();
    let d = TestDir::new();
    let head = d.publish(&[(bob.address(), b"not a key")]);
    let e = fails_writing_nothing(&alice, bob.address(), || {
        alice.verify_contact_key(&d.trust(), bob.address(), &head, &d.lookup(bob.address()))
    });
    assert!(matches!(e, KtError::MalformedValue), "{e}");
}

#[test]
fn epoch_rolled_back() {
    let (alice, bob, _) = alice_and_bob();
    let d = TestDir::new();
    let bob_v = val(&bob.identity_key().unwrap());
    let old = d.publish(&[(bob.address(), &bob_v)]);
    let old_proof = d.lookup(bob.address());
    let carol = Address::new("carol", 1);
    let new = d.publish(&[(&carol, b"c")]);
    let trust = d.trust();
    alice
        .verify_contact_key(&trust, bob.address(), &new, &d.lookup(bob.address()))
        .unwrap();
    let e = fails_writing_nothing(&alice, bob.address(), || {
        alice.verify_contact_key(&trust, bob.address(), &old, &old_proof)
    });
    assert!(
        matches!(e, KtError::EpochRolledBack { last: 2, got: 1 }),
        "{e}"
    );
}

#[test]
fn version_rolled_back() {
    let (alice, bob, _) = alice_and_bob();
    let bob_v = val(&bob.identity_key().unwrap());
    // The real directory: Bob's key is version 2 at epoch 2.
    let real = TestDir::new();
    real.publish(&[(bob.address(), &val(&other_key()))]);
    let head = real.publish(&[(bob.address(), &bob_v)]);
    alice
        .verify_contact_key(
            &real.trust(),
            bob.address(),
            &head,
            &real.lookup(bob.address()),
        )
        .unwrap();
    // A view that forgot a version: Bob's key is version 1 at epoch 3.
    let stale = TestDir::new();
    let carol = Address::new("carol", 1);
    stale.publish(&[(&carol, b"c")]);
    stale.publish(&[(&carol, b"d")]);
    let head = stale.publish(&[(bob.address(), &bob_v)]);
    let e = fails_writing_nothing(&alice, bob.address(), || {
        alice.verify_contact_key(
            &stale.trust(),
            bob.address(),
            &head,
            &stale.lookup(bob.address()),
        )
    });
    assert!(
        matches!(e, KtError::VersionRolledBack { last: 2, got: 1 }),
        "{e}"
    );
}

#[test]
fn forked_root_for_a_seen_epoch() {
    let (alice, bob, _) = alice_and_bob();
    let bob_v = val(&bob.identity_key().unwrap());
    let real = TestDir::new();
    let head = real.publish(&[(bob.address(), &bob_v)]);
    alice
        .verify_contact_key(
            &real.trust(),
            bob.address(),
            &head,
            &real.lookup(bob.address()),
        )
        .unwrap();
    // Another epoch 1, signed too: the auditor was fooled or is colluding.
    let fork = TestDir::new();
    let head = fork.publish(&[(bob.address(), &bob_v), (&Address::new("eve", 1), b"e")]);
    assert_eq!(head.epoch(), 1);
    let e = fails_writing_nothing(&alice, bob.address(), || {
        alice.verify_contact_key(
            &fork.trust(),
            bob.address(),
            &head,
            &fork.lookup(bob.address()),
        )
    });
    assert!(matches!(e, KtError::ForkedRoot { epoch: 1 }), "{e}");
    let e = fails_writing_nothing(&alice, bob.address(), || {
        alice.check_key_history(
            &fork.trust(),
            bob.address(),
            &head,
            &fork.history(bob.address()),
        )
    });
    assert!(matches!(e, KtError::ForkedRoot { epoch: 1 }), "{e}");
}

#[test]
fn unexplained_key_change() {
    let (alice, bob, _) = alice_and_bob();
    let d = TestDir::new();
    let head = d.publish(&[(bob.address(), &val(&bob.identity_key().unwrap()))]);
    let trust = d.trust();
    alice
        .verify_contact_key(&trust, bob.address(), &head, &d.lookup(bob.address()))
        .unwrap();
    let mallory = other_key();
    let head = d.publish(&[(bob.address(), &val(&mallory))]);
    let e = fails_writing_nothing(&alice, bob.address(), || {
        alice.verify_contact_key(&trust, bob.address(), &head, &d.lookup(bob.address()))
    });
    assert!(
        matches!(e, KtError::UnexplainedKeyChange { last_version: 1, version: 2, directory_key } if directory_key == mallory),
        "{e}"
    );
    // Once the sessions accept the new key, the same proof verifies it.
    alice.accept_identity(bob.address(), &mallory).unwrap();
    let check = alice
        .verify_contact_key(&trust, bob.address(), &head, &d.lookup(bob.address()))
        .unwrap();
    assert_eq!(
        check,
        KeyCheck::Verified {
            epoch: 2,
            version: 2
        }
    );
}

#[test]
fn history_conflict_with_a_verified_version() {
    let (alice, bob, _) = alice_and_bob();
    let real = TestDir::new();
    let head = real.publish(&[(bob.address(), &val(&bob.identity_key().unwrap()))]);
    alice
        .verify_contact_key(
            &real.trust(),
            bob.address(),
            &head,
            &real.lookup(bob.address()),
        )
        .unwrap();
    // A view where Bob's version 1 was another key.
    let fork = TestDir::new();
    fork.publish(&[(&Address::new("carol", 1), b"c")]);
    let head = fork.publish(&[(bob.address(), &val(&other_key()))]);
    let e = fails_writing_nothing(&alice, bob.address(), || {
        alice.verify_contact_key(
            &fork.trust(),
            bob.address(),
            &head,
            &fork.lookup(bob.address()),
        )
    });
    assert!(matches!(e, KtError::HistoryConflict { version: 1 }), "{e}");
    let e = fails_writing_nothing(&alice, bob.address(), || {
        alice.check_key_history(
            &fork.trust(),
            bob.address(),
            &head,
            &fork.history(bob.address()),
        )
    });
    assert!(matches!(e, KtError::HistoryConflict { version: 1 }), "{e}");
}

#[test]
fn state_error_on_a_corrupt_row() {
    let (alice, bob, _) = alice_and_bob();
    let d = TestDir::new();
    let head = d.publish(&[(bob.address(), &val(&bob.identity_key().unwrap()))]);
    alice
        .store()
        .state_store()
        .unwrap()
        .save_state("kt.heads", "", b"\xff\xff")
        .unwrap();
    let e = fails_writing_nothing(&alice, bob.address(), || {
        alice.verify_contact_key(&d.trust(), bob.address(), &head, &d.lookup(bob.address()))
    });
    assert!(matches!(e, KtError::State(_)), "{e}");
    assert_eq!(e.code(), "Store");
}

#[test]
fn key_history_counts_changes_since_the_last_verified_key_and_moves_no_record() {
    let (alice, bob, _) = alice_and_bob();
    let d = TestDir::new();
    let trust = d.trust();
    let head = d.publish(&[(bob.address(), &val(&bob.identity_key().unwrap()))]);
    alice
        .verify_contact_key(&trust, bob.address(), &head, &d.lookup(bob.address()))
        .unwrap();
    let (k2, k3) = (other_key(), other_key());
    d.publish(&[(bob.address(), &val(&k2))]);
    let head = d.publish(&[(bob.address(), &val(&k3))]);
    let before = alice.kt_record(bob.address()).unwrap();
    let h = alice
        .check_key_history(&trust, bob.address(), &head, &d.history(bob.address()))
        .unwrap();
    assert_eq!(h.new_since_last_check, 2);
    let keys: Vec<_> = h
        .versions
        .iter()
        .map(|v| (v.epoch, v.version, v.key))
        .collect();
    assert_eq!(
        keys,
        vec![(3, 3, k3), (2, 2, k2), (1, 1, bob.identity_key().unwrap())]
    );
    assert_eq!(alice.kt_record(bob.address()).unwrap(), before);
    // The head went into the log: a second root for epoch 3 is now a fork.
    let fork = TestDir::new();
    // (Each epoch must change something: akd publishes nothing for an unchanged value.)
    fork.publish(&[(&Address::new("carol", 1), b"c")]);
    fork.publish(&[(&Address::new("carol", 1), b"d")]);
    let forked = fork.publish(&[(bob.address(), &val(&bob.identity_key().unwrap()))]);
    let e = fails_writing_nothing(&alice, bob.address(), || {
        alice.verify_contact_key(
            &fork.trust(),
            bob.address(),
            &forked,
            &fork.lookup(bob.address()),
        )
    });
    assert!(matches!(e, KtError::ForkedRoot { epoch: 3 }), "{e}");
}
