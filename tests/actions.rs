//! Property test: random action sequences between two devices (send either way,
//! deliver in any order, drop, duplicate, corrupt, re-initiate), checked by the model in
//! `tests/fuzz/actions.rs`, which the `actions` fuzz target runs too.
//!
//! `PROPTEST_CASES=n` changes the number of cases (default [`CASES`]).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "fuzz/actions.rs"]
mod actions;
mod common;

use actions::{Action, Corruption, MAX_PAYLOAD, Scenario, Setup, Side, Stats};
use confide::CiphertextMessage;
use proptest::prelude::*;
use proptest::strategy::ValueTree;

/// Cases per run by default: about 10 s in a debug build on two cores.
const CASES: u32 = 96;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CASES)
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Alice), Just(Side::Bob)]
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        side(),
        any::<bool>(),
        proptest::option::weighted(0.3, any::<bool>()),
    )
        .prop_map(|(initiator, one_time, simultaneous)| Setup {
            initiator,
            one_time,
            simultaneous,
        })
}

fn corruption() -> impl Strategy<Value = Corruption> {
    prop_oneof![
        3 => any::<u16>().prop_map(Corruption::FlipBit),
        2 => any::<u16>().prop_map(Corruption::Truncate),
        1 => any::<u8>().prop_map(Corruption::Relabel),
        1 => any::<u8>().prop_map(Corruption::RelabelInner),
        1 => Just(Corruption::WrongType),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        6 => (side(), proptest::collection::vec(any::<u8>(), 0..=MAX_PAYLOAD))
            .prop_map(|(from, payload)| Action::Send { from, payload }),
        6 => any::<u16>().prop_map(Action::Deliver),
        1 => any::<u16>().prop_map(Action::Drop),
        2 => any::<u16>().prop_map(Action::Duplicate),
        3 => (any::<bool>(), any::<u16>(), corruption())
            .prop_map(|(delivered, pick, how)| Action::Corrupt { delivered, pick, how }),
        1 => (side(), any::<bool>()).prop_map(|(from, one_time)| Action::Reinit { from, one_time }),
    ]
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (setup(), proptest::collection::vec(action(), 0..80))
        .prop_map(|(setup, actions)| Scenario { setup, actions })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn action_sequences_keep_every_promise(s in scenario(), seed in any::<u64>()) {
        // The fuzz target's byte format describes the same scenario.
        prop_assert_eq!(&Scenario::decode(&s.encode()), &s);
        actions::run(&s, seed);
    }
}

/// Enough cases reach each interesting situation that the property means something.
#[test]
fn generated_scenarios_cover_the_interesting_cases() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = scenario();
    let mut total = Stats::default();
    for seed in 0..24u64 {
        let s = strategy.new_tree(&mut runner).unwrap().current();
        let st = actions::run(&s, seed);
        total.delivered += st.delivered;
        total.out_of_order += st.out_of_order;
        total.prekey_delivered += st.prekey_delivered;
        total.duplicates += st.duplicates;
        total.corruptions_refused += st.corruptions_refused;
        total.session_switches += st.session_switches;
        total.initiations += st.initiations;
        total.corruptions_accepted += st.corruptions_accepted;
        total.lost_to_chain_limit += st.lost_to_chain_limit;
        total.sent += st.sent;
        total.dropped += st.dropped;
    }
    eprintln!("{total:#?}");
    assert!(total.delivered > 200, "{total:?}");
    assert!(total.out_of_order > 20, "{total:?}");
    assert!(total.prekey_delivered > 20, "{total:?}");
    assert!(total.duplicates > 10, "{total:?}");
    assert!(total.corruptions_refused > 20, "{total:?}");
    assert!(total.session_switches > 0, "{total:?}");
    assert!(total.initiations > 30, "{total:?}");
}

fn send(from: Side, text: &str) -> Action {
    Action::Send {
        from,
        payload: text.as_bytes().to_vec(),
    }
}

/// The model's one legitimate loss: a message held back while five newer receiving
/// chains arrive is refused (and the refusal changes nothing); one held back over four
/// still decrypts.
#[test]
fn receiving_chain_limit_is_modelled() {
    for (rounds, lost) in [(4, 0), (5, 1)] {
        let mut a = vec![
            send(Side::Alice, "first"),
            Action::Deliver(0),
            send(Side::Alice, "held"),
        ];
        for i in 0..rounds {
            a.extend([
                send(Side::Bob, &format!("b{i}")),
                Action::Deliver(1),
                send(Side::Alice, &format!("a{i}")),
                Action::Deliver(1),
            ]);
        }
        a.push(Action::Deliver(0));
        let s = Scenario {
            setup: Setup {
                initiator: Side::Alice,
                one_time: true,
                simultaneous: None,
            },
            actions: a,
        };
        let stats = actions::run(&s, 11);
        assert_eq!(
            stats.lost_to_chain_limit, lost,
            "{rounds} rounds: {stats:?}"
        );
    }
}

/// Simultaneous initiation with every message held back, then delivered in a scrambled
/// order, each re-delivered once.
#[test]
fn simultaneous_initiation_any_order() {
    for one_time in [false, true] {
        let mut a = Vec::new();
        for i in 0..5 {
            a.push(send(Side::Alice, &format!("a{i}")));
            a.push(send(Side::Bob, &format!("b{i}")));
        }
        for _ in 0..10 {
            a.push(Action::Deliver(u16::MAX));
            a.push(Action::Duplicate(u16::MAX));
        }
        let s = Scenario {
            setup: Setup {
                initiator: Side::Bob,
                one_time,
                simultaneous: Some(!one_time),
            },
            actions: a,
        };
        let stats = actions::run(&s, 12);
        assert_eq!(stats.duplicates, 10);
        assert_eq!(stats.delivered, 10 + 3);
    }
}

/// Every single-bit flip of a prekey message and of a plain message, delivered before
/// the genuine one. Only flips in the prekey message's unauthenticated outer fields
/// (its registration id, or a tag that turns that field into an unknown one) may be
/// accepted; the first such copy then counts as the delivery, and every later one is a
/// duplicate. A plain message has no such fields.
#[test]
fn every_single_bit_flip_is_refused_or_harmless() {
    let flips = |a: &mut Vec<Action>| {
        for bit in 0..8 * 160 {
            a.push(Action::Corrupt {
                delivered: false,
                pick: 0,
                how: Corruption::FlipBit(bit),
            });
        }
    };
    let mut a = vec![send(Side::Alice, "x")];
    flips(&mut a);
    a.extend([Action::Deliver(0), send(Side::Bob, "y")]);
    flips(&mut a);
    a.push(Action::Deliver(0));
    let s = Scenario {
        setup: Setup {
            initiator: Side::Alice,
            one_time: true,
            simultaneous: None,
        },
        actions: a,
    };
    let stats = actions::run(&s, 13);
    assert_eq!(stats.corruptions_accepted, 1, "{stats:?}");
    assert_eq!(
        stats.corruptions_refused + stats.corruptions_accepted,
        2 * 8 * 160,
        "{stats:?}"
    );
}

/// Flips bit 255 of a prekey message's base key: the bit X25519 ignores.
fn flip_base_key_top_bit(m: &CiphertextMessage) -> Vec<u8> {
    let CiphertextMessage::PreKey(p) = m else {
        panic!("not a prekey message")
    };
    let mut bytes = p.serialized().to_vec();
    let key = p.base_key().serialize();
    let at = bytes.windows(key.len()).position(|w| w == key).unwrap();
    bytes[at + 32] ^= 0x80;
    bytes
}

/// A prekey message is matched to its session by the base key's bytes, and X25519
/// ignores the key's top bit: a copy with that bit flipped must not pass for a new
/// session with the same X3DH secret (a replay, a session swap, or a consumed one-time
/// prekey). confide refuses non-canonical keys when parsing. Found by
/// `every_single_bit_flip_is_refused_or_harmless`.
#[test]
fn prekey_base_key_top_bit_is_not_a_new_session() {
    use common::{Device, rng};
    let mut r = rng(21);
    for one_time in [false, true] {
        let alice = Device::new("alice", &mut r);
        let mut bob = Device::new("bob", &mut r);
        alice.start(&mut bob, &mut r, one_time);
        let m = alice.send(&bob, b"transfer 100");
        let copy = flip_base_key_top_bit(&m);
        // Before and after the genuine delivery, the copy is refused at parse time and
        // changes nothing.
        for delivered in [false, true] {
            let before = bob.snapshot(&alice);
            assert!(matches!(
                CiphertextMessage::from_parts(3, &copy),
                Err(confide::WireError::InvalidKey {
                    field: "base_key",
                    source: confide::KeyError::NonCanonical
                })
            ));
            assert_eq!(before, bob.snapshot(&alice));
            if !delivered {
                assert_eq!(bob.recv(&alice, &m, &mut r).unwrap(), b"transfer 100");
            }
        }
        let reply = bob.send(&alice, b"ok");
        assert_eq!(alice.recv(&bob, &reply, &mut r).unwrap(), b"ok");
    }
}
