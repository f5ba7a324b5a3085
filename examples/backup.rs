//! Alice chats with Bob, backs up under a password kept in the password vault, loses her
//! phone, restores on a new one: her history (less what disappeared meanwhile), her
//! consent history and her 2016 opt-out come back exactly; her identity and sessions do
//! not, so she starts new sessions and Bob is told her key changed. Then someone tries
//! ten wrong passwords and the vault deletes the record for good.
//!
//! The vault runs in this process here, on SQLite records; `examples/vault` is the same
//! server over HTTP as a separate process. Its attempt limit is only as strong as what
//! enforces it: an HSM or enclave in production.
//!
//! `cargo run --example backup`

use std::path::Path;

use confide::backup::vault::{self, SqliteRecords, VaultParams, VaultServer, VaultServerSetup};
use confide::backup::{BackupKey, BackupMessage, BackupSetting, BackupStamp};
use confide::device::{BackupExtras, Clock, Device, FixedClock, ReceiveError};
use confide::envelope::{ContentId, Direction, DisappearingTimer, MessageLifecycle};
use confide::error::DecryptError;
use confide::export::{AccountInfo, MessageTimer, PrivacySettings, Profile, Visibility};
use confide::policy::{
    CollectionMethod, ConsentEvent, Decision, PolicyId, PolicySchedule, timeline_2021, utc_date,
};
use confide::store::{SqliteStore, StoreKey};
use confide::{Address, SystemRng, Timestamp};
use zeroize::Zeroizing;

type Phone = Device<SqliteStore, SystemRng, FixedClock>;
type Error = Box<dyn std::error::Error>;

const DAY: u64 = 86_400_000;
const ALICE: &[u8] = b"alice";

fn open(dir: &Path, file: &str, name: &str, clock: &FixedClock) -> Result<Phone, Error> {
    let mut rng = SystemRng::new();
    let key = StoreKey::generate(&mut rng);
    let store = SqliteStore::open(dir.join(file), &key, &mut rng)?;
    Ok(Device::open(
        store,
        Address::new(name, 1),
        rng,
        clock.clone(),
    )?)
}

fn date(y: u32, m: u32, d: u32) -> Result<Timestamp, Error> {
    utc_date(y, m, d).ok_or_else(|| "bad date".into())
}

/// What the app keeps of a message it showed.
fn kept(
    peer: &Address,
    dir: Direction,
    at: Timestamp,
    timer: DisappearingTimer,
    text: &str,
) -> BackupMessage {
    let mut rng = SystemRng::new();
    BackupMessage {
        peer: peer.clone(),
        group: None,
        lifecycle: MessageLifecycle {
            id: ContentId::random(&mut rng),
            direction: dir,
            at,
            read_at: Some(at),
            opened_at: None,
            timer,
            view_once: false,
            attachments: Vec::new(),
        },
        body: Zeroizing::new(text.as_bytes().to_vec()),
    }
}

/// The vault's part of a backup: register the key under the password with the
/// backup's stamp. The vault sees neither.
fn register(
    server: &VaultServer<SqliteRecords>,
    password: &[u8],
    key: &BackupKey,
    stamp: BackupStamp,
    params: &VaultParams,
) -> Result<(), Error> {
    let mut rng = SystemRng::new();
    let (request, state) = vault::register_start(password, &mut rng)?;
    let response = server.register_start(ALICE, &request)?;
    let upload = state.finish(&response, key, params, Some(stamp), &mut rng)?;
    server.register_finish(ALICE, &upload)?;
    Ok(())
}

/// Two round trips to get the key (and the latest stamp) back with the password.
fn recover(
    server: &VaultServer<SqliteRecords>,
    password: &[u8],
) -> Result<vault::RecoveredKey, vault::VaultError> {
    let mut rng = SystemRng::new();
    let (request, state) = vault::recover_start(password, &mut rng)?;
    let (attempt, response) = server.login_start(ALICE, &request, &mut rng)?;
    let (finalization, proof) = state.finish(&response, &mut rng)?;
    let released = server.login_finish(ALICE, &attempt, &finalization, &mut rng)?;
    proof.open(&released)
}

fn report_line(phone: &Phone, schedule: &PolicySchedule) -> Result<(), Error> {
    let info = AccountInfo {
        phone_number: "+1 555 0100".into(),
        profile: Profile {
            name: "Alice".into(),
            about: String::new(),
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
    };
    let json = phone.account_report(&info, schedule)?.to_json();
    for line in json.lines().filter(|l| {
        l.contains("\"statement\"") || l.contains("opted_out") || l.contains("restored_exactly")
    }) {
        println!("  report:{line}");
    }
    Ok(())
}

fn main() -> Result<(), Error> {
    let dir = tempfile::tempdir()?;
    let clock = FixedClock::new(date(2021, 8, 1)?);
    let schedule = timeline_2021([b"terms 2016", b"terms 2021"], false);

    // Alice's first phone: she opted out of data sharing in 2016 and later accepted
    // the 2021 terms.
    let alice = open(dir.path(), "alice.db", "alice", &clock)?;
    let bob = open(dir.path(), "bob.db", "bob", &clock)?;
    alice.record_connection()?;
    for (version, decision, at, how) in [
        (
            "2016-08",
            Decision::Accepted,
            date(2016, 8, 28)?,
            CollectionMethod::InAppNotice,
        ),
        (
            "2016-08",
            Decision::LegacyOptOut,
            date(2016, 9, 10)?,
            CollectionMethod::Settings,
        ),
        (
            "2021-01",
            Decision::Accepted,
            date(2021, 5, 20)?,
            CollectionMethod::InAppNotice,
        ),
    ] {
        alice.record_consent(
            ConsentEvent::new(PolicyId::new(version)?, decision, at, how),
            &schedule,
        )?;
    }
    alice.start_session(bob.address(), &bob.publish_bundle()?)?;
    let wire = alice.encrypt(bob.address(), &alice.text("see you at the crag")?)?;
    let got = bob.decrypt(alice.address(), &wire)?;
    println!("bob got: {:?}", got.text());
    let now = clock.now();
    let history = [
        kept(
            bob.address(),
            Direction::Outgoing,
            now,
            DisappearingTimer::OFF,
            "see you at the crag",
        ),
        kept(
            bob.address(),
            Direction::Incoming,
            now,
            DisappearingTimer::HOURS_24,
            "door code 4711 (disappears in 24 h)",
        ),
    ];

    // The backup: a random key, the file encrypted under it, the key in the vault
    // under a password. Cheap Argon2 for the demo; `VaultParams::recommended()` in an app.
    let mut rng = SystemRng::new();
    let params = VaultParams::new(8 * 1024, 1, 1)?;
    let server = VaultServer::new(
        VaultServerSetup::generate(&mut rng),
        SqliteRecords::open(dir.path().join("vault.db"))?,
    );
    alice.set_backup_setting(BackupSetting::PasswordVault)?;
    let key = BackupKey::generate(&mut rng);
    let extras = BackupExtras {
        contacts: std::slice::from_ref(bob.address()),
        groups: &[],
    };
    let (file, stamp) = alice.export_backup(&key, &extras, &history, Vec::new())?;
    register(&server, b"correct horse battery", &key, stamp, &params)?;
    println!(
        "backup: {} bytes, generation {}; the vault holds the key, wrapped",
        file.len(),
        stamp.generation
    );

    // The phone is lost. Two days later, a new phone: a new identity, no sessions.
    drop(alice);
    clock.advance(2 * DAY);
    let phone = open(dir.path(), "new-phone.db", "alice", &clock)?;
    let recovered = recover(&server, b"correct horse battery")?;
    let restored = phone.restore_backup(&recovered.key, file.as_slice(), recovered.latest_stamp)?;
    println!(
        "restored generation {}: {} message(s), {} disappeared while in the backup",
        restored.stamp.generation,
        restored.messages.len(),
        restored.expired
    );
    for m in &restored.messages {
        println!("  history: {}", String::from_utf8_lossy(&m.body));
    }
    let ledger = phone.consent_ledger()?;
    println!(
        "consent history: {} entries; 2016 opt-out honoured: {}",
        ledger.entries().len(),
        ledger.legacy_opt_out(clock.now()).is_some()
    );
    report_line(&phone, &schedule)?;

    // New sessions: Bob is told Alice's key changed, and accepts it explicitly.
    phone.start_session(bob.address(), &bob.publish_bundle()?)?;
    let wire = phone.encrypt(bob.address(), &phone.text("new phone, same me")?)?;
    match bob.decrypt(phone.address(), &wire) {
        Err(ReceiveError::Decrypt(DecryptError::UntrustedIdentity { received, .. })) => {
            println!("bob is told: Alice's security code changed");
            bob.accept_identity(phone.address(), &received)?;
            println!("bob got: {:?}", bob.decrypt(phone.address(), &wire)?.text());
        }
        other => return Err(format!("expected an identity change, got {other:?}").into()),
    }

    // Someone else tries passwords: after ten wrong ones the record is gone for good,
    // and the right password no longer helps.
    for _ in 0..10 {
        let _ = recover(&server, b"password123");
    }
    match recover(&server, b"correct horse battery") {
        Err(e) => println!("after ten wrong passwords: {e}; the vault deleted the record"),
        Ok(_) => return Err("the vault did not lock".into()),
    }
    Ok(())
}
