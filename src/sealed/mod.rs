//! Sealed sender: the envelope names only the recipient; the sender's identity travels
//! encrypted, inside, as a certificate the recipient validates.
//!
//! - [`ServerCertificate`] (signed by the trust root) and [`SenderCertificate`] (signed
//!   by the server key; sender UUID, optional phone number, device, identity key,
//!   expiry). [`SenderCertificate::validate`] checks the chain against [`TrustRoots`]
//!   (one or more roots and the refused server key ids, by default
//!   [`REVOKED_SERVER_KEY_IDS`]) and the expiry against a passed-in time.
//! - [`UnidentifiedSenderMessageContent`]: type, sender certificate, the encrypted inner
//!   message, content hint and group id.
//! - v1 ([`seal_v1`], `0x11`): one recipient, AES-256-CTR + HMAC.
//! - v2 ([`seal_v2`], `0x23` sent / `0x22` received): many recipients, the content
//!   encrypted once with AES-256-GCM-SIV, a 48-byte key share per recipient;
//!   [`SealV2Context`] keeps the sender's static agreements across messages so a repeat
//!   send costs one X25519 per recipient.
//! - [`open`] takes either version, decrypts, and validates the certificate.
//!
//! ```
//! use confide::keys::{IdentityKeyPair, KeyPair};
//! use confide::sealed::{self, ContentHint, ContentType, SenderCertificate, SenderInfo,
//!     ServerCertificate, TrustRoots, UnidentifiedSenderMessageContent};
//! use confide::{SystemRng, Timestamp};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut rng = SystemRng::new();
//! let now = Timestamp::from_millis(1_700_000_000_000);
//! let trust_root = KeyPair::generate(&mut rng);
//! let server = KeyPair::generate(&mut rng);
//! let alice = IdentityKeyPair::generate(&mut rng);
//! let bob = IdentityKeyPair::generate(&mut rng);
//!
//! let server_cert = ServerCertificate::new(1, server.public(), trust_root.private(), &mut rng);
//! let info = SenderInfo {
//!     uuid: "9d0652a3-dcc3-4d11-975f-74d61598733f".into(),
//!     e164: None,
//!     device_id: 1,
//!     identity_key: *alice.identity_key(),
//!     expiration: Timestamp::from_millis(now.as_millis() + 86_400_000),
//! };
//! let cert = SenderCertificate::new(info, server_cert, server.private(), &mut rng);
//! let inner = b"an encrypted group or 1:1 message".to_vec();
//! let content = UnidentifiedSenderMessageContent::new(
//!     ContentType::SenderKey, cert, inner.clone(), ContentHint::Default, None);
//! let sealed_bytes = sealed::seal_v1(&content, &alice, bob.identity_key(), &mut rng)?;
//! let trust = TrustRoots::new(trust_root.public());
//! let opened = sealed::open(&sealed_bytes, &bob, &trust, now)?;
//! assert_eq!(opened.contents(), &inner[..]);
//! # Ok(()) }
//! ```

mod certificate;
mod content;
mod error;
mod symmetric;
mod v1;
mod v2;

pub use certificate::{
    REVOKED_SERVER_KEY_IDS, SenderCertificate, SenderInfo, ServerCertificate, TrustRoots,
};
pub use content::{ContentHint, ContentType, UnidentifiedSenderMessageContent};
pub use error::{CertificateError, SealError, SealedOpenError, SealedWireError};
pub use v1::{V1_VERSION_BYTE, seal_v1};
pub use v2::{
    MultiRecipientEntry, MultiRecipientMessage, Recipient, SealV2Context, V2_MULTI_VERSION_BYTE,
    V2_VERSION_BYTE, seal_v2,
};

use crate::Timestamp;
use crate::group::DistributionId;
use crate::keys::IdentityKeyPair;

/// Decrypts a sealed message (v1 `0x11`, v2 `0x22`/`0x23` as received) to its content
/// and validates the sender certificate under `trust` at time `now`.
pub fn open(
    bytes: &[u8],
    recipient: &IdentityKeyPair,
    trust: &TrustRoots,
    now: Timestamp,
) -> Result<UnidentifiedSenderMessageContent, SealedOpenError> {
    let content = open_unvalidated(bytes, recipient)?;
    content.sender().validate(trust, now)?;
    Ok(content)
}

/// Decrypts a sealed message without validating its certificate (libsignal's
/// `sealed_sender_decrypt_to_usmc`); public as
/// [`hazmat::open_unvalidated`](crate::hazmat::open_unvalidated).
pub(crate) fn open_unvalidated(
    bytes: &[u8],
    recipient: &IdentityKeyPair,
) -> Result<UnidentifiedSenderMessageContent, SealedOpenError> {
    let Some(&version) = bytes.first() else {
        return Err(SealedWireError::TooShort { len: 0 }.into());
    };
    match version >> 4 {
        0 | 1 => v1::open_v1(bytes, recipient),
        2 => v2::open_v2(bytes, recipient),
        _ => Err(SealedWireError::UnsupportedVersion { found: version }.into()),
    }
}

/// Which kind of service id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ServiceIdKind {
    /// An account identifier (ACI); written as the bare UUID.
    Aci,
    /// A phone-number identifier (PNI); written `PNI:<uuid>`.
    Pni,
}

/// A recipient's service id: kind and UUID (17 bytes fixed-width on the wire).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServiceId {
    kind: ServiceIdKind,
    uuid: [u8; 16],
}

impl ServiceId {
    /// A service id of the given kind.
    pub fn new(kind: ServiceIdKind, uuid: [u8; 16]) -> Self {
        Self { kind, uuid }
    }

    /// The kind.
    pub fn kind(&self) -> ServiceIdKind {
        self.kind
    }

    /// The UUID bytes.
    pub fn uuid(&self) -> &[u8; 16] {
        &self.uuid
    }

    /// Kind byte (0 ACI, 1 PNI) ‖ UUID.
    pub fn fixed_width_binary(&self) -> [u8; 17] {
        let mut out = [0u8; 17];
        out[0] = match self.kind {
            ServiceIdKind::Aci => 0,
            ServiceIdKind::Pni => 1,
        };
        out[1..].copy_from_slice(&self.uuid);
        out
    }

    /// Parses the fixed-width form.
    pub fn from_fixed_width_binary(bytes: &[u8]) -> Option<Self> {
        let (&kind, uuid) = bytes.split_first()?;
        let kind = match kind {
            0 => ServiceIdKind::Aci,
            1 => ServiceIdKind::Pni,
            _ => return None,
        };
        Some(Self {
            kind,
            uuid: <[u8; 16]>::try_from(uuid).ok()?,
        })
    }
}

impl std::fmt::Display for ServiceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.kind == ServiceIdKind::Pni {
            f.write_str("PNI:")?;
        }
        DistributionId::from_bytes(self.uuid).fmt(f)
    }
}

impl std::fmt::Debug for ServiceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServiceId({self})")
    }
}

impl std::str::FromStr for ServiceId {
    type Err = crate::group::UuidParseError;

    /// Parses `<uuid>` (ACI) or `PNI:<uuid>`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, rest) = match s.strip_prefix("PNI:") {
            Some(rest) => (ServiceIdKind::Pni, rest),
            None => (ServiceIdKind::Aci, s),
        };
        let id: DistributionId = rest.parse()?;
        Ok(Self {
            kind,
            uuid: *id.as_bytes(),
        })
    }
}
