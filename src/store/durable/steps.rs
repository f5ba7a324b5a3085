//! The statements a transaction runs, and the integrity head's update at its end.

use std::collections::BTreeMap;

use super::{Abort, Cell, Sql, Tx, Val, address, with};
use crate::Address;
use crate::store::integrity::{self, Bucket, Change, Head, Watch};
use crate::store::rows::{self, Rows, SealedMessage};
use crate::store::schema::{T, Ty};
use crate::store::seal::nonce_of;

/// The statements a transaction runs, each a step that may conflict, and the tracked
/// rows they change.
pub(crate) struct Steps<'s, 't> {
    sql: &'s Sql,
    rows: &'s Rows,
    tx: &'t mut dyn Tx,
    changes: Vec<Change>,
}

impl<'s, 't> Steps<'s, 't> {
    pub(crate) fn new(sql: &'s Sql, rows: &'s Rows, tx: &'t mut dyn Tx) -> Self {
        Self {
            sql,
            rows,
            tx,
            changes: Vec::new(),
        }
    }

    /// Notes that the row of `t` with `key` is now at `new` (`None`: deleted), and for a
    /// compare-and-swap the version it was at.
    fn note(
        &mut self,
        t: T,
        key: &[Val<'_>],
        new: Option<&[u8]>,
        was: Option<Option<integrity::Version>>,
    ) -> Result<(), Abort> {
        if !t.tracked() {
            return Ok(());
        }
        let row = rows::row_key(t, key)?;
        let new = new
            .map(|v| nonce_of(v).ok_or_else(|| rows::tampered(t.table().name)))
            .transpose()?;
        self.changes.push(Change {
            t,
            entry: self.rows.entry(t, &row),
            new,
            was,
        });
        Ok(())
    }

    /// Replaces the row.
    pub(crate) fn put(&mut self, t: T, key: &[Val<'_>], sealed: &[u8]) -> Result<(), Abort> {
        self.tx.execute(
            &self.sql.upsert[t as usize],
            &with(key, &[Val::Bytes(sealed)]),
        )?;
        self.note(t, key, Some(sealed), None)
    }

    /// Deletes the row.
    pub(crate) fn delete(&mut self, t: T, key: &[Val<'_>]) -> Result<(), Abort> {
        self.tx.execute(&self.sql.delete[t as usize], key)?;
        self.note(t, key, None, None)
    }

    /// Writes the row only if it is still at `expected` (the nonce of its sealed value,
    /// or no row): a compare-and-swap. Conflicts otherwise.
    pub(crate) fn swap(
        &mut self,
        t: T,
        key: &[Val<'_>],
        expected: crate::store::RowVersion,
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
        self.note(t, key, Some(sealed), Some(expected.token().copied()))
    }

    /// Runs a statement on untracked rows.
    pub(crate) fn execute(&mut self, sql: &str, params: &[Val<'_>]) -> Result<u64, Abort> {
        self.tx.execute(sql, params)
    }

    /// Inserts a decrypted message; conflicts if its id is already stored.
    pub(crate) fn new_message(&mut self, sender: &Address, m: &SealedMessage) -> Result<(), Abort> {
        let [name, device] = address(sender);
        let params = [
            name,
            device,
            Val::Bytes(&m.idx),
            Val::Int(m.received_at),
            Val::Bytes(&m.sealed),
            Val::Bytes(&m.meta),
        ];
        if self.tx.execute(&self.sql.new_message, &params)? == 0 {
            return Err(Abort::Conflict);
        }
        Ok(())
    }

    /// One integrity row, in this transaction.
    fn integrity_row(&mut self, sql: &str, id: i64) -> Result<Option<Vec<u8>>, Abort> {
        let found = self.tx.query(sql, &[Val::Int(id)], &[Ty::Blob])?;
        match <[Vec<Cell>; 1]>::try_from(found) {
            Err(v) if v.is_empty() => Ok(None),
            Ok([cells]) => match <[Cell; 1]>::try_from(cells) {
                Ok([Cell::Bytes(v)]) => Ok(Some(v)),
                _ => Err(integrity::tampered().into()),
            },
            Err(_) => Err(integrity::tampered().into()),
        }
    }

    /// Records the changed rows' versions in their buckets and the buckets' in the
    /// head, and writes them: the head is read (in PostgreSQL, locked) after the rows
    /// were written, so two writers of one device take turns on it. A compare-and-swap
    /// whose row was at the version it expected but whose bucket records another finds
    /// a row rolled back behind the store's back: [`StoreError::Tampered`]. Returns the
    /// head's new sequence number, or `None` if no tracked row changed.
    pub(crate) fn finish(&mut self, watch: &Watch) -> Result<Option<u64>, Abort> {
        if self.changes.is_empty() {
            return Ok(None);
        }
        let (sql, rows) = (self.sql, self.rows);
        let floor = watch.floor();
        let sealed = self.integrity_row(&sql.integrity_lock, integrity::HEAD_ID)?;
        let mut head = super::open_head(rows, sealed.as_deref())?;
        watch.observe(floor, head.seq)?;
        let mut buckets: BTreeMap<usize, Bucket> = BTreeMap::new();
        let changes = std::mem::take(&mut self.changes);
        for c in &changes {
            let b = integrity::bucket_of(&c.entry);
            if !buckets.contains_key(&b) {
                let sealed = self.integrity_row(&sql.integrity, integrity::bucket_id(b))?;
                let bucket = super::open_bucket(rows, &head, b, sealed.as_deref())?;
                buckets.insert(b, bucket);
            }
            let Some(bucket) = buckets.get_mut(&b) else {
                return Err(integrity::tampered().into());
            };
            if let Some(was) = c.was {
                let recorded = bucket.get(&c.entry).filter(|e| e.0 == c.t).map(|e| e.1);
                if recorded != was {
                    return Err(rows::tampered(c.t.table().name).into());
                }
            }
            bucket.set(c.entry, c.t, c.new);
        }
        for (b, bucket) in &buckets {
            self.write_bucket(&mut head, *b, bucket)?;
        }
        head.seq = head.seq.saturating_add(1);
        write_head(self.tx, sql, rows, &head)?;
        Ok(Some(head.seq))
    }

    fn write_bucket(&mut self, head: &mut Head, b: usize, bucket: &Bucket) -> Result<(), Abort> {
        let id = integrity::bucket_id(b);
        let t = T::Integrity as usize;
        let slot = head
            .buckets
            .get_mut(b)
            .ok_or_else(|| Abort::from(integrity::tampered()))?;
        if bucket.is_empty() {
            self.tx.execute(&self.sql.delete[t], &[Val::Int(id)])?;
            *slot = None;
            return Ok(());
        }
        let sealed = self
            .rows
            .seal("integrity", &id.to_be_bytes(), &bucket.encode())?;
        *slot = nonce_of(&sealed);
        self.tx
            .execute(&self.sql.upsert[t], &[Val::Int(id), Val::Bytes(&sealed)])?;
        Ok(())
    }
}

/// Seals and writes the head.
pub(crate) fn write_head(
    tx: &mut dyn Tx,
    sql: &Sql,
    rows: &Rows,
    head: &Head,
) -> Result<(), Abort> {
    let id = integrity::HEAD_ID;
    let sealed = rows.seal("integrity", &id.to_be_bytes(), &head.encode())?;
    tx.execute(
        &sql.upsert[T::Integrity as usize],
        &[Val::Int(id), Val::Bytes(&sealed)],
    )?;
    Ok(())
}
