//! What the persistent stores share: the [`DurableStore`] contract, and one
//! implementation of every store trait ([`Core`]) over a small SQL [`Backend`] that
//! `SqliteStore` and `PostgresStore` each provide. The statements come from the one
//! table description in [`super::schema`]; the sealing from [`super::rows`].

mod format;
mod impls;
mod kyber;
mod messages;
mod open;
mod steps;
mod verify;

pub(crate) use format::open_device;
use messages::checked_message;
pub use open::OpenError;
pub(crate) use open::{KeyCheck, check_schema};
pub(crate) use steps::Steps;

use std::sync::{Arc, Mutex, MutexGuard};

use rand_core::CryptoRngCore;

use super::integrity::{self, Bucket, Dir, Head, RollbackCounter, Watch};
use super::rows::{Local, Rows};
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

    /// Opens every row with the key and checks it against the integrity head: its
    /// version is the current one, no row was deleted or added, every message's
    /// columns match its sealed metadata (and runs the backend's own integrity check,
    /// if it has one). A consistency check for tests and for apps after a restore or
    /// failover.
    fn verify(&self) -> Result<StoreSummary, StoreError>;

    /// Checks the store against a counter the platform keeps outside the database and
    /// advances the counter after every commit from now on, so that a rollback of the
    /// whole database to an older copy is refused ([`StoreError::RolledBack`]) at the
    /// next open that attaches the counter. Without one, such a rollback is seen only
    /// while a store that saw the newer state is still open.
    fn attach_rollback_counter(&self, counter: Arc<dyn RollbackCounter>) -> Result<(), StoreError>;
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
#[derive(Debug, Clone)]
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

    /// Every row the query selects, its columns typed as `types` say.
    fn query(
        &mut self,
        sql: &str,
        params: &[Val<'_>],
        types: &[Ty],
    ) -> Result<Vec<Vec<Cell>>, Abort>;
}

/// A database the shared store logic runs on.
pub(crate) trait Backend: Send + Sync {
    /// The dialect its statements are written in.
    const DIALECT: Dialect;

    /// The one row the query selects, if any.
    fn query_row(&self, q: &Query<'_>) -> Result<Option<Vec<Cell>>, StoreError>;

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
    dialect: Dialect,
    value: Vec<String>,
    checked: Vec<String>,
    upsert: Vec<String>,
    if_absent: Vec<String>,
    swap: Vec<String>,
    delete: Vec<String>,
    delete_at: Vec<String>,
    scan: Vec<String>,
    integrity: String,
    integrity_lock: String,
    count_rows: String,
    message: String,
    path: String,
    new_message: String,
    acknowledge: String,
    expiry: String,
    purge: String,
    reseal_message: String,
    drop_legacy_generation: String,
    kyber_uses: String,
}

impl Sql {
    pub(crate) fn new(d: Dialect) -> Self {
        let all = |f: &dyn Fn(&super::schema::Table) -> String| TABLES.iter().map(f).collect();
        let message = T::Message.table();
        Self {
            dialect: d,
            value: all(&|t| d.select_value(t)),
            checked: all(&|t| d.checked(t)),
            upsert: all(&|t| d.write(t, Write::Upsert)),
            if_absent: all(&|t| d.write(t, Write::IfAbsent)),
            swap: all(&|t| d.swap(t)),
            delete: all(&|t| d.delete(t)),
            delete_at: all(&|t| d.delete_at(t)),
            scan: all(&|t| d.scan(t)),
            integrity: d.integrity_row(false),
            integrity_lock: d.integrity_row(true),
            count_rows: d.count_rows(),
            message: d.select(message, "received_at, expires_at, v, m"),
            path: d.path_only(),
            new_message: d.insert(message, &["received_at", "v", "m"], Write::IfAbsent),
            acknowledge: d.update_message("v"),
            expiry: d.update_message("expires_at"),
            purge: d.purge(),
            reseal_message: d.reseal_message(),
            drop_legacy_generation: format!(
                "DELETE FROM {} WHERE k = 'generation'",
                d.name(T::Meta.table())
            ),
            kyber_uses: d.kyber_uses(),
        }
    }
}

/// The shared half of a persistent store: its backend, its sealing and our identity.
pub(crate) struct Core<B> {
    pub(crate) db: B,
    pub(crate) rows: Rows,
    local: Mutex<Option<Local>>,
    sql: Sql,
    /// The newest integrity head seen, and the app's rollback counter.
    watch: Watch,
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
    /// The core of a store [`open_device`] opened with its head at `seq` (our identity
    /// read from the database).
    pub(crate) fn new(db: B, rows: Rows, seq: u64, what: &'static str) -> Result<Self, StoreError> {
        let core = Self {
            db,
            rows,
            local: Mutex::new(None),
            sql: Sql::new(B::DIALECT),
            watch: Watch::new(seq),
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

    /// The sealed value of the row of `t` with `key`, read with its bucket and the
    /// integrity head and checked against them: an older copy of the row, a deleted
    /// row or a re-inserted one is [`StoreError::Tampered`].
    pub(crate) fn value(&self, t: T, key: &[Val<'_>]) -> Result<Option<Vec<u8>>, StoreError> {
        let row = super::rows::row_key(t, key)?;
        let entry = self.rows.entry(t, &row);
        let l = integrity::leaf_of(&entry);
        let floor = self.watch.floor();
        let found = self.db.query_row(&Query {
            sql: &self.sql.checked[t as usize],
            params: &with(key, &path_params(l)),
            types: &[Ty::Blob; 4],
        })?;
        let Some(Ok([value, leaf, dir, head])) = found.map(<[Cell; 4]>::try_from) else {
            return Err(integrity::tampered());
        };
        let value = blob(value)?;
        let (head, leaf) = self.open_path(floor, &entry, l, [leaf, dir, head])?;
        integrity::check_row(t, &entry, value.as_deref(), &head, &leaf)?;
        Ok(value)
    }

    /// The head and leaf `l` from the cells a checked read returned for them and the
    /// leaf's directory, each checked against the next; the head read after the floor
    /// `floor`. When the head's pending changes name `entry` they decide, and the leaf
    /// and directory are not opened (an empty leaf is returned).
    fn open_path(
        &self,
        floor: u64,
        entry: &integrity::Entry,
        l: usize,
        cells: [Cell; 3],
    ) -> Result<(Head, Bucket), StoreError> {
        let [leaf, dir, head] = cells;
        let head = self.open_head(floor, blob(head)?.as_deref())?;
        if head.pending(entry).is_some() {
            return Ok((head, Bucket::default()));
        }
        let d = integrity::dir_of(l).0;
        let dir = open_dir(&self.rows, &head, d, blob(dir)?.as_deref())?;
        let leaf = open_leaf(&self.rows, &dir, l, blob(leaf)?.as_deref())?;
        Ok((head, leaf))
    }

    /// The integrity head from its sealed row, read after the watch's floor was
    /// `floor`: refused if missing or older than one seen before.
    pub(crate) fn open_head(&self, floor: u64, sealed: Option<&[u8]>) -> Result<Head, StoreError> {
        let head = open_head(&self.rows, sealed)?;
        self.watch.observe(floor, head.seq)?;
        Ok(head)
    }

    /// Replaces the row of `t` with `key` by `sealed`.
    pub(crate) fn put(&self, t: T, key: &[Val<'_>], sealed: &[u8]) -> Result<(), StoreError> {
        self.transact(|s| s.put(t, key, sealed))?;
        Ok(())
    }

    /// Deletes the row of `t` with `key`.
    pub(crate) fn delete(&self, t: T, key: &[Val<'_>]) -> Result<(), StoreError> {
        self.transact(|s| s.delete(t, key))?;
        Ok(())
    }
}

/// The integrity head from its sealed row (a missing head is tampering: every opened
/// device has one).
pub(crate) fn open_head(rows: &Rows, sealed: Option<&[u8]>) -> Result<Head, StoreError> {
    let sealed = sealed.ok_or_else(integrity::tampered)?;
    let bytes = rows
        .open("integrity", &integrity::HEAD_ID.to_be_bytes(), sealed)
        .map_err(|_| integrity::tampered())?;
    Head::decode(&bytes)
}

/// The parameters a checked read takes after the key: leaf `l`'s id and its
/// directory's.
fn path_params(l: usize) -> [Val<'static>; 2] {
    let (d, _) = integrity::dir_of(l);
    [
        Val::Int(integrity::leaf_id(l)),
        Val::Int(integrity::dir_id(d)),
    ]
}

/// A nullable blob cell of an integrity read.
fn blob(c: Cell) -> Result<Option<Vec<u8>>, StoreError> {
    match c {
        Cell::Bytes(v) => Ok(Some(v)),
        Cell::Null => Ok(None),
        _ => Err(integrity::tampered()),
    }
}

/// The plaintext of the integrity row `id` from its sealed value, which must be at the
/// version its parent records (no row when it records none: an empty node).
fn open_node(
    rows: &Rows,
    recorded: Option<integrity::Version>,
    id: i64,
    sealed: Option<&[u8]>,
) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, StoreError> {
    match (recorded, sealed) {
        (None, None) => Ok(None),
        (Some(want), Some(sealed)) if super::seal::nonce_of(sealed) == Some(want) => rows
            .open("integrity", &id.to_be_bytes(), sealed)
            .map(Some)
            .map_err(|_| integrity::tampered()),
        _ => Err(integrity::tampered()),
    }
}

/// Directory `d` from its sealed row, at the version `head` records.
pub(crate) fn open_dir(
    rows: &Rows,
    head: &Head,
    d: usize,
    sealed: Option<&[u8]>,
) -> Result<Dir, StoreError> {
    let recorded = head.dirs.get(d).copied().flatten();
    match open_node(rows, recorded, integrity::dir_id(d), sealed)? {
        None => Ok(Dir::default()),
        Some(bytes) => Dir::decode(&bytes),
    }
}

/// Leaf `l` from its sealed row, at the version its directory `dir` records.
pub(crate) fn open_leaf(
    rows: &Rows,
    dir: &Dir,
    l: usize,
    sealed: Option<&[u8]>,
) -> Result<Bucket, StoreError> {
    let recorded = dir.0.get(integrity::dir_of(l).1).copied().flatten();
    match open_node(rows, recorded, integrity::leaf_id(l), sealed)? {
        None => Ok(Bucket::default()),
        Some(bytes) => Bucket::decode(&bytes),
    }
}

impl<B: Backend> Core<B> {
    /// Runs `f`'s steps in one transaction, with the integrity head and buckets
    /// updated for the tracked rows they write, in the same transaction.
    pub(crate) fn transact(
        &self,
        mut f: impl FnMut(&mut Steps<'_, '_>) -> Result<(), Abort>,
    ) -> Result<super::CommitOutcome, StoreError> {
        let (sql, rows, watch) = (&self.sql, &self.rows, &self.watch);
        let mut seq = None;
        let outcome = self.db.transaction(&mut |tx| {
            let mut steps = Steps::new(sql, rows, tx);
            f(&mut steps)?;
            seq = steps.finish(watch)?;
            Ok(())
        })?;
        if let (super::CommitOutcome::Committed, Some(seq)) = (outcome, seq) {
            self.watch.committed(seq)?;
        }
        Ok(outcome)
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
        let (sealed_identity, sealed_reg) = self.rows.seal_local(identity, registration_id)?;
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
        let (sealed_identity, sealed_reg) = self.rows.seal_local(&identity, registration_id)?;
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
        let at = expires_at.map(super::rows::ms);
        self.update_message(&self.sql.expiry, address, id, Val::OptInt(at), |m| {
            m.expires_at = at;
        })
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
        let mut gone = 0;
        let outcome = self.transact(|s| {
            gone = s.purge(&params)?;
            Ok(())
        })?;
        match outcome {
            super::CommitOutcome::Committed => Ok(gone),
            super::CommitOutcome::Conflict => Err(StoreError::Contention { attempts: 1 }),
        }
    }

    fn verify(&self) -> Result<StoreSummary, StoreError> {
        verify::verify(self)
    }

    fn attach_rollback_counter(&self, counter: Arc<dyn RollbackCounter>) -> Result<(), StoreError> {
        let head = self.current_head()?;
        self.watch.attach(counter, head.seq)
    }
}

impl<B: Backend> Core<B> {
    /// The integrity head as it is now.
    fn current_head(&self) -> Result<Head, StoreError> {
        let floor = self.watch.floor();
        let found = self.db.query_row(&Query {
            sql: &self.sql.integrity,
            params: &[Val::Int(integrity::HEAD_ID)],
            types: &[Ty::Blob],
        })?;
        match found.as_deref() {
            Some([Cell::Bytes(v)]) => self.open_head(floor, Some(v)),
            _ => Err(integrity::tampered()),
        }
    }
}
