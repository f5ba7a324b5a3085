//! The identity-assurance state a [`Device`] keeps per contact: one
//! [`AssuranceRecord`] row per contact ([`ASSURANCE_KIND`], key `name.device_id`) and
//! one index row listing them ([`ASSURANCE_INDEX_KIND`], key `""`), always written in
//! the same commit.
//!
//! Another state change that also records an assurance (a key directory check) adds the
//! two rows to its own [`state::update`]:
//!
//! ```ignore
//! let key = address_key(contact);
//! let [record, index] = assurance_rows(&key);
//! let rows = [(KT_CONTACT, key.as_str()), (KT_HEADS, ""), record, index];
//! state::update(st, &rows, |v| {
//!     // ... check v[0], v[1] ...
//!     let mut out = vec![contact_record.to_bytes(), heads.to_bytes()];
//!     out.extend(apply_assurance(v.get(2..).unwrap_or_default(), contact, |r| {
//!         r.directory_verified(&held, epoch, now)
//!     })?);
//!     Ok((check, out))
//! })
//! ```

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::state::{self, RowKey};
use super::{AssuranceError, Clock, Device, PrivacyStateError};
use crate::Address;
pub(crate) use crate::assurance::address_key;
use crate::assurance::{
    ASSURANCE_INDEX_KIND, ASSURANCE_KIND, AssuranceIndex, AssuranceRecord, ContactAssurance,
    IdentityAssurance,
};
use crate::store::ProtocolStore;

/// The rows an assurance change commits, in this order: the contact's record (under
/// `contact_key`, from [`address_key`]) and the index.
pub(crate) fn assurance_rows(contact_key: &str) -> [RowKey<'_>; 2] {
    [(ASSURANCE_KIND, contact_key), (ASSURANCE_INDEX_KIND, "")]
}

/// Applies `change` to the contact's record as loaded from `values` (the current values
/// of [`assurance_rows`], in order; a missing row is a fresh record) and adds the
/// contact to the index. Returns the two values to commit, in the same order.
pub(crate) fn apply_assurance(
    values: &[Option<Zeroizing<Vec<u8>>>],
    contact: &Address,
    change: impl FnOnce(&mut AssuranceRecord),
) -> Result<Vec<Vec<u8>>, PrivacyStateError> {
    let (Some(record), Some(index)) = (values.first(), values.get(1)) else {
        return Err(PrivacyStateError::Corrupt {
            kind: ASSURANCE_INDEX_KIND,
        });
    };
    let mut record = load_record(record.as_ref())?.unwrap_or_default();
    let mut index = load_index(index.as_ref())?;
    change(&mut record);
    index.insert(contact);
    Ok(vec![record.to_bytes(), index.to_bytes()])
}

fn load_record(
    b: Option<&Zeroizing<Vec<u8>>>,
) -> Result<Option<AssuranceRecord>, PrivacyStateError> {
    b.map(|b| {
        AssuranceRecord::from_bytes(b).map_err(|_| PrivacyStateError::Corrupt {
            kind: ASSURANCE_KIND,
        })
    })
    .transpose()
}

pub(super) fn load_index(
    b: Option<&Zeroizing<Vec<u8>>>,
) -> Result<AssuranceIndex, PrivacyStateError> {
    b.map_or(Ok(AssuranceIndex::default()), |b| {
        AssuranceIndex::from_bytes(b).map_err(|_| PrivacyStateError::Corrupt {
            kind: ASSURANCE_INDEX_KIND,
        })
    })
}

impl<S: ProtocolStore, R: RngCore + CryptoRng, C: Clock> Device<S, R, C> {
    /// How far the device trusts the identity key it holds for `contact` now.
    pub fn identity_assurance(
        &self,
        contact: &Address,
    ) -> Result<IdentityAssurance, AssuranceError> {
        Ok(self.contact_assurance(contact)?.state)
    }

    /// The user compared the security code (safety number) with `contact` and it
    /// matched: records it for the key held now. A later key change lapses it.
    pub fn mark_verified_by_hand(&self, contact: &Address) -> Result<(), AssuranceError> {
        let held = self
            .store
            .identity(contact)?
            .ok_or(AssuranceError::NoIdentity)?;
        let now = self.clock.now();
        let key = address_key(contact);
        state::update(self.state_store(), &assurance_rows(&key), |v| {
            let out = apply_assurance(v, contact, |r| r.verified_by_hand(&held, now))?;
            Ok(((), out))
        })
    }

    /// Every contact the device recorded a check for, sorted by address, with the
    /// assurance of the key held now.
    pub fn identity_assurances(&self) -> Result<Vec<ContactAssurance>, AssuranceError> {
        let index = state::read(self.state_store(), ASSURANCE_INDEX_KIND, "")?;
        let index = load_index(index.as_ref())?;
        index
            .contacts()
            .map(|c| self.contact_assurance(c))
            .collect()
    }

    fn contact_assurance(&self, contact: &Address) -> Result<ContactAssurance, AssuranceError> {
        let held = self.store.identity(contact)?;
        let row = state::read(self.state_store(), ASSURANCE_KIND, &address_key(contact))?;
        let record = load_record(row.as_ref())?.unwrap_or_default();
        Ok(ContactAssurance {
            contact: contact.clone(),
            state: record.state(held.as_ref()),
            since: record.since(held.as_ref()),
        })
    }
}
