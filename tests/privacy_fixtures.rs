//! Persisted privacy state (format 1 of `proto/policy.proto` and `proto/business.proto`)
//! must keep loading. The files in `tests/fixtures/privacy/` are committed and never
//! regenerated; `CONFIDE_WRITE_FIXTURES=1 cargo test --test privacy_fixtures` wrote them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use confide::business::{
    AttestationVerifier, BusinessId, ChatItem, DisclosureTracker, HostingAttestation, HostingMode,
    HostingTag, Notice, Provider, SelfManagedEndpoint, SignedAttestation,
};
use confide::policy::{
    AccountState, Activity, CollectionMethod, ConsentEvent, ConsentLedger, Decision, PolicyId,
    PolicySchedule, account_state, timeline_2021, utc_date,
};
use confide::{IdentityKey, IdentityKeyPair, Timestamp};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/privacy")
}

fn d(y: u32, m: u32, day: u32) -> Timestamp {
    utc_date(y, m, day).unwrap()
}

fn id(s: &str) -> PolicyId {
    PolicyId::new(s).unwrap()
}

fn write_fixtures() {
    let schedule = timeline_2021([b"terms 2016", b"terms 2021"], true);
    let mut ledger = ConsentLedger::new();
    for (v, dec, at) in [
        ("2016-08", Decision::Accepted, d(2016, 8, 28)),
        ("2016-08", Decision::LegacyOptOut, d(2016, 9, 10)),
        ("2021-01", Decision::Declined, d(2021, 5, 1)),
        ("2021-01", Decision::Accepted, d(2021, 7, 20)),
    ] {
        ledger
            .record(
                ConsentEvent::new(id(v), dec, at, CollectionMethod::InAppNotice),
                &schedule,
            )
            .unwrap();
    }
    let mut activity = Activity::new(d(2016, 8, 1));
    let mut t = d(2016, 8, 1);
    while t < d(2021, 7, 20) {
        activity.connected(t).unwrap();
        t = Timestamp::from_millis(t.as_millis() + 60 * 86_400_000);
    }
    activity.connected(d(2021, 7, 20)).unwrap();

    let mut rng = ChaCha20Rng::seed_from_u64(2021);
    let key = IdentityKeyPair::generate(&mut rng);
    let biz = BusinessId::new("acme-shop").unwrap();
    let vendor = Provider::with_fingerprint("Helpdesk Vendor Inc", [9; 32]).unwrap();
    let a1 = HostingAttestation::new(
        biz.clone(),
        HostingMode::SelfManaged(SelfManagedEndpoint::OwnApiServers),
        1,
        d(2021, 1, 1),
        d(2030, 1, 1),
    )
    .unwrap()
    .sign(&mut rng, &key);
    let a2 = HostingAttestation::new(
        biz.clone(),
        HostingMode::VendorManaged {
            vendor,
            retention_days: Some(90),
        },
        2,
        d(2021, 6, 1),
        d(2030, 1, 1),
    )
    .unwrap()
    .sign(&mut rng, &key);
    let mut verifier = AttestationVerifier::new();
    let mut tracker = DisclosureTracker::new(biz.clone());
    tracker
        .on_attestation(
            &verifier
                .verify(&a1, &biz, key.identity_key(), d(2021, 2, 1))
                .unwrap(),
        )
        .unwrap();
    tracker.on_message(1, Some(1)).unwrap();
    tracker.on_message(2, Some(3)).unwrap(); // held: serial 3 not seen yet
    let v2 = verifier
        .verify(&a2, &biz, key.identity_key(), d(2021, 6, 2))
        .unwrap();
    let d_ = dir();
    std::fs::create_dir_all(&d_).unwrap();
    let w = |n: &str, b: &[u8]| std::fs::write(d_.join(n), b).unwrap();
    w("schedule.bin", &schedule.to_bytes());
    w("ledger.bin", &ledger.to_bytes());
    w("activity.bin", &activity.to_bytes());
    w("business_identity.bin", &key.identity_key().serialize());
    w("attestation_1.bin", &a1.to_bytes());
    w("attestation_2.bin", &a2.to_bytes());
    w("verifier.bin", &verifier.to_bytes());
    w("tracker.bin", &tracker.to_bytes());
    w(
        "hosting_tag.bin",
        &HostingTag {
            business_id: biz,
            serial: 2,
        }
        .to_bytes(),
    );
    let _ = v2;
}

#[test]
fn format_1_privacy_fixtures_still_load() {
    if std::env::var_os("CONFIDE_WRITE_FIXTURES").is_some() {
        write_fixtures();
    }
    let d_ = dir();
    let read = |name: &str| std::fs::read(d_.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));

    let schedule = PolicySchedule::from_bytes(&read("schedule.bin")).unwrap();
    assert_eq!(
        schedule,
        timeline_2021([b"terms 2016", b"terms 2021"], true)
    );
    let ledger = ConsentLedger::from_bytes(&read("ledger.bin")).unwrap();
    assert_eq!(ledger.entries().len(), 4);
    assert_eq!(
        ledger.legacy_opt_out(d(2030, 1, 1)).unwrap().at,
        d(2016, 9, 10)
    );
    let activity = Activity::from_bytes(&read("activity.bin")).unwrap();
    assert_eq!(
        account_state(&ledger, &schedule, &activity, d(2021, 7, 21)).unwrap(),
        AccountState::Active
    );
    // Re-encoding is byte-identical: the format is stable.
    assert_eq!(ledger.to_bytes(), read("ledger.bin"));
    assert_eq!(schedule.to_bytes(), read("schedule.bin"));

    let key = IdentityKey::try_from(read("business_identity.bin").as_slice()).unwrap();
    let biz = BusinessId::new("acme-shop").unwrap();
    let mut verifier = AttestationVerifier::from_bytes(&read("verifier.bin")).unwrap();
    assert_eq!(verifier.highest_serial(&biz), Some(2));
    let a1 = SignedAttestation::from_bytes(&read("attestation_1.bin")).unwrap();
    let a2 = SignedAttestation::from_bytes(&read("attestation_2.bin")).unwrap();
    assert!(matches!(
        verifier.verify(&a1, &biz, &key, d(2022, 1, 1)),
        Err(confide::business::AttestationError::Downgrade { seen: 2, found: 1 })
    ));
    let v2 = verifier.verify(&a2, &biz, &key, d(2022, 1, 1)).unwrap();
    let mut tracker = DisclosureTracker::from_bytes(&read("tracker.bin")).unwrap();
    assert_eq!(tracker.current_notice(), Some(Notice::EndToEndEncrypted));
    assert_eq!(tracker.held_count(), 1);
    assert_eq!(
        tracker.on_attestation(&v2).unwrap(),
        [
            ChatItem::Notice(Notice::HostingChanged { serial: 2 }),
            ChatItem::Notice(Notice::VendorManaged)
        ]
    );
    let tag = HostingTag::from_bytes(&read("hosting_tag.bin")).unwrap();
    assert_eq!(tag.serial, 2);
}
