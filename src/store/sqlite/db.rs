//! The SQLite backend of [`super::SqliteStore`]: one connection behind a mutex, the
//! migrations, and the open counter and key check at every open.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params_from_iter};

use super::{SCHEMA_VERSION, SqliteOptions, Synchronous};
use crate::error::StoreError;
use crate::store::durable::{Abort, Backend, Cell, KeyCheck, Query, Tx, Val, check_schema};
use crate::store::rows::{Rows, tampered};
use crate::store::schema::{Dialect, Ty};
use crate::store::seal::Sealer;
use crate::store::{CommitOutcome, OpenError, StoreKey};

/// A known plaintext sealed at creation, to tell a wrong key from a tampered row.
const KEY_CHECK: KeyCheck = KeyCheck(b"confide sqlite key check v1");

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
}

impl Db {
    fn conn(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.conn.lock().map_err(|_| StoreError::Poisoned {
            what: "sqlite connection",
        })
    }

    /// Opens the file, migrates it, bumps its open counter and checks (or, in a new
    /// file, writes) the key check.
    pub(super) fn open(
        path: &Path,
        key: &StoreKey,
        options: SqliteOptions,
        salt: [u8; 16],
    ) -> Result<(Self, Rows), OpenError> {
        let db = |e: rusqlite::Error| OpenError::backend(e);
        let mut conn = Connection::open(path).map_err(db)?;
        conn.busy_timeout(options.busy_timeout).map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        let sync = match options.synchronous {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", sync).map_err(db)?;
        migrate(&mut conn)?;

        let sealer = Sealer::new(key, salt).ok_or(OpenError::KeyDerivation)?;
        // SQLite row keys have no owner prefix: the file holds one device.
        let rows = Rows::new(sealer, Vec::new());
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let meta = |k: &str| -> Result<Option<Vec<u8>>, OpenError> {
            tx.query_row("SELECT v FROM meta WHERE k = ?1", [k], |r| r.get(0))
                .optional()
                .map_err(db)
        };
        let generation = match meta("generation")? {
            None => 1,
            Some(v) => {
                let bytes: [u8; 8] = v
                    .as_slice()
                    .try_into()
                    .map_err(|_| OpenError::Corrupt { table: "meta" })?;
                u64::from_be_bytes(bytes).saturating_add(1)
            }
        };
        let check = meta("key_check")?;
        tx.execute(
            "INSERT OR REPLACE INTO meta (k, v) VALUES ('generation', ?1)",
            [generation.to_be_bytes().to_vec()],
        )
        .map_err(db)?;
        rows.set_generation(generation);
        match check {
            Some(sealed) => KEY_CHECK.matches(&rows, &sealed)?,
            None => {
                let count: i64 = tx
                    .query_row(
                        "SELECT (SELECT count(*) FROM meta) + (SELECT count(*) FROM session)",
                        [],
                        |r| r.get(0),
                    )
                    .map_err(db)?;
                if count > 1 {
                    return Err(OpenError::Corrupt { table: "meta" });
                }
                tx.execute(
                    "INSERT INTO meta (k, v) VALUES ('key_check', ?1)",
                    [KEY_CHECK.seal(&rows)],
                )
                .map_err(db)?;
            }
        }
        tx.commit().map_err(db)?;
        let conn = Mutex::new(conn);
        Ok((Self { conn }, rows))
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

    fn execute(&self, sql: &str, params: &[Val<'_>]) -> Result<u64, StoreError> {
        let conn = self.conn()?;
        let n = conn
            .prepare_cached(sql)
            .and_then(|mut s| s.execute(params_from_iter(params)))
            .map_err(backend)?;
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
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
