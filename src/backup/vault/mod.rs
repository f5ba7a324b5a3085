//! The password vault: a backup key kept behind a password with OPAQUE (RFC 9807), the
//! way WhatsApp's end-to-end encrypted backups keep theirs.
//!
//! The client is sans-IO: every step takes the previous message and returns the next,
//! as bytes a host carries over any transport. The vault never sees the password or the
//! [`BackupKey`]: it stores an OPAQUE record and the key wrapped (AES-256-GCM) under a
//! key derived from OPAQUE's export key, which only a client that knows the password
//! can compute. The suite is ristretto255, 3DH with SHA-512 and Argon2id, as in
//! opaque-ke's WhatsApp use; the Argon2id parameters are stored with the record and
//! sent back at login, so client and server agree across versions.
//!
//! # The attempt limit is only as strong as what enforces it
//!
//! OPAQUE lets the server see a wrong password only as a missing or bad final message,
//! so [`VaultServer`] counts every login start as an attempt, atomically in its
//! [`VaultRecords`] backend *before* it answers, resets the count on success, and
//! deletes the record for good once the limit is used up. That limit holds only while
//! the code and storage that enforce it are honest: WhatsApp runs it in HSMs. A software
//! vault (this module's server, the SQLite backend, the `vault` example) means trusting
//! its operator not to copy records and guess offline without a limit. Registration is
//! not authenticated here either: the host calls [`VaultServer::register_start`] only after
//! its own account layer has authenticated the user.
//!
//! A lost password (or a locked-out record) means a lost backup key, by design.
//!
//! # Rollback stamps
//!
//! A record also keeps the latest [`BackupStamp`], sealed by the client under a key
//! derived from the export key (so the vault cannot forge one), and released with the
//! key. A vault can still hand back an *older* sealed stamp it kept; the stamp protects
//! against a storage provider serving an old backup file, not against the vault itself.

mod messages;
mod server;
#[cfg(feature = "sqlite")]
mod sqlite;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use opaque_ke::{
    ClientLogin, ClientLoginFinishParameters, ClientRegistration,
    ClientRegistrationFinishParameters, Identifiers,
};
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::{BackupKey, BackupStamp};
use crate::crypto::{hkdf_sha256, hmac_sha256};

pub use messages::{
    AttemptId, LoginFinalization, LoginRequest, LoginResponse, MessageError, RegistrationRequest,
    RegistrationResponse, RegistrationUpload, ReleasedKey, StampUpdate,
};
pub use server::{
    Attempt, DEFAULT_ATTEMPT_LIMIT, MemoryRecords, StorageError, VaultRecord, VaultRecords,
    VaultServer, VaultServerSetup,
};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteRecords;

/// The OPAQUE suite: ristretto255 OPRF, 3DH over ristretto255 with SHA-512, Argon2id.
pub(crate) struct Suite;

impl opaque_ke::CipherSuite for Suite {
    type OprfCs = opaque_ke::Ristretto255;
    type KeyExchange = opaque_ke::TripleDh<opaque_ke::Ristretto255, sha2::Sha512>;
    type Ksf = argon2::Argon2<'static>;
}

const WRAP_INFO: &[u8] = b"confide vault backup key v1";
const STAMP_INFO: &[u8] = b"confide vault backup stamp v1";
const RELEASE_INFO: &[u8] = b"confide vault release v1";
const STAMP_MAC_INFO: &[u8] = b"confide vault stamp update v1";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// A wrapped backup key: nonce, 32 encrypted bytes, tag.
pub(crate) const WRAPPED_KEY_LEN: usize = NONCE_LEN + 32 + TAG_LEN;
/// A sealed stamp (as [`VaultRecords::put_stamp`] stores it): nonce, 40 encrypted
/// bytes, tag.
pub const SEALED_STAMP_LEN: usize = NONCE_LEN + BackupStamp::LEN + TAG_LEN;

/// Why a vault step failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The password is wrong, or the vault has no (more) record for this user: the two
    /// look the same on purpose, so that nobody learns which users have a vault.
    #[error("wrong password, or no vault record for this user")]
    WrongPassword,
    /// A message did not parse.
    #[error("malformed vault message: {0}")]
    Malformed(#[from] MessageError),
    /// Argon2id parameters out of the accepted range.
    #[error("Argon2id parameters out of range")]
    BadParams,
    /// A released key or stamp did not authenticate for this login session (a replayed
    /// or tampered vault answer).
    #[error("the vault's answer does not belong to this login session")]
    NotThisSession,
    /// The finalization names no pending login (already used, forgotten as
    /// one of the oldest of too many pending, or never started).
    #[error("no pending login with this attempt id")]
    UnknownAttempt,
    /// A stamp older than the one the vault holds.
    #[error("stamp generation {offered} is older than the vault's")]
    StaleStamp {
        /// The generation offered.
        offered: u64,
    },
    /// The records backend failed.
    #[error("vault storage: {0}")]
    Storage(#[from] StorageError),
    /// An OPAQUE step failed for a reason other than a wrong password.
    #[error("OPAQUE protocol error")]
    Protocol,
}

/// Argon2id's cost parameters, stored with each record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VaultParams {
    m_cost: u32,
    t_cost: u32,
    p_cost: u32,
}

impl VaultParams {
    /// Largest memory cost accepted (4 GiB in KiB), so a vault cannot make a client
    /// allocate without bound.
    pub const MAX_M_COST: u32 = 1 << 22;
    /// Largest time cost accepted.
    pub const MAX_T_COST: u32 = 64;
    /// Largest parallelism accepted.
    pub const MAX_P_COST: u32 = 64;

    /// RFC 9106's second recommended option (§4, for memory-constrained settings, which
    /// phones are): Argon2id with m = 64 MiB (65536 KiB), t = 3, p = 4. RFC 9807 §3.2
    /// defers to RFC 9106. This matches `@serenity-kit/opaque`'s "memory-constrained"
    /// default.
    pub fn recommended() -> Self {
        Self {
            m_cost: 1 << 16,
            t_cost: 3,
            p_cost: 4,
        }
    }

    /// Custom parameters (cheap ones for tests): memory in KiB, passes, lanes. Refused
    /// if Argon2 would refuse them or they exceed the `MAX_*` bounds.
    pub fn new(m_cost: u32, t_cost: u32, p_cost: u32) -> Result<Self, VaultError> {
        if m_cost > Self::MAX_M_COST || t_cost > Self::MAX_T_COST || p_cost > Self::MAX_P_COST {
            return Err(VaultError::BadParams);
        }
        argon2::Params::new(m_cost, t_cost, p_cost, None).map_err(|_| VaultError::BadParams)?;
        Ok(Self {
            m_cost,
            t_cost,
            p_cost,
        })
    }

    /// Memory cost in KiB.
    pub fn m_cost(&self) -> u32 {
        self.m_cost
    }
    /// Number of passes.
    pub fn t_cost(&self) -> u32 {
        self.t_cost
    }
    /// Number of lanes.
    pub fn p_cost(&self) -> u32 {
        self.p_cost
    }

    /// Length of [`VaultParams::to_bytes`].
    pub const LEN: usize = 12;

    /// m, t, p as big-endian u32s.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..4].copy_from_slice(&self.m_cost.to_be_bytes());
        out[4..8].copy_from_slice(&self.t_cost.to_be_bytes());
        out[8..].copy_from_slice(&self.p_cost.to_be_bytes());
        out
    }

    /// The inverse of [`VaultParams::to_bytes`], checked as [`VaultParams::new`] checks.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, VaultError> {
        let bytes: &[u8; Self::LEN] = bytes.try_into().map_err(|_| VaultError::BadParams)?;
        let (m, rest) = bytes.split_at(4);
        let (t, p) = rest.split_at(4);
        let word = |b: &[u8]| -> Result<u32, VaultError> {
            Ok(u32::from_be_bytes(
                b.try_into().map_err(|_| VaultError::BadParams)?,
            ))
        };
        Self::new(word(m)?, word(t)?, word(p)?)
    }

    pub(crate) fn argon2(&self) -> Result<argon2::Argon2<'static>, VaultError> {
        let params = argon2::Params::new(self.m_cost, self.t_cost, self.p_cost, None)
            .map_err(|_| VaultError::BadParams)?;
        Ok(argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            params,
        ))
    }
}

/// Client state between [`register_start`] and [`Registration::finish`].
pub struct Registration {
    state: ClientRegistration<Suite>,
    password: Zeroizing<Vec<u8>>,
}

impl core::fmt::Debug for Registration {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Registration(..)")
    }
}

/// Starts registering `password`: send the request to the vault's
/// [`VaultServer::register_start`].
pub fn register_start(
    password: &[u8],
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<(RegistrationRequest, Registration), VaultError> {
    let start =
        ClientRegistration::<Suite>::start(rng, password).map_err(|_| VaultError::Protocol)?;
    Ok((
        RegistrationRequest(start.message),
        Registration {
            state: start.state,
            password: Zeroizing::new(password.to_vec()),
        },
    ))
}

impl Registration {
    /// Finishes registration: the upload carries the OPAQUE record, `key` wrapped under
    /// the export key, `params`, and optionally the first stamp, sealed.
    pub fn finish(
        self,
        response: &RegistrationResponse,
        key: &BackupKey,
        params: &VaultParams,
        stamp: Option<BackupStamp>,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<RegistrationUpload, VaultError> {
        let ksf = params.argon2()?;
        let finish = self
            .state
            .finish(
                rng,
                &self.password,
                response.0.clone(),
                ClientRegistrationFinishParameters::new(Identifiers::default(), Some(&ksf)),
            )
            .map_err(|_| VaultError::Protocol)?;
        let export = Zeroizing::new(finish.export_key.to_vec());
        let wrapped = seal(
            &derive(&export, WRAP_INFO),
            WRAP_INFO,
            key.expose_bytes(),
            rng,
        )?;
        let sealed_stamp = stamp
            .map(|s| {
                seal(&derive(&export, STAMP_INFO), STAMP_INFO, &s.to_bytes(), rng)
                    .and_then(|sealed| Ok((s.generation, fixed(&sealed)?)))
            })
            .transpose()?;
        Ok(RegistrationUpload {
            params: *params,
            upload: finish.message,
            wrapped_key: fixed(&wrapped)?,
            sealed_stamp,
        })
    }
}

/// Client state between [`recover_start`] and [`Recovery::finish`].
pub struct Recovery {
    state: ClientLogin<Suite>,
    password: Zeroizing<Vec<u8>>,
}

impl core::fmt::Debug for Recovery {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Recovery(..)")
    }
}

/// Starts a login to recover the key: send the request to [`VaultServer::login_start`].
pub fn recover_start(
    password: &[u8],
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<(LoginRequest, Recovery), VaultError> {
    let start = ClientLogin::<Suite>::start(rng, password).map_err(|_| VaultError::Protocol)?;
    Ok((
        LoginRequest(start.message),
        Recovery {
            state: start.state,
            password: Zeroizing::new(password.to_vec()),
        },
    ))
}

impl Recovery {
    /// Finishes the login: a wrong password (or an unknown user) is
    /// [`VaultError::WrongPassword`], found here on the client. Send the finalization to
    /// [`VaultServer::login_finish`] and open its answer with the proof.
    pub fn finish(
        self,
        response: &LoginResponse,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(LoginFinalization, RecoveryProof), VaultError> {
        let ksf = response.params.argon2()?;
        let finish = self
            .state
            .finish(
                rng,
                &self.password,
                response.response.clone(),
                ClientLoginFinishParameters::new(None, Identifiers::default(), Some(&ksf)),
            )
            .map_err(|e| match e {
                opaque_ke::errors::ProtocolError::InvalidLoginError => VaultError::WrongPassword,
                _ => VaultError::Protocol,
            })?;
        Ok((
            LoginFinalization {
                finalization: finish.message,
            },
            RecoveryProof {
                attempt_id: response.attempt_id,
                export: Zeroizing::new(finish.export_key.to_vec()),
                session: Zeroizing::new(finish.session_key.to_vec()),
            },
        ))
    }
}

/// What the client keeps to open the vault's [`ReleasedKey`]: secret, one login's.
pub struct RecoveryProof {
    attempt_id: AttemptId,
    export: Zeroizing<Vec<u8>>,
    session: Zeroizing<Vec<u8>>,
}

impl core::fmt::Debug for RecoveryProof {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("RecoveryProof(..)")
    }
}

/// The key a login recovered, with the latest stamp the vault held.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RecoveredKey {
    /// The backup key.
    pub key: BackupKey,
    /// The latest backup's stamp, if one was ever stored.
    pub latest_stamp: Option<BackupStamp>,
}

impl RecoveryProof {
    /// OPAQUE's session key, for hosts that bind more to this login.
    pub fn session_key(&self) -> &[u8] {
        &self.session
    }

    /// Opens the vault's answer: it must be sealed under this login's session key, then
    /// the key (and stamp) must unwrap under this password's export key.
    pub fn open(&self, released: &ReleasedKey) -> Result<RecoveredKey, VaultError> {
        let release_key = derive(&self.session, RELEASE_INFO);
        let payload = open(
            &release_key,
            &release_aad(&self.attempt_id),
            &released.sealed,
        )
        .map_err(|_| VaultError::NotThisSession)?;
        let (wrapped, stamp) = messages::split_release_payload(&payload)?;
        let key_bytes = open(&derive(&self.export, WRAP_INFO), WRAP_INFO, wrapped)
            .map_err(|_| VaultError::NotThisSession)?;
        let key_bytes: [u8; 32] = key_bytes
            .as_slice()
            .try_into()
            .map_err(|_| VaultError::NotThisSession)?;
        let latest_stamp = match stamp {
            None => None,
            Some(sealed) => {
                let bytes = open(&derive(&self.export, STAMP_INFO), STAMP_INFO, sealed)
                    .map_err(|_| VaultError::NotThisSession)?;
                Some(BackupStamp::from_bytes(&bytes).ok_or(VaultError::NotThisSession)?)
            }
        };
        Ok(RecoveredKey {
            key: BackupKey::from_bytes(key_bytes),
            latest_stamp,
        })
    }

    /// Seals `stamp` as the vault's new latest, for [`VaultServer::update_stamp`] with
    /// this login's attempt id (after [`VaultServer::login_finish`] succeeded).
    pub fn seal_stamp(
        &self,
        stamp: BackupStamp,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<StampUpdate, VaultError> {
        let sealed: [u8; SEALED_STAMP_LEN] = fixed(&seal(
            &derive(&self.export, STAMP_INFO),
            STAMP_INFO,
            &stamp.to_bytes(),
            rng,
        )?)?;
        let mac = stamp_mac(&self.session, &self.attempt_id, stamp.generation, &sealed);
        Ok(StampUpdate {
            generation: stamp.generation,
            sealed,
            mac,
        })
    }
}

pub(crate) fn release_aad(attempt_id: &AttemptId) -> Vec<u8> {
    let mut aad = RELEASE_INFO.to_vec();
    aad.extend_from_slice(&attempt_id.0);
    aad
}

pub(crate) fn stamp_mac(
    session: &[u8],
    attempt_id: &AttemptId,
    generation: u64,
    sealed: &[u8],
) -> [u8; 32] {
    let key = derive(session, STAMP_MAC_INFO);
    hmac_sha256(
        key.as_ref(),
        &[&attempt_id.0, &generation.to_be_bytes(), sealed],
    )
}

pub(crate) fn derive(ikm: &[u8], info: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    hkdf_sha256(&[], ikm, info, &mut out);
    out
}

fn aead(key: &[u8; 32]) -> Result<LessSafeKey, VaultError> {
    Ok(LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, key).map_err(|_| VaultError::Protocol)?,
    ))
}

/// AES-256-GCM under a random nonce: nonce || ciphertext || tag.
pub(crate) fn seal(
    key: &[u8; 32],
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<Vec<u8>, VaultError> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let mut buf = plaintext.to_vec();
    aead(key)?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut buf,
        )
        .map_err(|_| VaultError::Protocol)?;
    let mut out = nonce.to_vec();
    out.append(&mut buf);
    Ok(out)
}

pub(crate) fn open(
    key: &[u8; 32],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    let (nonce, ct) = sealed
        .split_at_checked(NONCE_LEN)
        .ok_or(VaultError::NotThisSession)?;
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| VaultError::NotThisSession)?;
    let mut buf = Zeroizing::new(ct.to_vec());
    let len = aead(key)?
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut buf,
        )
        .map_err(|_| VaultError::NotThisSession)?
        .len();
    buf.truncate(len);
    Ok(buf)
}

fn fixed<const N: usize>(bytes: &[u8]) -> Result<[u8; N], VaultError> {
    bytes.try_into().map_err(|_| VaultError::Protocol)
}
