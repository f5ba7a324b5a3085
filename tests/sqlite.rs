//! SqliteStore: persistence, sealing, redelivery, schema fixtures, concurrency, and the
//! Kyber prekeys of protocol v4 (their contract, their uses in session commits).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/stores.rs"]
mod stores;

use std::path::{Path, PathBuf};

use confide::group::{DistributionId, Layout, SenderKeyMessage, SenderKeyRecord};
use confide::session::Versions;
use confide::session::cipher::{self, BundleSpec};
use confide::store::{
    CommitOutcome, DurableStore, GroupCommit, IdentityStore, InMemoryStore, KyberPreKeyUse,
    MessageId, NewMessage, OpenError, PreKeyStore, RowVersion, SCHEMA_VERSION, SenderKeyStore,
    SqliteStore, StateStore, StoreKey, TamperedRow,
};
use confide::{CiphertextMessage, StoreError};
use rand_chacha::ChaCha20Rng;

use stores::{NOW, alice, bob, key, rng};

/// Opens a store at `path` and gives it an identity if it has none.
fn open(path: &Path, k: &StoreKey, seed: u64) -> SqliteStore {
    let mut r = rng(seed);
    let store = SqliteStore::open(path, k, &mut r).unwrap();
    if !store.has_local_identity().unwrap() {
        let id = confide::IdentityKeyPair::generate(&mut r);
        store.set_local_identity(&id, 1000 + seed as u32).unwrap();
    }
    store
}

/// Alice and Bob with a session, Bob's first message not yet decrypted.
fn pair(dir: &Path) -> (SqliteStore, SqliteStore, CiphertextMessage) {
    let a = open(&dir.join("alice.db"), &key(1), 1);
    let b = open(&dir.join("bob.db"), &key(2), 2);
    let first = handshake(&a, &b, b"first");
    (a, b, first)
}

/// Alice's store `a` starts a session from a bundle of Bob's store `b` (any stores,
/// wrapped or not) and encrypts `first` to Bob.
fn handshake<A, B>(a: &A, b: &B, first: &[u8]) -> CiphertextMessage
where
    A: confide::store::ProtocolStore + ?Sized,
    B: confide::store::ProtocolStore + ?Sized,
{
    let mut r = rng(3);
    let spec = BundleSpec::new(1, 7).with_pre_key(Some(42));
    let bundle = cipher::publish_bundle(b, &mut r, &spec, NOW).unwrap();
    cipher::start_session(a, &bob(), &bundle, Versions::V3AndV4, &mut r, NOW).unwrap();
    cipher::encrypt(
        a,
        &alice(),
        &bob(),
        first,
        &mut confide::SystemRng::new(),
        NOW,
    )
    .unwrap()
}

#[test]
fn sessions_survive_reopen_and_prekey_is_consumed_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, first) = pair(dir.path());
    let mut r = rng(4);
    assert!(b.pre_key(42).unwrap().is_some());
    let got = cipher::decrypt(&b, &bob(), &alice(), &first, &mut r, NOW).unwrap();
    assert_eq!(got.plaintext.as_slice(), b"first");
    assert!(!got.redelivered);
    assert!(
        b.pre_key(42).unwrap().is_none(),
        "prekey consumed in the commit"
    );
    assert!(b.identity(&alice()).unwrap().is_some());
    drop((a, b));

    let a = open(&dir.path().join("alice.db"), &key(1), 5);
    let b = open(&dir.path().join("bob.db"), &key(2), 6);
    let reply = cipher::encrypt(
        &b,
        &bob(),
        &alice(),
        b"reply",
        &mut confide::SystemRng::new(),
        NOW,
    )
    .unwrap();
    assert_eq!(
        cipher::decrypt(&a, &alice(), &bob(), &reply, &mut r, NOW)
            .unwrap()
            .plaintext
            .as_slice(),
        b"reply"
    );
    for i in 0..20u32 {
        let m = cipher::encrypt(
            &a,
            &alice(),
            &bob(),
            &i.to_be_bytes(),
            &mut confide::SystemRng::new(),
            NOW,
        )
        .unwrap();
        let p = cipher::decrypt(&b, &bob(), &alice(), &m, &mut r, NOW).unwrap();
        assert_eq!(p.plaintext.as_slice(), i.to_be_bytes());
    }
    let s = b.verify().unwrap();
    assert_eq!(s.sessions, 1);
    assert_eq!(s.identities, 1);
    assert_eq!(s.messages, 21);
    assert_eq!(s.unacknowledged, 21);
}

/// [`stores::redelivery_until_acknowledged`] on two database files.
#[test]
fn redelivery_returns_stored_plaintext_without_a_ratchet_step() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, first) = pair(dir.path());
    stores::redelivery_until_acknowledged(&a, &b, &first);
}

#[test]
fn expiry_purges_messages() {
    let dir = tempfile::tempdir().unwrap();
    let (_a, b, first) = pair(dir.path());
    stores::expiry_purges(&b, &first, &mut rng(8));
}

#[test]
fn wrong_key_and_newer_schema_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    drop(open(&path, &key(1), 1));
    assert!(matches!(
        SqliteStore::open(&path, &key(9), &mut rng(1)),
        Err(OpenError::WrongKey)
    ));
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(conn);
    match SqliteStore::open(&path, &key(1), &mut rng(1)) {
        Err(OpenError::NewerSchema { found, supported }) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
}

#[test]
fn swapped_rows_fail_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let s = open(&path, &key(1), 1);
    let mut r = rng(2);
    for id in [1u32, 2] {
        s.save_pre_key(&confide::keys::PreKeyRecord::generate(&mut r, id))
            .unwrap();
    }
    s.save_identity(
        &alice(),
        &confide::IdentityKeyPair::generate(&mut r)
            .identity_key()
            .clone(),
    )
    .unwrap();
    s.save_identity(
        &bob(),
        &confide::IdentityKeyPair::generate(&mut r)
            .identity_key()
            .clone(),
    )
    .unwrap();
    // Two sender-key rows of one sender (two groups) and one of another sender.
    let (g1, g2) = (
        DistributionId::from_bytes([1; 16]),
        DistributionId::from_bytes([2; 16]),
    );
    for (who, g) in [(alice(), g1), (alice(), g2), (bob(), g1)] {
        let mut rec = SenderKeyRecord::new(g, Layout::Current);
        rec.distribution(&mut r);
        s.save_sender_key(&who, g, &rec).unwrap();
    }
    drop(s);
    let conn = rusqlite::Connection::open(&path).unwrap();
    // Move prekey 1's sealed value into row 2, alice's identity onto bob's row, alice's
    // group-1 sender key into her group-2 row, and bob's into alice's group-1 row.
    conn.execute_batch(
        "UPDATE pre_key SET v = (SELECT v FROM pre_key WHERE id = 1) WHERE id = 2;
         UPDATE identity SET v = (SELECT v FROM identity WHERE name = 'alice') WHERE name = 'bob';
         UPDATE sender_key SET v = (SELECT v FROM sender_key WHERE name = 'alice'
             AND distribution = x'01010101010101010101010101010101')
             WHERE name = 'alice' AND distribution = x'02020202020202020202020202020202';
         UPDATE sender_key SET v = (SELECT v FROM sender_key WHERE name = 'bob')
             WHERE name = 'alice' AND distribution = x'01010101010101010101010101010101';",
    )
    .unwrap();
    drop(conn);
    let s = open(&path, &key(1), 3);
    assert!(s.pre_key(1).unwrap().is_some());
    let tampered = |e: StoreError| match e {
        StoreError::Tampered(TamperedRow { table, .. }) => Some(table),
        _ => None,
    };
    assert_eq!(tampered(s.pre_key(2).unwrap_err()), Some("pre_key"));
    assert_eq!(tampered(s.identity(&bob()).unwrap_err()), Some("identity"));
    assert!(s.sender_key(&bob(), g1).unwrap().is_some());
    assert_eq!(
        tampered(s.sender_key(&alice(), g1).unwrap_err()),
        Some("sender_key")
    );
    assert_eq!(
        tampered(s.sender_key(&alice(), g2).unwrap_err()),
        Some("sender_key")
    );
    assert!(s.verify().is_err());
}

#[test]
fn sender_keys_survive_reopen_and_stay_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let g = DistributionId::from_bytes([7; 16]);
    let mut r = rng(4);
    let mut own = SenderKeyRecord::new(g, Layout::Current);
    let skdm = own.distribution(&mut r);
    let mut theirs = SenderKeyRecord::new(g, Layout::Current);
    theirs.process(&skdm).unwrap();
    let first = own.encrypt(b"group secret one", &mut r).unwrap();
    {
        let s = open(&path, &key(1), 1);
        assert!(s.sender_key(&alice(), g).unwrap().is_none());
        s.save_sender_key(&alice(), g, &own).unwrap();
        s.save_sender_key(&bob(), g, &theirs).unwrap();
        assert_eq!(s.verify().unwrap().sender_keys, 2);
    }
    let s = open(&path, &key(1), 2);
    let mut own = s.sender_key(&alice(), g).unwrap().unwrap();
    assert!(own.can_send());
    let mut theirs = s.sender_key(&bob(), g).unwrap().unwrap();
    assert!(!theirs.can_send());
    // The reloaded sending chain continues where it was: the next message is new.
    let second = own.encrypt(b"group secret two", &mut r).unwrap();
    assert_eq!(second.iteration(), first.iteration() + 1);
    assert_eq!(
        theirs.decrypt(&second).unwrap().as_slice(),
        b"group secret two"
    );
    assert_eq!(
        theirs.decrypt(&first).unwrap().as_slice(),
        b"group secret one"
    );
    s.save_sender_key(&bob(), g, &theirs).unwrap();
    // Another distribution of the same sender is another row.
    assert!(
        s.sender_key(&alice(), DistributionId::from_bytes([8; 16]))
            .unwrap()
            .is_none()
    );
    drop(s);
    // No chain key or plaintext in the file.
    let mut all = Vec::new();
    for f in std::fs::read_dir(dir.path()).unwrap() {
        all.extend(std::fs::read(f.unwrap().path()).unwrap());
    }
    let has = |needle: &[u8]| all.windows(needle.len()).any(|w| w == needle);
    // The chain key is field 4 (32 bytes) of the distribution message's protobuf.
    let wire = skdm.serialized();
    let at = wire.windows(2).position(|w| w == [0x22, 0x20]).unwrap() + 2;
    assert!(!has(&wire[at..at + 32]));
    assert!(!has(b"group secret"));
    assert!(!has(&skdm.signing_key().serialize()));
}

#[test]
fn group_commit_is_compare_and_swap_and_keeps_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    let g = DistributionId::from_bytes([7; 16]);
    let mut r = rng(5);
    let mut own = SenderKeyRecord::new(g, Layout::Current);
    let skdm = own.distribution(&mut r);
    let first = own.encrypt(b"group secret one", &mut r).unwrap();
    let second = own.encrypt(b"group secret two", &mut r).unwrap();
    let s = open(&path, &key(1), 1);
    let txn = s.transactional_group().unwrap();
    let a = alice();
    let (none, absent) = txn.load_sender_key(&alice(), g).unwrap();
    assert!(none.is_none());
    assert_eq!(absent, RowVersion::ABSENT);
    let mut theirs = SenderKeyRecord::new(g, Layout::Current);
    theirs.process(&skdm).unwrap();
    let commit = GroupCommit::record(&a, g, absent, &theirs);
    assert_eq!(txn.commit_group(&commit).unwrap(), CommitOutcome::Committed);
    // A second writer that also started from "no row" loses.
    assert_eq!(txn.commit_group(&commit).unwrap(), CommitOutcome::Conflict);

    let (loaded, v1) = txn.load_sender_key(&alice(), g).unwrap();
    let mut after_first = loaded.unwrap();
    let pt = after_first.decrypt(&first).unwrap();
    let id1 = MessageId::of_group(g, &first);
    let commit =
        GroupCommit::record(&a, g, v1, &after_first).with_message(NewMessage::new(id1, &pt, NOW));
    assert_eq!(txn.commit_group(&commit).unwrap(), CommitOutcome::Committed);
    let (_, v2) = txn.load_sender_key(&alice(), g).unwrap();
    assert_ne!(v2, v1);
    let stored = txn.group_delivered(&alice(), &id1).unwrap().unwrap();
    assert_eq!(stored.plaintext.unwrap().as_slice(), b"group secret one");
    // The group id is not a 1:1 id of the same sender, nor another sender's.
    assert!(txn.group_delivered(&bob(), &id1).unwrap().is_none());
    assert_eq!(s.message(&alice(), &id1).unwrap().unwrap().received_at, NOW);

    // A stale version (another decrypt committed since): nothing is written, not even
    // the message.
    let mut stale = after_first.clone();
    let pt2 = stale.decrypt(&second).unwrap();
    let id2 = MessageId::of_group(g, &second);
    let commit =
        GroupCommit::record(&a, g, v1, &stale).with_message(NewMessage::new(id2, &pt2, NOW));
    assert_eq!(txn.commit_group(&commit).unwrap(), CommitOutcome::Conflict);
    assert!(txn.group_delivered(&alice(), &id2).unwrap().is_none());
    assert_eq!(txn.load_sender_key(&alice(), g).unwrap().1, v2);
    // The current version but a message already stored: nothing is written either.
    let commit =
        GroupCommit::record(&a, g, v2, &stale).with_message(NewMessage::new(id1, &pt2, NOW));
    assert_eq!(txn.commit_group(&commit).unwrap(), CommitOutcome::Conflict);
    assert_eq!(txn.load_sender_key(&alice(), g).unwrap().1, v2);
    let commit =
        GroupCommit::record(&a, g, v2, &stale).with_message(NewMessage::new(id2, &pt2, NOW));
    assert_eq!(txn.commit_group(&commit).unwrap(), CommitOutcome::Committed);
    let summary = s.verify().unwrap();
    assert_eq!((summary.messages, summary.sender_keys), (2, 1));
    drop(s);

    // Sealed like every other row: no group plaintext in the file.
    let mut all = Vec::new();
    for f in std::fs::read_dir(dir.path()).unwrap() {
        all.extend(std::fs::read(f.unwrap().path()).unwrap());
    }
    assert!(!all.windows(12).any(|w| w == b"group secret"));
}

/// [`stores::state_commit_is_compare_and_swap`] on a database file; what it committed
/// survives a reopen and verifies; two connections to one file commit concurrently
/// without losing an update.
#[test]
fn state_commit_is_compare_and_swap() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let s = open(&path, &key(1), 1);
    stores::state_commit_is_compare_and_swap(&s);
    drop(s);
    let s = open(&path, &key(1), 2);
    assert_eq!(
        s.state("ledger", "").unwrap().unwrap().as_slice(),
        b"ledger 3"
    );
    assert_eq!(s.state("tracker", "biz").unwrap().unwrap().as_slice(), b"t");
    assert_eq!(s.verify().unwrap().states, 2);
    let other = open(&path, &key(1), 3);
    stores::concurrent_state_commits_lose_nothing(&[&s, &other], 40);
}

/// The same for [`InMemoryStore`], which is its own state store.
#[test]
fn in_memory_state_commit_is_compare_and_swap() {
    let s = InMemoryStore::generate(&mut rng(1));
    assert!(s.state_store().is_some());
    stores::state_commit_is_compare_and_swap(&s);
    stores::concurrent_state_commits_lose_nothing(&[&s, &s, &s], 200);
}

#[test]
fn store_key_debug_is_redacted() {
    assert_eq!(format!("{:?}", key(7)), "StoreKey(<redacted>)");
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir.path().join("s.db"), &key(7), 1);
    assert_eq!(format!("{s:?}"), "SqliteStore { .. }");
    assert!(StoreKey::try_from(&[0u8; 31][..]).is_err());
}

#[test]
fn the_file_holds_no_plaintext_or_key_material() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, first) = pair(dir.path());
    let mut r = rng(9);
    let secret = b"attack at dawn, bring the plans";
    cipher::decrypt(&b, &bob(), &alice(), &first, &mut r, NOW).unwrap();
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
    drop((a, b));
    let mut all = Vec::new();
    for f in std::fs::read_dir(dir.path()).unwrap() {
        all.extend(std::fs::read(f.unwrap().path()).unwrap());
    }
    let has = |needle: &[u8]| all.windows(needle.len()).any(|w| w == needle);
    assert!(!has(secret));
    assert!(!has(b"first"));
    assert!(!has(private.as_ref()));
    assert!(!has(&public));
    assert!(!has(m.serialized()));
}

// ---- schema fixtures -------------------------------------------------------------

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sqlite")
}

const FIXTURE_KEY: [u8; 32] = [0x5a; 32];

/// Writes `tests/fixtures/sqlite/v{SCHEMA_VERSION}/`: Alice's and Bob's stores after
/// one delivered and one pending message, and the pending ciphertext. Run with
/// `cargo test --test sqlite -- --ignored write_fixture` when the schema changes, and
/// keep the old versions' directories.
#[test]
#[ignore = "writes the fixture for the current schema version"]
fn write_fixture() {
    let out = fixture_dir().join(format!("v{SCHEMA_VERSION}"));
    std::fs::create_dir_all(&out).unwrap();
    for f in ["alice.db", "bob.db"] {
        let _ = std::fs::remove_file(out.join(f));
    }
    let k = StoreKey::from_bytes(FIXTURE_KEY);
    let a = open(&out.join("alice.db"), &k, 11);
    let b = open(&out.join("bob.db"), &k, 12);
    let mut r = rng(13);
    let spec = BundleSpec::new(1, 1).with_pre_key(Some(1));
    let bundle = cipher::publish_bundle(&b, &mut r, &spec, NOW).unwrap();
    cipher::publish_bundle(
        &b,
        &mut r,
        &BundleSpec::new(spec.device_id, 2).with_pre_key(Some(2)),
        NOW,
    )
    .unwrap();
    cipher::start_session(&a, &bob(), &bundle, Versions::V3AndV4, &mut r, NOW).unwrap();
    let delivered = cipher::encrypt(
        &a,
        &alice(),
        &bob(),
        b"delivered before the upgrade",
        &mut confide::SystemRng::new(),
        NOW,
    )
    .unwrap();
    cipher::decrypt(&b, &bob(), &alice(), &delivered, &mut r, NOW).unwrap();
    let pending = cipher::encrypt(
        &a,
        &alice(),
        &bob(),
        b"pending across the upgrade",
        &mut confide::SystemRng::new(),
        NOW,
    )
    .unwrap();
    // Since v2: Alice's sending chain in a group, known to Bob, with one group message
    // delivered and one pending.
    let g = DistributionId::from_bytes(FIXTURE_GROUP);
    let mut own = SenderKeyRecord::new(g, Layout::Current);
    let skdm = own.distribution(&mut r);
    let mut theirs = SenderKeyRecord::new(g, Layout::Current);
    theirs.process(&skdm).unwrap();
    let g_delivered = own
        .encrypt(b"group message before the upgrade", &mut r)
        .unwrap();
    theirs.decrypt(&g_delivered).unwrap();
    let g_pending = own
        .encrypt(b"group message across the upgrade", &mut r)
        .unwrap();
    a.save_sender_key(&alice(), g, &own).unwrap();
    b.save_sender_key(&alice(), g, &theirs).unwrap();
    // Since v4: Bob's Kyber prekeys (opaque records): one-time 1, used and so gone,
    // one-time 2, and last-resort 3 with one recorded use.
    let kyber = b.kyber_pre_keys().unwrap();
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
    assert!(
        kyber
            .mark_kyber_pre_key_used(&KyberPreKeyUse::new(1, 1, base))
            .unwrap()
    );
    assert!(
        kyber
            .mark_kyber_pre_key_used(&KyberPreKeyUse::new(3, 1, base))
            .unwrap()
    );
    drop((a, b));
    std::fs::write(out.join("kyber.txt"), hex::encode(base.serialize()) + "\n").unwrap();
    let hexs =
        |m: &CiphertextMessage| format!("{}:{}\n", m.message_type(), hex::encode(m.serialized()));
    std::fs::write(out.join("messages.txt"), hexs(&delivered) + &hexs(&pending)).unwrap();
    std::fs::write(
        out.join("group.txt"),
        format!(
            "{}\n{}\n",
            hex::encode(g_delivered.serialized()),
            hex::encode(g_pending.serialized())
        ),
    )
    .unwrap();
}

/// The distribution id of the fixture's group (schema v2 and later).
const FIXTURE_GROUP: [u8; 16] = [0x6b; 16];

#[test]
fn every_fixture_version_still_opens() {
    let mut seen = 0;
    for entry in std::fs::read_dir(fixture_dir()).unwrap() {
        let src = entry.unwrap().path();
        if !src.is_dir() {
            continue;
        }
        seen += 1;
        let dir = tempfile::tempdir().unwrap();
        for f in ["alice.db", "bob.db"] {
            std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
        }
        let msgs: Vec<CiphertextMessage> = std::fs::read_to_string(src.join("messages.txt"))
            .unwrap()
            .lines()
            .map(|l| {
                let (t, h) = l.split_once(':').unwrap();
                CiphertextMessage::from_parts(t.parse().unwrap(), &hex::decode(h).unwrap()).unwrap()
            })
            .collect();
        // Each fixture really is of the version its directory names, so opening it
        // runs the migrations from there.
        let named: u32 = src.file_name().unwrap().to_str().unwrap()[1..]
            .parse()
            .unwrap();
        for f in ["alice.db", "bob.db"] {
            let conn = rusqlite::Connection::open(dir.path().join(f)).unwrap();
            let v: u32 = conn
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap();
            assert_eq!(v, named, "{f} in {}", src.display());
        }
        let k = StoreKey::from_bytes(FIXTURE_KEY);
        let a = SqliteStore::open(dir.path().join("alice.db"), &k, &mut rng(1)).unwrap();
        let b = SqliteStore::open(dir.path().join("bob.db"), &k, &mut rng(2)).unwrap();
        for f in ["alice.db", "bob.db"] {
            let conn = rusqlite::Connection::open(dir.path().join(f)).unwrap();
            let v: u32 = conn
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap();
            assert_eq!(v, SCHEMA_VERSION, "{f} in {} after the open", src.display());
        }
        a.verify().unwrap();
        b.verify().unwrap();
        let mut r = rng(3);
        // The delivered message is a redelivery from the store; the pending one decrypts.
        let d = cipher::decrypt(&b, &bob(), &alice(), &msgs[0], &mut r, NOW).unwrap();
        assert!(d.redelivered, "{}", src.display());
        assert_eq!(d.plaintext.as_slice(), b"delivered before the upgrade");
        let p = cipher::decrypt(&b, &bob(), &alice(), &msgs[1], &mut r, NOW).unwrap();
        assert!(!p.redelivered);
        assert_eq!(p.plaintext.as_slice(), b"pending across the upgrade");
        assert!(b.pre_key(2).unwrap().is_some());
        assert!(b.pre_key(1).unwrap().is_none());
        // Both directions still work.
        let m = cipher::encrypt(
            &b,
            &bob(),
            &alice(),
            b"after",
            &mut confide::SystemRng::new(),
            NOW,
        )
        .unwrap();
        assert_eq!(
            cipher::decrypt(&a, &alice(), &bob(), &m, &mut r, NOW)
                .unwrap()
                .plaintext
                .as_slice(),
            b"after"
        );
        check_fixture_kyber(&b, &src);
        // Sender keys: none before v2 (the migration adds an empty table); from v2 on,
        // the delivered group message stays refused and the pending one decrypts.
        let g = DistributionId::from_bytes(FIXTURE_GROUP);
        let group = std::fs::read_to_string(src.join("group.txt")).ok();
        let Some(group) = group else {
            assert_eq!(b.verify().unwrap().sender_keys, 0);
            assert!(b.sender_key(&alice(), g).unwrap().is_none());
            continue;
        };
        assert_eq!(b.verify().unwrap().sender_keys, 1);
        let gm: Vec<SenderKeyMessage> = group
            .lines()
            .map(|l| SenderKeyMessage::parse(&hex::decode(l).unwrap(), Layout::Current).unwrap())
            .collect();
        let mut theirs = b.sender_key(&alice(), g).unwrap().unwrap();
        assert!(theirs.decrypt(&gm[0]).is_err());
        assert_eq!(
            theirs.decrypt(&gm[1]).unwrap().as_slice(),
            b"group message across the upgrade"
        );
        let mut own = a.sender_key(&alice(), g).unwrap().unwrap();
        let next = own.encrypt(b"group after", &mut r).unwrap();
        assert_eq!(next.iteration(), gm[1].iteration() + 1);
        assert_eq!(theirs.decrypt(&next).unwrap().as_slice(), b"group after");
    }
    assert!(seen >= 1, "no fixture found");
}

/// The Kyber prekeys of Bob's fixture store `b` from `src`: none before v4 (the
/// migration adds empty tables); from v4 on, the used one-time key stays gone, the other
/// one-time key and the last-resort key load, and the recorded use stays refused.
/// Either way the store keeps new Kyber prekeys and their uses from now on.
fn check_fixture_kyber(b: &SqliteStore, src: &Path) {
    use confide::keys::PublicKey;
    use confide::store::KyberPreKeyStore;

    let read = |id: u32| b.kyber_pre_key(id).unwrap().map(|r| r.to_vec());
    let summary = b.verify().unwrap();
    match std::fs::read_to_string(src.join("kyber.txt")) {
        Err(_) => {
            assert_eq!(summary.kyber_pre_keys, 0, "{}", src.display());
            assert!(read(3).is_none());
        }
        Ok(text) => {
            let base = PublicKey::try_from(&hex::decode(text.trim()).unwrap()[..]).unwrap();
            assert_eq!(
                (summary.kyber_pre_keys, summary.kyber_pre_key_uses),
                (2, 1),
                "{}",
                src.display()
            );
            assert!(read(1).is_none());
            assert_eq!(read(2).unwrap(), b"kyber one-time 2");
            assert_eq!(read(3).unwrap(), b"kyber last resort 3");
            let used = KyberPreKeyUse::new(3, 1, base);
            assert!(b.kyber_pre_key_used(&used).unwrap());
            assert!(!b.mark_kyber_pre_key_used(&used).unwrap());
            assert!(
                b.mark_kyber_pre_key_used(&KyberPreKeyUse::new(2, 1, base))
                    .unwrap()
            );
            assert!(read(2).is_none());
        }
    }
    b.save_kyber_pre_key(9, b"after the upgrade", true).unwrap();
    let fresh = KyberPreKeyUse::new(9, 1, stores::base_key(9));
    assert!(b.mark_kyber_pre_key_used(&fresh).unwrap());
    assert!(!b.mark_kyber_pre_key_used(&fresh).unwrap());
    assert_eq!(read(9).unwrap(), b"after the upgrade");
    b.verify().unwrap();
}

// ---- concurrency -----------------------------------------------------------------

#[test]
fn store_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<SqliteStore>();
    check::<confide::device::Device<SqliteStore, ChaCha20Rng, confide::device::FixedClock>>();
}

/// [`stores::concurrent_threads_to_different_and_same_peers`], each device on its own
/// database file.
#[test]
fn concurrent_threads_to_different_and_same_peers() {
    let dir = tempfile::tempdir().unwrap();
    let k = key(3);
    stores::concurrent_threads_to_different_and_same_peers(60, |name, seed| {
        open(&dir.path().join(format!("{name}.db")), &k, seed)
    });
}

// ---- the durable-store contract, through wrappers ----------------------------------

/// `bootstrap_identity` makes an identity once: the second call and a second handle on
/// the file keep it, and it survives a reopen.
#[test]
fn bootstrap_identity_makes_one_identity_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("boot.db");
    let s = SqliteStore::open(&path, &key(1), &mut rng(1)).unwrap();
    let other = SqliteStore::open(&path, &key(1), &mut rng(2)).unwrap();
    assert!(!s.has_local_identity().unwrap());
    assert!(matches!(
        s.local_identity(),
        Err(StoreError::NoLocalIdentity)
    ));
    assert!(s.bootstrap_identity(&mut rng(3)).unwrap());
    let made = s.local_identity().unwrap();
    assert!(!s.bootstrap_identity(&mut rng(4)).unwrap());
    // The other handle cached "none" at open: it finds the identity instead of making one.
    assert!(!other.bootstrap_identity(&mut rng(5)).unwrap());
    assert_eq!(
        other.local_identity().unwrap().identity_key(),
        made.identity_key()
    );
    drop((s, other));
    let s = SqliteStore::open(&path, &key(1), &mut rng(6)).unwrap();
    assert_eq!(
        s.local_identity().unwrap().identity_key(),
        made.identity_key()
    );
    assert!(s.verify().is_ok());
}

/// Every store trait works through `Arc<T>`, `Box<T>` and `&T`, and as
/// `Box<dyn ProtocolStore>`: the defaulted accessors (`transactional`,
/// `transactional_group`, `state_store`) are forwarded, not reset to `None`, so a
/// wrapped persistent store keeps its atomic commits.
#[test]
fn stores_work_through_arc_box_and_references() {
    use std::sync::Arc;

    use confide::store::{ProtocolStore, SessionStore};

    let dir = tempfile::tempdir().unwrap();
    let a = Arc::new(open(&dir.path().join("a.db"), &key(1), 1));
    let b: Box<dyn ProtocolStore> = Box::new(open(&dir.path().join("b.db"), &key(2), 2));
    assert!(a.transactional().is_some());
    assert!(a.transactional_group().is_some());
    assert!(a.state_store().is_some());
    assert!(b.transactional().is_some() && b.state_store().is_some());
    // `&&dyn ProtocolStore` goes through the `&T` impl.
    let by_ref: &dyn ProtocolStore = &*b;
    assert!(SenderKeyStore::transactional_group(&&by_ref).is_some());
    assert!(a.kyber_pre_keys().is_some() && b.kyber_pre_keys().is_some());

    let m = handshake(&a, &b, b"through wrappers");
    let mut r = rng(4);
    let d = cipher::decrypt(&*b, &bob(), &alice(), &m, &mut r, NOW).unwrap();
    assert_eq!(d.plaintext.as_slice(), b"through wrappers");
    // The commit went through the transactional store: the message is kept until
    // acknowledged, and the durable contract reaches it through the Arc.
    let id = MessageId::of(&m);
    let durable: &dyn DurableStore = &a;
    assert!(durable.message(&bob(), &id).unwrap().is_none());
    assert_eq!(a.verify().unwrap().sessions, 1);

    // A Device over Arc<SqliteStore> (and so over a store the app keeps a handle to).
    let device = confide::device::Device::new(
        Arc::clone(&a),
        alice(),
        rng(4),
        confide::device::FixedClock::new(NOW),
    );
    let m2 = device.encrypt_raw(&bob(), b"device over an Arc").unwrap();
    let d2 = cipher::decrypt(&*b, &bob(), &alice(), &m2, &mut r, NOW).unwrap();
    assert_eq!(d2.plaintext.as_slice(), b"device over an Arc");
}

/// A database failure is `OpenError::Backend` / `StoreError::Backend` around an opaque
/// `BackendError`: it describes the failure, but the backend crate's error type is not
/// reachable (not even by downcasting the source chain's first link).
#[test]
fn backend_errors_are_opaque() {
    let dir = tempfile::tempdir().unwrap();
    // A directory is not a database file.
    let err = SqliteStore::open(dir.path(), &key(1), &mut rng(1)).unwrap_err();
    let OpenError::Backend(inner) = &err else {
        panic!("expected a backend error, got {err:?}");
    };
    assert!(!inner.to_string().is_empty());
    let source = std::error::Error::source(&err).unwrap();
    assert!(source.is::<confide::store::BackendError>());
    assert!(!source.is::<rusqlite::Error>());
    // An app's own store reports its failures the same way.
    let e = StoreError::backend("disk full");
    assert!(matches!(&e, StoreError::Backend(b) if b.to_string() == "disk full"));
}

/// The Kyber prekey extension point: `InMemoryStore` and `SqliteStore` (directly and
/// through wrappers) keep the same contract ([`stores::kyber_pre_keys_contract`]), and
/// what the database file keeps survives a reopen, verifies and shows no record.
#[test]
fn kyber_pre_keys_extension_point() {
    use std::sync::Arc;

    use confide::store::{KyberPreKeyStore, ProtocolStore};

    let s = Arc::new(InMemoryStore::generate(&mut rng(1)));
    stores::kyber_pre_keys_contract(s.kyber_pre_keys().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let durable = Arc::new(open(&path, &key(1), 1));
    stores::kyber_pre_keys_contract(durable.kyber_pre_keys().unwrap());
    let wrapped: Box<dyn ProtocolStore> = Box::new(open(&dir.path().join("w.db"), &key(1), 2));
    stores::kyber_pre_keys_contract(wrapped.kyber_pre_keys().unwrap());
    drop((durable, wrapped));

    let s = open(&path, &key(1), 3);
    let summary = s.verify().unwrap();
    assert_eq!((summary.kyber_pre_keys, summary.kyber_pre_key_uses), (2, 1));
    assert_eq!(
        s.kyber_pre_key(2).unwrap().unwrap().as_slice(),
        b"new last-resort record"
    );
    let replay = KyberPreKeyUse::new(2, 7, stores::base_key(1));
    assert!(s.kyber_pre_key_used(&replay).unwrap());
    assert!(!s.mark_kyber_pre_key_used(&replay).unwrap());
    assert!(s.kyber_pre_key(1).unwrap().is_none());
    drop(s);
    let bytes = std::fs::read(&path).unwrap();
    let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(!has(b"last-resort record"));
    assert!(!has(stores::base_key(1).x25519_bytes()));
}

/// [`stores::kyber_use_commits`] on a database file, and the same after a reopen: the
/// recorded uses are still refused.
#[test]
fn kyber_use_commits_are_atomic() {
    use confide::store::{Commit, SessionStore, TransactionalStore};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    stores::kyber_use_commits(&open(&path, &key(1), 1));
    let s = open(&path, &key(1), 2);
    let used = KyberPreKeyUse::new(11, 7, stores::base_key(10));
    let record = confide::SessionRecord::new();
    let who = confide::Address::new("after-reopen", 1);
    let c = Commit::session(&who, RowVersion::ABSENT, &record).with_kyber_pre_key_use(Some(used));
    assert_eq!(s.commit(&c).unwrap(), CommitOutcome::Conflict);
    assert!(s.session(&who).unwrap().is_none());
}

/// [`stores::concurrent_last_resort_commits_one_wins`] on two connections to one file.
#[test]
fn concurrent_last_resort_commits_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("race.db");
    let one = open(&path, &key(1), 1);
    let two = open(&path, &key(1), 2);
    stores::concurrent_last_resort_commits_one_wins([&one, &two], 20);
}
