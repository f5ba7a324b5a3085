//! Prekeys a [`Device`] makes, under ids it allocates itself: a counter per kind kept in
//! the device's state (committed with a compare-and-swap, so two handles never hand out
//! one id), never reused, and skipping any id the store already holds. A one-time
//! prekey's id leaves the outstanding batch once a session consumed the key.

use rand_core::{CryptoRng, RngCore};

use super::privacy::state_kind::PREKEY_IDS;
use super::state;
use super::{Clock, Device, PrivacyStateError};
use crate::PreKeyBundle;
use crate::error::{PublishError, StoreError};
use crate::keys::{PreKeyPublic, PreKeyRecord};
use crate::session::cipher::{self, BundleSpec};
use crate::store::ProtocolStore;

/// How many unused one-time prekeys [`Device::top_up_pre_keys`] keeps on offer.
pub const PRE_KEY_BATCH: usize = 100;

/// The largest prekey id (ids are 24-bit in the Signal protocol's servers).
const MAX_ID: u32 = 0x00FF_FFFF;

/// [`Device::publish_bundle`] or [`Device::top_up_pre_keys`] failed. Ids allocated
/// before the failure are never handed out again.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PreKeyError {
    /// Every prekey id of a kind was handed out.
    #[error("prekey ids exhausted")]
    IdsExhausted,
    /// The store-driven publish refused an id (only when something else wrote a
    /// prekey under an id the device had just allocated).
    #[error("publish refused: {0}")]
    Publish(#[from] PublishError),
    /// The device's id counters could not be loaded or committed.
    #[error("device state: {0}")]
    State(#[from] PrivacyStateError),
    /// The store failed.
    #[error("store failed: {0}")]
    Store(#[from] StoreError),
}

/// The id counters: the next signed-prekey and one-time-prekey ids, and the one-time
/// prekeys handed out and not known to be consumed.
#[derive(Debug, Default, PartialEq, Eq)]
struct Ids {
    next_signed: u32,
    next_pre: u32,
    outstanding: Vec<u32>,
}

const IDS_FORMAT: u8 = 1;

impl Ids {
    fn from_bytes(b: Option<&[u8]>) -> Result<Self, PrivacyStateError> {
        let Some(b) = b else {
            return Ok(Self {
                next_signed: 1,
                next_pre: 1,
                outstanding: Vec::new(),
            });
        };
        let corrupt = || PrivacyStateError::Corrupt { kind: PREKEY_IDS };
        let (&format, rest) = b.split_first().ok_or_else(corrupt)?;
        if format != IDS_FORMAT || rest.len() < 8 || rest.len() % 4 != 0 {
            return Err(corrupt());
        }
        let mut words = rest
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
        let next_signed = words.next().ok_or_else(corrupt)?;
        let next_pre = words.next().ok_or_else(corrupt)?;
        Ok(Self {
            next_signed,
            next_pre,
            outstanding: words.collect(),
        })
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![IDS_FORMAT];
        for w in [self.next_signed, self.next_pre]
            .iter()
            .chain(&self.outstanding)
        {
            out.extend_from_slice(&w.to_be_bytes());
        }
        out
    }

    /// The next id from `counter`, skipping those `taken` says the store holds.
    fn take(
        counter: &mut u32,
        taken: impl Fn(u32) -> Result<bool, StoreError>,
    ) -> Result<u32, PreKeyError> {
        loop {
            let id = *counter;
            if id == 0 || id > MAX_ID {
                return Err(PreKeyError::IdsExhausted);
            }
            *counter += 1;
            if !taken(id)? {
                return Ok(id);
            }
        }
    }
}

impl<S: ProtocolStore, R: RngCore + CryptoRng, C: Clock> Device<S, R, C> {
    /// Makes and stores a new signed prekey and a new one-time prekey under ids the
    /// device allocates, and returns the bundle to publish. Ids are never reused, so a
    /// bundle published earlier stays valid until its keys are used.
    pub fn publish_bundle(&self) -> Result<PreKeyBundle, PreKeyError> {
        let (signed, pre) = state::update(self.state_store(), &[(PREKEY_IDS, "")], |v| {
            let mut ids = Ids::from_bytes(v[0].as_deref().map(Vec::as_slice))?;
            let signed = Ids::take(&mut ids.next_signed, |id| {
                Ok(self.store.signed_pre_key(id)?.is_some())
            })?;
            let pre = Ids::take(&mut ids.next_pre, |id| {
                Ok(self.store.pre_key(id)?.is_some())
            })?;
            ids.outstanding.push(pre);
            Ok::<_, PreKeyError>(((signed, pre), vec![ids.to_bytes()]))
        })?;
        let spec = BundleSpec::new(self.address.device_id(), signed).with_pre_key(Some(pre));
        let now = self.clock.now();
        Ok(cipher::publish_bundle(
            &self.store,
            &mut *self.rng()?,
            &spec,
            now,
        )?)
    }

    /// Tops the device's unused one-time prekeys up to [`PRE_KEY_BATCH`]: makes and
    /// stores new ones under fresh ids and returns their public halves, for the app to
    /// upload (empty when the batch is full). Keys consumed by sessions leave the batch.
    pub fn top_up_pre_keys(&self) -> Result<Vec<PreKeyPublic>, PreKeyError> {
        let fresh = state::update(self.state_store(), &[(PREKEY_IDS, "")], |v| {
            let mut ids = Ids::from_bytes(v[0].as_deref().map(Vec::as_slice))?;
            let mut live = Vec::with_capacity(ids.outstanding.len());
            for &id in &ids.outstanding {
                if self.store.pre_key(id)?.is_some() {
                    live.push(id);
                }
            }
            ids.outstanding = live;
            let mut fresh = Vec::new();
            while ids.outstanding.len() < PRE_KEY_BATCH {
                let id = Ids::take(&mut ids.next_pre, |id| {
                    Ok(self.store.pre_key(id)?.is_some())
                })?;
                ids.outstanding.push(id);
                fresh.push(id);
            }
            Ok::<_, PreKeyError>((fresh, vec![ids.to_bytes()]))
        })?;
        let mut rng = self.rng()?;
        let mut out = Vec::with_capacity(fresh.len());
        for id in fresh {
            let record = PreKeyRecord::generate(&mut *rng, id);
            self.store.save_pre_key(&record)?;
            out.push(record.public());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_refuse_garbage() {
        let ids = Ids {
            next_signed: 3,
            next_pre: 104,
            outstanding: vec![7, 9, 103],
        };
        assert_eq!(Ids::from_bytes(Some(&ids.to_bytes())).unwrap(), ids);
        assert_eq!(Ids::from_bytes(None).unwrap().next_pre, 1);
        for bad in [&[][..], &[2, 0, 0, 0, 1, 0, 0, 0, 1], &[1, 0, 0, 0, 1, 0]] {
            assert!(Ids::from_bytes(Some(bad)).is_err());
        }
    }

    #[test]
    fn take_skips_taken_ids_and_stops_at_the_end() {
        let mut counter = 1;
        assert_eq!(Ids::take(&mut counter, |id| Ok(id < 3)).unwrap(), 3);
        assert_eq!(counter, 4);
        let mut counter = MAX_ID + 1;
        assert!(matches!(
            Ids::take(&mut counter, |_| Ok(false)),
            Err(PreKeyError::IdsExhausted)
        ));
    }
}
