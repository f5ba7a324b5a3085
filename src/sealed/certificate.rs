//! Server and sender certificates: the trust root signs a server key, the server key
//! signs short-lived sender certificates. Parsed with `TryFrom<&[u8]>`, keeping the
//! signed bytes as received.

use prost::Message;
use rand_core::{CryptoRng, RngCore};

use super::error::CertificateError;
use crate::Timestamp;
use crate::keys::{IdentityKey, PrivateKey, PublicKey};
use crate::proto::sealed as pb;

/// The server certificate key ids [`TrustRoots::new`] refuses. The only entry is
/// libsignal's test id.
pub const REVOKED_SERVER_KEY_IDS: &[u32] = &[0xDEAD_C357];

/// What sealed-sender validation trusts: the trust roots that may sign server
/// certificates (several while a service rotates its root) and the server key ids it
/// refuses. A value, not a constant, so a host can rotate a root or revoke a leaked
/// server key without a new release of confide.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustRoots {
    roots: Vec<PublicKey>,
    revoked: Vec<u32>,
}

impl TrustRoots {
    /// Trusts `root` alone and refuses the default [`REVOKED_SERVER_KEY_IDS`].
    pub fn new(root: PublicKey) -> Self {
        Self {
            roots: vec![root],
            revoked: REVOKED_SERVER_KEY_IDS.to_vec(),
        }
    }

    /// Trusts `root` as well (the next root during a rotation).
    pub fn with_root(mut self, root: PublicKey) -> Self {
        if !self.roots.contains(&root) {
            self.roots.push(root);
        }
        self
    }

    /// Refuses server certificates with `key_id` as well as those already refused.
    pub fn with_revoked(mut self, key_id: u32) -> Self {
        if !self.revoked.contains(&key_id) {
            self.revoked.push(key_id);
        }
        self
    }

    /// The trusted roots, in the order added.
    pub fn roots(&self) -> &[PublicKey] {
        &self.roots
    }

    /// The refused server key ids.
    pub fn revoked(&self) -> &[u32] {
        &self.revoked
    }
}

impl From<PublicKey> for TrustRoots {
    /// [`TrustRoots::new`].
    fn from(root: PublicKey) -> Self {
        Self::new(root)
    }
}

fn malformed(field: &'static str) -> CertificateError {
    CertificateError::Malformed { field }
}

/// A server key and its id, signed by the trust root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerCertificate {
    key_id: u32,
    key: PublicKey,
    certificate: Vec<u8>,
    signature: Vec<u8>,
    serialized: Vec<u8>,
}

impl ServerCertificate {
    /// Certifies `key` under `key_id`, signed with the trust root's private key.
    pub fn new<R: RngCore + CryptoRng>(
        key_id: u32,
        key: PublicKey,
        trust_root: &PrivateKey,
        rng: &mut R,
    ) -> Self {
        let certificate = pb::server_certificate::Certificate {
            id: Some(key_id),
            key: Some(key.serialize().to_vec()),
        }
        .encode_to_vec();
        let signature = trust_root.sign(rng, &certificate).to_vec();
        let serialized = pb::ServerCertificate {
            certificate: Some(certificate.clone()),
            signature: Some(signature.clone()),
        }
        .encode_to_vec();
        Self {
            key_id,
            key,
            certificate,
            signature,
            serialized,
        }
    }

    /// The server key's id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The certified server key.
    pub fn key(&self) -> &PublicKey {
        &self.key
    }

    /// The bytes as received or made.
    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }

    /// Checks `trust`'s revocation list, then that one of its roots signed this.
    pub fn validate(&self, trust: &TrustRoots) -> Result<(), CertificateError> {
        if trust.revoked.contains(&self.key_id) {
            return Err(CertificateError::Revoked {
                key_id: self.key_id,
            });
        }
        if !trust
            .roots
            .iter()
            .any(|root| root.verify_signature(&self.certificate, &self.signature))
        {
            return Err(CertificateError::UntrustedServer);
        }
        Ok(())
    }
}

impl TryFrom<&[u8]> for ServerCertificate {
    type Error = CertificateError;

    fn try_from(bytes: &[u8]) -> Result<Self, CertificateError> {
        let outer =
            pb::ServerCertificate::decode(bytes).map_err(|_| malformed("ServerCertificate"))?;
        let certificate = outer.certificate.ok_or(malformed("certificate"))?;
        let signature = outer.signature.ok_or(malformed("signature"))?;
        let inner = pb::server_certificate::Certificate::decode(certificate.as_slice())
            .map_err(|_| malformed("ServerCertificate.Certificate"))?;
        let key = inner.key.ok_or(malformed("key"))?;
        Ok(Self {
            key_id: inner.id.ok_or(malformed("id"))?,
            key: PublicKey::try_from(key.as_slice()).map_err(CertificateError::InvalidKey)?,
            certificate,
            signature,
            serialized: bytes.to_vec(),
        })
    }
}

/// Who a sender certificate names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SenderInfo {
    /// The sender's UUID (ACI) string.
    pub uuid: String,
    /// The sender's phone number, if the certificate includes it.
    pub e164: Option<String>,
    /// The sender's device id.
    pub device_id: u32,
    /// The sender's identity key.
    pub identity_key: IdentityKey,
    /// When the certificate stops being valid.
    pub expiration: Timestamp,
}

/// A sender's identity, device and expiry, signed by a server key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SenderCertificate {
    info: SenderInfo,
    signer: ServerCertificate,
    certificate: Vec<u8>,
    signature: Vec<u8>,
    serialized: Vec<u8>,
}

impl SenderCertificate {
    /// Certifies `info`, signed with the server key `signer_key` that `signer` certifies.
    pub fn new<R: RngCore + CryptoRng>(
        info: SenderInfo,
        signer: ServerCertificate,
        signer_key: &PrivateKey,
        rng: &mut R,
    ) -> Self {
        let certificate = pb::sender_certificate::Certificate {
            sender_e164: info.e164.clone(),
            sender_uuid: Some(info.uuid.clone()),
            sender_device: Some(info.device_id),
            expires: Some(info.expiration.as_millis()),
            identity_key: Some(info.identity_key.serialize().to_vec()),
            signer: Some(signer.serialized.clone()),
        }
        .encode_to_vec();
        let signature = signer_key.sign(rng, &certificate).to_vec();
        let serialized = pb::SenderCertificate {
            certificate: Some(certificate.clone()),
            signature: Some(signature.clone()),
        }
        .encode_to_vec();
        Self {
            info,
            signer,
            certificate,
            signature,
            serialized,
        }
    }

    /// Who the certificate names.
    pub fn sender(&self) -> &SenderInfo {
        &self.info
    }

    /// The server certificate that signed this one.
    pub fn signer(&self) -> &ServerCertificate {
        &self.signer
    }

    /// The bytes as received or made.
    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }

    /// Validates the chain: the server certificate under one of `trust`'s roots (and
    /// not revoked by it), this certificate under the server key, and
    /// `now <= expiration`.
    pub fn validate(&self, trust: &TrustRoots, now: Timestamp) -> Result<(), CertificateError> {
        self.signer.validate(trust)?;
        if !self
            .signer
            .key
            .verify_signature(&self.certificate, &self.signature)
        {
            return Err(CertificateError::BadSignature);
        }
        if now > self.info.expiration {
            return Err(CertificateError::Expired {
                expiration: self.info.expiration,
                now,
            });
        }
        Ok(())
    }
}

impl TryFrom<&[u8]> for SenderCertificate {
    type Error = CertificateError;

    fn try_from(bytes: &[u8]) -> Result<Self, CertificateError> {
        let outer =
            pb::SenderCertificate::decode(bytes).map_err(|_| malformed("SenderCertificate"))?;
        let certificate = outer.certificate.ok_or(malformed("certificate"))?;
        let signature = outer.signature.ok_or(malformed("signature"))?;
        let inner = pb::sender_certificate::Certificate::decode(certificate.as_slice())
            .map_err(|_| malformed("SenderCertificate.Certificate"))?;
        let key = inner.identity_key.ok_or(malformed("identity_key"))?;
        let signer = inner.signer.ok_or(malformed("signer"))?;
        let info = SenderInfo {
            uuid: inner.sender_uuid.ok_or(malformed("sender_uuid"))?,
            e164: inner.sender_e164,
            device_id: inner.sender_device.ok_or(malformed("sender_device"))?,
            identity_key: IdentityKey::new(
                PublicKey::try_from(key.as_slice()).map_err(CertificateError::InvalidKey)?,
            ),
            expiration: Timestamp::from_millis(inner.expires.ok_or(malformed("expires"))?),
        };
        Ok(Self {
            info,
            signer: ServerCertificate::try_from(signer.as_slice())?,
            certificate,
            signature,
            serialized: bytes.to_vec(),
        })
    }
}
