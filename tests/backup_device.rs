//! A device's end-to-end encrypted backup and its restore onto a new device: what comes
//! back (the privacy model exactly, contacts' keys and verification, groups, history
//! whose timers kept running), what never does (identity, sessions, sender keys), and
//! every refusal leaving the new device's store untouched.

#![cfg(all(feature = "backup", feature = "sqlite"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use confide::backup::{
    BackupGroup, BackupKey, BackupMessage, BackupSetting, BackupStamp, PayloadError, ReadError,
};
use confide::business::{BusinessId, HostingAttestation, HostingMode, SelfManagedEndpoint};
use confide::device::{
    BackupExportError, BackupExtras, BackupRestoreError, Clock, Device, FixedClock, ReceiveError,
};
use confide::envelope::{ContentId, Direction, DisappearingTimer, MessageLifecycle};
use confide::error::DecryptError;
use confide::export::{AccountInfo, MessageTimer, PrivacySettings, Profile, Visibility};
use confide::group::DistributionId;
use confide::policy::{
    CollectionMethod, ConsentEvent, Decision, PolicyId, PolicySchedule, timeline_2021, utc_date,
};
use confide::store::{IdentityStore, InMemoryStore, SqliteStore, StoreKey};
use confide::{Address, IdentityKeyPair, Timestamp};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use zeroize::Zeroizing;

type SqlDevice = Device<SqliteStore, ChaCha20Rng, FixedClock>;
type MemDevice = Device<InMemoryStore, ChaCha20Rng, FixedClock>;

const DAY: u64 = 86_400_000;
const NO_HISTORY: [BackupMessage; 0] = [];

fn at(y: u32, m: u32, d: u32) -> Timestamp {
    utc_date(y, m, d).unwrap()
}

fn sql_device(path: &Path, name: &str, seed: u64, clock: &FixedClock) -> SqlDevice {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let store = SqliteStore::open(path, &StoreKey::from_bytes([seed as u8; 32]), &mut rng).unwrap();
    Device::open(store, Address::new(name, 1), rng, clock.clone()).unwrap()
}

fn mem_device(name: &str, seed: u64, clock: &FixedClock) -> MemDevice {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    Device::new(
        InMemoryStore::generate(&mut rng),
        Address::new(name, 1),
        rng,
        clock.clone(),
    )
}

fn schedule() -> PolicySchedule {
    timeline_2021([b"terms 2016", b"terms 2021"], false)
}

fn info() -> AccountInfo {
    AccountInfo {
        phone_number: "+1 555 0100".into(),
        profile: Profile {
            name: "Alice".into(),
            about: "".into(),
            has_photo: false,
        },
        privacy: PrivacySettings {
            last_seen: Visibility::Contacts,
            profile_photo: Visibility::Everyone,
            about: Visibility::Everyone,
            groups: Visibility::Contacts,
            read_receipts: true,
            default_message_timer: MessageTimer::Off,
        },
        devices: Vec::new(),
        groups: Vec::new(),
        business_chats: Vec::new(),
    }
}

fn message(
    peer: &Address,
    n: u8,
    dir: Direction,
    at: Timestamp,
    timer: DisappearingTimer,
) -> BackupMessage {
    BackupMessage {
        peer: peer.clone(),
        group: None,
        lifecycle: MessageLifecycle {
            id: ContentId::from_bytes([n; 16]),
            direction: dir,
            at,
            read_at: Some(at),
            opened_at: None,
            timer,
            view_once: false,
            attachments: Vec::new(),
        },
        body: Zeroizing::new(format!("message {n}").into_bytes()),
    }
}

/// A user with the 2016 opt-out, a later acceptance, a verified contact and a business
/// chat: everything a restore must bring back exactly.
fn populate<S: confide::store::ProtocolStore>(
    d: &Device<S, ChaCha20Rng, FixedClock>,
    bob: &Address,
    bob_key: &IdentityKeyPair,
    rng: &mut ChaCha20Rng,
) {
    let schedule = schedule();
    d.record_connection().unwrap();
    for (v, dec, t, m) in [
        (
            "2016-08",
            Decision::Accepted,
            at(2016, 8, 28),
            CollectionMethod::InAppNotice,
        ),
        (
            "2016-08",
            Decision::LegacyOptOut,
            at(2016, 9, 10),
            CollectionMethod::Settings,
        ),
        (
            "2021-01",
            Decision::Accepted,
            at(2021, 5, 20),
            CollectionMethod::InAppNotice,
        ),
    ] {
        d.record_consent(
            ConsentEvent::new(PolicyId::new(v).unwrap(), dec, t, m),
            &schedule,
        )
        .unwrap();
    }
    d.accept_identity(bob, bob_key.identity_key()).unwrap();
    d.mark_verified_by_hand(bob).unwrap();
    let biz = BusinessId::new("acme-shop").unwrap();
    let biz_key = IdentityKeyPair::generate(rng);
    let signed = HostingAttestation::new(
        biz.clone(),
        HostingMode::SelfManaged(SelfManagedEndpoint::OwnApiServers),
        1,
        at(2021, 1, 1),
        at(2030, 1, 1),
    )
    .unwrap()
    .sign(rng, &biz_key);
    d.receive_attestation(&signed, &biz, biz_key.identity_key())
        .unwrap();
}

struct Source {
    file: Vec<u8>,
    stamp: BackupStamp,
    key: BackupKey,
    bob: Address,
    bob_key: IdentityKeyPair,
    group: BackupGroup,
}

/// Alice on SQLite, with history: one message without a timer, one whose 24-hour
/// timer runs out between the backup and the restore, one already expired.
fn backed_up(dir: &Path, clock: &FixedClock) -> (SqlDevice, Source) {
    let mut rng = ChaCha20Rng::seed_from_u64(77);
    let alice = sql_device(&dir.join("alice.db"), "alice", 1, clock);
    let bob = Address::new("bob", 1);
    let bob_key = IdentityKeyPair::generate(&mut rng);
    populate(&alice, &bob, &bob_key, &mut rng);
    alice.set_backup_setting(BackupSetting::DigitKey).unwrap();
    let now = clock.now();
    let history = [
        message(
            &bob,
            1,
            Direction::Incoming,
            Timestamp::from_millis(now.as_millis() - 3 * DAY),
            DisappearingTimer::OFF,
        ),
        message(
            &bob,
            2,
            Direction::Outgoing,
            Timestamp::from_millis(now.as_millis() - DAY / 2),
            DisappearingTimer::HOURS_24,
        ),
        message(
            &bob,
            3,
            Direction::Outgoing,
            Timestamp::from_millis(now.as_millis() - 2 * DAY),
            DisappearingTimer::HOURS_24,
        ),
    ];
    let group = BackupGroup {
        id: DistributionId::random(&mut rng),
        title: "climbing".into(),
        members: vec![alice.address().clone(), bob.clone()],
    };
    let key = BackupKey::generate(&mut rng);
    let extras = BackupExtras {
        contacts: &[],
        groups: std::slice::from_ref(&group),
    };
    let (file, stamp) = alice
        .export_backup(&key, &extras, &history, Vec::new())
        .unwrap();
    assert_eq!(stamp.generation, 1);
    (
        alice,
        Source {
            file,
            stamp,
            key,
            bob,
            bob_key,
            group,
        },
    )
}

fn report_json<S: confide::store::ProtocolStore>(
    d: &Device<S, ChaCha20Rng, FixedClock>,
) -> serde_json::Value {
    let report = d.account_report(&info(), &schedule()).unwrap();
    serde_json::from_str(&report.to_json()).unwrap()
}

#[test]
fn a_restore_brings_back_the_privacy_model_exactly_and_no_session_state() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FixedClock::new(at(2021, 8, 1));
    let (alice, src) = backed_up(dir.path(), &clock);
    let before = report_json(&alice);

    // A day later, on a new phone.
    clock.advance(DAY);
    let fresh = sql_device(&dir.path().join("new.db"), "alice", 2, &clock);
    let restored = fresh
        .restore_backup(&src.key, src.file.as_slice(), Some(src.stamp))
        .unwrap();
    assert_eq!(restored.stamp, src.stamp);
    // Message 3 had expired before the backup and was never written; message 2's
    // timer ran out while it sat in the backup.
    let ids: Vec<u8> = restored
        .messages
        .iter()
        .map(|m| m.lifecycle.id.as_bytes()[0])
        .collect();
    assert_eq!(ids, vec![1]);
    assert_eq!(restored.expired, 1);
    assert_eq!(restored.messages[0].body.as_slice(), b"message 1");
    assert_eq!(restored.groups, vec![src.group.clone()]);
    assert_eq!(restored.contacts, vec![src.bob.clone()]);

    // The consent ledger is the same ledger: same entries, same hash chain.
    assert_eq!(
        fresh.consent_ledger().unwrap().to_bytes(),
        alice.consent_ledger().unwrap().to_bytes()
    );
    assert!(
        fresh
            .consent_ledger()
            .unwrap()
            .legacy_opt_out(clock.now())
            .is_some()
    );
    let after = report_json(&fresh);
    for section in [
        "consent_history",
        "consent_ledger_head",
        "legacy_opt_out",
        "account_state_history",
        "data_sharing",
    ] {
        assert_eq!(after[section], before[section], "{section}");
    }
    let restored_section = &after["backup"]["restored"];
    assert_eq!(restored_section["consent_history_restored_exactly"], true);
    assert_eq!(restored_section["legacy_opt_out_in_backup"], true);
    assert_eq!(
        restored_section["consent_ledger_head_in_backup"],
        before["consent_ledger_head"]
    );
    assert!(
        restored_section["statement"]
            .as_str()
            .unwrap()
            .contains("2016 opt-out from data sharing is still honoured")
    );
    assert_eq!(after["backup"]["setting"], "64_digit_key");
    // The verified contact is still verified, against the same key.
    assert_eq!(after["identity_assurance"], before["identity_assurance"]);
    assert_eq!(
        fresh.remote_identity(&src.bob).unwrap().unwrap(),
        *src.bob_key.identity_key()
    );
    let biz = BusinessId::new("acme-shop").unwrap();
    assert_eq!(
        fresh.disclosure(&biz).unwrap().to_bytes(),
        alice.disclosure(&biz).unwrap().to_bytes()
    );

    // Never the identity: the new device keeps its own key.
    assert_ne!(
        fresh.store().local_identity().unwrap().identity_key(),
        alice.store().local_identity().unwrap().identity_key()
    );
}

#[test]
fn contacts_are_told_the_restored_device_has_a_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FixedClock::new(at(2021, 8, 1));
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let alice = mem_device("alice", 11, &clock);
    let bob = mem_device("bob", 12, &clock);
    alice
        .start_session(bob.address(), &bob.publish_bundle().unwrap())
        .unwrap();
    let wire = alice
        .encrypt(bob.address(), &alice.text("before").unwrap())
        .unwrap();
    bob.decrypt(alice.address(), &wire).unwrap();
    alice.record_connection().unwrap();
    alice.set_backup_setting(BackupSetting::DigitKey).unwrap();
    let key = BackupKey::generate(&mut rng);
    let (file, stamp) = alice
        .export_backup(
            &key,
            &BackupExtras {
                contacts: std::slice::from_ref(bob.address()),
                groups: &[],
            },
            &NO_HISTORY,
            Vec::new(),
        )
        .unwrap();

    let fresh = sql_device(&dir.path().join("new.db"), "alice", 13, &clock);
    fresh
        .restore_backup(&key, file.as_slice(), Some(stamp))
        .unwrap();
    // Bob's key came back, no session did: the device starts a new one.
    assert!(fresh.remote_identity(bob.address()).unwrap().is_some());
    assert!(
        fresh
            .encrypt(bob.address(), &fresh.text("x").unwrap())
            .is_err()
    );
    fresh
        .start_session(bob.address(), &bob.publish_bundle().unwrap())
        .unwrap();
    let wire = fresh
        .encrypt(bob.address(), &fresh.text("after").unwrap())
        .unwrap();
    // Bob sees that Alice's key changed, and accepts it explicitly.
    let err = bob.decrypt(alice.address(), &wire).unwrap_err();
    let ReceiveError::Decrypt(DecryptError::UntrustedIdentity { known, received }) = err else {
        panic!("expected an identity change, got {err:?}");
    };
    assert_eq!(
        known,
        *alice.store().local_identity().unwrap().identity_key()
    );
    bob.accept_identity(alice.address(), &received).unwrap();
    assert_eq!(
        bob.decrypt(alice.address(), &wire).unwrap().text(),
        Some("after")
    );
}

/// Everything a refused restore could have touched.
fn untouched(d: &SqlDevice, bob: &Address) {
    assert!(d.consent_ledger().unwrap().entries().is_empty());
    assert_eq!(d.backup_status().unwrap(), Default::default());
    assert!(d.remote_identity(bob).unwrap().is_none());
    assert!(d.identity_assurances().unwrap().is_empty());
}

#[test]
fn bad_files_are_refused_with_typed_errors_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FixedClock::new(at(2021, 8, 1));
    let (_alice, src) = backed_up(dir.path(), &clock);
    let fresh = sql_device(&dir.path().join("new.db"), "alice", 2, &clock);

    let wrong = BackupKey::from_bytes([0x42; 32]);
    assert!(matches!(
        fresh.restore_backup(&wrong, src.file.as_slice(), None),
        Err(BackupRestoreError::Read(ReadError::WrongKey))
    ));
    untouched(&fresh, &src.bob);

    let mut flipped = src.file.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 1;
    let err = fresh
        .restore_backup(&src.key, flipped.as_slice(), None)
        .unwrap_err();
    assert!(
        matches!(
            err,
            BackupRestoreError::Read(ReadError::Tampered | ReadError::Corrupt)
        ),
        "{err:?}"
    );
    untouched(&fresh, &src.bob);

    for cut in [
        src.file.len() - 1,
        src.file.len() - 17,
        src.file.len() / 2,
        60,
    ] {
        let err = fresh
            .restore_backup(&src.key, &src.file[..cut], None)
            .unwrap_err();
        assert!(
            matches!(
                err,
                BackupRestoreError::Read(ReadError::Truncated | ReadError::Tampered)
                    | BackupRestoreError::Payload(PayloadError::Truncated)
            ),
            "cut at {cut}: {err:?}"
        );
        untouched(&fresh, &src.bob);
    }

    let mut v2 = src.file.clone();
    v2[10] = 2;
    assert!(matches!(
        fresh.restore_backup(&src.key, v2.as_slice(), None),
        Err(BackupRestoreError::Read(ReadError::UnsupportedVersion {
            version: 2
        }))
    ));
    untouched(&fresh, &src.bob);

    // The same file then restores.
    fresh
        .restore_backup(&src.key, src.file.as_slice(), None)
        .unwrap();
}

#[test]
fn a_backup_of_another_account_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FixedClock::new(at(2021, 8, 1));
    let (_alice, src) = backed_up(dir.path(), &clock);
    let mallory = sql_device(&dir.path().join("m.db"), "mallory", 3, &clock);
    assert!(matches!(
        mallory.restore_backup(&src.key, src.file.as_slice(), None),
        Err(BackupRestoreError::OtherAccount)
    ));
    untouched(&mallory, &src.bob);
}

#[test]
fn an_older_backup_than_the_one_expected_is_refused_as_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FixedClock::new(at(2021, 8, 1));
    let (alice, src) = backed_up(dir.path(), &clock);
    let (second, stamp2) = alice
        .export_backup(&src.key, &BackupExtras::default(), &NO_HISTORY, Vec::new())
        .unwrap();
    assert_eq!(stamp2.generation, 2);
    assert_eq!(
        alice.backup_status().unwrap().last_backup.unwrap().1,
        stamp2
    );
    let fresh = sql_device(&dir.path().join("new.db"), "alice", 2, &clock);
    assert!(matches!(
        fresh.restore_backup(&src.key, src.file.as_slice(), Some(stamp2)),
        Err(BackupRestoreError::RolledBack {
            found: 1,
            expected: 2
        })
    ));
    untouched(&fresh, &src.bob);
    // Another file claiming the expected generation.
    let forged = BackupStamp {
        digest: [0; 32],
        ..stamp2
    };
    assert!(matches!(
        fresh.restore_backup(&src.key, second.as_slice(), Some(forged)),
        Err(BackupRestoreError::NotTheExpected)
    ));
    untouched(&fresh, &src.bob);
    fresh
        .restore_backup(&src.key, second.as_slice(), Some(stamp2))
        .unwrap();
    // Backups from the restored device count on from the restored generation.
    fresh.set_backup_setting(BackupSetting::DigitKey).unwrap();
    let (_, stamp3) = fresh
        .export_backup(&src.key, &BackupExtras::default(), &NO_HISTORY, Vec::new())
        .unwrap();
    assert_eq!(stamp3.generation, 3);
}

#[test]
fn a_device_with_state_of_its_own_is_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FixedClock::new(at(2021, 8, 1));
    let (_alice, src) = backed_up(dir.path(), &clock);
    let used = sql_device(&dir.path().join("used.db"), "alice", 2, &clock);
    used.record_consent(
        ConsentEvent::new(
            PolicyId::new("2021-01").unwrap(),
            Decision::Declined,
            at(2021, 7, 1),
            CollectionMethod::InAppNotice,
        ),
        &schedule(),
    )
    .unwrap();
    let ledger = used.consent_ledger().unwrap().to_bytes();
    assert!(matches!(
        used.restore_backup(&src.key, src.file.as_slice(), None),
        Err(BackupRestoreError::NotEmpty)
    ));
    assert_eq!(used.consent_ledger().unwrap().to_bytes(), ledger);
    assert!(used.remote_identity(&src.bob).unwrap().is_none());
}

#[test]
fn backups_are_off_until_the_user_chooses() {
    let clock = FixedClock::new(at(2021, 8, 1));
    let d = mem_device("alice", 1, &clock);
    assert_eq!(d.backup_status().unwrap().setting, BackupSetting::Off);
    let key = BackupKey::from_bytes([1; 32]);
    assert!(matches!(
        d.export_backup(&key, &BackupExtras::default(), &NO_HISTORY, Vec::new()),
        Err(BackupExportError::Off)
    ));
    // The report has no backup section until there is something to say.
    d.record_connection().unwrap();
    assert!(report_json(&d).get("backup").is_none());
    d.set_backup_setting(BackupSetting::PasswordVault).unwrap();
    let json = report_json(&d);
    assert_eq!(json["backup"]["setting"], "password_vault");
    assert_eq!(json["backup"]["restored"], serde_json::Value::Null);
}
