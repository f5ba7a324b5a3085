//! PostgresStore against a real PostgreSQL server that each test starts on loopback:
//! round trips for every store trait, sealing (swapped rows, wrong key, newer schema),
//! schema fixtures (a committed `pg_dump` per schema version that must still open),
//! two devices in one database, concurrency, Kyber prekeys (their contract, their uses
//! in session commits, two hosts racing on one use), the transactional group store
//! through [`Device`] (redelivery, acknowledge, compare-and-swap conflicts, concurrent
//! group decrypts and encrypts across threads and pools), and the crash test of
//! `tests/crash.rs` (a child process floods 1:1 and group send/receive, the parent
//! SIGKILLs it at seeded random points, and after every kill proves exactly-once
//! delivery, no reused message key and a consistent store).
//!
//! The server: `initdb` and `pg_ctl` from PATH or `/usr/lib/postgresql/*/bin`, a data
//! directory in a temp dir, 127.0.0.1 on a free port, its Unix socket in the temp dir.
//! As root (CI) it runs as the `postgres` user through `runuser`, since PostgreSQL
//! refuses to run as root. [`PgServer`]'s `Drop` stops it, on failure too.
#![cfg(feature = "postgres")]
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/attacker.rs"]
mod attacker_expect;
#[path = "common/crash.rs"]
mod crash;
#[path = "common/stores.rs"]
mod stores;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use confide::device::{Device, FixedClock, state_kind};
use confide::group::{DistributionId, Layout, SenderKeyMessage, SenderKeyRecord};
use confide::keys::{PreKeyRecord, SignedPreKeyRecord};
use confide::policy::Activity;
use confide::session::Versions;
use confide::session::cipher::{self, BundleSpec};
use confide::store::postgres::SCHEMA_VERSION;
use confide::store::postgres::client::{Client, Config, NoTls};
use confide::store::{
    CommitOutcome, DurableStore, GroupCommit, IdentityStore, MessageId, NewMessage, OpenError,
    PostgresPool, PostgresStore, PreKeyStore, RowVersion, SenderKeyStore, SessionStore,
    SignedPreKeyStore, StateStore, StoreKey, TamperedRow,
};
use confide::{Address, CiphertextMessage, IdentityKeyPair, StoreError, Timestamp};
use rand_chacha::ChaCha20Rng;

use stores::{NOW, alice, bob, key, rng};

// ---- the server ------------------------------------------------------------------

/// A PostgreSQL server of our own on 127.0.0.1, stopped on drop.
struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_root: bool,
}

/// The directory holding both `initdb` and `pg_ctl`: PATH first, then Debian's
/// versioned directories (newest first).
fn pg_bin() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut candidates: Vec<PathBuf> = std::env::split_paths(&path).collect();
    let mut versioned: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| {
                let e = e.ok()?;
                let v = e.file_name().to_str()?.parse().ok()?;
                Some((v, e.path().join("bin")))
            })
            .collect()
        })
        .unwrap_or_default();
    versioned.sort_by_key(|v| std::cmp::Reverse(v.0));
    candidates.extend(versioned.into_iter().map(|(_, p)| p));
    candidates
        .into_iter()
        .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
        .unwrap_or_else(|| {
            panic!(
                "PostgreSQL is not installed: no initdb/pg_ctl on PATH or in \
                 /usr/lib/postgresql/*/bin. .ci/run installs it with \
                 `apt-get install -y postgresql` (Debian) before running \
                 `cargo test --features postgres --test postgres`; do the same here."
            )
        })
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl PgServer {
    fn start() -> Self {
        let bin = pg_bin();
        // Under /tmp whatever TMPDIR says: the postgres user must reach it, and the
        // socket path must stay within the 107 bytes a Unix socket name may have.
        let dir = tempfile::Builder::new()
            .prefix("confide-pg-")
            .tempdir_in("/tmp")
            .unwrap();
        let as_root = is_root();
        if as_root {
            let user = Command::new("id")
                .args(["-u", "postgres"])
                .output()
                .unwrap();
            assert!(
                user.status.success(),
                "running as root but there is no `postgres` user to run the server as \
                 (Debian's postgresql package creates it: .ci/run installs it with \
                 `apt-get install -y postgresql`)"
            );
            let ok = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown of the server's temp dir to postgres failed");
        }
        let server = Self {
            dir,
            bin,
            port: free_port(),
            as_root,
        };
        let data = server.dir.path().join("data");
        let out = server
            .pg("initdb")
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "-N",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        server.run();
        server
    }

    /// Starts the server on its data directory (again, after [`PgServer::crash`]).
    fn run(&self) {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("server.log");
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c max_connections=60",
            self.port,
            self.dir.path().display()
        );
        let out = self
            .pg("pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "-o", &opts, "start"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Stops the server the way a crash does (`-m immediate`: no checkpoint, WAL
    /// recovery at the next start). Returns whether it was running.
    fn crash(&self) -> bool {
        self.pg("pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// A PostgreSQL program, run as the `postgres` user when we are root: from the
    /// directory of `initdb`, or of the file it links to (PATH may hold links to
    /// `initdb` and `pg_ctl` only), so client and server are of one version.
    fn pg(&self, program: &str) -> Command {
        let real = std::fs::canonicalize(self.bin.join("initdb"))
            .ok()
            .and_then(|p| p.parent().map(|d| d.join(program)));
        let exe = std::iter::once(self.bin.join(program))
            .chain(real)
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("no {program} beside initdb in {}", self.bin.display()));
        if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn config(&self) -> Config {
        config_for(self.port)
    }

    fn pool(&self, size: usize) -> PostgresPool {
        PostgresPool::new(self.config(), size)
    }

    fn client(&self) -> Client {
        self.config().connect(NoTls).unwrap()
    }
}

fn config_for(port: u16) -> Config {
    let mut c = Config::new();
    c.host("127.0.0.1")
        .port(port)
        .user("postgres")
        .dbname("postgres")
        .connect_timeout(Duration::from_secs(20));
    c
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.crash();
    }
}

// ---- helpers ---------------------------------------------------------------------

/// Opens `device`'s store and gives it an identity if it has none.
fn open(pool: &PostgresPool, device: &str, k: &StoreKey, seed: u64) -> PostgresStore {
    let mut r = rng(seed);
    let store = PostgresStore::open(pool, device, k, &mut r).unwrap();
    if !store.has_local_identity().unwrap() {
        let id = IdentityKeyPair::generate(&mut r);
        store
            .set_local_identity(&id, 1000 + (seed as u32 & 0xfff))
            .unwrap();
    }
    store
}

/// Devices `a` and `b` in one database with a session, `b`'s first message from `a`
/// not yet decrypted.
fn pair(
    pool: &PostgresPool,
    a: &str,
    b: &str,
) -> (PostgresStore, PostgresStore, CiphertextMessage) {
    let sa = open(pool, a, &key(1), 1);
    let sb = open(pool, b, &key(2), 2);
    let mut r = rng(3);
    let spec = BundleSpec::new(1, 7).with_pre_key(Some(42));
    let bundle = cipher::publish_bundle(&sb, &mut r, &spec, NOW).unwrap();
    cipher::start_session(
        &sa,
        &Address::new(b, 1),
        &bundle,
        Versions::V3AndV4,
        &mut r,
        NOW,
    )
    .unwrap();
    let first = cipher::encrypt(
        &sa,
        &Address::new(a, 1),
        &Address::new(b, 1),
        b"first",
        &mut confide::SystemRng::new(),
        NOW,
    )
    .unwrap();
    (sa, sb, first)
}

fn tampered(e: StoreError) -> Option<&'static str> {
    match e {
        StoreError::Tampered(TamperedRow { table, .. }) => Some(table),
        _ => None,
    }
}

// ---- round trips -----------------------------------------------------------------

#[test]
fn every_trait_round_trips_and_survives_reopen() {
    let server = PgServer::start();
    let pool = server.pool(2);
    let s = open(&pool, "host/dev-1", &key(1), 1);
    let mut r = rng(2);

    // IdentityStore.
    let me = s.local_identity().unwrap();
    let reg = s.local_registration_id().unwrap();
    let peer = *IdentityKeyPair::generate(&mut r).identity_key();
    assert!(s.identity(&alice()).unwrap().is_none());
    s.save_identity(&alice(), &peer).unwrap();
    assert_eq!(s.identity(&alice()).unwrap(), Some(peer));
    assert!(s.state_store().is_some());

    // PreKeyStore and SignedPreKeyStore.
    let pk = PreKeyRecord::generate(&mut r, 5);
    s.save_pre_key(&pk).unwrap();
    assert_eq!(
        s.pre_key(5).unwrap().unwrap().to_bytes(),
        pk.to_bytes(),
        "prekey round trip"
    );
    s.save_pre_key(&PreKeyRecord::generate(&mut r, u32::MAX))
        .unwrap();
    assert!(s.pre_key(u32::MAX).unwrap().is_some());
    s.remove_pre_key(u32::MAX).unwrap();
    assert!(s.pre_key(u32::MAX).unwrap().is_none());
    let spk = SignedPreKeyRecord::generate(&mut r, &me, 9, NOW);
    s.save_signed_pre_key(&spk).unwrap();
    assert_eq!(
        s.signed_pre_key(9).unwrap().unwrap().to_bytes(),
        spk.to_bytes()
    );
    assert!(s.signed_pre_key(10).unwrap().is_none());

    // SenderKeyStore: our own chain, saved after every use.
    let dist = DistributionId::random(&mut r);
    let me_addr = Address::new("host/dev-1", 1);
    let mut own = SenderKeyRecord::new(dist, Layout::Current);
    let skdm = own.distribution(&mut r);
    s.save_sender_key(&me_addr, dist, &own).unwrap();
    let mut loaded = s.sender_key(&me_addr, dist).unwrap().unwrap();
    let group_msg = loaded.encrypt(b"group hello", &mut r).unwrap();
    s.save_sender_key(&me_addr, dist, &loaded).unwrap();
    assert!(
        s.sender_key(&me_addr, DistributionId::random(&mut r))
            .unwrap()
            .is_none()
    );
    // ... and a chain learned from a member, stored by another device.
    let other = open(&pool, "host/dev-2", &key(1), 3);
    let mut learned = SenderKeyRecord::new(dist, Layout::Current);
    learned.process(&skdm).unwrap();
    other.save_sender_key(&me_addr, dist, &learned).unwrap();
    let mut learned = other.sender_key(&me_addr, dist).unwrap().unwrap();
    assert_eq!(
        learned.decrypt(&group_msg).unwrap().as_slice(),
        b"group hello"
    );
    other.save_sender_key(&me_addr, dist, &learned).unwrap();

    // StateStore.
    s.save_state("ledger", "acme", b"v1").unwrap();
    s.save_state("ledger", "acme", b"v2").unwrap();
    s.save_state("ledger", "acmf", b"other").unwrap();
    assert_eq!(
        s.state("ledger", "acme").unwrap().unwrap().as_slice(),
        b"v2"
    );
    s.remove_state("ledger", "acmf").unwrap();
    assert!(s.state("ledger", "acmf").unwrap().is_none());

    // SessionStore: a session made through the cipher, then reopened elsewhere.
    let bundle = cipher::publish_bundle(
        &other,
        &mut r,
        &BundleSpec::new(1, 1).with_pre_key(Some(1)),
        NOW,
    )
    .unwrap();
    let dev2 = Address::new("host/dev-2", 1);
    cipher::start_session(&s, &dev2, &bundle, Versions::V3AndV4, &mut r, NOW).unwrap();
    let m = cipher::encrypt(
        &s,
        &Address::new("host/dev-1", 1),
        &dev2,
        b"over the session",
        &mut confide::SystemRng::new(),
        NOW,
    )
    .unwrap();
    assert!(s.session(&dev2).unwrap().is_some());

    drop((s, other, pool));
    // A new pool (a restarted host) sees everything.
    let pool = server.pool(1);
    let s = open(&pool, "host/dev-1", &key(1), 4);
    let other = open(&pool, "host/dev-2", &key(1), 5);
    assert_eq!(s.local_identity().unwrap().to_bytes(), me.to_bytes());
    assert_eq!(s.local_registration_id().unwrap(), reg);
    assert_eq!(s.identity(&alice()).unwrap(), Some(peer));
    assert!(s.pre_key(5).unwrap().is_some());
    assert!(s.signed_pre_key(9).unwrap().is_some());
    assert_eq!(
        s.state("ledger", "acme").unwrap().unwrap().as_slice(),
        b"v2"
    );
    let got = cipher::decrypt(
        &other,
        &Address::new("host/dev-2", 1),
        &Address::new("host/dev-1", 1),
        &m,
        &mut r,
        NOW,
    )
    .unwrap();
    assert_eq!(got.plaintext.as_slice(), b"over the session");
    let reply = cipher::encrypt(
        &other,
        &Address::new("host/dev-2", 1),
        &Address::new("host/dev-1", 1),
        b"reply",
        &mut confide::SystemRng::new(),
        NOW,
    )
    .unwrap();
    assert_eq!(
        cipher::decrypt(
            &s,
            &Address::new("host/dev-1", 1),
            &dev2,
            &reply,
            &mut r,
            NOW
        )
        .unwrap()
        .plaintext
        .as_slice(),
        b"reply"
    );
    let mut own = s.sender_key(&me_addr, dist).unwrap().unwrap();
    let second = own.encrypt(b"second", &mut r).unwrap();
    let mut learned = other.sender_key(&me_addr, dist).unwrap().unwrap();
    assert_eq!(learned.decrypt(&second).unwrap().as_slice(), b"second");

    let sum = s.verify().unwrap();
    assert_eq!(
        (
            sum.identities,
            sum.pre_keys,
            sum.signed_pre_keys,
            sum.sessions
        ),
        (2, 1, 1, 1)
    );
    assert_eq!((sum.sender_keys, sum.states, sum.messages), (1, 1, 1));
    let sum2 = other.verify().unwrap();
    assert_eq!((sum2.sessions, sum2.messages, sum2.sender_keys), (1, 1, 1));
    assert_eq!(sum2.pre_keys, 0, "the one-time prekey was consumed");
}

/// [`stores::redelivery_until_acknowledged`], then expiry and purges.
#[test]
fn redelivery_returns_stored_plaintext_and_purges_work() {
    let server = PgServer::start();
    let pool = server.pool(2);
    let (a, b, first) = pair(&pool, "alice", "bob");
    stores::redelivery_until_acknowledged(&a, &b, &first);
    let mut r = rng(7);

    // Expiry: purged at its time, then a redelivery is refused.
    let m = cipher::encrypt(
        &a,
        &alice(),
        &bob(),
        b"third",
        &mut confide::SystemRng::new(),
        NOW,
    )
    .unwrap();
    stores::expiry_purges(&b, &m, &mut r);
    // The acknowledged record (of the first message) goes once it is old enough; the
    // unacknowledged "second" stays.
    let later = Timestamp::from_millis(NOW.as_millis() + 1);
    assert_eq!(b.purge_messages(NOW, later).unwrap(), 1);
    assert!(
        b.message(&alice(), &MessageId::of(&first))
            .unwrap()
            .is_none()
    );
    assert_eq!(b.verify().unwrap().messages, 1);
}

// ---- sealing ---------------------------------------------------------------------

#[test]
fn swapped_rows_are_refused_with_a_typed_error() {
    let server = PgServer::start();
    let pool = server.pool(2);
    let (_a, b, first) = pair(&pool, "dev-a", "dev-b");
    let mut r = rng(8);
    let from = Address::new("dev-a", 1);
    cipher::decrypt(&b, &Address::new("dev-b", 1), &from, &first, &mut r, NOW).unwrap();
    for id in [1u32, 2] {
        b.save_pre_key(&PreKeyRecord::generate(&mut r, id)).unwrap();
    }
    let k1 = *IdentityKeyPair::generate(&mut r).identity_key();
    let k2 = *IdentityKeyPair::generate(&mut r).identity_key();
    b.save_identity(&alice(), &k1).unwrap();
    b.save_identity(&bob(), &k2).unwrap();
    b.save_state("k", "one", b"1").unwrap();
    b.save_state("k", "two", b"2").unwrap();
    let dist = DistributionId::random(&mut r);
    b.save_sender_key(&alice(), dist, &SenderKeyRecord::new(dist, Layout::Current))
        .unwrap();
    b.verify().unwrap();

    // A third device sealed under the same key, holding a session with the same peer
    // address: moving its session row into dev-b's must fail too.
    let c = open(&pool, "dev-c", &key(2), 9);
    c.save_session(&from, &b.session(&from).unwrap().unwrap())
        .unwrap();

    let mut sql = server.client();
    sql.batch_execute(
        "UPDATE confide_pre_key SET v = (SELECT v FROM confide_pre_key
             WHERE owner = 'dev-b' AND id = 1) WHERE owner = 'dev-b' AND id = 2;
         UPDATE confide_identity SET v = (SELECT v FROM confide_identity
             WHERE owner = 'dev-b' AND name = 'alice') WHERE owner = 'dev-b' AND name = 'bob';
         UPDATE confide_state SET v = (SELECT v FROM confide_state
             WHERE owner = 'dev-b' AND k = 'one') WHERE owner = 'dev-b' AND k = 'two';
         UPDATE confide_sender_key SET name = 'bob' WHERE owner = 'dev-b';
         UPDATE confide_session SET v = (SELECT v FROM confide_session
             WHERE owner = 'dev-c') WHERE owner = 'dev-b';",
    )
    .unwrap();

    assert!(b.pre_key(1).unwrap().is_some());
    assert_eq!(tampered(b.pre_key(2).unwrap_err()), Some("pre_key"));
    assert_eq!(b.identity(&alice()).unwrap(), Some(k1));
    assert_eq!(tampered(b.identity(&bob()).unwrap_err()), Some("identity"));
    assert_eq!(tampered(b.state("k", "two").unwrap_err()), Some("state"));
    assert_eq!(
        tampered(b.sender_key(&bob(), dist).unwrap_err()),
        Some("sender_key")
    );
    assert_eq!(tampered(b.session(&from).unwrap_err()), Some("session"));
    assert!(matches!(
        cipher::encrypt(
            &b,
            &Address::new("dev-b", 1),
            &from,
            b"x",
            &mut confide::SystemRng::new(),
            NOW
        ),
        Err(confide::EncryptError::Store(StoreError::Tampered(_)))
    ));
    assert!(b.verify().is_err());
    // dev-c's own rows are untouched and still open.
    c.verify().unwrap();
    // Its identity row moved onto its registration-id row: the next open refuses it.
    sql.batch_execute(
        "UPDATE confide_meta SET v = (SELECT v FROM confide_meta
             WHERE owner = 'dev-c' AND k = 'local_identity')
         WHERE owner = 'dev-c' AND k = 'registration_id';",
    )
    .unwrap();
    assert!(matches!(
        PostgresStore::open(&pool, "dev-c", &key(2), &mut rng(1)),
        Err(OpenError::Corrupt { table: "meta" })
    ));
}

#[test]
fn wrong_key_newer_schema_and_bad_device_names_are_refused() {
    let server = PgServer::start();
    let pool = server.pool(1);
    drop(open(&pool, "d1", &key(1), 1));
    assert!(matches!(
        PostgresStore::open(&pool, "d1", &key(9), &mut rng(1)),
        Err(OpenError::WrongKey)
    ));
    // Another device may use another key in the same database.
    drop(open(&pool, "d2", &key(9), 2));
    for bad in ["", "a\0b", &"x".repeat(257)] {
        assert!(matches!(
            PostgresStore::open(&pool, bad, &key(1), &mut rng(1)),
            Err(OpenError::InvalidDevice)
        ));
    }
    let mut sql = server.client();
    // A device whose key check went missing (but whose rows did not) is corrupt, not
    // silently re-keyed.
    sql.execute(
        "DELETE FROM confide_meta WHERE owner = 'd2' AND k = 'key_check'",
        &[],
    )
    .unwrap();
    assert!(matches!(
        PostgresStore::open(&pool, "d2", &key(9), &mut rng(1)),
        Err(OpenError::Corrupt { table: "meta" })
    ));
    let v: i32 = sql
        .query_one("SELECT version FROM confide_schema_version", &[])
        .unwrap()
        .get(0);
    assert_eq!(v as u32, SCHEMA_VERSION);
    sql.execute(
        "UPDATE confide_schema_version SET version = $1",
        &[&(SCHEMA_VERSION as i32 + 1)],
    )
    .unwrap();
    match PostgresStore::open(&pool, "d1", &key(1), &mut rng(1)) {
        Err(OpenError::NewerSchema { found, supported }) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    // An unreachable server is a typed error too.
    let dead = PostgresPool::new(config_for(free_port()), 1);
    assert!(matches!(
        PostgresStore::open(&dead, "d1", &key(1), &mut rng(1)),
        Err(OpenError::Backend(_))
    ));
}

#[test]
fn debug_output_holds_no_secrets_and_the_database_no_plaintext() {
    let server = PgServer::start();
    let mut config = server.config();
    config.password("hunter2-password");
    let pool = PostgresPool::new(config, 1);
    assert!(!format!("{pool:?}").contains("hunter2"));
    let pool = server.pool(1);
    let (a, b, first) = pair(&pool, "alice", "bob");
    assert_eq!(format!("{b:?}"), "PostgresStore { device: \"bob\", .. }");
    let mut r = rng(9);
    cipher::decrypt(&b, &bob(), &alice(), &first, &mut r, NOW).unwrap();
    let secret = b"attack at dawn, bring the plans";
    let m = cipher::encrypt(
        &a,
        &alice(),
        &bob(),
        secret,
        &mut confide::SystemRng::new(),
        NOW,
    )
    .unwrap();
    cipher::decrypt(&b, &bob(), &alice(), &m, &mut r, NOW).unwrap();
    let private = b.local_identity().unwrap().private_key().to_bytes();
    let public = b.local_identity().unwrap().identity_key().serialize();
    // Every value in every confide table, as the server holds it.
    let mut sql = server.client();
    let mut all = Vec::new();
    for t in [
        "meta",
        "identity",
        "pre_key",
        "signed_pre_key",
        "session",
        "message",
        "sender_key",
        "state",
    ] {
        for row in sql
            .query(
                &format!("SELECT v FROM confide_{t} WHERE v IS NOT NULL"),
                &[],
            )
            .unwrap()
        {
            all.extend(row.get::<_, Vec<u8>>(0));
        }
    }
    let has = |needle: &[u8]| all.windows(needle.len()).any(|w| w == needle);
    assert!(!all.is_empty());
    assert!(!has(secret));
    assert!(!has(b"first"));
    assert!(!has(private.as_ref()));
    assert!(!has(&public));
    assert!(!has(m.serialized()));
}

// ---- many devices, many threads ----------------------------------------------------

/// Two hosts' devices with the same peer addresses and prekey ids in one database:
/// neither sees the other's rows.
#[test]
fn two_devices_in_one_database_are_isolated() {
    let server = PgServer::start();
    let pool = server.pool(2);
    let (a1, b1, m1) = pair(&pool, "tenant1/alice", "tenant1/bob");
    let mut r = rng(10);
    // Tenant 2's devices, on another pool (another host), same prekey ids.
    let pool2 = server.pool(1);
    let b2 = open(&pool2, "tenant2/bob", &key(3), 11);
    assert_ne!(
        b1.local_identity().unwrap().to_bytes(),
        b2.local_identity().unwrap().to_bytes()
    );
    assert!(
        b2.pre_key(42).unwrap().is_none(),
        "tenant1's prekey is not ours"
    );
    let pk = PreKeyRecord::generate(&mut r, 42);
    b2.save_pre_key(&pk).unwrap();
    let from = Address::new("tenant1/alice", 1);
    assert!(b2.session(&from).unwrap().is_none());
    // tenant2/bob decrypting tenant1's message finds no session or prekey of its own.
    assert!(
        cipher::decrypt(
            &b2,
            &Address::new("tenant2/bob", 1),
            &from,
            &m1,
            &mut r,
            NOW
        )
        .is_err()
    );
    let got = cipher::decrypt(
        &b1,
        &Address::new("tenant1/bob", 1),
        &from,
        &m1,
        &mut r,
        NOW,
    )
    .unwrap();
    assert_eq!(got.plaintext.as_slice(), b"first");
    assert!(b1.pre_key(42).unwrap().is_none());
    assert_eq!(
        b2.pre_key(42).unwrap().unwrap().to_bytes(),
        pk.to_bytes(),
        "consuming tenant1's prekey 42 left tenant2's alone"
    );
    b2.save_state("kind", "k", b"two").unwrap();
    b1.save_state("kind", "k", b"one").unwrap();
    assert_eq!(b2.state("kind", "k").unwrap().unwrap().as_slice(), b"two");
    b1.remove_state("kind", "k").unwrap();
    assert_eq!(b2.state("kind", "k").unwrap().unwrap().as_slice(), b"two");
    // Purges and acknowledgements stay inside their device.
    assert_eq!(
        b2.purge_messages(Timestamp::from_millis(u64::MAX >> 2), NOW)
            .unwrap(),
        0
    );
    assert_eq!(b1.verify().unwrap().messages, 1);
    let s1 = b1.verify().unwrap();
    let s2 = b2.verify().unwrap();
    assert_eq!((s1.sessions, s1.identities, s1.states), (1, 1, 0));
    assert_eq!(
        (s2.sessions, s2.identities, s2.pre_keys, s2.states),
        (0, 0, 1, 1)
    );
    drop(a1);
}

/// The Kyber prekey contract ([`stores::kyber_pre_keys_contract`]) on a device, whose
/// rows survive a reopen by another host and stay invisible to another device with the
/// same ids; [`stores::kyber_use_commits`]; and
/// [`stores::concurrent_last_resort_commits_one_wins`] from two hosts (two pools) on one
/// device.
#[test]
fn kyber_pre_keys_round_trip_commit_and_race() {
    use confide::store::{KyberPreKeyStore, KyberPreKeyUse};

    let server = PgServer::start();
    let pool = server.pool(2);
    let s = open(&pool, "kyber", &key(1), 1);
    stores::kyber_pre_keys_contract(s.kyber_pre_keys().unwrap());
    let other = open(&pool, "kyber-other", &key(1), 2);
    other
        .save_kyber_pre_key(2, b"the other device's", true)
        .unwrap();
    let replay = KyberPreKeyUse::new(2, 7, stores::base_key(1));
    assert!(!other.kyber_pre_key_used(&replay).unwrap());
    drop(s);
    let pool2 = server.pool(1);
    let s = open(&pool2, "kyber", &key(1), 3);
    let summary = s.verify().unwrap();
    assert_eq!((summary.kyber_pre_keys, summary.kyber_pre_key_uses), (2, 1));
    assert_eq!(
        s.kyber_pre_key(2).unwrap().unwrap().as_slice(),
        b"new last-resort record"
    );
    assert!(s.kyber_pre_key_used(&replay).unwrap());
    assert!(!s.mark_kyber_pre_key_used(&replay).unwrap());
    assert_eq!(
        other.kyber_pre_key(2).unwrap().unwrap().as_slice(),
        b"the other device's"
    );
    assert!(other.kyber_pre_key(4).unwrap().is_none());
    assert_eq!(other.verify().unwrap().kyber_pre_key_uses, 0);

    stores::kyber_use_commits(&open(&pool, "kyber-commits", &key(1), 4));
    let one = open(&pool, "kyber-race", &key(1), 5);
    let two = open(&pool2, "kyber-race", &key(1), 6);
    stores::concurrent_last_resort_commits_one_wins([&one, &two], 20);
}

/// Hosts starting together on a fresh database: the schema is created once, and a new
/// device opened by several at once gets one key check that all of them match.
#[test]
fn concurrent_first_opens_migrate_once_and_agree_on_a_new_device() {
    let server = PgServer::start();
    let port = server.port;
    let opens: Vec<_> = (0..4u64)
        .map(|t| {
            std::thread::spawn(move || {
                let pool = PostgresPool::new(config_for(port), 1);
                let mut r = rng(70 + t);
                let shared = PostgresStore::open(&pool, "shared", &key(5), &mut r).unwrap();
                let own = PostgresStore::open(&pool, &format!("own-{t}"), &key(6), &mut r).unwrap();
                own.save_state("k", "v", &t.to_be_bytes()).unwrap();
                drop(shared);
            })
        })
        .collect();
    for h in opens {
        h.join().unwrap();
    }
    let mut sql = server.client();
    let versions: i64 = sql
        .query_one("SELECT count(*) FROM confide_schema_version", &[])
        .unwrap()
        .get(0);
    assert_eq!(versions, 1);
    let checks: i64 = sql
        .query_one(
            "SELECT count(*) FROM confide_meta WHERE owner = 'shared' AND k = 'key_check'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(checks, 1);
    let pool = server.pool(1);
    assert!(matches!(
        PostgresStore::open(&pool, "shared", &key(7), &mut rng(1)),
        Err(OpenError::WrongKey)
    ));
    for t in 0..4u64 {
        let s = PostgresStore::open(&pool, &format!("own-{t}"), &key(6), &mut rng(1)).unwrap();
        assert_eq!(
            s.state("k", "v").unwrap().unwrap().as_slice(),
            t.to_be_bytes()
        );
    }
}

#[test]
fn store_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<PostgresStore>();
    check::<PostgresPool>();
}

/// [`stores::concurrent_threads_to_different_and_same_peers`], with all four devices
/// in one database and one pool.
#[test]
fn concurrent_threads_to_different_and_same_peers() {
    let server = PgServer::start();
    let pool = server.pool(4);
    let k = key(3);
    stores::concurrent_threads_to_different_and_same_peers(40, |name, seed| {
        open(&pool, name, &k, seed)
    });
}

/// [`stores::state_commit_is_compare_and_swap`] on one device; what it committed
/// verifies; two hosts (two pools, two opens of one device) commit concurrently without
/// losing an update; another device's rows are untouched.
#[test]
fn state_commit_is_compare_and_swap() {
    let server = PgServer::start();
    let pool = server.pool(2);
    let s = open(&pool, "state", &key(1), 1);
    stores::state_commit_is_compare_and_swap(&s);
    assert_eq!(s.verify().unwrap().states, 2);
    let other_device = open(&pool, "other", &key(1), 2);
    assert_eq!(
        other_device.load_state("ledger", "").unwrap().1,
        RowVersion::ABSENT
    );
    let pool2 = server.pool(2);
    let host2 = open(&pool2, "state", &key(1), 3);
    stores::concurrent_state_commits_lose_nothing(&[&s, &host2, &s], 25);
    assert!(other_device.state("counter", "a").unwrap().is_none());
}

/// Hosts opening one new device at once and each calling `bootstrap_identity`: exactly
/// one makes the identity and every host ends up with that one.
#[test]
fn racing_bootstraps_agree_on_one_identity() {
    let server = PgServer::start();
    let hosts: Vec<PostgresStore> = (0..4)
        .map(|i| {
            let pool = server.pool(1);
            PostgresStore::open(&pool, "fresh", &key(1), &mut rng(10 + i)).unwrap()
        })
        .collect();
    let made: Vec<bool> = std::thread::scope(|scope| {
        let runs: Vec<_> = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| scope.spawn(move || h.bootstrap_identity(&mut rng(20 + i as u64))))
            .collect();
        runs.into_iter()
            .map(|r| r.join().unwrap().unwrap())
            .collect()
    });
    assert_eq!(made.iter().filter(|m| **m).count(), 1, "{made:?}");
    let first = hosts[0].local_identity().unwrap();
    for h in &hosts {
        assert_eq!(
            h.local_identity().unwrap().identity_key(),
            first.identity_key()
        );
        assert_eq!(
            h.local_registration_id().unwrap(),
            hosts[0].local_registration_id().unwrap()
        );
        assert!(!h.bootstrap_identity(&mut rng(30)).unwrap());
    }
    hosts[0].verify().unwrap();
}

// ---- groups: transactional sender keys --------------------------------------------

const GROUP: DistributionId = DistributionId::from_bytes([0x6e; 16]);

type PgDevice = Device<PostgresStore, ChaCha20Rng, FixedClock>;

/// A [`Device`] named `name` (device id 1) on its store in `pool`, opened with the key
/// byte `k` and a fresh nonce salt from `seed` (so a second open of the same device,
/// as a second host would make, seals with other nonces).
fn device_on(pool: &PostgresPool, name: &str, k: u8, seed: u64) -> PgDevice {
    let store = open(pool, name, &key(k), seed);
    Device::new(
        store,
        Address::new(name, 1),
        rng(seed ^ 0xdead),
        FixedClock::new(NOW),
    )
    .with_versions(confide::session::Versions::V3AndV4)
}

/// Alice's group chain handed to Bob (directly: the pairwise delivery of the
/// distribution message is the 1:1 tests' business).
fn hand_over(alice: &PgDevice, bob: &PgDevice) {
    let skdm = alice
        .group_distribution_raw(GROUP, Layout::Current)
        .unwrap();
    bob.group_process(alice.address(), GROUP, &skdm).unwrap();
}

/// The sealed sender-key row of `sender` in `owner`'s part of the database.
fn sender_key_row(client: &mut Client, owner: &str, sender: &Address) -> Vec<u8> {
    client
        .query_one(
            "SELECT v FROM confide_sender_key
             WHERE owner = $1 AND name = $2 AND device = $3 AND distribution = $4",
            &[
                &owner,
                &sender.name(),
                &i64::from(sender.device_id()),
                &&GROUP.as_bytes()[..],
            ],
        )
        .unwrap()
        .get(0)
}

/// Every row of `owner` in every confide table, as text, in a stable order.
fn dump(client: &mut Client, owner: &str) -> Vec<String> {
    let mut out = Vec::new();
    for t in [
        "meta",
        "identity",
        "pre_key",
        "signed_pre_key",
        "session",
        "message",
        "sender_key",
        "state",
    ] {
        for row in client
            .query(
                &format!("SELECT t::text FROM confide_{t} t WHERE owner = $1 ORDER BY 1"),
                &[&owner],
            )
            .unwrap()
        {
            out.push(format!("{t}: {}", row.get::<_, String>(0)));
        }
    }
    out
}

#[test]
fn group_commit_is_compare_and_swap_and_keeps_the_message() {
    let server = PgServer::start();
    let pool = server.pool(2);
    let mut sql = server.client();
    let g = GROUP;
    let mut r = rng(5);
    let mut own = SenderKeyRecord::new(g, Layout::Current);
    let skdm = own.distribution(&mut r);
    let first = own.encrypt(b"group secret one", &mut r).unwrap();
    let second = own.encrypt(b"group secret two", &mut r).unwrap();
    let s = open(&pool, "bob", &key(1), 1);
    let txn = s.transactional_group().unwrap();
    let a = alice();
    let (none, absent) = txn.load_sender_key(&a, g).unwrap();
    assert!(none.is_none());
    assert_eq!(absent, RowVersion::ABSENT);
    let mut theirs = SenderKeyRecord::new(g, Layout::Current);
    theirs.process(&skdm).unwrap();
    let commit = GroupCommit::record(&a, g, absent, &theirs);
    assert_eq!(txn.commit_group(&commit).unwrap(), CommitOutcome::Committed);
    // A second writer that also started from "no row" loses.
    assert_eq!(txn.commit_group(&commit).unwrap(), CommitOutcome::Conflict);

    let (loaded, v1) = txn.load_sender_key(&a, g).unwrap();
    let mut after_first = loaded.unwrap();
    let pt = after_first.decrypt(&first).unwrap();
    let id1 = MessageId::of_group(g, &first);
    let commit =
        GroupCommit::record(&a, g, v1, &after_first).with_message(NewMessage::new(id1, &pt, NOW));
    assert_eq!(txn.commit_group(&commit).unwrap(), CommitOutcome::Committed);
    let (_, v2) = txn.load_sender_key(&a, g).unwrap();
    assert_ne!(v2, v1);
    let stored = txn.group_delivered(&a, &id1).unwrap().unwrap();
    assert_eq!(stored.plaintext.unwrap().as_slice(), b"group secret one");
    assert_eq!(stored.received_at, NOW);
    // Not another sender's message, and the 1:1 lookup finds the same row (one table).
    assert!(txn.group_delivered(&bob(), &id1).unwrap().is_none());
    assert_eq!(s.message(&a, &id1).unwrap().unwrap().received_at, NOW);
    let row = sender_key_row(&mut sql, "bob", &a);
    let before = dump(&mut sql, "bob");

    // A stale version (another decrypt committed since): nothing is written, not even
    // the message.
    let mut stale = after_first.clone();
    let pt2 = stale.decrypt(&second).unwrap();
    let id2 = MessageId::of_group(g, &second);
    let commit =
        GroupCommit::record(&a, g, v1, &stale).with_message(NewMessage::new(id2, &pt2, NOW));
    assert_eq!(txn.commit_group(&commit).unwrap(), CommitOutcome::Conflict);
    assert!(txn.group_delivered(&a, &id2).unwrap().is_none());
    assert_eq!(txn.load_sender_key(&a, g).unwrap().1, v2);
    assert_eq!(dump(&mut sql, "bob"), before);
    // The current version but a message already stored: nothing is written either.
    let commit =
        GroupCommit::record(&a, g, v2, &stale).with_message(NewMessage::new(id1, &pt2, NOW));
    assert_eq!(txn.commit_group(&commit).unwrap(), CommitOutcome::Conflict);
    assert_eq!(sender_key_row(&mut sql, "bob", &a), row);
    assert_eq!(dump(&mut sql, "bob"), before);
    // "No row" expected while there is one: a conflict, nothing written.
    let commit =
        GroupCommit::record(&a, g, absent, &stale).with_message(NewMessage::new(id2, &pt2, NOW));
    assert_eq!(txn.commit_group(&commit).unwrap(), CommitOutcome::Conflict);
    assert_eq!(dump(&mut sql, "bob"), before);
    let commit =
        GroupCommit::record(&a, g, v2, &stale).with_message(NewMessage::new(id2, &pt2, NOW));
    assert_eq!(txn.commit_group(&commit).unwrap(), CommitOutcome::Committed);
    let summary = s.verify().unwrap();
    assert_eq!((summary.messages, summary.sender_keys), (2, 1));

    // Another device's store in the same database sees none of it.
    let other = open(&pool, "carol", &key(1), 2);
    let otxn = other.transactional_group().unwrap();
    assert!(otxn.load_sender_key(&a, g).unwrap().0.is_none());
    assert!(otxn.group_delivered(&a, &id1).unwrap().is_none());

    // Sealed and bound to its row like every other value: no group plaintext or chain
    // key in the database, and a message row moved to another id fails to open.
    let mut all = Vec::new();
    for row in sql
        .query(
            "SELECT v FROM confide_message WHERE v IS NOT NULL
             UNION ALL SELECT v FROM confide_sender_key",
            &[],
        )
        .unwrap()
    {
        all.extend(row.get::<_, Vec<u8>>(0));
    }
    let has = |needle: &[u8]| all.windows(needle.len()).any(|w| w == needle);
    assert!(!has(b"group secret"));
    let wire = skdm.serialized();
    let at = wire.windows(2).position(|w| w == [0x22, 0x20]).unwrap() + 2;
    assert!(!has(&wire[at..at + 32]), "the chain key is in the clear");
    sql.execute(
        "UPDATE confide_message m SET v = o.v FROM confide_message o
         WHERE m.owner = 'bob' AND o.owner = 'bob' AND m.id <> o.id",
        &[],
    )
    .unwrap();
    assert_eq!(
        tampered(txn.group_delivered(&a, &id1).unwrap_err()),
        Some("message")
    );
}

/// Under `SERIALIZABLE` a commit that waited on a concurrent writer of its sender-key
/// row fails with a serialization failure even though the row's nonce did not change:
/// reported as a conflict, with nothing written.
#[test]
fn a_serialization_failure_is_a_conflict_and_writes_nothing() {
    let server = PgServer::start();
    let mut config = server.config();
    config.options("-c default_transaction_isolation=serializable");
    let pool = PostgresPool::new(config, 2);
    let alice = device_on(&pool, "alice", 1, 1);
    let bob = device_on(&pool, "bob", 2, 2);
    hand_over(&alice, &bob);
    let m = alice.group_encrypt_raw(GROUP, b"contended").unwrap();
    let txn = bob.store().transactional_group().unwrap();
    let (record, version) = txn.load_sender_key(alice.address(), GROUP).unwrap();
    let mut record = record.unwrap();
    let pt = record.decrypt(&m).unwrap();
    let id = MessageId::of_group(GROUP, &m);
    let mut sql = server.client();
    let before = dump(&mut sql, "bob");

    // Another session holds the row (rewritten to the same bytes) in an open
    // transaction; the commit waits for it, and fails once it commits.
    let mut holder = server.client();
    let mut tx = holder.transaction().unwrap();
    tx.execute(
        "UPDATE confide_sender_key SET v = v WHERE owner = 'bob'",
        &[],
    )
    .unwrap();
    let outcome = std::thread::scope(|s| {
        let h = s.spawn(|| {
            let commit = GroupCommit::record(alice.address(), GROUP, version, &record)
                .with_message(NewMessage::new(id, &pt, NOW));
            txn.commit_group(&commit).unwrap()
        });
        // Until the commit is waiting on the held row lock.
        loop {
            let waiting: i64 = sql
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE confide_sender_key%'",
                    &[],
                )
                .unwrap()
                .get(0);
            if waiting > 0 {
                break;
            }
            assert!(!h.is_finished(), "the commit did not wait for the lock");
            std::thread::yield_now();
        }
        tx.commit().unwrap();
        h.join().unwrap()
    });
    assert_eq!(outcome, CommitOutcome::Conflict);
    assert!(txn.group_delivered(alice.address(), &id).unwrap().is_none());
    assert_eq!(
        dump(&mut sql, "bob"),
        before,
        "the message insert rolled back"
    );
    // Redone, it commits; then the device sees a redelivery.
    let d = bob.group_decrypt_raw(alice.address(), GROUP, &m).unwrap();
    assert!(!d.redelivered);
    assert!(
        bob.group_decrypt_raw(alice.address(), GROUP, &m)
            .unwrap()
            .redelivered
    );
}

#[test]
fn group_redelivery_comes_from_the_store_until_acknowledged() {
    let server = PgServer::start();
    let pool = server.pool(2);
    let mut sql = server.client();
    let alice = device_on(&pool, "alice", 1, 81);
    let mut bob = device_on(&pool, "bob", 2, 82);
    hand_over(&alice, &bob);
    let m = alice.group_encrypt_raw(GROUP, b"kept until acked").unwrap();

    let first = bob.group_decrypt_raw(alice.address(), GROUP, &m).unwrap();
    assert!(!first.redelivered);
    assert_eq!(first.plaintext.as_slice(), b"kept until acked");
    let row = sender_key_row(&mut sql, "bob", alice.address());
    let before = dump(&mut sql, "bob");

    // The same bytes again (after a crash before the app saved the plaintext): the
    // stored plaintext, and nothing in the database changes, the sender key included.
    let again = bob.group_decrypt_raw(alice.address(), GROUP, &m).unwrap();
    assert!(again.redelivered);
    assert_eq!(again.plaintext, first.plaintext);
    assert_eq!(sender_key_row(&mut sql, "bob", alice.address()), row);
    assert_eq!(dump(&mut sql, "bob"), before);

    // Still so from another host (another pool and open of the same device).
    let pool2 = server.pool(1);
    let other = device_on(&pool2, "bob", 2, 83);
    let again = other.group_decrypt_raw(alice.address(), GROUP, &m).unwrap();
    assert!(again.redelivered);
    assert_eq!(again.plaintext.as_slice(), b"kept until acked");
    assert_eq!(dump(&mut sql, "bob"), before);

    // Acknowledged: the plaintext is gone and a redelivery is a duplicate, again
    // without touching the sender key.
    let id = MessageId::of_group(GROUP, &m);
    assert!(bob.acknowledge(alice.address(), &id).unwrap());
    assert!(
        bob.store()
            .message(alice.address(), &id)
            .unwrap()
            .unwrap()
            .plaintext
            .is_none()
    );
    assert!(stores::is_duplicate(bob.group_decrypt_raw(
        alice.address(),
        GROUP,
        &m
    )));
    assert!(stores::is_duplicate(other.group_decrypt_raw(
        alice.address(),
        GROUP,
        &m
    )));
    assert_eq!(sender_key_row(&mut sql, "bob", alice.address()), row);

    // Expiry and purge cover group messages: gone at its time, and a redelivery then
    // is a duplicate (its key is spent), never a second decrypt.
    let m2 = alice.group_encrypt_raw(GROUP, b"disappears").unwrap();
    assert!(
        !bob.group_decrypt_raw(alice.address(), GROUP, &m2)
            .unwrap()
            .redelivered
    );
    let id2 = MessageId::of_group(GROUP, &m2);
    let at = Timestamp::from_millis(NOW.as_millis() + 1000);
    assert!(
        bob.store()
            .set_message_expiry(alice.address(), &id2, Some(at))
            .unwrap()
    );
    let purge = |now, before| bob.store().purge_messages(now, before).unwrap();
    assert_eq!(purge(NOW, Timestamp::from_millis(0)), 0);
    assert_eq!(purge(at, Timestamp::from_millis(0)), 1);
    assert!(
        bob.store()
            .message(alice.address(), &id2)
            .unwrap()
            .is_none()
    );
    assert!(stores::is_duplicate(bob.group_decrypt_raw(
        alice.address(),
        GROUP,
        &m2
    )));
    // The acknowledged dedupe record goes once it is old enough; the chain still
    // refuses the spent key.
    assert_eq!(purge(NOW, Timestamp::from_millis(NOW.as_millis() + 1)), 1);
    assert_eq!(bob.store().verify().unwrap().messages, 0);
    assert!(stores::is_duplicate(bob.group_decrypt_raw(
        alice.address(),
        GROUP,
        &m
    )));

    // Reopened, the chain goes on where it was.
    drop(bob);
    bob = device_on(&pool, "bob", 2, 84);
    let m3 = alice.group_encrypt_raw(GROUP, b"after reopen").unwrap();
    let d = bob.group_decrypt_raw(alice.address(), GROUP, &m3).unwrap();
    assert_eq!(d.plaintext.as_slice(), b"after reopen");
    assert!(!d.redelivered);
}

#[test]
fn concurrent_group_decrypts_never_lose_or_double_decrypt() {
    let server = PgServer::start();
    let pool = server.pool(4);
    let alice = device_on(&pool, "alice", 1, 101);
    let bob = device_on(&pool, "bob", 2, 102);
    hand_over(&alice, &bob);

    // One Device (one store, one pool) shared by two threads.
    let sent = stores::decrypted_once_from_two_threads(&alice, [&bob, &bob], GROUP, 40, "shared");
    // Two hosts: the same device opened on two pools.
    let pool2 = server.pool(2);
    let bob2 = device_on(&pool2, "bob", 2, 103);
    let sent2 =
        stores::decrypted_once_from_two_threads(&alice, [&bob, &bob2], GROUP, 40, "two pools");
    // Two hosts whose connections run SERIALIZABLE: serialization failures are
    // conflicts too, and the device redoes the operation.
    let mut config = server.config();
    config.options("-c default_transaction_isolation=serializable");
    let serial = PostgresPool::new(config, 2);
    let bob3 = device_on(&serial, "bob", 2, 104);
    let bob4 = device_on(&serial, "bob", 2, 105);
    let sent3 =
        stores::decrypted_once_from_two_threads(&alice, [&bob3, &bob4], GROUP, 40, "serializable");

    // Every message is stored once, sealed, and opens; no key is left to decrypt any
    // of them again.
    let all: Vec<_> = sent.iter().chain(&sent2).chain(&sent3).collect();
    let times = (NOW, Timestamp::from_millis(NOW.as_millis() + 1));
    stores::every_key_spent(&bob, &bob2, alice.address(), GROUP, &all, 0, times);
}

#[test]
fn concurrent_group_encrypts_never_reuse_an_iteration() {
    let server = PgServer::start();
    let pool = server.pool(4);
    let alice = device_on(&pool, "alice", 1, 111);
    let bob = device_on(&pool, "bob", 2, 112);
    hand_over(&alice, &bob);
    // Two threads on one Device, and two more on the same device opened on another
    // pool (another host).
    let pool2 = server.pool(2);
    let alice2 = device_on(&pool2, "alice", 1, 113);
    let sent = stores::encrypted_from_threads(&[&alice, &alice, &alice2, &alice2], &bob, GROUP, 25);
    assert_eq!(sent.len(), 100);
    // A rotation racing encrypts: every message is on the old chain or the new one,
    // and no (chain, iteration) pair repeats.
    let (sent, _) = std::thread::scope(|s| {
        let enc = s.spawn(|| {
            (0..20)
                .map(|i| {
                    alice2
                        .group_encrypt_raw(GROUP, format!("r{i}").as_bytes())
                        .unwrap()
                })
                .collect::<Vec<_>>()
        });
        let rot = s.spawn(|| alice.group_rotate(GROUP).unwrap());
        (enc.join().unwrap(), rot.join().unwrap())
    });
    let pairs: HashSet<(u32, u32)> = sent.iter().map(|m| (m.chain_id(), m.iteration())).collect();
    assert_eq!(pairs.len(), sent.len());
    assert_eq!(alice.store().verify().unwrap().sender_keys, 1);
}

// ---- crash test ------------------------------------------------------------------
//
// tests/crash.rs's flood against PostgreSQL (the flood, kills and checks are
// tests/common/crash.rs): the child is this test binary re-run with
// `CONFIDE_PG_CRASH_DIR` and `CONFIDE_PG_PORT` set (see [`pg_crash_child_entry`]);
// Alice and Bob are two devices in one database, each behind a [`Device`]. Three
// lanes: 1:1 both ways (through `cipher`), and Alice's group messages to Bob (through
// `Device::group_encrypt` / `group_decrypt`, so through the transactional group
// store). The network is an append-only log per lane, the app's inbox a delivery log
// per lane (fsynced lines). Kills: `CONFIDE_CRASH_KILLS` (default 240), seed:
// `CONFIDE_CRASH_SEED`. Every 30th kill the server crashes too (`pg_ctl stop -m
// immediate`) and restarts with WAL recovery.

/// How often (in client kills) the database server crashes too.
const SERVER_CRASH_EVERY: usize = 30;

fn open_crash_store(pool: &PostgresPool, name: &str, rng: &mut ChaCha20Rng) -> PostgresStore {
    PostgresStore::open(pool, name, &StoreKey::from_bytes(crash::KEY), rng).unwrap()
}

/// The child: runs when `CONFIDE_PG_CRASH_DIR` is set, otherwise passes at once.
#[test]
fn pg_crash_child_entry() {
    let Some(dir) = std::env::var_os("CONFIDE_PG_CRASH_DIR") else {
        return;
    };
    let port: u16 = std::env::var("CONFIDE_PG_PORT").unwrap().parse().unwrap();
    let pool = PostgresPool::new(config_for(port), 1);
    crash::child(Path::new(&dir), |name, rng| {
        open_crash_store(&pool, name, rng)
    });
}

/// Waits until the killed child's server backends are gone (the server rolls back
/// whatever transaction they had open), so the check sees settled rows.
fn wait_for_no_other_backends(port: u16) {
    let mut c = config_for(port).connect(NoTls).unwrap();
    for _ in 0..10_000 {
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
                &[],
            )
            .unwrap()
            .get(0);
        if n == 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("a killed child's database session never ended");
}

#[test]
fn sigkill_at_random_points_loses_and_duplicates_nothing() {
    if std::env::var_os("CONFIDE_PG_CRASH_DIR").is_some() {
        return;
    }
    let kills = crash::kills();
    let server = PgServer::start();
    let port = server.port;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let parent = crash::Parent {
        dir,
        child_test: "pg_crash_child_entry",
        env: vec![
            ("CONFIDE_PG_CRASH_DIR", dir.into()),
            ("CONFIDE_PG_PORT", port.to_string().into()),
        ],
        // Kill somewhere in 20..220 ms: mostly mid-flood, sometimes while the child
        // is still connecting and opening its stores.
        min_delay: Duration::from_millis(20),
    };
    let mut server_crashes = 0;
    let kill = |k: usize, child: &mut std::process::Child| {
        // Every SERVER_CRASH_EVERY-th run the database crashes under the flood as
        // well (a failover): the child's in-flight commits fail with an unknown
        // outcome, and whatever the server acknowledged must survive its recovery.
        let server_crash = k % SERVER_CRASH_EVERY == SERVER_CRASH_EVERY / 2;
        if server_crash {
            assert!(server.crash(), "the server was not running");
            server_crashes += 1;
        }
        let _ = child.kill(); // SIGKILL (the child may have died of the crash already)
        child.wait().unwrap();
        if server_crash {
            server.run();
        }
    };
    let check = |rng: &mut ChaCha20Rng| {
        wait_for_no_other_backends(port);
        let pool = PostgresPool::new(config_for(port), 1);
        crash::check(dir, rng, |name, rng| open_crash_store(&pool, name, rng))
    };
    let tally = parent.run(kills, crash::seed(), kill, check);
    eprintln!(
        "postgres crash test: {kills} SIGKILLs of the client ({server_crashes} with a server \
         crash), {}",
        tally.summary()
    );
    tally.assert_progress(kills);
}

// ---- schema fixtures -------------------------------------------------------------

/// `tests/fixtures/postgres/v<N>/`: a `pg_dump` of a database written by schema
/// version N (`dump.sql`) and what the check needs to know about it (`messages.txt`).
fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/postgres")
}

/// The fixture's store key: this byte 32 times.
const FIXTURE_KEY: u8 = 0x5c;

/// The fixture's group.
const FIXTURE_GROUP: DistributionId = DistributionId::from_bytes([0x6f; 16]);

/// Runs `psql` (as the server's user) on `db` with `input` on its stdin, stopping at
/// the first error.
fn psql(server: &PgServer, db: &str, input: &[u8]) {
    use std::io::Write;
    let mut child = server
        .pg("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U"])
        .args([
            "postgres",
            "-p",
            &server.port.to_string(),
            "-d",
            db,
            "-f",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "psql failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes `tests/fixtures/postgres/v{SCHEMA_VERSION}/` from a fresh server: Alice and
/// Bob in one database (fixed key, seeded RNGs, [`NOW`] as the only clock) with a
/// session, one message Bob acknowledged, one delivered each way and one pending for
/// Bob; both chains of a group, with one group message delivered each way and one
/// pending for Bob; Bob's second bundle (prekey 2, signed prekey 2) unused; and Alice's
/// privacy-model activity. Run with
/// `cargo test --features postgres --test postgres -- --ignored write_fixture` when the
/// schema, the sealing or the row keys change, and keep the old versions' directories.
///
/// The dump is `pg_dump --no-owner --no-privileges -t 'confide_*'` (plain SQL) without
/// its `\restrict` lines (newer `pg_dump`s add them with a random key; older `psql`s
/// refuse them), so it loads with any `psql` and only changes when the data does.
#[test]
#[ignore = "writes the fixture for the current schema version"]
fn write_fixture() {
    let server = PgServer::start();
    let pool = server.pool(1);
    let a = device_on(&pool, "alice", FIXTURE_KEY, 11);
    let b = device_on(&pool, "bob", FIXTURE_KEY, 12);
    let mut r = rng(13);
    let spec = BundleSpec::new(1, 1).with_pre_key(Some(1));
    let bundle = cipher::publish_bundle(b.store(), &mut r, &spec, NOW).unwrap();
    let second = BundleSpec::new(spec.device_id, 2).with_pre_key(Some(2));
    cipher::publish_bundle(b.store(), &mut r, &second, NOW).unwrap();
    cipher::start_session(a.store(), &bob(), &bundle, Versions::V3AndV4, &mut r, NOW).unwrap();

    let mut lines = vec![
        "# written by write_fixture in tests/postgres.rs: one line per message or state value"
            .to_owned(),
        "# <label> <1:1 message type | group | state> <hex: ciphertext | value> <plaintext | state kind>"
            .to_owned(),
    ];
    let mut direct = |label: &str, from: &PgDevice, to: &PgDevice, text: &str, deliver: bool| {
        let m = from.encrypt_raw(to.address(), text.as_bytes()).unwrap();
        if deliver {
            let d = to.decrypt_raw(from.address(), &m).unwrap();
            assert_eq!(d.plaintext.as_slice(), text.as_bytes());
        }
        lines.push(format!(
            "{label} {} {} {text}",
            m.message_type(),
            hex::encode(m.serialized())
        ));
        m
    };
    let acked = direct(
        "acknowledged",
        &a,
        &b,
        "acknowledged before the upgrade",
        true,
    );
    assert!(b.acknowledge(&alice(), &MessageId::of(&acked)).unwrap());
    direct("reply", &b, &a, "reply before the upgrade", true);
    direct("delivered", &a, &b, "delivered before the upgrade", true);
    direct("pending", &a, &b, "pending across the upgrade", false);

    // Each member's chain handed to the other directly (the pairwise delivery of a
    // distribution message is the 1:1 session's business).
    b.group_process(
        a.address(),
        FIXTURE_GROUP,
        &a.group_distribution_raw(FIXTURE_GROUP, Layout::Current)
            .unwrap(),
    )
    .unwrap();
    a.group_process(
        b.address(),
        FIXTURE_GROUP,
        &b.group_distribution_raw(FIXTURE_GROUP, Layout::Current)
            .unwrap(),
    )
    .unwrap();
    let mut group = |label: &str, from: &PgDevice, to: &PgDevice, text: &str, deliver: bool| {
        let m = from
            .group_encrypt_raw(FIXTURE_GROUP, text.as_bytes())
            .unwrap();
        if deliver {
            let d = to
                .group_decrypt_raw(from.address(), FIXTURE_GROUP, &m)
                .unwrap();
            assert_eq!(d.plaintext.as_slice(), text.as_bytes());
        }
        lines.push(format!(
            "{label} group {} {text}",
            hex::encode(m.serialized())
        ));
    };
    group(
        "group-delivered",
        &a,
        &b,
        "group message before the upgrade",
        true,
    );
    group(
        "group-reply",
        &b,
        &a,
        "group reply before the upgrade",
        true,
    );
    group(
        "group-pending",
        &a,
        &b,
        "group message across the upgrade",
        false,
    );

    // Since v3: Bob's Kyber prekeys (opaque records): one-time 1, used and so gone,
    // one-time 2, and last-resort 3 with one recorded use.
    {
        use confide::store::{KyberPreKeyStore, KyberPreKeyUse};
        let kyber = b.store();
        kyber
            .save_kyber_pre_key(1, b"kyber one-time 1", false)
            .unwrap();
        kyber
            .save_kyber_pre_key(2, b"kyber one-time 2", false)
            .unwrap();
        kyber
            .save_kyber_pre_key(3, b"kyber last resort 3", true)
            .unwrap();
        let base = confide::keys::KeyPair::generate(&mut r).public();
        for id in [1, 3] {
            let used = KyberPreKeyUse::new(id, 1, base);
            assert!(kyber.mark_kyber_pre_key_used(&used).unwrap());
        }
        lines.push(format!(
            "kyber-use kyber {} kyber last resort 3",
            hex::encode(base.serialize())
        ));
    }

    a.record_connection().unwrap();
    let activity = a.store().state(state_kind::ACTIVITY, "").unwrap().unwrap();
    lines.push(format!(
        "activity state {} {}",
        hex::encode(activity.as_slice()),
        state_kind::ACTIVITY
    ));
    drop((a, b, pool));

    let out = server
        .pg("pg_dump")
        .args(["-h", "127.0.0.1", "-p", &server.port.to_string(), "-U"])
        .args([
            "postgres",
            "-d",
            "postgres",
            "--no-owner",
            "--no-privileges",
        ])
        .args(["-t", "confide_*"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pg_dump failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dump: String = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .flat_map(|l| [l, "\n"])
        .collect();
    assert!(dump.contains("COPY public.confide_session"));
    let dir = fixture_dir().join(format!("v{SCHEMA_VERSION}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("dump.sql"), dump).unwrap();
    lines.push(String::new());
    std::fs::write(dir.join("messages.txt"), lines.join("\n")).unwrap();
}

/// One line of a fixture's `messages.txt`.
struct FixtureLine {
    kind: String,
    bytes: Vec<u8>,
    text: String,
}

fn fixture_lines(dir: &Path) -> std::collections::HashMap<String, FixtureLine> {
    std::fs::read_to_string(dir.join("messages.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut f = l.splitn(4, ' ');
            let mut next = || f.next().unwrap().to_owned();
            let (label, kind, hex, text) = (next(), next(), next(), next());
            let bytes = hex::decode(hex).unwrap();
            (label, FixtureLine { kind, bytes, text })
        })
        .collect()
}

/// Every committed dump loads into a fresh database and opens with the current code:
/// every row of both devices opens, the schema migrates to [`SCHEMA_VERSION`], the
/// acknowledged message stays refused, the delivered ones (1:1 and group) come back from
/// the store as redeliveries, the pending ones decrypt, the session and both group
/// chains carry on both ways, and the privacy state loads.
#[test]
fn every_fixture_version_still_opens() {
    let server = PgServer::start();
    let mut sql = server.client();
    let mut seen = 0;
    for entry in std::fs::read_dir(fixture_dir()).unwrap() {
        let src = entry.unwrap().path();
        if !src.is_dir() {
            continue;
        }
        seen += 1;
        let name = src.file_name().unwrap().to_str().unwrap().to_owned();
        let named: i32 = name[1..].parse().unwrap();
        let db = format!("fixture_{name}");
        sql.batch_execute(&format!("CREATE DATABASE {db}")).unwrap();
        psql(&server, &db, &std::fs::read(src.join("dump.sql")).unwrap());
        let mut config = server.config();
        config.dbname(&db);
        let mut fixture_sql = config.connect(NoTls).unwrap();
        let version = |c: &mut Client| -> i32 {
            c.query_one("SELECT version FROM confide_schema_version", &[])
                .unwrap()
                .get(0)
        };
        // The dump really is of the version its directory names, so opening it runs
        // the migrations from there.
        assert_eq!(version(&mut fixture_sql), named, "{name}");
        let lines = fixture_lines(&src);
        let line = |label: &str| {
            lines
                .get(label)
                .unwrap_or_else(|| panic!("{name}: no {label} line"))
        };
        let direct = |label: &str| {
            let l = line(label);
            let m = CiphertextMessage::from_parts(l.kind.parse().unwrap(), &l.bytes).unwrap();
            (m, l.text.as_bytes())
        };
        let group = |label: &str| {
            let l = line(label);
            assert_eq!(l.kind, "group");
            let m = SenderKeyMessage::parse(&l.bytes, Layout::Current).unwrap();
            (m, l.text.as_bytes())
        };

        let pool = PostgresPool::new(config, 1);
        let later = Timestamp::from_millis(NOW.as_millis() + 86_400_000);
        let dev = |device: &str, seed: u64| {
            let mut r = rng(seed);
            let store = PostgresStore::open(&pool, device, &key(FIXTURE_KEY), &mut r).unwrap();
            assert!(store.has_local_identity().unwrap(), "{name}: {device}");
            Device::new(store, Address::new(device, 1), r, FixedClock::new(later))
                .with_versions(confide::session::Versions::V3AndV4)
        };
        let a = dev("alice", 1);
        let b = dev("bob", 2);
        assert_eq!(
            version(&mut fixture_sql),
            i32::try_from(SCHEMA_VERSION).unwrap()
        );
        let (sa, sb) = (a.store().verify().unwrap(), b.store().verify().unwrap());
        assert_eq!(
            (sa.sessions, sa.identities, sa.sender_keys, sa.states),
            (1, 1, 2, 1),
            "{name}: alice"
        );
        assert_eq!((sa.messages, sa.unacknowledged), (2, 2), "{name}: alice");
        assert_eq!(
            (sb.sessions, sb.identities, sb.sender_keys, sb.states),
            (1, 1, 2, 0),
            "{name}: bob"
        );
        assert_eq!((sb.pre_keys, sb.signed_pre_keys), (1, 2), "{name}: bob");
        assert_eq!((sb.messages, sb.unacknowledged), (3, 2), "{name}: bob");
        assert!(b.store().pre_key(1).unwrap().is_none());
        assert!(b.store().pre_key(2).unwrap().is_some());

        // 1:1: the acknowledged message stays refused, the delivered ones come from the
        // store, the pending one decrypts, and the session carries on both ways.
        let (m, _) = direct("acknowledged");
        assert!(
            matches!(
                b.decrypt_raw(&alice(), &m),
                Err(confide::DecryptError::DuplicateMessage { .. })
            ),
            "{name}"
        );
        for (label, from, to) in [("reply", &b, &a), ("delivered", &a, &b)] {
            let (m, text) = direct(label);
            let d = to.decrypt_raw(from.address(), &m).unwrap();
            assert!(d.redelivered, "{name}: {label}");
            assert_eq!(d.plaintext.as_slice(), text, "{name}: {label}");
        }
        let (m, text) = direct("pending");
        let d = b.decrypt_raw(&alice(), &m).unwrap();
        assert!(!d.redelivered);
        assert_eq!(d.plaintext.as_slice(), text, "{name}: pending");
        for (from, to) in [(&b, &a), (&a, &b)] {
            let m = from
                .encrypt_raw(to.address(), b"after the upgrade")
                .unwrap();
            let d = to.decrypt_raw(from.address(), &m).unwrap();
            assert!(!d.redelivered);
            assert_eq!(d.plaintext.as_slice(), b"after the upgrade");
        }

        // The group: the delivered messages come from the store (their keys are spent
        // in the records), the pending one decrypts, and both chains carry on.
        for (label, from, to) in [("group-delivered", &a, &b), ("group-reply", &b, &a)] {
            let (m, text) = group(label);
            let d = to
                .group_decrypt_raw(from.address(), FIXTURE_GROUP, &m)
                .unwrap();
            assert!(d.redelivered, "{name}: {label}");
            assert_eq!(d.plaintext.as_slice(), text, "{name}: {label}");
            let mut record = to
                .store()
                .sender_key(from.address(), FIXTURE_GROUP)
                .unwrap()
                .unwrap();
            assert!(record.decrypt(&m).is_err(), "{name}: {label}");
        }
        let (pending, text) = group("group-pending");
        let d = b
            .group_decrypt_raw(&alice(), FIXTURE_GROUP, &pending)
            .unwrap();
        assert!(!d.redelivered);
        assert_eq!(d.plaintext.as_slice(), text, "{name}: group-pending");
        let next = a.group_encrypt_raw(FIXTURE_GROUP, b"group after").unwrap();
        assert_eq!(next.iteration(), pending.iteration() + 1);
        let back = b.group_encrypt_raw(FIXTURE_GROUP, b"group after").unwrap();
        for (m, from, to) in [(next, &a, &b), (back, &b, &a)] {
            let d = to
                .group_decrypt_raw(from.address(), FIXTURE_GROUP, &m)
                .unwrap();
            assert!(!d.redelivered);
            assert_eq!(d.plaintext.as_slice(), b"group after");
        }

        check_fixture_kyber(b.store(), lines.get("kyber-use"), &name);

        // The privacy model's state: the same value, and the device carries it on.
        let l = line("activity");
        assert_eq!(l.kind, "state");
        assert_eq!(
            a.store().state(&l.text, "").unwrap().unwrap().as_slice(),
            l.bytes,
            "{name}: activity"
        );
        a.record_connection().unwrap();
        let now = a.store().state(state_kind::ACTIVITY, "").unwrap().unwrap();
        let activity = Activity::from_bytes(&now).unwrap();
        assert_eq!(activity.registered_at(), NOW);
        assert_eq!(activity.connections(), [NOW, later]);

        a.store().verify().unwrap();
        b.store().verify().unwrap();
        drop((a, b, pool, fixture_sql));
    }
    assert!(seen >= 1, "no fixture found");
}

/// The Kyber prekeys of Bob's fixture store `b` (fixture `name`): none before schema 3
/// (the migration adds empty tables); from 3 on (`kyber`, its `kyber-use` line), the
/// used one-time key stays gone, the other one-time key and the last-resort key load,
/// and the recorded use stays refused. Either way the store keeps new Kyber prekeys
/// and their uses from now on.
fn check_fixture_kyber(b: &PostgresStore, kyber: Option<&FixtureLine>, name: &str) {
    use confide::keys::PublicKey;
    use confide::store::{KyberPreKeyStore, KyberPreKeyUse};

    let read = |id: u32| b.kyber_pre_key(id).unwrap().map(|r| r.to_vec());
    let summary = b.verify().unwrap();
    match kyber {
        None => {
            assert_eq!(summary.kyber_pre_keys, 0, "{name}");
            assert!(read(3).is_none(), "{name}");
        }
        Some(l) => {
            assert_eq!(l.kind, "kyber");
            let base = PublicKey::try_from(&l.bytes[..]).unwrap();
            assert_eq!(
                (summary.kyber_pre_keys, summary.kyber_pre_key_uses),
                (2, 1),
                "{name}"
            );
            assert!(read(1).is_none(), "{name}");
            assert_eq!(read(2).unwrap(), b"kyber one-time 2", "{name}");
            assert_eq!(read(3).unwrap(), l.text.as_bytes(), "{name}");
            let used = KyberPreKeyUse::new(3, 1, base);
            assert!(b.kyber_pre_key_used(&used).unwrap(), "{name}");
            assert!(!b.mark_kyber_pre_key_used(&used).unwrap(), "{name}");
            assert!(
                b.mark_kyber_pre_key_used(&KyberPreKeyUse::new(2, 1, base))
                    .unwrap()
            );
            assert!(read(2).is_none(), "{name}");
        }
    }
    b.save_kyber_pre_key(9, b"after the upgrade", true).unwrap();
    let fresh = KyberPreKeyUse::new(9, 1, stores::base_key(9));
    assert!(b.mark_kyber_pre_key_used(&fresh).unwrap());
    assert!(!b.mark_kyber_pre_key_used(&fresh).unwrap());
    assert_eq!(read(9).unwrap(), b"after the upgrade");
    b.verify().unwrap();
}

/// Defect 2 on the store it was about: two hosts (two pools, two `Device` handles on one
/// PostgreSQL device) record consent answers, first interleaved after both read the
/// ledger, then racing from threads. Every answer lands and both hosts read the same
/// ledger: each update is a compare-and-swap commit retried on conflict, not a save of a
/// cached copy.
#[test]
fn two_hosts_on_one_device_lose_no_consent_update() {
    use confide::policy::{CollectionMethod, ConsentEvent, Decision, PolicyId, timeline_2021};
    let not_now = |i: u64| {
        ConsentEvent::new(
            PolicyId::new("2021-01").unwrap(),
            Decision::NotNow,
            // 2021-01-10, while the 2021 terms were open for an answer.
            Timestamp::from_millis(1_610_236_800_000 + i),
            CollectionMethod::InAppNotice,
        )
    };
    let server = PgServer::start();
    let (pool_a, pool_b) = (server.pool(2), server.pool(2));
    let a = device_on(&pool_a, "carol", 3, 1);
    let b = device_on(&pool_b, "carol", 3, 2);
    let schedule = timeline_2021([b"terms 2016", b"terms 2021"], true);
    assert!(a.consent_ledger().unwrap().entries().is_empty());
    assert!(b.consent_ledger().unwrap().entries().is_empty());
    for i in 0..4 {
        a.record_consent(not_now(2 * i), &schedule).unwrap();
        b.record_consent(not_now(2 * i + 1), &schedule).unwrap();
    }
    std::thread::scope(|scope| {
        for d in [&a, &b] {
            let schedule = &schedule;
            // One time for all: the ledger refuses an answer older than its newest,
            // whichever thread lands first.
            scope.spawn(move || {
                for _ in 0..10 {
                    d.record_consent(not_now(100), schedule).unwrap();
                }
            });
        }
    });
    for d in [&a, &b] {
        let entries = d.consent_ledger().unwrap().entries().len();
        assert_eq!(entries, 28, "every answer from both hosts is in the ledger");
    }
}

// ---- the attacker with the database -------------------------------------------------

/// The cases of tests/store_attacker.rs on PostgreSQL: someone with write access to the
/// database (not the `StoreKey`) deletes, rolls back, re-inserts, swaps and edits
/// device rows between the app's operations, through a client of their own while the
/// stores stay open (case 1 also after a restarted host reopens). For every case the
/// affected read fails as `StoreError::Tampered` naming its table, the protocol step the
/// edit was meant to enable fails, and `DurableStore::verify` reports the device's rows
/// as tampered. Each test collects every broken expectation ([`Expect`]) and fails at
/// the end with all of them.
mod attacker {
    use std::collections::HashSet;

    use confide::session::Versions;
    use confide::session::cipher::{self, BundleSpec};
    use confide::store::postgres::client::Client;
    use confide::store::{
        DurableStore, IdentityStore, MessageId, PostgresPool, PostgresStore, PreKeyStore,
        SessionStore, StateStore, TamperedRow,
    };
    use confide::{Address, CiphertextMessage, DecryptError, EncryptError};
    use confide::{StoreError, Timestamp};

    use super::attacker_expect::{self, DbAttacker, Expect, KyberAttack, show_decrypt};
    use super::stores::{NOW, key, key_of, rng};
    use super::{PgServer, open, pair};

    /// Device 1 of `name`.
    fn dev(name: &str) -> Address {
        Address::new(name, 1)
    }

    /// `b` (with sessions with `a` and `c`, each of whose first message it decrypted),
    /// and a later message of `c`'s, not yet decrypted.
    fn with_two_sessions(
        pool: &PostgresPool,
        a: &str,
        b: &str,
        c: &str,
    ) -> (PostgresStore, CiphertextMessage) {
        let (_sa, sb, first) = pair(pool, a, b);
        let mut r = rng(4);
        cipher::decrypt(&sb, &dev(b), &dev(a), &first, &mut r, NOW).unwrap();
        let sc = open(pool, c, &key(3), 5);
        let spec = BundleSpec::new(1, 8).with_pre_key(Some(43));
        let bundle = cipher::publish_bundle(&sb, &mut r, &spec, NOW).unwrap();
        cipher::start_session(&sc, &dev(b), &bundle, Versions::V3AndV4, &mut r, NOW).unwrap();
        let hello = cipher::encrypt(
            &sc,
            &dev(c),
            &dev(b),
            b"hello",
            &mut confide::SystemRng::new(),
            NOW,
        )
        .unwrap();
        cipher::decrypt(&sb, &dev(b), &dev(c), &hello, &mut r, NOW).unwrap();
        let later = cipher::encrypt(
            &sc,
            &dev(c),
            &dev(b),
            b"later",
            &mut confide::SystemRng::new(),
            NOW,
        )
        .unwrap();
        (sb, later)
    }

    /// The attacker's own client, with a schema of its own (`attacker`) to keep copies
    /// of rows in. Copies take every column, so they stay whole whatever columns a
    /// later schema adds. Filters name the owner, as the tables' keys do.
    struct Attacker(Client);

    impl Attacker {
        fn on(server: &PgServer) -> Self {
            let mut sql = server.client();
            sql.batch_execute("CREATE SCHEMA IF NOT EXISTS attacker")
                .unwrap();
            Self(sql)
        }

        fn run(&mut self, sql: &str) {
            self.0.batch_execute(sql).unwrap();
        }

        fn count(&mut self, table: &str, filter: &str) -> i64 {
            let sql = format!("SELECT count(*) FROM confide_{table} WHERE {filter}");
            self.0.query_one(&sql, &[]).unwrap().get(0)
        }

        /// Keeps a copy of the one row of `table` matching `filter`, as
        /// `attacker.<copy>`.
        fn save(&mut self, copy: &str, table: &str, filter: &str) {
            assert_eq!(self.count(table, filter), 1, "{table} where {filter}");
            self.run(&format!(
                "CREATE TABLE attacker.{copy} AS SELECT * FROM confide_{table} WHERE {filter}"
            ));
        }

        /// Puts the copy back in place of whatever row now matches `filter`.
        fn restore(&mut self, copy: &str, table: &str, filter: &str) {
            self.run(&format!(
                "BEGIN;
                 DELETE FROM confide_{table} WHERE {filter};
                 INSERT INTO confide_{table} SELECT * FROM attacker.{copy};
                 COMMIT;"
            ));
        }

        /// The sealed value `v` of the one row of `table` matching `filter`.
        fn value(&mut self, table: &str, filter: &str) -> Vec<u8> {
            let sql = format!("SELECT v FROM confide_{table} WHERE {filter}");
            self.0.query_one(&sql, &[]).unwrap().get(0)
        }

        fn set_value(&mut self, table: &str, filter: &str, v: &[u8]) {
            let sql = format!("UPDATE confide_{table} SET v = $1 WHERE {filter}");
            assert_eq!(self.0.execute(&sql, &[&v]).unwrap(), 1);
        }
    }

    /// The attacker on one device's rows, as the Kyber cases of
    /// tests/common/attacker.rs drive it: every filter gains the owner.
    struct OnDevice<'a> {
        x: &'a mut Attacker,
        owner: &'a str,
    }

    impl OnDevice<'_> {
        fn filter(&self, filter: &str) -> String {
            format!("owner = '{}' AND ({filter})", self.owner)
        }
    }

    impl DbAttacker for OnDevice<'_> {
        fn save(&mut self, copy: &str, table: &str, filter: &str) {
            let filter = self.filter(filter);
            self.x.run(&format!(
                "DROP TABLE IF EXISTS attacker.{copy};
                 CREATE TABLE attacker.{copy} AS SELECT * FROM confide_{table} WHERE {filter}"
            ));
        }

        fn restore(&mut self, copy: &str, table: &str, filter: &str) {
            let filter = self.filter(filter);
            self.x.restore(copy, table, &filter);
        }

        fn edit(&mut self, table: &str, set: &str, filter: &str) {
            let filter = self.filter(filter);
            let sql = match set {
                "" => format!("DELETE FROM confide_{table} WHERE {filter}"),
                set => format!("UPDATE confide_{table} SET {set} WHERE {filter}"),
            };
            assert!(self.x.0.execute(&sql, &[]).unwrap() > 0, "{sql}");
        }

        fn value(&mut self, table: &str, filter: &str) -> Vec<u8> {
            let filter = self.filter(filter);
            self.x.value(table, &filter)
        }

        fn set_value(&mut self, table: &str, filter: &str, v: &[u8]) {
            let filter = self.filter(filter);
            self.x.set_value(table, &filter, v);
        }
    }

    /// Case 9: the Kyber prekey rows are checked as the one-time prekey rows are, with
    /// their records in the integrity head and in its leaves
    /// ([`attacker_expect::kyber_attack`]), each case on a device of its own.
    #[test]
    fn kyber_pre_key_rows_are_checked_like_prekeys() {
        let server = PgServer::start();
        let pool = server.pool(2);
        let mut e = Expect::default();
        let mut x = Attacker::on(&server);
        for settled in [false, true] {
            for attack in KyberAttack::ALL {
                let owner = format!("kyber-{attack:?}-{settled}");
                let s = open(&pool, &owner, &key(2), 2);
                let mut on = OnDevice {
                    x: &mut x,
                    owner: &owner,
                };
                attacker_expect::kyber_attack(attack, settled, &s, &mut on, &mut e);
            }
        }
        e.done();
    }

    /// Case 1 on devices `a`/`b` of `server`: the attacker deletes `a`'s rows of the
    /// tables `deleted` from `b`'s part of the database, so that `b` would trust the
    /// next key claiming to be `a` on first use again; after a restarted host reopens
    /// `b`, an impostor with a new identity key sends `b` a prekey message as `a`
    /// device 1. With nothing deleted (the control) `b` refuses it as
    /// `UntrustedIdentity`.
    fn impostor_after_deleting(server: &PgServer, a: &str, b: &str, deleted: &[&str]) -> Expect {
        let mut e = Expect::default();
        let what = match deleted {
            [] => "[control: nothing deleted]".to_owned(),
            _ => format!("[{} deleted]", deleted.join(" and ")),
        };
        let pool = server.pool(2);
        let (_sa, sb, first) = pair(&pool, a, b);
        cipher::decrypt(&sb, &dev(b), &dev(a), &first, &mut rng(4), NOW).unwrap();
        assert!(sb.identity(&dev(a)).unwrap().is_some(), "{b} trusts {a}");
        // Published before the attack (a tampered store may refuse every later write).
        let spec = BundleSpec::new(1, 8).with_pre_key(Some(43));
        let fresh = cipher::publish_bundle(&sb, &mut rng(5), &spec, NOW).unwrap();
        drop((sb, pool));

        let mut x = Attacker::on(server);
        for table in deleted {
            x.run(&format!(
                "DELETE FROM confide_{table} WHERE owner = '{b}' AND name = '{a}' AND device = 1"
            ));
        }

        let pool = server.pool(2);
        let sb = open(&pool, b, &key(2), 6);
        if deleted.contains(&"identity") {
            let read = sb.identity(&dev(a));
            e.tampered(&format!("{what} {b}.identity({a})"), read, "identity");
        }
        if deleted.contains(&"session") {
            let read = sb.session(&dev(a));
            e.tampered(&format!("{what} {b}.session({a})"), read, "session");
        }
        if !deleted.is_empty() {
            e.verify_fails(&format!("{what} {b}"), &sb);
        }

        let impostor = open(&pool, &format!("impostor-of-{a}"), &key(4), 7);
        let impostor_key = *impostor.local_identity().unwrap().identity_key();
        cipher::start_session(
            &impostor,
            &dev(b),
            &fresh,
            Versions::V3AndV4,
            &mut rng(8),
            NOW,
        )
        .unwrap();
        let forged = cipher::encrypt(
            &impostor,
            &dev(a),
            &dev(b),
            b"new phone",
            &mut confide::SystemRng::new(),
            NOW,
        )
        .unwrap();
        let got = cipher::decrypt(&sb, &dev(b), &dev(a), &forged, &mut rng(9), NOW);
        match &got {
            // Either the store notices the missing row, or it still knows the key (the
            // integrity head may keep what it needs to refuse the new one as it does
            // without the edit): both refuse the impostor.
            Err(DecryptError::Store(StoreError::Tampered(TamperedRow { table, .. })))
                if deleted.contains(table) => {}
            Err(DecryptError::UntrustedIdentity { .. }) => {}
            _ => e.fail(format!(
                "{what} the impostor's prekey message as {a}: expected \
                 Err(Store(Tampered(one of {deleted:?}))) or Err(UntrustedIdentity), got {}",
                show_decrypt(&got)
            )),
        }
        if let Ok(Some(k)) = sb.identity(&dev(a)) {
            if k == impostor_key {
                e.fail(format!(
                    "{what} {b} now trusts the impostor's identity key for {a}"
                ));
            }
        }
        e
    }

    /// Case 1: deleting a trusted identity (alone, or with its session) must not reopen
    /// trust on first use.
    #[test]
    fn deleted_identity_does_not_reopen_trust_on_first_use() {
        let server = PgServer::start();
        let mut all = Expect::default();
        for (a, b, deleted) in [
            ("alice-0", "bob-0", &[][..]),
            ("alice-1", "bob-1", &["identity"][..]),
            ("alice-2", "bob-2", &["identity", "session"][..]),
        ] {
            all.0
                .extend(impostor_after_deleting(&server, a, b, deleted).0);
        }
        all.done();
    }

    /// Case 2: the attacker keeps a copy of Alice's session row, lets two messages go
    /// to Bob, then puts the old row back under the open store. Alice's next encrypt
    /// would use a message key again: it must fail as a tampered session instead.
    #[test]
    fn rolled_back_session_does_not_reuse_a_message_key() {
        let server = PgServer::start();
        let pool = server.pool(2);
        let mut e = Expect::default();
        let (a, b, first) = pair(&pool, "alice", "bob");
        let mut r = rng(4);
        cipher::decrypt(&b, &dev("bob"), &dev("alice"), &first, &mut r, NOW).unwrap();

        let mut x = Attacker::on(&server);
        let bob_row = "owner = 'alice' AND name = 'bob' AND device = 1";
        x.save("old_session", "session", bob_row);
        let mut used = vec![key_of(&first)];
        for text in [&b"second"[..], b"third"] {
            let m = cipher::encrypt(
                &a,
                &dev("alice"),
                &dev("bob"),
                text,
                &mut confide::SystemRng::new(),
                NOW,
            )
            .unwrap();
            used.push(key_of(&m));
            cipher::decrypt(&b, &dev("bob"), &dev("alice"), &m, &mut r, NOW).unwrap();
        }
        x.restore("old_session", "session", bob_row);

        e.tampered("alice.session(bob)", a.session(&dev("bob")), "session");
        e.verify_fails("alice", &a);
        match cipher::encrypt(
            &a,
            &dev("alice"),
            &dev("bob"),
            b"fourth",
            &mut confide::SystemRng::new(),
            NOW,
        ) {
            Err(EncryptError::Store(StoreError::Tampered(TamperedRow {
                table: "session",
                ..
            }))) => {}
            Ok(m) => {
                let (_, counter) = key_of(&m);
                let reused = used.contains(&key_of(&m));
                let at_bob = cipher::decrypt(&b, &dev("bob"), &dev("alice"), &m, &mut r, NOW);
                e.fail(format!(
                    "encrypt after the rollback: expected Err(Store(Tampered(\"session\"))), \
                     got Ok: counter {counter}, message key {}; Bob's decrypt: {}",
                    if reused { "REUSED" } else { "new" },
                    show_decrypt(&at_bob)
                ));
            }
            Err(other) => e.fail(format!(
                "encrypt after the rollback: expected Err(Store(Tampered(\"session\"))), \
                 got Err({other:?})"
            )),
        }
        e.done();
    }

    /// Case 3: the attacker copies Bob's one-time prekey 42 before Alice's first
    /// message consumes it, and inserts the copy again afterwards: the row must be
    /// refused, and a prekey message from Carol made from the same (used) bundle must
    /// not decrypt.
    #[test]
    fn reinserted_one_time_prekey_is_refused() {
        let server = PgServer::start();
        let pool = server.pool(2);
        let mut e = Expect::default();
        let a = open(&pool, "alice", &key(1), 1);
        let b = open(&pool, "bob", &key(2), 2);
        let mut r = rng(3);
        let spec = BundleSpec::new(1, 7).with_pre_key(Some(42));
        let bundle = cipher::publish_bundle(&b, &mut r, &spec, NOW).unwrap();
        cipher::start_session(&a, &dev("bob"), &bundle, Versions::V3AndV4, &mut r, NOW).unwrap();
        let first = cipher::encrypt(
            &a,
            &dev("alice"),
            &dev("bob"),
            b"first",
            &mut confide::SystemRng::new(),
            NOW,
        )
        .unwrap();

        let mut x = Attacker::on(&server);
        let row = "owner = 'bob' AND id = 42";
        x.save("used_pre_key", "pre_key", row);
        cipher::decrypt(&b, &dev("bob"), &dev("alice"), &first, &mut r, NOW).unwrap();
        assert!(b.pre_key(42).unwrap().is_none(), "consumed by the decrypt");
        x.restore("used_pre_key", "pre_key", row);

        e.tampered("bob.pre_key(42)", b.pre_key(42), "pre_key");
        e.verify_fails("bob", &b);
        let c = open(&pool, "carol", &key(3), 6);
        cipher::start_session(
            &c,
            &dev("bob"),
            &bundle,
            Versions::V3AndV4,
            &mut rng(7),
            NOW,
        )
        .unwrap();
        let m = cipher::encrypt(
            &c,
            &dev("carol"),
            &dev("bob"),
            b"carol on prekey 42",
            &mut confide::SystemRng::new(),
            NOW,
        )
        .unwrap();
        let got = cipher::decrypt(&b, &dev("bob"), &dev("carol"), &m, &mut rng(8), NOW);
        e.refused("Carol's prekey message on the used prekey 42", &got);
        if let Ok(Some(_)) = b.identity(&dev("carol")) {
            e.fail("Bob trusts Carol's identity from a message on a used prekey".to_owned());
        }
        e.done();
    }

    /// Case 4: the attacker copies Bob's sealed session with Alice into his session
    /// row with Carol. The sealing binds each value to its row key, so this is refused
    /// already; it must stay refused.
    #[test]
    fn swapped_session_rows_are_refused() {
        let server = PgServer::start();
        let pool = server.pool(2);
        let mut e = Expect::default();
        let (b, later) = with_two_sessions(&pool, "alice", "bob", "carol");
        Attacker::on(&server).run(
            "UPDATE confide_session SET v = (SELECT v FROM confide_session
                 WHERE owner = 'bob' AND name = 'alice')
             WHERE owner = 'bob' AND name = 'carol'",
        );

        e.tampered("bob.session(carol)", b.session(&dev("carol")), "session");
        e.verify_fails("bob", &b);
        match cipher::encrypt(
            &b,
            &dev("bob"),
            &dev("carol"),
            b"to carol",
            &mut confide::SystemRng::new(),
            NOW,
        ) {
            Err(EncryptError::Store(StoreError::Tampered(TamperedRow {
                table: "session",
                ..
            }))) => {}
            other => e.fail(format!(
                "encrypt to carol: expected Err(Store(Tampered(\"session\"))), got {:?}",
                other.map(|_| "a ciphertext")
            )),
        }
        let got = cipher::decrypt(&b, &dev("bob"), &dev("carol"), &later, &mut rng(10), NOW);
        e.refused("Carol's later message", &got);
        e.done();
    }

    /// `b` after decrypting `a`'s first message, which the store keeps (with its
    /// plaintext until acknowledged); the message and its id.
    fn with_a_stored_message(
        pool: &PostgresPool,
        a: &str,
        b: &str,
    ) -> (PostgresStore, CiphertextMessage, MessageId) {
        let (_sa, sb, first) = pair(pool, a, b);
        let got = cipher::decrypt(&sb, &dev(b), &dev(a), &first, &mut rng(4), NOW).unwrap();
        assert_eq!(got.id, MessageId::of(&first));
        let stored = sb.message(&dev(a), &got.id).unwrap().unwrap();
        assert!(stored.plaintext.is_some());
        (sb, first, got.id)
    }

    /// The app set `b`'s stored message from `a` to disappear a second after [`NOW`];
    /// the attacker sets its plain `expires_at` column to `expires_at` (`NULL`: never)
    /// so the purge at its time would keep it.
    fn expiry_edited(
        pool: &PostgresPool,
        server: &PgServer,
        names: (&str, &str),
        expires_at: &str,
        e: &mut Expect,
    ) {
        let (a, b) = names;
        let what = format!("[expires_at = {expires_at}]");
        let (sb, first, id) = with_a_stored_message(pool, a, b);
        let at = Timestamp::from_millis(NOW.as_millis() + 1000);
        assert!(sb.set_message_expiry(&dev(a), &id, Some(at)).unwrap());
        let mut x = Attacker::on(server);
        let row = format!("owner = '{b}' AND name = '{a}'");
        assert_eq!(x.count("message", &row), 1);
        x.run(&format!(
            "UPDATE confide_message SET expires_at = {expires_at} WHERE {row}"
        ));

        let read = sb.message(&dev(a), &id);
        e.tampered(&format!("{what} {b}.message({a}, id)"), read, "message");
        e.verify_fails(&format!("{what} {b}"), &sb);
        // The purge at the expiry time (which may itself refuse the tampered row):
        // after it the plaintext must not come out of the store, neither read nor
        // redelivered.
        let purged = sb.purge_messages(at, Timestamp::from_millis(0));
        if let Ok(Some(m)) = sb.message(&dev(a), &id) {
            if m.plaintext.is_some() {
                e.fail(format!(
                    "{what} after the purge at its expiry (which returned {purged:?}) \
                     the plaintext is still stored"
                ));
            }
        }
        let again = cipher::decrypt(&sb, &dev(b), &dev(a), &first, &mut rng(6), NOW);
        e.refused(&format!("{what} a redelivery after the expiry"), &again);
    }

    /// Case 5: a message row's `expires_at` and its acknowledged state are
    /// authenticated: the attacker clears the expiry or moves it far into the future,
    /// or puts the sealed plaintext back after the app acknowledged the message.
    #[test]
    fn message_expiry_and_acknowledgement_are_authenticated() {
        let server = PgServer::start();
        let pool = server.pool(2);
        let mut e = Expect::default();
        expiry_edited(&pool, &server, ("alice-0", "bob-0"), "NULL", &mut e);
        expiry_edited(
            &pool,
            &server,
            ("alice-1", "bob-1"),
            "9000000000000",
            &mut e,
        );

        // Un-acknowledged.
        let (sb, first, id) = with_a_stored_message(&pool, "alice-2", "bob-2");
        let from = dev("alice-2");
        let mut x = Attacker::on(&server);
        let row = "owner = 'bob-2' AND name = 'alice-2'";
        x.save("unacknowledged", "message", row);
        assert!(sb.transactional().unwrap().acknowledge(&from, &id).unwrap());
        assert!(matches!(
            cipher::decrypt(&sb, &dev("bob-2"), &from, &first, &mut rng(5), NOW),
            Err(DecryptError::DuplicateMessage { .. })
        ));
        x.restore("unacknowledged", "message", row);
        let what = "[acknowledged row put back]";
        let read = sb.message(&from, &id);
        e.tampered(
            &format!("{what} bob-2.message(alice-2, id)"),
            read,
            "message",
        );
        e.verify_fails(&format!("{what} bob-2"), &sb);
        let again = cipher::decrypt(&sb, &dev("bob-2"), &from, &first, &mut rng(6), NOW);
        e.refused(&format!("{what} a redelivery after acknowledge"), &again);
        e.done();
    }

    /// Case 6: the attacker overwrites the nonce (first 12 bytes) of Bob's sealed
    /// session with Carol by the nonce of his session with Alice. GCM refuses the value
    /// under the other nonce, so this is caught already; it must stay caught.
    #[test]
    fn hand_collided_nonce_is_refused() {
        let server = PgServer::start();
        let pool = server.pool(2);
        let mut e = Expect::default();
        let (b, _) = with_two_sessions(&pool, "alice", "bob", "carol");
        let mut x = Attacker::on(&server);
        let (alices, carols) = (
            "owner = 'bob' AND name = 'alice'",
            "owner = 'bob' AND name = 'carol'",
        );
        let alice_nonce = x.value("session", alices)[..12].to_vec();
        let mut carol = x.value("session", carols);
        assert_ne!(&carol[..12], &alice_nonce[..]);
        carol[..12].copy_from_slice(&alice_nonce);
        x.set_value("session", carols, &carol);

        e.tampered("bob.session(carol)", b.session(&dev("carol")), "session");
        e.verify_fails("bob", &b);
        if let Ok(m) = cipher::encrypt(
            &b,
            &dev("bob"),
            &dev("carol"),
            b"to carol",
            &mut confide::SystemRng::new(),
            NOW,
        ) {
            e.fail(format!(
                "encrypt to carol on the collided row: expected Err, got Ok (counter {})",
                key_of(&m).1
            ));
        }
        e.done();
    }

    /// Case 6, the other half: one device opened three times with the same RNG seed
    /// (so only the generation the database hands out tells the opens apart), 30 state
    /// writes in each: the nonce of every value written, read from the database after
    /// each write, is new.
    #[test]
    fn nonces_stay_distinct_across_reopens() {
        let server = PgServer::start();
        let mut x = Attacker::on(&server);
        let mut seen = HashSet::new();
        for o in 0..3 {
            let pool = server.pool(1);
            let s = open(&pool, "nonces", &key(5), 1);
            for i in 0..30 {
                let k = format!("k{}", i % 7);
                s.save_state("nonce-test", &k, format!("open {o} write {i}").as_bytes())
                    .unwrap();
                let row = format!("owner = 'nonces' AND kind = 'nonce-test' AND k = '{k}'");
                let v = x.value("state", &row);
                let nonce: [u8; 12] = v[..12].try_into().unwrap();
                assert!(
                    seen.insert(nonce),
                    "open {o}, write {i}: nonce {} was used before",
                    hex::encode(nonce)
                );
            }
        }
        assert_eq!(seen.len(), 90);
    }

    /// Case 8: after 100 messages most records have moved from the head into its
    /// leaves; an acknowledged message put back unacknowledged and the session put
    /// back to its copy from before the last 50 messages are caught there too.
    #[test]
    fn rows_recorded_in_the_leaves_are_checked_too() {
        let mut e = Expect::default();
        let server = PgServer::start();
        let pool = server.pool(2);
        let (sa, sb, first) = pair(&pool, "alice-8", "bob-8");
        let (a, b) = (dev("alice-8"), dev("bob-8"));
        let mut r = rng(4);
        let mut ids = vec![
            cipher::decrypt(&sb, &b, &a, &first, &mut r, NOW)
                .unwrap()
                .id,
        ];
        for i in 0..50u32 {
            let m = cipher::encrypt(
                &sa,
                &a,
                &b,
                &i.to_be_bytes(),
                &mut confide::SystemRng::new(),
                NOW,
            )
            .unwrap();
            ids.push(cipher::decrypt(&sb, &b, &a, &m, &mut r, NOW).unwrap().id);
        }
        let mut x = Attacker::on(&server);
        x.run(
            "CREATE TABLE attacker.messages8 AS
             SELECT * FROM confide_message WHERE owner = 'bob-8'",
        );
        x.save(
            "session8",
            "session",
            "owner = 'bob-8' AND name = 'alice-8'",
        );
        let txn = sb.transactional().unwrap();
        assert!(txn.acknowledge(&a, &ids[10]).unwrap());
        for i in 50..100u32 {
            let m = cipher::encrypt(
                &sa,
                &a,
                &b,
                &i.to_be_bytes(),
                &mut confide::SystemRng::new(),
                NOW,
            )
            .unwrap();
            ids.push(cipher::decrypt(&sb, &b, &a, &m, &mut r, NOW).unwrap().id);
        }
        assert_eq!(sb.verify().unwrap().messages, 101);
        let later =
            cipher::encrypt(&sa, &a, &b, b"later", &mut confide::SystemRng::new(), NOW).unwrap();

        x.run(
            "BEGIN;
             DELETE FROM confide_message WHERE owner = 'bob-8'
                 AND id IN (SELECT id FROM attacker.messages8);
             INSERT INTO confide_message SELECT * FROM attacker.messages8;
             COMMIT;",
        );
        e.tampered(
            "sb.message(alice, #10)",
            sb.message(&a, &ids[10]),
            "message",
        );
        e.verify_fails("sb (message 10 un-acknowledged)", &sb);
        assert!(sb.message(&a, &ids[60]).unwrap().is_some());

        x.restore(
            "session8",
            "session",
            "owner = 'bob-8' AND name = 'alice-8'",
        );
        e.tampered("sb.session(alice)", sb.session(&a), "session");
        let got = cipher::decrypt(&sb, &b, &a, &later, &mut r, NOW);
        e.refused("decrypt on the rolled-back session", &got);
        e.done();
    }

    /// Case 7: while Alice's store is open, the attacker puts every one of her rows
    /// (the integrity head's included) back to a copy from two messages earlier. The
    /// rows agree with that older head, but the store has seen a newer one: the next
    /// encrypt, which would reuse a message key, fails as `RolledBack`.
    #[test]
    fn a_whole_device_rolled_back_under_an_open_store_is_refused() {
        let server = PgServer::start();
        let pool = server.pool(2);
        let (sa, sb, first) = pair(&pool, "alice-7", "bob-7");
        let (a, b) = (dev("alice-7"), dev("bob-7"));
        let mut r = rng(4);
        cipher::decrypt(&sb, &b, &a, &first, &mut r, NOW).unwrap();
        let tables = [
            "meta",
            "identity",
            "pre_key",
            "signed_pre_key",
            "session",
            "message",
            "state",
            "sender_key",
            "integrity",
            "kyber_pre_key",
            "kyber_pre_key_use",
        ];
        let mut x = Attacker::on(&server);
        for t in tables {
            x.run(&format!(
                "CREATE TABLE attacker.{t}7 AS SELECT * FROM confide_{t} WHERE owner = 'alice-7'"
            ));
        }
        for m in [&b"second"[..], b"third"] {
            let c = cipher::encrypt(&sa, &a, &b, m, &mut confide::SystemRng::new(), NOW).unwrap();
            cipher::decrypt(&sb, &b, &a, &c, &mut r, NOW).unwrap();
        }
        let mut sql = String::from("BEGIN;");
        for t in tables {
            sql.push_str(&format!(
                "DELETE FROM confide_{t} WHERE owner = 'alice-7';
                 INSERT INTO confide_{t} SELECT * FROM attacker.{t}7;"
            ));
        }
        sql.push_str("COMMIT;");
        x.run(&sql);
        assert!(matches!(
            cipher::encrypt(
                &sa,
                &a,
                &b,
                b"reuses a key",
                &mut confide::SystemRng::new(),
                NOW
            ),
            Err(EncryptError::Store(StoreError::RolledBack { .. }))
        ));
        assert!(matches!(sa.verify(), Err(StoreError::RolledBack { .. })));
    }
}

/// A backup of a device served from PostgreSQL while a second host keeps recording
/// consent: each backup is one consistent snapshot (the carried rows committed
/// unchanged with the backup counter, under one compare-and-swap), and restores onto a
/// new device in the same database with the ledger exactly as it was at that point.
#[cfg(feature = "backup")]
#[test]
fn a_backup_is_a_consistent_snapshot_of_a_device_in_use() {
    use confide::backup::{BackupKey, BackupMessage, BackupSetting};
    use confide::device::BackupExtras;
    use confide::policy::{
        CollectionMethod, ConsentEvent, Decision, PolicyId, timeline_2021, utc_date,
    };

    let server = PgServer::start();
    let pool = server.pool(4);
    let alice = device_on(&pool, "alice", 1, 1);
    let host2 = device_on(&pool, "alice", 1, 2);
    let schedule = timeline_2021([b"terms 2016", b"terms 2021"], false);
    let day = |d: u32| utc_date(2021, 6, d).unwrap();
    alice.record_connection().unwrap();
    alice.set_backup_setting(BackupSetting::DigitKey).unwrap();
    let key = BackupKey::generate(&mut rng(3));
    let none: [BackupMessage; 0] = [];
    let backups = std::thread::scope(|s| {
        s.spawn(|| {
            for d in 1..=20 {
                let event = ConsentEvent::new(
                    PolicyId::new("2021-01").unwrap(),
                    Decision::NotNow,
                    day(d),
                    CollectionMethod::InAppNotice,
                );
                host2.record_consent(event, &schedule).unwrap();
            }
        });
        (0..10)
            .map(|_| {
                alice
                    .export_backup(&key, &BackupExtras::default(), &none, Vec::new())
                    .unwrap()
            })
            .collect::<Vec<_>>()
    });
    let generations: Vec<u64> = backups.iter().map(|(_, s)| s.generation).collect();
    assert_eq!(generations, (1..=10).collect::<Vec<_>>());
    let full = alice.consent_ledger().unwrap();
    for (i, (file, stamp)) in backups.iter().enumerate() {
        let name = format!("alice-restored-{i}");
        let store = open(&pool, &name, &key_byte_for(i), 100 + i as u64);
        let fresh = Device::new(
            store,
            Address::new("alice", 1),
            rng(200 + i as u64),
            FixedClock::new(NOW),
        );
        fresh
            .restore_backup(&key, file.as_slice(), Some(*stamp))
            .unwrap();
        let restored = fresh.consent_ledger().unwrap();
        // A prefix of the ledger as it grew: never a mix of two moments.
        let n = restored.entries().len();
        assert_eq!(restored.entries(), &full.entries()[..n]);
        assert_eq!(
            restored.head(),
            full.entries()
                .get(n.wrapping_sub(1))
                .map_or(restored.head(), |e| *e.hash())
        );
    }
}

#[cfg(feature = "backup")]
fn key_byte_for(i: usize) -> StoreKey {
    key(10 + i as u8)
}
