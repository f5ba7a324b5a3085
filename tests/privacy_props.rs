//! Property tests over random event sequences:
//! - an opted-out user's data is never allowed for ads or product experiences;
//! - no account (decliners included) is deleted before 120 days without a connection,
//!   unless its user deleted it;
//! - a business message is never handed out before the notice for its hosting.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::OnceLock;

use confide::business::{
    AttestationVerifier, BusinessId, ChatItem, DisclosureTracker, HostingAttestation, HostingMode,
    Notice, Provider, SelfManagedEndpoint, SignedAttestation,
};
use confide::policy::{
    AccountState, Activity, CollectionMethod, ConsentEvent, ConsentLedger, ConsentSnapshot,
    DataCategory, DataFlow, Decision, DeletionCause, PolicyId, PolicySchedule, Purpose, Recipient,
    account_state, evaluate, timeline_2021,
};
use confide::{IdentityKeyPair, Timestamp};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const DAY: u64 = 86_400_000;
/// 1 Aug 2016.
const START: u64 = 1_470_009_600_000;

fn t(day: u64) -> Timestamp {
    Timestamp::from_millis(START + day * DAY)
}

fn schedule() -> &'static PolicySchedule {
    static S: OnceLock<PolicySchedule> = OnceLock::new();
    S.get_or_init(|| timeline_2021([b"a", b"b"], false))
}

fn decisions() -> impl Strategy<Value = Vec<(bool, u8, u64)>> {
    // (which version, which decision, days since the previous event)
    prop::collection::vec((any::<bool>(), 0u8..5, 0u64..400), 0..14)
}

fn build_ledger(events: &[(bool, u8, u64)]) -> ConsentLedger {
    let s = schedule();
    let mut l = ConsentLedger::new();
    let mut day = 0;
    for &(new, dec, gap) in events {
        day += gap;
        let version = PolicyId::new(if new { "2021-01" } else { "2016-08" }).unwrap();
        let decision = [
            Decision::Accepted,
            Decision::Declined,
            Decision::NotNow,
            Decision::Withdrawn,
            Decision::LegacyOptOut,
        ][usize::from(dec)];
        // Refused events are fine: the ledger keeps only what the rules allow.
        let _ = l.record(
            ConsentEvent::new(version, decision, t(day), CollectionMethod::Settings),
            s,
        );
    }
    l
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn nobody_is_deleted_before_120_days_without_connection(
        events in decisions(),
        gaps in prop::collection::vec(1u64..150, 0..40),
        probes in prop::collection::vec(0u64..4000, 1..8),
    ) {
        let s = schedule();
        let l = build_ledger(&events);
        let mut a = Activity::new(t(0));
        let mut day = 0;
        let mut connections = vec![0u64];
        for g in gaps {
            day += g;
            a.connected(t(day)).unwrap();
            connections.push(day);
        }
        for probe in probes {
            let state = account_state(&l, s, &a, t(probe)).unwrap();
            // The first gap of 120 days or more, up to the probe.
            let mut due = None;
            let mut prev = 0;
            for &c in connections.iter().skip(1).filter(|c| **c <= probe) {
                if c - prev >= 120 {
                    due = Some(prev + 120);
                    break;
                }
                prev = c;
            }
            if due.is_none() && probe - prev >= 120 {
                due = Some(prev + 120);
            }
            match (state, due) {
                (AccountState::Deleted { at, cause }, Some(due)) => {
                    prop_assert_eq!(cause, DeletionCause::Inactivity);
                    prop_assert_eq!(at, t(due));
                }
                (AccountState::Deleted { .. }, None) => prop_assert!(false, "deleted without 120 idle days"),
                (other, Some(_)) => prop_assert!(false, "not deleted after 120 idle days: {:?}", other),
                (_, None) => {}
            }
        }
    }
}

struct Pool {
    business: BusinessId,
    key: IdentityKeyPair,
    /// signed[mode][serial - 1]
    signed: Vec<Vec<SignedAttestation>>,
    modes: Vec<HostingMode>,
}

const SERIALS: u64 = 8;

fn pool() -> &'static Pool {
    static P: OnceLock<Pool> = OnceLock::new();
    P.get_or_init(|| {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let key = IdentityKeyPair::generate(&mut rng);
        let business = BusinessId::new("biz").unwrap();
        let modes = vec![
            HostingMode::SelfManaged(SelfManagedEndpoint::OwnApiServers),
            HostingMode::OperatorCloud {
                operator: Provider::with_fingerprint("Cloud", [1; 32]).unwrap(),
                retention_days: 30,
            },
            HostingMode::VendorManaged {
                vendor: Provider::with_fingerprint("Vendor", [2; 32]).unwrap(),
                retention_days: None,
            },
        ];
        let signed = modes
            .iter()
            .map(|m| {
                (1..=SERIALS)
                    .map(|serial| {
                        HostingAttestation::new(business.clone(), m.clone(), serial, t(0), t(100))
                            .unwrap()
                            .sign(&mut rng, &key)
                    })
                    .collect()
            })
            .collect();
        Pool {
            business,
            key,
            signed,
            modes,
        }
    })
}

#[derive(Clone, Debug)]
enum Step {
    /// Publish the next serial with this mode (index into the pool).
    Attest(usize),
    /// A message tagged with the current serial plus this offset (0 = current, 1 = not
    /// yet published), or untagged.
    Message(Option<u64>),
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        prop_oneof![
            (0usize..3).prop_map(Step::Attest),
            prop_oneof![Just(None), (0u64..2).prop_map(Some)].prop_map(Step::Message),
        ],
        1..40,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn no_business_message_before_its_hosting_notice(steps in steps()) {
        let p = pool();
        let mut verifier = AttestationVerifier::new();
        let mut tracker = DisclosureTracker::new(p.business.clone());
        let mut published: Vec<usize> = Vec::new(); // mode index per serial - 1
        let mut shown: Vec<ChatItem> = Vec::new();
        let mut sent = 0u64;
        for step in steps {
            match step {
                Step::Attest(mode) => {
                    let serial = published.len() as u64 + 1;
                    if serial > SERIALS {
                        continue;
                    }
                    published.push(mode);
                    let v = verifier
                        .verify(&p.signed[mode][serial as usize - 1], &p.business, p.key.identity_key(), t(1))
                        .unwrap();
                    shown.extend(tracker.on_attestation(&v).unwrap());
                }
                Step::Message(offset) => {
                    let serial = offset.map(|o| published.len() as u64 + o).filter(|s| *s >= 1 && *s <= SERIALS);
                    sent += 1;
                    shown.extend(tracker.on_message(sent, serial).unwrap());
                }
            }
        }
        let mut last_kind: Option<Notice> = None;
        let mut delivered = 0u64;
        for item in &shown {
            match *item {
                ChatItem::Notice(n @ (Notice::EndToEndEncrypted | Notice::OperatorHosted | Notice::VendorManaged)) => {
                    last_kind = Some(n);
                }
                ChatItem::Message { id, hosting_serial } => {
                    delivered += 1;
                    prop_assert_eq!(id, delivered, "messages keep their order");
                    let mode = &p.modes[published[hosting_serial as usize - 1]];
                    prop_assert_eq!(last_kind, Some(Notice::for_mode(mode)), "message {} shown under the wrong notice", id);
                }
                _ => {}
            }
        }
        prop_assert_eq!(delivered + tracker.held_count() as u64, sent);
    }
}

/// Ledgers that reach the case the opt-out rule exists for: the 2016 terms accepted
/// (they introduce ads and product experiences), the opt-out taken inside its 30 days,
/// then anything, then the 2016 terms accepted again (a no-op unless withdrawn between).
/// Half the cases; the other half are the plain random ledgers.
fn opted_out_then_accepted() -> impl Strategy<Value = Vec<(bool, u8, u64)>> {
    let structured = (
        24u64..60,
        0u64..=30,
        prop::collection::vec((any::<bool>(), 0u8..5, 0u64..400), 0..6),
        0u64..400,
    )
        .prop_map(|(accept, opt_out, middle, again)| {
            let mut events = vec![(false, 0, accept), (false, 4, opt_out)];
            events.extend(middle);
            events.push((false, 0, again));
            events
        });
    prop_oneof![decisions(), structured]
}

/// Whatever the ledger, an opted-out user's data never flows for ads or product
/// experiences. The counter makes sure the interesting branch ran: at least a quarter
/// of the cases probe a moment when the opt-out is on record and the terms that
/// introduce those purposes are accepted (without the rule, those flows would pass).
#[test]
fn an_opted_out_user_is_never_used_for_ads() {
    use proptest::test_runner::{Config, TestRunner};
    use std::cell::Cell;
    const CASES: u32 = 256;
    let legacy = PolicyId::new("2016-08").unwrap();
    let interesting = Cell::new(0u32);
    let mut runner = TestRunner::new(Config::with_cases(CASES));
    let strategy = (
        opted_out_then_accepted(),
        prop::collection::vec(0u64..3000, 1..6),
    );
    runner
        .run(&strategy, |(events, probes)| {
            let s = schedule();
            let l = build_ledger(&events);
            let mut hit = false;
            for day in probes {
                let now = t(day);
                let snap = ConsentSnapshot::at(&l, s, now);
                prop_assert_eq!(snap.legacy_opt_out(), l.legacy_opt_out(now).is_some());
                if !snap.legacy_opt_out() {
                    continue;
                }
                hit |= l.is_accepted(&legacy, now);
                for r in Recipient::ALL {
                    for c in DataCategory::ALL {
                        for p in [Purpose::Ads, Purpose::ProductExperiences] {
                            if let Ok(flow) = DataFlow::new(r, c, p) {
                                prop_assert!(!evaluate(&flow, &snap).is_allowed(), "{:?}", flow);
                            }
                        }
                    }
                }
                // Once recorded, at every later probe it is still there.
                prop_assert!(l.legacy_opt_out(t(day + 10_000)).is_some());
            }
            interesting.set(interesting.get() + u32::from(hit));
            Ok(())
        })
        .unwrap();
    let hits = interesting.get();
    eprintln!("opted out and accepted at a probe: {hits} of {CASES} cases");
    assert!(
        hits * 4 >= CASES,
        "only {hits} of {CASES} cases reached the opt-out rule"
    );
}
