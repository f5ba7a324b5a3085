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

use confide::cipher::{self, BundleSpec};
use confide::device::{Device, FixedClock};
use confide::group::SenderKeyMessage;
use confide::store::{DeliveredMessage, MessageId, ProtocolStore, SqliteStore};
use confide::{Address, CiphertextMessage, IdentityKeyPair, Timestamp};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// The clock of every shared body.
pub const NOW: Timestamp = Timestamp::from_millis(1_700_000_000_000);

/// Row counts of a store's `verify` (which also opened every row).
#[derive(Debug, PartialEq, Eq)]
pub struct Rows {
    pub messages: usize,
    pub sessions: usize,
    pub sender_keys: usize,
}

/// What the shared bodies need of a durable store beyond the protocol traits: its
/// identity, its message table and its row check. Both stores have these as inherent
/// methods of the same names, so the impls below only forward.
pub trait RowStore: ProtocolStore + Send + Sync + 'static {
    fn has_identity(&self) -> bool;
    fn set_identity(&self, identity: &IdentityKeyPair, registration_id: u32);
    /// The stored message with this id from `from`.
    fn stored(&self, from: &Address, id: &MessageId) -> Option<DeliveredMessage>;
    /// Verifies every row and counts them.
    fn rows(&self) -> Rows;
}

macro_rules! row_store {
    ($t:ty) => {
        impl RowStore for $t {
            fn has_identity(&self) -> bool {
                self.has_local_identity().unwrap()
            }
            fn set_identity(&self, identity: &IdentityKeyPair, registration_id: u32) {
                self.set_local_identity(identity, registration_id).unwrap();
            }
            fn stored(&self, from: &Address, id: &MessageId) -> Option<DeliveredMessage> {
                self.message(from, id).unwrap()
            }
            fn rows(&self) -> Rows {
                let s = self.verify().unwrap();
                Rows {
                    messages: s.messages,
                    sessions: s.sessions,
                    sender_keys: s.sender_keys,
                }
            }
        }
    };
}

row_store!(SqliteStore);
#[cfg(feature = "postgres")]
row_store!(confide::store::PostgresStore);

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

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn bob() -> Address {
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
        let spec = BundleSpec {
            device_id: 1,
            signed_pre_key_id: 1,
            pre_key_id: Some(100 + i as u32),
        };
        let bundle = cipher::new_bundle(&*bob_s, &mut r, spec, NOW).unwrap();
        cipher::process_bundle(&**s, &bob(), &bundle, &mut r, NOW).unwrap();
        let hello = cipher::encrypt(&**s, &bob(), b"hello").unwrap();
        cipher::decrypt_message(&*bob_s, addr, &hello, &mut r, NOW).unwrap();
    }
    let mut handles = Vec::new();
    // Different peers: Bob <-> Carol and Bob <-> Dave, each pair on its own thread.
    for (t, (addr, s)) in peers.iter().take(2).cloned().enumerate() {
        let bob_s = Arc::clone(&bob_s);
        handles.push(std::thread::spawn(move || {
            let mut r = rng(50 + t as u64);
            let mut keys = Vec::new();
            for i in 0..n {
                let m = cipher::encrypt(&*s, &bob(), &i.to_be_bytes()).unwrap();
                keys.push(key_of(&m));
                let p = cipher::decrypt_message(&*bob_s, &addr, &m, &mut r, NOW).unwrap();
                assert_eq!(p.plaintext.as_slice(), i.to_be_bytes());
                let back = cipher::encrypt(&*bob_s, &addr, &i.to_le_bytes()).unwrap();
                assert_eq!(
                    cipher::decrypt(&*s, &bob(), &back, &mut r).unwrap(),
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
                        let m = cipher::encrypt(&*alice_s, &bob(), text.as_bytes()).unwrap();
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
                    let p = cipher::decrypt_message(&*bob_s, &alice_addr, m, &mut r, NOW).unwrap();
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
                            let d = dev
                                .group_decrypt(sender, m)
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
