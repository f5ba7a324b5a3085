//! The UnidentifiedSenderMessageContent (USMC): what a sealed message carries inside.

use prost::Message;

use super::certificate::SenderCertificate;
use super::error::SealedOpenError;
use crate::proto::sealed as pb;

/// What kind of message the content holds, in libsignal's message-type numbering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ContentType {
    /// A 1:1 `PreKeySignalMessage` (type 3).
    PreKey,
    /// A 1:1 `SignalMessage` (type 2).
    Whisper,
    /// A group `SenderKeyMessage` (type 7).
    SenderKey,
    /// Plaintext content (type 8), e.g. a decryption-error message.
    Plaintext,
}

impl ContentType {
    /// libsignal's message type number (2, 3, 7 or 8).
    pub fn message_type(self) -> u8 {
        match self {
            Self::Whisper => 2,
            Self::PreKey => 3,
            Self::SenderKey => 7,
            Self::Plaintext => 8,
        }
    }

    /// From libsignal's message type number.
    pub fn from_message_type(t: u8) -> Option<Self> {
        match t {
            2 => Some(Self::Whisper),
            3 => Some(Self::PreKey),
            7 => Some(Self::SenderKey),
            8 => Some(Self::Plaintext),
            _ => None,
        }
    }

    fn to_proto(self) -> u32 {
        match self {
            Self::PreKey => 1,
            Self::Whisper => 2,
            Self::SenderKey => 7,
            Self::Plaintext => 8,
        }
    }

    fn from_proto(v: u32) -> Option<Self> {
        match v {
            1 => Some(Self::PreKey),
            2 => Some(Self::Whisper),
            7 => Some(Self::SenderKey),
            8 => Some(Self::Plaintext),
            _ => None,
        }
    }
}

/// How the recipient should surface a failure to decrypt the content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ContentHint {
    /// Show an error at once (0, not sent on the wire).
    #[default]
    Default,
    /// The sender will resend: delay error UI (1).
    Resendable,
    /// No error UI, e.g. typing indicators and receipts (2).
    Implicit,
    /// A value this version does not know.
    Unknown(u32),
}

impl ContentHint {
    /// The wire number.
    pub fn to_u32(self) -> u32 {
        match self {
            Self::Default => 0,
            Self::Resendable => 1,
            Self::Implicit => 2,
            Self::Unknown(v) => v,
        }
    }

    /// From the wire number.
    pub fn from_u32(v: u32) -> Self {
        match v {
            0 => Self::Default,
            1 => Self::Resendable,
            2 => Self::Implicit,
            v => Self::Unknown(v),
        }
    }
}

/// The inner content of a sealed message: type, sender certificate, the encrypted
/// message, content hint and group id. Kept with its original bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct UnidentifiedSenderMessageContent {
    content_type: ContentType,
    sender: SenderCertificate,
    contents: Vec<u8>,
    content_hint: ContentHint,
    group_id: Option<Vec<u8>>,
    serialized: Vec<u8>,
}

impl UnidentifiedSenderMessageContent {
    /// Wraps an encrypted message (`contents`: the message's serialized bytes). An empty
    /// group id is left out, as libsignal does.
    pub fn new(
        content_type: ContentType,
        sender: SenderCertificate,
        contents: Vec<u8>,
        content_hint: ContentHint,
        group_id: Option<Vec<u8>>,
    ) -> Self {
        let group_id = group_id.filter(|g| !g.is_empty());
        let serialized = pb::unidentified_sender_message::Message {
            r#type: Some(content_type.to_proto()),
            sender_certificate: Some(sender.serialized().to_vec()),
            content: Some(contents.clone()),
            content_hint: match content_hint {
                ContentHint::Default => None,
                h => Some(h.to_u32()),
            },
            group_id: group_id.clone(),
        }
        .encode_to_vec();
        Self {
            content_type,
            sender,
            contents,
            content_hint,
            group_id,
            serialized,
        }
    }

    /// The kind of the inner message.
    pub fn content_type(&self) -> ContentType {
        self.content_type
    }

    /// The sender certificate (validate it before trusting it).
    pub fn sender(&self) -> &SenderCertificate {
        &self.sender
    }

    /// The inner message's bytes.
    pub fn contents(&self) -> &[u8] {
        &self.contents
    }

    /// The content hint.
    pub fn content_hint(&self) -> ContentHint {
        self.content_hint
    }

    /// The group id, if any.
    pub fn group_id(&self) -> Option<&[u8]> {
        self.group_id.as_deref()
    }

    /// The serialized protobuf.
    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }
}

impl TryFrom<&[u8]> for UnidentifiedSenderMessageContent {
    type Error = SealedOpenError;

    fn try_from(bytes: &[u8]) -> Result<Self, SealedOpenError> {
        let bad = |field| SealedOpenError::MalformedContent { field };
        let m =
            pb::unidentified_sender_message::Message::decode(bytes).map_err(|_| bad("Message"))?;
        let content_type = m
            .r#type
            .and_then(ContentType::from_proto)
            .ok_or(bad("type"))?;
        let cert = m.sender_certificate.ok_or(bad("sender_certificate"))?;
        Ok(Self {
            content_type,
            sender: SenderCertificate::try_from(cert.as_slice())?,
            contents: m.content.ok_or(bad("content"))?,
            content_hint: ContentHint::from_u32(m.content_hint.unwrap_or(0)),
            group_id: m.group_id,
            serialized: bytes.to_vec(),
        })
    }
}

impl std::fmt::Debug for UnidentifiedSenderMessageContent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnidentifiedSenderMessageContent")
            .field("content_type", &self.content_type)
            .field("content_hint", &self.content_hint)
            .field("contents_len", &self.contents.len())
            .finish_non_exhaustive()
    }
}
