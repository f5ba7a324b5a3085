//! Test bodies shared by the durable stores (`SqliteStore`, `PostgresStore`): the same
//! assertions run against each, and each test file only says how to open its store.
//! Included with `#[path = "common/stores.rs"] mod stores;` by tests/sqlite.rs,
//! tests/postgres.rs, tests/device.rs and tests/crash.rs (and, through `crate::stores`,
//! by tests/common/crash.rs).
// Each including test file uses only part of this module, and the items are `pub` so
// the files can reach them; neither is a sign of dead code in the suite as a whole.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashSet;
use std::sync::Arc;

use confide::device::{Device, FixedClock, GroupReceiveError};
use confide::group::{DistributionId, GroupDecryptError, Layout, SenderKeyMessage};
use confide::keys::{KeyPair, PreKeyRecord, PublicKey};
use confide::session::Versions;
use confide::session::cipher::{self, BundleSpec};
use confide::store::{
    Commit, CommitOutcome, DeliveredMessage, DurableStore, KyberPreKeyStore, KyberPreKeyUse,
    MessageId, NewMessage, ProtocolStore, RowVersion, StateStore, StateWrite, StoreKey,
};
use confide::{
    Address, CiphertextMessage, DecryptError, IdentityKeyPair, SessionRecord, Timestamp,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// The clock of every shared body.
pub const NOW: Timestamp = Timestamp::from_millis(1_700_000_000_000);

/// Row counts of a store's `verify` (which also opened every row).
#[derive(Debug, PartialEq, Eq)]
pub struct Rows {
    pub messages: usize,
    pub unacknowledged: usize,
    pub sessions: usize,
    pub sender_keys: usize,
}

/// What the shared bodies need of a durable store beyond the protocol traits: its
/// identity, its message table and its row check, all from [`DurableStore`].
pub trait RowStore: DurableStore + Send + Sync + 'static {
    fn has_identity(&self) -> bool {
        self.has_local_identity().unwrap()
    }
    fn set_identity(&self, identity: &IdentityKeyPair, registration_id: u32) {
        self.set_local_identity(identity, registration_id).unwrap();
    }
    /// The stored message with this id from `from`.
    fn stored(&self, from: &Address, id: &MessageId) -> Option<DeliveredMessage> {
        self.message(from, id).unwrap()
    }
    /// The app has the message: only its dedupe record stays.
    fn ack(&self, from: &Address, id: &MessageId) -> bool {
        self.transactional().unwrap().acknowledge(from, id).unwrap()
    }
    /// Sets when the stored message expires; whether it was stored.
    fn set_expiry(&self, from: &Address, id: &MessageId, at: Timestamp) -> bool {
        self.set_message_expiry(from, id, Some(at)).unwrap()
    }
    /// Purges expired messages and acknowledged records received before `before`.
    fn purge(&self, now: Timestamp, before: Timestamp) -> u64 {
        self.purge_messages(now, before).unwrap()
    }
    /// Verifies every row and counts them.
    fn rows(&self) -> Rows {
        let s = self.verify().unwrap();
        Rows {
            messages: s.messages,
            unacknowledged: s.unacknowledged,
            sessions: s.sessions,
            sender_keys: s.sender_keys,
        }
    }
}

impl<S: DurableStore + 'static> RowStore for S {}

/// Gives `store` a fresh identity (registration id from `rng`) unless it has one.
pub fn with_identity<S: RowStore>(store: S, rng: &mut ChaCha20Rng) -> S {
    if !store.has_identity() {
        let id = IdentityKeyPair::generate(rng);
        store.set_identity(&id, 1 + (rng.next_u32() & 0x3fff));
    }
    store
}

/// The (sender ratchet key, counter) pair that names a ciphertext's message key.
pub fn key_of(m: &CiphertextMessage) -> (Vec<u8>, u32) {
    let sm = match m {
        CiphertextMessage::Signal(sm) => sm,
        CiphertextMessage::PreKey(p) => p.message(),
        _ => panic!("unexpected message kind"),
    };
    (sm.ratchet_key().serialize().to_vec(), sm.counter())
}

/// The RNG of a test step, from its seed.
pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// A store key of one repeated byte (tests open stores with a few distinct keys).
pub fn key(b: u8) -> StoreKey {
    StoreKey::from_bytes([b; 32])
}

/// Alice's device 1.
pub fn alice() -> Address {
    Address::new("alice", 1)
}

/// Bob's device 1.
pub fn bob() -> Address {
    Address::new("bob", 1)
}

/// Bob talks to Carol and Dave from two threads, and two threads of Alice's send to
/// Bob over one session at once; then two threads receive Alice's messages, each one
/// twice: every message decrypts fresh exactly once, no two ciphertexts share a
/// (ratchet key, counter), and the stores verify with the rows they should hold.
/// `open(name, seed)` opens the named device's store (with an identity); `n` messages
/// go each way per thread.
pub fn concurrent_threads_to_different_and_same_peers<S: RowStore>(
    n: u32,
    open: impl Fn(&str, u64) -> S,
) {
    let bob_s = Arc::new(open("bob", 20));
    let peers: Vec<(Address, Arc<S>)> = ["carol", "dave", "alice"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let s = open(name, 30 + i as u64);
            (Address::new(*name, 1), Arc::new(s))
        })
        .collect();
    let mut r = rng(40);
    for (i, (addr, s)) in peers.iter().enumerate() {
        let spec = BundleSpec::new(1, 1 + i as u32).with_pre_key(Some(100 + i as u32));
        let bundle = cipher::publish_bundle(&*bob_s, &mut r, &spec, NOW).unwrap();
        cipher::start_session(&**s, &bob(), &bundle, Versions::V3AndV4, &mut r, NOW).unwrap();
        let hello = cipher::encrypt(
            &**s,
            addr,
            &bob(),
            b"hello",
            &mut confide::SystemRng::new(),
            NOW,
        )
        .unwrap();
        cipher::decrypt(&*bob_s, &bob(), addr, &hello, &mut r, NOW).unwrap();
    }
    let mut handles = Vec::new();
    // Different peers: Bob <-> Carol and Bob <-> Dave, each pair on its own thread.
    for (t, (addr, s)) in peers.iter().take(2).cloned().enumerate() {
        let bob_s = Arc::clone(&bob_s);
        handles.push(std::thread::spawn(move || {
            let mut r = rng(50 + t as u64);
            let mut keys = Vec::new();
            for i in 0..n {
                let m = cipher::encrypt(
                    &*s,
                    &addr,
                    &bob(),
                    &i.to_be_bytes(),
                    &mut confide::SystemRng::new(),
                    NOW,
                )
                .unwrap();
                keys.push(key_of(&m));
                let p = cipher::decrypt(&*bob_s, &bob(), &addr, &m, &mut r, NOW).unwrap();
                assert_eq!(p.plaintext.as_slice(), i.to_be_bytes());
                let back = cipher::encrypt(
                    &*bob_s,
                    &bob(),
                    &addr,
                    &i.to_le_bytes(),
                    &mut confide::SystemRng::new(),
                    NOW,
                )
                .unwrap();
                assert_eq!(
                    cipher::decrypt(&*s, &addr, &bob(), &back, &mut r, NOW)
                        .unwrap()
                        .plaintext
                        .as_slice(),
                    i.to_le_bytes()
                );
            }
            keys
        }));
    }
    // The same peer from two threads: Alice's two threads encrypt to Bob at once.
    let (alice_addr, alice_s) = peers[2].clone();
    let sent: Vec<_> = (0..2)
        .map(|t| {
            let alice_s = Arc::clone(&alice_s);
            std::thread::spawn(move || {
                (0..n)
                    .map(|i| {
                        let text = format!("t{t}-{i}");
                        let m = cipher::encrypt(
                            &*alice_s,
                            &alice(),
                            &bob(),
                            text.as_bytes(),
                            &mut confide::SystemRng::new(),
                            NOW,
                        )
                        .unwrap();
                        (text, m)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for h in handles {
        let keys = h.join().unwrap();
        let unique: HashSet<_> = keys.iter().collect();
        assert_eq!(unique.len(), keys.len());
    }
    let sent: Vec<(String, CiphertextMessage)> =
        sent.into_iter().flat_map(|h| h.join().unwrap()).collect();
    let mut pairs = HashSet::new();
    for (_, m) in &sent {
        assert!(pairs.insert(key_of(m)), "a message key was used twice");
    }
    // Bob receives Alice's messages from two threads (same peer), each message
    // delivered twice: every plaintext comes out right, exactly one copy is fresh.
    let shared = Arc::new(sent);
    let receivers: Vec<_> = (0..2)
        .map(|t| {
            let bob_s = Arc::clone(&bob_s);
            let shared = Arc::clone(&shared);
            let alice_addr = alice_addr.clone();
            std::thread::spawn(move || {
                let mut r = rng(60 + t);
                let mut fresh = Vec::new();
                for (text, m) in shared.iter() {
                    let p = cipher::decrypt(&*bob_s, &bob(), &alice_addr, m, &mut r, NOW).unwrap();
                    assert_eq!(p.plaintext.as_slice(), text.as_bytes());
                    if !p.redelivered {
                        fresh.push(text.clone());
                    }
                }
                fresh
            })
        })
        .collect();
    let mut fresh: Vec<String> = receivers
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    fresh.sort();
    let mut want: Vec<String> = shared.iter().map(|(t, _)| t.clone()).collect();
    want.sort();
    assert_eq!(fresh, want, "each message decrypted fresh exactly once");
    let rows = bob_s.rows();
    assert_eq!(rows.sessions, 3);
    // The hellos, Carol's and Dave's messages, Alice's messages.
    assert_eq!(rows.messages, 3 + 2 * n as usize + 2 * n as usize);
    for (_, s) in &peers {
        s.rows();
    }
}

/// Bob (`b`) receives `first`, Alice's (`a`) first message to him, made on his
/// one-time prekey 42, and then the same bytes again (as after a crash before the app
/// saved the plaintext): the prekey went in the first decrypt's commit, the
/// redelivery is the stored plaintext without a second ratchet step (through the
/// plain API too), until the app acknowledges it; from then on a redelivery is a
/// duplicate. A forged copy of a later message is no redelivery: it fails to
/// decrypt. Leaves Alice's second message ("second") stored, unacknowledged.
pub fn redelivery_until_acknowledged<S: RowStore>(a: &S, b: &S, first: &CiphertextMessage) {
    let alice = alice();
    let mut r = rng(7);
    assert!(b.pre_key(42).unwrap().is_some());
    let one = cipher::decrypt(b, &bob(), &alice, first, &mut r, NOW).unwrap();
    assert!(!one.redelivered);
    assert!(
        b.pre_key(42).unwrap().is_none(),
        "prekey consumed in the commit"
    );
    let before = b.session(&alice).unwrap().unwrap().to_bytes();
    let again = cipher::decrypt(b, &bob(), &alice, first, &mut r, NOW).unwrap();
    assert!(again.redelivered);
    assert_eq!(again.plaintext, one.plaintext);
    assert_eq!(
        b.session(&alice).unwrap().unwrap().to_bytes(),
        before,
        "no second ratchet step"
    );
    // Again: the stored plaintext once more (nothing is lost).
    assert_eq!(
        cipher::decrypt(b, &bob(), &alice, first, &mut r, NOW)
            .unwrap()
            .plaintext,
        one.plaintext
    );
    let id = MessageId::of(first);
    assert_eq!(b.stored(&alice, &id).unwrap().received_at, NOW);

    // Acknowledged: only the dedupe record stays, a redelivery is a duplicate.
    assert!(b.ack(&alice, &id));
    assert!(b.stored(&alice, &id).unwrap().plaintext.is_none());
    assert!(matches!(
        cipher::decrypt(b, &bob(), &alice, first, &mut r, NOW),
        Err(DecryptError::DuplicateMessage { .. })
    ));

    // A forged copy with a flipped byte is no redelivery: it fails to decrypt.
    let m = cipher::encrypt(
        a,
        &alice,
        &bob(),
        b"second",
        &mut confide::SystemRng::new(),
        NOW,
    )
    .unwrap();
    cipher::decrypt(b, &bob(), &alice, &m, &mut r, NOW).unwrap();
    let mut bytes = m.serialized().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let forged = CiphertextMessage::from_parts(m.message_type(), &bytes).unwrap();
    assert!(cipher::decrypt(b, &bob(), &alice, &forged, &mut r, NOW).is_err());
}

/// Bob (`b`) receives `m` from Alice, set to expire a second after [`NOW`]: a purge
/// at [`NOW`] keeps it, one at its time drops it, and then a redelivery is refused
/// (the key went with the ratchet step), never decrypted again.
pub fn expiry_purges<S: RowStore>(b: &S, m: &CiphertextMessage, r: &mut ChaCha20Rng) {
    cipher::decrypt(b, &bob(), &alice(), m, r, NOW).unwrap();
    let id = MessageId::of(m);
    let at = Timestamp::from_millis(NOW.as_millis() + 1000);
    assert!(b.set_expiry(&alice(), &id, at));
    assert_eq!(b.purge(NOW, Timestamp::from_millis(0)), 0);
    assert_eq!(b.purge(at, Timestamp::from_millis(0)), 1);
    assert!(b.stored(&alice(), &id).is_none());
    assert!(cipher::decrypt(b, &bob(), &alice(), m, r, NOW).is_err());
}

/// A device on a store of type `S`, as the shared group bodies take it.
pub type Dev<S> = Device<S, ChaCha20Rng, FixedClock>;

/// Whether a group decrypt was refused as a duplicate (the message key is spent).
pub fn is_duplicate(r: Result<confide::Decrypted, GroupReceiveError>) -> bool {
    matches!(
        r,
        Err(GroupReceiveError::Decrypt(
            GroupDecryptError::DuplicateMessage { .. }
        ))
    )
}

/// `n` group messages from `sender` tagged `tag`, as (plaintext, message parsed back
/// from its bytes as a transport would).
pub fn group_send<S: ProtocolStore>(
    sender: &Dev<S>,
    group: DistributionId,
    n: usize,
    tag: &str,
) -> Vec<(String, SenderKeyMessage)> {
    (0..n)
        .map(|i| {
            let text = format!("{tag} #{i}");
            let m = sender.group_encrypt_raw(group, text.as_bytes()).unwrap();
            (
                text,
                SenderKeyMessage::parse(m.serialized(), Layout::Current).unwrap(),
            )
        })
        .collect()
}

/// `n` messages from `sender`, each decrypted by both `receivers` from two threads
/// at once: every one exactly once fresh. Returns the messages.
pub fn decrypted_once_from_two_threads<S: ProtocolStore + Sync>(
    sender: &Dev<S>,
    receivers: [&Dev<S>; 2],
    group: DistributionId,
    n: usize,
    tag: &str,
) -> Vec<(String, SenderKeyMessage)> {
    let sent = group_send(sender, group, n, tag);
    let fresh = decrypt_from_two_threads(receivers, sender.address(), &sent);
    assert_eq!(
        fresh,
        vec![1; sent.len()],
        "{tag}: each message decrypted exactly once"
    );
    sent
}

/// After concurrent group decrypts: `receiver`'s store holds every one of `all` once
/// (beside `other_unacknowledged` rows that are not group messages) and one sender
/// key, and its chain consumed every message key: with every dedupe record
/// acknowledged and purged (`now`, records before `later`), no message decrypts
/// again, through `other` either (a lost record update would have left some key
/// behind).
pub fn every_key_spent<S: RowStore>(
    receiver: &Dev<S>,
    other: &Dev<S>,
    sender: &Address,
    group: DistributionId,
    all: &[&(String, SenderKeyMessage)],
    other_unacknowledged: usize,
    (now, later): (Timestamp, Timestamp),
) {
    let rows = receiver.store().rows();
    assert_eq!(rows.unacknowledged, other_unacknowledged + all.len());
    assert_eq!(rows.sender_keys, 1);
    for (_, m) in all {
        let id = MessageId::of_group(group, m);
        assert!(receiver.store().ack(sender, &id));
    }
    assert_eq!(receiver.store().purge(now, later), all.len() as u64);
    assert_eq!(receiver.store().rows().messages, rows.messages - all.len());
    for (i, (_, m)) in all.iter().enumerate() {
        assert!(
            is_duplicate(other.group_decrypt_raw(sender, group, m)),
            "message {i} decrypted a second time"
        );
    }
}

/// Each of `senders` (one device, possibly opened more than once) encrypts `n` group
/// messages on its own thread, all at once: one chain, no iteration used twice, and
/// `receiver` decrypts every message fresh. Returns the messages.
pub fn encrypted_from_threads<S: ProtocolStore + Sync>(
    senders: &[&Dev<S>],
    receiver: &Dev<S>,
    group: DistributionId,
    n: usize,
) -> Vec<SenderKeyMessage> {
    let sent: Vec<SenderKeyMessage> = std::thread::scope(|s| {
        let hs: Vec<_> = senders
            .iter()
            .enumerate()
            .map(|(t, a)| {
                s.spawn(move || {
                    (0..n)
                        .map(|i| {
                            a.group_encrypt_raw(group, format!("{t}/{i}").as_bytes())
                                .unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let mut iterations: Vec<u32> = sent.iter().map(SenderKeyMessage::iteration).collect();
    iterations.sort_unstable();
    iterations.dedup();
    assert_eq!(
        iterations.len(),
        senders.len() * n,
        "an iteration was used twice"
    );
    assert!(sent.iter().all(|m| m.chain_id() == sent[0].chain_id()));
    for m in &sent {
        let d = receiver
            .group_decrypt_raw(senders[0].address(), group, m)
            .unwrap();
        assert!(!d.redelivered);
    }
    sent
}

/// Two threads each decrypt every one of `sent` (in opposite orders, so they meet in
/// the middle) through `receivers[0]` and `receivers[1]`; returns, per message, how
/// many decrypts were fresh.
pub fn decrypt_from_two_threads<S: ProtocolStore + Sync>(
    receivers: [&Device<S, ChaCha20Rng, FixedClock>; 2],
    sender: &Address,
    sent: &[(String, SenderKeyMessage)],
) -> Vec<usize> {
    let results: Vec<Vec<(usize, bool)>> = std::thread::scope(|s| {
        let handles: Vec<_> = receivers
            .iter()
            .enumerate()
            .map(|(t, dev)| {
                s.spawn(move || {
                    let order: Vec<usize> = if t == 0 {
                        (0..sent.len()).collect()
                    } else {
                        (0..sent.len()).rev().collect()
                    };
                    order
                        .into_iter()
                        .map(|i| {
                            let (text, m) = &sent[i];
                            let id = m.distribution_id().unwrap();
                            let d = dev
                                .group_decrypt_raw(sender, id, m)
                                .unwrap_or_else(|e| panic!("thread {t}, message {i}: {e}"));
                            assert_eq!(d.plaintext.as_slice(), text.as_bytes());
                            (i, d.redelivered)
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut fresh = vec![0; sent.len()];
    for (i, redelivered) in results.into_iter().flatten() {
        fresh[i] += usize::from(!redelivered);
    }
    fresh
}

/// [`StateStore::commit_state`] is all or nothing with a compare-and-swap on every row:
/// a multi-row commit lands whole; a stale version (a row written since it was loaded,
/// a row that appeared where none was expected, a row expected but gone) anywhere in
/// the commit writes nothing and conflicts; a plain `save_state` makes earlier versions
/// stale; two entries for one row conflict.
pub fn state_commit_is_compare_and_swap<S: StateStore + ?Sized>(s: &S) {
    let value = |kind: &str, key: &str| s.state(kind, key).unwrap().map(|v| v.to_vec());
    let (none, absent) = s.load_state("ledger", "").unwrap();
    assert!(none.is_none());
    assert_eq!(absent, RowVersion::ABSENT);

    // Two new rows in one commit.
    let first = [
        StateWrite::new("ledger", "", RowVersion::ABSENT, b"ledger 1"),
        StateWrite::new("tracker", "biz", RowVersion::ABSENT, b"tracker 1"),
    ];
    assert_eq!(s.commit_state(&first).unwrap(), CommitOutcome::Committed);
    let (l1, lv1) = s.load_state("ledger", "").unwrap();
    let (t1, tv1) = s.load_state("tracker", "biz").unwrap();
    assert_eq!(l1.unwrap().as_slice(), b"ledger 1");
    assert_eq!(t1.unwrap().as_slice(), b"tracker 1");
    assert_ne!(lv1, RowVersion::ABSENT);
    assert_ne!(tv1, RowVersion::ABSENT);
    assert_ne!(lv1, tv1);

    // Both rows move on together; the versions change.
    let second = [
        StateWrite::new("ledger", "", lv1, b"ledger 2"),
        StateWrite::new("tracker", "biz", tv1, b"tracker 2"),
    ];
    assert_eq!(s.commit_state(&second).unwrap(), CommitOutcome::Committed);
    let (_, lv2) = s.load_state("ledger", "").unwrap();
    let (_, tv2) = s.load_state("tracker", "biz").unwrap();
    assert_ne!(lv2, lv1);
    assert_ne!(tv2, tv1);

    let unchanged = |why: &str| {
        assert_eq!(value("ledger", "").unwrap(), b"ledger 2", "{why}");
        assert_eq!(value("tracker", "biz").unwrap(), b"tracker 2", "{why}");
        assert_eq!(s.load_state("ledger", "").unwrap().1, lv2, "{why}");
        assert_eq!(s.load_state("tracker", "biz").unwrap().1, tv2, "{why}");
        assert!(value("verifier", "").is_none(), "{why}");
    };
    let conflicts: [(&str, Vec<StateWrite<'_>>); 6] = [
        (
            "stale second entry",
            vec![
                StateWrite::new("ledger", "", lv2, b"x"),
                StateWrite::new("tracker", "biz", tv1, b"x"),
            ],
        ),
        (
            "stale first entry, new row after it",
            vec![
                StateWrite::new("ledger", "", lv1, b"x"),
                StateWrite::new("verifier", "", RowVersion::ABSENT, b"x"),
            ],
        ),
        (
            "new row first, then a stale one",
            vec![
                StateWrite::new("verifier", "", RowVersion::ABSENT, b"x"),
                StateWrite::new("tracker", "biz", tv1, b"x"),
            ],
        ),
        (
            "ABSENT expected but the row exists",
            vec![StateWrite::new("ledger", "", RowVersion::ABSENT, b"x")],
        ),
        (
            "a version expected but there is no row",
            vec![StateWrite::new("verifier", "", lv2, b"x")],
        ),
        (
            "the same row twice",
            vec![
                StateWrite::new("ledger", "", lv2, b"x"),
                StateWrite::new("ledger", "", lv2, b"y"),
            ],
        ),
    ];
    for (why, writes) in &conflicts {
        assert_eq!(
            s.commit_state(writes).unwrap(),
            CommitOutcome::Conflict,
            "{why}"
        );
        unchanged(why);
    }

    // A plain save makes the loaded version stale.
    s.save_state("ledger", "", b"ledger 3").unwrap();
    let stale = [StateWrite::new("ledger", "", lv2, b"x")];
    assert_eq!(s.commit_state(&stale).unwrap(), CommitOutcome::Conflict);
    assert_eq!(value("ledger", "").unwrap(), b"ledger 3");

    // Removed rows are ABSENT again; an empty commit commits nothing.
    s.remove_state("tracker", "biz").unwrap();
    assert_eq!(
        s.load_state("tracker", "biz").unwrap().1,
        RowVersion::ABSENT
    );
    assert_eq!(s.commit_state(&[]).unwrap(), CommitOutcome::Committed);
    let again = [StateWrite::new("tracker", "biz", RowVersion::ABSENT, b"t")];
    assert_eq!(s.commit_state(&again).unwrap(), CommitOutcome::Committed);
    assert_eq!(value("tracker", "biz").unwrap(), b"t");
}

/// Threads that each add to two counters (two rows, always committed together) by
/// load, change, `commit_state`, redo on conflict: no increment is lost and the two rows
/// never disagree. `stores` are handles on one store (for PostgreSQL, handles opened on
/// separate pools, as two hosts would).
pub fn concurrent_state_commits_lose_nothing<S: StateStore + ?Sized>(stores: &[&S], per: u64) {
    let read = |v: Option<zeroize::Zeroizing<Vec<u8>>>| {
        v.map_or(0, |b| u64::from_be_bytes(b.as_slice().try_into().unwrap()))
    };
    std::thread::scope(|scope| {
        for s in stores {
            scope.spawn(move || {
                let mut done = 0;
                while done < per {
                    let (a, av) = s.load_state("counter", "a").unwrap();
                    let (b, bv) = s.load_state("counter", "b").unwrap();
                    let (a, b) = (read(a) + 1, read(b) + 1);
                    let (a, b) = (a.to_be_bytes(), b.to_be_bytes());
                    let writes = [
                        StateWrite::new("counter", "a", av, &a),
                        StateWrite::new("counter", "b", bv, &b),
                    ];
                    if s.commit_state(&writes).unwrap() == CommitOutcome::Committed {
                        done += 1;
                    }
                }
            });
        }
    });
    let total = per * stores.len() as u64;
    assert_eq!(read(stores[0].state("counter", "a").unwrap()), total);
    assert_eq!(read(stores[0].state("counter", "b").unwrap()), total);
}

// ---- Kyber prekeys (protocol v4) ---------------------------------------------------

/// A base key for a Kyber prekey use, from a seed.
pub fn base_key(seed: u64) -> PublicKey {
    KeyPair::generate(&mut rng(seed)).public()
}

/// The Kyber prekey contract, the same for every store (`InMemoryStore` defines it):
/// records are opaque bytes kept as given; a used one-time key is deleted and no use
/// recorded; a used last-resort key stays and its use (Kyber prekey, signed prekey,
/// base key) is recorded, so the same triple again is refused while any other triple is
/// a new handshake; marking a key that is gone changes nothing; saving a record under
/// an id forgets that id's uses, and only that id's. Leaves keys 2 (last-resort, one
/// use recorded) and 4 (one-time, an empty record).
pub fn kyber_pre_keys_contract(k: &dyn KyberPreKeyStore) {
    let read = |id: u32| k.kyber_pre_key(id).unwrap().map(|r| r.to_vec());
    let used = |u: &KyberPreKeyUse| k.kyber_pre_key_used(u).unwrap();
    let mark = |u: &KyberPreKeyUse| k.mark_kyber_pre_key_used(u).unwrap();
    assert!(read(1).is_none());
    k.save_kyber_pre_key(1, b"one-time record", false).unwrap();
    k.save_kyber_pre_key(2, b"last-resort record", true)
        .unwrap();
    assert_eq!(read(1).unwrap(), b"one-time record");
    assert_eq!(read(2).unwrap(), b"last-resort record");
    let (b1, b2) = (base_key(1), base_key(2));

    // One-time: deleted at its use, which is not recorded; marking it again (the key
    // is gone) changes nothing.
    let one_time = KyberPreKeyUse::new(1, 7, b1);
    assert!(!used(&one_time));
    assert!(mark(&one_time));
    assert!(read(1).is_none());
    assert!(!used(&one_time));
    assert!(mark(&one_time));

    // Last-resort: stays, the use is recorded, the same handshake again is refused.
    let last_resort = KyberPreKeyUse::new(2, 7, b1);
    assert!(!used(&last_resort));
    assert!(mark(&last_resort));
    assert!(used(&last_resort));
    assert!(!mark(&last_resort));
    assert_eq!(read(2).unwrap(), b"last-resort record");
    // Another signed prekey or another base key is another handshake.
    for other in [KyberPreKeyUse::new(2, 8, b1), KyberPreKeyUse::new(2, 7, b2)] {
        assert!(!used(&other));
        assert!(mark(&other));
        assert!(used(&other));
    }
    // Uses are per Kyber prekey.
    k.save_kyber_pre_key(3, b"another last resort", true)
        .unwrap();
    let three = KyberPreKeyUse::new(3, 7, b1);
    assert!(!used(&three));
    assert!(mark(&three));

    // A new record under id 2 forgets id 2's uses, and only those.
    k.save_kyber_pre_key(2, b"new last-resort record", true)
        .unwrap();
    assert_eq!(read(2).unwrap(), b"new last-resort record");
    assert!(!used(&last_resort));
    assert!(!used(&KyberPreKeyUse::new(2, 8, b1)));
    assert!(used(&three));
    assert!(mark(&last_resort));
    // A last-resort key saved again as one-time is deleted at its next use.
    k.save_kyber_pre_key(3, b"now one-time", false).unwrap();
    assert!(!used(&three));
    assert!(mark(&three));
    assert!(read(3).is_none());
    assert!(!used(&three));
    // Any bytes, even none, are a record.
    k.save_kyber_pre_key(4, b"", false).unwrap();
    assert_eq!(read(4).unwrap(), b"");
}

/// A transactional store's commits with a Kyber prekey use
/// ([`Commit::kyber_pre_key_use`]): a fresh last-resort use writes the session and
/// records the use, the key staying; a recorded use (a replayed handshake, from the
/// same address or another) conflicts and writes nothing of the commit: no session, no
/// message, no prekey deleted, no identity trusted; a one-time key is deleted in its
/// commit; a use of a key that is gone changes nothing and commits. Leaves key 11
/// (last-resort, two uses recorded) and the session of "kyber-peer".
pub fn kyber_use_commits<S: RowStore>(s: &S) {
    let txn = s.transactional().unwrap();
    let k = s.kyber_pre_keys().unwrap();
    k.save_kyber_pre_key(10, b"one-time", false).unwrap();
    k.save_kyber_pre_key(11, b"last resort", true).unwrap();
    s.save_pre_key(&PreKeyRecord::generate(&mut rng(1), 5))
        .unwrap();
    let record = SessionRecord::new();
    let (peer, other) = (Address::new("kyber-peer", 1), Address::new("replayer", 1));
    let commit = |who: &Address, expected: RowVersion, used: KyberPreKeyUse| {
        let c = Commit::session(who, expected, &record).with_kyber_pre_key_use(Some(used));
        txn.commit(&c).unwrap()
    };

    let last_resort = KyberPreKeyUse::new(11, 7, base_key(10));
    assert_eq!(
        commit(&peer, RowVersion::ABSENT, last_resort),
        CommitOutcome::Committed
    );
    assert!(k.kyber_pre_key_used(&last_resort).unwrap());
    assert_eq!(
        k.kyber_pre_key(11).unwrap().unwrap().as_slice(),
        b"last resort"
    );
    let (_, v1) = txn.load_session(&peer).unwrap();
    assert_ne!(v1, RowVersion::ABSENT);

    let identity = *IdentityKeyPair::generate(&mut rng(2)).identity_key();
    let m = NewMessage::new(MessageId::from_bytes([9; 32]), b"replayed", NOW);
    for (who, expected) in [(&peer, v1), (&other, RowVersion::ABSENT)] {
        let c = Commit::session(who, expected, &record)
            .with_kyber_pre_key_use(Some(last_resort))
            .with_identity(&identity)
            .with_removed_pre_key(Some(5))
            .with_message(m);
        assert_eq!(txn.commit(&c).unwrap(), CommitOutcome::Conflict, "{who:?}");
        assert_eq!(txn.load_session(who).unwrap().1, expected, "{who:?}");
        assert!(txn.delivered(who, &m.id).unwrap().is_none(), "{who:?}");
        assert!(s.identity(who).unwrap().is_none(), "{who:?}");
        assert!(s.pre_key(5).unwrap().is_some(), "{who:?}");
    }
    // Another handshake on the last-resort key commits.
    let second = KyberPreKeyUse::new(11, 7, base_key(11));
    assert_eq!(
        commit(&other, RowVersion::ABSENT, second),
        CommitOutcome::Committed
    );

    // A one-time key goes in its commit; its use is not recorded, and a later commit
    // naming it (the key is gone) marks nothing and commits.
    let one_time = KyberPreKeyUse::new(10, 7, base_key(12));
    assert_eq!(commit(&peer, v1, one_time), CommitOutcome::Committed);
    assert!(k.kyber_pre_key(10).unwrap().is_none());
    assert!(!k.kyber_pre_key_used(&one_time).unwrap());
    let (_, v2) = txn.load_session(&peer).unwrap();
    assert_eq!(commit(&peer, v2, one_time), CommitOutcome::Committed);
    assert_ne!(txn.load_session(&peer).unwrap().1, v2);
    // A stale session version conflicts whatever the use.
    let third = KyberPreKeyUse::new(11, 7, base_key(13));
    assert_eq!(commit(&peer, v1, third), CommitOutcome::Conflict);
    assert!(!k.kyber_pre_key_used(&third).unwrap());

    let summary = s.verify().unwrap();
    assert_eq!((summary.kyber_pre_keys, summary.kyber_pre_key_uses), (1, 2));
}

/// Two handles on one store (two connections, or two hosts) commit the same
/// last-resort use at once, each for its own address, `rounds` times: exactly one
/// commit of each pair wins, and the loser wrote nothing (its session is absent).
pub fn concurrent_last_resort_commits_one_wins<S: RowStore>(stores: [&S; 2], rounds: u64) {
    stores[0]
        .kyber_pre_keys()
        .unwrap()
        .save_kyber_pre_key(20, b"last resort", true)
        .unwrap();
    let record = SessionRecord::new();
    for round in 0..rounds {
        let used = KyberPreKeyUse::new(20, 7, base_key(1000 + round));
        let barrier = std::sync::Barrier::new(2);
        let who = |i: usize| Address::new(format!("racer-{round}-{i}"), 1);
        let outcomes: Vec<CommitOutcome> = std::thread::scope(|scope| {
            let handles: Vec<_> = stores
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let (barrier, record, who) = (&barrier, &record, who(i));
                    scope.spawn(move || {
                        let c = Commit::session(&who, RowVersion::ABSENT, record)
                            .with_kyber_pre_key_use(Some(used));
                        barrier.wait();
                        s.transactional().unwrap().commit(&c).unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let wins = outcomes
            .iter()
            .filter(|o| **o == CommitOutcome::Committed)
            .count();
        assert_eq!(wins, 1, "round {round}: {outcomes:?}");
        for (i, o) in outcomes.iter().enumerate() {
            let stored = stores[0].session(&who(i)).unwrap().is_some();
            assert_eq!(stored, *o == CommitOutcome::Committed, "round {round}");
        }
        assert!(
            stores[1]
                .kyber_pre_keys()
                .unwrap()
                .kyber_pre_key_used(&used)
                .unwrap()
        );
    }
    for s in stores {
        let summary = s.verify().unwrap();
        assert_eq!(summary.sessions as u64, rounds);
        assert_eq!(summary.kyber_pre_key_uses as u64, rounds);
    }
}
