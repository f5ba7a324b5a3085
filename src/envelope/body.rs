//! The kinds of content: chat messages, reactions, receipts and typing indicators.
//! Constructors check the same rules the parser does.

use super::attachment::AttachmentPointer;
use super::error::ContentError;
use super::limits::{MAX_ATTACHMENTS, MAX_EMOJI_BYTES, MAX_RECEIPT_TARGETS, MAX_TEXT_BYTES};
use super::{ContentId, DisappearingTimer};

/// A chat message: text, attachments or both, with the timer in force when sent.
#[derive(Clone, PartialEq, Eq)]
pub struct DataMessage {
    text: Option<String>,
    attachments: Vec<AttachmentPointer>,
    quote: Option<Quote>,
    timer: DisappearingTimer,
    view_once: bool,
}

impl DataMessage {
    /// Starts a message to send.
    pub fn builder() -> DataMessageBuilder {
        DataMessageBuilder::default()
    }

    /// The text, if any.
    pub fn text(&self) -> Option<&str> {
        self.text.as_deref()
    }

    /// The attachments, in the order sent.
    pub fn attachments(&self) -> &[AttachmentPointer] {
        &self.attachments
    }

    /// The message this one replies to.
    pub fn quote(&self) -> Option<&Quote> {
        self.quote.as_ref()
    }

    /// The sender's disappearing timer when it sent this message; the message's copies
    /// expire by it (see [`super::MessageLifecycle`]).
    pub fn timer(&self) -> DisappearingTimer {
        self.timer
    }

    /// Whether the attachments may be shown only once.
    pub fn view_once(&self) -> bool {
        self.view_once
    }
}

impl std::fmt::Debug for DataMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataMessage")
            .field("text", &self.text.as_deref().map(Redacted))
            .field("attachments", &self.attachments)
            .field("quote", &self.quote)
            .field("timer", &self.timer)
            .field("view_once", &self.view_once)
            .finish()
    }
}

/// Collects a [`DataMessage`]; [`Self::build`] checks it.
#[derive(Clone, Default)]
pub struct DataMessageBuilder {
    text: Option<String>,
    attachments: Vec<AttachmentPointer>,
    quote: Option<Quote>,
    view_once: bool,
}

impl DataMessageBuilder {
    /// Sets the text (an empty string means none, as on the wire).
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    /// Adds an attachment.
    pub fn attachment(mut self, attachment: AttachmentPointer) -> Self {
        self.attachments.push(attachment);
        self
    }

    /// Makes the message a reply.
    pub fn quote(mut self, quote: Quote) -> Self {
        self.quote = Some(quote);
        self
    }

    /// Marks the attachments view-once.
    pub fn view_once(mut self) -> Self {
        self.view_once = true;
        self
    }

    /// The message, stamped with the chat's `timer` ([`super::Chat::send`] passes its
    /// own, so a timer change reaches every later message).
    pub fn build(self, timer: DisappearingTimer) -> Result<DataMessage, ContentError> {
        let text = checked_text("message.text", self.text)?;
        if self.attachments.len() > MAX_ATTACHMENTS {
            return Err(ContentError::TooMany {
                field: "message.attachments",
                max: MAX_ATTACHMENTS,
                found: self.attachments.len(),
            });
        }
        if self.view_once && self.attachments.is_empty() {
            return Err(ContentError::ViewOnceWithoutMedia);
        }
        if text.is_none() && self.attachments.is_empty() {
            return Err(ContentError::EmptyMessage);
        }
        Ok(DataMessage {
            text,
            attachments: self.attachments,
            quote: self.quote,
            timer,
            view_once: self.view_once,
        })
    }
}

impl std::fmt::Debug for DataMessageBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataMessageBuilder")
            .field("text", &self.text.as_deref().map(Redacted))
            .field("attachments", &self.attachments)
            .field("quote", &self.quote)
            .field("view_once", &self.view_once)
            .finish()
    }
}

/// A reply's reference to an earlier message, with an optional snippet of its text.
#[derive(Clone, PartialEq, Eq)]
pub struct Quote {
    target: ContentId,
    text: Option<String>,
}

impl Quote {
    /// Quotes `target`. The snippet is a copy the recipient shows even without the
    /// original, so it outlives a quoted disappearing message: pass `None` in such chats.
    pub fn new(target: ContentId, text: Option<String>) -> Result<Self, ContentError> {
        Ok(Self {
            target,
            text: checked_text("quote.text", text)?,
        })
    }

    /// The quoted message.
    pub fn target(&self) -> &ContentId {
        &self.target
    }

    /// The snippet, if any.
    pub fn text(&self) -> Option<&str> {
        self.text.as_deref()
    }
}

impl std::fmt::Debug for Quote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quote")
            .field("target", &self.target)
            .field("text", &self.text.as_deref().map(Redacted))
            .finish()
    }
}

/// An emoji reaction to a message, or its withdrawal.
#[derive(Clone, PartialEq, Eq)]
pub struct Reaction {
    target: ContentId,
    emoji: String,
    remove: bool,
}

impl Reaction {
    /// Reacts to `target` with `emoji` (non-empty, at most [`MAX_EMOJI_BYTES`]).
    pub fn add(target: ContentId, emoji: &str) -> Result<Self, ContentError> {
        Self::new(target, emoji, false)
    }

    /// Withdraws an earlier reaction with `emoji`.
    pub fn remove(target: ContentId, emoji: &str) -> Result<Self, ContentError> {
        Self::new(target, emoji, true)
    }

    fn new(target: ContentId, emoji: &str, remove: bool) -> Result<Self, ContentError> {
        if emoji.is_empty() {
            return Err(ContentError::MissingField {
                field: "reaction.emoji",
            });
        }
        if emoji.len() > MAX_EMOJI_BYTES {
            return Err(ContentError::TooLong {
                field: "reaction.emoji",
                max: MAX_EMOJI_BYTES,
                found: emoji.len(),
            });
        }
        Ok(Self {
            target,
            emoji: emoji.to_owned(),
            remove,
        })
    }

    /// The message reacted to.
    pub fn target(&self) -> &ContentId {
        &self.target
    }

    /// The emoji.
    pub fn emoji(&self) -> &str {
        &self.emoji
    }

    /// Whether this withdraws the reaction.
    pub fn is_removal(&self) -> bool {
        self.remove
    }
}

impl std::fmt::Debug for Reaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reaction")
            .field("target", &self.target)
            .field("emoji", &Redacted(&self.emoji))
            .field("remove", &self.remove)
            .finish()
    }
}

/// What a receipt acknowledges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReceiptKind {
    /// The messages reached the device.
    Delivery,
    /// The user saw them.
    Read,
}

/// A delivery or read receipt for one or more messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    kind: ReceiptKind,
    targets: Vec<ContentId>,
}

impl Receipt {
    /// Acknowledges 1 to [`MAX_RECEIPT_TARGETS`] messages.
    pub fn new(kind: ReceiptKind, targets: Vec<ContentId>) -> Result<Self, ContentError> {
        if targets.is_empty() {
            return Err(ContentError::MissingField {
                field: "receipt.targets",
            });
        }
        if targets.len() > MAX_RECEIPT_TARGETS {
            return Err(ContentError::TooMany {
                field: "receipt.targets",
                max: MAX_RECEIPT_TARGETS,
                found: targets.len(),
            });
        }
        Ok(Self { kind, targets })
    }

    /// Delivery or read.
    pub fn kind(&self) -> ReceiptKind {
        self.kind
    }

    /// The messages acknowledged.
    pub fn targets(&self) -> &[ContentId] {
        &self.targets
    }
}

/// A typing indicator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Typing {
    /// The peer started typing.
    Started,
    /// The peer stopped without sending.
    Stopped,
}

fn checked_text(field: &'static str, text: Option<String>) -> Result<Option<String>, ContentError> {
    match text {
        Some(t) if t.len() > MAX_TEXT_BYTES => Err(ContentError::TooLong {
            field,
            max: MAX_TEXT_BYTES,
            found: t.len(),
        }),
        Some(t) if t.is_empty() => Ok(None),
        t => Ok(t),
    }
}

/// Prints the length of user text instead of the text, so `{:?}` is safe to log.
struct Redacted<'a>(&'a str);

impl std::fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
    }
}

pub(super) mod convert {
    //! Between the validated types and the private prost structs.

    use super::*;
    use crate::proto::content as pb;

    fn non_empty(s: &str) -> Option<String> {
        (!s.is_empty()).then(|| s.to_owned())
    }

    fn timer(field: &'static str, seconds: u32) -> Result<DisappearingTimer, ContentError> {
        DisappearingTimer::from_secs(seconds)
            .map_err(|source| ContentError::Timer { field, source })
    }

    pub(in crate::envelope) fn timer_change(
        m: &pb::TimerChange,
    ) -> Result<DisappearingTimer, ContentError> {
        timer("timer_change.timer_seconds", m.timer_seconds)
    }

    impl TryFrom<&pb::DataMessage> for DataMessage {
        type Error = ContentError;

        fn try_from(m: &pb::DataMessage) -> Result<Self, ContentError> {
            // Checked before the pointers are parsed, so a flood of them costs nothing.
            if m.attachments.len() > MAX_ATTACHMENTS {
                return Err(ContentError::TooMany {
                    field: "message.attachments",
                    max: MAX_ATTACHMENTS,
                    found: m.attachments.len(),
                });
            }
            let builder = DataMessageBuilder {
                text: non_empty(&m.text),
                attachments: m
                    .attachments
                    .iter()
                    .map(AttachmentPointer::try_from)
                    .collect::<Result<_, _>>()?,
                quote: m.quote.as_ref().map(Quote::try_from).transpose()?,
                view_once: m.view_once,
            };
            builder.build(timer("message.timer_seconds", m.timer_seconds)?)
        }
    }

    impl From<&DataMessage> for pb::DataMessage {
        /// The result holds copies of the media keys: the caller scrubs them.
        fn from(m: &DataMessage) -> Self {
            Self {
                text: m.text.clone().unwrap_or_default(),
                attachments: m.attachments.iter().map(Into::into).collect(),
                quote: m.quote.as_ref().map(Into::into),
                timer_seconds: m.timer.as_secs(),
                view_once: m.view_once,
            }
        }
    }

    impl TryFrom<&pb::Quote> for Quote {
        type Error = ContentError;

        fn try_from(q: &pb::Quote) -> Result<Self, ContentError> {
            Quote::new(
                ContentId::parse("quote.target", &q.target)?,
                non_empty(&q.text),
            )
        }
    }

    impl From<&Quote> for pb::Quote {
        fn from(q: &Quote) -> Self {
            Self {
                target: q.target.as_bytes().to_vec(),
                text: q.text.clone().unwrap_or_default(),
            }
        }
    }

    impl TryFrom<&pb::Reaction> for Reaction {
        type Error = ContentError;

        fn try_from(r: &pb::Reaction) -> Result<Self, ContentError> {
            Reaction::new(
                ContentId::parse("reaction.target", &r.target)?,
                &r.emoji,
                r.remove,
            )
        }
    }

    impl From<&Reaction> for pb::Reaction {
        fn from(r: &Reaction) -> Self {
            Self {
                target: r.target.as_bytes().to_vec(),
                emoji: r.emoji.clone(),
                remove: r.remove,
            }
        }
    }

    impl TryFrom<&pb::Receipt> for Receipt {
        type Error = ContentError;

        fn try_from(r: &pb::Receipt) -> Result<Self, ContentError> {
            let kind = match pb::ReceiptKind::try_from(r.kind) {
                Ok(pb::ReceiptKind::Delivery) => ReceiptKind::Delivery,
                Ok(pb::ReceiptKind::Read) => ReceiptKind::Read,
                Ok(pb::ReceiptKind::Unspecified) | Err(_) => {
                    return Err(ContentError::UnknownValue {
                        field: "receipt.kind",
                        value: r.kind,
                    });
                }
            };
            if r.targets.len() > MAX_RECEIPT_TARGETS {
                return Err(ContentError::TooMany {
                    field: "receipt.targets",
                    max: MAX_RECEIPT_TARGETS,
                    found: r.targets.len(),
                });
            }
            let targets = r
                .targets
                .iter()
                .map(|t| ContentId::parse("receipt.targets", t))
                .collect::<Result<_, _>>()?;
            Receipt::new(kind, targets)
        }
    }

    impl From<&Receipt> for pb::Receipt {
        fn from(r: &Receipt) -> Self {
            let kind = match r.kind {
                ReceiptKind::Delivery => pb::ReceiptKind::Delivery,
                ReceiptKind::Read => pb::ReceiptKind::Read,
            };
            Self {
                kind: kind.into(),
                targets: r.targets.iter().map(|t| t.as_bytes().to_vec()).collect(),
            }
        }
    }

    impl TryFrom<&pb::Typing> for Typing {
        type Error = ContentError;

        fn try_from(t: &pb::Typing) -> Result<Self, ContentError> {
            match pb::TypingAction::try_from(t.action) {
                Ok(pb::TypingAction::Started) => Ok(Typing::Started),
                Ok(pb::TypingAction::Stopped) => Ok(Typing::Stopped),
                Ok(pb::TypingAction::Unspecified) | Err(_) => Err(ContentError::UnknownValue {
                    field: "typing.action",
                    value: t.action,
                }),
            }
        }
    }

    impl From<Typing> for pb::Typing {
        fn from(t: Typing) -> Self {
            let action = match t {
                Typing::Started => pb::TypingAction::Started,
                Typing::Stopped => pb::TypingAction::Stopped,
            };
            Self {
                action: action.into(),
            }
        }
    }
}
