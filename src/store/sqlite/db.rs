//! The SQLite backend of [`super::SqliteStore`]: one connection behind a mutex and the
//! schema migrations.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params_from_iter};

use super::{SCHEMA_VERSION, SqliteOptions, Synchronous};
use crate::error::StoreError;
use crate::store::durable::{Abort, Backend, Cell, KeyCheck, Query, Tx, Val, check_schema};
use crate::store::rows::tampered;
use crate::store::schema::{Dialect, Ty};
use crate::store::{CommitOutcome, OpenError};

/// A known plaintext sealed at creation, to tell a wrong key from a tampered row.
pub(super) const KEY_CHECK: KeyCheck = KeyCheck(b"confide sqlite key check v1");

/// The connection.
pub(super) struct Db {
    conn: Mutex<Connection>,
}

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::backend(e)
}

impl rusqlite::ToSql for Val<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match *self {
            Val::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Val::Int(i) => ToSqlOutput::Owned(Value::Integer(i)),
            Val::Bytes(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
            Val::OptInt(Some(i)) => ToSqlOutput::Owned(Value::Integer(i)),
            Val::OptBytes(Some(b)) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
            Val::OptInt(None) | Val::OptBytes(None) => ToSqlOutput::Owned(Value::Null),
        })
    }
}

/// The first `types.len()` columns of `row` (SQLite values carry their own type).
fn cells(row: &rusqlite::Row<'_>, types: &[Ty]) -> rusqlite::Result<Vec<Cell>> {
    (0..types.len())
        .map(|i| {
            row.get::<_, Value>(i).map(|v| match v {
                Value::Text(s) => Cell::Text(s),
                Value::Integer(n) => Cell::Int(n),
                Value::Blob(b) => Cell::Bytes(b),
                Value::Null | Value::Real(_) => Cell::Null,
            })
        })
        .collect()
}

/// A `BEGIN IMMEDIATE` transaction.
struct SqliteTx<'a>(&'a rusqlite::Transaction<'a>);

impl Tx for SqliteTx<'_> {
    fn execute(&mut self, sql: &str, params: &[Val<'_>]) -> Result<u64, Abort> {
        let n = self
            .0
            .prepare_cached(sql)
            .and_then(|mut s| s.execute(params_from_iter(params)))
            .map_err(backend)?;
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }

    fn query(
        &mut self,
        sql: &str,
        params: &[Val<'_>],
        types: &[Ty],
    ) -> Result<Vec<Vec<Cell>>, Abort> {
        let mut stmt = self.0.prepare_cached(sql).map_err(backend)?;
        let found = stmt
            .query_map(params_from_iter(params), |r| cells(r, types))
            .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
            .map_err(backend)?;
        Ok(found)
    }
}

impl Db {
    fn conn(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.conn.lock().map_err(|_| StoreError::Poisoned {
            what: "sqlite connection",
        })
    }

    /// Opens the file and migrates its schema (the device itself is opened by
    /// [`crate::store::durable::open_device`]).
    pub(super) fn open(path: &Path, options: SqliteOptions) -> Result<Self, OpenError> {
        let db = |e: rusqlite::Error| OpenError::backend(e);
        let mut conn = Connection::open(path).map_err(db)?;
        conn.busy_timeout(options.busy_timeout).map_err(db)?;
        // Every statement the store runs stays prepared (rusqlite keeps 16 by default;
        // a checked read, a commit and its integrity rows use more than that).
        conn.set_prepared_statement_cache_capacity(256);
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        let sync = match options.synchronous {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", sync).map_err(db)?;
        migrate(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }
}

/// Runs the migrations from the file's version up, each in its own transaction.
fn migrate(conn: &mut Connection) -> Result<(), OpenError> {
    let db = |e: rusqlite::Error| OpenError::backend(e);
    let found: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(db)?;
    check_schema(found, SCHEMA_VERSION)?;
    for version in found + 1..=SCHEMA_VERSION {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        // Another process may have migrated while we waited for the lock.
        let now: u32 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(db)?;
        if now >= version {
            continue;
        }
        tx.execute_batch(&Dialect::Sqlite.migration(version))
            .map_err(db)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(db)?;
        tx.commit().map_err(db)?;
    }
    Ok(())
}

impl Backend for Db {
    const DIALECT: Dialect = Dialect::Sqlite;

    fn query_row(&self, q: &Query<'_>) -> Result<Option<Vec<Cell>>, StoreError> {
        let conn = self.conn()?;
        conn.prepare_cached(q.sql)
            .and_then(|mut s| {
                s.query_row(params_from_iter(q.params), |r| cells(r, q.types))
                    .optional()
            })
            .map_err(backend)
    }

    fn transaction(
        &self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<(), Abort>,
    ) -> Result<CommitOutcome, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        // Dropping the transaction without a commit rolls it back.
        match f(&mut SqliteTx(&tx)) {
            Ok(()) => {
                tx.commit().map_err(backend)?;
                Ok(CommitOutcome::Committed)
            }
            Err(Abort::Conflict) => Ok(CommitOutcome::Conflict),
            Err(Abort::Failed(e)) => Err(e),
        }
    }

    fn scan(&self, queries: &[(&str, Vec<Ty>)]) -> Result<Vec<Vec<Vec<Cell>>>, StoreError> {
        let conn = self.conn()?;
        let ok: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(backend)?;
        if ok != "ok" {
            return Err(tampered("integrity_check"));
        }
        // The connection's lock keeps this process's writers out; a read transaction
        // keeps the snapshot across tables against other processes.
        let tx = conn.unchecked_transaction().map_err(backend)?;
        let mut all = Vec::with_capacity(queries.len());
        for (sql, types) in queries {
            let mut stmt = tx.prepare(sql).map_err(backend)?;
            let found = stmt
                .query_map([], |r| cells(r, types))
                .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
                .map_err(backend)?;
            all.push(found);
        }
        Ok(all)
    }
}
