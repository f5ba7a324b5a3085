//! The store-independent half of the persistent stores: which table and row key each
//! value is sealed under, how a stored value is opened and decoded, the sealed values a
//! commit writes, and what `verify` counts. The shared store logic (`durable`) seals
//! and opens every value through here, so a value is bound to its row the same way in
//! both persistent stores (each in its own sealing domain).

mod kyber;

use zeroize::Zeroizing;

use super::integrity::Entry;
use super::schema::T;
use super::seal::{self, Sealer};
use super::{
    Commit, DeliveredMessage, GroupCommit, MessageId, NewMessage, RowVersion, StateWrite,
    VersionedState,
};
use crate::error::StoreError;
use crate::group::{DistributionId, SenderKeyRecord};
use crate::keys::{IdentityKey, IdentityKeyPair, PreKeyRecord, SignedPreKeyRecord};
use crate::session::SessionRecord;
use crate::{Address, Timestamp};

/// What a persistent store's [`super::DurableStore::verify`] found: how many rows of
/// each kind opened (in `PostgresStore`, of its device's rows).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreSummary {
    /// Trusted identities.
    pub identities: usize,
    /// One-time prekeys.
    pub pre_keys: usize,
    /// Signed prekeys.
    pub signed_pre_keys: usize,
    /// Session records.
    pub sessions: usize,
    /// Message rows (with or without plaintext).
    pub messages: usize,
    /// Message rows whose plaintext the app has not acknowledged yet.
    pub unacknowledged: usize,
    /// Privacy-model state values.
    pub states: usize,
    /// Sender-key records (own sending chains and other members' chains).
    pub sender_keys: usize,
    /// Kyber prekeys, one-time and last-resort.
    pub kyber_pre_keys: usize,
    /// Recorded uses of last-resort Kyber prekeys.
    pub kyber_pre_key_uses: usize,
}

impl StoreSummary {
    /// Counts one row of `table` that opened; `sealed` is whether it held a value (an
    /// acknowledged message holds none). Rows of tables the summary does not report
    /// (`meta`) are checked but not counted.
    pub(crate) fn count(&mut self, table: &str, sealed: bool) {
        let field = match table {
            "identity" => &mut self.identities,
            "pre_key" => &mut self.pre_keys,
            "signed_pre_key" => &mut self.signed_pre_keys,
            "session" => &mut self.sessions,
            "message" => {
                if sealed {
                    self.unacknowledged += 1;
                }
                &mut self.messages
            }
            "state" => &mut self.states,
            "sender_key" => &mut self.sender_keys,
            "kyber_pre_key" => &mut self.kyber_pre_keys,
            "kyber_pre_key_use" => &mut self.kyber_pre_key_uses,
            _ => return,
        };
        *field += 1;
    }
}

/// The error for a row of `table` that failed to open or decode.
pub(crate) fn tampered(table: &'static str) -> StoreError {
    StoreError::Tampered(super::TamperedRow { table })
}

/// The row key of an address: its name, a NUL, and the device id (fixed length).
pub(crate) fn address_row(address: &Address) -> Vec<u8> {
    address_row_of(address.name(), address.device_id())
}

/// [`address_row`] from the name and device id.
fn address_row_of(name: &str, device: u32) -> Vec<u8> {
    let mut row = Vec::with_capacity(name.len() + 5);
    row.extend_from_slice(name.as_bytes());
    row.push(0);
    row.extend_from_slice(&device.to_be_bytes());
    row
}

/// Length-prefixed parts, so no two tuples share a row key.
pub(crate) fn text_row(parts: &[&str]) -> Vec<u8> {
    let mut row = Vec::new();
    for p in parts {
        row.extend_from_slice(&u32::try_from(p.len()).unwrap_or(u32::MAX).to_be_bytes());
        row.extend_from_slice(p.as_bytes());
    }
    row
}

/// A timestamp as the milliseconds column the message tables keep.
pub(crate) fn ms(t: Timestamp) -> i64 {
    i64::try_from(t.as_millis()).unwrap_or(i64::MAX)
}

/// The timestamp a milliseconds column holds.
pub(crate) fn from_ms(v: i64) -> Timestamp {
    Timestamp::from_millis(u64::try_from(v).unwrap_or(0))
}

/// Our identity, cached by a store after it is read.
pub(crate) struct Local {
    /// Our identity key pair.
    pub(crate) identity: IdentityKeyPair,
    /// Our registration id.
    pub(crate) registration_id: u32,
}

impl Local {
    /// From the opened `local_identity` and `registration_id` meta values.
    pub(crate) fn decode(identity: &[u8], registration_id: &[u8]) -> Result<Self, StoreError> {
        let identity = IdentityKeyPair::from_bytes(identity).map_err(|_| tampered("meta"))?;
        let reg: [u8; 4] = registration_id.try_into().map_err(|_| tampered("meta"))?;
        Ok(Self {
            identity,
            registration_id: u32::from_be_bytes(reg),
        })
    }
}

/// The identity in `local`, or [`StoreError::NoLocalIdentity`] before one was set.
pub(crate) fn local_identity(local: Option<&Local>) -> Result<IdentityKeyPair, StoreError> {
    local
        .map(|l| l.identity.clone())
        .ok_or(StoreError::NoLocalIdentity)
}

/// The registration id in `local`, or [`StoreError::NoLocalIdentity`].
pub(crate) fn local_registration_id(local: Option<&Local>) -> Result<u32, StoreError> {
    local
        .map(|l| l.registration_id)
        .ok_or(StoreError::NoLocalIdentity)
}

/// A decrypted message sealed for its row, ready to insert inside a transaction.
pub(crate) struct SealedMessage {
    /// The row id: HMAC of the sender's row key and the message id.
    pub(crate) idx: [u8; 32],
    /// When it was decrypted, in milliseconds.
    pub(crate) received_at: i64,
    /// The sealed plaintext.
    pub(crate) sealed: Vec<u8>,
    /// The sealed metadata ([`MessageMeta`]).
    pub(crate) meta: Vec<u8>,
}

/// What a message row's plain columns say, sealed beside them (column `m`) so an edit
/// of the columns (an expiry removed, so the message never disappears; an acknowledged
/// message given its plaintext back) is seen.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct MessageMeta {
    /// `received_at`, in milliseconds.
    pub(crate) received_at: i64,
    /// `expires_at`, in milliseconds.
    pub(crate) expires_at: Option<i64>,
    /// Whether the app acknowledged it (`v` is then NULL).
    pub(crate) acknowledged: bool,
}

impl MessageMeta {
    fn encode(&self) -> [u8; 18] {
        let mut out = [0u8; 18];
        out[..8].copy_from_slice(&self.received_at.to_be_bytes());
        out[8] = u8::from(self.expires_at.is_some());
        out[9..17].copy_from_slice(&self.expires_at.unwrap_or(0).to_be_bytes());
        out[17] = u8::from(self.acknowledged);
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let b: [u8; 18] = bytes.try_into().map_err(|_| tampered("message"))?;
        let at = |i: usize| {
            <[u8; 8]>::try_from(&b[i..i + 8])
                .map(i64::from_be_bytes)
                .map_err(|_| tampered("message"))
        };
        let expires_at = match b[8] {
            0 => None,
            1 => Some(at(9)?),
            _ => return Err(tampered("message")),
        };
        let acknowledged = match b[17] {
            0 => false,
            1 => true,
            _ => return Err(tampered("message")),
        };
        Ok(Self {
            received_at: at(0)?,
            expires_at,
            acknowledged,
        })
    }
}

/// The error for a value this open cannot seal (its nonces are used up).
fn seal_failed(_: seal::SealFailed) -> StoreError {
    StoreError::backend("the store's nonces for this open are used up: reopen it")
}

/// The row key of a table's row from its key parameters (the owner excluded), as the
/// row is sealed under and recorded in the integrity head.
pub(crate) fn row_key(t: T, key: &[super::durable::Val<'_>]) -> Result<Vec<u8>, StoreError> {
    use super::durable::Val;
    let bad = || tampered(t.table().name);
    let address = |name: &Val<'_>, device: &Val<'_>| match (name, device) {
        (Val::Text(n), Val::Int(d)) => Ok(address_row_of(n, u32::try_from(*d).map_err(|_| bad())?)),
        _ => Err(bad()),
    };
    match (t.table().row_key, key) {
        (RowKey::Address, [n, d]) => address(n, d),
        (RowKey::Message | RowKey::SenderKey, [n, d, Val::Bytes(b)]) => {
            let mut row = address(n, d)?;
            row.extend_from_slice(b);
            Ok(row)
        }
        (RowKey::Id, [Val::Int(id)]) => match t {
            // The integrity table's rows are keyed by their id as 8 bytes.
            T::Integrity => Ok(id.to_be_bytes().to_vec()),
            _ => Ok(u32::try_from(*id)
                .map_err(|_| bad())?
                .to_be_bytes()
                .to_vec()),
        },
        (RowKey::KyberUse, [Val::Int(id), Val::Bytes(idx)]) => {
            Ok(kyber::use_row(u32::try_from(*id).map_err(|_| bad())?, idx))
        }
        (RowKey::State, [Val::Text(kind), Val::Text(k)]) => Ok(text_row(&[kind, k])),
        (RowKey::Meta, [Val::Text(k)]) => Ok(k.as_bytes().to_vec()),
        _ => Err(bad()),
    }
}

/// The sealed values a 1:1 commit writes, made before its transaction starts so the
/// transaction holds only SQL.
pub(crate) struct SealedCommit {
    /// The new session record.
    pub(crate) session: Vec<u8>,
    /// The identity to trust, if the commit sets one.
    pub(crate) identity: Option<Vec<u8>>,
    /// The decrypted message, if the commit stores one.
    pub(crate) message: Option<SealedMessage>,
}

/// The sealed values a group commit writes, made before its transaction starts.
pub(crate) struct SealedGroupCommit {
    /// The new sender-key record.
    pub(crate) record: Vec<u8>,
    /// The decrypted message, if the commit stores one.
    pub(crate) message: Option<SealedMessage>,
}

/// Which columns make up a row's key.
#[derive(Clone, Copy)]
pub(crate) enum RowKey {
    /// `name, device`, then the value.
    Address,
    /// `id`, then the value.
    Id,
    /// `name, device, id`, then a nullable value.
    Message,
    /// `name, device, distribution`, then the value.
    SenderKey,
    /// `kyber_id, idx` (a Kyber prekey's id and the HMAC of one use), then the value.
    KyberUse,
    /// `kind, k`, then the value.
    State,
    /// `k` (a meta row), then the value.
    Meta,
}

/// Seals and opens one store's rows: the table name and the row key (after the store's
/// owner prefix: empty for SQLite, the device name for PostgreSQL) are the associated
/// data, so a value moved to another row, table or device fails to open.
pub(crate) struct Rows {
    sealer: Sealer,
    owner: Vec<u8>,
}

impl Rows {
    /// Rows sealed by `sealer`, every row key starting with `owner`.
    pub(crate) fn new(sealer: Sealer, owner: Vec<u8>) -> Self {
        Self { sealer, owner }
    }

    /// Sets this open's generation (the first half of every nonce).
    pub(crate) fn set_generation(&self, generation: u64) {
        self.sealer.set_generation(generation);
    }

    /// The owner prefix of every row key.
    pub(crate) fn owner(&self) -> &[u8] {
        &self.owner
    }

    /// The full row key of `row`: the owner prefix, then `row`.
    fn key(&self, row: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.owner.len() + row.len());
        out.extend_from_slice(&self.owner);
        out.extend_from_slice(row);
        out
    }

    /// Where the integrity head records the version of `row` of `t`.
    pub(crate) fn entry(&self, t: T, row: &[u8]) -> Entry {
        self.sealer.entry(t.table().name, &self.key(row))
    }

    /// The full row key of `address`.
    fn address_key(&self, address: &Address) -> Vec<u8> {
        self.key(&address_row(address))
    }

    /// The full row key of the sender-key record of (`sender`, `distribution_id`): the
    /// sender's address row, then the 16-byte distribution id (both fixed-length
    /// suffixes, so no two pairs share a row key).
    fn sender_key_key(&self, sender: &Address, distribution_id: DistributionId) -> Vec<u8> {
        let mut row = self.address_key(sender);
        row.extend_from_slice(distribution_id.as_bytes());
        row
    }

    /// Seals `value` for `row` of `table`.
    pub(crate) fn seal(
        &self,
        table: &str,
        row: &[u8],
        value: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        self.seal_key(table, &self.key(row), value)
    }

    fn seal_key(&self, table: &str, key: &[u8], value: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.sealer.seal(table, key, value).map_err(seal_failed)
    }

    /// Opens what [`Rows::seal`] wrote for `row` of `table`.
    pub(crate) fn open(
        &self,
        table: &'static str,
        row: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        self.open_key(table, &self.key(row), sealed)
    }

    fn open_key(
        &self,
        table: &'static str,
        key: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        self.sealer
            .open(table, key, sealed)
            .map_err(|_| tampered(table))
    }

    /// Opens and decodes a row value, if there is a row.
    fn open_decoded<V>(
        &self,
        table: &'static str,
        key: &[u8],
        sealed: Option<Vec<u8>>,
        decode: impl FnOnce(&[u8]) -> Result<V, StoreError>,
    ) -> Result<Option<V>, StoreError> {
        sealed
            .map(|v| decode(&self.open_key(table, key, &v)?))
            .transpose()
    }

    /// Opens and decodes a row value with its version (the nonce, unique per write), or
    /// [`RowVersion::ABSENT`] for no row.
    fn open_versioned<V>(
        &self,
        table: &'static str,
        key: &[u8],
        sealed: Option<Vec<u8>>,
        decode: impl FnOnce(&[u8]) -> Result<V, StoreError>,
    ) -> Result<(Option<V>, RowVersion), StoreError> {
        let Some(sealed) = sealed else {
            return Ok((None, RowVersion::ABSENT));
        };
        let version = seal::nonce_of(&sealed).ok_or_else(|| tampered(table))?;
        let bytes = self.open_key(table, key, &sealed)?;
        Ok((Some(decode(&bytes)?), RowVersion::new(version)))
    }

    /// The sealed trusted identity of `address`.
    pub(crate) fn seal_identity(
        &self,
        address: &Address,
        key: &IdentityKey,
    ) -> Result<Vec<u8>, StoreError> {
        self.seal_key("identity", &self.address_key(address), &key.serialize())
    }

    /// The trusted identity of `address` from its sealed row, if there is one.
    pub(crate) fn open_identity(
        &self,
        address: &Address,
        sealed: Option<Vec<u8>>,
    ) -> Result<Option<IdentityKey>, StoreError> {
        self.open_decoded("identity", &self.address_key(address), sealed, |v| {
            IdentityKey::try_from(v).map_err(|_| tampered("identity"))
        })
    }

    /// The sealed one-time prekey.
    pub(crate) fn seal_pre_key(&self, record: &PreKeyRecord) -> Result<Vec<u8>, StoreError> {
        self.seal("pre_key", &record.id().to_be_bytes(), &record.to_bytes())
    }

    /// The one-time prekey `id` from its sealed row, if there is one.
    pub(crate) fn open_pre_key(
        &self,
        id: u32,
        sealed: Option<Vec<u8>>,
    ) -> Result<Option<PreKeyRecord>, StoreError> {
        self.open_decoded("pre_key", &self.key(&id.to_be_bytes()), sealed, |v| {
            Ok(PreKeyRecord::from_bytes(v)?)
        })
    }

    /// The sealed signed prekey.
    pub(crate) fn seal_signed_pre_key(
        &self,
        record: &SignedPreKeyRecord,
    ) -> Result<Vec<u8>, StoreError> {
        self.seal(
            "signed_pre_key",
            &record.id().to_be_bytes(),
            &record.to_bytes(),
        )
    }

    /// The signed prekey `id` from its sealed row, if there is one.
    pub(crate) fn open_signed_pre_key(
        &self,
        id: u32,
        sealed: Option<Vec<u8>>,
    ) -> Result<Option<SignedPreKeyRecord>, StoreError> {
        self.open_decoded(
            "signed_pre_key",
            &self.key(&id.to_be_bytes()),
            sealed,
            |v| Ok(SignedPreKeyRecord::from_bytes(v)?),
        )
    }

    /// The sealed session record of `address`.
    pub(crate) fn seal_session(
        &self,
        address: &Address,
        record: &SessionRecord,
    ) -> Result<Vec<u8>, StoreError> {
        self.seal_key("session", &self.address_key(address), &record.to_bytes())
    }

    /// The session of `address` from its sealed row, with its version
    /// ([`RowVersion::ABSENT`] for no row).
    pub(crate) fn open_session(
        &self,
        address: &Address,
        sealed: Option<Vec<u8>>,
    ) -> Result<(Option<SessionRecord>, RowVersion), StoreError> {
        self.open_versioned("session", &self.address_key(address), sealed, |v| {
            Ok(SessionRecord::from_sealed_bytes(v)?)
        })
    }

    /// The sealed sender-key record of (`sender`, `distribution_id`).
    pub(crate) fn seal_sender_key(
        &self,
        sender: &Address,
        distribution_id: DistributionId,
        record: &SenderKeyRecord,
    ) -> Result<Vec<u8>, StoreError> {
        self.seal_key(
            "sender_key",
            &self.sender_key_key(sender, distribution_id),
            &record.to_bytes(),
        )
    }

    /// The sender-key record of (`sender`, `distribution_id`) from its sealed row, with
    /// its version ([`RowVersion::ABSENT`] for no row).
    pub(crate) fn open_sender_key(
        &self,
        sender: &Address,
        distribution_id: DistributionId,
        sealed: Option<Vec<u8>>,
    ) -> Result<(Option<SenderKeyRecord>, RowVersion), StoreError> {
        let key = self.sender_key_key(sender, distribution_id);
        self.open_versioned("sender_key", &key, sealed, |v| {
            Ok(SenderKeyRecord::from_sealed_bytes(v)?)
        })
    }

    /// The sealed privacy-model state value under (`kind`, `key`).
    pub(crate) fn seal_state(
        &self,
        kind: &str,
        key: &str,
        value: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        self.seal("state", &text_row(&[kind, key]), value)
    }

    /// The privacy-model state value under (`kind`, `key`) from its sealed row, with
    /// its version ([`RowVersion::ABSENT`] for no row).
    pub(crate) fn open_state_versioned(
        &self,
        kind: &str,
        key: &str,
        sealed: Option<Vec<u8>>,
    ) -> Result<VersionedState, StoreError> {
        let row = self.key(&text_row(&[kind, key]));
        self.open_versioned("state", &row, sealed, |v| Ok(Zeroizing::new(v.to_vec())))
    }

    /// Seals every value a state commit writes, in order.
    pub(crate) fn seal_states(
        &self,
        writes: &[StateWrite<'_>],
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        writes
            .iter()
            .map(|w| self.seal_state(w.kind, w.key, w.value))
            .collect()
    }

    /// The sealed `local_identity` and `registration_id` meta values.
    pub(crate) fn seal_local(
        &self,
        identity: &IdentityKeyPair,
        registration_id: u32,
    ) -> Result<(Vec<u8>, Vec<u8>), StoreError> {
        let identity = self.seal("meta", b"local_identity", &identity.to_bytes())?;
        let reg = self.seal("meta", b"registration_id", &registration_id.to_be_bytes())?;
        Ok((identity, reg))
    }

    /// The row id a message is stored under: HMAC(index key, sender's row key ‖ id),
    /// so the database does not show which of the server's ciphertexts it received.
    pub(crate) fn message_index(&self, address: &Address, id: &MessageId) -> [u8; 32] {
        self.sealer
            .message_index(&self.address_key(address), id.as_bytes())
    }

    /// The row key of a message: the sender's row key, then the message's row id.
    fn message_key(&self, address: &Address, idx: &[u8; 32]) -> Vec<u8> {
        let mut row = self.address_key(address);
        row.extend_from_slice(idx);
        row
    }

    /// Seals a message row's metadata; `row` is its row key without the owner prefix
    /// (the sender's address row, then the row id).
    pub(crate) fn seal_message_meta(
        &self,
        row: &[u8],
        meta: &MessageMeta,
    ) -> Result<Vec<u8>, StoreError> {
        self.seal("message_meta", row, &meta.encode())
    }

    /// Opens a message row's metadata and checks it against the plain columns:
    /// `received_at`, `expires_at` and whether `v` is NULL.
    pub(crate) fn check_message_meta(
        &self,
        row: &[u8],
        sealed: Option<&[u8]>,
        columns: &MessageMeta,
    ) -> Result<(), StoreError> {
        let sealed = sealed.ok_or_else(|| tampered("message"))?;
        let meta = MessageMeta::decode(
            &self
                .open("message_meta", row, sealed)
                .map_err(|_| tampered("message"))?,
        )?;
        if meta != *columns {
            return Err(tampered("message"));
        }
        Ok(())
    }

    /// Seals a decrypted message from `address` for its row, the same for 1:1 and
    /// group messages.
    pub(crate) fn seal_message(
        &self,
        address: &Address,
        message: &NewMessage<'_>,
    ) -> Result<SealedMessage, StoreError> {
        let idx = self.message_index(address, &message.id);
        let mut row = address_row(address);
        row.extend_from_slice(&idx);
        let received_at = ms(message.received_at);
        let meta = MessageMeta {
            received_at,
            expires_at: None,
            acknowledged: false,
        };
        Ok(SealedMessage {
            idx,
            received_at,
            sealed: self.seal_key(
                "message",
                &self.message_key(address, &idx),
                message.plaintext,
            )?,
            meta: self.seal_message_meta(&row, &meta)?,
        })
    }

    /// Opens a stored message's plaintext (`None` once acknowledged); `row` is its row
    /// key without the owner prefix.
    pub(crate) fn open_message(
        &self,
        row: &[u8],
        sealed: Option<Vec<u8>>,
        received_at: i64,
    ) -> Result<DeliveredMessage, StoreError> {
        let plaintext = sealed.map(|v| self.open("message", row, &v)).transpose()?;
        Ok(DeliveredMessage::new(plaintext, from_ms(received_at)))
    }

    /// Seals everything `commit` writes.
    pub(crate) fn seal_commit(&self, commit: &Commit<'_>) -> Result<SealedCommit, StoreError> {
        Ok(SealedCommit {
            session: self.seal_session(commit.address, commit.session)?,
            identity: commit
                .identity
                .map(|k| self.seal_identity(commit.address, k))
                .transpose()?,
            message: commit
                .message
                .map(|m| self.seal_message(commit.address, &m))
                .transpose()?,
        })
    }

    /// Seals everything a group `commit` writes.
    pub(crate) fn seal_group_commit(
        &self,
        commit: &GroupCommit<'_>,
    ) -> Result<SealedGroupCommit, StoreError> {
        Ok(SealedGroupCommit {
            record: self.seal_sender_key(commit.sender, commit.distribution_id, commit.record)?,
            message: commit
                .message
                .map(|m| self.seal_message(commit.sender, &m))
                .transpose()?,
        })
    }
}
