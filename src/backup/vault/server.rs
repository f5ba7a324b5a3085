//! The vault's server half: OPAQUE's server steps, the attempt counter and the release
//! of the wrapped key.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use opaque_ke::{ServerLogin, ServerLoginParameters, ServerRegistration, ServerSetup};
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::messages::{
    self, AttemptId, LoginFinalization, LoginRequest, LoginResponse, MessageError,
    RegistrationRequest, RegistrationResponse, RegistrationUpload, ReleasedKey, StampUpdate,
};
use super::{
    RELEASE_INFO, SEALED_STAMP_LEN, Suite, VaultError, VaultParams, WRAPPED_KEY_LEN, derive,
    release_aad, seal, stamp_mac,
};
use crate::crypto::ct_eq;

/// Login starts a record allows without a success before it is deleted.
pub const DEFAULT_ATTEMPT_LIMIT: u32 = 10;

/// Logins pending (and finished logins that may still send a stamp) kept at once; past
/// it the oldest is forgotten, so abandoned starts cannot grow the server's memory
/// without bound. An abandoned start has already been counted, so forgetting it gives
/// nobody an extra guess.
const MAX_PENDING: usize = 4096;

/// A map that forgets its oldest entries past [`MAX_PENDING`].
struct Bounded<V> {
    map: HashMap<AttemptId, V>,
    order: VecDeque<AttemptId>,
}

impl<V> Bounded<V> {
    fn new() -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn insert(&mut self, id: AttemptId, value: V) {
        while self.map.len() >= MAX_PENDING || self.order.len() >= 2 * MAX_PENDING {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
        self.map.insert(id, value);
        self.order.push_back(id);
    }

    fn take(&mut self, id: &AttemptId) -> Option<V> {
        self.map.remove(id)
    }
}

/// A records backend failed (its message says why; no secrets in it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StorageError(pub String);

/// The vault's long-term OPAQUE secrets (OPRF seed and key-exchange key pair). Keep it
/// as secret as the records: with it and a record, passwords can be guessed offline.
#[derive(Clone)]
pub struct VaultServerSetup(pub(crate) ServerSetup<Suite>);

impl core::fmt::Debug for VaultServerSetup {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("VaultServerSetup(..)")
    }
}

impl VaultServerSetup {
    /// A fresh setup.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        Self(ServerSetup::new(rng))
    }
    /// Serialised, for the operator to store (secret).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.0.serialize().to_vec())
    }
    /// Parses [`VaultServerSetup::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MessageError> {
        ServerSetup::deserialize(bytes)
            .map(Self)
            .map_err(|_| MessageError::BadField {
                message: "server setup",
            })
    }
}

/// What the vault stores per user: the OPAQUE record, the Argon2id parameters, the
/// wrapped key and the latest sealed stamp (with its generation in clear).
#[derive(Clone)]
pub struct VaultRecord {
    pub(crate) params: VaultParams,
    pub(crate) record: ServerRegistration<Suite>,
    pub(crate) wrapped_key: [u8; WRAPPED_KEY_LEN],
    pub(crate) stamp: Option<(u64, [u8; SEALED_STAMP_LEN])>,
}

impl core::fmt::Debug for VaultRecord {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("VaultRecord(..)")
    }
}

const RECORD_VERSION: u8 = 1;

impl VaultRecord {
    /// The record's Argon2id parameters.
    pub fn params(&self) -> VaultParams {
        self.params
    }

    /// Replaces the sealed stamp unless `generation` is older than the stored one
    /// (`false` then): for [`VaultRecords::put_stamp`] implementations that store whole
    /// records.
    pub fn set_stamp(&mut self, generation: u64, sealed: &[u8; SEALED_STAMP_LEN]) -> bool {
        if self.stamp.is_some_and(|(g, _)| g > generation) {
            return false;
        }
        self.stamp = Some((generation, *sealed));
        true
    }

    /// The stored stamp's generation, if any.
    pub fn stamp_generation(&self) -> Option<u64> {
        self.stamp.map(|(g, _)| g)
    }

    /// Version byte, parameters, OPAQUE record, wrapped key, stamp flag, generation and
    /// sealed stamp: what a backend stores.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![RECORD_VERSION];
        out.extend_from_slice(&self.params.to_bytes());
        out.extend_from_slice(&self.record.serialize());
        out.extend_from_slice(&self.wrapped_key);
        match &self.stamp {
            None => out.push(0),
            Some((generation, sealed)) => {
                out.push(1);
                out.extend_from_slice(&generation.to_be_bytes());
                out.extend_from_slice(sealed);
            }
        }
        out
    }

    /// Parses [`VaultRecord::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MessageError> {
        const M: &str = "vault record";
        let bad = MessageError::BadField { message: M };
        let short = MessageError::WrongLength {
            message: M,
            len: bytes.len(),
        };
        let rest = match bytes.split_first() {
            Some((&RECORD_VERSION, rest)) => rest,
            _ => return Err(MessageError::WrongType { expected: M }),
        };
        let (params, rest) = rest.split_at_checked(VaultParams::LEN).ok_or(short)?;
        let params = VaultParams::from_bytes(params).map_err(|_| bad)?;
        let (record, rest) = rest
            .split_at_checked(messages::OPAQUE_UPLOAD_LEN)
            .ok_or(short)?;
        let record = ServerRegistration::deserialize(record).map_err(|_| bad)?;
        let (wrapped, rest) = rest.split_at_checked(WRAPPED_KEY_LEN).ok_or(short)?;
        let wrapped_key = wrapped.try_into().map_err(|_| short)?;
        let stamp = match rest.split_first() {
            Some((0, [])) => None,
            Some((1, rest)) => {
                let (generation, sealed) = rest.split_at_checked(8).ok_or(short)?;
                let generation = u64::from_be_bytes(generation.try_into().map_err(|_| short)?);
                Some((generation, sealed.try_into().map_err(|_| short)?))
            }
            Some((0, _)) | None => return Err(short),
            Some(_) => return Err(bad),
        };
        Ok(Self {
            params,
            record,
            wrapped_key,
            stamp,
        })
    }
}

/// What counting one login start found.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Attempt {
    /// Counted; the record may be answered.
    Counted(Box<VaultRecord>),
    /// No record for this user.
    NoRecord,
    /// The limit was already used up: the record has now been deleted for good.
    LockedOut,
}

/// Where a vault keeps its records. [`VaultRecords::begin_attempt`] must be one atomic
/// step (one transaction, one HSM operation): the whole attempt limit rests on it.
pub trait VaultRecords {
    /// Stores (or replaces) `user`'s record with a zero attempt count.
    fn put(&self, user: &[u8], record: &VaultRecord) -> Result<(), StorageError>;
    /// Atomically: if the record has been started `limit` times without a success since
    /// the last, deletes it and answers [`Attempt::LockedOut`]; otherwise counts one more
    /// start and answers the record.
    fn begin_attempt(&self, user: &[u8], limit: u32) -> Result<Attempt, StorageError>;
    /// A login succeeded: the count goes back to zero.
    fn reset_attempts(&self, user: &[u8]) -> Result<(), StorageError>;
    /// Replaces the stored stamp if `generation` is not older than the stored one;
    /// `false` if it is older or the record is gone.
    fn put_stamp(
        &self,
        user: &[u8],
        generation: u64,
        sealed: &[u8; SEALED_STAMP_LEN],
    ) -> Result<bool, StorageError>;
    /// Whether `user` has a record (for operators and tests).
    fn contains(&self, user: &[u8]) -> Result<bool, StorageError>;
}

/// Record and attempt count per user.
type MemoryMap = HashMap<Vec<u8>, (VaultRecord, u32)>;

/// Records in memory behind one mutex: for tests and single-process demos.
#[derive(Debug, Default)]
pub struct MemoryRecords {
    inner: Mutex<MemoryMap>,
}

impl MemoryRecords {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, MemoryMap>, StorageError> {
        self.inner
            .lock()
            .map_err(|_| StorageError("memory records: poisoned lock".into()))
    }
}

impl VaultRecords for MemoryRecords {
    fn put(&self, user: &[u8], record: &VaultRecord) -> Result<(), StorageError> {
        self.lock()?.insert(user.to_vec(), (record.clone(), 0));
        Ok(())
    }

    fn begin_attempt(&self, user: &[u8], limit: u32) -> Result<Attempt, StorageError> {
        let mut map = self.lock()?;
        let Some((record, attempts)) = map.get_mut(user) else {
            return Ok(Attempt::NoRecord);
        };
        if *attempts >= limit {
            map.remove(user);
            return Ok(Attempt::LockedOut);
        }
        *attempts += 1;
        Ok(Attempt::Counted(Box::new(record.clone())))
    }

    fn reset_attempts(&self, user: &[u8]) -> Result<(), StorageError> {
        if let Some((_, attempts)) = self.lock()?.get_mut(user) {
            *attempts = 0;
        }
        Ok(())
    }

    fn put_stamp(
        &self,
        user: &[u8],
        generation: u64,
        sealed: &[u8; SEALED_STAMP_LEN],
    ) -> Result<bool, StorageError> {
        let mut map = self.lock()?;
        Ok(map
            .get_mut(user)
            .is_some_and(|(record, _)| record.set_stamp(generation, sealed)))
    }

    fn contains(&self, user: &[u8]) -> Result<bool, StorageError> {
        Ok(self.lock()?.contains_key(user))
    }
}

struct Pending {
    user: Vec<u8>,
    state: ServerLogin<Suite>,
    /// `None` for a dummy answer (unknown or locked-out user): nothing to release.
    release: Option<Zeroizing<Vec<u8>>>,
}

struct Session {
    user: Vec<u8>,
    key: Zeroizing<Vec<u8>>,
}

/// The vault: OPAQUE's server steps over a [`VaultRecords`] backend. See the module docs
/// for what the attempt limit does and does not guarantee.
pub struct VaultServer<R: VaultRecords> {
    setup: VaultServerSetup,
    records: R,
    limit: u32,
    dummy_params: VaultParams,
    pending: Mutex<Bounded<Pending>>,
    sessions: Mutex<Bounded<Session>>,
}

impl<R: VaultRecords> core::fmt::Debug for VaultServer<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VaultServer")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

fn poisoned<T>(_: T) -> VaultError {
    VaultError::Storage(StorageError("vault server: poisoned lock".into()))
}

impl<R: VaultRecords> VaultServer<R> {
    /// A vault with the default limit of [`DEFAULT_ATTEMPT_LIMIT`] starts.
    pub fn new(setup: VaultServerSetup, records: R) -> Self {
        Self::with_limit(setup, records, DEFAULT_ATTEMPT_LIMIT)
    }

    /// A vault allowing `limit` login starts without a success per record.
    pub fn with_limit(setup: VaultServerSetup, records: R, limit: u32) -> Self {
        Self {
            setup,
            records,
            limit,
            dummy_params: VaultParams::recommended(),
            pending: Mutex::new(Bounded::new()),
            sessions: Mutex::new(Bounded::new()),
        }
    }

    /// The parameters an unknown user's dummy answer names (by default
    /// [`VaultParams::recommended`]): set them to what clients register with, so the
    /// dummy looks like a real record.
    pub fn set_dummy_params(&mut self, params: VaultParams) {
        self.dummy_params = params;
    }

    /// The attempt limit.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The records backend.
    pub fn records(&self) -> &R {
        &self.records
    }

    /// Answers a registration request. The host must have authenticated `user_id`
    /// itself: registering replaces any record.
    pub fn register_start(
        &self,
        user_id: &[u8],
        request: &RegistrationRequest,
    ) -> Result<RegistrationResponse, VaultError> {
        let start = ServerRegistration::<Suite>::start(&self.setup.0, request.0.clone(), user_id)
            .map_err(|_| VaultError::Protocol)?;
        Ok(RegistrationResponse(start.message))
    }

    /// Stores the client's upload as `user_id`'s record, with a zero attempt count.
    pub fn register_finish(
        &self,
        user_id: &[u8],
        upload: &RegistrationUpload,
    ) -> Result<(), VaultError> {
        let record = VaultRecord {
            params: upload.params,
            record: ServerRegistration::finish(upload.upload.clone()),
            wrapped_key: upload.wrapped_key,
            stamp: upload.sealed_stamp,
        };
        self.records.put(user_id, &record)?;
        Ok(())
    }

    /// Counts one attempt (atomically, in the backend, before answering), then answers
    /// with OPAQUE's credential response. An unknown or locked-out user gets a dummy
    /// answer of the same shape, with [`VaultServer::set_dummy_params`]'s parameters.
    pub fn login_start(
        &self,
        user_id: &[u8],
        request: &LoginRequest,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(AttemptId, LoginResponse), VaultError> {
        let record = match self.records.begin_attempt(user_id, self.limit)? {
            Attempt::Counted(record) => Some(*record),
            Attempt::NoRecord | Attempt::LockedOut => None,
        };
        let params = record.as_ref().map_or(self.dummy_params, |r| r.params);
        let release = record.as_ref().map(|r| {
            Zeroizing::new(messages::release_payload(
                &r.wrapped_key,
                r.stamp.as_ref().map(|(_, s)| s),
            ))
        });
        let start = ServerLogin::start(
            rng,
            &self.setup.0,
            record.map(|r| r.record),
            request.0.clone(),
            user_id,
            ServerLoginParameters::default(),
        )
        .map_err(|_| VaultError::Protocol)?;
        let mut id = [0u8; AttemptId::LEN];
        rng.fill_bytes(&mut id);
        let attempt = AttemptId(id);
        self.pending.lock().map_err(poisoned)?.insert(
            attempt,
            Pending {
                user: user_id.to_vec(),
                state: start.state,
                release,
            },
        );
        Ok((
            attempt,
            LoginResponse {
                attempt_id: attempt,
                params,
                response: start.message,
            },
        ))
    }

    /// Checks the finalization of a pending attempt (each attempt id works once): on
    /// success resets the count and releases the wrapped key and sealed stamp, sealed
    /// again under this login's session key.
    pub fn login_finish(
        &self,
        user_id: &[u8],
        attempt: &AttemptId,
        finalization: &LoginFinalization,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<ReleasedKey, VaultError> {
        let pending = self
            .pending
            .lock()
            .map_err(poisoned)?
            .take(attempt)
            .ok_or(VaultError::UnknownAttempt)?;
        if !ct_eq(&pending.user, user_id) {
            return Err(VaultError::UnknownAttempt);
        }
        let finish = pending
            .state
            .finish(
                finalization.finalization.clone(),
                ServerLoginParameters::default(),
            )
            .map_err(|_| VaultError::WrongPassword)?;
        let release = pending.release.ok_or(VaultError::WrongPassword)?;
        self.records.reset_attempts(user_id)?;
        let session = Zeroizing::new(finish.session_key.to_vec());
        let sealed = seal(
            &derive(&session, RELEASE_INFO),
            &release_aad(attempt),
            &release,
            rng,
        )?;
        self.sessions.lock().map_err(poisoned)?.insert(
            *attempt,
            Session {
                user: user_id.to_vec(),
                key: session,
            },
        );
        Ok(ReleasedKey { sealed })
    }

    /// Stores a new stamp from the client of a finished login (once per login): it must
    /// authenticate under that login's session key and not be older than the stored one.
    pub fn update_stamp(
        &self,
        user_id: &[u8],
        attempt: &AttemptId,
        update: &StampUpdate,
    ) -> Result<(), VaultError> {
        let session = self
            .sessions
            .lock()
            .map_err(poisoned)?
            .take(attempt)
            .ok_or(VaultError::UnknownAttempt)?;
        if !ct_eq(&session.user, user_id) {
            return Err(VaultError::UnknownAttempt);
        }
        let mac = stamp_mac(&session.key, attempt, update.generation, &update.sealed);
        if !ct_eq(&mac, &update.mac) {
            return Err(VaultError::NotThisSession);
        }
        if !self
            .records
            .put_stamp(user_id, update.generation, &update.sealed)?
        {
            return Err(VaultError::StaleStamp {
                offered: update.generation,
            });
        }
        Ok(())
    }
}
