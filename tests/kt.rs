//! Key transparency end to end: confide `Device`s check each other's identity keys
//! against the test key directory (`examples/kt_directory`, akd's `Directory` served
//! over HTTP by a separate process), honestly over many epochs and key rotations, and
//! while the directory lies in each way it can (a swapped key, a rolled-back epoch, a
//! forked root, a tampered proof, an unsigned, wrongly signed or stale head, a key
//! changed behind the session layer's back). Every lie is an error or a mismatch, and
//! an error moves nothing the device keeps.
#![cfg(feature = "kt")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod kt_support;

use confide::assurance::{IdentityAssurance, key_changes_text};
use confide::device::{Device, FixedClock, KtError};
use confide::error::BundleError;
use confide::kt::{self, HeadError, KeyCheck, SignedHead};
use confide::session::Versions;
use confide::store::InMemoryStore;
use confide::{Address, IdentityKey, IdentityKeyPair, Timestamp};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::json;

use kt_support::Directory;

type Dev = Device<InMemoryStore, ChaCha20Rng, FixedClock>;

/// 2026-01-01T00:00:00Z.
const T0: Timestamp = Timestamp::from_millis(1_767_225_600_000);

fn device(name: &str, seed: u64, clock: &FixedClock) -> Dev {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let store = InMemoryStore::new(IdentityKeyPair::generate(&mut rng), seed as u32);
    Device::new(store, Address::new(name, 1), rng, clock.clone()).with_versions(Versions::V3AndV4)
}

fn entry(d: &Dev) -> (Vec<u8>, Vec<u8>) {
    (
        kt::label(d.address()),
        kt::value(&d.identity_key().unwrap()),
    )
}

/// A key that belongs to nobody in the test: the attacker's.
fn attacker_key(seed: u64) -> IdentityKey {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    *IdentityKeyPair::generate(&mut rng).identity_key()
}

/// `from` starts a session with `to` from its bundle, accepting a changed identity key
/// as an app would after showing the user the change.
fn start(from: &Dev, to: &Dev) {
    let bundle = to.publish_bundle().unwrap();
    match from.start_session(to.address(), &bundle) {
        Ok(()) => {}
        Err(BundleError::UntrustedIdentity { received, .. }) => {
            from.accept_identity(to.address(), &received).unwrap();
            from.start_session(to.address(), &bundle).unwrap();
        }
        Err(e) => panic!("start_session: {e}"),
    }
}

/// A running directory holding Alice's and Bob's keys (epoch 1), and Alice holding Bob's
/// key from a session.
struct World {
    dir: Directory,
    trust: kt::DirectoryTrust,
    clock: FixedClock,
    alice: Dev,
    bob: Dev,
}

impl World {
    fn new() -> Self {
        let clock = FixedClock::new(T0);
        let dir = Directory::spawn(T0);
        let alice = device("alice", 1, &clock);
        let bob = device("bob", 2, &clock);
        assert_eq!(dir.publish(&[entry(&alice), entry(&bob)]), 1);
        start(&alice, &bob);
        let trust = dir.trust();
        Self {
            dir,
            trust,
            clock,
            alice,
            bob,
        }
    }

    fn bob_label(&self) -> Vec<u8> {
        kt::label(self.bob.address())
    }

    /// Publishes `n` epochs of other users' keys; returns the last epoch.
    fn filler(&self, n: u64, tag: &str) -> u64 {
        let mut epoch = 0;
        for i in 0..n {
            let other = device(&format!("{tag}{i}"), 1000 + i, &self.clock);
            epoch = self.dir.publish(&[entry(&other)]);
        }
        epoch
    }

    /// Alice checks Bob's key with what the directory serves now.
    fn check_bob(&self) -> Result<KeyCheck, KtError> {
        let (head, proof) = self.dir.lookup(&self.bob_label());
        self.alice
            .verify_contact_key(&self.trust, self.bob.address(), &head, &proof)
    }

    fn history_bob(&self) -> Result<kt::KeyHistory, KtError> {
        let (head, proof) = self.dir.history(&self.bob_label());
        self.alice
            .check_key_history(&self.trust, self.bob.address(), &head, &proof)
    }

    fn assurance_bob(&self) -> IdentityAssurance {
        self.alice.identity_assurance(self.bob.address()).unwrap()
    }

    /// Bob's record as Alice keeps it, as bytes (comparable).
    fn record_bob(&self) -> Option<Vec<u8>> {
        self.alice
            .kt_record(self.bob.address())
            .unwrap()
            .map(|r| r.to_bytes())
    }

    /// Alice verifies Bob honestly first, then the directory switches to `mode`; the
    /// next check must fail with what `expect` accepts and change nothing Alice keeps.
    fn attack(&self, mode: serde_json::Value, expect: impl Fn(&KtError) -> bool) -> KtError {
        let epoch = self.filler(3, "pre");
        assert_eq!(
            self.check_bob().unwrap(),
            KeyCheck::Verified { epoch, version: 1 }
        );
        let before = self.record_bob();
        assert!(before.is_some());
        self.dir.set_mode(mode);
        let err = self.check_bob().unwrap_err();
        assert!(expect(&err), "unexpected error {err:?}");
        assert_eq!(self.record_bob(), before, "an attack moved the record");
        assert_eq!(self.assurance_bob(), IdentityAssurance::Directory { epoch });
        err
    }
}

#[test]
fn honest_flow_over_many_epochs_and_key_rotations() {
    let mut w = World::new();
    assert_eq!(w.assurance_bob(), IdentityAssurance::Unverified);
    assert_eq!(w.record_bob(), None);

    // Twenty epochs of other people's keys; Alice checks Bob every fourth.
    let mut last = 1;
    for round in 0..5 {
        last = w.filler(4, &format!("r{round}u"));
        let check = w.check_bob().unwrap();
        assert_eq!(
            check,
            KeyCheck::Verified {
                epoch: last,
                version: 1
            }
        );
        assert_eq!(
            w.assurance_bob(),
            IdentityAssurance::Directory { epoch: last }
        );
    }
    assert_eq!(last, 21);
    let record = w.alice.kt_record(w.bob.address()).unwrap().unwrap();
    assert_eq!((record.epoch(), record.version()), (21, 1));
    assert_eq!(record.key(), &w.bob.identity_key().unwrap());
    let notice = w.assurance_bob().default_text();
    assert!(notice.contains("epoch 21"), "{notice}");

    // Bob gets a new phone twice; Alice meets each new key through a session, and the
    // directory publishes it.
    let original = w.bob.identity_key().unwrap();
    let mut keys = vec![original];
    for seed in [20, 21] {
        w.bob = device("bob", seed, &w.clock);
        start(&w.alice, &w.bob);
        w.dir.publish(&[entry(&w.bob)]);
        keys.push(w.bob.identity_key().unwrap());
        w.filler(1, &format!("after{seed}u"));
    }
    let history = w.history_bob().unwrap();
    let versions: Vec<(u64, IdentityKey)> = history
        .versions
        .iter()
        .map(|v| (v.version, v.key))
        .collect();
    assert_eq!(
        versions,
        vec![(3, keys[2]), (2, keys[1]), (1, keys[0])],
        "newest first"
    );
    assert_eq!(history.versions[0].epoch, 24);
    assert_eq!(history.versions[1].epoch, 22);
    assert_eq!(history.versions[2].epoch, 1);
    assert_eq!(history.new_since_last_check, 2);
    assert_eq!(
        key_changes_text("Bob", history.new_since_last_check).unwrap(),
        "Bob's security code changed twice since you last checked."
    );

    // Alice holds the newest key: verified at version 3, and nothing new since.
    let epoch = w.dir.head(None).epoch();
    assert_eq!(epoch, 25);
    assert_eq!(
        w.check_bob().unwrap(),
        KeyCheck::Verified { epoch, version: 3 }
    );
    assert_eq!(w.assurance_bob(), IdentityAssurance::Directory { epoch });
    assert_eq!(w.history_bob().unwrap().new_since_last_check, 0);

    // Bob checks Alice too, on the same directory.
    start(&w.bob, &w.alice);
    let (head, proof) = w.dir.lookup(&kt::label(w.alice.address()));
    assert_eq!(
        w.bob
            .verify_contact_key(&w.trust, w.alice.address(), &head, &proof)
            .unwrap(),
        KeyCheck::Verified { epoch, version: 1 }
    );
}

#[test]
fn swapped_key_is_a_mismatch() {
    let w = World::new();
    let attacker = attacker_key(99);
    let held = w.bob.identity_key().unwrap();
    let served = w.dir.set_mode(json!({
        "mode": "swap_key",
        "label": hex::encode(w.bob_label()),
        "value": hex::encode(kt::value(&attacker)),
    }));
    assert_eq!(served["epoch"], 2);
    // The proof verifies (the directory really published it); the key is not Bob's.
    let check = w.check_bob().unwrap();
    assert_eq!(
        check,
        KeyCheck::Mismatch {
            epoch: 2,
            version: 2,
            directory_key: attacker
        }
    );
    assert_eq!(w.assurance_bob(), IdentityAssurance::Mismatch { epoch: 2 });
    let notice = w.assurance_bob().default_text();
    assert!(notice.starts_with("Warning"), "{notice}");
    // The session layer still holds Bob's real key.
    assert_eq!(w.bob.identity_key().unwrap(), held);
}

#[test]
fn rolled_back_epoch_is_refused() {
    let w = World::new();
    let err = w.attack(json!({ "mode": "rollback", "epoch": 2 }), |e| {
        matches!(e, KtError::EpochRolledBack { .. })
    });
    assert!(
        matches!(err, KtError::EpochRolledBack { last: 4, got: 2 }),
        "{err:?}"
    );
}

#[test]
fn forked_root_is_refused() {
    let w = World::new();
    let err = w.attack(json!({ "mode": "fork" }), |e| {
        matches!(e, KtError::ForkedRoot { .. })
    });
    assert!(matches!(err, KtError::ForkedRoot { epoch: 4 }), "{err:?}");
}

#[test]
fn forked_root_is_caught_across_contacts() {
    // Alice saw epoch 2's root while checking Carol; Bob's proof from the fork at epoch
    // 2 has another root, though Alice never checked Bob before.
    let w = World::new();
    let carol = device("carol", 3, &w.clock);
    assert_eq!(w.dir.publish(&[entry(&carol)]), 2);
    start(&w.alice, &carol);
    let (head, proof) = w.dir.lookup(&kt::label(carol.address()));
    assert_eq!(
        w.alice
            .verify_contact_key(&w.trust, carol.address(), &head, &proof)
            .unwrap(),
        KeyCheck::Verified {
            epoch: 2,
            version: 1
        }
    );
    w.dir.set_mode(json!({ "mode": "fork" }));
    let forked = w.dir.head(None);
    assert_eq!(forked.epoch(), 2);
    assert_ne!(forked.root(), head.root());
    let err = w.check_bob().unwrap_err();
    assert!(matches!(err, KtError::ForkedRoot { epoch: 2 }), "{err:?}");
    assert_eq!(w.record_bob(), None);
    assert_eq!(w.assurance_bob(), IdentityAssurance::Unverified);
}

#[test]
fn tampered_proof_is_refused() {
    let w = World::new();
    w.attack(json!({ "mode": "tamper_proof" }), |e| {
        matches!(e, KtError::Proof(_))
    });
    let err = w.history_bob().unwrap_err();
    assert!(matches!(err, KtError::Proof(_)), "{err:?}");
}

#[test]
fn unsigned_head_is_refused() {
    let w = World::new();
    w.attack(json!({ "mode": "unsigned_head" }), |e| {
        matches!(e, KtError::Head(HeadError::Unsigned))
    });
    assert_eq!(w.dir.head(None).signature(), None);
}

#[test]
fn wrongly_signed_head_is_refused() {
    let w = World::new();
    w.attack(json!({ "mode": "wrong_signature" }), |e| {
        matches!(e, KtError::Head(HeadError::BadSignature))
    });
}

#[test]
fn stale_head_is_refused() {
    let w = World::new();
    let err = w.attack(json!({ "mode": "stale_head" }), |e| {
        matches!(e, KtError::Head(HeadError::Stale { .. }))
    });
    let KtError::Head(HeadError::Stale { age_ms }) = err else {
        unreachable!()
    };
    assert_eq!(age_ms, 30 * 24 * 60 * 60 * 1000);
}

#[test]
fn head_from_the_future_is_refused() {
    // The directory's clock runs an hour ahead of Alice's.
    let w = World::new();
    w.filler(1, "pre");
    w.check_bob().unwrap();
    let before = w.record_bob();
    w.dir
        .set_clock(Timestamp::from_millis(T0.as_millis() + 60 * 60 * 1000));
    w.filler(1, "ahead");
    let err = w.check_bob().unwrap_err();
    assert!(
        matches!(err, KtError::Head(HeadError::FromTheFuture { .. })),
        "{err:?}"
    );
    assert_eq!(w.record_bob(), before);
}

#[test]
fn key_changed_behind_the_sessions_back_is_unexplained() {
    // Alice verified Bob's key; then the directory moves Bob to another key while
    // Alice's sessions still hold the verified one.
    let w = World::new();
    let epoch = w.filler(2, "pre");
    assert_eq!(
        w.check_bob().unwrap(),
        KeyCheck::Verified { epoch, version: 1 }
    );
    let before = w.record_bob();
    let attacker = attacker_key(77);
    w.dir.set_mode(json!({
        "mode": "swap_key",
        "label": hex::encode(w.bob_label()),
        "value": hex::encode(kt::value(&attacker)),
    }));
    let err = w.check_bob().unwrap_err();
    match err {
        KtError::UnexplainedKeyChange {
            last_version,
            version,
            directory_key,
        } => {
            assert_eq!((last_version, version), (1, 2));
            assert_eq!(directory_key, attacker);
        }
        other => panic!("expected UnexplainedKeyChange, got {other:?}"),
    }
    assert_eq!(w.record_bob(), before);
    assert_eq!(w.assurance_bob(), IdentityAssurance::Directory { epoch });
}

#[test]
fn head_and_proof_of_another_epoch_do_not_mix() {
    // A proof made at epoch 3 checked against epoch 2's (validly signed) head.
    let w = World::new();
    w.filler(2, "pre");
    let (_, proof) = w.dir.lookup(&w.bob_label());
    let old = w.dir.head(Some(2));
    let err = w
        .alice
        .verify_contact_key(&w.trust, w.bob.address(), &old, &proof)
        .unwrap_err();
    assert!(matches!(err, KtError::Proof(_)), "{err:?}");
    assert_eq!(w.record_bob(), None);
}

#[test]
fn contact_without_a_held_key_is_no_identity() {
    let w = World::new();
    let carol = device("carol", 3, &w.clock);
    w.dir.publish(&[entry(&carol)]);
    let (head, proof) = w.dir.lookup(&kt::label(carol.address()));
    let err = w
        .alice
        .verify_contact_key(&w.trust, carol.address(), &head, &proof)
        .unwrap_err();
    assert!(matches!(err, KtError::NoIdentity), "{err:?}");
}

#[test]
fn directory_answers_bad_requests_with_4xx_and_keeps_serving() {
    let w = World::new();
    let cases: [(&[u8], u16); 8] = [
        (b"garbage\r\n\r\n", 400),
        (b"GET /nowhere HTTP/1.1\r\n\r\n", 404),
        (b"GET /lookup?label=zz HTTP/1.1\r\n\r\n", 400),
        (b"GET /lookup?label=00ff HTTP/1.1\r\n\r\n", 404),
        (b"GET /audit?from=3&to=1 HTTP/1.1\r\n\r\n", 400),
        (b"GET /head?epoch=99 HTTP/1.1\r\n\r\n", 404),
        (
            b"POST /publish HTTP/1.1\r\nContent-Length: 5\r\n\r\n{nope",
            400,
        ),
        (
            b"POST /mode HTTP/1.1\r\nContent-Length: 18\r\n\r\n{\"mode\":\"chaos!\"}\n",
            400,
        ),
    ];
    for (request, status) in cases {
        let (got, body) = w.dir.raw(request);
        assert_eq!(
            got,
            status,
            "{} -> {}",
            String::from_utf8_lossy(request),
            String::from_utf8_lossy(&body)
        );
    }
    let reply = w.dir.request(
        "POST",
        "/mode",
        Some(&json!({ "mode": "rollback", "epoch": 7 })),
    );
    assert_eq!(reply.status, 404);
    let reply = w.dir.request(
        "POST",
        "/publish",
        Some(&json!({ "entries": [
            { "label": "00", "value": "01" }, { "label": "00", "value": "02" }
        ] })),
    );
    assert_eq!(reply.status, 400, "a label twice in one epoch");
    // Still serving, still honest.
    assert_eq!(
        w.check_bob().unwrap(),
        KeyCheck::Verified {
            epoch: 1,
            version: 1
        }
    );
}

#[cfg(feature = "kt-audit")]
#[test]
fn append_only_audit_passes_honestly_and_fails_for_the_fork() {
    let w = World::new();
    let last = w.filler(5, "a");
    assert_eq!(last, 6);
    let heads: Vec<SignedHead> = (1..=last).map(|e| w.dir.head(Some(e))).collect();
    for pair in heads.windows(2) {
        let (to, proof) = w.dir.audit(pair[0].epoch(), pair[1].epoch());
        assert_eq!(to, pair[1]);
        kt::verify_append_only(&w.trust, &pair[0], &pair[1], &proof).unwrap();
    }
    // A proof between other epochs than the heads' is refused.
    let (_, proof) = w.dir.audit(1, 2);
    assert!(kt::verify_append_only(&w.trust, &heads[2], &heads[3], &proof).is_err());

    // The fork rewrites epoch 6 and goes on to 7; from the honest epoch 6 that Alice
    // holds, the fork's step to 7 is not append-only.
    let honest6 = heads[5].clone();
    w.dir.set_mode(json!({ "mode": "fork" }));
    let forked6 = w.dir.head(Some(6));
    assert_ne!(forked6.root(), honest6.root());
    w.filler(1, "b");
    let (forked7, proof) = w.dir.audit(6, 7);
    assert!(kt::verify_append_only(&w.trust, &honest6, &forked7, &proof).is_err());
    // The fork is consistent with itself: only the honest head exposes it.
    kt::verify_append_only(&w.trust, &forked6, &forked7, &proof).unwrap();

    // Back to the honest tree: its own step from 6 to 7 passes.
    w.dir.set_mode(json!({ "mode": "honest" }));
    let (honest7, proof) = w.dir.audit(6, 7);
    assert_ne!(honest7.root(), forked7.root());
    kt::verify_append_only(&w.trust, &honest6, &honest7, &proof).unwrap();
}
