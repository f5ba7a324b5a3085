//! One error enum per operation. `Display` texts name fields and lengths only, never
//! message text, keys or ids, so they are safe to log.

use super::ContentId;

/// Padded plaintext that is not exactly what [`super::pad`] produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PaddingError {
    /// The length is zero or not a multiple of [`super::PADDING_BLOCK`].
    #[error("padded length {len} is not a positive multiple of the padding block")]
    BadLength {
        /// Length given.
        len: usize,
    },
    /// The last non-zero byte is not the `0x80` marker, or there is none.
    #[error("padding marker missing")]
    NoMarker,
    /// Zeros run past the last block: a longer padding than the scheme ever writes.
    #[error("padding is {found} bytes, more than one block")]
    TooLong {
        /// Padding length found, marker included.
        found: usize,
    },
}

/// A disappearing-timer value outside what confide accepts (see
/// [`super::DisappearingTimer::from_secs`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimerError {
    /// More than [`super::DisappearingTimer::MAX_SECS`].
    #[error("timer of {seconds} s is longer than the longest allowed")]
    TooLong {
        /// The value given.
        seconds: u32,
    },
}

/// Content that breaks a rule, whether received (parsing) or being built (the
/// constructors run the same checks, so what confide sends it also accepts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContentError {
    /// The padding around the content is wrong.
    #[error("bad padding: {0}")]
    Padding(#[from] PaddingError),
    /// The protobuf does not decode (including strings that are not UTF-8).
    #[error("content is malformed")]
    Malformed,
    /// Written in a format this version does not know.
    #[error("content format {found} is not supported")]
    UnsupportedFormat {
        /// The format number found.
        found: u32,
    },
    /// A required field is absent or empty.
    #[error("content lacks field {field}")]
    MissingField {
        /// The field's path in `content.proto`, such as `attachment.media_key`.
        field: &'static str,
    },
    /// A fixed-size field has the wrong length.
    #[error("field {field} must be {expected} bytes, found {found}")]
    WrongLength {
        /// The field's path in `content.proto`, such as `attachment.media_key`.
        field: &'static str,
        /// Required length.
        expected: usize,
        /// Length given.
        found: usize,
    },
    /// A bounded field is too long.
    #[error("field {field} is {found} bytes, more than {max}")]
    TooLong {
        /// The field's path in `content.proto`, such as `attachment.media_key`.
        field: &'static str,
        /// The bound (see [`super::limits`]).
        max: usize,
        /// Length given.
        found: usize,
    },
    /// A repeated field has too many entries.
    #[error("field {field} has {found} entries, more than {max}")]
    TooMany {
        /// The field's path in `content.proto`, such as `attachment.media_key`.
        field: &'static str,
        /// The bound (see [`super::limits`]).
        max: usize,
        /// Count given.
        found: usize,
    },
    /// An enum field holds a value this version does not know (or the unspecified 0).
    #[error("field {field} has unknown value {value}")]
    UnknownValue {
        /// The field's path in `content.proto`, such as `attachment.media_key`.
        field: &'static str,
        /// The value found.
        value: i32,
    },
    /// A timer field holds a refused value.
    #[error("field {field}: {source}")]
    Timer {
        /// The field's path in `content.proto`, such as `attachment.media_key`.
        field: &'static str,
        /// Why the value was refused.
        source: TimerError,
    },
    /// A message with neither text nor attachments.
    #[error("message has neither text nor attachments")]
    EmptyMessage,
    /// A view-once message without an attachment to view.
    #[error("view-once message has no attachment")]
    ViewOnceWithoutMedia,
}

/// [`super::Chat::send`] or [`super::Chat::set_timer`] failed; the chat is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The message breaks a content rule.
    #[error("invalid content: {0}")]
    Content(#[from] ContentError),
    /// The chat already holds a message or event with this id.
    #[error("the chat already has a message with this id")]
    DuplicateId {
        /// The id given.
        id: ContentId,
    },
}

/// [`super::Chat::receive`] failed; the chat is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiveError {
    /// The chat already holds a message or event with this id (a redelivery, or a
    /// peer reusing an id); the first one is kept.
    #[error("the chat already has a message with this id")]
    DuplicateId {
        /// The id received.
        id: ContentId,
    },
}

/// [`super::Chat::mark_read`] failed; the chat is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// No message with this id (never received, or already purged).
    #[error("no message with this id")]
    UnknownMessage {
        /// The id given.
        id: ContentId,
    },
    /// The message is ours: its timer runs from when it was sent.
    #[error("only received messages are marked read")]
    NotIncoming {
        /// The id given.
        id: ContentId,
    },
    /// The message has expired (it is only waiting for the next purge).
    #[error("message has expired")]
    Expired {
        /// The id given.
        id: ContentId,
    },
}

/// [`super::Chat::open_view_once`] failed; the chat is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ViewOnceError {
    /// No message with this id (never received, or already purged).
    #[error("no message with this id")]
    UnknownMessage {
        /// The id given.
        id: ContentId,
    },
    /// The message is not view-once.
    #[error("message is not view-once")]
    NotViewOnce {
        /// The id given.
        id: ContentId,
    },
    /// The message is ours; only the recipient opens a view-once message.
    #[error("only received messages are opened")]
    NotIncoming {
        /// The id given.
        id: ContentId,
    },
    /// It was opened before: view-once media is shown once.
    #[error("view-once message was already opened")]
    AlreadyOpened {
        /// The id given.
        id: ContentId,
    },
    /// It expired unopened (or under the chat timer).
    #[error("message has expired")]
    Expired {
        /// The id given.
        id: ContentId,
    },
}
