//! The statements a transaction runs, and the integrity head's update at its end.

use std::collections::BTreeMap;

use super::{Abort, Cell, Sql, Tx, Val, address, with};
use crate::Address;
use crate::store::integrity::{self, Bucket, Change, Dir, Head, Pending, Watch};
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

    /// Deletes the row only while it is still at `version`: a compare-and-swap.
    /// Conflicts otherwise.
    pub(crate) fn delete_at(
        &mut self,
        t: T,
        key: &[Val<'_>],
        version: integrity::Version,
    ) -> Result<(), Abort> {
        let n = self.tx.execute(
            &self.sql.delete_at[t as usize],
            &with(key, &[Val::Bytes(&version)]),
        )?;
        if n == 0 {
            return Err(Abort::Conflict);
        }
        self.note(t, key, None, Some(Some(version)))
    }

    /// Deletes every use recorded for the Kyber prekey `id` (each checked against the
    /// integrity tree as it goes), as saving a new record under the id does.
    pub(crate) fn forget_kyber_uses(&mut self, id: i64) -> Result<(), Abort> {
        let types = [Ty::Blob, Ty::Blob];
        let found = self
            .tx
            .query(&self.sql.kyber_uses, &[Val::Int(id)], &types)?;
        let bad = || Abort::from(rows::tampered("kyber_pre_key_use"));
        for cells in found {
            let Ok([Cell::Bytes(idx), Cell::Bytes(v)]) = <[Cell; 2]>::try_from(cells) else {
                return Err(bad());
            };
            let version = nonce_of(&v).ok_or_else(bad)?;
            self.delete_at(
                T::KyberPreKeyUse,
                &[Val::Int(id), Val::Bytes(&idx)],
                version,
            )?;
        }
        Ok(())
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

    /// Reseals a message row (a migration): `params` are its key, `v` and `m`.
    pub(crate) fn reseal_message(&mut self, params: &[Val<'_>], m: &[u8]) -> Result<(), Abort> {
        self.tx.execute(&self.sql.reseal_message, params)?;
        self.note(T::Message, &params[..params.len() - 2], Some(m), None)
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
        self.note(T::Message, &params[..3], Some(&m.meta), Some(None))
    }

    /// Replaces a message's metadata `m` (and a column with it) while it is still
    /// `old`; conflicts otherwise. `params` are the key, the column's value, the new
    /// and the old `m`.
    pub(crate) fn update_message(
        &mut self,
        sql: &str,
        params: &[Val<'_>],
        new: &[u8],
        old: &[u8],
    ) -> Result<(), Abort> {
        if self.tx.execute(sql, params)? == 0 {
            return Err(Abort::Conflict);
        }
        let was = nonce_of(old).ok_or_else(|| rows::tampered("message"))?;
        self.note(
            T::Message,
            &params[..params.len() - 3],
            Some(new),
            Some(Some(was)),
        )
    }

    /// Deletes the expired and the forgotten messages; how many went. A candidate
    /// whose plain columns disagree with its sealed metadata (an expiry moved earlier
    /// to make a message disappear) is [`StoreError::Tampered`](crate::StoreError) and
    /// nothing is deleted.
    pub(crate) fn purge(&mut self, params: &[Val<'_>]) -> Result<u64, Abort> {
        let types = [
            Ty::Text,
            Ty::Int,
            Ty::Blob,
            Ty::Int,
            Ty::Int,
            Ty::Blob,
            Ty::Blob,
        ];
        let found = self.tx.query(&self.sql.purge, params, &types)?;
        let bad = || Abort::from(rows::tampered("message"));
        for cells in &found {
            let (key, rest) = cells.split_at(3.min(cells.len()));
            let key: Option<Vec<Val<'_>>> = key.iter().map(super::verify::param).collect();
            let key = key.ok_or_else(bad)?;
            let row = rows::row_key(T::Message, &key)?;
            let rest = <[Cell; 4]>::try_from(rest.to_vec()).map_err(|_| bad())?;
            let m = super::checked_message(self.rows, row, rest)?;
            self.tx
                .execute(&self.sql.delete[T::Message as usize], &key)?;
            let was = nonce_of(&m.sealed_meta).ok_or_else(bad)?;
            self.note(T::Message, &key, None, Some(Some(was)))?;
        }
        Ok(u64::try_from(found.len()).unwrap_or(u64::MAX))
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

    /// Records the changed rows' versions in their leaves, the leaves' in their
    /// directories and the directories' in the head, and writes them: the head is read
    /// (in PostgreSQL, locked) after the rows were written, so two writers of one device
    /// take turns on it. A compare-and-swap whose row was at the version it expected
    /// but whose leaf records another finds a row rolled back behind the store's back:
    /// [`StoreError::Tampered`](crate::StoreError). Returns the head's new sequence
    /// number, or `None` if no row changed.
    pub(crate) fn finish(&mut self, watch: &Watch) -> Result<Option<u64>, Abort> {
        if self.changes.is_empty() {
            return Ok(None);
        }
        let (sql, rows) = (self.sql, self.rows);
        let floor = watch.floor();
        let sealed = self.integrity_row(&sql.integrity_lock, integrity::HEAD_ID)?;
        let mut head = super::open_head(rows, sealed.as_deref())?;
        watch.observe(floor, head.seq)?;
        let changes = std::mem::take(&mut self.changes);
        for c in &changes {
            let pending = head.pending(&c.entry).copied();
            if let Some(was) = c.was {
                let recorded = match (pending, c.t, was) {
                    (Some(_), _, _) => {
                        integrity::recorded(c.t, &c.entry, &head, &Bucket::default())?
                    }
                    // A message's leaf follows from its version; a new message's
                    // absence is not recorded anywhere to check.
                    (None, T::Message, None) => None,
                    (None, t, _) => {
                        let l = match was {
                            Some(v) => integrity::placement(t, &c.entry, &v),
                            None => integrity::leaf_of(&c.entry),
                        };
                        let leaf = self.read_leaf(&head, l)?;
                        integrity::recorded(t, &c.entry, &head, &leaf)?
                    }
                };
                if recorded != was {
                    return Err(rows::tampered(c.t.table().name).into());
                }
            }
            // What the leaves hold of a message stays noted, to be removed from its
            // leaf when the change moves down.
            let below = match (pending, c.t) {
                (Some(p), _) => p.below,
                (None, T::Message) => c.was.flatten(),
                (None, _) => None,
            };
            let change = Pending {
                t: c.t,
                new: c.new,
                below,
            };
            head.pending.insert(c.entry, change);
        }
        if head.pending.len() > integrity::MAX_PENDING {
            self.move_down(&mut head)?;
        }
        head.seq = head.seq.saturating_add(1);
        write_head(self.tx, sql, rows, &head)?;
        Ok(Some(head.seq))
    }

    /// Leaf `l` as the tree under `head` has it, read in this transaction.
    fn read_leaf(&mut self, head: &Head, l: usize) -> Result<Bucket, Abort> {
        let (d, _) = integrity::dir_of(l);
        let sql = self.sql;
        let dir = self.integrity_row(&sql.integrity, integrity::dir_id(d))?;
        let dir = super::open_dir(self.rows, head, d, dir.as_deref())?;
        let leaf = self.integrity_row(&sql.integrity, integrity::leaf_id(l))?;
        Ok(super::open_leaf(self.rows, &dir, l, leaf.as_deref())?)
    }

    /// Moves the head's pending changes into their leaves, the leaves' new versions
    /// into their directories and theirs into the head.
    fn move_down(&mut self, head: &mut Head) -> Result<(), Abort> {
        let (sql, rows) = (self.sql, self.rows);
        let mut dirs: BTreeMap<usize, Dir> = BTreeMap::new();
        let mut leaves: BTreeMap<usize, Bucket> = BTreeMap::new();
        let pending = std::mem::take(&mut head.pending);
        // Removals first, so a message that moved leaves is never removed from its new
        // one.
        let mut moves = Vec::new();
        for (entry, p) in &pending {
            if let (T::Message, Some(below)) = (p.t, p.below) {
                moves.push((*entry, p.t, integrity::message_leaf(&below), None));
            }
        }
        for (entry, p) in &pending {
            let l = match p.new {
                Some(v) => integrity::placement(p.t, entry, &v),
                None if p.t == T::Message => continue,
                None => integrity::leaf_of(entry),
            };
            moves.push((*entry, p.t, l, p.new));
        }
        for (entry, t, l, version) in moves {
            let (d, _) = integrity::dir_of(l);
            let dir = match dirs.entry(d) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => {
                    let sealed = self.integrity_row(&sql.integrity, integrity::dir_id(d))?;
                    v.insert(super::open_dir(rows, head, d, sealed.as_deref())?)
                }
            };
            let leaf = match leaves.entry(l) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => {
                    let sealed = self.integrity_row(&sql.integrity, integrity::leaf_id(l))?;
                    v.insert(super::open_leaf(rows, dir, l, sealed.as_deref())?)
                }
            };
            leaf.set(entry, t, version);
        }
        for (l, leaf) in &leaves {
            let (d, slot) = integrity::dir_of(*l);
            let version =
                self.write_node(integrity::leaf_id(*l), leaf.is_empty(), || leaf.encode())?;
            if let Some(dir) = dirs.get_mut(&d) {
                dir.0[slot] = version;
            }
        }
        for (d, dir) in &dirs {
            let version =
                self.write_node(integrity::dir_id(*d), dir.is_empty(), || dir.encode())?;
            head.dirs[*d] = version;
        }
        Ok(())
    }

    /// Writes (or, when `empty`, deletes) the integrity row `id`; its new version.
    fn write_node(
        &mut self,
        id: i64,
        empty: bool,
        encode: impl FnOnce() -> Vec<u8>,
    ) -> Result<Option<integrity::Version>, Abort> {
        let t = T::Integrity as usize;
        if empty {
            self.tx.execute(&self.sql.delete[t], &[Val::Int(id)])?;
            return Ok(None);
        }
        let sealed = self.rows.seal("integrity", &id.to_be_bytes(), &encode())?;
        self.tx
            .execute(&self.sql.upsert[t], &[Val::Int(id), Val::Bytes(&sealed)])?;
        Ok(nonce_of(&sealed))
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
