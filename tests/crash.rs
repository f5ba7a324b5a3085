//! Crash test: a child process floods send/receive between two SqliteStores on real
//! database files (1:1 both ways, and Alice's group messages to Bob through
//! `Device`) while this process SIGKILLs it at seeded random moments, many times.
//! After every kill: every message delivered exactly once and in order, each with the
//! plaintext its sender meant, no (ratchet key, counter) pair and no (chain id,
//! iteration) pair used by two ciphertexts, both databases open every row, and the
//! message table agrees with the app's delivery log. The flood, the kills and the
//! checks are tests/common/crash.rs, shared with tests/postgres.rs; this file says
//! how to open a SQLite store for a run.
//!
//! The child is this same test binary re-run with `CONFIDE_CRASH_DIR` set (see
//! [`crash_child_entry`]). Kills: `CONFIDE_CRASH_KILLS` (default 240), seed:
//! `CONFIDE_CRASH_SEED`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(unix)]

#[path = "common/crash.rs"]
mod crash;
#[path = "common/stores.rs"]
mod stores;

use std::path::{Path, PathBuf};
use std::time::Duration;

use confide::store::{SqliteStore, StoreKey};
use rand_chacha::ChaCha20Rng;

/// Opens `name`'s database file in `dir` (created on first use).
fn open_store(dir: &Path, name: &str, rng: &mut ChaCha20Rng) -> SqliteStore {
    SqliteStore::open(
        dir.join(format!("{name}.db")),
        &StoreKey::from_bytes(crash::KEY),
        rng,
    )
    .unwrap()
}

/// The child: runs when `CONFIDE_CRASH_DIR` is set, otherwise passes at once.
#[test]
fn crash_child_entry() {
    let Some(dir) = std::env::var_os("CONFIDE_CRASH_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir);
    crash::child(&dir, |name, rng| open_store(&dir, name, rng));
}

#[test]
fn sigkill_at_random_points_loses_and_duplicates_nothing() {
    if std::env::var_os("CONFIDE_CRASH_DIR").is_some() {
        return;
    }
    let kills = crash::kills();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let parent = crash::Parent {
        dir,
        child_test: "crash_child_entry",
        env: vec![("CONFIDE_CRASH_DIR", dir.into())],
        // Kill somewhere in 40..240 ms: mostly mid-flood (a start on an existing
        // database takes some 50 ms of fsyncs here), sometimes during start-up.
        min_delay: Duration::from_millis(40),
    };
    let tally = parent.run(
        kills,
        crash::seed(),
        |_, child| {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
        },
        |rng| crash::check(dir, rng, |name, rng| open_store(dir, name, rng)),
    );
    eprintln!("crash test: {kills} SIGKILLs, {}", tally.summary());
    tally.assert_progress(kills);
}

/// The same over a v4 session (`CONFIDE_CRASH_VERSION=4`: PQXDH with a Kyber prekey,
/// SPQR in every 1:1 message): SPQR epochs advance while the child is killed (an epoch
/// takes some 40 messages each way; the run reaches epoch 2 or 3), and besides the
/// checks above no SPQR (epoch, key index) is used twice by a sender.
#[test]
fn sigkill_over_v4_sessions_loses_and_duplicates_nothing() {
    if std::env::var_os("CONFIDE_CRASH_DIR").is_some() {
        return;
    }
    let kills = crash::kills();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let parent = crash::Parent {
        dir,
        child_test: "crash_child_entry",
        env: vec![
            ("CONFIDE_CRASH_DIR", dir.into()),
            ("CONFIDE_CRASH_VERSION", "4".into()),
        ],
        min_delay: Duration::from_millis(40),
    };
    let check = |rng: &mut ChaCha20Rng| {
        crash::check_version(dir, rng, true, |name, rng| open_store(dir, name, rng))
    };
    let tally = parent.run(
        kills,
        crash::seed() ^ 4,
        |_, child| {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
        },
        check,
    );
    eprintln!("v4 crash test: {kills} SIGKILLs, {}", tally.summary());
    tally.assert_progress(kills);
    assert!(
        tally.max_epoch >= 2,
        "SPQR epochs advanced (highest {})",
        tally.max_epoch
    );
}

/// The privacy-state child: runs when `CONFIDE_PRIVACY_CRASH_DIR` is set.
#[test]
fn privacy_child_entry() {
    let Some(dir) = std::env::var_os("CONFIDE_PRIVACY_CRASH_DIR") else {
        return;
    };
    privacy::child(Path::new(&dir));
}

/// SIGKILL while a device receives attestations and records consent: after every
/// restart the verifier's highest serial is never below the tracker's (the downgrade
/// the verifier exists to refuse), and every update the app saw succeed is on disk.
#[test]
fn sigkill_during_privacy_updates_never_lowers_the_verifier_or_loses_an_update() {
    if std::env::var_os("CONFIDE_PRIVACY_CRASH_DIR").is_some()
        || std::env::var_os("CONFIDE_CRASH_DIR").is_some()
    {
        return;
    }
    let kills = crash::kills() / 4;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let parent = crash::Parent {
        dir,
        child_test: "privacy_child_entry",
        env: vec![("CONFIDE_PRIVACY_CRASH_DIR", dir.into())],
        min_delay: Duration::from_millis(40),
    };
    let mut rng = <ChaCha20Rng as rand_core::SeedableRng>::seed_from_u64(crash::seed());
    let mut progress = 0;
    for k in 0..kills {
        let mut child = parent.spawn(crash::seed().wrapping_add(k as u64), false);
        let delay = Duration::from_millis(40 + rand_core::RngCore::next_u64(&mut rng) % 200);
        std::thread::sleep(delay);
        assert!(
            child.try_wait().unwrap().is_none(),
            "child exited (run {k})"
        );
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        progress = privacy::check(dir, &mut rng);
    }
    eprintln!("privacy crash test: {kills} SIGKILLs, {progress} attestations acknowledged");
    assert!(progress > kills / 2, "the child made progress");
}

mod privacy {
    use std::fs::OpenOptions;
    use std::io::Write;
    use std::path::Path;

    use confide::business::{
        AttestationVerifier, BusinessId, DisclosureTracker, HostingAttestation, HostingMode,
        Provider,
    };
    use confide::device::{Device, FixedClock, state_kind};
    use confide::policy::{CollectionMethod, ConsentEvent, Decision, PolicyId, timeline_2021};
    use confide::store::IdentityStore;
    use confide::{Address, IdentityKeyPair, Timestamp};
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::{open_store, stores};

    // 2021-01-10, inside the 2021 policy's window.
    const NOW: Timestamp = Timestamp::from_millis(1_610_236_800_000);

    fn business() -> BusinessId {
        BusinessId::new("acme-shop").unwrap()
    }

    fn business_key() -> IdentityKeyPair {
        IdentityKeyPair::generate(&mut ChaCha20Rng::seed_from_u64(7))
    }

    fn serial_of(t: &DisclosureTracker) -> u64 {
        match t.current_mode() {
            Some(HostingMode::VendorManaged {
                retention_days: Some(d),
                ..
            }) => u64::from(*d),
            _ => 0,
        }
    }

    /// The acknowledged log: one line per update the child saw succeed.
    fn acked(dir: &Path) -> Vec<String> {
        let s = std::fs::read_to_string(dir.join("acked.log")).unwrap_or_default();
        let complete = s.rfind('\n').map_or("", |i| &s[..=i]);
        complete.lines().map(str::to_string).collect()
    }

    fn ack(dir: &Path, line: &str) {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("acked.log"))
            .unwrap();
        f.write_all(format!("{line}\n").as_bytes()).unwrap();
        f.sync_data().unwrap();
    }

    /// Receives attestation after attestation (each serial one above the tracker's)
    /// and records a consent answer after each, until killed.
    pub(super) fn child(dir: &Path) {
        let mut rng = ChaCha20Rng::seed_from_u64(super::crash::seed());
        let store = stores::with_identity(open_store(dir, "carol", &mut rng), &mut rng);
        let d = Device::new(
            store,
            Address::new("carol", 1),
            rng.clone(),
            FixedClock::new(NOW),
        )
        .with_versions(confide::session::Versions::V3AndV4);
        let key = business_key();
        let schedule = timeline_2021([b"terms 2016", b"terms 2021"], true);
        let vendor = Provider::with_fingerprint("Hosting Co", [7; 32]).unwrap();
        loop {
            let serial = serial_of(&d.disclosure(&business()).unwrap()) + 1;
            let mode = HostingMode::VendorManaged {
                vendor: vendor.clone(),
                retention_days: Some(serial as u32),
            };
            let day = 86_400_000;
            let signed = HostingAttestation::new(
                business(),
                mode,
                serial,
                Timestamp::from_millis(NOW.as_millis() - day),
                Timestamp::from_millis(NOW.as_millis() + day),
            )
            .unwrap()
            .sign(&mut rng, &key);
            d.receive_attestation(&signed, &business(), key.identity_key())
                .unwrap();
            ack(dir, &format!("a:{serial}"));
            let event = ConsentEvent::new(
                PolicyId::new("2021-01").unwrap(),
                Decision::NotNow,
                NOW,
                CollectionMethod::InAppNotice,
            );
            d.record_consent(event, &schedule).unwrap();
            ack(dir, "c");
        }
    }

    /// After a kill: the stored verifier is never behind the stored tracker, and the
    /// store holds every acknowledged update. Returns the acknowledged attestations.
    pub(super) fn check(dir: &Path, rng: &mut ChaCha20Rng) -> usize {
        let store = open_store(dir, "carol", rng);
        let st = store.state_store().unwrap();
        let verifier = st
            .state(state_kind::ATTESTATION_VERIFIER, "")
            .unwrap()
            .map_or_else(AttestationVerifier::new, |b| {
                AttestationVerifier::from_bytes(&b).unwrap()
            })
            .highest_serial(&business())
            .unwrap_or(0);
        let tracker = st
            .state(state_kind::DISCLOSURE_TRACKER, business().as_str())
            .unwrap()
            .map_or(0, |b| {
                serial_of(&DisclosureTracker::from_bytes(&b).unwrap())
            });
        assert!(
            verifier >= tracker,
            "verifier at serial {verifier}, behind the tracker at {tracker}"
        );
        let acked = acked(dir);
        let last = acked
            .iter()
            .filter_map(|l| l.strip_prefix("a:"))
            .map(|s| s.parse::<u64>().unwrap())
            .max()
            .unwrap_or(0);
        assert!(
            tracker >= last,
            "acknowledged serial {last} lost (tracker at {tracker})"
        );
        let consents = acked.iter().filter(|l| *l == "c").count();
        let ledger = st
            .state(state_kind::CONSENT_LEDGER, "")
            .unwrap()
            .map_or(0, |b| {
                confide::policy::ConsentLedger::from_bytes(&b)
                    .unwrap()
                    .entries()
                    .len()
            });
        assert!(
            ledger >= consents,
            "{consents} consents acknowledged, {ledger} stored"
        );
        acked.len() - consents
    }
}
