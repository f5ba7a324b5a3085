//! The vault's wire messages: a one-byte type tag, then fixed-size fields.

use opaque_ke::{
    CredentialFinalization, CredentialRequest, CredentialResponse, RegistrationRequest as OReq,
    RegistrationResponse as OResp, RegistrationUpload as OUpload,
};

use super::{SEALED_STAMP_LEN, Suite, VaultError, VaultParams, WRAPPED_KEY_LEN};

const TAG_REGISTRATION_REQUEST: u8 = 0x11;
const TAG_REGISTRATION_RESPONSE: u8 = 0x12;
const TAG_REGISTRATION_UPLOAD: u8 = 0x13;
const TAG_LOGIN_REQUEST: u8 = 0x21;
const TAG_LOGIN_RESPONSE: u8 = 0x22;
const TAG_LOGIN_FINALIZATION: u8 = 0x23;
const TAG_RELEASED_KEY: u8 = 0x24;
const TAG_STAMP_UPDATE: u8 = 0x31;

pub(crate) const OPAQUE_REGISTRATION_REQUEST_LEN: usize = 32;
pub(crate) const OPAQUE_REGISTRATION_RESPONSE_LEN: usize = 64;
pub(crate) const OPAQUE_UPLOAD_LEN: usize = 192;
pub(crate) const OPAQUE_CREDENTIAL_REQUEST_LEN: usize = 96;
pub(crate) const OPAQUE_CREDENTIAL_RESPONSE_LEN: usize = 320;
pub(crate) const OPAQUE_FINALIZATION_LEN: usize = 64;
/// Largest released payload: wrapped key, flag, sealed stamp, under a GCM nonce and tag.
const RELEASED_MAX_LEN: usize = 12 + WRAPPED_KEY_LEN + 1 + SEALED_STAMP_LEN + 16;

/// Why a vault message's bytes were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// Wrong first byte: not this kind of message.
    #[error("not a {expected} message")]
    WrongType {
        /// The message kind expected.
        expected: &'static str,
    },
    /// Wrong total length.
    #[error("{message} has the wrong length ({len} bytes)")]
    WrongLength {
        /// The message kind.
        message: &'static str,
        /// Bytes given.
        len: usize,
    },
    /// A field did not decode (a point not on the curve, a bad flag, bad parameters).
    #[error("{message} has a malformed field")]
    BadField {
        /// The message kind.
        message: &'static str,
    },
}

/// A cursor that takes fixed-size fields and never panics.
struct Reader<'a> {
    rest: &'a [u8],
    message: &'static str,
    len: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], tag: u8, message: &'static str) -> Result<Self, MessageError> {
        match bytes.split_first() {
            Some((&t, rest)) if t == tag => Ok(Self {
                rest,
                message,
                len: bytes.len(),
            }),
            _ => Err(MessageError::WrongType { expected: message }),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], MessageError> {
        let (head, tail) = self.rest.split_at_checked(n).ok_or(self.wrong_length())?;
        self.rest = tail;
        Ok(head)
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], MessageError> {
        self.take(N)?.try_into().map_err(|_| self.wrong_length())
    }

    fn flag(&mut self) -> Result<bool, MessageError> {
        match self.take(1)? {
            [0] => Ok(false),
            [1] => Ok(true),
            _ => Err(self.bad()),
        }
    }

    fn end(&self) -> Result<(), MessageError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(self.wrong_length())
        }
    }

    fn wrong_length(&self) -> MessageError {
        MessageError::WrongLength {
            message: self.message,
            len: self.len,
        }
    }

    fn bad(&self) -> MessageError {
        MessageError::BadField {
            message: self.message,
        }
    }
}

fn tagged(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![tag];
    for part in parts {
        out.extend_from_slice(part);
    }
    out
}

/// Client to vault: the blinded password, to start registration.
#[derive(Clone)]
pub struct RegistrationRequest(pub(crate) OReq<Suite>);

/// Vault to client: the OPRF evaluation and the vault's public key.
#[derive(Clone)]
pub struct RegistrationResponse(pub(crate) OResp<Suite>);

/// Client to vault: what the vault stores (the OPAQUE record, the wrapped key, the
/// Argon2id parameters and optionally the first sealed stamp).
#[derive(Clone)]
pub struct RegistrationUpload {
    pub(crate) params: VaultParams,
    pub(crate) upload: OUpload<Suite>,
    pub(crate) wrapped_key: [u8; WRAPPED_KEY_LEN],
    pub(crate) sealed_stamp: Option<(u64, [u8; SEALED_STAMP_LEN])>,
}

/// Client to vault: the blinded password and the first key-exchange message.
#[derive(Clone)]
pub struct LoginRequest(pub(crate) CredentialRequest<Suite>);

/// Vault to client: the attempt id, the record's Argon2id parameters and OPAQUE's
/// credential response (a dummy one, of the same shape, for an unknown user).
#[derive(Clone)]
pub struct LoginResponse {
    pub(crate) attempt_id: AttemptId,
    pub(crate) params: VaultParams,
    pub(crate) response: CredentialResponse<Suite>,
}

/// Names one login attempt: the vault's handle on its pending state (used once), and
/// what binds the released key and a stamp update to that login.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttemptId(pub(crate) [u8; 16]);

impl AttemptId {
    /// Length of [`AttemptId::to_bytes`].
    pub const LEN: usize = 16;
    /// The 16 random bytes.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        self.0
    }
    /// Parses [`AttemptId::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MessageError> {
        bytes
            .try_into()
            .map(Self)
            .map_err(|_| MessageError::WrongLength {
                message: "attempt id",
                len: bytes.len(),
            })
    }
}

impl core::fmt::Debug for AttemptId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "AttemptId(")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// Client to vault after a successful login: a new stamp, sealed under the export key
/// (the vault cannot read or forge it), its generation in clear so the vault can refuse
/// an older one, all authenticated under the login's session key.
#[derive(Clone)]
pub struct StampUpdate {
    pub(crate) generation: u64,
    pub(crate) sealed: [u8; SEALED_STAMP_LEN],
    pub(crate) mac: [u8; 32],
}

impl StampUpdate {
    /// Tag, generation, sealed stamp, MAC.
    pub fn to_bytes(&self) -> Vec<u8> {
        tagged(
            TAG_STAMP_UPDATE,
            &[&self.generation.to_be_bytes(), &self.sealed, &self.mac],
        )
    }
    /// Parses [`StampUpdate::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MessageError> {
        const M: &str = "stamp update";
        let mut r = Reader::new(bytes, TAG_STAMP_UPDATE, M)?;
        let generation = u64::from_be_bytes(r.take_array()?);
        let sealed = r.take_array()?;
        let mac = r.take_array()?;
        r.end()?;
        Ok(Self {
            generation,
            sealed,
            mac,
        })
    }
}

/// Client to vault: OPAQUE's key-exchange finalization, proving the password.
#[derive(Clone)]
pub struct LoginFinalization {
    pub(crate) finalization: CredentialFinalization<Suite>,
}

/// Vault to client: the wrapped key (and sealed stamp), sealed under this login's
/// session key.
#[derive(Clone)]
pub struct ReleasedKey {
    pub(crate) sealed: Vec<u8>,
}

macro_rules! debug_opaque {
    ($($t:ty),*) => {$(
        impl core::fmt::Debug for $t {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(concat!(stringify!($t), "(..)"))
            }
        }
    )*};
}
debug_opaque!(
    RegistrationRequest,
    RegistrationResponse,
    RegistrationUpload,
    LoginRequest,
    LoginResponse,
    LoginFinalization,
    StampUpdate,
    ReleasedKey
);

impl RegistrationRequest {
    /// Tag then the 32-byte blinded element.
    pub fn to_bytes(&self) -> Vec<u8> {
        tagged(TAG_REGISTRATION_REQUEST, &[&self.0.serialize()])
    }
    /// Parses [`RegistrationRequest::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MessageError> {
        const M: &str = "registration request";
        let mut r = Reader::new(bytes, TAG_REGISTRATION_REQUEST, M)?;
        let body = r.take(OPAQUE_REGISTRATION_REQUEST_LEN)?;
        r.end()?;
        Ok(Self(OReq::deserialize(body).map_err(|_| r.bad())?))
    }
}

impl RegistrationResponse {
    /// Tag then OPAQUE's 64-byte response.
    pub fn to_bytes(&self) -> Vec<u8> {
        tagged(TAG_REGISTRATION_RESPONSE, &[&self.0.serialize()])
    }
    /// Parses [`RegistrationResponse::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MessageError> {
        const M: &str = "registration response";
        let mut r = Reader::new(bytes, TAG_REGISTRATION_RESPONSE, M)?;
        let body = r.take(OPAQUE_REGISTRATION_RESPONSE_LEN)?;
        r.end()?;
        Ok(Self(OResp::deserialize(body).map_err(|_| r.bad())?))
    }
}

impl RegistrationUpload {
    /// Tag, parameters, OPAQUE's 192-byte upload, wrapped key, stamp flag and stamp.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = tagged(
            TAG_REGISTRATION_UPLOAD,
            &[
                &self.params.to_bytes(),
                &self.upload.serialize(),
                &self.wrapped_key,
            ],
        );
        match &self.sealed_stamp {
            None => out.push(0),
            Some((generation, sealed)) => {
                out.push(1);
                out.extend_from_slice(&generation.to_be_bytes());
                out.extend_from_slice(sealed);
            }
        }
        out
    }
    /// Parses [`RegistrationUpload::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MessageError> {
        const M: &str = "registration upload";
        let mut r = Reader::new(bytes, TAG_REGISTRATION_UPLOAD, M)?;
        let params = VaultParams::from_bytes(r.take(VaultParams::LEN)?).map_err(|_| r.bad())?;
        let upload = OUpload::deserialize(r.take(OPAQUE_UPLOAD_LEN)?).map_err(|_| r.bad())?;
        let wrapped_key = r.take_array()?;
        let sealed_stamp = if r.flag()? {
            Some((u64::from_be_bytes(r.take_array()?), r.take_array()?))
        } else {
            None
        };
        r.end()?;
        Ok(Self {
            params,
            upload,
            wrapped_key,
            sealed_stamp,
        })
    }
}

impl LoginRequest {
    /// Tag then OPAQUE's 96-byte credential request.
    pub fn to_bytes(&self) -> Vec<u8> {
        tagged(TAG_LOGIN_REQUEST, &[&self.0.serialize()])
    }
    /// Parses [`LoginRequest::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MessageError> {
        const M: &str = "login request";
        let mut r = Reader::new(bytes, TAG_LOGIN_REQUEST, M)?;
        let body = r.take(OPAQUE_CREDENTIAL_REQUEST_LEN)?;
        r.end()?;
        Ok(Self(
            CredentialRequest::deserialize(body).map_err(|_| r.bad())?,
        ))
    }
}

impl LoginResponse {
    /// The Argon2id parameters the vault says the record uses.
    pub fn params(&self) -> VaultParams {
        self.params
    }
    /// The attempt this response answers.
    pub fn attempt_id(&self) -> AttemptId {
        self.attempt_id
    }
    /// Tag, attempt id, parameters, OPAQUE's 320-byte credential response.
    pub fn to_bytes(&self) -> Vec<u8> {
        tagged(
            TAG_LOGIN_RESPONSE,
            &[
                &self.attempt_id.0,
                &self.params.to_bytes(),
                &self.response.serialize(),
            ],
        )
    }
    /// Parses [`LoginResponse::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MessageError> {
        const M: &str = "login response";
        let mut r = Reader::new(bytes, TAG_LOGIN_RESPONSE, M)?;
        let attempt_id = AttemptId(r.take_array()?);
        let params = VaultParams::from_bytes(r.take(VaultParams::LEN)?).map_err(|_| r.bad())?;
        let response = CredentialResponse::deserialize(r.take(OPAQUE_CREDENTIAL_RESPONSE_LEN)?)
            .map_err(|_| r.bad())?;
        r.end()?;
        Ok(Self {
            attempt_id,
            params,
            response,
        })
    }
}

impl LoginFinalization {
    /// Tag then OPAQUE's 64-byte finalization.
    pub fn to_bytes(&self) -> Vec<u8> {
        tagged(TAG_LOGIN_FINALIZATION, &[&self.finalization.serialize()])
    }
    /// Parses [`LoginFinalization::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MessageError> {
        const M: &str = "login finalization";
        let mut r = Reader::new(bytes, TAG_LOGIN_FINALIZATION, M)?;
        let body = r.take(OPAQUE_FINALIZATION_LEN)?;
        r.end()?;
        Ok(Self {
            finalization: CredentialFinalization::deserialize(body).map_err(|_| r.bad())?,
        })
    }
}

impl ReleasedKey {
    /// Tag then the sealed payload.
    pub fn to_bytes(&self) -> Vec<u8> {
        tagged(TAG_RELEASED_KEY, &[&self.sealed])
    }
    /// Parses [`ReleasedKey::to_bytes`] (its contents are checked by
    /// [`RecoveryProof::open`](super::RecoveryProof::open)).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MessageError> {
        const M: &str = "released key";
        let r = Reader::new(bytes, TAG_RELEASED_KEY, M)?;
        // The payload with or without a sealed stamp, under a nonce and tag.
        if r.rest.len() != RELEASED_MAX_LEN && r.rest.len() != RELEASED_MAX_LEN - SEALED_STAMP_LEN {
            return Err(r.wrong_length());
        }
        Ok(Self {
            sealed: r.rest.to_vec(),
        })
    }
}

/// The released payload: wrapped key, flag, optional sealed stamp.
pub(crate) fn release_payload(
    wrapped: &[u8; WRAPPED_KEY_LEN],
    stamp: Option<&[u8; SEALED_STAMP_LEN]>,
) -> Vec<u8> {
    let mut out = wrapped.to_vec();
    match stamp {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            out.extend_from_slice(s);
        }
    }
    out
}

pub(crate) fn split_release_payload(payload: &[u8]) -> Result<(&[u8], Option<&[u8]>), VaultError> {
    const M: &str = "released key";
    let mut r = Reader {
        rest: payload,
        message: M,
        len: payload.len(),
    };
    let wrapped = r.take(WRAPPED_KEY_LEN)?;
    let stamp = if r.flag()? {
        Some(r.take(SEALED_STAMP_LEN)?)
    } else {
        None
    };
    r.end()?;
    Ok((wrapped, stamp))
}
