//! What the persistent stores share: the [`DurableStore`] contract, and one
//! implementation of every store trait ([`Core`]) over a small SQL [`Backend`] that
//! `SqliteStore` and `PostgresStore` each provide. The statements come from the one
//! table description in [`super::schema`]; the sealing from [`super::rows`].

mod impls;
mod open;

pub use open::OpenError;
pub(crate) use open::{KeyCheck, check_schema};

use std::sync::{Mutex, MutexGuard};

use rand_core::CryptoRngCore;

use super::rows::{Columns, Local, Rows};
use super::schema::{Dialect, T, TABLES, Ty, Write};
use super::{DeliveredMessage, MessageId, ProtocolStore, StateStore, StoreSummary};
use crate::error::StoreError;
use crate::keys::{IdentityKeyPair, generate_registration_id};
use crate::{Address, Timestamp};

/// What both persistent stores (`SqliteStore`, `PostgresStore`) offer beyond the
/// protocol traits: creating the device's identity, the stored messages' lifecycle
/// (expiry and purge; acknowledging is [`TransactionalStore::acknowledge`](super::TransactionalStore::acknowledge), so a device
/// over any store can do it), and a check of every row.
///
/// Messages are those a decrypt stored in its commit, 1:1 ([`MessageId::of`]) and group
/// ([`MessageId::of_group`]) alike; for a group message `address` is the sender.
pub trait DurableStore: ProtocolStore + StateStore {
    /// Whether this device's identity has been set.
    fn has_local_identity(&self) -> Result<bool, StoreError>;

    /// Sets (or replaces) this device's identity and registration id. Replacing an
    /// identity invalidates every session and bundle made with the old one.
    fn set_local_identity(
        &self,
        identity: &IdentityKeyPair,
        registration_id: u32,
    ) -> Result<(), StoreError>;

    /// Gives the device an identity and registration id drawn from `rng` unless it has
    /// one. Returns whether it made one. Two callers racing on one device (two hosts)
    /// agree: one identity is kept, and the other caller loads it.
    fn bootstrap_identity(&self, rng: &mut dyn CryptoRngCore) -> Result<bool, StoreError>;

    /// The stored message with this id from `address` (see
    /// [`super::TransactionalStore::delivered`]).
    fn message(
        &self,
        address: &Address,
        id: &MessageId,
    ) -> Result<Option<DeliveredMessage>, StoreError>;

    /// Sets when a stored message disappears (its disappearing-message expiry), or
    /// `None` to keep it until acknowledged. Returns whether the message was stored.
    fn set_message_expiry(
        &self,
        address: &Address,
        id: &MessageId,
        expires_at: Option<Timestamp>,
    ) -> Result<bool, StoreError>;

    /// Deletes every message whose expiry is at or before `now` (plaintext and dedupe
    /// record: the message key is long gone, so a redelivery fails as a duplicate) and
    /// the dedupe records of acknowledged messages received before
    /// `forget_acknowledged_before`. Returns how many rows went.
    fn purge_messages(
        &self,
        now: Timestamp,
        forget_acknowledged_before: Timestamp,
    ) -> Result<u64, StoreError>;

    /// Opens every row with the key (and runs the backend's own integrity check, if it
    /// has one): a consistency check for tests and for apps after a restore or failover.
    fn verify(&self) -> Result<StoreSummary, StoreError>;
}

/// A statement parameter.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Val<'a> {
    Text(&'a str),
    Int(i64),
    Bytes(&'a [u8]),
    OptInt(Option<i64>),
    OptBytes(Option<&'a [u8]>),
}

/// A column a query returned.
#[derive(Debug)]
pub(crate) enum Cell {
    Text(String),
    Int(i64),
    Bytes(Vec<u8>),
    Null,
}

/// A query for at most one row.
pub(crate) struct Query<'a> {
    pub(crate) sql: &'a str,
    pub(crate) params: &'a [Val<'a>],
    /// The types of the columns it selects.
    pub(crate) types: &'a [Ty],
}

/// Why a transaction ended without committing.
pub(crate) enum Abort {
    /// A compare-and-swap or an insert-if-absent found the row changed, or the backend
    /// rolled the transaction back for a conflict (a serialization failure): redo.
    Conflict,
    /// A real failure.
    Failed(StoreError),
}

impl From<StoreError> for Abort {
    fn from(e: StoreError) -> Self {
        Self::Failed(e)
    }
}

/// A transaction in progress. PostgreSQL's owner parameter is added by the backend.
pub(crate) trait Tx {
    /// Runs one statement; the rows it changed.
    fn execute(&mut self, sql: &str, params: &[Val<'_>]) -> Result<u64, Abort>;
}

/// A database the shared store logic runs on.
pub(crate) trait Backend: Send + Sync {
    /// The dialect its statements are written in.
    const DIALECT: Dialect;

    /// The one row the query selects, if any.
    fn query_row(&self, q: &Query<'_>) -> Result<Option<Vec<Cell>>, StoreError>;

    /// Runs one statement; the rows it changed.
    fn execute(&self, sql: &str, params: &[Val<'_>]) -> Result<u64, StoreError>;

    /// Runs `f` in one transaction and commits it, or rolls back on an [`Abort`].
    fn transaction(
        &self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<(), Abort>,
    ) -> Result<super::CommitOutcome, StoreError>;

    /// Every row each `(sql, types)` selects, all read in one snapshot, after the
    /// backend's own integrity check.
    fn scan(&self, queries: &[(&str, Vec<Ty>)]) -> Result<Vec<Vec<Vec<Cell>>>, StoreError>;
}

/// The statements of one dialect, rendered once at open.
pub(crate) struct Sql {
    value: Vec<String>,
    upsert: Vec<String>,
    if_absent: Vec<String>,
    swap: Vec<String>,
    delete: Vec<String>,
    scan: Vec<String>,
    message: String,
    new_message: String,
    acknowledge: String,
    expiry: String,
    purge: String,
}

impl Sql {
    fn new(d: Dialect) -> Self {
        let all = |f: &dyn Fn(&super::schema::Table) -> String| TABLES.iter().map(f).collect();
        let message = T::Message.table();
        Self {
            value: all(&|t| d.select_value(t)),
            upsert: all(&|t| d.write(t, Write::Upsert)),
            if_absent: all(&|t| d.write(t, Write::IfAbsent)),
            swap: all(&|t| d.swap(t)),
            delete: all(&|t| d.delete(t)),
            scan: all(&|t| d.scan(t)),
            message: d.select(message, "received_at, v"),
            new_message: d.insert(message, &["received_at", "v"], Write::IfAbsent),
            acknowledge: d.update(message, "v"),
            expiry: d.update(message, "expires_at"),
            purge: d.purge(),
        }
    }
}

/// The shared half of a persistent store: its backend, its sealing and our identity.
pub(crate) struct Core<B> {
    pub(crate) db: B,
    pub(crate) rows: Rows,
    local: Mutex<Option<Local>>,
    sql: Sql,
    /// Which store this is, for lock errors.
    what: &'static str,
}

/// The key of an address row.
pub(crate) fn address(a: &Address) -> [Val<'_>; 2] {
    [Val::Text(a.name()), Val::Int(i64::from(a.device_id()))]
}

/// The key parameters followed by `more`.
fn with<'a>(key: &[Val<'a>], more: &[Val<'a>]) -> Vec<Val<'a>> {
    key.iter().chain(more).copied().collect()
}

impl<B: Backend> Core<B> {
    /// The core of an opened store (our identity read from the database).
    pub(crate) fn new(db: B, rows: Rows, what: &'static str) -> Result<Self, StoreError> {
        let core = Self {
            db,
            rows,
            local: Mutex::new(None),
            sql: Sql::new(B::DIALECT),
            what,
        };
        let local = core.load_local()?;
        *core.local_guard()? = local;
        Ok(core)
    }

    fn local_guard(&self) -> Result<MutexGuard<'_, Option<Local>>, StoreError> {
        self.local
            .lock()
            .map_err(|_| StoreError::Poisoned { what: self.what })
    }

    /// Our identity, read from the database if another process or host set it since.
    pub(crate) fn local(&self) -> Result<MutexGuard<'_, Option<Local>>, StoreError> {
        let mut guard = self.local_guard()?;
        if guard.is_none() {
            *guard = self.load_local()?;
        }
        Ok(guard)
    }

    fn load_local(&self) -> Result<Option<Local>, StoreError> {
        let meta = |k: &'static str| {
            self.value(T::Meta, &[Val::Text(k)])?
                .map(|v| self.rows.open("meta", k.as_bytes(), &v))
                .transpose()
        };
        let (Some(identity), Some(reg)) = (meta("local_identity")?, meta("registration_id")?)
        else {
            return Ok(None);
        };
        Local::decode(&identity, &reg).map(Some)
    }

    /// The sealed value of the row of `t` with `key`.
    pub(crate) fn value(&self, t: T, key: &[Val<'_>]) -> Result<Option<Vec<u8>>, StoreError> {
        let found = self.db.query_row(&Query {
            sql: &self.sql.value[t as usize],
            params: key,
            types: &[Ty::Blob],
        })?;
        match found.as_deref() {
            None => Ok(None),
            Some([Cell::Bytes(v)]) => Ok(Some(v.clone())),
            Some(_) => Err(super::rows::tampered(t.table().name)),
        }
    }

    /// Replaces the row of `t` with `key` by `sealed`.
    pub(crate) fn put(&self, t: T, key: &[Val<'_>], sealed: &[u8]) -> Result<(), StoreError> {
        self.db.execute(
            &self.sql.upsert[t as usize],
            &with(key, &[Val::Bytes(sealed)]),
        )?;
        Ok(())
    }

    /// Deletes the row of `t` with `key`.
    pub(crate) fn delete(&self, t: T, key: &[Val<'_>]) -> Result<(), StoreError> {
        self.db.execute(&self.sql.delete[t as usize], key)?;
        Ok(())
    }
}

/// The statements a transaction runs, each a step that may conflict.
pub(crate) struct Steps<'s, 't> {
    sql: &'s Sql,
    tx: &'t mut dyn Tx,
}

impl Steps<'_, '_> {
    /// Replaces the row.
    pub(crate) fn put(&mut self, t: T, key: &[Val<'_>], sealed: &[u8]) -> Result<(), Abort> {
        self.tx.execute(
            &self.sql.upsert[t as usize],
            &with(key, &[Val::Bytes(sealed)]),
        )?;
        Ok(())
    }

    /// Deletes the row.
    pub(crate) fn delete(&mut self, t: T, key: &[Val<'_>]) -> Result<(), Abort> {
        self.tx.execute(&self.sql.delete[t as usize], key)?;
        Ok(())
    }

    /// Writes the row only if it is still at `expected` (the nonce of its sealed value,
    /// or no row): a compare-and-swap. Conflicts otherwise.
    pub(crate) fn swap(
        &mut self,
        t: T,
        key: &[Val<'_>],
        expected: super::RowVersion,
        sealed: &[u8],
    ) -> Result<(), Abort> {
        let n = match expected.token() {
            None => self.tx.execute(
                &self.sql.if_absent[t as usize],
                &with(key, &[Val::Bytes(sealed)]),
            )?,
            Some(token) => self.tx.execute(
                &self.sql.swap[t as usize],
                &with(key, &[Val::Bytes(sealed), Val::Bytes(token)]),
            )?,
        };
        if n == 0 {
            return Err(Abort::Conflict);
        }
        Ok(())
    }

    /// Inserts a decrypted message; conflicts if its id is already stored.
    pub(crate) fn new_message(
        &mut self,
        sender: &Address,
        m: &super::rows::SealedMessage,
    ) -> Result<(), Abort> {
        let [name, device] = address(sender);
        let params = [
            name,
            device,
            Val::Bytes(&m.idx),
            Val::Int(m.received_at),
            Val::Bytes(&m.sealed),
        ];
        if self.tx.execute(&self.sql.new_message, &params)? == 0 {
            return Err(Abort::Conflict);
        }
        Ok(())
    }
}

impl<B: Backend> Core<B> {
    /// Runs `f`'s steps in one transaction.
    pub(crate) fn transact(
        &self,
        mut f: impl FnMut(&mut Steps<'_, '_>) -> Result<(), Abort>,
    ) -> Result<super::CommitOutcome, StoreError> {
        let sql = &self.sql;
        self.db.transaction(&mut |tx| f(&mut Steps { sql, tx }))
    }

    fn message_key<'a>(&self, address: &'a Address, idx: &'a [u8; 32]) -> [Val<'a>; 3] {
        let [name, device] = self::address(address);
        [name, device, Val::Bytes(idx)]
    }

    /// The message row for (`address`, `id`), 1:1 or group alike.
    pub(crate) fn stored_message(
        &self,
        address: &Address,
        id: &MessageId,
    ) -> Result<Option<DeliveredMessage>, StoreError> {
        let idx = self.rows.message_index(address, id);
        let found = self.db.query_row(&Query {
            sql: &self.sql.message,
            params: &self.message_key(address, &idx),
            types: &[Ty::Int, Ty::Blob],
        })?;
        let (received_at, sealed) = match found {
            None => return Ok(None),
            Some(cells) => match <[Cell; 2]>::try_from(cells) {
                Ok([Cell::Int(at), Cell::Bytes(v)]) => (at, Some(v)),
                Ok([Cell::Int(at), Cell::Null]) => (at, None),
                _ => return Err(super::rows::tampered("message")),
            },
        };
        self.rows
            .open_message(address, &idx, received_at, sealed)
            .map(Some)
    }

    fn set_message_column(
        &self,
        sql: &str,
        address: &Address,
        id: &MessageId,
        value: Val<'_>,
    ) -> Result<bool, StoreError> {
        let idx = self.rows.message_index(address, id);
        let params = with(&self.message_key(address, &idx), &[value]);
        Ok(self.db.execute(sql, &params)? > 0)
    }
}

impl<B: Backend> DurableStore for Core<B> {
    fn has_local_identity(&self) -> Result<bool, StoreError> {
        Ok(self.local()?.is_some())
    }

    fn set_local_identity(
        &self,
        identity: &IdentityKeyPair,
        registration_id: u32,
    ) -> Result<(), StoreError> {
        let (sealed_identity, sealed_reg) = self.rows.seal_local(identity, registration_id);
        self.transact(|s| {
            s.put(T::Meta, &[Val::Text("local_identity")], &sealed_identity)?;
            s.put(T::Meta, &[Val::Text("registration_id")], &sealed_reg)
        })?;
        *self.local_guard()? = Some(Local {
            identity: identity.clone(),
            registration_id,
        });
        Ok(())
    }

    fn bootstrap_identity(&self, rng: &mut dyn CryptoRngCore) -> Result<bool, StoreError> {
        if self.local()?.is_some() {
            return Ok(false);
        }
        let mut rng = rng;
        let identity = IdentityKeyPair::generate(&mut rng);
        let registration_id = generate_registration_id(&mut rng);
        let (sealed_identity, sealed_reg) = self.rows.seal_local(&identity, registration_id);
        let absent = super::RowVersion::ABSENT;
        let outcome = self.transact(|s| {
            s.swap(
                T::Meta,
                &[Val::Text("local_identity")],
                absent,
                &sealed_identity,
            )?;
            s.swap(
                T::Meta,
                &[Val::Text("registration_id")],
                absent,
                &sealed_reg,
            )
        })?;
        if outcome == super::CommitOutcome::Committed {
            *self.local_guard()? = Some(Local {
                identity,
                registration_id,
            });
            return Ok(true);
        }
        // Another process or host made one first: use it.
        let theirs = self.load_local()?.ok_or(StoreError::NoLocalIdentity)?;
        *self.local_guard()? = Some(theirs);
        Ok(false)
    }

    fn message(
        &self,
        address: &Address,
        id: &MessageId,
    ) -> Result<Option<DeliveredMessage>, StoreError> {
        self.stored_message(address, id)
    }

    fn set_message_expiry(
        &self,
        address: &Address,
        id: &MessageId,
        expires_at: Option<Timestamp>,
    ) -> Result<bool, StoreError> {
        let at = Val::OptInt(expires_at.map(super::rows::ms));
        self.set_message_column(&self.sql.expiry, address, id, at)
    }

    fn purge_messages(
        &self,
        now: Timestamp,
        forget_acknowledged_before: Timestamp,
    ) -> Result<u64, StoreError> {
        let params = [
            Val::Int(super::rows::ms(now)),
            Val::Int(super::rows::ms(forget_acknowledged_before)),
        ];
        self.db.execute(&self.sql.purge, &params)
    }

    fn verify(&self) -> Result<StoreSummary, StoreError> {
        let queries: Vec<(&str, Vec<Ty>)> = TABLES
            .iter()
            .zip(&self.sql.scan)
            .map(|(t, sql)| {
                let types = t.key.iter().map(|c| c.ty).chain([Ty::Blob]).collect();
                (sql.as_str(), types)
            })
            .collect();
        let found = self.db.scan(&queries)?;
        let mut summary = StoreSummary::default();
        for (t, rows) in TABLES.iter().zip(&found) {
            for cells in rows {
                let row = Scanned {
                    cells,
                    table: t.name,
                };
                self.rows
                    .verify_row(t.name, t.row_key, &row, &mut summary)?;
            }
        }
        Ok(summary)
    }
}

/// One row `verify` read: every bad column is reported as a tampered row of `table`.
struct Scanned<'a> {
    cells: &'a [Cell],
    table: &'static str,
}

impl Scanned<'_> {
    fn cell(&self, i: usize) -> Result<&Cell, StoreError> {
        self.cells
            .get(i)
            .ok_or_else(|| super::rows::tampered(self.table))
    }
}

impl Columns for Scanned<'_> {
    fn text(&self, i: usize) -> Result<String, StoreError> {
        match self.cell(i)? {
            Cell::Text(s) => Ok(s.clone()),
            _ => Err(super::rows::tampered(self.table)),
        }
    }

    fn number(&self, i: usize) -> Result<u32, StoreError> {
        match self.cell(i)? {
            Cell::Int(n) => u32::try_from(*n).map_err(|_| super::rows::tampered(self.table)),
            _ => Err(super::rows::tampered(self.table)),
        }
    }

    fn bytes(&self, i: usize) -> Result<Vec<u8>, StoreError> {
        self.value(i)?
            .ok_or_else(|| super::rows::tampered(self.table))
    }

    fn value(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError> {
        match self.cell(i)? {
            Cell::Bytes(b) => Ok(Some(b.clone())),
            Cell::Null => Ok(None),
            _ => Err(super::rows::tampered(self.table)),
        }
    }
}
