//! [`Chat`]: one conversation's timer and messages in memory, applying the
//! [rules](super#disappearing-messages). A reference for stores, and enough for tests
//! and small apps.

use super::body::DataMessageBuilder;
use super::error::{ReadError, ReceiveError, SendError, ViewOnceError};
use super::lifecycle::{self, Direction, MessageLifecycle, Purged};
use super::{Body, Content, ContentId, DataMessage, DisappearingTimer, Header};
use crate::Timestamp;

/// A change of a chat's timer, kept in the chat as the notice users see. Notices do not
/// disappear.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerEvent {
    /// The id of the [`Body::TimerChange`] content.
    pub id: ContentId,
    /// Local time it was sent or received.
    pub at: Timestamp,
    /// Who changed the timer.
    pub direction: Direction,
    /// The new timer.
    pub timer: DisappearingTimer,
}

#[derive(Debug)]
struct Entry {
    lifecycle: MessageLifecycle,
    /// `None` for view-once messages once opened, and for our own view-once messages
    /// from the start: the sender keeps no copy of what it asked to be seen once.
    content: Option<Content>,
}

/// One conversation: the timer in force, the messages (with their media keys, zeroized
/// when purged or dropped) and the timer-change notices.
///
/// Messages we send get the chat's timer at the time; a timer change, ours or the
/// peer's, applies to later messages only. A received message keeps the timer its
/// sender stamped on it. Redelivered ciphertexts cannot bring a purged message back:
/// the session refuses to decrypt a message twice.
#[derive(Debug)]
pub struct Chat {
    timer: DisappearingTimer,
    entries: Vec<Entry>,
    events: Vec<TimerEvent>,
}

impl Chat {
    /// A new chat under the user's default timer ("default message timer"). The value is
    /// copied, so a later change of the default leaves this chat alone. To have the peer
    /// use it too, announce it with [`Chat::set_timer`].
    pub fn new(default_timer: DisappearingTimer) -> Self {
        Self {
            timer: default_timer,
            entries: Vec::new(),
            events: Vec::new(),
        }
    }

    /// The timer new messages get.
    pub fn timer(&self) -> DisappearingTimer {
        self.timer
    }

    /// Builds a message under the chat's timer, logs it as sent at `header.sent_at`, and
    /// returns the content to encrypt.
    pub fn send(
        &mut self,
        header: Header,
        message: DataMessageBuilder,
    ) -> Result<Content, SendError> {
        self.check_new(header.id)
            .map_err(|id| SendError::DuplicateId { id })?;
        let message = message.build(self.timer)?;
        let lifecycle =
            MessageLifecycle::new(header.id, &message, Direction::Outgoing, header.sent_at);
        let content = Content::new(header, Body::Message(message));
        let kept = (!lifecycle.view_once).then(|| content.clone());
        self.entries.push(Entry {
            lifecycle,
            content: kept,
        });
        Ok(content)
    }

    /// Changes the chat's timer for later messages, logs the notice, and returns the
    /// content that tells the peer.
    pub fn set_timer(
        &mut self,
        header: Header,
        timer: DisappearingTimer,
    ) -> Result<Content, SendError> {
        self.check_new(header.id)
            .map_err(|id| SendError::DuplicateId { id })?;
        self.apply_timer(header.id, header.sent_at, Direction::Outgoing, timer);
        Ok(Content::new(header, Body::TimerChange(timer)))
    }

    /// Takes in content received at `now`: messages are logged, timer changes applied.
    /// Reactions, receipts, typing indicators and unsupported kinds are not kept here.
    pub fn receive(&mut self, content: Content, now: Timestamp) -> Result<(), ReceiveError> {
        let id = content.id();
        self.check_new(id)
            .map_err(|id| ReceiveError::DuplicateId { id })?;
        match content.body() {
            Body::Message(m) => {
                let lifecycle = MessageLifecycle::new(id, m, Direction::Incoming, now);
                self.entries.push(Entry {
                    lifecycle,
                    content: Some(content),
                });
            }
            Body::TimerChange(timer) => {
                let timer = *timer;
                self.apply_timer(id, now, Direction::Incoming, timer);
            }
            _ => {}
        }
        Ok(())
    }

    /// Records that the user saw a received message at `now`, which starts its timer.
    /// Marking it again keeps the first time.
    pub fn mark_read(&mut self, id: ContentId, now: Timestamp) -> Result<(), ReadError> {
        let entry = self.entry_mut(id).ok_or(ReadError::UnknownMessage { id })?;
        let l = &mut entry.lifecycle;
        if l.direction != Direction::Incoming {
            return Err(ReadError::NotIncoming { id });
        }
        if l.is_expired(now) {
            return Err(ReadError::Expired { id });
        }
        l.read_at.get_or_insert(now);
        Ok(())
    }

    /// Opens a received view-once message: hands its media over once and keeps no copy
    /// (the record stays, marked opened, until the next purge). Opening also reads it.
    pub fn open_view_once(
        &mut self,
        id: ContentId,
        now: Timestamp,
    ) -> Result<DataMessage, ViewOnceError> {
        let entry = self
            .entry_mut(id)
            .ok_or(ViewOnceError::UnknownMessage { id })?;
        let l = &mut entry.lifecycle;
        if !l.view_once {
            return Err(ViewOnceError::NotViewOnce { id });
        }
        if l.direction != Direction::Incoming {
            return Err(ViewOnceError::NotIncoming { id });
        }
        if l.opened_at.is_some() {
            return Err(ViewOnceError::AlreadyOpened { id });
        }
        if l.is_expired(now) {
            return Err(ViewOnceError::Expired { id });
        }
        let Some(Body::Message(message)) = entry.content.take().map(Content::into_body) else {
            // Received view-once entries hold their message until opened.
            return Err(ViewOnceError::AlreadyOpened { id });
        };
        l.opened_at = Some(now);
        l.read_at.get_or_insert(now);
        Ok(message)
    }

    /// Removes every message expired at `now`; their media keys are zeroized as they
    /// drop. Returns what went, for a store mirroring this chat.
    pub fn purge(&mut self, now: Timestamp) -> Purged {
        let purged = lifecycle::purge(self.entries.iter().map(|e| &e.lifecycle), now);
        self.entries.retain(|e| !e.lifecycle.is_expired(now));
        purged
    }

    /// The messages not expired at `now`, oldest first, with their content. Content is
    /// `None` for view-once messages: see [`Chat::open_view_once`]. Expired messages are
    /// hidden even before a purge removes them.
    pub fn messages(
        &self,
        now: Timestamp,
    ) -> impl Iterator<Item = (&MessageLifecycle, Option<&Content>)> {
        self.entries
            .iter()
            .filter(move |e| !e.lifecycle.is_expired(now))
            .map(|e| {
                let content = e.content.as_ref().filter(|_| !e.lifecycle.view_once);
                (&e.lifecycle, content)
            })
    }

    /// The timer-change notices, oldest first.
    pub fn events(&self) -> &[TimerEvent] {
        &self.events
    }

    fn apply_timer(
        &mut self,
        id: ContentId,
        at: Timestamp,
        direction: Direction,
        timer: DisappearingTimer,
    ) {
        self.timer = timer;
        self.events.push(TimerEvent {
            id,
            at,
            direction,
            timer,
        });
    }

    fn check_new(&self, id: ContentId) -> Result<(), ContentId> {
        let taken = self.entries.iter().any(|e| e.lifecycle.id == id)
            || self.events.iter().any(|e| e.id == id);
        if taken { Err(id) } else { Ok(()) }
    }

    fn entry_mut(&mut self, id: ContentId) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.lifecycle.id == id)
    }
}
