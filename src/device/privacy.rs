//! The privacy-model state a [`Device`] keeps in its store's
//! [`StateStore`]: the consent ledger, the account's activity, the attestation verifier
//! and one disclosure tracker per business chat.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use rand_core::{CryptoRng, RngCore};

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

/// `kind` names under which a [`Device`] keeps privacy-model state in a
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
}

/// Privacy-model state cached in memory (loaded from the store on first use).
#[derive(Default)]
struct Cache {
    loaded: bool,
    ledger: ConsentLedger,
    activity: Option<Activity>,
    verifier: AttestationVerifier,
    trackers: HashMap<BusinessId, DisclosureTracker>,
}

/// The privacy-model state of one device, over the store's [`StateStore`] (with none,
/// it lives as long as the device).
#[derive(Default)]
pub(crate) struct PrivacyState {
    cache: Mutex<Cache>,
}

impl PrivacyState {
    fn cache(
        &self,
        st: Option<&dyn StateStore>,
    ) -> Result<MutexGuard<'_, Cache>, PrivacyStateError> {
        let mut p = self.cache.lock().map_err(|_| PrivacyStateError::Poisoned)?;
        if !p.loaded {
            if let Some(st) = st {
                use state_kind::{ACTIVITY, ATTESTATION_VERIFIER, CONSENT_LEDGER};
                if let Some(b) = st.state(CONSENT_LEDGER, "")? {
                    p.ledger =
                        ConsentLedger::from_bytes(&b).map_err(|_| PrivacyStateError::Corrupt {
                            kind: CONSENT_LEDGER,
                        })?;
                }
                if let Some(b) = st.state(ACTIVITY, "")? {
                    p.activity = Some(
                        Activity::from_bytes(&b)
                            .map_err(|_| PrivacyStateError::Corrupt { kind: ACTIVITY })?,
                    );
                }
                if let Some(b) = st.state(ATTESTATION_VERIFIER, "")? {
                    p.verifier = AttestationVerifier::from_bytes(&b).map_err(|_| {
                        PrivacyStateError::Corrupt {
                            kind: ATTESTATION_VERIFIER,
                        }
                    })?;
                }
            }
            p.loaded = true;
        }
        Ok(p)
    }

    fn tracker<'p>(
        st: Option<&dyn StateStore>,
        p: &'p mut Cache,
        business: &BusinessId,
    ) -> Result<&'p mut DisclosureTracker, PrivacyStateError> {
        if !p.trackers.contains_key(business) {
            let stored = match st {
                Some(st) => st.state(state_kind::DISCLOSURE_TRACKER, business.as_str())?,
                None => None,
            };
            let tracker = match stored {
                Some(b) => {
                    DisclosureTracker::from_bytes(&b).map_err(|_| PrivacyStateError::Corrupt {
                        kind: state_kind::DISCLOSURE_TRACKER,
                    })?
                }
                None => DisclosureTracker::new(business.clone()),
            };
            p.trackers.insert(business.clone(), tracker);
        }
        p.trackers
            .get_mut(business)
            .ok_or(PrivacyStateError::Poisoned)
    }

    fn save(
        st: Option<&dyn StateStore>,
        kind: &'static str,
        key: &str,
        bytes: &[u8],
    ) -> Result<(), PrivacyStateError> {
        if let Some(st) = st {
            st.save_state(kind, key, bytes)?;
        }
        Ok(())
    }
}

impl<S: ProtocolStore, R: RngCore + CryptoRng, C: Clock> Device<S, R, C> {
    fn privacy_store(&self) -> Option<&dyn StateStore> {
        self.store.state_store()
    }

    /// A business chat's hosting attestation arrived: verifies it against the
    /// business's identity key and feeds the chat's disclosure tracker. Returns the
    /// notices to show and the held messages it releases, in display order.
    pub fn receive_attestation(
        &self,
        signed: &SignedAttestation,
        business: &BusinessId,
        business_key: &IdentityKey,
    ) -> Result<Vec<ChatItem>, AttestationReceiveError> {
        let now = self.clock.now();
        let st = self.privacy_store();
        let mut guard = self.privacy.cache(st)?;
        let p = &mut *guard;
        let mut verifier = p.verifier.clone();
        let verified = verifier.verify(signed, business, business_key, now)?;
        let mut tracker = PrivacyState::tracker(st, p, business)?.clone();
        let items = tracker.on_attestation(&verified)?;
        PrivacyState::save(
            st,
            state_kind::DISCLOSURE_TRACKER,
            business.as_str(),
            &tracker.to_bytes(),
        )?;
        PrivacyState::save(
            st,
            state_kind::ATTESTATION_VERIFIER,
            "",
            &verifier.to_bytes(),
        )?;
        p.verifier = verifier;
        p.trackers.insert(business.clone(), tracker);
        Ok(items)
    }

    /// A message in a business chat, registered by the app as `id`, with the serial of
    /// the hosting tag it carried. Returns what can be shown now, in order.
    pub fn business_message(
        &self,
        business: &BusinessId,
        id: u64,
        serial: Option<u64>,
    ) -> Result<Vec<ChatItem>, BusinessMessageError> {
        let st = self.privacy_store();
        let mut guard = self.privacy.cache(st)?;
        let mut tracker = PrivacyState::tracker(st, &mut guard, business)?.clone();
        let items = tracker.on_message(id, serial)?;
        PrivacyState::save(
            st,
            state_kind::DISCLOSURE_TRACKER,
            business.as_str(),
            &tracker.to_bytes(),
        )?;
        guard.trackers.insert(business.clone(), tracker);
        Ok(items)
    }

    /// The chat's disclosure tracker as it stands (a fresh one for an unknown business).
    pub fn disclosure(
        &self,
        business: &BusinessId,
    ) -> Result<DisclosureTracker, PrivacyStateError> {
        let st = self.privacy_store();
        let mut guard = self.privacy.cache(st)?;
        Ok(PrivacyState::tracker(st, &mut guard, business)?.clone())
    }

    /// Records the user's answer to a policy version in the consent ledger.
    pub fn record_consent(
        &self,
        event: ConsentEvent,
        schedule: &PolicySchedule,
    ) -> Result<(), ConsentError> {
        let st = self.privacy_store();
        let mut guard = self.privacy.cache(st)?;
        let mut ledger = guard.ledger.clone();
        ledger.record(event, schedule)?;
        PrivacyState::save(st, state_kind::CONSENT_LEDGER, "", &ledger.to_bytes())?;
        guard.ledger = ledger;
        Ok(())
    }

    /// The consent ledger.
    pub fn consent_ledger(&self) -> Result<ConsentLedger, PrivacyStateError> {
        Ok(self.privacy.cache(self.privacy_store())?.ledger.clone())
    }

    /// Records that the user connected now; the first call registers the account.
    pub fn record_connection(&self) -> Result<(), ActivityRecordError> {
        let now = self.clock.now();
        let st = self.privacy_store();
        let mut guard = self.privacy.cache(st)?;
        let mut activity = guard.activity.clone().unwrap_or_else(|| Activity::new(now));
        activity.connected(now)?;
        PrivacyState::save(st, state_kind::ACTIVITY, "", &activity.to_bytes())?;
        guard.activity = Some(activity);
        Ok(())
    }

    /// The account's state now under `schedule`.
    pub fn account_state(&self, schedule: &PolicySchedule) -> Result<AccountState, AccountError> {
        let now = self.clock.now();
        let guard = self.privacy.cache(self.privacy_store())?;
        let activity = guard.activity.as_ref().ok_or(AccountError::NotRegistered)?;
        Ok(account_state(&guard.ledger, schedule, activity, now)?)
    }

    /// The account-information report now.
    pub fn account_report(
        &self,
        info: &AccountInfo,
        schedule: &PolicySchedule,
    ) -> Result<AccountReport, AccountError> {
        let now = self.clock.now();
        let guard = self.privacy.cache(self.privacy_store())?;
        let activity = guard.activity.as_ref().ok_or(AccountError::NotRegistered)?;
        let sources = ReportSources {
            info,
            ledger: &guard.ledger,
            schedule,
            activity,
        };
        Ok(AccountReport::build(&sources, now)?)
    }
}
