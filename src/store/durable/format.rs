//! Opening a device: its key check, its integrity head and a new generation for this
//! open's nonces, all in one transaction; a new device set up; a device written in the
//! first storage format resealed row by row in the current one.

use super::steps::{Steps, write_head};
use super::{Abort, Backend, Cell, KeyCheck, OpenError, Sql, Val, open_head};
use crate::error::StoreError;
use crate::store::CommitOutcome;
use crate::store::integrity::{self, Head, Watch};
use crate::store::rows::{self, MessageMeta, Rows};
use crate::store::schema::{Dialect, T, Ty, scan_columns};
use crate::store::seal::{LegacySealer, MAX_GENERATION};

/// How many times an open is redone when another host opens the same device at once.
const OPEN_ATTEMPTS: usize = 16;

/// Why one attempt at opening did not finish.
enum Refused {
    /// Another opener of this device got in first: redo.
    Conflict,
    /// The open is refused.
    Open(OpenError),
}

impl From<OpenError> for Refused {
    fn from(e: OpenError) -> Self {
        Self::Open(e)
    }
}

impl From<Abort> for Refused {
    fn from(e: Abort) -> Self {
        match e {
            Abort::Conflict => Self::Conflict,
            Abort::Failed(e) => Self::Open(OpenError::loading(e)),
        }
    }
}

/// Opens the device `rows` seals for: checks the key, bumps the generation in the head
/// (and sets it on `rows`), sets up a new device or migrates a first-format one.
/// Returns the head's sequence number.
pub(crate) fn open_device<B: Backend>(
    db: &B,
    rows: &Rows,
    legacy: &LegacySealer,
    check: &KeyCheck,
) -> Result<u64, OpenError> {
    let sql = Sql::new(B::DIALECT);
    for _ in 0..OPEN_ATTEMPTS {
        let mut result = None;
        let outcome = db.transaction(&mut |tx| match attempt(tx, &sql, rows, legacy, check) {
            Ok(seq) => {
                result = Some(Ok(seq));
                Ok(())
            }
            Err(Refused::Conflict) => Err(Abort::Conflict),
            Err(Refused::Open(e)) => {
                result = Some(Err(e));
                // Roll back whatever the attempt wrote.
                Err(Abort::Failed(StoreError::backend("open refused")))
            }
        });
        match (outcome, result) {
            (_, Some(Err(e))) => return Err(e),
            (Ok(CommitOutcome::Committed), Some(Ok(seq))) => return Ok(seq),
            (Ok(CommitOutcome::Conflict), _) => continue,
            (Err(e), _) => return Err(OpenError::loading(e)),
            (Ok(CommitOutcome::Committed), None) => {
                return Err(OpenError::Corrupt { table: "integrity" });
            }
        }
    }
    Err(OpenError::backend(StoreError::Contention {
        attempts: OPEN_ATTEMPTS,
    }))
}

/// One value the query selects (the first column of its one row), if any.
fn one(
    tx: &mut dyn super::Tx,
    sql: &str,
    params: &[Val<'_>],
    table: &'static str,
) -> Result<Option<Vec<u8>>, Refused> {
    let found = tx.query(sql, params, &[Ty::Blob])?;
    let mut it = found.into_iter();
    match (it.next(), it.next()) {
        (None, _) => Ok(None),
        (Some(cells), None) => match <[Cell; 1]>::try_from(cells) {
            Ok([Cell::Bytes(v)]) => Ok(Some(v)),
            _ => Err(OpenError::Corrupt { table }.into()),
        },
        _ => Err(OpenError::Corrupt { table }.into()),
    }
}

fn attempt(
    tx: &mut dyn super::Tx,
    sql: &Sql,
    rows: &Rows,
    legacy: &LegacySealer,
    check: &KeyCheck,
) -> Result<u64, Refused> {
    let head = one(
        tx,
        &sql.integrity_lock,
        &[Val::Int(integrity::HEAD_ID)],
        "integrity",
    )?;
    let key_check = one(
        tx,
        &sql.value[T::Meta as usize],
        &[Val::Text("key_check")],
        "meta",
    )?;
    match (head, key_check) {
        (Some(head), Some(sealed)) => {
            check.matches(rows, &sealed)?;
            let mut head = open_head(rows, Some(&head))
                .map_err(|_| OpenError::Corrupt { table: "integrity" })?;
            let generation = head.generation.saturating_add(1);
            if generation > MAX_GENERATION {
                return Err(OpenError::Corrupt { table: "integrity" }.into());
            }
            rows.set_generation(generation);
            head.generation = generation;
            head.seq = head.seq.saturating_add(1);
            write_head(tx, sql, rows, &head)?;
            Ok(head.seq)
        }
        // A head without its key check: the check was deleted.
        (Some(_), None) => Err(OpenError::Corrupt { table: "meta" }.into()),
        (None, None) => {
            let count = tx.query(&sql.count_rows, &[], &[Ty::Int])?;
            if !matches!(count.first().map(Vec::as_slice), Some([Cell::Int(0)])) {
                // Rows without a key check: the check was deleted.
                return Err(OpenError::Corrupt { table: "meta" }.into());
            }
            start(tx, sql, rows)?;
            let mut steps = Steps::new(sql, rows, tx);
            let sealed = check.seal(rows).map_err(OpenError::loading)?;
            steps.put(T::Meta, &[Val::Text("key_check")], &sealed)?;
            finish(&mut steps)
        }
        (None, Some(sealed)) => {
            if check.matches(rows, &sealed).is_ok() {
                // A current-format device without its head: either another opener set
                // the device up between the two reads (PostgreSQL's READ COMMITTED
                // shows each statement the latest commit), or the head was deleted.
                let again = one(
                    tx,
                    &sql.integrity,
                    &[Val::Int(integrity::HEAD_ID)],
                    "integrity",
                )?;
                if again.is_some() {
                    return Err(Refused::Conflict);
                }
                return Err(OpenError::Corrupt { table: "integrity" }.into());
            }
            check.matches_legacy(legacy, rows.owner(), &sealed)?;
            migrate(tx, sql, rows, legacy)
        }
    }
}

/// Writes the first head of a device (generation 1), conflicting if another opener
/// wrote one first.
fn start(tx: &mut dyn super::Tx, sql: &Sql, rows: &Rows) -> Result<(), Refused> {
    rows.set_generation(1);
    let mut head = Head::new();
    head.generation = 1;
    let id = integrity::HEAD_ID;
    let sealed = rows
        .seal("integrity", &id.to_be_bytes(), &head.encode())
        .map_err(OpenError::loading)?;
    let n = tx.execute(
        &sql.if_absent[T::Integrity as usize],
        &[Val::Int(id), Val::Bytes(&sealed)],
    )?;
    if n == 0 {
        return Err(Refused::Conflict);
    }
    Ok(())
}

fn finish(steps: &mut Steps<'_, '_>) -> Result<u64, Refused> {
    steps
        .finish(&Watch::new(0))?
        .ok_or(Refused::Open(OpenError::Corrupt { table: "integrity" }))
}

/// Reseals every row of a first-format device under the current format and records
/// each in the new head, in the open's transaction: the migration trusts the rows as
/// they are now (the first format could not tell an old row from a current one).
fn migrate(
    tx: &mut dyn super::Tx,
    sql: &Sql,
    rows: &Rows,
    legacy: &LegacySealer,
) -> Result<u64, Refused> {
    start(tx, sql, rows)?;
    let mut tables = Vec::new();
    for t in T::ALL {
        if t == T::Integrity {
            continue;
        }
        let types: Vec<Ty> = scan_columns(t.table()).iter().map(|c| c.1).collect();
        tables.push((t, tx.query(&sql.scan[t as usize], &[], &types)?));
    }
    if sql.dialect == Dialect::Sqlite {
        // The first format's unsealed open counter: the head keeps the generation now.
        tx.execute(&sql.drop_legacy_generation, &[])?;
    }
    let mut steps = Steps::new(sql, rows, tx);
    for (t, found) in tables {
        let table = t.table();
        let n = table.key.len();
        for cells in found {
            let corrupt = || Refused::Open(OpenError::Corrupt { table: table.name });
            let key: Option<Vec<Val<'_>>> = cells
                .get(..n)
                .and_then(|k| k.iter().map(super::verify::param).collect());
            let key = key.ok_or_else(corrupt)?;
            let row = rows::row_key(t, &key).map_err(|_| corrupt())?;
            let mut owned = rows.owner().to_vec();
            owned.extend_from_slice(&row);
            let reseal = |v: &[u8]| -> Result<Vec<u8>, Refused> {
                let plain = legacy.open(table.name, &owned, v).map_err(|_| corrupt())?;
                rows.seal(table.name, &row, &plain)
                    .map_err(|e| Refused::Open(OpenError::loading(e)))
            };
            if t == T::Message {
                let (Some(Cell::Int(received_at)), Some(expires), Some(v)) =
                    (cells.get(n), cells.get(n + 1), cells.get(n + 2))
                else {
                    return Err(corrupt());
                };
                let expires_at = match expires {
                    Cell::Int(at) => Some(*at),
                    Cell::Null => None,
                    _ => return Err(corrupt()),
                };
                let sealed = match v {
                    Cell::Bytes(v) => Some(reseal(v)?),
                    Cell::Null => None,
                    _ => return Err(corrupt()),
                };
                let meta = MessageMeta {
                    received_at: *received_at,
                    expires_at,
                    acknowledged: sealed.is_none(),
                };
                let m = rows
                    .seal_message_meta(&row, &meta)
                    .map_err(|e| Refused::Open(OpenError::loading(e)))?;
                let params: Vec<Val<'_>> = key
                    .iter()
                    .copied()
                    .chain([Val::OptBytes(sealed.as_deref()), Val::Bytes(&m)])
                    .collect();
                steps.reseal_message(&params, &m)?;
                continue;
            }
            let Some(Cell::Bytes(v)) = cells.get(n) else {
                return Err(corrupt());
            };
            let sealed = reseal(v)?;
            steps.put(t, &key, &sealed)?;
        }
    }
    finish(&mut steps)
}
