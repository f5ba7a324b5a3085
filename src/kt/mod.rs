//! Key transparency: checking a contact's identity key against an Auditable Key
//! Directory (Meta's AKD, in WhatsApp's `whatsapp_v1` configuration) whose epoch heads a
//! third-party auditor signs (Cloudflare Plexi's `SignatureMessage`).
//!
//! A directory maps [`label`]s (one per device address) to [`value`]s (the device's
//! identity key). For each epoch it publishes a root; an auditor checks the tree only grew
//! and signs `(namespace, timestamp, epoch, root)` as a [`SignedHead`]. A client checks
//! the head against its [`DirectoryTrust`], then a lookup or history proof against the
//! head's root ([`verify_lookup`], [`verify_history`]), and keeps what it verified
//! ([`ContactRecord`], [`HeadLog`]) to notice rollbacks and forks later.
//! [`Device::verify_contact_key`](crate::Device::verify_contact_key) does all of that.

mod head;
mod record;
mod verify;

#[cfg(feature = "kt-audit")]
mod audit;

#[cfg(test)]
mod head_tests;
#[cfg(test)]
mod record_tests;
#[cfg(test)]
pub(crate) mod test_directory;
#[cfg(test)]
mod tests;

pub use head::{
    AuditorKey, AuditorSigningKey, CIPHERSUITE_PROTOBUF_ED25519, HeadError, SignedHead,
};
pub use record::{ContactRecord, HeadLog, KeyCheck, KeyHistory, KeyVersion};
pub use verify::{ProofError, Verified, VrfPublicKey, verify_history, verify_lookup};

#[cfg(feature = "kt-audit")]
pub use audit::{AuditError, verify_append_only};

pub(crate) use record::{RecordViolation, check_history, check_lookup};

use crate::Address;
use crate::keys::IdentityKey;

/// How old a signed head may be before it is refused: a day, so a directory that stops
/// publishing (or an attacker replaying an old head) is noticed within one.
pub const DEFAULT_MAX_HEAD_AGE_MS: u64 = 24 * 60 * 60 * 1000;

/// How far ahead of the device's clock a head's timestamp may be: clocks drift.
pub const MAX_HEAD_CLOCK_SKEW_MS: u64 = 5 * 60 * 1000;

/// What a device trusts about one directory: its VRF key, the auditors whose signatures
/// make a head, the namespace heads must name, and how old a head may be.
#[derive(Clone, Debug)]
pub struct DirectoryTrust {
    /// The directory's VRF public key (labels are hidden behind it).
    pub vrf_public_key: VrfPublicKey,
    /// Auditors: a head signed by any one of them is accepted.
    pub auditors: Vec<AuditorKey>,
    /// The namespace a head must carry (Plexi's, e.g. `whatsapp.key-transparency.v1`).
    pub namespace: String,
    /// The oldest head accepted, in milliseconds ([`DEFAULT_MAX_HEAD_AGE_MS`]).
    pub max_head_age_ms: u64,
}

impl DirectoryTrust {
    /// Trust in one directory, with [`DEFAULT_MAX_HEAD_AGE_MS`].
    pub fn new(
        vrf_public_key: VrfPublicKey,
        auditors: Vec<AuditorKey>,
        namespace: impl Into<String>,
    ) -> Self {
        Self {
            vrf_public_key,
            auditors,
            namespace: namespace.into(),
            max_head_age_ms: DEFAULT_MAX_HEAD_AGE_MS,
        }
    }
}

/// The prefix of every label, so confide's labels never collide with another scheme's.
const LABEL_DOMAIN: &[u8] = b"confide.kt.v1";

/// The directory label of a device address: `b"confide.kt.v1" ‖ 0x00 ‖ u16be len(name) ‖
/// name ‖ u32be device_id`. The length prefix keeps `("ab", 1)` and `("a", …)` apart;
/// a name longer than `u16::MAX` bytes is cut to that length (no real name is).
pub fn label(address: &Address) -> Vec<u8> {
    let name = address.name().as_bytes();
    let len = u16::try_from(name.len()).unwrap_or(u16::MAX);
    let name = name.get(..usize::from(len)).unwrap_or(name);
    let mut out = Vec::with_capacity(LABEL_DOMAIN.len() + 1 + 2 + name.len() + 4);
    out.extend_from_slice(LABEL_DOMAIN);
    out.push(0);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(name);
    out.extend_from_slice(&address.device_id().to_be_bytes());
    out
}

/// The directory value of an identity key: its 33-byte serialization.
pub fn value(key: &IdentityKey) -> Vec<u8> {
    key.serialize().to_vec()
}
