//! The v3 and v4 wire messages, parsed only into validated types that keep their
//! original bytes (the MAC covers the bytes as sent, not a re-encoding).
//!
//! v4 adds to the [`SignalMessage`] the SPQR message (`pq_ratchet`, field 5) and, inside
//! prekey messages, the two parties' addresses (field 6), and to the
//! [`PreKeySignalMessage`] the Kyber prekey id and ciphertext (fields 7 and 8), which a
//! v4 message must carry and a v3 one must not.

use prost::Message;

use crate::crypto;
use crate::error::WireError;
use crate::keys::{IdentityKey, KemCiphertext, PublicKey};
use crate::proto::wire as pb;
use crate::session::ProtocolVersion;

/// The version byte of every v3 message: `(3 << 4) | 3`
/// ([`ProtocolVersion::version_byte`] of [`ProtocolVersion::V3`]).
pub const VERSION_BYTE: u8 = ProtocolVersion::V3.version_byte();

/// Length of the truncated HMAC-SHA256 at the end of a [`SignalMessage`].
pub const MAC_LEN: usize = 8;

/// libsignal's type number for a [`SignalMessage`].
pub const SIGNAL_MESSAGE_TYPE: u8 = 2;

/// libsignal's type number for a [`PreKeySignalMessage`].
pub const PREKEY_MESSAGE_TYPE: u8 = 3;

/// Length of a v4 SignalMessage's `addresses` field: sender service id (17) ‖ sender
/// device (1) ‖ recipient service id (17) ‖ recipient device (1).
pub const ADDRESSES_LEN: usize = 36;

/// A Double Ratchet message: version byte (`0x33`, `0x44`) ‖ protobuf ‖ 8-byte MAC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignalMessage {
    version: ProtocolVersion,
    ratchet_key: PublicKey,
    counter: u32,
    previous_counter: u32,
    ciphertext: Vec<u8>,
    pq_ratchet: Vec<u8>,
    addresses: Option<[u8; ADDRESSES_LEN]>,
    serialized: Vec<u8>,
}

/// What a v4 [`SignalMessage`] carries beyond v3's fields (empty in v3).
#[derive(Clone, Debug, Default)]
pub(crate) struct Extension {
    /// The SPQR message (field 5, left out when empty).
    pub(crate) pq_ratchet: Vec<u8>,
    /// The addresses (field 6).
    pub(crate) addresses: Option<[u8; ADDRESSES_LEN]>,
}

impl SignalMessage {
    /// Builds and MACs a message of `version`. `sender` and `receiver` are the two
    /// identity keys in that order, as the MAC input requires.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        version: ProtocolVersion,
        mac_key: &[u8; 32],
        ratchet_key: PublicKey,
        counter: u32,
        previous_counter: u32,
        ciphertext: Vec<u8>,
        extension: Extension,
        (sender, receiver): (&IdentityKey, &IdentityKey),
    ) -> Self {
        let Extension {
            pq_ratchet,
            addresses,
        } = extension;
        let body = pb::SignalMessage {
            ratchet_key: Some(ratchet_key.serialize().to_vec()),
            counter: Some(counter),
            previous_counter: Some(previous_counter),
            ciphertext: Some(ciphertext),
            pq_ratchet: (!pq_ratchet.is_empty()).then(|| pq_ratchet.clone()),
            addresses: addresses.map(|a| a.to_vec()),
        };
        let mut serialized = Vec::with_capacity(1 + body.encoded_len() + MAC_LEN);
        serialized.push(version.version_byte());
        // Encoding into a Vec only fails for lack of capacity, which Vec grows itself.
        let _ = body.encode(&mut serialized);
        let mac = compute_mac(mac_key, sender, receiver, &serialized);
        serialized.extend_from_slice(&mac);
        Self {
            version,
            ratchet_key,
            counter,
            previous_counter,
            ciphertext: body.ciphertext.unwrap_or_default(),
            pq_ratchet,
            addresses,
            serialized,
        }
    }

    /// The SPQR message (v4; empty when the field is absent, and always in v3).
    pub fn pq_ratchet(&self) -> &[u8] {
        &self.pq_ratchet
    }

    /// The addresses a v4 prekey message's inner message binds, if it carries them.
    pub fn addresses(&self) -> Option<&[u8; ADDRESSES_LEN]> {
        self.addresses.as_ref()
    }

    /// The protocol version its first byte names.
    pub fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// The sender's current ratchet public key.
    pub fn ratchet_key(&self) -> &PublicKey {
        &self.ratchet_key
    }

    /// The message's index in its sending chain.
    pub fn counter(&self) -> u32 {
        self.counter
    }

    /// The length of the sender's previous sending chain.
    pub fn previous_counter(&self) -> u32 {
        self.previous_counter
    }

    /// The AES-256-CBC ciphertext.
    pub fn ciphertext(&self) -> &[u8] {
        &self.ciphertext
    }

    /// The bytes as sent.
    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }

    /// Checks the MAC in constant time.
    pub(crate) fn verify_mac(
        &self,
        mac_key: &[u8; 32],
        sender: &IdentityKey,
        receiver: &IdentityKey,
    ) -> bool {
        let split = self.serialized.len() - MAC_LEN;
        let expected = compute_mac(mac_key, sender, receiver, &self.serialized[..split]);
        crypto::ct_eq(&expected, &self.serialized[split..])
    }
}

fn compute_mac(
    mac_key: &[u8; 32],
    sender: &IdentityKey,
    receiver: &IdentityKey,
    message: &[u8],
) -> [u8; MAC_LEN] {
    let full = crypto::hmac_sha256(
        mac_key,
        &[&sender.serialize(), &receiver.serialize(), message],
    );
    let mut out = [0u8; MAC_LEN];
    out.copy_from_slice(&full[..MAC_LEN]);
    out
}

/// The version the first byte names; a version this release does not speak (or a
/// relabelled byte whose nibbles disagree) is refused, not ignored.
fn parse_version(bytes: &[u8]) -> Result<ProtocolVersion, WireError> {
    let &found = bytes.first().ok_or(WireError::TooShort { len: 0 })?;
    ProtocolVersion::from_version_byte(found).ok_or(WireError::UnsupportedVersion { found })
}

fn key_field(field: &'static str, value: Option<&Vec<u8>>) -> Result<PublicKey, WireError> {
    let bytes = value.ok_or(WireError::MissingField { field })?;
    PublicKey::try_from(&bytes[..]).map_err(|source| WireError::InvalidKey { field, source })
}

impl TryFrom<&[u8]> for SignalMessage {
    type Error = WireError;

    fn try_from(bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.len() < 1 + MAC_LEN {
            return Err(WireError::TooShort { len: bytes.len() });
        }
        let version = parse_version(bytes)?;
        let body = &bytes[1..bytes.len() - MAC_LEN];
        let msg = pb::SignalMessage::decode(body).map_err(|_| WireError::Malformed)?;
        let ratchet_key = key_field("ratchet_key", msg.ratchet_key.as_ref())?;
        let counter = msg
            .counter
            .ok_or(WireError::MissingField { field: "counter" })?;
        let ciphertext = msg.ciphertext.ok_or(WireError::MissingField {
            field: "ciphertext",
        })?;
        // v3 has no post-quantum fields: a v3 message carrying one is not v3.
        if version == ProtocolVersion::V3 {
            if msg.pq_ratchet.is_some() {
                return Err(WireError::UnexpectedField {
                    field: "pq_ratchet",
                });
            }
            if msg.addresses.is_some() {
                return Err(WireError::UnexpectedField { field: "addresses" });
            }
        }
        let addresses = msg
            .addresses
            .map(|a| {
                <[u8; ADDRESSES_LEN]>::try_from(&a[..]).map_err(|_| WireError::InvalidLength {
                    field: "addresses",
                    found: a.len(),
                })
            })
            .transpose()?;
        Ok(Self {
            version,
            ratchet_key,
            counter,
            previous_counter: msg.previous_counter.unwrap_or(0),
            ciphertext,
            pq_ratchet: msg.pq_ratchet.unwrap_or_default(),
            addresses,
            serialized: bytes.to_vec(),
        })
    }
}

/// The first messages of a session: version byte (`0x33`, `0x44`) ‖ protobuf, wrapping a
/// [`SignalMessage`] and carrying what the receiver needs for X3DH or PQXDH.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreKeySignalMessage {
    registration_id: u32,
    pre_key_id: Option<u32>,
    signed_pre_key_id: u32,
    base_key: PublicKey,
    identity_key: IdentityKey,
    kyber: Option<(u32, KemCiphertext)>,
    message: SignalMessage,
    serialized: Vec<u8>,
}

/// The handshake header fields of a [`PreKeySignalMessage`].
#[derive(Clone, Debug)]
pub(crate) struct PreKeyHeader {
    pub(crate) registration_id: u32,
    pub(crate) pre_key_id: Option<u32>,
    pub(crate) signed_pre_key_id: u32,
    pub(crate) base_key: PublicKey,
    pub(crate) identity_key: IdentityKey,
    /// v4: the Kyber prekey id and the ciphertext encapsulated to it.
    pub(crate) kyber: Option<(u32, KemCiphertext)>,
}

impl PreKeySignalMessage {
    pub(crate) fn new(header: PreKeyHeader, message: SignalMessage) -> Self {
        let body = pb::PreKeySignalMessage {
            pre_key_id: header.pre_key_id,
            base_key: Some(header.base_key.serialize().to_vec()),
            identity_key: Some(header.identity_key.serialize().to_vec()),
            message: Some(message.serialized().to_vec()),
            registration_id: Some(header.registration_id),
            signed_pre_key_id: Some(header.signed_pre_key_id),
            kyber_pre_key_id: header.kyber.as_ref().map(|(id, _)| *id),
            kyber_ciphertext: header.kyber.as_ref().map(|(_, ct)| ct.serialize()),
        };
        let mut serialized = Vec::with_capacity(1 + body.encoded_len());
        serialized.push(message.version().version_byte());
        let _ = body.encode(&mut serialized);
        Self {
            registration_id: header.registration_id,
            pre_key_id: header.pre_key_id,
            signed_pre_key_id: header.signed_pre_key_id,
            base_key: header.base_key,
            identity_key: header.identity_key,
            kyber: header.kyber,
            message,
            serialized,
        }
    }

    /// The Kyber prekey used (v4 only).
    pub fn kyber_pre_key_id(&self) -> Option<u32> {
        self.kyber.as_ref().map(|(id, _)| *id)
    }

    /// The Kyber ciphertext (v4 only), the same in every prekey message of a session.
    pub fn kyber_ciphertext(&self) -> Option<&KemCiphertext> {
        self.kyber.as_ref().map(|(_, ct)| ct)
    }

    /// The sender's registration id.
    pub fn registration_id(&self) -> u32 {
        self.registration_id
    }

    /// The one-time prekey used, if any.
    pub fn pre_key_id(&self) -> Option<u32> {
        self.pre_key_id
    }

    /// The signed prekey used.
    pub fn signed_pre_key_id(&self) -> u32 {
        self.signed_pre_key_id
    }

    /// The initiator's X3DH ephemeral (base) key.
    pub fn base_key(&self) -> &PublicKey {
        &self.base_key
    }

    /// The initiator's identity key.
    pub fn identity_key(&self) -> &IdentityKey {
        &self.identity_key
    }

    /// The protocol version (the wrapped message's).
    pub fn version(&self) -> ProtocolVersion {
        self.message.version()
    }

    /// The wrapped message.
    pub fn message(&self) -> &SignalMessage {
        &self.message
    }

    /// The bytes as sent.
    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }

    pub(crate) fn header(&self) -> PreKeyHeader {
        PreKeyHeader {
            registration_id: self.registration_id,
            pre_key_id: self.pre_key_id,
            signed_pre_key_id: self.signed_pre_key_id,
            base_key: self.base_key,
            identity_key: self.identity_key,
            kyber: self.kyber.clone(),
        }
    }
}

impl TryFrom<&[u8]> for PreKeySignalMessage {
    type Error = WireError;

    fn try_from(bytes: &[u8]) -> Result<Self, WireError> {
        let version = parse_version(bytes)?;
        let msg = pb::PreKeySignalMessage::decode(&bytes[1..]).map_err(|_| WireError::Malformed)?;
        let base_key = key_field("base_key", msg.base_key.as_ref())?;
        let identity_key = IdentityKey::new(key_field("identity_key", msg.identity_key.as_ref())?);
        let signed_pre_key_id = msg.signed_pre_key_id.ok_or(WireError::MissingField {
            field: "signed_pre_key_id",
        })?;
        let inner = msg
            .message
            .ok_or(WireError::MissingField { field: "message" })?;
        // Kyber id and ciphertext come together, in v4 and only there.
        let kyber = match (version, msg.kyber_pre_key_id, msg.kyber_ciphertext) {
            (ProtocolVersion::V3, None, None) => None,
            (ProtocolVersion::V3, Some(_), _) => {
                return Err(WireError::UnexpectedField {
                    field: "kyber_pre_key_id",
                });
            }
            (ProtocolVersion::V3, None, Some(_)) => {
                return Err(WireError::UnexpectedField {
                    field: "kyber_ciphertext",
                });
            }
            (_, Some(id), Some(ct)) => {
                let ct =
                    KemCiphertext::from_bytes(&ct).map_err(|source| WireError::InvalidKey {
                        field: "kyber_ciphertext",
                        source,
                    })?;
                Some((id, ct))
            }
            (_, None, _) => {
                return Err(WireError::MissingField {
                    field: "kyber_pre_key_id",
                });
            }
            (_, Some(_), None) => {
                return Err(WireError::MissingField {
                    field: "kyber_ciphertext",
                });
            }
        };
        let message = SignalMessage::try_from(&inner[..])?;
        // The wrapper and the message it carries speak one version.
        if message.version() != version {
            return Err(WireError::UnsupportedVersion {
                found: message.version().version_byte(),
            });
        }
        Ok(Self {
            registration_id: msg.registration_id.unwrap_or(0),
            pre_key_id: msg.pre_key_id,
            signed_pre_key_id,
            base_key,
            identity_key,
            kyber,
            message,
            serialized: bytes.to_vec(),
        })
    }
}

/// Either kind of 1:1 message, as `encrypt` returns and `decrypt` takes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CiphertextMessage {
    /// A message in an established session (type 2).
    Signal(SignalMessage),
    /// A message that can also start a session (type 3).
    PreKey(PreKeySignalMessage),
}

impl CiphertextMessage {
    /// Parses bytes received with libsignal's type number (2 or 3).
    pub fn from_parts(message_type: u8, bytes: &[u8]) -> Result<Self, WireError> {
        match message_type {
            SIGNAL_MESSAGE_TYPE => SignalMessage::try_from(bytes).map(Self::Signal),
            PREKEY_MESSAGE_TYPE => PreKeySignalMessage::try_from(bytes).map(Self::PreKey),
            found => Err(WireError::UnexpectedType { found }),
        }
    }

    /// libsignal's type number: 2 or 3.
    pub fn message_type(&self) -> u8 {
        match self {
            Self::Signal(_) => SIGNAL_MESSAGE_TYPE,
            Self::PreKey(_) => PREKEY_MESSAGE_TYPE,
        }
    }

    /// The bytes to send.
    pub fn serialized(&self) -> &[u8] {
        match self {
            Self::Signal(m) => m.serialized(),
            Self::PreKey(m) => m.serialized(),
        }
    }
}
