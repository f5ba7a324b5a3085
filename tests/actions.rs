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
            v4: false,
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
        1 => (side(), any::<bool>()).prop_map(|(from, one_time)| Action::Reinit {
            from,
            one_time,
            v4: false,
        }),
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
                v4: false,
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
                v4: false,
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
            v4: false,
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

// ---------------------------------------------------------------------------------
// Protocol v4: the same actions over PQXDH sessions with SPQR, and v3 and v4 mixed.

/// Cases of the long v4 property by default (each some 1000 actions in alternating
/// bursts, so SPQR epochs advance): some 15 s in a debug build.
const V4_CASES: u32 = 6;

/// Cases of the mixed-version property by default.
const MIXED_CASES: u32 = 32;

fn cases_or(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .map_or(default, |n| (n * default).div_ceil(CASES))
}

/// Reinit with a random version: the record then holds v3 and v4 states side by side.
fn action_mixed() -> impl Strategy<Value = Action> {
    prop_oneof![
        6 => (side(), proptest::collection::vec(any::<u8>(), 0..=MAX_PAYLOAD))
            .prop_map(|(from, payload)| Action::Send { from, payload }),
        6 => any::<u16>().prop_map(Action::Deliver),
        1 => any::<u16>().prop_map(Action::Drop),
        2 => any::<u16>().prop_map(Action::Duplicate),
        3 => (any::<bool>(), any::<u16>(), corruption())
            .prop_map(|(delivered, pick, how)| Action::Corrupt { delivered, pick, how }),
        1 => (side(), any::<bool>(), any::<bool>())
            .prop_map(|(from, one_time, v4)| Action::Reinit { from, one_time, v4 }),
    ]
}

fn setup_with(v4: impl Strategy<Value = bool>) -> impl Strategy<Value = Setup> {
    (setup(), v4).prop_map(|(s, v4)| Setup { v4, ..s })
}

/// Bursts: `n` sends from one side (short payloads), then `n` deliveries of the oldest
/// in-flight message, with the odd drop, duplicate, corruption or out-of-order
/// delivery mixed in. Bursts alternate sides, as SPQR's chunked exchange needs, with
/// few DH steps, so epochs advance within a case and held-back deliveries cross epoch
/// boundaries.
fn burst(from: Side) -> impl Strategy<Value = Vec<Action>> {
    (
        30usize..=48,
        proptest::collection::vec(
            prop_oneof![
                12 => Just(None),
                1 => any::<u16>().prop_map(|i| Some(Action::Drop(i))),
                1 => any::<u16>().prop_map(|i| Some(Action::Duplicate(i))),
                2 => (any::<bool>(), any::<u16>(), corruption()).prop_map(|(delivered, pick, how)| {
                    Some(Action::Corrupt { delivered, pick, how })
                }),
                2 => any::<u16>().prop_map(|i| Some(Action::Deliver(i))),
            ],
            48,
        ),
    )
        .prop_map(move |(n, extra)| {
            let mut out = Vec::with_capacity(3 * n);
            for i in 0..n {
                out.push(Action::Send {
                    from,
                    payload: format!("{from:?} {i}").into_bytes(),
                });
            }
            for e in extra.into_iter().take(n) {
                out.push(Action::Deliver(0));
                out.extend(e);
            }
            out
        })
}

/// A v4 setup, then 10 to 13 bursts, alternating sides from the initiator's.
fn scenario_v4() -> impl Strategy<Value = Scenario> {
    (setup_with(Just(true)), 10usize..14)
        .prop_flat_map(|(setup, n)| {
            let first = setup.initiator;
            let bursts: Vec<_> = (0..n)
                .map(|i| burst(if i % 2 == 0 { first } else { first.other() }))
                .collect();
            (Just(setup), bursts)
        })
        .prop_map(|(setup, bursts)| Scenario {
            setup,
            actions: bursts.into_iter().flatten().collect(),
        })
}

fn scenario_mixed() -> impl Strategy<Value = Scenario> {
    (
        setup_with(any::<bool>()),
        proptest::collection::vec(action_mixed(), 0..80),
    )
        .prop_map(|(setup, actions)| Scenario { setup, actions })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases_or(V4_CASES)))]

    /// v4 sessions only, in bursts long enough for SPQR epochs to advance.
    #[test]
    fn v4_action_sequences_keep_every_promise(s in scenario_v4(), seed in any::<u64>()) {
        prop_assert_eq!(&Scenario::decode(&s.encode()), &s);
        actions::run(&s, seed);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases_or(MIXED_CASES)))]

    /// v3 and v4 sessions side by side: either version to start, either on every
    /// re-initiation.
    #[test]
    fn mixed_version_action_sequences_keep_every_promise(
        s in scenario_mixed(),
        seed in any::<u64>(),
    ) {
        prop_assert_eq!(&Scenario::decode(&s.encode()), &s);
        actions::run(&s, seed);
    }
}

fn add(total: &mut Stats, st: &Stats) {
    total.delivered += st.delivered;
    total.out_of_order += st.out_of_order;
    total.prekey_delivered += st.prekey_delivered;
    total.duplicates += st.duplicates;
    total.corruptions_refused += st.corruptions_refused;
    total.session_switches += st.session_switches;
    total.initiations += st.initiations;
    total.v4_initiations += st.v4_initiations;
    total.v4_delivered += st.v4_delivered;
    total.lost_to_epoch_limit += st.lost_to_epoch_limit;
    total.max_epoch = total.max_epoch.max(st.max_epoch);
}

/// The v4 property's cases really run SPQR through several epochs (counted from the
/// epochs the messages carry), and the mixed property's cases start both versions.
#[test]
fn generated_v4_scenarios_advance_spqr_epochs() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = scenario_v4();
    let mut total = Stats::default();
    let mut cases_past_epoch_2 = 0;
    for seed in 0..4u64 {
        let s = strategy.new_tree(&mut runner).unwrap().current();
        let st = actions::run(&s, seed);
        cases_past_epoch_2 += usize::from(st.max_epoch >= 3);
        add(&mut total, &st);
    }
    eprintln!("v4: {total:#?}, {cases_past_epoch_2} of 4 cases past epoch 2");
    assert!(total.max_epoch >= 3, "{total:?}");
    assert!(cases_past_epoch_2 >= 3, "{total:?}");
    assert!(total.v4_delivered > 500, "{total:?}");
    assert!(total.out_of_order > 20, "{total:?}");
    assert!(total.corruptions_refused > 20, "{total:?}");
    assert!(total.duplicates > 10, "{total:?}");

    let strategy = scenario_mixed();
    let mut mixed = Stats::default();
    for seed in 0..24u64 {
        let s = strategy.new_tree(&mut runner).unwrap().current();
        add(&mut mixed, &actions::run(&s, seed));
    }
    eprintln!("mixed: {mixed:#?}");
    assert!(mixed.v4_initiations > 10, "{mixed:?}");
    assert!(mixed.initiations - mixed.v4_initiations > 10, "{mixed:?}");
    assert!(mixed.v4_delivered > 50, "{mixed:?}");
    assert!(mixed.delivered - mixed.v4_delivered > 50, "{mixed:?}");
    assert!(mixed.session_switches > 0, "{mixed:?}");
}

/// SPQR's one legitimate loss: a v4 message held back until the receiver itself sent
/// two epochs further is refused (and the refusal changes nothing); one burst earlier
/// it still decrypts. Bursts of 50 keep the DH steps few, so the receiving chain is
/// still kept and only the epoch limit applies.
#[test]
fn spqr_epoch_limit_is_modelled() {
    let run = |bursts: usize| {
        let mut a = vec![send(Side::Alice, "held")];
        for b in 0..bursts {
            let from = if b % 2 == 0 { Side::Alice } else { Side::Bob };
            for i in 0..50 {
                a.push(send(from, &format!("{b}.{i}")));
            }
            for _ in 0..50 {
                a.push(Action::Deliver(1));
            }
        }
        let s = Scenario {
            setup: Setup {
                initiator: Side::Alice,
                one_time: true,
                simultaneous: None,
                v4: true,
            },
            actions: a,
        };
        actions::run(&s, 14)
    };
    // Bob's first epoch-3 message goes out in burst 10 (each epoch takes four bursts:
    // header, ct1, ek, ct2), while Alice's five chains are all still kept.
    let before = run(9);
    assert_eq!(
        (before.lost_to_epoch_limit, before.lost_to_chain_limit),
        (0, 0),
        "{before:?}"
    );
    let after = run(10);
    assert_eq!(
        (after.lost_to_epoch_limit, after.lost_to_chain_limit),
        (1, 0),
        "{after:?}"
    );
    assert_eq!(after.max_epoch_by_side, [3, 3], "{after:?}");
}
