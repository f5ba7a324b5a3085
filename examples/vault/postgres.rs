//! Vault records in PostgreSQL (`--features postgres`, `--postgres URL`): each counted
//! attempt is one `UPDATE ... SET attempts = attempts + 1 ... RETURNING`, which the
//! server applies atomically per row, so vault processes sharing one database cannot
//! hand out the same attempt twice.

use std::sync::Mutex;

use confide::backup::vault::{Attempt, SEALED_STAMP_LEN, StorageError, VaultRecord, VaultRecords};
use postgres::{Client, NoTls};

fn storage(e: postgres::Error) -> StorageError {
    StorageError(e.to_string())
}

fn limit_param(limit: u32) -> i64 {
    i64::from(limit)
}

/// Vault records in one PostgreSQL table.
pub(crate) struct PostgresRecords {
    client: Mutex<Client>,
}

impl PostgresRecords {
    pub(crate) fn connect(url: &str) -> Result<Self, StorageError> {
        let mut client = Client::connect(url, NoTls).map_err(storage)?;
        client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS vault_records (
                    user_id BYTEA PRIMARY KEY,
                    record BYTEA NOT NULL,
                    attempts BIGINT NOT NULL
                )",
            )
            .map_err(storage)?;
        Ok(Self {
            client: Mutex::new(client),
        })
    }

    fn client(&self) -> std::sync::MutexGuard<'_, Client> {
        self.client.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl VaultRecords for PostgresRecords {
    fn put(&self, user: &[u8], record: &VaultRecord) -> Result<(), StorageError> {
        self.client()
            .execute(
                "INSERT INTO vault_records (user_id, record, attempts) VALUES ($1, $2, 0)
                 ON CONFLICT (user_id) DO UPDATE SET record = excluded.record, attempts = 0",
                &[&user, &record.to_bytes()],
            )
            .map_err(storage)?;
        Ok(())
    }

    fn begin_attempt(&self, user: &[u8], limit: u32) -> Result<Attempt, StorageError> {
        let mut client = self.client();
        // One atomic statement counts the attempt (the row lock orders concurrent ones).
        let row = client
            .query_opt(
                "UPDATE vault_records SET attempts = attempts + 1
                 WHERE user_id = $1 AND attempts < $2 RETURNING record",
                &[&user, &limit_param(limit)],
            )
            .map_err(storage)?;
        if let Some(row) = row {
            let bytes: Vec<u8> = row.try_get(0).map_err(storage)?;
            let record =
                VaultRecord::from_bytes(&bytes).map_err(|e| StorageError(e.to_string()))?;
            return Ok(Attempt::Counted(Box::new(record)));
        }
        // No slot left (or no record): delete it only if the limit is still used up.
        let deleted = client
            .query_opt(
                "DELETE FROM vault_records WHERE user_id = $1 AND attempts >= $2
                 RETURNING 1",
                &[&user, &limit_param(limit)],
            )
            .map_err(storage)?;
        Ok(if deleted.is_some() {
            Attempt::LockedOut
        } else {
            Attempt::NoRecord
        })
    }

    fn reset_attempts(&self, user: &[u8]) -> Result<(), StorageError> {
        self.client()
            .execute(
                "UPDATE vault_records SET attempts = 0 WHERE user_id = $1",
                &[&user],
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
        let mut client = self.client();
        let mut tx = client.transaction().map_err(storage)?;
        let Some(row) = tx
            .query_opt(
                "SELECT record FROM vault_records WHERE user_id = $1 FOR UPDATE",
                &[&user],
            )
            .map_err(storage)?
        else {
            return Ok(false);
        };
        let bytes: Vec<u8> = row.try_get(0).map_err(storage)?;
        let mut record =
            VaultRecord::from_bytes(&bytes).map_err(|e| StorageError(e.to_string()))?;
        if !record.set_stamp(generation, sealed) {
            return Ok(false);
        }
        tx.execute(
            "UPDATE vault_records SET record = $2 WHERE user_id = $1",
            &[&user, &record.to_bytes()],
        )
        .map_err(storage)?;
        tx.commit().map_err(storage)?;
        Ok(true)
    }

    fn contains(&self, user: &[u8]) -> Result<bool, StorageError> {
        Ok(self
            .client()
            .query_opt("SELECT 1 FROM vault_records WHERE user_id = $1", &[&user])
            .map_err(storage)?
            .is_some())
    }
}
