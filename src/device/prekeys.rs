//! Prekeys a [`Device`] makes, under ids it allocates itself: a counter per kind kept in
//! the device's state (committed with a compare-and-swap, so two handles never hand out
//! one id), never reused, and skipping any id the store already holds. A one-time
//! prekey's id leaves the outstanding batch once a session consumed the key. Kyber
//! prekeys (protocol v4) have their own counter: one last-resort key per bundle, and a
//! batch of one-time ones.

use rand_core::{CryptoRng, RngCore};

use super::privacy::state_kind::PREKEY_IDS;
use super::state;
use super::{Clock, Device, PrivacyStateError};
use crate::PreKeyBundle;
use crate::error::{PublishError, StoreError};
use crate::keys::{KyberPreKeyPublic, KyberPreKeyRecord, PreKeyPublic, PreKeyRecord};
use crate::session::Versions;
use crate::session::cipher::{self, BundleSpec};
use crate::store::ProtocolStore;

/// How many unused one-time prekeys [`Device::top_up_pre_keys`] keeps on offer.
pub const PRE_KEY_BATCH: usize = 100;

/// How many unused one-time Kyber prekeys [`Device::top_up_kyber_pre_keys`] keeps on
/// offer.
pub const KYBER_PRE_KEY_BATCH: usize = 100;

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
    /// The device speaks v4 and its store keeps no Kyber prekeys
    /// ([`crate::store::PreKeyStore::kyber_pre_keys`]).
    #[error("the store keeps no Kyber prekeys")]
    NoKyberStore,
    /// The device's id counters could not be loaded or committed.
    #[error("device state: {0}")]
    State(#[from] PrivacyStateError),
    /// The store failed.
    #[error("store failed: {0}")]
    Store(#[from] StoreError),
}

/// The id counters: the next signed-prekey, one-time-prekey and Kyber-prekey ids, and
/// the one-time prekeys (EC and Kyber) handed out and not known to be consumed.
#[derive(Debug, Default, PartialEq, Eq)]
struct Ids {
    next_signed: u32,
    next_pre: u32,
    outstanding: Vec<u32>,
    next_kyber: u32,
    kyber_outstanding: Vec<u32>,
}

/// Format 1: next_signed, next_pre, outstanding…; format 2 (written since v4) adds
/// next_kyber and the count of EC ids before the Kyber ones: next_signed, next_pre,
/// next_kyber, count, outstanding…, kyber_outstanding…. All big-endian u32.
const IDS_FORMAT_V1: u8 = 1;
const IDS_FORMAT: u8 = 2;

impl Ids {
    fn from_bytes(b: Option<&[u8]>) -> Result<Self, PrivacyStateError> {
        let Some(b) = b else {
            return Ok(Self {
                next_signed: 1,
                next_pre: 1,
                outstanding: Vec::new(),
                next_kyber: 1,
                kyber_outstanding: Vec::new(),
            });
        };
        let corrupt = || PrivacyStateError::Corrupt { kind: PREKEY_IDS };
        let (&format, rest) = b.split_first().ok_or_else(corrupt)?;
        if !(format == IDS_FORMAT_V1 || format == IDS_FORMAT)
            || rest.len() < 8
            || rest.len() % 4 != 0
        {
            return Err(corrupt());
        }
        let mut words = rest.chunks_exact(4).map(|c| {
            let mut w = [0u8; 4];
            w.copy_from_slice(c);
            u32::from_be_bytes(w)
        });
        let next_signed = words.next().ok_or_else(corrupt)?;
        let next_pre = words.next().ok_or_else(corrupt)?;
        if format == IDS_FORMAT_V1 {
            return Ok(Self {
                next_signed,
                next_pre,
                outstanding: words.collect(),
                next_kyber: 1,
                kyber_outstanding: Vec::new(),
            });
        }
        let next_kyber = words.next().ok_or_else(corrupt)?;
        let count = words.next().ok_or_else(corrupt)?;
        let rest: Vec<u32> = words.collect();
        let count = usize::try_from(count).map_err(|_| corrupt())?;
        if count > rest.len() {
            return Err(corrupt());
        }
        let (pre, kyber) = rest.split_at(count);
        Ok(Self {
            next_signed,
            next_pre,
            outstanding: pre.to_vec(),
            next_kyber,
            kyber_outstanding: kyber.to_vec(),
        })
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![IDS_FORMAT];
        let count = u32::try_from(self.outstanding.len()).unwrap_or(u32::MAX);
        for w in [self.next_signed, self.next_pre, self.next_kyber, count]
            .iter()
            .chain(&self.outstanding)
            .chain(&self.kyber_outstanding)
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
    /// Makes and stores a new signed prekey, a new one-time prekey and (unless the
    /// device is [`Versions::V3Only`]) a new last-resort Kyber prekey under ids the
    /// device allocates, and returns the bundle to publish. A [`Versions::V4Only`]
    /// device needs a store with Kyber prekeys ([`PreKeyError::NoKyberStore`]); a
    /// [`Versions::V3AndV4`] one without them publishes a v3 bundle. Ids are never reused, so a
    /// bundle published earlier stays valid until its keys are used.
    pub fn publish_bundle(&self) -> Result<PreKeyBundle, PreKeyError> {
        // V3AndV4 on a store without Kyber prekeys publishes what it can: a v3 bundle.
        let kyber_store = match (self.versions, self.store.kyber_pre_keys()) {
            (Versions::V3Only, _) | (Versions::V3AndV4, None) => None,
            (_, Some(kyber)) => Some(kyber),
            (_, None) => return Err(PreKeyError::NoKyberStore),
        };
        let (signed, pre, kyber) = state::update(self.state_store(), &[(PREKEY_IDS, "")], |v| {
            let mut ids = Ids::from_bytes(v.first().and_then(|x| x.as_deref()).map(Vec::as_slice))?;
            let signed = Ids::take(&mut ids.next_signed, |id| {
                Ok(self.store.signed_pre_key(id)?.is_some())
            })?;
            let pre = Ids::take(&mut ids.next_pre, |id| {
                Ok(self.store.pre_key(id)?.is_some())
            })?;
            ids.outstanding.push(pre);
            let kyber = match kyber_store {
                Some(k) => Some(Ids::take(&mut ids.next_kyber, |id| {
                    Ok(k.kyber_pre_key(id)?.is_some())
                })?),
                None => None,
            };
            Ok::<_, PreKeyError>(((signed, pre, kyber), vec![ids.to_bytes()]))
        })?;
        let spec = BundleSpec::new(self.address.device_id(), signed)
            .with_pre_key(Some(pre))
            .with_kyber_pre_key(kyber, true);
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

    /// Tops the device's unused one-time Kyber prekeys up to [`KYBER_PRE_KEY_BATCH`]:
    /// makes, signs and stores new ones under fresh ids and returns their public halves
    /// for the app to upload (empty when the batch is full). Needs a store with Kyber
    /// prekeys ([`PreKeyError::NoKyberStore`]).
    pub fn top_up_kyber_pre_keys(&self) -> Result<Vec<KyberPreKeyPublic>, PreKeyError> {
        let kyber = self
            .store
            .kyber_pre_keys()
            .ok_or(PreKeyError::NoKyberStore)?;
        let fresh = state::update(self.state_store(), &[(PREKEY_IDS, "")], |v| {
            let mut ids = Ids::from_bytes(v.first().and_then(|x| x.as_deref()).map(Vec::as_slice))?;
            let mut live = Vec::with_capacity(ids.kyber_outstanding.len());
            for &id in &ids.kyber_outstanding {
                if kyber.kyber_pre_key(id)?.is_some() {
                    live.push(id);
                }
            }
            ids.kyber_outstanding = live;
            let mut fresh = Vec::new();
            while ids.kyber_outstanding.len() < KYBER_PRE_KEY_BATCH {
                let id = Ids::take(&mut ids.next_kyber, |id| {
                    Ok(kyber.kyber_pre_key(id)?.is_some())
                })?;
                ids.kyber_outstanding.push(id);
                fresh.push(id);
            }
            Ok::<_, PreKeyError>((fresh, vec![ids.to_bytes()]))
        })?;
        let identity = self.store.local_identity()?;
        let now = self.clock.now();
        let mut rng = self.rng()?;
        let mut out = Vec::with_capacity(fresh.len());
        for id in fresh {
            let record = KyberPreKeyRecord::generate(&mut *rng, &identity, id, now);
            kyber.save_kyber_pre_key(id, &record.to_bytes(), false)?;
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
            next_kyber: 12,
            kyber_outstanding: vec![4, 11],
        };
        assert_eq!(Ids::from_bytes(Some(&ids.to_bytes())).unwrap(), ids);
        assert_eq!(Ids::from_bytes(None).unwrap().next_pre, 1);
        // Format 1, as earlier releases wrote it, still loads.
        let old = [1, 0, 0, 0, 3, 0, 0, 0, 104, 0, 0, 0, 7];
        let loaded = Ids::from_bytes(Some(&old)).unwrap();
        assert_eq!((loaded.next_pre, loaded.next_kyber), (104, 1));
        assert_eq!(loaded.outstanding, vec![7]);
        for bad in [
            &[][..],
            &[3, 0, 0, 0, 1, 0, 0, 0, 1],
            &[1, 0, 0, 0, 1, 0],
            &[2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 5],
        ] {
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
