//! How a [`Device`](super::Device) changes the values it keeps in a [`StateStore`]
//! (privacy-model state, prekey ids): load each row with its version, change copies,
//! commit them all in one transaction with a compare-and-swap on every row, and start
//! over when another writer got there first. Nothing is cached between calls, so two
//! handles on one device (two threads, two processes, two hosts on one database) never
//! lose each other's updates. A store without a [`StateStore`] gets [`MemoryState`].

use std::collections::HashMap;
use std::sync::Mutex;

use zeroize::Zeroizing;

use super::PrivacyStateError;
use crate::delivery::MAX_COMMIT_ATTEMPTS;
use crate::error::StoreError;
use crate::store::{CommitOutcome, RowVersion, StateStore, StateWrite};

/// One row an update reads: its `kind` and `key`.
pub(super) type RowKey<'a> = (&'static str, &'a str);

/// Runs `change` on the current values of `rows` (in order; `None` for a missing row)
/// and commits the values it returns (one per row, in the same order) in one
/// transaction, if no row changed in between; otherwise loads again and reruns it.
/// `change` runs once per attempt, on fresh values: it must not have effects of its
/// own. Returns what `change` returned with the committed values.
pub(super) fn update<T, E: From<PrivacyStateError>>(
    st: &dyn StateStore,
    rows: &[RowKey<'_>],
    mut change: impl FnMut(&[Option<Zeroizing<Vec<u8>>>]) -> Result<(T, Vec<Vec<u8>>), E>,
) -> Result<T, E> {
    for _ in 0..MAX_COMMIT_ATTEMPTS {
        let mut values = Vec::with_capacity(rows.len());
        let mut versions = Vec::with_capacity(rows.len());
        for &(kind, key) in rows {
            let (value, version) = st.load_state(kind, key).map_err(PrivacyStateError::from)?;
            values.push(value);
            versions.push(version);
        }
        let (out, new_values) = change(&values)?;
        let writes: Vec<StateWrite<'_>> = rows
            .iter()
            .zip(&versions)
            .zip(&new_values)
            .map(|((&(kind, key), &expected), value)| StateWrite::new(kind, key, expected, value))
            .collect();
        match st.commit_state(&writes).map_err(PrivacyStateError::from)? {
            CommitOutcome::Committed => return Ok(out),
            CommitOutcome::Conflict => continue,
        }
    }
    Err(PrivacyStateError::Store(StoreError::Contention {
        attempts: MAX_COMMIT_ATTEMPTS,
    })
    .into())
}

/// The value of one row as it is in the store now.
pub(super) fn read(
    st: &dyn StateStore,
    kind: &str,
    key: &str,
) -> Result<Option<Zeroizing<Vec<u8>>>, PrivacyStateError> {
    Ok(st.load_state(kind, key)?.0)
}

/// A [`StateStore`] in memory, for a device whose store keeps no state: the values live
/// as long as the device.
#[derive(Default)]
pub(super) struct MemoryState {
    rows: Mutex<MemoryRows>,
}

/// A value and the write that made it (its version).
type MemoryRow = (Zeroizing<Vec<u8>>, u64);

#[derive(Default)]
struct MemoryRows {
    values: HashMap<(String, String), MemoryRow>,
    writes: u64,
}

fn version(n: u64) -> RowVersion {
    let mut token = [0u8; 12];
    token[4..].copy_from_slice(&n.to_be_bytes());
    RowVersion::new(token)
}

impl MemoryState {
    fn rows(&self) -> Result<std::sync::MutexGuard<'_, MemoryRows>, StoreError> {
        self.rows.lock().map_err(|_| StoreError::Poisoned {
            what: "device state",
        })
    }
}

impl StateStore for MemoryState {
    fn state(&self, kind: &str, key: &str) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        Ok(self.load_state(kind, key)?.0)
    }

    fn save_state(&self, kind: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let mut rows = self.rows()?;
        rows.writes += 1;
        let n = rows.writes;
        rows.values.insert(
            (kind.to_owned(), key.to_owned()),
            (Zeroizing::new(value.to_vec()), n),
        );
        Ok(())
    }

    fn remove_state(&self, kind: &str, key: &str) -> Result<(), StoreError> {
        self.rows()?
            .values
            .remove(&(kind.to_owned(), key.to_owned()));
        Ok(())
    }

    fn load_state(
        &self,
        kind: &str,
        key: &str,
    ) -> Result<(Option<Zeroizing<Vec<u8>>>, RowVersion), StoreError> {
        let rows = self.rows()?;
        Ok(match rows.values.get(&(kind.to_owned(), key.to_owned())) {
            Some((v, n)) => (Some(v.clone()), version(*n)),
            None => (None, RowVersion::ABSENT),
        })
    }

    fn commit_state(&self, writes: &[StateWrite<'_>]) -> Result<CommitOutcome, StoreError> {
        let mut rows = self.rows()?;
        for w in writes {
            let current = rows
                .values
                .get(&(w.kind.to_owned(), w.key.to_owned()))
                .map_or(RowVersion::ABSENT, |(_, n)| version(*n));
            if current != w.expected {
                return Ok(CommitOutcome::Conflict);
            }
        }
        for w in writes {
            rows.writes += 1;
            let n = rows.writes;
            rows.values.insert(
                (w.kind.to_owned(), w.key.to_owned()),
                (Zeroizing::new(w.value.to_vec()), n),
            );
        }
        Ok(CommitOutcome::Committed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_state_commits_all_or_nothing_on_the_versions_it_handed_out() {
        let st = MemoryState::default();
        let (none, absent) = st.load_state("k", "a").unwrap();
        assert!(none.is_none());
        assert_eq!(absent, RowVersion::ABSENT);
        let w = [StateWrite::new("k", "a", absent, b"1")];
        assert!(matches!(
            st.commit_state(&w).unwrap(),
            CommitOutcome::Committed
        ));
        // The same expectation again is stale: nothing is written.
        let both = [
            StateWrite::new("k", "b", RowVersion::ABSENT, b"x"),
            StateWrite::new("k", "a", absent, b"2"),
        ];
        assert!(matches!(
            st.commit_state(&both).unwrap(),
            CommitOutcome::Conflict
        ));
        assert!(st.state("k", "b").unwrap().is_none());
        let (v, version) = st.load_state("k", "a").unwrap();
        assert_eq!(v.unwrap().as_slice(), b"1");
        let w = [StateWrite::new("k", "a", version, b"2")];
        assert!(matches!(
            st.commit_state(&w).unwrap(),
            CommitOutcome::Committed
        ));
        assert_eq!(read(&st, "k", "a").unwrap().unwrap().as_slice(), b"2");
    }

    #[test]
    fn update_retries_on_conflict_and_gives_up_with_contention() {
        let st = MemoryState::default();
        let mut runs = 0;
        // Another writer changes the row during the first run only.
        let out: Result<u8, PrivacyStateError> = update(&st, &[("k", "")], |v| {
            runs += 1;
            if runs == 1 {
                st.save_state("k", "", b"other").unwrap();
            }
            assert_eq!(v[0].is_some(), runs > 1);
            Ok((7, vec![b"mine".to_vec()]))
        });
        assert_eq!(out.unwrap(), 7);
        assert_eq!(runs, 2);
        assert_eq!(read(&st, "k", "").unwrap().unwrap().as_slice(), b"mine");
        let never: Result<(), PrivacyStateError> = update(&st, &[("k", "")], |_| {
            st.save_state("k", "", b"again").unwrap();
            Ok(((), vec![b"lost".to_vec()]))
        });
        assert!(matches!(
            never,
            Err(PrivacyStateError::Store(StoreError::Contention { attempts })) if attempts == MAX_COMMIT_ATTEMPTS
        ));
    }
}
