//! Shared builders for the privacy tests: a 2021-timeline user with a hostile group name.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use confide::IdentityKeyPair;
use confide::Timestamp;
use confide::business::{
    AttestationVerifier, BusinessId, DisclosureTracker, HostingAttestation, HostingMode, Provider,
};
use confide::export::{
    AccountDevice, AccountInfo, AccountReport, BusinessChat, Group, MessageTimer, PrivacySettings,
    Profile, ReportSources, Visibility,
};
use confide::policy::{
    Activity, CollectionMethod, ConsentEvent, ConsentLedger, Decision, PolicyId, PolicySchedule,
    timeline_2021, utc_date,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

pub(crate) const SCRIPT_GROUP: &str = "<script>document.title='pwned';document.body.appendChild(document.createElement('blink')).id='xss-script'</script>";
pub(crate) const IMG_GROUP: &str =
    "<img src=x onerror=\"document.title='pwned-img';document.body.setAttribute('data-xss','1')\">";

pub(crate) fn d(y: u32, m: u32, day: u32) -> Timestamp {
    utc_date(y, m, day).unwrap()
}

pub(crate) fn id(s: &str) -> PolicyId {
    PolicyId::new(s).unwrap()
}

pub(crate) struct World {
    pub(crate) schedule: PolicySchedule,
    pub(crate) ledger: ConsentLedger,
    pub(crate) activity: Activity,
    pub(crate) info: AccountInfo,
}

impl World {
    pub(crate) fn report(&self, now: Timestamp) -> AccountReport {
        let src = ReportSources {
            info: &self.info,
            ledger: &self.ledger,
            schedule: &self.schedule,
            activity: &self.activity,
            identity_assurance: &[],
        };
        AccountReport::build(&src, now).unwrap()
    }
}

/// A user who accepted the 2016 terms, opted out, declined 2021, then accepted.
pub(crate) fn world() -> World {
    let schedule = timeline_2021([b"terms 2016", b"terms 2021"], false);
    let mut ledger = ConsentLedger::new();
    let rec = |l: &mut ConsentLedger, v: &str, dec, at, m| {
        l.record(ConsentEvent::new(id(v), dec, at, m), &schedule)
            .unwrap();
    };
    rec(
        &mut ledger,
        "2016-08",
        Decision::Accepted,
        d(2016, 8, 28),
        CollectionMethod::InAppNotice,
    );
    rec(
        &mut ledger,
        "2016-08",
        Decision::LegacyOptOut,
        d(2016, 9, 10),
        CollectionMethod::Settings,
    );
    rec(
        &mut ledger,
        "2021-01",
        Decision::NotNow,
        d(2021, 1, 6),
        CollectionMethod::InAppNotice,
    );
    rec(
        &mut ledger,
        "2021-01",
        Decision::Declined,
        d(2021, 5, 1),
        CollectionMethod::InAppBanner,
    );
    rec(
        &mut ledger,
        "2021-01",
        Decision::Accepted,
        d(2021, 7, 20),
        CollectionMethod::InAppNotice,
    );
    let mut activity = Activity::new(d(2016, 8, 1));
    let mut t = d(2016, 8, 1);
    while t < d(2021, 8, 1) {
        activity.connected(t).unwrap();
        t = Timestamp::from_millis(t.as_millis() + 5 * 86_400_000);
    }
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let biz_key = IdentityKeyPair::generate(&mut rng);
    let biz = BusinessId::new("acme-shop").unwrap();
    let att = HostingAttestation::new(
        biz.clone(),
        HostingMode::OperatorCloud {
            operator: Provider::new("Operator <Cloud> & Co", biz_key.identity_key()).unwrap(),
            retention_days: 30,
        },
        1,
        d(2021, 6, 1),
        d(2022, 6, 1),
    )
    .unwrap()
    .sign(&mut rng, &biz_key);
    let verified = AttestationVerifier::new()
        .verify(&att, &biz, biz_key.identity_key(), d(2021, 7, 1))
        .unwrap();
    let mut tracker = DisclosureTracker::new(biz);
    tracker.on_attestation(&verified).unwrap();
    let info = AccountInfo {
        phone_number: "+1 555 0100".into(),
        profile: Profile {
            name: "Ana \"A\" O'Neil".into(),
            about: "Hi & <b>bye</b>".into(),
            has_photo: true,
        },
        privacy: PrivacySettings {
            last_seen: Visibility::Contacts,
            profile_photo: Visibility::Everyone,
            about: Visibility::Nobody,
            groups: Visibility::Contacts,
            read_receipts: true,
            default_message_timer: MessageTimer::Days7,
        },
        devices: vec![AccountDevice {
            label: "Phone".into(),
            platform: "android".into(),
            linked_at: d(2016, 8, 1),
        }],
        groups: vec![
            Group {
                name: SCRIPT_GROUP.into(),
                admin: true,
                member_count: 3,
            },
            Group {
                name: IMG_GROUP.into(),
                admin: false,
                member_count: 12,
            },
            Group {
                name: "Family 👪".into(),
                admin: false,
                member_count: 5,
            },
        ],
        business_chats: vec![
            BusinessChat::from_tracker("ACME <Shop>", &tracker),
            BusinessChat::from_tracker(
                "Not yet verified",
                &DisclosureTracker::new(BusinessId::new("x").unwrap()),
            ),
        ],
    };
    World {
        schedule,
        ledger,
        activity,
        info,
    }
}
