//! What a backup holds: the records of `proto/backup.proto`, each a 4-byte big-endian
//! length then the encoded `Record`, written one at a time so an export never holds the
//! whole history in memory.
//!
//! A backup carries the privacy-model state, contacts' identity keys, group membership
//! and the message history the app hands over. It never carries ratchet state, prekeys
//! or sender-key chains: a restore that brought back an old chain would encrypt under
//! message keys already used, so a restored device starts new sessions instead.

use std::io::{Read, Write};

use prost::Message as _;
use zeroize::Zeroizing;

use crate::envelope::{ContentId, Direction, DisappearingTimer, MessageLifecycle};
use crate::group::DistributionId;
use crate::keys::IdentityKey;
use crate::proto::backup as pb;
use crate::{Address, Timestamp};

/// The payload layout this version writes and reads.
pub(crate) const PAYLOAD_VERSION: u32 = 1;

/// The largest record a reader accepts: far above any state row or message body an
/// app keeps, and small enough that a forged length cannot make it allocate much.
pub(crate) const MAX_RECORD: usize = 16 << 20;

/// A group the app keeps, with its members, carried across a restore.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupGroup {
    /// The group's distribution id.
    pub id: DistributionId,
    /// The group's title as the app shows it.
    pub title: String,
    /// The members (the device itself included, if the app lists it).
    pub members: Vec<Address>,
}

/// One message of the history the app keeps, as it hands it to a backup and gets it
/// back from a restore.
///
/// `body` is the app's own encoding of the message (for example
/// [`Content`](crate::envelope::Content) bytes). Its timers keep running while it sits
/// in a backup: a message whose [`MessageLifecycle::expires_at`] has passed is neither
/// written nor restored.
#[derive(Clone, PartialEq, Eq)]
pub struct BackupMessage {
    /// The 1:1 contact, or in a group the message's author.
    pub peer: Address,
    /// The group, for a group message.
    pub group: Option<DistributionId>,
    /// When it disappears. Its `attachments` are not carried: an app that keeps media
    /// puts the attachment pointers in `body`.
    pub lifecycle: MessageLifecycle,
    /// The message as the app encodes it.
    pub body: Zeroizing<Vec<u8>>,
}

impl core::fmt::Debug for BackupMessage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BackupMessage")
            .field("peer", &self.peer)
            .field("group", &self.group)
            .field("lifecycle", &self.lifecycle)
            .field("body", &format_args!("{} bytes", self.body.len()))
            .finish()
    }
}

/// Who wrote a backup, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    pub(crate) account: String,
    pub(crate) device_id: u32,
    pub(crate) created_at: Timestamp,
    pub(crate) generation: u64,
}

/// One decoded record.
pub(crate) enum Item {
    Meta(Meta),
    State {
        kind: String,
        key: String,
        value: Zeroizing<Vec<u8>>,
    },
    Contact {
        address: Address,
        identity: IdentityKey,
    },
    Group(BackupGroup),
    Message(BackupMessage),
    End,
}

/// Why a payload did not decode (after its file authenticated: a writer bug or a
/// future layout, never an attacker who lacks the key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The payload ended inside a record, or without its `End` record.
    #[error("the backup's contents end early")]
    Truncated,
    /// A record longer than the limit.
    #[error("a backup record is too large")]
    TooLarge,
    /// A record that does not decode, or a field out of range.
    #[error("a backup record is malformed: {what}")]
    Malformed {
        /// Which part.
        what: &'static str,
    },
    /// A payload layout this version does not read.
    #[error("backup contents of version {version} are not supported")]
    UnsupportedVersion {
        /// The version found.
        version: u32,
    },
    /// The records are out of order (`Meta` first, `End` last, with the right count).
    #[error("the backup's records are out of order")]
    OutOfOrder,
}

fn member(a: &Address) -> pb::Member {
    pb::Member {
        name: a.name().to_owned(),
        device_id: a.device_id(),
    }
}

fn address(m: Option<pb::Member>) -> Result<Address, PayloadError> {
    let m = m.ok_or(PayloadError::Malformed { what: "address" })?;
    if m.name.is_empty() {
        return Err(PayloadError::Malformed { what: "address" });
    }
    Ok(Address::new(m.name, m.device_id))
}

fn distribution_id(b: &[u8]) -> Result<DistributionId, PayloadError> {
    let bytes: [u8; 16] = b
        .try_into()
        .map_err(|_| PayloadError::Malformed { what: "group id" })?;
    Ok(DistributionId::from_bytes(bytes))
}

fn group_pb(g: &BackupGroup) -> pb::Group {
    pb::Group {
        distribution_id: g.id.as_bytes().to_vec(),
        title: g.title.clone(),
        members: g.members.iter().map(member).collect(),
    }
}

fn message_pb(m: &BackupMessage) -> pb::Message {
    let l = &m.lifecycle;
    pb::Message {
        id: l.id.as_bytes().to_vec(),
        peer: Some(member(&m.peer)),
        group: m.group.map(|g| g.as_bytes().to_vec()).unwrap_or_default(),
        outgoing: matches!(l.direction, Direction::Outgoing),
        at_ms: l.at.as_millis(),
        read_at_ms: l.read_at.map(Timestamp::as_millis),
        opened_at_ms: l.opened_at.map(Timestamp::as_millis),
        timer_secs: l.timer.as_secs(),
        view_once: l.view_once,
        body: m.body.to_vec(),
    }
}

fn message(m: pb::Message) -> Result<BackupMessage, PayloadError> {
    let id: [u8; 16] =
        m.id.as_slice()
            .try_into()
            .map_err(|_| PayloadError::Malformed { what: "message id" })?;
    let group = if m.group.is_empty() {
        None
    } else {
        Some(distribution_id(&m.group)?)
    };
    let timer = DisappearingTimer::from_secs(m.timer_secs)
        .map_err(|_| PayloadError::Malformed { what: "timer" })?;
    let lifecycle = MessageLifecycle {
        id: ContentId::from_bytes(id),
        direction: if m.outgoing {
            Direction::Outgoing
        } else {
            Direction::Incoming
        },
        at: Timestamp::from_millis(m.at_ms),
        read_at: m.read_at_ms.map(Timestamp::from_millis),
        opened_at: m.opened_at_ms.map(Timestamp::from_millis),
        timer,
        view_once: m.view_once,
        attachments: Vec::new(),
    };
    Ok(BackupMessage {
        peer: address(m.peer)?,
        group,
        lifecycle,
        body: Zeroizing::new(m.body),
    })
}

/// Writes records to a sink (the backup writer), counting them for `End`.
pub(crate) struct PayloadWriter<W: Write> {
    out: W,
    records: u64,
    buf: Zeroizing<Vec<u8>>,
}

impl<W: Write> PayloadWriter<W> {
    /// Starts a payload with its `Meta` record.
    pub(crate) fn start(out: W, meta: &Meta) -> std::io::Result<Self> {
        let mut w = Self {
            out,
            records: 0,
            buf: Zeroizing::new(Vec::new()),
        };
        w.record(pb::record::Item::Meta(pb::Meta {
            payload_version: PAYLOAD_VERSION,
            account: meta.account.clone(),
            device_id: meta.device_id,
            created_at_ms: meta.created_at.as_millis(),
            generation: meta.generation,
        }))?;
        Ok(w)
    }

    fn record(&mut self, item: pb::record::Item) -> std::io::Result<()> {
        let record = pb::Record { item: Some(item) };
        let len = record.encoded_len();
        let len32 = u32::try_from(len)
            .ok()
            .filter(|&l| l as usize <= MAX_RECORD)
            .ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "record too large")
            })?;
        self.buf.clear();
        self.buf.reserve(len + 4);
        self.buf.extend_from_slice(&len32.to_be_bytes());
        record
            .encode(&mut *self.buf)
            .map_err(|_| std::io::Error::other("record encoding"))?;
        // The encoded message held secrets (state rows, bodies): wipe it as it goes.
        let mut record = record;
        wipe(&mut record);
        self.out.write_all(&self.buf)?;
        self.records += 1;
        Ok(())
    }

    pub(crate) fn state(&mut self, kind: &str, key: &str, value: &[u8]) -> std::io::Result<()> {
        self.record(pb::record::Item::State(pb::StateRow {
            kind: kind.to_owned(),
            key: key.to_owned(),
            value: value.to_vec(),
        }))
    }

    pub(crate) fn contact(&mut self, a: &Address, identity: &IdentityKey) -> std::io::Result<()> {
        self.record(pb::record::Item::Contact(pb::Contact {
            address: Some(member(a)),
            identity_key: identity.serialize().to_vec(),
        }))
    }

    pub(crate) fn group(&mut self, g: &BackupGroup) -> std::io::Result<()> {
        self.record(pb::record::Item::Group(group_pb(g)))
    }

    pub(crate) fn message(&mut self, m: &BackupMessage) -> std::io::Result<()> {
        self.record(pb::record::Item::Message(message_pb(m)))
    }

    /// Writes `End` and hands back the sink.
    pub(crate) fn end(mut self) -> std::io::Result<W> {
        let records = self.records;
        self.record(pb::record::Item::End(pb::End { records }))?;
        Ok(self.out)
    }
}

fn wipe(record: &mut pb::Record) {
    use zeroize::Zeroize;
    match &mut record.item {
        Some(pb::record::Item::State(s)) => s.value.zeroize(),
        Some(pb::record::Item::Message(m)) => m.body.zeroize(),
        _ => {}
    }
}

/// Reads records one at a time, checking their order.
pub(crate) struct PayloadReader<R: Read> {
    input: R,
    records: u64,
    done: bool,
}

impl<R: Read> PayloadReader<R> {
    pub(crate) fn new(input: R) -> Self {
        Self {
            input,
            records: 0,
            done: false,
        }
    }

    /// The next record; `Ok(None)` once `End` was read. An I/O error of the input (the
    /// backup reader's: tampering, truncation) comes back as `Err(Ok(io))`.
    pub(crate) fn next(&mut self) -> Result<Option<Item>, ReadFailure> {
        if self.done {
            return Ok(None);
        }
        let mut len = [0u8; 4];
        read_exact(&mut self.input, &mut len)?;
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_RECORD {
            return Err(PayloadError::TooLarge.into());
        }
        let mut buf = Zeroizing::new(vec![0u8; len]);
        read_exact(&mut self.input, &mut buf)?;
        let mut record = pb::Record::decode(buf.as_slice())
            .map_err(|_| PayloadError::Malformed { what: "record" })?;
        let item = record.item.take();
        let first = self.records == 0;
        self.records += 1;
        let out = match item {
            Some(pb::record::Item::Meta(m)) => {
                if !first {
                    return Err(PayloadError::OutOfOrder.into());
                }
                if m.payload_version != PAYLOAD_VERSION {
                    return Err(PayloadError::UnsupportedVersion {
                        version: m.payload_version,
                    }
                    .into());
                }
                if m.account.is_empty() {
                    return Err(PayloadError::Malformed { what: "account" }.into());
                }
                Item::Meta(Meta {
                    account: m.account,
                    device_id: m.device_id,
                    created_at: Timestamp::from_millis(m.created_at_ms),
                    generation: m.generation,
                })
            }
            _ if first => return Err(PayloadError::OutOfOrder.into()),
            Some(pb::record::Item::State(s)) => Item::State {
                kind: s.kind,
                key: s.key,
                value: Zeroizing::new(s.value),
            },
            Some(pb::record::Item::Contact(c)) => Item::Contact {
                address: address(c.address)?,
                identity: IdentityKey::try_from(c.identity_key.as_slice()).map_err(|_| {
                    PayloadError::Malformed {
                        what: "identity key",
                    }
                })?,
            },
            Some(pb::record::Item::Group(g)) => Item::Group(BackupGroup {
                id: distribution_id(&g.distribution_id)?,
                title: g.title,
                members: g
                    .members
                    .into_iter()
                    .map(|m| address(Some(m)))
                    .collect::<Result<_, _>>()?,
            }),
            Some(pb::record::Item::Message(m)) => Item::Message(message(m)?),
            Some(pb::record::Item::End(e)) => {
                if e.records != self.records - 1 {
                    return Err(PayloadError::OutOfOrder.into());
                }
                self.done = true;
                Item::End
            }
            None => {
                return Err(PayloadError::Malformed {
                    what: "empty record",
                }
                .into());
            }
        };
        Ok(Some(out))
    }

    pub(crate) fn into_inner(self) -> R {
        self.input
    }
}

/// A record could not be read: the payload is bad, or the input failed.
#[derive(Debug)]
pub(crate) enum ReadFailure {
    Payload(PayloadError),
    Io(std::io::Error),
}

impl From<PayloadError> for ReadFailure {
    fn from(e: PayloadError) -> Self {
        Self::Payload(e)
    }
}

fn read_exact(r: &mut impl Read, buf: &mut [u8]) -> Result<(), ReadFailure> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            ReadFailure::Payload(PayloadError::Truncated)
        } else {
            ReadFailure::Io(e)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        Meta {
            account: "alice".into(),
            device_id: 1,
            created_at: Timestamp::from_millis(5),
            generation: 3,
        }
    }

    #[test]
    fn records_round_trip_in_order() {
        let mut w = PayloadWriter::start(Vec::new(), &meta()).unwrap();
        w.state("policy.consent_ledger", "", b"ledger").unwrap();
        let g = BackupGroup {
            id: DistributionId::from_bytes([7; 16]),
            title: "team".into(),
            members: vec![Address::new("bob", 2)],
        };
        w.group(&g).unwrap();
        let m = BackupMessage {
            peer: Address::new("bob", 2),
            group: Some(g.id),
            lifecycle: MessageLifecycle {
                id: ContentId::from_bytes([1; 16]),
                direction: Direction::Incoming,
                at: Timestamp::from_millis(10),
                read_at: Some(Timestamp::from_millis(11)),
                opened_at: None,
                timer: DisappearingTimer::HOURS_24,
                view_once: false,
                attachments: Vec::new(),
            },
            body: Zeroizing::new(b"hello".to_vec()),
        };
        w.message(&m).unwrap();
        let bytes = w.end().unwrap();
        let mut r = PayloadReader::new(bytes.as_slice());
        assert!(matches!(r.next().unwrap(), Some(Item::Meta(x)) if x == meta()));
        assert!(
            matches!(r.next().unwrap(), Some(Item::State { kind, .. }) if kind == "policy.consent_ledger")
        );
        assert!(matches!(r.next().unwrap(), Some(Item::Group(x)) if x == g));
        assert!(matches!(r.next().unwrap(), Some(Item::Message(x)) if x == m));
        assert!(matches!(r.next().unwrap(), Some(Item::End)));
        assert!(r.next().unwrap().is_none());

        // Cut anywhere before the end: truncated, never a silent short restore.
        for cut in 0..bytes.len() {
            let mut r = PayloadReader::new(&bytes[..cut]);
            let err = loop {
                match r.next() {
                    Ok(Some(_)) => continue,
                    Ok(None) => panic!("a cut payload read as complete"),
                    Err(e) => break e,
                }
            };
            assert!(matches!(err, ReadFailure::Payload(PayloadError::Truncated)));
        }
    }

    #[test]
    fn order_and_limits_are_checked() {
        // A record before Meta.
        let mut w = PayloadWriter::start(Vec::new(), &meta()).unwrap();
        w.state("k", "", b"v").unwrap();
        let bytes = w.end().unwrap();
        let first_len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
        let rest = &bytes[4 + first_len..];
        let mut r = PayloadReader::new(rest);
        assert!(matches!(
            r.next(),
            Err(ReadFailure::Payload(PayloadError::OutOfOrder))
        ));
        // A forged huge length.
        let mut r = PayloadReader::new(&[0xff, 0xff, 0xff, 0xff][..]);
        assert!(matches!(
            r.next(),
            Err(ReadFailure::Payload(PayloadError::TooLarge))
        ));
    }
}
