//! Vault records in SQLite: one `BEGIN IMMEDIATE` transaction per counted attempt, so
//! processes sharing the file cannot both count the same attempt slot.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::SEALED_STAMP_LEN;
use super::server::{Attempt, StorageError, VaultRecord, VaultRecords};

fn storage(e: rusqlite::Error) -> StorageError {
    StorageError(e.to_string())
}

/// Vault records in a SQLite file.
#[derive(Debug)]
pub struct SqliteRecords {
    conn: Mutex<Connection>,
}

impl SqliteRecords {
    /// Opens (creating if needed) the records file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StorageError> {
        Self::setup(Connection::open(path).map_err(storage)?)
    }

    /// A private in-memory database (tests).
    pub fn open_in_memory() -> Result<Self, StorageError> {
        Self::setup(Connection::open_in_memory().map_err(storage)?)
    }

    fn setup(conn: Connection) -> Result<Self, StorageError> {
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(storage)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS vault_records (
                user BLOB PRIMARY KEY,
                record BLOB NOT NULL,
                attempts INTEGER NOT NULL
            );",
        )
        .map_err(storage)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl VaultRecords for SqliteRecords {
    fn put(&self, user: &[u8], record: &VaultRecord) -> Result<(), StorageError> {
        self.conn()
            .execute(
                "INSERT INTO vault_records (user, record, attempts) VALUES (?1, ?2, 0)
                 ON CONFLICT(user) DO UPDATE SET record = excluded.record, attempts = 0",
                params![user, record.to_bytes()],
            )
            .map_err(storage)?;
        Ok(())
    }

    fn begin_attempt(&self, user: &[u8], limit: u32) -> Result<Attempt, StorageError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(storage)?;
        let row: Option<(Vec<u8>, i64)> = tx
            .query_row(
                "SELECT record, attempts FROM vault_records WHERE user = ?1",
                params![user],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(storage)?;
        let Some((bytes, attempts)) = row else {
            return Ok(Attempt::NoRecord);
        };
        if attempts >= i64::from(limit) || attempts < 0 {
            tx.execute("DELETE FROM vault_records WHERE user = ?1", params![user])
                .map_err(storage)?;
            tx.commit().map_err(storage)?;
            return Ok(Attempt::LockedOut);
        }
        let record = VaultRecord::from_bytes(&bytes).map_err(|e| StorageError(e.to_string()))?;
        tx.execute(
            "UPDATE vault_records SET attempts = attempts + 1 WHERE user = ?1",
            params![user],
        )
        .map_err(storage)?;
        tx.commit().map_err(storage)?;
        Ok(Attempt::Counted(Box::new(record)))
    }

    fn reset_attempts(&self, user: &[u8]) -> Result<(), StorageError> {
        self.conn()
            .execute(
                "UPDATE vault_records SET attempts = 0 WHERE user = ?1",
                params![user],
            )
            .map_err(storage)?;
        Ok(())
    }

    fn put_stamp(
        &self,
        user: &[u8],
        generation: u64,
        sealed: &[u8; SEALED_STAMP_LEN],
    ) -> Result<bool, StorageError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(storage)?;
        let row: Option<Vec<u8>> = tx
            .query_row(
                "SELECT record FROM vault_records WHERE user = ?1",
                params![user],
                |r| r.get(0),
            )
            .optional()
            .map_err(storage)?;
        let Some(bytes) = row else {
            return Ok(false);
        };
        let mut record =
            VaultRecord::from_bytes(&bytes).map_err(|e| StorageError(e.to_string()))?;
        if !record.set_stamp(generation, sealed) {
            return Ok(false);
        }
        tx.execute(
            "UPDATE vault_records SET record = ?2 WHERE user = ?1",
            params![user, record.to_bytes()],
        )
        .map_err(storage)?;
        tx.commit().map_err(storage)?;
        Ok(true)
    }

    fn contains(&self, user: &[u8]) -> Result<bool, StorageError> {
        self.conn()
            .query_row(
                "SELECT 1 FROM vault_records WHERE user = ?1",
                params![user],
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
            .map_err(storage)
    }
}
