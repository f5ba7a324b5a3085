//! When a stored message disappears (the rules are in the [module docs](super)).

use std::time::Duration;

use super::{BlobId, ContentId, DataMessage, DisappearingTimer};
use crate::Timestamp;

/// How long an unopened view-once message is kept.
pub const VIEW_ONCE_LIFETIME: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// Whether we sent or received a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Direction {
    /// We sent it.
    Outgoing,
    /// A peer sent it.
    Incoming,
}

/// What a store keeps to decide when a message disappears. Local times only: the
/// `sent_at` a peer claims inside the content plays no part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageLifecycle {
    /// The message.
    pub id: ContentId,
    /// Sent or received.
    pub direction: Direction,
    /// Local time it was sent (outgoing) or received (incoming).
    pub at: Timestamp,
    /// Local time the user first saw it (incoming only).
    pub read_at: Option<Timestamp>,
    /// Local time a view-once message was opened.
    pub opened_at: Option<Timestamp>,
    /// The timer the message carries.
    pub timer: DisappearingTimer,
    /// Whether it is view-once.
    pub view_once: bool,
    /// The blobs whose keys go with it.
    pub attachments: Vec<BlobId>,
}

impl MessageLifecycle {
    /// The record for a message sent or received at `at`, not yet read or opened.
    pub fn new(id: ContentId, message: &DataMessage, direction: Direction, at: Timestamp) -> Self {
        Self {
            id,
            direction,
            at,
            read_at: None,
            opened_at: None,
            timer: message.timer(),
            view_once: message.view_once(),
            attachments: message
                .attachments()
                .iter()
                .map(|a| a.blob_id.clone())
                .collect(),
        }
    }

    /// When the message disappears, or `None` if nothing makes it (yet); see
    /// [the rules](crate::envelope#disappearing-messages).
    pub fn expires_at(&self) -> Option<Timestamp> {
        let timer_start = match self.direction {
            Direction::Outgoing => Some(self.at),
            Direction::Incoming => self.read_at,
        };
        let by_timer = timer_start
            .zip(self.timer.as_millis())
            .map(|(t, d)| after(t, d));
        let by_view_once = self.view_once.then(|| {
            let unopened = after(self.at, millis(VIEW_ONCE_LIFETIME));
            self.opened_at.map_or(unopened, |o| o.min(unopened))
        });
        match (by_timer, by_view_once) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether the message is gone at `now` (expiry is inclusive: at the instant it
    /// expires it is already gone).
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires_at().is_some_and(|e| e <= now)
    }
}

/// What a purge removed, for the store to delete.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Purged {
    /// Messages to delete.
    pub messages: Vec<ContentId>,
    /// Blobs whose media keys (and any decrypted copy) to delete. Named by blob id, so
    /// no copy of a key leaves the store.
    pub attachments: Vec<BlobId>,
    /// The earliest expiry among the messages kept: when to purge next.
    pub next_expiry: Option<Timestamp>,
}

/// Which of `records` are gone at `now` (a slice or any iterator of references). Nothing
/// is deleted here: the store deletes what [`Purged`] names, so a crash in between only
/// repeats the work.
pub fn purge<'a>(
    records: impl IntoIterator<Item = &'a MessageLifecycle>,
    now: Timestamp,
) -> Purged {
    let mut out = Purged::default();
    for r in records {
        match r.expires_at() {
            Some(e) if e <= now => {
                out.messages.push(r.id);
                out.attachments.extend(r.attachments.iter().cloned());
            }
            Some(e) => out.next_expiry = Some(out.next_expiry.map_or(e, |n| n.min(e))),
            None => {}
        }
    }
    out
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn after(t: Timestamp, ms: u64) -> Timestamp {
    Timestamp::from_millis(t.as_millis().saturating_add(ms))
}
