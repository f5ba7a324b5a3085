//! The privacy-model state a [`Device`] keeps in its store's [`StateStore`]: the
//! consent ledger, the account's activity, the attestation verifier and one disclosure
//! tracker per business chat.
//!
//! Every change loads the rows it touches with their versions, changes copies, and
//! commits all of them in one transaction with a compare-and-swap on each (see
//! [`super::state`]): an attestation's verifier serial and the tracker it fed are
//! written together or not at all, and two handles on one device (two hosts serving it
//! from one PostgreSQL database) never lose each other's consent or disclosure
//! updates. Reads load from the store, so they see what any handle committed.

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::state::{self, MemoryState};
use super::{
    AccountError, ActivityRecordError, AttestationReceiveError, BusinessMessageError, Clock,
    ConsentError, Device, PrivacyStateError,
};
use crate::business::{
    AttestationVerifier, BusinessId, ChatItem, DisclosureTracker, SignedAttestation,
};
use crate::export::{AccountInfo, AccountReport, ReportSources};
use crate::keys::IdentityKey;
use crate::policy::{
    AccountState, Activity, ConsentEvent, ConsentLedger, PolicySchedule, account_state,
};
use crate::store::{ProtocolStore, StateStore};

/// `kind` names under which a [`Device`] keeps its state in a
/// [`crate::store::StateStore`].
pub mod state_kind {
    /// The consent ledger (key `""`).
    pub const CONSENT_LEDGER: &str = "policy.consent_ledger";
    /// The account's activity (key `""`).
    pub const ACTIVITY: &str = "policy.activity";
    /// The attestation verifier's serials (key `""`).
    pub const ATTESTATION_VERIFIER: &str = "business.attestation_verifier";
    /// One disclosure tracker per business chat (key: the business id).
    pub const DISCLOSURE_TRACKER: &str = "business.disclosure_tracker";
    /// The business chats that have a disclosure tracker (key `""`), written in the
    /// same commit as a new tracker, so a backup can find every tracker.
    pub const DISCLOSURE_INDEX: &str = "business.disclosure_index";
    /// The user's backup setting and the device's backup counter (key `""`).
    pub const BACKUP_STATUS: &str = "backup.status";
    /// The next signed-prekey and one-time-prekey ids the device hands out, and the
    /// one-time prekeys on offer (key `""`).
    pub const PREKEY_IDS: &str = "device.prekey_ids";
    /// One identity-assurance record per contact (key: the contact's address,
    /// `name.device_id`).
    pub const IDENTITY_ASSURANCE: &str = crate::assurance::ASSURANCE_KIND;
    /// The contacts that have an identity-assurance record (key `""`).
    pub const IDENTITY_ASSURANCE_INDEX: &str = crate::assurance::ASSURANCE_INDEX_KIND;
}

use state_kind::{
    ACTIVITY, ATTESTATION_VERIFIER, CONSENT_LEDGER, DISCLOSURE_INDEX, DISCLOSURE_TRACKER,
};

/// The disclosure index: business ids, sorted, each as a 2-byte big-endian length then
/// its UTF-8 bytes.
pub(super) fn disclosure_index(
    b: Option<&Zeroizing<Vec<u8>>>,
) -> Result<std::collections::BTreeSet<String>, PrivacyStateError> {
    let mut out = std::collections::BTreeSet::new();
    let Some(mut rest) = b.map(|b| b.as_slice()) else {
        return Ok(out);
    };
    while !rest.is_empty() {
        let (len, tail) = rest.split_at_checked(2).ok_or(corrupt(DISCLOSURE_INDEX))?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let (id, tail) = tail
            .split_at_checked(len)
            .ok_or(corrupt(DISCLOSURE_INDEX))?;
        let id = std::str::from_utf8(id).map_err(|_| corrupt(DISCLOSURE_INDEX))?;
        out.insert(id.to_owned());
        rest = tail;
    }
    Ok(out)
}

/// The index with `business` added, encoded.
fn with_business(
    b: Option<&Zeroizing<Vec<u8>>>,
    business: &BusinessId,
) -> Result<Vec<u8>, PrivacyStateError> {
    let mut ids = disclosure_index(b)?;
    ids.insert(business.as_str().to_owned());
    let mut out = Vec::new();
    for id in &ids {
        let len = u16::try_from(id.len()).map_err(|_| corrupt(DISCLOSURE_INDEX))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(id.as_bytes());
    }
    Ok(out)
}

/// Where a device's privacy-model state lives: the store's [`StateStore`] if it has
/// one, otherwise values in memory that live as long as the device.
#[derive(Default)]
pub(crate) struct PrivacyState {
    memory: MemoryState,
}

impl PrivacyState {
    /// The state store to use for a store that offers `st`.
    pub(super) fn on<'a>(&'a self, st: Option<&'a dyn StateStore>) -> &'a dyn StateStore {
        st.unwrap_or(&self.memory)
    }
}

fn corrupt(kind: &'static str) -> PrivacyStateError {
    PrivacyStateError::Corrupt { kind }
}

fn ledger(b: Option<&Zeroizing<Vec<u8>>>) -> Result<ConsentLedger, PrivacyStateError> {
    b.map_or(Ok(ConsentLedger::default()), |b| {
        ConsentLedger::from_bytes(b).map_err(|_| corrupt(CONSENT_LEDGER))
    })
}

fn activity(b: Option<&Zeroizing<Vec<u8>>>) -> Result<Option<Activity>, PrivacyStateError> {
    b.map(|b| Activity::from_bytes(b).map_err(|_| corrupt(ACTIVITY)))
        .transpose()
}

fn verifier(b: Option<&Zeroizing<Vec<u8>>>) -> Result<AttestationVerifier, PrivacyStateError> {
    b.map_or(Ok(AttestationVerifier::default()), |b| {
        AttestationVerifier::from_bytes(b).map_err(|_| corrupt(ATTESTATION_VERIFIER))
    })
}

fn tracker(
    b: Option<&Zeroizing<Vec<u8>>>,
    business: &BusinessId,
) -> Result<DisclosureTracker, PrivacyStateError> {
    match b {
        Some(b) => {
            let t = DisclosureTracker::from_bytes(b).map_err(|_| corrupt(DISCLOSURE_TRACKER))?;
            // A row under another business's key is not this chat's tracker.
            if t.business_id() != business {
                return Err(corrupt(DISCLOSURE_TRACKER));
            }
            Ok(t)
        }
        None => Ok(DisclosureTracker::new(business.clone())),
    }
}

impl<S: ProtocolStore, R: RngCore + CryptoRng, C: Clock> Device<S, R, C> {
    /// Where the device keeps its own state (privacy model, prekey ids).
    pub(super) fn state_store(&self) -> &dyn StateStore {
        self.privacy.on(self.store.state_store())
    }

    /// The ledger and activity as stored now.
    fn account_rows(&self) -> Result<(ConsentLedger, Option<Activity>), PrivacyStateError> {
        let st = self.state_store();
        let l = ledger(state::read(st, CONSENT_LEDGER, "")?.as_ref())?;
        let a = activity(state::read(st, ACTIVITY, "")?.as_ref())?;
        Ok((l, a))
    }

    /// A business chat's hosting attestation arrived: verifies it against the
    /// business's identity key and feeds the chat's disclosure tracker. Returns the
    /// notices to show and the held messages it releases, in display order. The
    /// verifier's serial and the tracker are committed in one transaction; on failure
    /// nothing changed.
    pub fn receive_attestation(
        &self,
        signed: &SignedAttestation,
        business: &BusinessId,
        business_key: &IdentityKey,
    ) -> Result<Vec<ChatItem>, AttestationReceiveError> {
        let now = self.clock.now();
        let rows = [
            (ATTESTATION_VERIFIER, ""),
            (DISCLOSURE_TRACKER, business.as_str()),
            (DISCLOSURE_INDEX, ""),
        ];
        state::update(self.state_store(), &rows, |v| {
            let mut verifier = verifier(v[0].as_ref())?;
            let mut tracker = tracker(v[1].as_ref(), business)?;
            let index = with_business(v[2].as_ref(), business)?;
            let verified = verifier.verify(signed, business, business_key, now)?;
            let items = tracker.on_attestation(&verified)?;
            Ok((items, vec![verifier.to_bytes(), tracker.to_bytes(), index]))
        })
    }

    /// A message in a business chat, registered by the app as `id`, with the serial of
    /// the hosting tag it carried. Returns what can be shown now, in order; on failure
    /// nothing changed.
    pub fn business_message(
        &self,
        business: &BusinessId,
        id: u64,
        serial: Option<u64>,
    ) -> Result<Vec<ChatItem>, BusinessMessageError> {
        let rows = [
            (DISCLOSURE_TRACKER, business.as_str()),
            (DISCLOSURE_INDEX, ""),
        ];
        state::update(self.state_store(), &rows, |v| {
            let mut tracker = tracker(v[0].as_ref(), business)?;
            let index = with_business(v[1].as_ref(), business)?;
            let items = tracker.on_message(id, serial)?;
            Ok((items, vec![tracker.to_bytes(), index]))
        })
    }

    /// The chat's disclosure tracker as stored now (a fresh one for an unknown
    /// business).
    pub fn disclosure(
        &self,
        business: &BusinessId,
    ) -> Result<DisclosureTracker, PrivacyStateError> {
        let b = state::read(self.state_store(), DISCLOSURE_TRACKER, business.as_str())?;
        tracker(b.as_ref(), business)
    }

    /// Records the user's answer to a policy version in the consent ledger; on failure
    /// nothing changed.
    pub fn record_consent(
        &self,
        event: ConsentEvent,
        schedule: &PolicySchedule,
    ) -> Result<(), ConsentError> {
        state::update(self.state_store(), &[(CONSENT_LEDGER, "")], |v| {
            let mut ledger = ledger(v[0].as_ref())?;
            ledger.record(event.clone(), schedule)?;
            Ok(((), vec![ledger.to_bytes()]))
        })
    }

    /// The consent ledger as stored now.
    pub fn consent_ledger(&self) -> Result<ConsentLedger, PrivacyStateError> {
        ledger(state::read(self.state_store(), CONSENT_LEDGER, "")?.as_ref())
    }

    /// Records that the user connected now; the first call registers the account. On
    /// failure nothing changed.
    pub fn record_connection(&self) -> Result<(), ActivityRecordError> {
        let now = self.clock.now();
        state::update(self.state_store(), &[(ACTIVITY, "")], |v| {
            let mut activity = activity(v[0].as_ref())?.unwrap_or_else(|| Activity::new(now));
            activity.connected(now)?;
            Ok(((), vec![activity.to_bytes()]))
        })
    }

    /// The account's state now under `schedule`.
    pub fn account_state(&self, schedule: &PolicySchedule) -> Result<AccountState, AccountError> {
        let now = self.clock.now();
        let (ledger, activity) = self.account_rows()?;
        let activity = activity.ok_or(AccountError::NotRegistered)?;
        Ok(account_state(&ledger, schedule, &activity, now)?)
    }

    /// The account-information report now.
    pub fn account_report(
        &self,
        info: &AccountInfo,
        schedule: &PolicySchedule,
    ) -> Result<AccountReport, AccountError> {
        let now = self.clock.now();
        let (ledger, activity) = self.account_rows()?;
        let activity = activity.ok_or(AccountError::NotRegistered)?;
        let identity_assurance = self.identity_assurances()?;
        let sources = ReportSources {
            info,
            ledger: &ledger,
            schedule,
            activity: &activity,
            identity_assurance: &identity_assurance,
        };
        let report = AccountReport::build(&sources, now)?;
        #[cfg(feature = "backup")]
        let report = match state::read(self.state_store(), state_kind::BACKUP_STATUS, "")? {
            Some(row) => {
                let status = crate::backup::BackupStatus::from_bytes(&row).ok_or(
                    PrivacyStateError::Corrupt {
                        kind: state_kind::BACKUP_STATUS,
                    },
                )?;
                report.with_backup(&status, &ledger)
            }
            None => report,
        };
        Ok(report)
    }
}
