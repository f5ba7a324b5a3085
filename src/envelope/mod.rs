//! What travels inside a session: typed content messages, padding, and disappearing
//! messages.
//!
//! The format is `proto/content.proto` (format 1). Received bytes are parsed only into
//! validated types ([`Content`] via `TryFrom<&[u8]>` or [`Content::from_padded`]); the
//! prost structs stay private. A parsed `Content` keeps its bytes, so fields added by a
//! later version survive storage and forwarding byte for byte.
//!
//! Sending:
//!
//! ```
//! use confide::envelope::{Chat, Content, DataMessage, DisappearingTimer, Header, ContentId};
//! use confide::{SystemRng, Timestamp};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut rng = SystemRng::new();
//! let now = Timestamp::from_millis(1_700_000_000_000);
//! let mut chat = Chat::new(DisappearingTimer::DAYS_7);
//! let header = Header::new(ContentId::random(&mut rng), now);
//! let content = chat.send(header, DataMessage::builder().text("hi"))?;
//! let padded = content.to_padded(); // encrypt this with `confide::session::cipher::encrypt`
//! assert_eq!(padded.len(), 160);
//! assert_eq!(Content::from_padded(&padded)?, content);
//! # Ok(()) }
//! ```
//!
//! # Padding
//!
//! Content is padded before encryption with Signal's scheme: append `0x80`, then zeros up
//! to the next multiple of [`PADDING_BLOCK`] (160) bytes. The marker is always added, so
//! content of 0..=159 bytes pads to 160, 160..=319 to 320, and so on: the server learns
//! the size class, not the size. Overhead: 1 to 160 bytes per message; the session's
//! AES-CBC then adds one 16-byte PKCS#7 block, so ciphertext bodies are `160·k + 16`
//! bytes. (Signal's own clients pad to `160·k − 1` so PKCS#7 adds a single byte instead;
//! confide keeps whole blocks, 15 bytes more per message.) [`unpad`] accepts exactly what
//! [`pad`] writes and refuses anything else with a [`PaddingError`]. It runs after the
//! session has checked the MAC, so its early returns tell a forger nothing.
//!
//! # Disappearing messages
//!
//! A chat has a [`DisappearingTimer`] (24 hours, 7 days, 90 days, or off); a new chat
//! starts under the user's default. Each message carries the timer its sender had in
//! force, and a timer change (an in-chat event) applies to later messages only. A store
//! keeps one [`MessageLifecycle`] per message and calls [`purge`]; [`Chat`] does the same
//! in memory. The rules, pure functions of the times passed in:
//!
//! - a message with a timer expires `timer` after it was **sent**, for its sender, and
//!   `timer` after it was **read**, for its recipient (Signal's rule). An unread received
//!   message does not run down: its reader has not seen it yet. Each side counts on its
//!   own clock, so skew between devices never shortens or stretches a lifetime, and the
//!   `sent_at` a peer claims plays no part;
//! - a view-once message is gone once opened (a second open is
//!   [`ViewOnceError::AlreadyOpened`]), and expires unopened [`VIEW_ONCE_LIFETIME`] (14
//!   days) after it was sent or received;
//! - when several rules apply the earliest wins; at the expiry instant the message is
//!   already gone.
//!
//! Purging names the messages and the attachments (by [`BlobId`]) whose media keys the
//! store must delete; in memory, keys are zeroized as their messages drop.

mod attachment;
mod body;
mod chat;
mod content;
mod error;
mod lifecycle;
mod padding;
mod timer;

pub use attachment::{AttachmentKind, AttachmentPointer, BlobId, Sha256Digest};
pub use body::{DataMessage, DataMessageBuilder, Quote, Reaction, Receipt, ReceiptKind, Typing};
pub use chat::{Chat, TimerEvent};
pub use content::{Body, Content, ContentId, Header};
pub use error::{
    ContentError, PaddingError, ReadError, ReceiveError, SendError, TimerError, ViewOnceError,
};
pub use lifecycle::{Direction, MessageLifecycle, Purged, VIEW_ONCE_LIFETIME, purge};
pub use padding::{PADDING_BLOCK, pad, padded_len, unpad};
pub use timer::DisappearingTimer;

/// The `format` this version writes and the only one it reads.
pub const FORMAT: u32 = 1;

/// Bounds on received content, so a peer cannot make a parse arbitrarily costly. Past
/// each, parsing fails with a typed [`ContentError`].
pub mod limits {
    /// Message text and quote snippets, in bytes of UTF-8 (WhatsApp allows 65,536
    /// characters; longer text belongs in a document attachment).
    pub const MAX_TEXT_BYTES: usize = 65_536;
    /// Attachments per message.
    pub const MAX_ATTACHMENTS: usize = 32;
    /// A blob id, in bytes.
    pub const MAX_BLOB_ID_BYTES: usize = 512;
    /// A reaction emoji, in bytes of UTF-8: room for the longest ZWJ sequences with
    /// skin tones (about 35 bytes), not for text.
    pub const MAX_EMOJI_BYTES: usize = 64;
    /// Messages acknowledged by one receipt.
    pub const MAX_RECEIPT_TARGETS: usize = 1_000;
}
