//! The stored messages: a message row read with its sealed metadata checked against
//! its plain columns and its version against the integrity tree, and its metadata
//! changed by compare-and-swap.

use super::{Backend, Cell, Core, Query, Val, path_params, with};
use crate::Address;
use crate::error::StoreError;
use crate::store::integrity;
use crate::store::rows::{MessageMeta, Rows};
use crate::store::schema::{T, Ty};
use crate::store::{DeliveredMessage, MessageId};

impl<B: Backend> Core<B> {
    fn message_key<'a>(&self, address: &'a Address, idx: &'a [u8; 32]) -> [Val<'a>; 3] {
        let [name, device] = super::address(address);
        [name, device, Val::Bytes(idx)]
    }

    /// The message row for (`address`, `id`), 1:1 or group alike.
    pub(crate) fn stored_message(
        &self,
        address: &Address,
        id: &MessageId,
    ) -> Result<Option<DeliveredMessage>, StoreError> {
        let idx = self.rows.message_index(address, id);
        let Some(found) = self.load_message(address, &idx)? else {
            return Ok(None);
        };
        self.rows
            .open_message(&found.row, found.sealed, found.meta.received_at)
            .map(Some)
    }

    /// A message row with its columns checked against its sealed metadata.
    fn load_message(
        &self,
        address: &Address,
        idx: &[u8; 32],
    ) -> Result<Option<StoredMessage>, StoreError> {
        let key = self.message_key(address, idx);
        let mut row = crate::store::rows::address_row(address);
        row.extend_from_slice(idx);
        let entry = self.rows.entry(T::Message, &row);
        // The row first: its version names its leaf. A commit between the two reads can
        // make the row newer than the tree read after it only if it changed the row
        // too, so one more try settles it.
        for attempt in 0..2 {
            let found = self.db.query_row(&Query {
                sql: &self.sql.message,
                params: &key,
                types: &[Ty::Int, Ty::Int, Ty::Blob, Ty::Blob],
            })?;
            let Some(cells) = found else {
                return Ok(None);
            };
            let cells = <[Cell; 4]>::try_from(cells)
                .map_err(|_| crate::store::rows::tampered("message"))?;
            let version = match &cells[3] {
                Cell::Bytes(m) => crate::store::seal::nonce_of(m),
                _ => None,
            };
            let version = version.ok_or_else(|| crate::store::rows::tampered("message"))?;
            let l = integrity::message_leaf(&version);
            let floor = self.watch.floor();
            let found = self.db.query_row(&Query {
                sql: &self.sql.path,
                params: &path_params(l),
                types: &[Ty::Blob; 3],
            })?;
            let Some(Ok(path)) = found.map(<[Cell; 3]>::try_from) else {
                return Err(integrity::tampered());
            };
            let (head, leaf) = self.open_path(floor, &entry, l, path)?;
            if integrity::recorded(T::Message, &entry, &head, &leaf)? != Some(version) {
                if attempt == 0 {
                    continue;
                }
                return Err(crate::store::rows::tampered("message"));
            }
            return checked_message(&self.rows, row, cells).map(Some);
        }
        Err(crate::store::rows::tampered("message"))
    }

    /// Changes a stored message's metadata (and with it `column`, to `value`): the
    /// row is rewritten only while its sealed metadata is still the one read, and read
    /// again if another writer got in between.
    pub(super) fn update_message(
        &self,
        sql: &str,
        address: &Address,
        id: &MessageId,
        value: Val<'_>,
        change: impl Fn(&mut MessageMeta),
    ) -> Result<bool, StoreError> {
        let idx = self.rows.message_index(address, id);
        for _ in 0..crate::delivery::MAX_COMMIT_ATTEMPTS {
            let Some(found) = self.load_message(address, &idx)? else {
                return Ok(false);
            };
            let mut meta = found.meta;
            change(&mut meta);
            let sealed = self.rows.seal_message_meta(&found.row, &meta)?;
            let params = with(
                &self.message_key(address, &idx),
                &[value, Val::Bytes(&sealed), Val::Bytes(&found.sealed_meta)],
            );
            let outcome =
                self.transact(|s| s.update_message(sql, &params, &sealed, &found.sealed_meta))?;
            if outcome == crate::store::CommitOutcome::Committed {
                return Ok(true);
            }
        }
        Err(StoreError::Contention {
            attempts: crate::delivery::MAX_COMMIT_ATTEMPTS,
        })
    }
}

/// A message row from its columns (`received_at`, `expires_at`, `v`, `m`), checked
/// against its sealed metadata; `row` is its row key without the owner prefix.
pub(super) fn checked_message(
    rows: &Rows,
    row: Vec<u8>,
    cells: [Cell; 4],
) -> Result<StoredMessage, StoreError> {
    let bad = || crate::store::rows::tampered("message");
    let [received_at, expires_at, v, m] = cells;
    let blob = |c: Cell| match c {
        Cell::Bytes(b) => Ok(Some(b)),
        Cell::Null => Ok(None),
        _ => Err(bad()),
    };
    let received_at = match received_at {
        Cell::Int(at) => at,
        _ => return Err(bad()),
    };
    let expires_at = match expires_at {
        Cell::Int(at) => Some(at),
        Cell::Null => None,
        _ => return Err(bad()),
    };
    let (sealed, sealed_meta) = (blob(v)?, blob(m)?.ok_or_else(bad)?);
    let meta = MessageMeta {
        received_at,
        expires_at,
        acknowledged: sealed.is_none(),
    };
    rows.check_message_meta(&row, Some(&sealed_meta), &meta)?;
    Ok(StoredMessage {
        row,
        sealed,
        meta,
        sealed_meta,
    })
}

/// A message row, its columns checked against its sealed metadata.
pub(super) struct StoredMessage {
    /// Its row key (without the owner prefix).
    pub(super) row: Vec<u8>,
    /// The sealed plaintext (`None` once acknowledged).
    pub(super) sealed: Option<Vec<u8>>,
    pub(super) meta: MessageMeta,
    /// The sealed metadata as read, for the compare-and-swap that replaces it.
    pub(super) sealed_meta: Vec<u8>,
}
