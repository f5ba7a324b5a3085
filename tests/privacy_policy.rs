//! Policy versions, the consent ledger, the account-state machine, the legacy opt-out and
//! data sharing, checked against the 2021 timeline in the facts file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use confide::Timestamp;
use confide::policy::{
    AccountState, Activity, ChangeKind, CollectionMethod, ConsentEvent, ConsentLedger,
    ConsentSnapshot, DataCategory, DataFlow, Decision, DeletionCause, DenialReason,
    EnforcementDurations, FamilyCategory, FlowError, LegalBasis, LoadError, PolicyId,
    PolicySchedule, PolicyVersion, Purpose, ReceiptContext, ReceiptError, Recipient,
    RecordConsentError, ScheduleChange, ScheduleError, SharingDecision, StateError, VersionConsent,
    account_state, evaluate, format_utc, state_history, timeline_2021, utc_date,
};

const DAY: u64 = 86_400_000;

fn d(y: u32, m: u32, day: u32) -> Timestamp {
    utc_date(y, m, day).unwrap()
}

fn plus(t: Timestamp, days: u64) -> Timestamp {
    Timestamp::from_millis(t.as_millis() + days * DAY)
}

fn id(s: &str) -> PolicyId {
    PolicyId::new(s).unwrap()
}

fn schedule(suspended: bool) -> PolicySchedule {
    timeline_2021([b"terms 2016", b"terms 2021"], suspended)
}

/// A 2016 user who accepted the legacy terms and opted out within the window.
fn legacy_user(s: &PolicySchedule) -> (ConsentLedger, Activity) {
    let mut l = ConsentLedger::new();
    let accepted = d(2016, 8, 28);
    l.record(
        ConsentEvent::new(
            id("2016-08"),
            Decision::Accepted,
            accepted,
            CollectionMethod::InAppNotice,
        ),
        s,
    )
    .unwrap();
    l.record(
        ConsentEvent::new(
            id("2016-08"),
            Decision::LegacyOptOut,
            d(2016, 9, 20),
            CollectionMethod::Settings,
        ),
        s,
    )
    .unwrap();
    let mut a = Activity::new(d(2016, 8, 20));
    let mut t = d(2016, 8, 20);
    while t < d(2020, 12, 1) {
        a.connected(t).unwrap();
        t = plus(t, 7);
    }
    (l, a)
}

/// Connects every day from..=to so inactivity never interferes.
fn connect_daily(a: &mut Activity, from: Timestamp, to: Timestamp) {
    let mut t = from;
    while t <= to {
        a.connected(t).unwrap();
        t = plus(t, 1);
    }
}

fn state(l: &ConsentLedger, s: &PolicySchedule, a: &Activity, now: Timestamp) -> AccountState {
    account_state(l, s, a, now).unwrap()
}

#[test]
fn the_deadline_moved_from_8_february_to_15_may() {
    let s = schedule(false);
    let v = id("2021-01");
    let before_move = s.terms(&v, d(2021, 1, 10)).unwrap();
    assert_eq!(before_move.accept_by, Some(d(2021, 2, 8)));
    let after_move = s.terms(&v, d(2021, 1, 16)).unwrap();
    assert_eq!(after_move.accept_by, Some(d(2021, 5, 15)));
    assert_eq!(after_move.effective, d(2021, 5, 15));
    assert_eq!(format_utc(after_move.effective), "2021-05-15T00:00:00Z");
    assert_eq!(s.required(d(2021, 1, 3)), None);
    assert_eq!(s.required(d(2021, 1, 4)).unwrap().id(), &v);
}

#[test]
fn a_decliner_goes_through_every_phase_and_accepting_restores_full_use() {
    let s = schedule(false);
    let (mut l, mut a) = legacy_user(&s);
    connect_daily(&mut a, d(2020, 12, 1), d(2021, 9, 1));
    assert_eq!(state(&l, &s, &a, d(2021, 1, 3)), AccountState::Active);
    // Notice in January: review requested, with the deadline as then known.
    assert_eq!(
        state(&l, &s, &a, d(2021, 1, 5)),
        AccountState::ReviewRequested {
            version: id("2021-01"),
            deadline: d(2021, 2, 8)
        }
    );
    l.record(
        ConsentEvent::new(
            id("2021-01"),
            Decision::NotNow,
            d(2021, 1, 6),
            CollectionMethod::InAppNotice,
        ),
        &s,
    )
    .unwrap();
    // 8 February passes without consequence: the deadline moved.
    assert_eq!(
        state(&l, &s, &a, d(2021, 2, 9)),
        AccountState::ReviewRequested {
            version: id("2021-01"),
            deadline: d(2021, 5, 15)
        }
    );
    l.record(
        ConsentEvent::new(
            id("2021-01"),
            Decision::Declined,
            d(2021, 5, 1),
            CollectionMethod::InAppBanner,
        ),
        &s,
    )
    .unwrap();
    let deadline = d(2021, 5, 15);
    let du = EnforcementDurations::default();
    let reminders = plus(deadline, u64::from(du.persistent_reminders_after_days));
    let limited_a = plus(reminders, u64::from(du.limited_a_after_days));
    let limited_b = plus(limited_a, u64::from(du.limited_b_after_days));
    assert!(matches!(
        state(&l, &s, &a, plus(deadline, 1)),
        AccountState::ReviewRequested { .. }
    ));
    assert!(
        matches!(state(&l, &s, &a, reminders), AccountState::PersistentReminders { since, .. } if since == reminders)
    );
    let sa = state(&l, &s, &a, limited_a);
    assert!(matches!(sa, AccountState::LimitedA { .. }));
    let caps = sa.capabilities();
    assert!(!caps.read_chat_list && !caps.send_messages && !caps.read_messages);
    assert!(caps.receive_calls && caps.receive_notifications && caps.reply_from_notifications);
    assert!(caps.export_chats && caps.request_report && caps.delete_account);
    let sb = state(&l, &s, &a, limited_b);
    assert!(matches!(sb, AccountState::LimitedB { .. }));
    let caps = sb.capabilities();
    assert!(!caps.receive_calls && !caps.receive_notifications && !caps.reply_from_notifications);
    assert!(caps.export_chats && caps.request_report && caps.delete_account);
    // Months later, still connecting: never deleted for declining.
    assert!(matches!(
        state(&l, &s, &a, d(2021, 9, 1)),
        AccountState::LimitedB { .. }
    ));
    // Accepting restores full use at once.
    let accept = plus(limited_b, 3);
    l.record(
        ConsentEvent::new(
            id("2021-01"),
            Decision::Accepted,
            accept,
            CollectionMethod::InAppNotice,
        ),
        &s,
    )
    .unwrap();
    assert_eq!(state(&l, &s, &a, accept), AccountState::Active);
    assert_eq!(
        state(&l, &s, &a, accept).capabilities(),
        AccountState::Active.capabilities()
    );
    // The 2016 opt-out survives the acceptance.
    assert!(l.legacy_opt_out(accept).is_some());
    let snap = ConsentSnapshot::at(&l, &s, accept);
    let ads = DataFlow::ToParentFamily {
        category: FamilyCategory::AccountRegistration,
        purpose: Purpose::Ads,
    };
    assert_eq!(
        evaluate(&ads, &snap),
        SharingDecision::Denied {
            reason: DenialReason::LegacyOptOut
        }
    );

    let history = state_history(&l, &s, &a, d(2021, 9, 1)).unwrap();
    let names: Vec<&str> = history.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(
        names,
        [
            "active",
            "review_requested",
            "review_requested",
            "persistent_reminders",
            "limited_a",
            "limited_b",
            "active"
        ]
    );
    assert_eq!(history[3].0, reminders);
    assert_eq!(history[6].0, accept);
}

#[test]
fn the_june_suspension_keeps_everyone_at_review_requested() {
    let s = schedule(true);
    let (l, mut a) = legacy_user(&s);
    connect_daily(&mut a, d(2020, 12, 1), d(2021, 12, 1));
    for day in [d(2021, 6, 3), d(2021, 7, 1), d(2021, 12, 1)] {
        assert!(
            matches!(state(&l, &s, &a, day), AccountState::ReviewRequested { .. }),
            "{day:?}"
        );
    }
    // Before the announcement the normal clock ran: reminders had started on 5 June? No:
    // 21 days after 15 May is 5 June, after the suspension, so they never started.
    let history = state_history(&l, &s, &a, d(2021, 12, 1)).unwrap();
    assert!(history.iter().all(|(_, s)| matches!(
        s,
        AccountState::Active | AccountState::ReviewRequested { .. }
    )));
}

#[test]
fn resumed_enforcement_restarts_the_clock() {
    let base = schedule(true);
    let mut changes = base.changes().to_vec();
    let resumed = d(2021, 10, 1);
    changes.push(ScheduleChange {
        announced: resumed,
        version: id("2021-01"),
        kind: ChangeKind::EnforcementResumed,
    });
    let s = PolicySchedule::new(
        base.versions().to_vec(),
        changes,
        EnforcementDurations::default(),
    )
    .unwrap();
    let (l, mut a) = legacy_user(&s);
    connect_daily(&mut a, d(2020, 12, 1), d(2022, 1, 1));
    assert!(matches!(
        state(&l, &s, &a, plus(resumed, 20)),
        AccountState::ReviewRequested { .. }
    ));
    assert!(matches!(
        state(&l, &s, &a, plus(resumed, 21)),
        AccountState::PersistentReminders { .. }
    ));
}

#[test]
fn inactivity_deletes_after_120_days_and_nothing_else_does() {
    let s = schedule(false);
    let (l, mut a) = legacy_user(&s);
    let last = d(2021, 6, 1);
    connect_daily(&mut a, d(2020, 12, 1), last);
    assert!(matches!(
        state(&l, &s, &a, plus(last, 29)),
        AccountState::LimitedA { .. }
            | AccountState::PersistentReminders { .. }
            | AccountState::LimitedB { .. }
    ));
    assert_eq!(
        state(&l, &s, &a, plus(last, 30)),
        AccountState::Inactive {
            last_connected: last,
            deletion_due: plus(last, 120)
        }
    );
    assert!(matches!(
        state(&l, &s, &a, plus(last, 119)),
        AccountState::Inactive { .. }
    ));
    assert_eq!(
        state(&l, &s, &a, plus(last, 120)),
        AccountState::Deleted {
            at: plus(last, 120),
            cause: DeletionCause::Inactivity
        }
    );
    // A later connection does not resurrect it: the gap already deleted it.
    a.connected(plus(last, 200)).unwrap();
    assert!(matches!(
        state(&l, &s, &a, plus(last, 201)),
        AccountState::Deleted {
            cause: DeletionCause::Inactivity,
            ..
        }
    ));
    let caps = state(&l, &s, &a, plus(last, 201)).capabilities();
    assert!(!caps.export_chats && !caps.delete_account);
}

#[test]
fn user_deletion_is_possible_in_every_phase() {
    let s = schedule(false);
    let (l, mut a) = legacy_user(&s);
    connect_daily(&mut a, d(2020, 12, 1), d(2021, 7, 20));
    assert!(
        state(&l, &s, &a, d(2021, 7, 20))
            .capabilities()
            .delete_account
    );
    a.delete_account(d(2021, 7, 21)).unwrap();
    assert_eq!(
        state(&l, &s, &a, d(2021, 7, 21)),
        AccountState::Deleted {
            at: d(2021, 7, 21),
            cause: DeletionCause::UserRequest
        }
    );
    assert_eq!(
        a.connected(d(2021, 7, 22)),
        Err(confide::policy::ActivityError::AlreadyDeleted)
    );
    assert_eq!(
        account_state(&l, &s, &a, d(2014, 1, 1)),
        Err(StateError::BeforeRegistration)
    );
}

#[test]
fn withdrawing_restarts_the_phase_clock_from_the_withdrawal() {
    let s = schedule(false);
    let (mut l, mut a) = legacy_user(&s);
    connect_daily(&mut a, d(2020, 12, 1), d(2021, 12, 31));
    l.record(
        ConsentEvent::new(
            id("2021-01"),
            Decision::Accepted,
            d(2021, 2, 1),
            CollectionMethod::InAppNotice,
        ),
        &s,
    )
    .unwrap();
    let w = d(2021, 9, 1);
    l.record(
        ConsentEvent::new(
            id("2021-01"),
            Decision::Withdrawn,
            w,
            CollectionMethod::Settings,
        ),
        &s,
    )
    .unwrap();
    assert_eq!(
        l.consent(&id("2021-01"), w),
        VersionConsent::Withdrawn { at: w }
    );
    assert!(matches!(
        state(&l, &s, &a, plus(w, 1)),
        AccountState::ReviewRequested { .. }
    ));
    assert!(matches!(
        state(&l, &s, &a, plus(w, 21)),
        AccountState::PersistentReminders { .. }
    ));
}

#[test]
fn ledger_rules_are_typed_errors() {
    let s = schedule(false);
    let mut l = ConsentLedger::new();
    let v16 = id("2016-08");
    let v21 = id("2021-01");
    let ev =
        |v: &PolicyId, dec, at| ConsentEvent::new(v.clone(), dec, at, CollectionMethod::Settings);
    assert_eq!(
        l.record(ev(&id("nope"), Decision::Accepted, d(2021, 1, 5)), &s),
        Err(RecordConsentError::UnknownVersion)
    );
    assert_eq!(
        l.record(ev(&v21, Decision::Accepted, d(2020, 1, 5)), &s),
        Err(RecordConsentError::NotYetPublished {
            published: d(2021, 1, 4)
        })
    );
    assert_eq!(
        l.record(ev(&v16, Decision::LegacyOptOut, d(2016, 8, 26)), &s),
        Err(RecordConsentError::NotAccepted)
    );
    assert_eq!(
        l.record(ev(&v16, Decision::Withdrawn, d(2016, 8, 26)), &s),
        Err(RecordConsentError::NotAccepted)
    );
    l.record(ev(&v16, Decision::Accepted, d(2016, 8, 26)), &s)
        .unwrap();
    assert_eq!(
        l.record(ev(&v16, Decision::Declined, d(2016, 8, 27)), &s),
        Err(RecordConsentError::AlreadyAccepted)
    );
    // 30 days after acceptance the window is still open; a day later it is closed.
    assert_eq!(
        l.record(ev(&v16, Decision::LegacyOptOut, d(2016, 9, 26)), &s),
        Err(RecordConsentError::WindowClosed {
            closed_at: d(2016, 9, 25)
        })
    );
    assert_eq!(
        l.record(ev(&v21, Decision::LegacyOptOut, d(2021, 1, 5)), &s),
        Err(RecordConsentError::NoOptOutOffered)
    );
    assert_eq!(
        l.record(ev(&v16, Decision::Accepted, d(2016, 8, 1)), &s),
        Err(RecordConsentError::OutOfOrder {
            newest: d(2016, 8, 26)
        })
    );
    assert_eq!(l.entries().len(), 1, "refused events leave no trace");
    assert_eq!(l.legacy_opt_out(d(2030, 1, 1)), None);
}

#[test]
fn the_opt_out_window_closes_exactly_30_days_after_acceptance() {
    let s = schedule(false);
    let mut l = ConsentLedger::new();
    let v16 = id("2016-08");
    l.record(
        ConsentEvent::new(
            v16.clone(),
            Decision::Accepted,
            d(2016, 8, 26),
            CollectionMethod::InAppNotice,
        ),
        &s,
    )
    .unwrap();
    l.record(
        ConsentEvent::new(
            v16.clone(),
            Decision::LegacyOptOut,
            d(2016, 9, 25),
            CollectionMethod::Settings,
        ),
        &s,
    )
    .unwrap();
    assert_eq!(
        l.record(
            ConsentEvent::new(
                v16,
                Decision::LegacyOptOut,
                d(2016, 9, 25),
                CollectionMethod::Settings
            ),
            &s
        ),
        Err(RecordConsentError::AlreadyOptedOut)
    );
    // Withdrawing or re-accepting anything never clears it.
    l.record(
        ConsentEvent::new(
            id("2021-01"),
            Decision::Accepted,
            d(2021, 5, 1),
            CollectionMethod::InAppNotice,
        ),
        &s,
    )
    .unwrap();
    l.record(
        ConsentEvent::new(
            id("2016-08"),
            Decision::Withdrawn,
            d(2021, 5, 2),
            CollectionMethod::Settings,
        ),
        &s,
    )
    .unwrap();
    l.record(
        ConsentEvent::new(
            id("2016-08"),
            Decision::Accepted,
            d(2021, 5, 3),
            CollectionMethod::Settings,
        ),
        &s,
    )
    .unwrap();
    assert_eq!(l.legacy_opt_out(d(2030, 1, 1)).unwrap().at, d(2016, 9, 25));
}

#[test]
fn tampering_with_the_ledger_is_detected() {
    let s = schedule(false);
    let (l, _) = legacy_user(&s);
    let bytes = l.to_bytes();
    assert_eq!(ConsentLedger::from_bytes(&bytes).unwrap(), l);
    // Flip the decision of the second entry (the opt-out) to "accepted" by re-encoding.
    let as_text = format!("{:?}", l.entries()[1].event().decision);
    assert_eq!(as_text, "LegacyOptOut");
    let needle = [0x18u8, 5]; // field 3 (decision), varint 5
    let pos = bytes.windows(2).rposition(|w| w == needle).unwrap();
    let mut edited = bytes.clone();
    edited[pos + 1] = 1;
    assert_eq!(
        ConsentLedger::from_bytes(&edited),
        Err(LoadError::LedgerTampered { index: 1 })
    );
    // A changed timestamp too.
    let mut edited = bytes.clone();
    let last = edited.len() - 40;
    edited[last] ^= 1;
    assert!(ConsentLedger::from_bytes(&edited).is_err());
    assert!(matches!(
        ConsentLedger::from_bytes(&[1, 2, 3]),
        Err(LoadError::Malformed)
    ));
    assert_eq!(l.head(), *l.entries()[1].hash());
    assert_eq!(l.entries()[1].prev_hash(), l.entries()[0].hash());
}

#[test]
fn schedules_are_validated() {
    let v = PolicyVersion::new(id("a"), d(2021, 1, 4), d(2021, 1, 1), b"x");
    assert_eq!(
        PolicySchedule::new(vec![v], vec![], EnforcementDurations::default()),
        Err(ScheduleError::BeforePublication { id: id("a") })
    );
    let v = PolicyVersion::new(id("a"), d(2021, 1, 4), d(2021, 1, 5), b"x");
    assert_eq!(
        PolicySchedule::new(
            vec![v.clone(), v.clone()],
            vec![],
            EnforcementDurations::default()
        ),
        Err(ScheduleError::DuplicateVersion { id: id("a") })
    );
    let change = ScheduleChange {
        announced: d(2021, 1, 5),
        version: id("b"),
        kind: ChangeKind::EnforcementSuspended,
    };
    assert_eq!(
        PolicySchedule::new(
            vec![v.clone()],
            vec![change],
            EnforcementDurations::default()
        ),
        Err(ScheduleError::UnknownVersion { id: id("b") })
    );
    let mut du = EnforcementDurations::default();
    du.inactive_after_days = 200;
    assert_eq!(
        PolicySchedule::new(vec![v], vec![], du),
        Err(ScheduleError::InconsistentDurations)
    );
    assert!(PolicyId::new("").is_err());
    assert!(PolicyId::new("a<b").is_err());
    assert!(PolicyId::new("x".repeat(65)).is_err());
    let s = schedule(true);
    assert_eq!(PolicySchedule::from_bytes(&s.to_bytes()).unwrap(), s);
}

#[test]
fn protected_categories_have_no_path_to_the_parent_family() {
    for c in [
        DataCategory::MessageContent,
        DataCategory::Location,
        DataCategory::Contacts,
        DataCategory::WhoMessagesWhom,
    ] {
        for p in Purpose::ALL {
            assert_eq!(
                DataFlow::new(Recipient::ParentFamily, c, p),
                Err(FlowError::NoPathToParentFamily { category: c })
            );
        }
        assert!(FamilyCategory::try_from(c).is_err());
    }
    for c in FamilyCategory::ALL {
        assert!(FamilyCategory::try_from(DataCategory::from(c)).is_ok());
    }
}

#[test]
fn sharing_rules_follow_the_facts() {
    let s = schedule(false);
    let (mut l, _) = legacy_user(&s);
    let now = d(2021, 1, 10);
    let snap = ConsentSnapshot::at(&l, &s, now);
    let flow = |r, c, p| DataFlow::new(r, c, p).unwrap();
    // Content and location are end-to-end encrypted, to the operator too.
    for c in [DataCategory::MessageContent, DataCategory::Location] {
        for p in Purpose::ALL {
            let dec = evaluate(&flow(Recipient::Operator, c, p), &snap);
            assert!(
                matches!(
                    dec,
                    SharingDecision::Denied {
                        reason: DenialReason::EndToEndEncrypted
                            | DenialReason::NotAccepted { .. }
                            | DenialReason::LegacyOptOut
                    }
                ),
                "{c:?} {p:?}"
            );
        }
    }
    // The family still gets data for infrastructure, security and analytics.
    let infra = evaluate(
        &flow(
            Recipient::ParentFamily,
            DataCategory::IpAddress,
            Purpose::InfrastructureAndDelivery,
        ),
        &snap,
    );
    assert!(matches!(
        infra,
        SharingDecision::Allowed {
            basis: LegalBasis::LegitimateInterests,
            ..
        }
    ));
    // Who-messages-whom: only transiently, for delivery.
    let wmw = evaluate(
        &flow(
            Recipient::Operator,
            DataCategory::WhoMessagesWhom,
            Purpose::InfrastructureAndDelivery,
        ),
        &snap,
    );
    assert!(matches!(
        wmw,
        SharingDecision::Allowed {
            retention: confide::policy::Retention::UntilDelivered,
            ..
        }
    ));
    // Business hosting waits for the 2021 version.
    let hosting = flow(
        Recipient::HostingProvider,
        DataCategory::MessageContent,
        Purpose::BusinessMessagingHosting,
    );
    assert_eq!(
        evaluate(&hosting, &snap),
        SharingDecision::Denied {
            reason: DenialReason::NotAccepted {
                version: id("2021-01")
            }
        }
    );
    l.record(
        ConsentEvent::new(
            id("2021-01"),
            Decision::Accepted,
            d(2021, 1, 11),
            CollectionMethod::InAppNotice,
        ),
        &s,
    )
    .unwrap();
    let snap = ConsentSnapshot::at(&l, &s, d(2021, 1, 11));
    assert!(matches!(
        evaluate(&hosting, &snap),
        SharingDecision::Allowed {
            basis: LegalBasis::ProcessorForBusiness,
            ..
        }
    ));
    // Ads and product experiences stay denied for the opted-out user, for every recipient.
    for r in Recipient::ALL {
        for c in DataCategory::ALL {
            for p in [Purpose::Ads, Purpose::ProductExperiences] {
                if let Ok(f) = DataFlow::new(r, c, p) {
                    assert_eq!(
                        evaluate(&f, &snap),
                        SharingDecision::Denied {
                            reason: DenialReason::LegacyOptOut
                        }
                    );
                }
            }
        }
    }
    // A user without the opt-out who accepted 2016: ads to the family rest on that consent.
    let mut l2 = ConsentLedger::new();
    l2.record(
        ConsentEvent::new(
            id("2016-08"),
            Decision::Accepted,
            d(2016, 9, 1),
            CollectionMethod::InAppNotice,
        ),
        &s,
    )
    .unwrap();
    let snap2 = ConsentSnapshot::at(&l2, &s, d(2017, 1, 1));
    let ads = evaluate(
        &flow(
            Recipient::ParentFamily,
            DataCategory::DeviceInfo,
            Purpose::Ads,
        ),
        &snap2,
    );
    assert!(
        matches!(ads, SharingDecision::Allowed { basis: LegalBasis::Consent { ref version }, .. } if *version == id("2016-08"))
    );
}

#[test]
fn purposes_map_to_dpv_terms() {
    let dpv: Vec<&str> = Purpose::ALL.iter().map(|p| p.dpv()).collect();
    assert_eq!(
        dpv,
        [
            "dpv:ServiceProvision",
            "dpv:EnforceSecurity",
            "dpv:ResearchAndDevelopment",
            "dpv:PersonalisedAdvertising",
            "dpv:ServicePersonalisation",
            "dpv:CommunicationForCustomerCare"
        ]
    );
    assert_eq!(
        Decision::NotNow.dpv_consent_status(),
        "dpv:ConsentRequestDeferred"
    );
    assert_eq!(
        Decision::Withdrawn.dpv_consent_status(),
        "dpv:ConsentWithdrawn"
    );
}

fn ctx() -> ReceiptContext {
    ReceiptContext {
        jurisdiction: "IE".into(),
        language: "en".into(),
        pii_principal_id: "+15550100".into(),
        controller: "Example Messaging Ltd".into(),
        contact: "Data Protection Officer".into(),
        address: "1 Example Street, Dublin".into(),
        email: "dpo@example.com".into(),
        phone: "+3531000000".into(),
        policy_url: "https://example.com/privacy".into(),
        service: "Example Messenger".into(),
    }
}

#[test]
fn every_entry_exports_a_kantara_receipt() {
    let s = schedule(false);
    let (mut l, _) = legacy_user(&s);
    l.record(
        ConsentEvent::new(
            id("2021-01"),
            Decision::Declined,
            d(2021, 5, 1),
            CollectionMethod::InAppBanner,
        ),
        &s,
    )
    .unwrap();
    for i in 0..l.entries().len() {
        let text = l.receipt(i, &s, &ctx()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["version"], "KI-CR-v1.1.0");
        assert_eq!(v["jurisdiction"], "IE");
        assert_eq!(
            v["consentTimestamp"],
            l.entries()[i].event().at.as_millis() / 1000
        );
        assert_eq!(
            v["piiControllers"][0]["piiController"],
            "Example Messaging Ltd"
        );
        let id = v["consentReceiptID"].as_str().unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "8");
        let purposes = v["services"][0]["purposes"].as_array().unwrap();
        assert_eq!(purposes[0]["primaryPurpose"], true);
        for p in purposes {
            for key in [
                "purpose",
                "purposeCategory",
                "consentType",
                "piiCategory",
                "termination",
                "thirdPartyDisclosure",
                "thirdPartyName",
            ] {
                assert!(p.get(key).is_some(), "{key}");
            }
        }
        assert_eq!(v["x-confide"]["entryHash"].as_str().unwrap().len(), 64);
    }
    let r0: serde_json::Value = serde_json::from_str(&l.receipt(0, &s, &ctx()).unwrap()).unwrap();
    let purposes = r0["services"][0]["purposes"].as_array().unwrap();
    let ads = purposes.iter().find(|p| p["purpose"] == "Ads").unwrap();
    assert_eq!(ads["purposeCategory"][0], "6 - Marketing");
    assert_eq!(ads["thirdPartyDisclosure"], true);
    let r2: serde_json::Value = serde_json::from_str(&l.receipt(2, &s, &ctx()).unwrap()).unwrap();
    assert_eq!(r2["x-confide"]["decision"], "declined");
    assert_eq!(r2["x-confide"]["dpvConsentStatus"], "dpv:ConsentRefused");
    assert_eq!(
        l.receipt(9, &s, &ctx()),
        Err(ReceiptError::NoSuchEntry { index: 9 })
    );
}

#[test]
fn error_texts_carry_no_user_data() {
    let e = RecordConsentError::WindowClosed {
        closed_at: d(2016, 9, 25),
    };
    assert_eq!(e.to_string(), "the legacy opt-out window has closed");
    let e = ScheduleError::DuplicateVersion {
        id: id("secret-id"),
    };
    assert!(!e.to_string().contains("secret"));
    let e = FlowError::NoPathToParentFamily {
        category: DataCategory::Contacts,
    };
    assert!(!e.to_string().contains("Contacts"));
}

#[test]
fn activity_round_trips_and_rejects_disorder() {
    let mut a = Activity::new(d(2020, 1, 1));
    assert_eq!(
        a.connected(d(2019, 1, 1)),
        Err(confide::policy::ActivityError::BeforeRegistration)
    );
    a.connected(d(2020, 2, 1)).unwrap();
    assert_eq!(
        a.connected(d(2020, 1, 15)),
        Err(confide::policy::ActivityError::OutOfOrder)
    );
    assert_eq!(Activity::from_bytes(&a.to_bytes()).unwrap(), a);
}
