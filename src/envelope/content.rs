//! [`Content`]: the validated plaintext of one session message, kept as the exact bytes
//! it was parsed from or first encoded to.
//!
//! Keeping the bytes is how unknown fields survive: prost drops fields it does not
//! know, but a `Content` is never re-encoded after parsing, so what a later version
//! wrote is stored and forwarded byte for byte.

use prost::Message;
use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, Zeroizing};

use super::body::{DataMessage, Reaction, Receipt, Typing, convert};
use super::error::ContentError;
use super::padding::{pad, unpad};
use super::{DisappearingTimer, FORMAT};
use crate::Timestamp;
use crate::group::SenderKeyDistributionMessage;
use crate::proto::content as pb;

/// A message's id: 16 random bytes chosen by its sender. Random rather than a
/// timestamp, so ids from both sides of a chat never collide.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentId([u8; 16]);

impl ContentId {
    /// A fresh random id.
    pub fn random<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        Self(id)
    }

    /// Wraps id bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The id bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    pub(crate) fn parse(field: &'static str, bytes: &[u8]) -> Result<Self, ContentError> {
        <[u8; 16]>::try_from(bytes)
            .map(Self)
            .map_err(|_| ContentError::WrongLength {
                field,
                expected: 16,
                found: bytes.len(),
            })
    }
}

impl std::fmt::Debug for ContentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContentId(")?;
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

/// The fields every content message has, whatever its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The message's id.
    pub id: ContentId,
    /// When it was sent, by the sender's clock. For display; expiry uses local times.
    pub sent_at: Timestamp,
    /// The business hosting attestation serial in force for the sender, if the chat has
    /// one. Inside the encryption, so a change of hosting is seen by the recipient even
    /// if the server hides it.
    pub hosting_serial: Option<u64>,
}

impl Header {
    /// A header without a hosting serial.
    pub fn new(id: ContentId, sent_at: Timestamp) -> Self {
        Self {
            id,
            sent_at,
            hosting_serial: None,
        }
    }
}

/// What a content message carries.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Body {
    /// A chat message.
    Message(DataMessage),
    /// A reaction to a message.
    Reaction(Reaction),
    /// A delivery or read receipt.
    Receipt(Receipt),
    /// A typing indicator.
    Typing(Typing),
    /// The sender changed the chat's disappearing timer (an in-chat event).
    TimerChange(DisappearingTimer),
    /// A group member's sending chain, handed over a pairwise session: give it to
    /// [`Device::group_process`](crate::device::Device::group_process) (current layout).
    SenderKeyDistribution(SenderKeyDistributionMessage),
    /// No body this version knows: a kind added later (show "update to see this
    /// message"). Its bytes are kept like any other content.
    Unsupported,
}

/// One message's plaintext: a header and a body, validated, with its encoding.
///
/// Build one with [`Content::new`] to send; parse received bytes with
/// `Content::try_from(&[u8])` or [`Content::from_padded`]. The encoding holds media
/// keys, so it is zeroized on drop and `Debug` omits it.
#[derive(Clone, PartialEq, Eq)]
pub struct Content {
    header: Header,
    body: Body,
    encoded: Zeroizing<Vec<u8>>,
}

impl Content {
    /// Content to send, encoded now in format 1.
    pub fn new(header: Header, body: Body) -> Self {
        let mut msg = pb::Content {
            format: FORMAT,
            id: header.id.as_bytes().to_vec(),
            sent_at: header.sent_at.as_millis(),
            hosting_serial: header.hosting_serial,
            body: match &body {
                Body::Message(m) => Some(pb::content::Body::Message(m.into())),
                Body::Reaction(r) => Some(pb::content::Body::Reaction(r.into())),
                Body::Receipt(r) => Some(pb::content::Body::Receipt(r.into())),
                Body::Typing(t) => Some(pb::content::Body::Typing((*t).into())),
                Body::TimerChange(t) => Some(pb::content::Body::TimerChange(pb::TimerChange {
                    timer_seconds: t.as_secs(),
                })),
                Body::SenderKeyDistribution(m) => Some(pb::content::Body::SenderKeyDistribution(
                    m.serialized().to_vec(),
                )),
                Body::Unsupported => None,
            },
        };
        let mut encoded = Zeroizing::new(Vec::with_capacity(msg.encoded_len()));
        // Encoding into a Vec only fails for lack of capacity, which Vec grows itself.
        let _ = msg.encode(&mut *encoded);
        scrub(&mut msg);
        Self {
            header,
            body,
            encoded,
        }
    }

    /// Parses padded plaintext, as a session decrypts it.
    pub fn from_padded(padded: &[u8]) -> Result<Self, ContentError> {
        Self::try_from(unpad(padded)?)
    }

    /// The padded encoding, ready for a session to encrypt.
    pub fn to_padded(&self) -> Zeroizing<Vec<u8>> {
        pad(&self.encoded)
    }

    /// The encoding: the bytes parsed, or those [`Content::new`] wrote.
    pub fn as_bytes(&self) -> &[u8] {
        &self.encoded
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The message id.
    pub fn id(&self) -> ContentId {
        self.header.id
    }

    /// The body.
    pub fn body(&self) -> &Body {
        &self.body
    }

    /// The body, dropping (and zeroizing) the encoding.
    pub fn into_body(self) -> Body {
        self.body
    }
}

impl TryFrom<&[u8]> for Content {
    type Error = ContentError;

    /// Parses unpadded content, keeping `bytes` as they are.
    fn try_from(bytes: &[u8]) -> Result<Self, ContentError> {
        let mut msg = pb::Content::decode(bytes).map_err(|_| ContentError::Malformed)?;
        let parsed = parse(&msg);
        scrub(&mut msg);
        let (header, body) = parsed?;
        Ok(Self {
            header,
            body,
            encoded: Zeroizing::new(bytes.to_vec()),
        })
    }
}

fn parse(msg: &pb::Content) -> Result<(Header, Body), ContentError> {
    if msg.format != FORMAT {
        return Err(ContentError::UnsupportedFormat { found: msg.format });
    }
    let header = Header {
        id: ContentId::parse("id", &msg.id)?,
        sent_at: Timestamp::from_millis(msg.sent_at),
        hosting_serial: msg.hosting_serial,
    };
    let body = match &msg.body {
        Some(pb::content::Body::Message(m)) => Body::Message(m.try_into()?),
        Some(pb::content::Body::Reaction(r)) => Body::Reaction(r.try_into()?),
        Some(pb::content::Body::Receipt(r)) => Body::Receipt(r.try_into()?),
        Some(pb::content::Body::Typing(t)) => Body::Typing(t.try_into()?),
        Some(pb::content::Body::TimerChange(t)) => Body::TimerChange(convert::timer_change(t)?),
        Some(pb::content::Body::SenderKeyDistribution(b)) => Body::SenderKeyDistribution(
            SenderKeyDistributionMessage::try_from(b.as_slice())
                .map_err(|_| ContentError::Malformed)?,
        ),
        None => Body::Unsupported,
    };
    Ok((header, body))
}

/// Wipes the media keys a prost struct holds once it has served its purpose.
fn scrub(msg: &mut pb::Content) {
    match &mut msg.body {
        Some(pb::content::Body::Message(m)) => {
            for a in &mut m.attachments {
                a.media_key.zeroize();
            }
        }
        Some(pb::content::Body::SenderKeyDistribution(b)) => b.zeroize(),
        _ => {}
    }
}

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Content")
            .field("header", &self.header)
            .field("body", &self.body)
            .finish_non_exhaustive()
    }
}
