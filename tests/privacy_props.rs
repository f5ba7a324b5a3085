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
    fn an_opted_out_user_is_never_used_for_ads(events in decisions(), probes in prop::collection::vec(0u64..3000, 1..6)) {
        let s = schedule();
        let l = build_ledger(&events);
        for day in probes {
            let now = t(day);
            let snap = ConsentSnapshot::at(&l, s, now);
            prop_assert_eq!(snap.legacy_opt_out(), l.legacy_opt_out(now).is_some());
            if !snap.legacy_opt_out() {
                continue;
            }
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
    }

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
