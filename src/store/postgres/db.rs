//! The PostgreSQL backend of [`super::PostgresStore`]: pooled connections, the owner
//! (device) parameter before every statement's own, conflicts told from failures, and
//! the schema migrations.

use ::postgres::error::SqlState;
use ::postgres::types::ToSql;

use super::SCHEMA_VERSION;
use super::pool::{Conn, PoolError, PostgresPool};
use crate::error::StoreError;
use crate::store::durable::{Abort, Backend, Cell, KeyCheck, Query, Tx, Val, check_schema};
use crate::store::schema::{Dialect, Ty};
use crate::store::{CommitOutcome, OpenError};

/// The advisory lock that orders migrations between hosts ("confide" in ASCII).
const MIGRATION_LOCK: i64 = 0x0063_6f6e_6669_6465;

/// A known plaintext sealed per device at its first open, to tell a wrong key from a
/// tampered row.
pub(super) const KEY_CHECK: KeyCheck = KeyCheck(b"confide postgres key check v1");

/// One device's view of the pool.
pub(super) struct Db {
    pool: PostgresPool,
    device: String,
}

/// A failure the caller may retry by redoing the operation: the transaction was
/// rolled back and nothing was written.
fn is_conflict(e: &::postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::T_R_DEADLOCK_DETECTED
            || *c == SqlState::UNIQUE_VIOLATION
    )
}

/// A pool failure as a store error (a poisoned pool lock is [`StoreError::Poisoned`]).
fn pool_failed(e: PoolError) -> StoreError {
    match e {
        PoolError::Poisoned => StoreError::Poisoned {
            what: "postgres connection pool",
        },
        e => StoreError::backend(e),
    }
}

fn abort(e: ::postgres::Error) -> Abort {
    if is_conflict(&e) {
        Abort::Conflict
    } else {
        Abort::Failed(StoreError::backend(e))
    }
}

impl Val<'_> {
    fn as_pg(&self) -> &(dyn ToSql + Sync) {
        match self {
            Val::Text(s) => s,
            Val::Int(i) => i,
            Val::Bytes(b) => b,
            Val::OptInt(i) => i,
            Val::OptBytes(b) => b,
        }
    }
}

/// The owner, then `params`.
fn owned<'a>(owner: &'a String, params: &'a [Val<'_>]) -> Vec<&'a (dyn ToSql + Sync)> {
    let mut all: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(params.len() + 1);
    all.push(owner);
    all.extend(params.iter().map(Val::as_pg));
    all
}

/// The columns of `row`, typed as `types` say.
fn cells(row: &::postgres::Row, types: &[Ty]) -> Result<Vec<Cell>, ::postgres::Error> {
    let mut out = Vec::with_capacity(types.len());
    for (i, ty) in types.iter().enumerate() {
        let cell = match ty {
            Ty::Text => row.try_get::<_, Option<String>>(i)?.map(Cell::Text),
            Ty::Int => row.try_get::<_, Option<i64>>(i)?.map(Cell::Int),
            Ty::Blob => row.try_get::<_, Option<Vec<u8>>>(i)?.map(Cell::Bytes),
        };
        out.push(cell.unwrap_or(Cell::Null));
    }
    Ok(out)
}

/// A transaction on a pooled connection.
struct PgTx<'c, 't> {
    tx: ::postgres::Transaction<'t>,
    stmts: &'c mut super::pool::Stmts,
    owner: &'c String,
}

impl Tx for PgTx<'_, '_> {
    fn execute(&mut self, sql: &str, params: &[Val<'_>]) -> Result<u64, Abort> {
        let st = self.stmts.get(&mut self.tx, sql).map_err(abort)?;
        self.tx
            .execute(&st, &owned(self.owner, params))
            .map_err(abort)
    }

    fn query(
        &mut self,
        sql: &str,
        params: &[Val<'_>],
        types: &[Ty],
    ) -> Result<Vec<Vec<Cell>>, Abort> {
        let st = self.stmts.get(&mut self.tx, sql).map_err(abort)?;
        let found = self
            .tx
            .query(&st, &owned(self.owner, params))
            .map_err(abort)?;
        found
            .iter()
            .map(|r| cells(r, types).map_err(abort))
            .collect()
    }
}

impl Db {
    /// Migrates the database (the device itself is opened by
    /// [`crate::store::durable::open_device`]).
    pub(super) fn open(pool: &PostgresPool, device: &str) -> Result<Self, OpenError> {
        let mut lease = pool.get().map_err(OpenError::backend)?;
        let conn = lease
            .conn()
            .ok_or_else(|| OpenError::backend(PoolError::Poisoned))?;
        migrate(&mut conn.client)?;
        Ok(Self {
            pool: pool.clone(),
            device: device.to_owned(),
        })
    }

    /// Runs `f` on a pooled connection.
    fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<T, ::postgres::Error>,
    ) -> Result<T, StoreError> {
        let mut lease = self.pool.get().map_err(pool_failed)?;
        let conn = lease
            .conn()
            .ok_or_else(|| pool_failed(PoolError::Poisoned))?;
        f(conn).map_err(StoreError::backend)
    }
}

/// Brings the schema to [`SCHEMA_VERSION`], all in one transaction under an advisory
/// lock.
fn migrate(client: &mut ::postgres::Client) -> Result<(), OpenError> {
    let db = |e: ::postgres::Error| OpenError::backend(e);
    let mut tx = client.transaction().map_err(db)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(db)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS confide_schema_version (
             one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
             version INTEGER NOT NULL)",
    )
    .map_err(db)?;
    let found: i32 = match tx
        .query_opt("SELECT version FROM confide_schema_version", &[])
        .map_err(db)?
    {
        Some(r) => r.try_get(0).map_err(db)?,
        None => 0,
    };
    let found = u32::try_from(found).map_err(|_| OpenError::Corrupt {
        table: "schema_version",
    })?;
    check_schema(found, SCHEMA_VERSION)?;
    if found == SCHEMA_VERSION {
        // Nothing to do: end the transaction without writing.
        tx.rollback().map_err(db)?;
        return Ok(());
    }
    for version in found + 1..=SCHEMA_VERSION {
        tx.batch_execute(&Dialect::Postgres.migration(version))
            .map_err(db)?;
        let v = i32::try_from(version).unwrap_or(i32::MAX);
        tx.execute(
            "INSERT INTO confide_schema_version (one, version) VALUES (TRUE, $1)
             ON CONFLICT (one) DO UPDATE SET version = EXCLUDED.version",
            &[&v],
        )
        .map_err(db)?;
    }
    tx.commit().map_err(db)
}

impl Backend for Db {
    const DIALECT: Dialect = Dialect::Postgres;

    fn query_row(&self, q: &Query<'_>) -> Result<Option<Vec<Cell>>, StoreError> {
        self.with_conn(|c| {
            let st = c.stmts.get(&mut c.client, q.sql)?;
            c.client
                .query_opt(&st, &owned(&self.device, q.params))?
                .map(|r| cells(&r, q.types))
                .transpose()
        })
    }

    /// A serialization failure, a deadlock or a unique violation means the server
    /// rolled the transaction back and nothing was written: reported as
    /// [`CommitOutcome::Conflict`], so the caller redoes the operation.
    fn transaction(
        &self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<(), Abort>,
    ) -> Result<CommitOutcome, StoreError> {
        let mut lease = self.pool.get().map_err(pool_failed)?;
        let conn = lease
            .conn()
            .ok_or_else(|| pool_failed(PoolError::Poisoned))?;
        let tx = match conn.client.transaction() {
            Ok(tx) => tx,
            Err(e) => return Err(StoreError::backend(e)),
        };
        let mut tx = PgTx {
            tx,
            stmts: &mut conn.stmts,
            owner: &self.device,
        };
        let done = match f(&mut tx) {
            // Dropping the transaction without a commit rolls it back.
            Ok(()) => tx.tx.commit().map_err(abort),
            Err(e) => Err(e),
        };
        match done {
            Ok(()) => Ok(CommitOutcome::Committed),
            Err(Abort::Conflict) => Ok(CommitOutcome::Conflict),
            Err(Abort::Failed(e)) => Err(e),
        }
    }

    /// Every table in one read-only snapshot.
    fn scan(&self, queries: &[(&str, Vec<Ty>)]) -> Result<Vec<Vec<Vec<Cell>>>, StoreError> {
        self.with_conn(|c| {
            let mut tx = c
                .client
                .build_transaction()
                .isolation_level(::postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()?;
            let mut all = Vec::with_capacity(queries.len());
            for (sql, types) in queries {
                let rows = tx.query(*sql, &[&self.device])?;
                all.push(
                    rows.iter()
                        .map(|r| cells(r, types))
                        .collect::<Result<Vec<_>, _>>()?,
                );
            }
            tx.commit()?;
            Ok(all)
        })
    }
}
