//! The privacy-model state is changed in one transaction with a compare-and-swap:
//! an attestation's verifier serial and disclosure tracker are never written apart,
//! and two handles on one device never lose each other's updates.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use confide::business::{
    AttestationVerifier, BusinessId, DisclosureTracker, HostingAttestation, HostingMode, Provider,
    SignedAttestation,
};
use confide::device::{AttestationReceiveError, state_kind};
use confide::error::StoreError;
use confide::group::{DistributionId, SenderKeyRecord};
use confide::keys::{IdentityKey, PreKeyRecord, SignedPreKeyRecord};
use confide::policy::{CollectionMethod, ConsentEvent, Decision, PolicyId, timeline_2021};
use confide::store::{
    CommitOutcome, IdentityStore, PreKeyStore, RowVersion, SenderKeyStore, SessionStore,
    SignedPreKeyStore, SqliteStore, StateStore, StateWrite, StoreKey, TransactionalGroupStore,
    TransactionalStore,
};
use confide::{Address, IdentityKeyPair, SessionRecord, Timestamp};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use zeroize::Zeroizing;

use super::{FixedClock, at, device_keyed};

/// A SQLite store whose state writes "crash" (fail, as a killed process would stop)
/// once `budget` writes are spent: a `save_state` or a whole `commit_state` is one.
struct CrashingStore {
    inner: SqliteStore,
    budget: AtomicUsize,
}

impl CrashingStore {
    fn spend(&self) -> Result<(), StoreError> {
        self.budget
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| b.checked_sub(1))
            .map(|_| ())
            .map_err(|_| StoreError::Backend("crashed".into()))
    }
}

impl IdentityStore for CrashingStore {
    fn local_identity(&self) -> Result<IdentityKeyPair, StoreError> {
        self.inner.local_identity()
    }
    fn local_registration_id(&self) -> Result<u32, StoreError> {
        self.inner.local_registration_id()
    }
    fn identity(&self, address: &Address) -> Result<Option<IdentityKey>, StoreError> {
        self.inner.identity(address)
    }
    fn save_identity(&self, address: &Address, key: &IdentityKey) -> Result<(), StoreError> {
        self.inner.save_identity(address, key)
    }
    fn state_store(&self) -> Option<&dyn StateStore> {
        Some(self)
    }
}

impl PreKeyStore for CrashingStore {
    fn pre_key(&self, id: u32) -> Result<Option<PreKeyRecord>, StoreError> {
        self.inner.pre_key(id)
    }
    fn save_pre_key(&self, record: &PreKeyRecord) -> Result<(), StoreError> {
        self.inner.save_pre_key(record)
    }
    fn remove_pre_key(&self, id: u32) -> Result<(), StoreError> {
        self.inner.remove_pre_key(id)
    }
}

impl SignedPreKeyStore for CrashingStore {
    fn signed_pre_key(&self, id: u32) -> Result<Option<SignedPreKeyRecord>, StoreError> {
        self.inner.signed_pre_key(id)
    }
    fn save_signed_pre_key(&self, record: &SignedPreKeyRecord) -> Result<(), StoreError> {
        self.inner.save_signed_pre_key(record)
    }
}

impl SessionStore for CrashingStore {
    fn session(&self, address: &Address) -> Result<Option<SessionRecord>, StoreError> {
        self.inner.session(address)
    }
    fn save_session(&self, address: &Address, record: &SessionRecord) -> Result<(), StoreError> {
        self.inner.save_session(address, record)
    }
    fn transactional(&self) -> Option<&dyn TransactionalStore> {
        self.inner.transactional()
    }
}

impl SenderKeyStore for CrashingStore {
    fn sender_key(
        &self,
        sender: &Address,
        id: DistributionId,
    ) -> Result<Option<SenderKeyRecord>, StoreError> {
        self.inner.sender_key(sender, id)
    }
    fn save_sender_key(
        &self,
        sender: &Address,
        id: DistributionId,
        record: &SenderKeyRecord,
    ) -> Result<(), StoreError> {
        self.inner.save_sender_key(sender, id, record)
    }
    fn transactional_group(&self) -> Option<&dyn TransactionalGroupStore> {
        self.inner.transactional_group()
    }
}

impl StateStore for CrashingStore {
    fn state(&self, kind: &str, key: &str) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        self.inner.state(kind, key)
    }
    fn save_state(&self, kind: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.spend()?;
        self.inner.save_state(kind, key, value)
    }
    fn remove_state(&self, kind: &str, key: &str) -> Result<(), StoreError> {
        self.spend()?;
        self.inner.remove_state(kind, key)
    }
    fn load_state(
        &self,
        kind: &str,
        key: &str,
    ) -> Result<(Option<Zeroizing<Vec<u8>>>, RowVersion), StoreError> {
        self.inner.load_state(kind, key)
    }
    fn commit_state(&self, writes: &[StateWrite<'_>]) -> Result<CommitOutcome, StoreError> {
        self.spend()?;
        self.inner.commit_state(writes)
    }
}

pub(crate) fn business() -> BusinessId {
    BusinessId::new("acme-shop").unwrap()
}

/// An attestation whose mode names its serial (as its retention days), so a tracker
/// shows which serial it was told last.
pub(crate) fn attestation(
    serial: u64,
    key: &IdentityKeyPair,
    rng: &mut ChaCha20Rng,
) -> SignedAttestation {
    let vendor = Provider::with_fingerprint("Hosting Co", [7; 32]).unwrap();
    let mode = HostingMode::VendorManaged {
        vendor,
        retention_days: Some(serial as u32),
    };
    HostingAttestation::new(business(), mode, serial, at(2020, 1, 1), at(2030, 1, 1))
        .unwrap()
        .sign(rng, key)
}

/// The serial of the newest attestation a tracker holds.
pub(crate) fn tracker_serial(t: &DisclosureTracker) -> u64 {
    match t.current_mode() {
        None => 0,
        Some(HostingMode::VendorManaged { retention_days, .. }) => {
            u64::from(retention_days.unwrap())
        }
        Some(other) => panic!("unexpected mode {other:?}"),
    }
}

/// What the store holds, read as a restarted app would: (verifier's highest serial,
/// tracker's serial).
pub(crate) fn stored_serials(st: &dyn StateStore) -> (u64, u64) {
    let v = st
        .state(state_kind::ATTESTATION_VERIFIER, "")
        .unwrap()
        .map(|b| AttestationVerifier::from_bytes(&b).unwrap())
        .unwrap_or_default();
    let t = st
        .state(state_kind::DISCLOSURE_TRACKER, business().as_str())
        .unwrap()
        .map(|b| DisclosureTracker::from_bytes(&b).unwrap());
    (
        v.highest_serial(&business()).unwrap_or(0),
        t.as_ref().map_or(0, tracker_serial),
    )
}

fn not_now(i: u64) -> ConsentEvent {
    ConsentEvent::new(
        PolicyId::new("2021-01").unwrap(),
        Decision::NotNow,
        Timestamp::from_millis(at(2021, 1, 10).as_millis() + i),
        CollectionMethod::InAppNotice,
    )
}

/// Defect: `receive_attestation` saved the tracker and then the verifier in two writes;
/// a crash between them left the verifier's serial behind the tracker's.
#[test]
fn a_crash_inside_receive_attestation_never_leaves_the_verifier_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.db");
    let clock = FixedClock::new(at(2021, 1, 10));
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let biz_key = IdentityKeyPair::generate(&mut rng);
    let inner = device_keyed(&path, "carol", 3, 3, &clock);
    let store = CrashingStore {
        inner: SqliteStore::open(&path, &StoreKey::from_bytes([3; 32]), &mut rng).unwrap(),
        budget: AtomicUsize::new(usize::MAX),
    };
    let d = confide::device::Device::new(store, Address::new("carol", 1), rng.clone(), clock)
        .with_versions(confide::session::Versions::V3AndV4);
    d.receive_attestation(
        &attestation(1, &biz_key, &mut rng),
        &business(),
        biz_key.identity_key(),
    )
    .unwrap();
    for serial in 2..=6 {
        // Each attestation gets one write before the "crash".
        d.store().budget.store(1, Ordering::SeqCst);
        let r = d.receive_attestation(
            &attestation(serial, &biz_key, &mut rng),
            &business(),
            biz_key.identity_key(),
        );
        // Restart: read what is on disk through another connection.
        let (verifier, tracker) = stored_serials(inner.store().state_store().unwrap());
        assert!(
            verifier >= tracker,
            "serial {serial}: verifier at {verifier} behind the tracker at {tracker}"
        );
        match r {
            Ok(_) => assert_eq!((verifier, tracker), (serial, serial)),
            Err(e) => {
                assert!(matches!(e, AttestationReceiveError::State(_)), "{e}");
                assert_eq!((verifier, tracker), (serial - 1, serial - 1));
            }
        }
    }
    // Out of budget: nothing at all is written, and the call says so.
    d.store().budget.store(0, Ordering::SeqCst);
    let before = stored_serials(inner.store().state_store().unwrap());
    assert!(
        d.receive_attestation(
            &attestation(7, &biz_key, &mut rng),
            &business(),
            biz_key.identity_key()
        )
        .is_err()
    );
    assert_eq!(stored_serials(inner.store().state_store().unwrap()), before);
}

/// Defect: each handle cached the privacy state and saved it without a compare-and-
/// swap, so two handles on one device (two hosts on one database) lost each other's
/// consent and disclosure updates.
#[test]
fn two_handles_on_one_device_lose_no_consent_or_disclosure_update() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.db");
    let clock = FixedClock::new(at(2021, 1, 10));
    let schedule = timeline_2021([b"terms 2016", b"terms 2021"], true);
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let biz_key = IdentityKeyPair::generate(&mut rng);
    // Same file, same store key, own connections and RNGs.
    let a = device_keyed(&path, "carol", 3, 3, &clock);
    let b = device_keyed(&path, "carol", 3, 4, &clock);
    // Both handles have read the state before either writes (as two hosts would).
    assert!(a.consent_ledger().unwrap().entries().is_empty());
    assert!(b.consent_ledger().unwrap().entries().is_empty());
    assert_eq!(a.disclosure(&business()).unwrap().held_count(), 0);
    assert_eq!(b.disclosure(&business()).unwrap().held_count(), 0);
    for i in 0..4 {
        a.record_consent(not_now(2 * i), &schedule).unwrap();
        b.record_consent(not_now(2 * i + 1), &schedule).unwrap();
    }
    // Messages wait on one handle for the attestation the other receives.
    a.business_message(&business(), 1, Some(1)).unwrap();
    b.business_message(&business(), 2, Some(1)).unwrap();
    let items = a
        .receive_attestation(
            &attestation(1, &biz_key, &mut rng),
            &business(),
            biz_key.identity_key(),
        )
        .unwrap();
    let released = items
        .iter()
        .filter(|i| matches!(i, confide::business::ChatItem::Message { .. }))
        .count();
    assert_eq!(released, 2, "both held messages are released");
    b.business_message(&business(), 3, Some(1)).unwrap();
    b.receive_attestation(
        &attestation(2, &biz_key, &mut rng),
        &business(),
        biz_key.identity_key(),
    )
    .unwrap();
    for d in [&a, &b] {
        assert_eq!(d.consent_ledger().unwrap().entries().len(), 8);
        let t = d.disclosure(&business()).unwrap();
        assert_eq!(t.held_count(), 0);
        assert_eq!(tracker_serial(&t), 2);
    }
    // Downgrading through the other handle is refused: its verifier is the stored one.
    let e = a
        .receive_attestation(
            &attestation(1, &biz_key, &mut rng),
            &business(),
            biz_key.identity_key(),
        )
        .unwrap_err();
    assert!(matches!(e, AttestationReceiveError::Attestation(_)), "{e}");
}

/// The same from threads racing on two connections: every update lands.
#[test]
fn racing_consent_updates_on_two_connections_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.db");
    let clock = FixedClock::new(at(2021, 1, 10));
    let schedule = Arc::new(timeline_2021([b"terms 2016", b"terms 2021"], true));
    let handles = [3, 4].map(|seed| Arc::new(device_keyed(&path, "carol", 3, seed, &clock)));
    let threads: Vec<_> = handles
        .iter()
        .map(|d| {
            let (d, schedule) = (Arc::clone(d), Arc::clone(&schedule));
            std::thread::spawn(move || {
                for _ in 0..25 {
                    d.record_consent(not_now(0), &schedule).unwrap();
                    d.record_connection().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(handles[0].consent_ledger().unwrap().entries().len(), 50);
}
