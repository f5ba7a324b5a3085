//! Signed hosting attestations and their verification.

use std::collections::BTreeMap;

use prost::Message;
use rand_core::{CryptoRng, RngCore};

use super::hosting::{BusinessId, HostingMode, Provider, SelfManagedEndpoint};
use crate::Timestamp;
use crate::keys::{IdentityKey, IdentityKeyPair, SIGNATURE_LEN};
use crate::proto::business as pb;

/// The format written by this release.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// Prefixed to the body before signing, so the signature cannot be replayed as any other
/// kind of statement by the same key.
const SIGNING_LABEL: &[u8] = b"confide.business.hosting-attestation.v1";

/// Persisted business state (a tag, a verifier, a tracker) that cannot be loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The protobuf does not decode.
    #[error("persisted business state is malformed")]
    Malformed,
    /// Written in a format this release does not know.
    #[error("persisted business state format {found} is not supported")]
    UnsupportedVersion {
        /// The format found.
        found: u32,
    },
    /// A field holds a value outside its domain.
    #[error("persisted business state has an invalid {field}")]
    InvalidField {
        /// The field's name in `business.proto`.
        field: &'static str,
    },
}

pub(crate) fn check_version(found: u32) -> Result<(), LoadError> {
    if found == FORMAT_VERSION {
        Ok(())
    } else {
        Err(LoadError::UnsupportedVersion { found })
    }
}

/// An attestation could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Serial 0 is reserved for "none".
    #[error("attestation serial must be at least 1")]
    ZeroSerial,
    /// It would expire before (or when) it takes effect.
    #[error("attestation expires before it takes effect")]
    EmptyValidity,
}

/// A business's statement of how its end of the chat is hosted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostingAttestation {
    business_id: BusinessId,
    mode: HostingMode,
    serial: u64,
    effective_from: Timestamp,
    expires_at: Timestamp,
}

impl HostingAttestation {
    /// A statement valid from `effective_from` until (not including) `expires_at`.
    /// Serials must grow with every new statement; verifiers refuse older ones.
    pub fn new(
        business_id: BusinessId,
        mode: HostingMode,
        serial: u64,
        effective_from: Timestamp,
        expires_at: Timestamp,
    ) -> Result<Self, BuildError> {
        if serial == 0 {
            return Err(BuildError::ZeroSerial);
        }
        if expires_at <= effective_from {
            return Err(BuildError::EmptyValidity);
        }
        Ok(Self {
            business_id,
            mode,
            serial,
            effective_from,
            expires_at,
        })
    }

    /// The business.
    pub fn business_id(&self) -> &BusinessId {
        &self.business_id
    }

    /// The hosting.
    pub fn mode(&self) -> &HostingMode {
        &self.mode
    }

    /// The serial.
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// Valid from.
    pub fn effective_from(&self) -> Timestamp {
        self.effective_from
    }

    /// Valid until (exclusive).
    pub fn expires_at(&self) -> Timestamp {
        self.expires_at
    }

    /// Signs the statement with the business's identity key.
    pub fn sign<R: RngCore + CryptoRng>(
        &self,
        rng: &mut R,
        business_key: &IdentityKeyPair,
    ) -> SignedAttestation {
        let body = self.to_proto().encode_to_vec();
        let signature = business_key.sign(rng, &signing_input(&body));
        SignedAttestation { body, signature }
    }

    fn to_proto(&self) -> pb::HostingAttestationBody {
        let (mode, provider, retention_days) = mode_to_proto(&self.mode);
        pb::HostingAttestationBody {
            format_version: FORMAT_VERSION,
            business_id: self.business_id.as_str().to_owned(),
            mode,
            provider,
            serial: self.serial,
            effective_from_ms: self.effective_from.as_millis(),
            expires_at_ms: self.expires_at.as_millis(),
            retention_days,
        }
    }

    fn from_proto(p: pb::HostingAttestationBody) -> Result<Self, LoadError> {
        check_version(p.format_version)?;
        let business_id = BusinessId::new(p.business_id).map_err(|_| LoadError::InvalidField {
            field: "business_id",
        })?;
        let mode = mode_from_proto(p.mode, p.provider, p.retention_days)?;
        Self::new(
            business_id,
            mode,
            p.serial,
            Timestamp::from_millis(p.effective_from_ms),
            Timestamp::from_millis(p.expires_at_ms),
        )
        .map_err(|_| LoadError::InvalidField { field: "serial" })
    }
}

pub(crate) fn provider_to_proto(p: &Provider) -> pb::Provider {
    pb::Provider {
        name: p.name().to_owned(),
        key_fingerprint: p.key_fingerprint().to_vec(),
    }
}

pub(crate) fn mode_to_proto(mode: &HostingMode) -> (i32, Option<pb::Provider>, Option<u32>) {
    match mode {
        HostingMode::SelfManaged(SelfManagedEndpoint::BusinessApp) => {
            (pb::Mode::SelfManagedApp as i32, None, None)
        }
        HostingMode::SelfManaged(SelfManagedEndpoint::OwnApiServers) => {
            (pb::Mode::SelfManagedServers as i32, None, None)
        }
        HostingMode::OperatorCloud {
            operator,
            retention_days,
        } => (
            pb::Mode::OperatorCloud as i32,
            Some(provider_to_proto(operator)),
            Some(*retention_days),
        ),
        HostingMode::VendorManaged {
            vendor,
            retention_days,
        } => (
            pb::Mode::VendorManaged as i32,
            Some(provider_to_proto(vendor)),
            *retention_days,
        ),
    }
}

pub(crate) fn mode_from_proto(
    mode: i32,
    provider: Option<pb::Provider>,
    retention_days: Option<u32>,
) -> Result<HostingMode, LoadError> {
    let parse = |p: Option<pb::Provider>| -> Result<Provider, LoadError> {
        let p = p.ok_or(LoadError::InvalidField { field: "provider" })?;
        let fp = <[u8; 32]>::try_from(p.key_fingerprint.as_slice()).map_err(|_| {
            LoadError::InvalidField {
                field: "key_fingerprint",
            }
        })?;
        Provider::with_fingerprint(p.name, fp)
            .map_err(|_| LoadError::InvalidField { field: "provider" })
    };
    Ok(match pb::Mode::try_from(mode) {
        Ok(pb::Mode::SelfManagedApp) => HostingMode::SelfManaged(SelfManagedEndpoint::BusinessApp),
        Ok(pb::Mode::SelfManagedServers) => {
            HostingMode::SelfManaged(SelfManagedEndpoint::OwnApiServers)
        }
        Ok(pb::Mode::OperatorCloud) => HostingMode::OperatorCloud {
            operator: parse(provider)?,
            retention_days: retention_days.ok_or(LoadError::InvalidField {
                field: "retention_days",
            })?,
        },
        Ok(pb::Mode::VendorManaged) => HostingMode::VendorManaged {
            vendor: parse(provider)?,
            retention_days,
        },
        Ok(pb::Mode::Unspecified) | Err(_) => {
            return Err(LoadError::InvalidField { field: "mode" });
        }
    })
}

fn signing_input(body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNING_LABEL.len() + body.len());
    m.extend_from_slice(SIGNING_LABEL);
    m.extend_from_slice(body);
    m
}

/// An attestation as published: the exact body bytes and the signature over them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedAttestation {
    body: Vec<u8>,
    signature: [u8; SIGNATURE_LEN],
}

impl SignedAttestation {
    /// The `business.proto` `SignedHostingAttestation` encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        pb::SignedHostingAttestation {
            body: self.body.clone(),
            signature: self.signature.to_vec(),
        }
        .encode_to_vec()
    }

    /// Parses the outer envelope only; the body is read after its signature checks out.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AttestationError> {
        let p =
            pb::SignedHostingAttestation::decode(bytes).map_err(|_| AttestationError::Malformed)?;
        let signature = <[u8; SIGNATURE_LEN]>::try_from(p.signature.as_slice())
            .map_err(|_| AttestationError::BadSignature)?;
        Ok(Self {
            body: p.body,
            signature,
        })
    }
}

/// An attestation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttestationError {
    /// The bytes do not decode.
    #[error("attestation is malformed")]
    Malformed,
    /// The signature does not verify under the business's identity key.
    #[error("attestation signature does not verify")]
    BadSignature,
    /// Signed, but the body is not a valid statement.
    #[error("attestation body is invalid: {0}")]
    InvalidBody(#[source] LoadError),
    /// Signed by the key, but about another business.
    #[error("attestation is about another business")]
    WrongBusiness,
    /// Not valid yet.
    #[error("attestation is not yet in effect")]
    NotYetEffective {
        /// When it takes effect.
        effective_from: Timestamp,
    },
    /// No longer valid.
    #[error("attestation has expired")]
    Expired {
        /// When it expired.
        expired_at: Timestamp,
    },
    /// Older than one already seen: a downgrade.
    #[error("attestation serial {found} is older than serial {seen} already seen")]
    Downgrade {
        /// Highest serial seen.
        seen: u64,
        /// Serial offered.
        found: u64,
    },
    /// Same serial as one already seen, different content.
    #[error("attestation serial {serial} was reused for different content")]
    SerialReused {
        /// The serial.
        serial: u64,
    },
}

/// An attestation whose signature, validity window and serial were checked. Only
/// [`AttestationVerifier::verify`] makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedAttestation {
    attestation: HostingAttestation,
}

impl VerifiedAttestation {
    /// The statement.
    pub fn attestation(&self) -> &HostingAttestation {
        &self.attestation
    }

    /// The business.
    pub fn business_id(&self) -> &BusinessId {
        &self.attestation.business_id
    }

    /// The hosting.
    pub fn mode(&self) -> &HostingMode {
        &self.attestation.mode
    }

    /// The serial.
    pub fn serial(&self) -> u64 {
        self.attestation.serial
    }
}

/// Remembers the highest serial seen per business, which is what makes a downgrade to
/// an older (say, end-to-end) statement detectable.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttestationVerifier {
    seen: BTreeMap<BusinessId, (u64, [u8; 32])>,
}

impl AttestationVerifier {
    /// A verifier that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// The highest serial seen for `business`.
    pub fn highest_serial(&self, business: &BusinessId) -> Option<u64> {
        self.seen.get(business).map(|s| s.0)
    }

    /// Checks `signed` for `business`, whose identity key is `business_key`, at `now`.
    /// On success the serial is remembered; on failure nothing changes.
    pub fn verify(
        &mut self,
        signed: &SignedAttestation,
        business: &BusinessId,
        business_key: &IdentityKey,
        now: Timestamp,
    ) -> Result<VerifiedAttestation, AttestationError> {
        if !business_key.verify_signature(&signing_input(&signed.body), &signed.signature) {
            return Err(AttestationError::BadSignature);
        }
        let body = pb::HostingAttestationBody::decode(signed.body.as_slice())
            .map_err(|_| AttestationError::InvalidBody(LoadError::Malformed))?;
        let attestation =
            HostingAttestation::from_proto(body).map_err(AttestationError::InvalidBody)?;
        if &attestation.business_id != business {
            return Err(AttestationError::WrongBusiness);
        }
        if now < attestation.effective_from {
            return Err(AttestationError::NotYetEffective {
                effective_from: attestation.effective_from,
            });
        }
        if now >= attestation.expires_at {
            return Err(AttestationError::Expired {
                expired_at: attestation.expires_at,
            });
        }
        let hash = crate::crypto::sha256(&signed.body);
        if let Some(&(seen, seen_hash)) = self.seen.get(business) {
            if attestation.serial < seen {
                return Err(AttestationError::Downgrade {
                    seen,
                    found: attestation.serial,
                });
            }
            if attestation.serial == seen && hash != seen_hash {
                return Err(AttestationError::SerialReused { serial: seen });
            }
        }
        self.seen
            .insert(business.clone(), (attestation.serial, hash));
        Ok(VerifiedAttestation { attestation })
    }

    /// The `business.proto` `VerifierState` encoding, format 1.
    pub fn to_bytes(&self) -> Vec<u8> {
        pb::VerifierState {
            format_version: FORMAT_VERSION,
            seen: self
                .seen
                .iter()
                .map(|(b, (serial, hash))| pb::SeenSerial {
                    business_id: b.as_str().to_owned(),
                    serial: *serial,
                    body_sha256: hash.to_vec(),
                })
                .collect(),
        }
        .encode_to_vec()
    }

    /// Loads what [`AttestationVerifier::to_bytes`] wrote.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, LoadError> {
        let p = pb::VerifierState::decode(bytes).map_err(|_| LoadError::Malformed)?;
        check_version(p.format_version)?;
        let mut seen = BTreeMap::new();
        for s in p.seen {
            let b = BusinessId::new(s.business_id).map_err(|_| LoadError::InvalidField {
                field: "business_id",
            })?;
            let h = <[u8; 32]>::try_from(s.body_sha256.as_slice()).map_err(|_| {
                LoadError::InvalidField {
                    field: "body_sha256",
                }
            })?;
            seen.insert(b, (s.serial, h));
        }
        Ok(Self { seen })
    }
}

/// The serial a business message was sent under, carried inside its encrypted content
/// so a hosting change is noticed even without a profile refresh.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostingTag {
    /// The business.
    pub business_id: BusinessId,
    /// The attestation serial.
    pub serial: u64,
}

impl HostingTag {
    /// The `business.proto` `HostingTag` encoding, to embed in message content.
    pub fn to_bytes(&self) -> Vec<u8> {
        pb::HostingTag {
            format_version: FORMAT_VERSION,
            business_id: self.business_id.as_str().to_owned(),
            serial: self.serial,
        }
        .encode_to_vec()
    }

    /// Parses a tag taken from decrypted content.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, LoadError> {
        let p = pb::HostingTag::decode(bytes).map_err(|_| LoadError::Malformed)?;
        check_version(p.format_version)?;
        Ok(Self {
            business_id: BusinessId::new(p.business_id).map_err(|_| LoadError::InvalidField {
                field: "business_id",
            })?,
            serial: p.serial,
        })
    }
}
