//! Sender keys: both layouts, out-of-order delivery within the documented bounds,
//! replay refusal, chain states, rotation, failed decrypts that change nothing, and
//! the persisted record format (with a committed fixture).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use confide::group::{
    DistributionId, GroupDecryptError, GroupEncryptError, GroupProcessError, GroupSessions, Layout,
    SenderKeyDistributionMessage, SenderKeyMessage, SenderKeyRecord, limits,
};
use confide::{Address, RecordError, Timestamp};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn alice() -> Address {
    Address::new("alice", 1)
}

fn setup(layout: Layout, seed: u64) -> (ChaCha20Rng, DistributionId, GroupSessions, GroupSessions) {
    let mut r = rng(seed);
    let id = DistributionId::random(&mut r);
    let mut a = GroupSessions::new();
    let mut b = GroupSessions::new();
    let skdm = a.distribution(&alice(), id, layout, &mut r);
    let wire = SenderKeyDistributionMessage::parse(skdm.serialized(), layout).unwrap();
    b.process(&alice(), id, &wire).unwrap();
    (r, id, a, b)
}

#[test]
fn round_trip_both_layouts() {
    for layout in [Layout::Current, Layout::Legacy] {
        let (mut r, id, mut a, mut b) = setup(layout, 1);
        for i in 0..5u8 {
            let m = a.encrypt(&alice(), id, &[i; 40], &mut r).unwrap();
            assert_eq!(m.serialized()[0], 0x33);
            let parsed = SenderKeyMessage::parse(m.serialized(), layout).unwrap();
            assert_eq!(parsed.iteration(), u32::from(i));
            assert_eq!(*b.decrypt(&alice(), id, &parsed).unwrap(), vec![i; 40]);
        }
    }
}

#[test]
fn wire_layout_field_numbers() {
    let mut r = rng(2);
    let id: DistributionId = "d1d1d1d1-7000-11eb-b32a-33b8a8a487a6".parse().unwrap();
    assert_eq!(id.to_string(), "d1d1d1d1-7000-11eb-b32a-33b8a8a487a6");
    let mut rec = SenderKeyRecord::new(id, Layout::Current);
    let skdm = rec.distribution(&mut r);
    let b = skdm.serialized();
    // 0x33, then field 1 (distribution_uuid, length-delimited, 16 bytes).
    assert_eq!(&b[..3], &[0x33, 0x0a, 16]);
    assert_eq!(&b[3..19], id.as_bytes());
    assert_eq!(b[19], 0x10); // field 2 chain_id varint
    let m = rec.encrypt(b"x", &mut r).unwrap();
    assert_eq!(&m.serialized()[..3], &[0x33, 0x0a, 16]);

    let mut legacy = SenderKeyRecord::new(id, Layout::Legacy);
    let skdm = legacy.distribution(&mut r);
    assert_eq!(skdm.serialized()[1], 0x08); // field 1 id varint
    let m = legacy.encrypt(b"x", &mut r).unwrap();
    assert_eq!(m.serialized()[1], 0x08);
    assert!(SenderKeyMessage::try_from(m.serialized()).is_err());
}

#[test]
fn out_of_order_and_replay() {
    let (mut r, id, mut a, mut b) = setup(Layout::Current, 3);
    let msgs: Vec<_> = (0..10u8)
        .map(|i| a.encrypt(&alice(), id, &[i], &mut r).unwrap())
        .collect();
    for i in [9usize, 0, 5, 3, 1, 2, 4, 8, 6, 7] {
        assert_eq!(*b.decrypt(&alice(), id, &msgs[i]).unwrap(), vec![i as u8]);
    }
    for m in &msgs {
        assert_eq!(
            b.decrypt(&alice(), id, m),
            Err(GroupDecryptError::DuplicateMessage {
                iteration: m.iteration()
            })
        );
    }
}

#[test]
fn bounds_are_enforced() {
    let (mut r, id, mut a, mut b) = setup(Layout::Current, 4);
    let first = a.encrypt(&alice(), id, b"0", &mut r).unwrap();
    let mut last = first.clone();
    for _ in 0..limits::MAX_MESSAGE_KEYS + 1 {
        last = a.encrypt(&alice(), id, b"n", &mut r).unwrap();
    }
    // Skipping 2001 keys evicts the oldest: message 0 is refused, message 1 is kept.
    assert_eq!(*b.decrypt(&alice(), id, &last).unwrap(), b"n");
    assert!(matches!(
        b.decrypt(&alice(), id, &first),
        Err(GroupDecryptError::DuplicateMessage { iteration: 0 })
    ));

    // Too far ahead.
    let mut rec = SenderKeyRecord::new(id, Layout::Current);
    let skdm = rec.distribution(&mut r);
    let mut recv = SenderKeyRecord::new(id, Layout::Current);
    recv.process(&skdm).unwrap();
    let mut far = None;
    for _ in 0..=limits::MAX_FORWARD_JUMP + 1 {
        far = Some(rec.encrypt(b"", &mut r).unwrap());
    }
    let far = far.unwrap();
    assert!(matches!(
        recv.decrypt(&far),
        Err(GroupDecryptError::TooFarAhead { .. })
    ));
}

#[test]
fn failed_decrypt_changes_nothing() {
    let (mut r, id, mut a, mut b) = setup(Layout::Current, 5);
    let m0 = a.encrypt(&alice(), id, b"zero", &mut r).unwrap();
    let m5 = {
        for _ in 0..4 {
            a.encrypt(&alice(), id, b"skip", &mut r).unwrap();
        }
        a.encrypt(&alice(), id, b"five", &mut r).unwrap()
    };
    let before = b.record(&alice(), id).unwrap().to_bytes();
    let mut bad = m5.serialized().to_vec();
    let n = bad.len();
    bad[n - 70] ^= 1; // inside the ciphertext, so the signature fails
    let bad = SenderKeyMessage::try_from(&bad[..]).unwrap();
    assert_eq!(
        b.decrypt(&alice(), id, &bad),
        Err(GroupDecryptError::InvalidMessage)
    );
    assert_eq!(*b.record(&alice(), id).unwrap().to_bytes(), *before);
    assert_eq!(*b.decrypt(&alice(), id, &m5).unwrap(), b"five");
    assert_eq!(*b.decrypt(&alice(), id, &m0).unwrap(), b"zero");
}

#[test]
fn corrupted_and_truncated_bytes_are_refused() {
    let (mut r, id, mut a, _) = setup(Layout::Current, 6);
    let m = a.encrypt(&alice(), id, b"hi", &mut r).unwrap();
    let bytes = m.serialized();
    for len in 0..bytes.len() {
        let _ = SenderKeyMessage::try_from(&bytes[..len]);
    }
    let mut v = bytes.to_vec();
    v[0] = 0x32;
    assert!(SenderKeyMessage::try_from(&v[..]).is_err());
    assert!(SenderKeyDistributionMessage::try_from(&[0x33u8][..]).is_err());
}

#[test]
fn rotation_and_state_bound() {
    let (mut r, id, mut a, mut b) = setup(Layout::Current, 7);
    let old = a.encrypt(&alice(), id, b"old", &mut r).unwrap();
    let old_late = a.encrypt(&alice(), id, b"old late", &mut r).unwrap();
    let skdm = a.rotate(&alice(), id, &mut r);
    let new = a.encrypt(&alice(), id, b"new", &mut r).unwrap();
    assert_ne!(new.chain_id(), old.chain_id());
    assert_eq!(new.iteration(), 0);
    // A receiver without the new distribution message cannot read the new chain.
    assert!(matches!(
        b.decrypt(&alice(), id, &new),
        Err(GroupDecryptError::NoSenderKey { .. })
    ));
    b.process(&alice(), id, &skdm).unwrap();
    assert_eq!(*b.decrypt(&alice(), id, &new).unwrap(), b"new");
    // In-flight messages of the old chain still open (as libsignal), until the app
    // forgets previous chains.
    assert_eq!(*b.decrypt(&alice(), id, &old).unwrap(), b"old");
    let mut rec = b.record(&alice(), id).unwrap().clone();
    assert_eq!(rec.chain_count(), 2);
    rec.forget_previous_chains();
    assert!(matches!(
        rec.decrypt(&old_late),
        Err(GroupDecryptError::NoSenderKey { .. })
    ));
    // The sender's own record holds only the new chain.
    assert_eq!(a.record(&alice(), id).unwrap().chain_count(), 1);

    // At most MAX_SENDER_KEY_STATES chains are kept.
    for _ in 0..10 {
        let skdm = a.rotate(&alice(), id, &mut r);
        b.process(&alice(), id, &skdm).unwrap();
    }
    assert_eq!(
        b.record(&alice(), id).unwrap().chain_count(),
        limits::MAX_SENDER_KEY_STATES
    );
}

#[test]
fn reprocessing_distribution_keeps_progress() {
    let (mut r, id, mut a, mut b) = setup(Layout::Current, 8);
    let skdm = a.distribution(&alice(), id, Layout::Current, &mut r);
    let m = a.encrypt(&alice(), id, b"m", &mut r).unwrap();
    assert_eq!(*b.decrypt(&alice(), id, &m).unwrap(), b"m");
    b.process(&alice(), id, &skdm).unwrap();
    assert!(matches!(
        b.decrypt(&alice(), id, &m),
        Err(GroupDecryptError::DuplicateMessage { .. })
    ));
}

#[test]
fn wrong_layout_distribution_and_no_key() {
    let mut r = rng(9);
    let id = DistributionId::random(&mut r);
    let other = DistributionId::random(&mut r);
    let mut rec = SenderKeyRecord::new(id, Layout::Current);
    assert_eq!(
        rec.encrypt(b"x", &mut r).unwrap_err(),
        GroupEncryptError::NoSenderKey
    );
    let mut o = SenderKeyRecord::new(other, Layout::Current);
    let skdm = o.distribution(&mut r);
    assert_eq!(
        rec.process(&skdm),
        Err(GroupProcessError::WrongDistribution)
    );
    let mut l = SenderKeyRecord::new(id, Layout::Legacy);
    let lskdm = l.distribution(&mut r);
    assert_eq!(rec.process(&lskdm), Err(GroupProcessError::WrongLayout));
    let m = o.encrypt(b"x", &mut r).unwrap();
    assert_eq!(rec.decrypt(&m), Err(GroupDecryptError::WrongDistribution));
}

#[test]
fn debug_is_redacted() {
    let mut r = rng(10);
    let id: DistributionId = "00000000-0000-4000-8000-000000000001".parse().unwrap();
    let mut rec = SenderKeyRecord::new(id, Layout::Current);
    let skdm = rec.distribution(&mut r);
    assert_eq!(
        format!("{rec:?}"),
        "SenderKeyRecord { layout: Current, distribution_id: Some(DistributionId(00000000-0000-4000-8000-000000000001)), chains: 1, can_send: true, .. }"
    );
    let d = format!("{skdm:?}");
    assert!(d.contains("chain_key: \"***\""), "{d}");
}

#[test]
fn record_round_trip_and_bad_records() {
    let (mut r, id, mut a, mut b) = setup(Layout::Current, 11);
    let msgs: Vec<_> = (0..4u8)
        .map(|i| a.encrypt(&alice(), id, &[i], &mut r).unwrap())
        .collect();
    b.decrypt(&alice(), id, &msgs[3]).unwrap();
    let bytes = b.record(&alice(), id).unwrap().to_bytes();
    let mut loaded = SenderKeyRecord::from_bytes(&bytes).unwrap();
    assert_eq!(*loaded.to_bytes(), *bytes);
    assert_eq!(*loaded.decrypt(&msgs[1]).unwrap(), vec![1]);
    let own_bytes = a.record(&alice(), id).unwrap().to_bytes();
    let own = SenderKeyRecord::from_bytes(&own_bytes).unwrap();
    assert!(own.can_send());
    // An own chain whose stored signing public key is not its private key's is refused.
    let signing = a
        .distribution(&alice(), id, Layout::Current, &mut r)
        .signing_key()
        .serialize();
    let at = own_bytes
        .windows(signing.len())
        .position(|w| w == &signing[..])
        .expect("the signing key is in the record");
    let mut forged = own_bytes.to_vec();
    let other = confide::keys::KeyPair::generate(&mut r)
        .public()
        .serialize();
    forged[at..at + signing.len()].copy_from_slice(&other);
    assert_eq!(
        SenderKeyRecord::from_bytes(&forged).unwrap_err(),
        RecordError::Inconsistent {
            field: "signing_private"
        }
    );
    assert_eq!(
        SenderKeyRecord::from_bytes(&[0xff]).unwrap_err(),
        RecordError::Malformed
    );
    // format_version 2 is refused.
    assert_eq!(
        SenderKeyRecord::from_bytes(&[0x08, 0x02]).unwrap_err(),
        RecordError::UnsupportedVersion { found: 2 }
    );
}

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/group/v1_records.txt"
);

/// Deterministic records: the sender's own record and a receiver's after message 1 of
/// 0..=3, plus messages 0, 2 and 3. Written once by `write_fixture` (ignored).
fn fixture_material() -> Vec<(String, Vec<u8>)> {
    let (mut r, id, mut a, mut b) = setup(Layout::Current, 42);
    let msgs: Vec<_> = (0..4u8)
        .map(|i| a.encrypt(&alice(), id, &[b'm', b'0' + i], &mut r).unwrap())
        .collect();
    b.decrypt(&alice(), id, &msgs[1]).unwrap();
    vec![
        (
            "sender".into(),
            a.record(&alice(), id).unwrap().to_bytes().to_vec(),
        ),
        (
            "receiver".into(),
            b.record(&alice(), id).unwrap().to_bytes().to_vec(),
        ),
        ("msg0".into(), msgs[0].serialized().to_vec()),
        ("msg2".into(), msgs[2].serialized().to_vec()),
        ("msg3".into(), msgs[3].serialized().to_vec()),
    ]
}

#[test]
#[ignore = "regenerates the committed fixture"]
fn write_fixture() {
    let text: String = fixture_material()
        .into_iter()
        .map(|(k, v)| format!("{k} {}\n", hex::encode(v)))
        .collect();
    std::fs::write(FIXTURE, text).unwrap();
}

#[test]
fn committed_v1_record_still_loads() {
    let text = std::fs::read_to_string(FIXTURE).unwrap();
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k} ")))
            .map(|h| hex::decode(h).unwrap())
            .unwrap()
    };
    let mut receiver = SenderKeyRecord::from_bytes(&get("receiver")).unwrap();
    let mut sender = SenderKeyRecord::from_bytes(&get("sender")).unwrap();
    assert!(sender.can_send() && !receiver.can_send());
    for (k, pt) in [("msg3", b"m3"), ("msg0", b"m0"), ("msg2", b"m2")] {
        let m = SenderKeyMessage::try_from(&get(k)[..]).unwrap();
        assert_eq!(receiver.decrypt(&m).unwrap().as_slice(), pt);
    }
    // The sender continues at iteration 4 and the receiver reads it.
    let m = sender.encrypt(b"m4", &mut rng(1)).unwrap();
    assert_eq!(m.iteration(), 4);
    assert_eq!(receiver.decrypt(&m).unwrap().as_slice(), b"m4");
}

/// One step of a group's life: send, deliver a pending message (by index into the
/// undelivered ones, shuffled), drop one, redeliver a delivered one, rotate.
#[derive(Clone, Debug)]
enum Action {
    Send,
    Deliver(usize),
    Drop(usize),
    Duplicate(usize),
    Rotate,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => Just(Action::Send),
        4 => any::<usize>().prop_map(Action::Deliver),
        1 => any::<usize>().prop_map(Action::Drop),
        2 => any::<usize>().prop_map(Action::Duplicate),
        1 => Just(Action::Rotate),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn group_action_sequences(actions in proptest::collection::vec(action(), 1..60), seed in any::<u64>()) {
        let (mut r, id, mut a, mut b) = setup(Layout::Current, seed);
        let mut pending: Vec<(SenderKeyMessage, Vec<u8>)> = Vec::new();
        let mut delivered: Vec<SenderKeyMessage> = Vec::new();
        let mut n = 0u32;
        for act in actions {
            match act {
                Action::Send => {
                    n += 1;
                    let pt = n.to_be_bytes().to_vec();
                    let m = a.encrypt(&alice(), id, &pt, &mut r).unwrap();
                    pending.push((m, pt));
                }
                Action::Deliver(i) if !pending.is_empty() => {
                    let (m, pt) = pending.remove(i % pending.len());
                    prop_assert_eq!(b.decrypt(&alice(), id, &m).unwrap().to_vec(), pt);
                    delivered.push(m);
                }
                Action::Drop(i) if !pending.is_empty() => {
                    pending.remove(i % pending.len());
                }
                Action::Duplicate(i) if !delivered.is_empty() => {
                    let m = &delivered[i % delivered.len()];
                    let before = b.record(&alice(), id).unwrap().to_bytes();
                    // A duplicate, or its chain was dropped beyond the kept bound.
                    let is_duplicate = matches!(
                        b.decrypt(&alice(), id, m),
                        Err(GroupDecryptError::DuplicateMessage { .. })
                            | Err(GroupDecryptError::NoSenderKey { .. })
                    );
                    prop_assert!(is_duplicate);
                    prop_assert_eq!(&*b.record(&alice(), id).unwrap().to_bytes(), &*before);
                }
                Action::Rotate => {
                    let skdm = a.rotate(&alice(), id, &mut r);
                    b.process(&alice(), id, &skdm).unwrap();
                    // Pending messages of chains beyond the kept bound would be lost;
                    // keep the sequence within it by delivering them first.
                    let chains = b.record(&alice(), id).unwrap().chain_count();
                    if chains == limits::MAX_SENDER_KEY_STATES {
                        pending.clear();
                    }
                }
                _ => {}
            }
        }
    }
}

/// The caller names the group in every operation: a current-layout message or
/// distribution message naming another group is refused, and nothing changes.
#[test]
fn the_named_group_must_match_the_message() {
    use confide::group::cipher as group;
    use confide::store::{InMemoryStore, SenderKeyStore};

    let mut r = rng(61);
    let (a_id, b_id) = (
        DistributionId::random(&mut r),
        DistributionId::random(&mut r),
    );
    let alice_store = InMemoryStore::generate(&mut r);
    let bob_store = InMemoryStore::generate(&mut r);
    let skdm_a =
        group::distribution(&alice_store, &alice(), a_id, Layout::Current, &mut r).unwrap();
    let skdm_b =
        group::distribution(&alice_store, &alice(), b_id, Layout::Current, &mut r).unwrap();
    group::process(&bob_store, &alice(), b_id, &skdm_b).unwrap();
    let before = bob_store
        .sender_key(&alice(), b_id)
        .unwrap()
        .unwrap()
        .to_bytes();
    assert!(matches!(
        group::process(&bob_store, &alice(), b_id, &skdm_a),
        Err(group::GroupKeyProcessError::Process(
            GroupProcessError::WrongDistribution
        ))
    ));
    let m = group::encrypt(&alice_store, &alice(), a_id, b"for a", &mut r).unwrap();
    assert!(matches!(
        group::decrypt(&bob_store, &alice(), b_id, &m, Timestamp::from_millis(1)),
        Err(group::GroupReceiveError::Decrypt(
            GroupDecryptError::WrongDistribution
        ))
    ));
    assert_eq!(
        bob_store
            .sender_key(&alice(), b_id)
            .unwrap()
            .unwrap()
            .to_bytes(),
        before
    );
    assert!(bob_store.sender_key(&alice(), a_id).unwrap().is_none());
    // Named right, it decrypts.
    group::process(&bob_store, &alice(), a_id, &skdm_a).unwrap();
    let got = group::decrypt(&bob_store, &alice(), a_id, &m, Timestamp::from_millis(1)).unwrap();
    assert_eq!(got.plaintext.as_slice(), b"for a");
}
