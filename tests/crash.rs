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
