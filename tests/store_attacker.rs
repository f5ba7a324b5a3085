//! The attacker with write access to a `SqliteStore`'s database file (but not the
//! `StoreKey`): a second connection that deletes, rolls back, re-inserts, swaps and
//! edits rows between the app's operations. Each sealed row is bound to its table and
//! row key, so moving or editing a sealed value is caught (cases 4 and 6); what the
//! sealing alone does not catch is an old but genuine value put back, a row deleted, or
//! a plain column changed (cases 1, 2, 3 and 5): the integrity head does. For every
//! case: the read of the affected row fails as `StoreError::Tampered` naming its table,
//! the protocol step the edit was meant to enable fails, and `DurableStore::verify`
//! reports the store as tampered. tests/postgres.rs (module `attacker`) runs the same
//! cases on PostgreSQL. Case 7, the whole file put back to an older copy, is seen by a
//! store that is open and, across restarts, by a rollback counter. Case 9 runs the
//! deletions, rollbacks and swaps on the Kyber prekey rows (tests/common/attacker.rs,
//! shared with PostgreSQL).
//!
//! Each test collects every expectation the attacker broke ([`Expect`]) and fails at
//! the end with all of them, so one run shows each way the store was fooled.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/attacker.rs"]
mod attacker;
#[path = "common/stores.rs"]
mod stores;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use confide::session::Versions;
use confide::session::cipher::{self, BundleSpec};
use confide::store::{
    DurableStore, IdentityStore, PreKeyStore, RollbackCounter, SessionStore, SqliteStore,
    StateStore, TamperedRow,
};
use confide::{
    Address, CiphertextMessage, DecryptError, EncryptError, IdentityKeyPair, PreKeyBundle,
    StoreError, Timestamp,
};

use attacker::{DbAttacker, Expect, KyberAttack, show_decrypt};
use stores::{NOW, alice, bob, key, key_of, rng};

// ---- the stores ------------------------------------------------------------------

/// Carol's device 1.
fn carol() -> Address {
    Address::new("carol", 1)
}

/// The database file of device `name` in `dir`.
fn file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.db"))
}

/// Opens device `name`'s store in `dir` (store key byte `k`, nonce salt from `seed`)
/// and gives it an identity if it has none.
fn open(dir: &Path, name: &str, k: u8, seed: u64) -> SqliteStore {
    let mut r = rng(seed);
    let store = SqliteStore::open(file(dir, name), &key(k), &mut r).unwrap();
    if !store.has_local_identity().unwrap() {
        let id = IdentityKeyPair::generate(&mut r);
        store.set_local_identity(&id, 1000 + seed as u32).unwrap();
    }
    store
}

/// Alice and Bob in `dir`: Alice started a session from Bob's bundle (signed prekey 7,
/// one-time prekey 42, returned) and encrypted her first message, not yet decrypted.
fn pair(dir: &Path) -> (SqliteStore, SqliteStore, PreKeyBundle, CiphertextMessage) {
    let a = open(dir, "alice", 1, 1);
    let b = open(dir, "bob", 2, 2);
    let mut r = rng(3);
    let spec = BundleSpec::new(1, 7).with_pre_key(Some(42));
    let bundle = cipher::publish_bundle(&b, &mut r, &spec, NOW).unwrap();
    cipher::start_session(&a, &bob(), &bundle, Versions::V3AndV4, &mut r, NOW).unwrap();
    let first = cipher::encrypt(
        &a,
        &alice(),
        &bob(),
        b"first",
        &mut confide::SystemRng::new(),
        NOW,
    )
    .unwrap();
    (a, b, bundle, first)
}

/// Bob in `dir` with sessions with Alice and Carol, each of whose first message he
/// decrypted; also returns a later message of Carol's, not yet decrypted.
fn bob_with_alice_and_carol(dir: &Path) -> (SqliteStore, CiphertextMessage) {
    let (_a, b, _, first) = pair(dir);
    let mut r = rng(4);
    cipher::decrypt(&b, &bob(), &alice(), &first, &mut r, NOW).unwrap();
    let c = open(dir, "carol", 3, 5);
    let spec = BundleSpec::new(1, 8).with_pre_key(Some(43));
    let bundle = cipher::publish_bundle(&b, &mut r, &spec, NOW).unwrap();
    cipher::start_session(&c, &bob(), &bundle, Versions::V3AndV4, &mut r, NOW).unwrap();
    let hello = cipher::encrypt(
        &c,
        &carol(),
        &bob(),
        b"hello from carol",
        &mut confide::SystemRng::new(),
        NOW,
    )
    .unwrap();
    cipher::decrypt(&b, &bob(), &carol(), &hello, &mut r, NOW).unwrap();
    let later = cipher::encrypt(
        &c,
        &carol(),
        &bob(),
        b"later from carol",
        &mut confide::SystemRng::new(),
        NOW,
    )
    .unwrap();
    (b, later)
}

// ---- the attacker ----------------------------------------------------------------

/// The attacker: a second connection to a store's file (`main`), with a database file
/// of its own attached as `x` to keep copies of rows in (the store's file gains no
/// table). Copies take every column, so they stay whole whatever columns a later
/// schema adds.
struct Attacker(rusqlite::Connection);

impl Attacker {
    fn on(db: &Path) -> Self {
        let conn = rusqlite::Connection::open(db).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        let keep = db.with_extension("attacker");
        conn.execute("ATTACH ?1 AS x", [keep.to_str().unwrap()])
            .unwrap();
        Self(conn)
    }

    fn run(&self, sql: &str) {
        self.0.execute_batch(sql).unwrap();
    }

    fn count(&self, table: &str, filter: &str) -> i64 {
        let sql = format!("SELECT count(*) FROM main.{table} WHERE {filter}");
        self.0.query_row(&sql, [], |r| r.get(0)).unwrap()
    }

    /// Keeps a copy of the one row of `table` matching `filter`, as `x.<copy>`.
    fn save(&self, copy: &str, table: &str, filter: &str) {
        assert_eq!(self.count(table, filter), 1, "{table} where {filter}");
        self.run(&format!(
            "CREATE TABLE x.{copy} AS SELECT * FROM main.{table} WHERE {filter}"
        ));
    }

    /// Puts the copy back in place of whatever row now matches `filter`.
    fn restore(&self, copy: &str, table: &str, filter: &str) {
        self.run(&format!(
            "BEGIN IMMEDIATE;
             DELETE FROM main.{table} WHERE {filter};
             INSERT INTO main.{table} SELECT * FROM x.{copy};
             COMMIT;"
        ));
    }

    /// The sealed value `v` of the one row of `table` matching `filter`.
    fn value(&self, table: &str, filter: &str) -> Vec<u8> {
        let sql = format!("SELECT v FROM main.{table} WHERE {filter}");
        self.0.query_row(&sql, [], |r| r.get(0)).unwrap()
    }

    fn set_value(&self, table: &str, filter: &str, v: &[u8]) {
        let sql = format!("UPDATE main.{table} SET v = ?1 WHERE {filter}");
        assert_eq!(self.0.execute(&sql, [v]).unwrap(), 1);
    }
}

/// The attacker as the Kyber cases of tests/common/attacker.rs drive it.
impl DbAttacker for Attacker {
    fn save(&mut self, copy: &str, table: &str, filter: &str) {
        self.run(&format!(
            "CREATE TABLE x.{copy} AS SELECT * FROM main.{table} WHERE {filter}"
        ));
    }

    fn restore(&mut self, copy: &str, table: &str, filter: &str) {
        Attacker::restore(self, copy, table, filter);
    }

    fn edit(&mut self, table: &str, set: &str, filter: &str) {
        let sql = match set {
            "" => format!("DELETE FROM main.{table} WHERE {filter}"),
            set => format!("UPDATE main.{table} SET {set} WHERE {filter}"),
        };
        assert!(self.0.execute(&sql, []).unwrap() > 0, "{sql}");
    }

    fn value(&mut self, table: &str, filter: &str) -> Vec<u8> {
        Attacker::value(self, table, filter)
    }

    fn set_value(&mut self, table: &str, filter: &str, v: &[u8]) {
        Attacker::set_value(self, table, filter, v);
    }
}

// ---- expectations: tests/common/attacker.rs ----------------------------------------

// ---- 1. a trusted identity deleted -------------------------------------------------

/// The attacker deletes Alice's rows of the tables `deleted` (`identity`, and maybe
/// `session`) from Bob's file, so that Bob would trust the next key claiming to be
/// Alice on first use again; an impostor with a new identity key then sends Bob a
/// prekey message as `alice` device 1. With nothing deleted (the control) Bob refuses
/// it as `UntrustedIdentity`.
fn impostor_after_deleting(deleted: &[&str], e: &mut Expect) {
    let what = match deleted {
        [] => "[control: nothing deleted]".to_owned(),
        _ => format!("[{} deleted]", deleted.join(" and ")),
    };
    let dir = tempfile::tempdir().unwrap();
    let (_a, b, _, first) = pair(dir.path());
    cipher::decrypt(&b, &bob(), &alice(), &first, &mut rng(4), NOW).unwrap();
    assert!(b.identity(&alice()).unwrap().is_some(), "Bob trusts Alice");
    // Published before the attack (a tampered store may refuse every later write):
    // what the impostor fetches from the server.
    let spec = BundleSpec::new(1, 8).with_pre_key(Some(43));
    let fresh = cipher::publish_bundle(&b, &mut rng(5), &spec, NOW).unwrap();
    drop(b);

    let x = Attacker::on(&file(dir.path(), "bob"));
    for table in deleted {
        x.run(&format!(
            "DELETE FROM {table} WHERE name = 'alice' AND device = 1"
        ));
    }
    drop(x);

    let b = open(dir.path(), "bob", 2, 6);
    if deleted.contains(&"identity") {
        let read = b.identity(&alice());
        e.tampered(&format!("{what} b.identity(alice)"), read, "identity");
    }
    if deleted.contains(&"session") {
        let read = b.session(&alice());
        e.tampered(&format!("{what} b.session(alice)"), read, "session");
    }
    if !deleted.is_empty() {
        e.verify_fails(&format!("{what} b"), &b);
    }

    let impostor = open(dir.path(), "impostor", 4, 7);
    let impostor_key = *impostor.local_identity().unwrap().identity_key();
    cipher::start_session(
        &impostor,
        &bob(),
        &fresh,
        Versions::V3AndV4,
        &mut rng(8),
        NOW,
    )
    .unwrap();
    let forged = cipher::encrypt(
        &impostor,
        &alice(),
        &bob(),
        b"alice here, new phone",
        &mut confide::SystemRng::new(),
        NOW,
    )
    .unwrap();
    let got = cipher::decrypt(&b, &bob(), &alice(), &forged, &mut rng(9), NOW);
    match &got {
        // Either the store notices the missing row, or it still knows Alice's key
        // (the integrity head may keep what it needs to refuse the new one as it does
        // without the edit): both refuse the impostor.
        Err(DecryptError::Store(StoreError::Tampered(TamperedRow { table, .. })))
            if deleted.contains(table) => {}
        Err(DecryptError::UntrustedIdentity { .. }) => {}
        _ => e.fail(format!(
            "{what} the impostor's prekey message as alice: expected \
             Err(Store(Tampered(one of {deleted:?}))) or Err(UntrustedIdentity), got {}",
            show_decrypt(&got)
        )),
    }
    if let Ok(Some(k)) = b.identity(&alice()) {
        if k == impostor_key {
            e.fail(format!(
                "{what} Bob now trusts the impostor's identity key for alice"
            ));
        }
    }
}

/// Case 1: deleting a trusted identity (alone, or with its session) must not reopen
/// trust on first use: without the edit Bob refuses a new key for Alice as
/// `UntrustedIdentity`, with it he must not decrypt the impostor's message as Alice's.
#[test]
fn deleted_identity_does_not_reopen_trust_on_first_use() {
    let mut e = Expect::default();
    impostor_after_deleting(&[], &mut e);
    impostor_after_deleting(&["identity"], &mut e);
    impostor_after_deleting(&["identity", "session"], &mut e);
    e.done();
}

// ---- 2. a session rolled back ------------------------------------------------------

/// Case 2: the attacker keeps a copy of Alice's `session` row, lets two messages go
/// from Alice to Bob, then puts the old row back, while Alice's store stays open (the
/// edit goes through the second connection, which the store sees). Alice's next
/// encrypt would use a message key again (a two-time pad under one key, and Bob would
/// refuse the message as a duplicate): it must fail as a tampered session instead.
#[test]
fn rolled_back_session_does_not_reuse_a_message_key() {
    let mut e = Expect::default();
    let dir = tempfile::tempdir().unwrap();
    let (a, b, _, first) = pair(dir.path());
    let mut r = rng(4);
    cipher::decrypt(&b, &bob(), &alice(), &first, &mut r, NOW).unwrap();

    let x = Attacker::on(&file(dir.path(), "alice"));
    let bob_row = "name = 'bob' AND device = 1";
    x.save("old_session", "session", bob_row);
    let mut used = vec![key_of(&first)];
    for text in [&b"second"[..], b"third"] {
        let m = cipher::encrypt(
            &a,
            &alice(),
            &bob(),
            text,
            &mut confide::SystemRng::new(),
            NOW,
        )
        .unwrap();
        used.push(key_of(&m));
        cipher::decrypt(&b, &bob(), &alice(), &m, &mut r, NOW).unwrap();
    }
    x.restore("old_session", "session", bob_row);

    e.tampered("a.session(bob)", a.session(&bob()), "session");
    e.verify_fails("a", &a);
    match cipher::encrypt(
        &a,
        &alice(),
        &bob(),
        b"fourth",
        &mut confide::SystemRng::new(),
        NOW,
    ) {
        Err(EncryptError::Store(StoreError::Tampered(TamperedRow {
            table: "session", ..
        }))) => {}
        Ok(m) => {
            let (_, counter) = key_of(&m);
            let reused = used.contains(&key_of(&m));
            let at_bob = cipher::decrypt(&b, &bob(), &alice(), &m, &mut r, NOW);
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

// ---- 3. a used one-time prekey put back ---------------------------------------------

/// Case 3: the attacker copies Bob's one-time prekey 42 before Alice's first message
/// consumes it, and inserts the copy again afterwards. A one-time prekey is used once
/// (its secret is what makes a replayed or second session on the same bundle fail):
/// the row must be refused, and a prekey message from Carol made from the same bundle
/// (as a server would hand out a used bundle again) must not decrypt.
#[test]
fn reinserted_one_time_prekey_is_refused() {
    let mut e = Expect::default();
    let dir = tempfile::tempdir().unwrap();
    let (_a, b, bundle, first) = pair(dir.path());
    let x = Attacker::on(&file(dir.path(), "bob"));
    x.save("used_pre_key", "pre_key", "id = 42");
    cipher::decrypt(&b, &bob(), &alice(), &first, &mut rng(4), NOW).unwrap();
    assert!(b.pre_key(42).unwrap().is_none(), "consumed by the decrypt");
    drop(b);
    x.restore("used_pre_key", "pre_key", "id = 42");
    drop(x);

    let b = open(dir.path(), "bob", 2, 5);
    e.tampered("b.pre_key(42)", b.pre_key(42), "pre_key");
    e.verify_fails("b", &b);
    let c = open(dir.path(), "carol", 3, 6);
    cipher::start_session(&c, &bob(), &bundle, Versions::V3AndV4, &mut rng(7), NOW).unwrap();
    let m = cipher::encrypt(
        &c,
        &carol(),
        &bob(),
        b"carol on prekey 42",
        &mut confide::SystemRng::new(),
        NOW,
    )
    .unwrap();
    let got = cipher::decrypt(&b, &bob(), &carol(), &m, &mut rng(8), NOW);
    e.refused("Carol's prekey message on the used prekey 42", &got);
    if let Ok(Some(_)) = b.identity(&carol()) {
        e.fail("Bob trusts Carol's identity from a message on a used prekey".to_owned());
    }
    e.done();
}

// ---- 4. two rows swapped -------------------------------------------------------------

/// Case 4: the attacker copies Bob's sealed session with Alice into his session row
/// with Carol, so that Bob would encrypt to Carol on Alice's session (and decrypt
/// Alice's messages as Carol's). The sealing binds each value to its row key, so this
/// is refused already; it must stay refused.
#[test]
fn swapped_session_rows_are_refused() {
    let mut e = Expect::default();
    let dir = tempfile::tempdir().unwrap();
    let (b, later) = bob_with_alice_and_carol(dir.path());
    drop(b);
    Attacker::on(&file(dir.path(), "bob")).run(
        "UPDATE session SET v = (SELECT v FROM session WHERE name = 'alice')
         WHERE name = 'carol'",
    );

    let b = open(dir.path(), "bob", 2, 9);
    e.tampered("b.session(carol)", b.session(&carol()), "session");
    e.verify_fails("b", &b);
    match cipher::encrypt(
        &b,
        &bob(),
        &carol(),
        b"to carol",
        &mut confide::SystemRng::new(),
        NOW,
    ) {
        Err(EncryptError::Store(StoreError::Tampered(TamperedRow {
            table: "session", ..
        }))) => {}
        other => e.fail(format!(
            "encrypt to carol: expected Err(Store(Tampered(\"session\"))), got {:?}",
            other.map(|_| "a ciphertext")
        )),
    }
    let got = cipher::decrypt(&b, &bob(), &carol(), &later, &mut rng(10), NOW);
    e.refused("Carol's later message", &got);
    e.done();
}

// ---- 5. a message's expiry and acknowledgement -------------------------------------

/// Bob in `dir` after decrypting Alice's first message, which the store keeps (with
/// its plaintext until acknowledged); the message and its id.
fn bob_with_a_stored_message(
    dir: &Path,
) -> (SqliteStore, CiphertextMessage, confide::store::MessageId) {
    let (_a, b, _, first) = pair(dir);
    let got = cipher::decrypt(&b, &bob(), &alice(), &first, &mut rng(4), NOW).unwrap();
    assert_eq!(got.id, confide::store::MessageId::of(&first));
    assert!(
        b.message(&alice(), &got.id)
            .unwrap()
            .unwrap()
            .plaintext
            .is_some()
    );
    (b, first, got.id)
}

/// The app set Bob's stored message to disappear a second after [`NOW`]; the attacker
/// sets its plain `expires_at` column to `expires_at` (`NULL`: never) so the purge at
/// its time would keep it.
fn expiry_edited(expires_at: &str, e: &mut Expect) {
    let what = format!("[expires_at = {expires_at}]");
    let dir = tempfile::tempdir().unwrap();
    let (b, first, id) = bob_with_a_stored_message(dir.path());
    let at = Timestamp::from_millis(NOW.as_millis() + 1000);
    assert!(b.set_message_expiry(&alice(), &id, Some(at)).unwrap());
    drop(b);
    let x = Attacker::on(&file(dir.path(), "bob"));
    assert_eq!(x.count("message", "name = 'alice'"), 1);
    x.run(&format!(
        "UPDATE message SET expires_at = {expires_at} WHERE name = 'alice'"
    ));
    drop(x);

    let b = open(dir.path(), "bob", 2, 5);
    e.tampered(
        &format!("{what} b.message(alice, id)"),
        b.message(&alice(), &id),
        "message",
    );
    e.verify_fails(&format!("{what} b"), &b);
    // The purge at the expiry time (which may itself refuse the tampered row): after
    // it the plaintext must not come out of the store, neither read nor redelivered.
    let purged = b.purge_messages(at, Timestamp::from_millis(0));
    if let Ok(Some(m)) = b.message(&alice(), &id) {
        if m.plaintext.is_some() {
            e.fail(format!(
                "{what} after the purge at its expiry (which returned {purged:?}) \
                 the plaintext is still stored"
            ));
        }
    }
    let again = cipher::decrypt(&b, &bob(), &alice(), &first, &mut rng(6), NOW);
    e.refused(&format!("{what} a redelivery after the expiry"), &again);
}

/// Case 5: a message row's `expires_at` (a plain column) and its acknowledged state
/// are authenticated. The attacker clears the expiry the app set, or moves it far
/// into the future, so a disappearing message never disappears; or, with Bob's store
/// open, puts the sealed plaintext back after the app acknowledged the message (the
/// store dropped it), so it is readable and redelivered again.
#[test]
fn message_expiry_and_acknowledgement_are_authenticated() {
    let mut e = Expect::default();
    expiry_edited("NULL", &mut e);
    expiry_edited("9000000000000", &mut e);

    // Un-acknowledged.
    let dir = tempfile::tempdir().unwrap();
    let (b, first, id) = bob_with_a_stored_message(dir.path());
    let x = Attacker::on(&file(dir.path(), "bob"));
    x.save("unacknowledged", "message", "name = 'alice'");
    assert!(
        b.transactional()
            .unwrap()
            .acknowledge(&alice(), &id)
            .unwrap()
    );
    assert!(matches!(
        cipher::decrypt(&b, &bob(), &alice(), &first, &mut rng(5), NOW),
        Err(DecryptError::DuplicateMessage { .. })
    ));
    x.restore("unacknowledged", "message", "name = 'alice'");
    let what = "[acknowledged row put back]";
    e.tampered(
        &format!("{what} b.message(alice, id)"),
        b.message(&alice(), &id),
        "message",
    );
    e.verify_fails(&format!("{what} b"), &b);
    let again = cipher::decrypt(&b, &bob(), &alice(), &first, &mut rng(6), NOW);
    e.refused(&format!("{what} a redelivery after acknowledge"), &again);
    e.done();
}

// ---- 6. nonces -----------------------------------------------------------------------

/// Case 6: the attacker overwrites the nonce (first 12 bytes) of Bob's sealed session
/// with Carol by the nonce of his session with Alice (the nonce is also the row's
/// compare-and-swap version). GCM refuses the value under the other nonce, so this is
/// caught already; it must stay caught.
#[test]
fn hand_collided_nonce_is_refused() {
    let mut e = Expect::default();
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = bob_with_alice_and_carol(dir.path());
    drop(b);
    let x = Attacker::on(&file(dir.path(), "bob"));
    let alice_nonce = x.value("session", "name = 'alice'")[..12].to_vec();
    let mut carols = x.value("session", "name = 'carol'");
    assert_ne!(&carols[..12], &alice_nonce[..]);
    carols[..12].copy_from_slice(&alice_nonce);
    x.set_value("session", "name = 'carol'", &carols);
    drop(x);

    let b = open(dir.path(), "bob", 2, 9);
    e.tampered("b.session(carol)", b.session(&carol()), "session");
    e.verify_fails("b", &b);
    if let Ok(m) = cipher::encrypt(
        &b,
        &bob(),
        &carol(),
        b"to carol",
        &mut confide::SystemRng::new(),
        NOW,
    ) {
        e.fail(format!(
            "encrypt to carol on the collided row: expected Err, got Ok ({:?})",
            key_of(&m).1
        ));
    }
    e.done();
}

/// Case 6, the other half: no two sealed values share a nonce. One store is opened
/// three times with the same RNG seed (so only the open counter the database keeps
/// tells the opens apart) and writes 30 state values in each; the nonce of every value
/// written, read from the file after each write, is new.
#[test]
fn nonces_stay_distinct_across_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let mut seen = HashSet::new();
    for o in 0..3 {
        let s = open(dir.path(), "nonces", 5, 1);
        let x = Attacker::on(&file(dir.path(), "nonces"));
        for i in 0..30 {
            let k = format!("k{}", i % 7);
            s.save_state("nonce-test", &k, format!("open {o} write {i}").as_bytes())
                .unwrap();
            let v = x.value("state", &format!("kind = 'nonce-test' AND k = '{k}'"));
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

// ---- 7. the whole file put back to an older copy -----------------------------------

/// A counter kept outside the database, as a platform keystore would keep it.
#[derive(Default)]
struct Keystore(AtomicU64);

impl RollbackCounter for Keystore {
    fn get(&self) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
        Ok(self.0.load(Ordering::SeqCst))
    }

    fn advance(&self, seq: u64) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.0.fetch_max(seq, Ordering::SeqCst);
        Ok(())
    }
}

const TABLES: [&str; 11] = [
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

/// The attacker copies every table of the file (a consistent snapshot, as a backup
/// would be) and later puts all of them back at once: no row is older than its head.
fn snapshot(a: &Attacker) {
    for t in TABLES {
        a.run(&format!("CREATE TABLE x.{t} AS SELECT * FROM main.{t}"));
    }
}

fn put_back(a: &Attacker) {
    let mut sql = String::from("BEGIN IMMEDIATE;");
    for t in TABLES {
        sql.push_str(&format!(
            "DELETE FROM main.{t}; INSERT INTO main.{t} SELECT * FROM x.{t};"
        ));
    }
    sql.push_str("COMMIT;");
    a.run(&sql);
}

/// While Alice's store is open, the attacker puts her whole file back to a copy taken
/// two messages earlier: every row agrees with that older head, but the store has seen
/// a newer one, so the next encrypt (which would reuse the message key of "second")
/// fails as `RolledBack`.
#[test]
fn a_whole_file_rolled_back_under_an_open_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, _, first) = pair(dir.path());
    let mut r = rng(4);
    cipher::decrypt(&b, &bob(), &alice(), &first, &mut r, NOW).unwrap();
    let attacker = Attacker::on(&file(dir.path(), "alice"));
    snapshot(&attacker);
    for m in [&b"second"[..], b"third"] {
        let c =
            cipher::encrypt(&a, &alice(), &bob(), m, &mut confide::SystemRng::new(), NOW).unwrap();
        cipher::decrypt(&b, &bob(), &alice(), &c, &mut r, NOW).unwrap();
    }
    put_back(&attacker);
    assert!(matches!(
        cipher::encrypt(
            &a,
            &alice(),
            &bob(),
            b"reuses a key",
            &mut confide::SystemRng::new(),
            NOW
        ),
        Err(EncryptError::Store(StoreError::RolledBack { .. }))
    ));
    assert!(matches!(a.verify(), Err(StoreError::RolledBack { .. })));
}

/// Across a restart only the counter can tell: the older copy opens and verifies (it is
/// consistent), and attaching the counter that saw the newer head refuses it. Without
/// the edit, reopening and attaching succeeds.
#[test]
fn a_whole_file_rolled_back_across_a_restart_is_refused_by_the_counter() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), "alice");
    let keystore = Arc::new(Keystore::default());
    let (a, b, _, first) = pair(dir.path());
    a.attach_rollback_counter(keystore.clone()).unwrap();
    let mut r = rng(4);
    cipher::decrypt(&b, &bob(), &alice(), &first, &mut r, NOW).unwrap();
    drop(a);
    let old = dir.path().join("alice.old");
    std::fs::copy(&path, &old).unwrap();

    let a = open(dir.path(), "alice", 1, 6);
    a.attach_rollback_counter(keystore.clone()).unwrap();
    let c = cipher::encrypt(
        &a,
        &alice(),
        &bob(),
        b"second",
        &mut confide::SystemRng::new(),
        NOW,
    )
    .unwrap();
    cipher::decrypt(&b, &bob(), &alice(), &c, &mut r, NOW).unwrap();
    drop(a);
    let a = open(dir.path(), "alice", 1, 7);
    a.attach_rollback_counter(keystore.clone()).unwrap();
    drop(a);

    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    std::fs::copy(&old, &path).unwrap();
    let a = open(dir.path(), "alice", 1, 8);
    a.verify().unwrap();
    assert!(matches!(
        a.attach_rollback_counter(keystore.clone()),
        Err(StoreError::RolledBack { .. })
    ));
}

// ---- 8. rows the head has moved down into its leaves -------------------------------

/// The head keeps the latest changes itself and moves them into its leaves every 64
/// changes. After 100 messages (and their session steps) most records are in the
/// leaves: the same edits are caught there. The attacker keeps copies of the whole
/// `message` table and of the session row from before the app acknowledged message 10
/// and decrypted the last 50, then puts them back.
#[test]
fn rows_recorded_in_the_leaves_are_checked_too() {
    let mut e = Expect::default();
    let dir = tempfile::tempdir().unwrap();
    let (a, b, _, first) = pair(dir.path());
    let mut r = rng(4);
    let mut ids = vec![
        cipher::decrypt(&b, &bob(), &alice(), &first, &mut r, NOW)
            .unwrap()
            .id,
    ];
    for i in 0..50u32 {
        let m = cipher::encrypt(
            &a,
            &alice(),
            &bob(),
            &i.to_be_bytes(),
            &mut confide::SystemRng::new(),
            NOW,
        )
        .unwrap();
        ids.push(
            cipher::decrypt(&b, &bob(), &alice(), &m, &mut r, NOW)
                .unwrap()
                .id,
        );
    }
    let x = Attacker::on(&file(dir.path(), "bob"));
    x.run("CREATE TABLE x.messages AS SELECT * FROM main.message");
    x.save("session", "session", "name = 'alice'");
    let txn = b.transactional().unwrap();
    assert!(txn.acknowledge(&alice(), &ids[10]).unwrap());
    for i in 50..100u32 {
        let m = cipher::encrypt(
            &a,
            &alice(),
            &bob(),
            &i.to_be_bytes(),
            &mut confide::SystemRng::new(),
            NOW,
        )
        .unwrap();
        ids.push(
            cipher::decrypt(&b, &bob(), &alice(), &m, &mut r, NOW)
                .unwrap()
                .id,
        );
    }
    assert_eq!(b.verify().unwrap().messages, 101);
    let later = cipher::encrypt(
        &a,
        &alice(),
        &bob(),
        b"later",
        &mut confide::SystemRng::new(),
        NOW,
    )
    .unwrap();

    x.run(
        "BEGIN IMMEDIATE;
         DELETE FROM main.message WHERE id IN (SELECT id FROM x.messages);
         INSERT INTO main.message SELECT * FROM x.messages;
         COMMIT;",
    );
    e.tampered(
        "b.message(alice, #10)",
        b.message(&alice(), &ids[10]),
        "message",
    );
    e.verify_fails("b (message 10 un-acknowledged)", &b);
    // The untouched messages still read.
    assert!(b.message(&alice(), &ids[60]).unwrap().is_some());

    x.restore("session", "session", "name = 'alice'");
    e.tampered("b.session(alice)", b.session(&alice()), "session");
    let got = cipher::decrypt(&b, &bob(), &alice(), &later, &mut r, NOW);
    e.refused("decrypt on the rolled-back session", &got);
    e.done();
}

// ---- 9. the Kyber prekey rows (protocol v4) ------------------------------------------

/// Case 9: the Kyber prekey rows are checked as the one-time prekey rows are, whether
/// their records are in the integrity head or its leaves: a recorded use of a
/// last-resort key deleted (so a replayed handshake would pass as new) or moved to
/// another key, keys deleted, a used one-time key put back, a key and its uses rolled
/// back, two keys' sealed values swapped: each read of an affected row fails as
/// tampered, a replayed handshake is not committed, and `verify` fails
/// ([`attacker::kyber_attack`]).
#[test]
fn kyber_pre_key_rows_are_checked_like_prekeys() {
    let mut e = Expect::default();
    for settled in [false, true] {
        for attack in KyberAttack::ALL {
            let dir = tempfile::tempdir().unwrap();
            let s = open(dir.path(), "bob", 2, 2);
            let mut x = Attacker::on(&file(dir.path(), "bob"));
            attacker::kyber_attack(attack, settled, &s, &mut x, &mut e);
        }
    }
    e.done();
}
