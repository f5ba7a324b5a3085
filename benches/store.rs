//! Per-message cost of committing session changes: decrypt-and-commit and
//! encrypt-and-commit of a 140-byte message on `SqliteStore` (WAL, synchronous FULL and
//! NORMAL) and on `InMemoryStore`, against a bare SQLite durable transaction that writes
//! the same rows and bytes (a session-sized blob replaced, a message-sized row inserted).
//!
//! `cargo bench --bench store` (databases go to `$CONFIDE_BENCH_DIR` or the system temp
//! directory: put it on the disk you ship on, fsync cost is the whole story).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;

use confide::session::Versions;
use confide::session::cipher::{self, BundleSpec};
use confide::store::{
    DurableStore, InMemoryStore, ProtocolStore, SqliteOptions, SqliteStore, StoreKey, Synchronous,
};
use confide::{Address, IdentityKeyPair, Timestamp};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const NOW: Timestamp = Timestamp::from_millis(1_700_000_000_000);
const MESSAGE: [u8; 140] = [0x61; 140];

fn sqlite(dir: &Path, name: &str, sync: Synchronous, rng: &mut ChaCha20Rng) -> SqliteStore {
    let s = SqliteStore::open_with(
        dir.join(name),
        &StoreKey::from_bytes([7; 32]),
        SqliteOptions::default().with_synchronous(sync),
        rng,
    )
    .unwrap();
    s.set_local_identity(&IdentityKeyPair::generate(rng), 1)
        .unwrap();
    s
}

/// A session from `a` to `b`, with one round trip so both sides use plain messages.
fn connect(a: &dyn ProtocolStore, b: &dyn ProtocolStore, rng: &mut ChaCha20Rng) {
    let (aa, ba) = (Address::new("a", 1), Address::new("b", 1));
    let spec = BundleSpec::new(1, 1).with_pre_key(Some(1));
    let bundle = cipher::publish_bundle(b, rng, &spec, NOW).unwrap();
    cipher::start_session(a, &ba, &bundle, Versions::V3AndV4, rng, NOW).unwrap();
    let m = cipher::encrypt(a, &aa, &ba, b"hi", &mut confide::SystemRng::new(), NOW).unwrap();
    cipher::decrypt(b, &ba, &aa, &m, rng, NOW).unwrap();
    let r = cipher::encrypt(b, &ba, &aa, b"hi", &mut confide::SystemRng::new(), NOW).unwrap();
    cipher::decrypt(a, &aa, &ba, &r, rng, NOW).unwrap();
}

/// Makes the store under test, given a file name.
type MakeStore<'a> = Box<dyn Fn(&str, &mut ChaCha20Rng) -> Box<dyn ProtocolStore> + 'a>;

fn bench(c: &mut Criterion) {
    let base = std::env::var_os("CONFIDE_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let tmp = tempfile::tempdir_in(base).unwrap();
    let dir = tmp.path();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let (aa, ba) = (Address::new("a", 1), Address::new("b", 1));

    let mut g = c.benchmark_group("store");
    g.sample_size(30);
    let variants: [(&str, MakeStore<'_>); 3] = [
        (
            "memory",
            Box::new(|_, r| Box::new(InMemoryStore::generate(r))),
        ),
        (
            "sqlite_full",
            Box::new(|n, r| Box::new(sqlite(dir, n, Synchronous::Full, r))),
        ),
        (
            "sqlite_normal",
            Box::new(|n, r| Box::new(sqlite(dir, n, Synchronous::Normal, r))),
        ),
    ];
    let mut session_len = 0;
    for (name, make) in &variants {
        // Receiver under test; the sender stays in memory so only the commit differs.
        let sender = InMemoryStore::generate(&mut rng);
        let receiver = make(&format!("{name}_rx.db"), &mut rng);
        connect(&sender, &*receiver, &mut rng);
        g.bench_function(format!("decrypt_commit_140B/{name}"), |b| {
            b.iter_batched(
                || {
                    cipher::encrypt(
                        &sender,
                        &aa,
                        &ba,
                        &MESSAGE,
                        &mut confide::SystemRng::new(),
                        NOW,
                    )
                    .unwrap()
                },
                |m| cipher::decrypt(&*receiver, &ba, &aa, &m, &mut rng, NOW).unwrap(),
                BatchSize::SmallInput,
            );
        });
        session_len = receiver
            .session(&aa)
            .unwrap()
            .map_or(0, |r| r.to_bytes().len());

        let tx = make(&format!("{name}_tx.db"), &mut rng);
        let peer = InMemoryStore::generate(&mut rng);
        connect(&*tx, &peer, &mut rng);
        g.bench_function(format!("encrypt_commit_140B/{name}"), |b| {
            b.iter(|| {
                cipher::encrypt(
                    &*tx,
                    &aa,
                    &ba,
                    &MESSAGE,
                    &mut confide::SystemRng::new(),
                    NOW,
                )
                .unwrap()
            });
        });
    }

    // Baseline: one durable WAL transaction writing the same shape and bytes as a
    // decrypt commit (session blob replaced, 140-byte message row + seal overhead).
    for (name, sync) in [("full", "FULL"), ("normal", "NORMAL")] {
        let conn = rusqlite::Connection::open(dir.join(format!("bare_{name}.db"))).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", sync).unwrap();
        conn.execute_batch(
            "CREATE TABLE s (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID;
             CREATE TABLE m (k BLOB PRIMARY KEY, t INTEGER, v BLOB) WITHOUT ROWID;",
        )
        .unwrap();
        let session = vec![0x33u8; session_len + 28];
        let message = vec![0x44u8; MESSAGE.len() + 28];
        let mut n: u64 = 0;
        g.bench_function(format!("bare_sqlite_txn/{name}"), |b| {
            b.iter(|| {
                n += 1;
                let mut key = [0u8; 32];
                key[..8].copy_from_slice(&n.to_be_bytes());
                let tx = conn.unchecked_transaction().unwrap();
                tx.prepare_cached("INSERT OR REPLACE INTO s (k, v) VALUES ('a', ?1)")
                    .unwrap()
                    .execute([&session])
                    .unwrap();
                tx.prepare_cached("INSERT INTO m (k, t, v) VALUES (?1, 0, ?2)")
                    .unwrap()
                    .execute(rusqlite::params![&key[..], &message])
                    .unwrap();
                tx.commit().unwrap();
            });
        });
    }
    g.finish();
    eprintln!("session record: {session_len} bytes");
}

criterion_group!(benches, bench);
criterion_main!(benches);
