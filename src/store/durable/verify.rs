//! `verify`: every row of the device opened and checked against the integrity head.

use std::collections::BTreeMap;

use super::{Backend, Cell, Core, Val, checked_message, open_dir, open_leaf};
use crate::error::StoreError;
use crate::store::StoreSummary;
use crate::store::integrity::{self, FANOUT, Node};
use crate::store::rows::{self, tampered};
use crate::store::schema::{T, TABLES, Ty, scan_columns};
use crate::store::seal::nonce_of;

/// A key column as a statement parameter.
pub(super) fn param(c: &Cell) -> Option<Val<'_>> {
    match c {
        Cell::Text(s) => Some(Val::Text(s)),
        Cell::Int(i) => Some(Val::Int(*i)),
        Cell::Bytes(b) => Some(Val::Bytes(b)),
        Cell::Null => None,
    }
}

/// Opens every row, checks each tracked row's version against the head, each message's
/// columns against its sealed metadata, and that the head records no row that is gone.
pub(super) fn verify<B: Backend>(core: &Core<B>) -> Result<StoreSummary, StoreError> {
    let queries: Vec<(&str, Vec<Ty>)> = TABLES
        .iter()
        .zip(&core.sql.scan)
        .map(|(t, sql)| (sql.as_str(), scan_columns(t).iter().map(|c| c.1).collect()))
        .collect();
    let floor = core.watch.floor();
    let mut found = core.db.scan(&queries)?;

    // The tree first: what every other row is checked against.
    let mut head = None;
    let mut sealed_nodes: BTreeMap<i64, Vec<u8>> = BTreeMap::new();
    let integrity_rows = std::mem::take(&mut found[T::Integrity as usize]);
    for cells in integrity_rows {
        let Ok([Cell::Int(id), Cell::Bytes(v)]) = <[Cell; 2]>::try_from(cells) else {
            return Err(integrity::tampered());
        };
        match Node::of_id(id) {
            Some(Node::Head) => head = Some(v),
            Some(_) => {
                sealed_nodes.insert(id, v);
            }
            None => return Err(integrity::tampered()),
        }
    }
    let head = core.open_head(floor, head.as_deref())?;
    let mut recorded = BTreeMap::new();
    for d in 0..FANOUT {
        let sealed = sealed_nodes.remove(&integrity::dir_id(d));
        let dir = open_dir(&core.rows, &head, d, sealed.as_deref())?;
        for slot in 0..FANOUT {
            let l = d * FANOUT + slot;
            let sealed = sealed_nodes.remove(&integrity::leaf_id(l));
            let leaf = open_leaf(&core.rows, &dir, l, sealed.as_deref())?;
            for (entry, (t, v)) in leaf.into_entries() {
                // Each entry in the one leaf it belongs to, once.
                if integrity::placement(t, &entry, &v) != l
                    || recorded.insert(entry, (t, v)).is_some()
                {
                    return Err(integrity::tampered());
                }
            }
        }
    }
    // The head's pending changes are newer than the leaves.
    for (entry, p) in &head.pending {
        if recorded.get(entry).map(|r| r.1) != p.below && p.t == T::Message {
            return Err(integrity::tampered());
        }
        match p.new {
            Some(v) => recorded.insert(*entry, (p.t, v)),
            None => recorded.remove(entry),
        };
    }

    let mut summary = StoreSummary::default();
    for (t, rows_of_t) in T::ALL.iter().zip(found) {
        let table = t.table();
        if *t == T::Integrity {
            continue;
        }
        let n = table.key.len();
        for cells in rows_of_t {
            let key: Option<Vec<Val<'_>>> =
                cells.get(..n).and_then(|k| k.iter().map(param).collect());
            let row = rows::row_key(*t, &key.ok_or_else(|| tampered(table.name))?)?;
            if *t == T::Message {
                let rest = cells.get(n..).map(<[Cell]>::to_vec);
                let rest = rest
                    .and_then(|r| <[Cell; 4]>::try_from(r).ok())
                    .ok_or_else(|| tampered(table.name))?;
                let m = checked_message(&core.rows, row, rest)?;
                if let Some(v) = &m.sealed {
                    core.rows.open("message", &m.row, v)?;
                }
                let entry = core.rows.entry(*t, &m.row);
                match recorded.remove(&entry) {
                    Some((rt, version))
                        if rt == *t && Some(version) == nonce_of(&m.sealed_meta) => {}
                    _ => return Err(tampered(table.name)),
                }
                summary.count(table.name, m.sealed.is_some());
                continue;
            }
            let Some(Cell::Bytes(v)) = cells.get(n) else {
                return Err(tampered(table.name));
            };
            core.rows.open(table.name, &row, v)?;
            let entry = core.rows.entry(*t, &row);
            match recorded.remove(&entry) {
                Some((rt, version)) if rt == *t && Some(version) == nonce_of(v) => {}
                _ => return Err(tampered(table.name)),
            }
            summary.count(table.name, true);
        }
    }
    // A row the head still records was deleted.
    if let Some((_, (t, _))) = recorded.into_iter().next() {
        return Err(tampered(t.table().name));
    }
    Ok(summary)
}
