//! The integrity head of a persistent store's device: what tells the current version of
//! every row from an older one, and a present row from a deleted one.
//!
//! Every tracked row (all tables but the messages) is sealed with a nonce that is unique
//! per write, so the nonce is the row's version. The head is a tree of depth two, sealed
//! like any row, in the `integrity` table: 64 buckets, each the sorted map of its rows'
//! entries (an HMAC of table and row key → table and version), and the head (id 0) with
//! each bucket's version, a commit sequence number and the device's open count. A read
//! opens the row, its bucket and the head in one statement and checks that the row's
//! version is the one its bucket records (or that the bucket records none for an absent
//! row); a write changes the row, its bucket and the head in one transaction; `verify`
//! checks every row against the whole tree.
//!
//! What this cannot see from inside the database: a rollback of the whole device (head,
//! buckets and rows together) to an older consistent copy. The sequence number catches
//! that while a store is open (it never goes back), and across restarts only with a
//! [`RollbackCounter`] the platform keeps outside the database.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::schema::T;
use super::seal::NONCE_LEN;
use crate::error::StoreError;

/// A row's version: the nonce of its sealed value.
pub(crate) type Version = [u8; NONCE_LEN];

/// Where a row's version is recorded: an HMAC of its table and row key.
pub(crate) type Entry = [u8; 16];

/// How many buckets the head has.
pub(crate) const BUCKETS: usize = 64;

/// The head's row id in the `integrity` table; bucket `b` is row `b + 1`.
pub(crate) const HEAD_ID: i64 = 0;

/// The error for a head or bucket that does not open or does not match.
pub(crate) fn tampered() -> StoreError {
    super::rows::tampered("integrity")
}

/// The bucket an entry belongs to.
pub(crate) fn bucket_of(entry: &Entry) -> usize {
    usize::from(entry[0]) % BUCKETS
}

/// The row id of bucket `b`.
pub(crate) fn bucket_id(b: usize) -> i64 {
    i64::try_from(b).unwrap_or(i64::MAX).saturating_add(1)
}

const HEAD_MAGIC: &[u8; 2] = b"H1";
const BUCKET_MAGIC: &[u8; 2] = b"B1";
const HEAD_LEN: usize = 2 + 8 + 8 + BUCKETS * NONCE_LEN;
const ENTRY_LEN: usize = 16 + 1 + NONCE_LEN;

/// The head: a commit sequence number, the device's open count and each bucket's
/// version (`None`: the bucket has no row, because it holds no entry).
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct Head {
    /// Bumped by every commit that changes a tracked row, and by every open.
    pub(crate) seq: u64,
    /// How many times the device was opened: the first half of every nonce.
    pub(crate) generation: u64,
    pub(crate) buckets: [Option<Version>; BUCKETS],
}

impl Head {
    /// The head of a new device, opened once.
    pub(crate) fn new() -> Self {
        Self {
            seq: 0,
            generation: 0,
            buckets: [None; BUCKETS],
        }
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEAD_LEN);
        out.extend_from_slice(HEAD_MAGIC);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.generation.to_be_bytes());
        for b in &self.buckets {
            // A nonce is never all zero (the generation starts at 1).
            out.extend_from_slice(&b.unwrap_or([0; NONCE_LEN]));
        }
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        if bytes.len() != HEAD_LEN || &bytes[..2] != HEAD_MAGIC {
            return Err(tampered());
        }
        let u64_at = |i: usize| {
            bytes
                .get(i..i + 8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_be_bytes)
                .ok_or_else(tampered)
        };
        let mut head = Self {
            seq: u64_at(2)?,
            generation: u64_at(10)?,
            buckets: [None; BUCKETS],
        };
        for (i, chunk) in bytes[18..].chunks_exact(NONCE_LEN).enumerate() {
            let v = Version::try_from(chunk).map_err(|_| tampered())?;
            if let Some(slot) = head.buckets.get_mut(i) {
                *slot = (v != [0; NONCE_LEN]).then_some(v);
            }
        }
        Ok(head)
    }
}

/// One bucket: the entries of its rows, each with the row's table and version.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub(crate) struct Bucket(BTreeMap<Entry, (T, Version)>);

impl Bucket {
    /// The table and version recorded for `entry`.
    pub(crate) fn get(&self, entry: &Entry) -> Option<&(T, Version)> {
        self.0.get(entry)
    }

    /// Records `entry`'s version (`None`: the row is gone).
    pub(crate) fn set(&mut self, entry: Entry, t: T, version: Option<Version>) {
        match version {
            Some(v) => {
                self.0.insert(entry, (t, v));
            }
            None => {
                self.0.remove(&entry);
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every entry, for `verify`.
    pub(crate) fn into_entries(self) -> impl Iterator<Item = (Entry, (T, Version))> {
        self.0.into_iter()
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(6 + self.0.len() * ENTRY_LEN);
        out.extend_from_slice(BUCKET_MAGIC);
        let n = u32::try_from(self.0.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&n.to_be_bytes());
        for (entry, (t, v)) in &self.0 {
            out.extend_from_slice(entry);
            out.push(*t as u8);
            out.extend_from_slice(v);
        }
        out
    }

    /// Strict: the entries sorted without repeats, every table a tracked one.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let (Some(magic), Some(count)) = (bytes.get(..2), bytes.get(2..6)) else {
            return Err(tampered());
        };
        let count = <[u8; 4]>::try_from(count).map_err(|_| tampered())?;
        let count = usize::try_from(u32::from_be_bytes(count)).map_err(|_| tampered())?;
        let body = &bytes[6..];
        if magic != BUCKET_MAGIC || Some(body.len()) != count.checked_mul(ENTRY_LEN) {
            return Err(tampered());
        }
        let mut map = BTreeMap::new();
        let mut last: Option<Entry> = None;
        for e in body.chunks_exact(ENTRY_LEN) {
            let entry = Entry::try_from(&e[..16]).map_err(|_| tampered())?;
            let t = T::from_tag(e[16]).filter(|t| t.tracked()).ok_or_else(tampered)?;
            let v = Version::try_from(&e[17..]).map_err(|_| tampered())?;
            if last.is_some_and(|l| l >= entry) {
                return Err(tampered());
            }
            last = Some(entry);
            map.insert(entry, (t, v));
        }
        Ok(Self(map))
    }
}

/// A counter the platform keeps outside the database (a keystore, a hardware monotonic
/// counter, a file on another volume), so a store can notice across restarts that its
/// whole database was rolled back to an older copy, which nothing inside the database
/// can show. See [`super::DurableStore::attach_rollback_counter`].
pub trait RollbackCounter: Send + Sync {
    /// The highest sequence number recorded.
    fn get(&self) -> Result<u64, Box<dyn std::error::Error + Send + Sync>>;
    /// Records that the store's head reached `seq` (never lower than before). Called
    /// after every commit that changed the head; a failure is reported as
    /// [`StoreError::Backend`] although the commit itself stands.
    fn advance(&self, seq: u64) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;
}

/// The highest head sequence this store has seen, and the app's counter if it gave one.
pub(crate) struct Watch {
    seen: AtomicU64,
    counter: Mutex<Option<Arc<dyn RollbackCounter>>>,
}

impl Watch {
    pub(crate) fn new(seq: u64) -> Self {
        Self {
            seen: AtomicU64::new(seq),
            counter: Mutex::new(None),
        }
    }

    /// The newest head seen so far: take it before reading a head, and pass it to
    /// [`Watch::observe`] (a head read concurrently with a commit of this store may
    /// predate that commit without anything having gone back).
    pub(crate) fn floor(&self) -> u64 {
        self.seen.load(Ordering::SeqCst)
    }

    /// A head just read, after [`Watch::floor`] returned `floor`: refused if older (the
    /// database went back while this store was open).
    pub(crate) fn observe(&self, floor: u64, seq: u64) -> Result<(), StoreError> {
        if seq < floor {
            return Err(StoreError::RolledBack {
                found: seq,
                seen: floor,
            });
        }
        self.seen.fetch_max(seq, Ordering::SeqCst);
        Ok(())
    }

    /// A commit put the head at `seq`.
    pub(crate) fn committed(&self, seq: u64) -> Result<(), StoreError> {
        self.seen.fetch_max(seq, Ordering::SeqCst);
        let counter = self.counter()?;
        if let Some(c) = counter {
            c.advance(seq).map_err(StoreError::backend)?;
        }
        Ok(())
    }

    fn counter(&self) -> Result<Option<Arc<dyn RollbackCounter>>, StoreError> {
        self.counter
            .lock()
            .map(|c| c.clone())
            .map_err(|_| StoreError::Poisoned {
                what: "rollback counter",
            })
    }

    /// Checks the head at `seq` against `counter` and keeps the counter up to date from
    /// now on.
    pub(crate) fn attach(
        &self,
        counter: Arc<dyn RollbackCounter>,
        seq: u64,
    ) -> Result<(), StoreError> {
        let recorded = counter.get().map_err(StoreError::backend)?;
        if seq < recorded {
            return Err(StoreError::RolledBack {
                found: seq,
                seen: recorded,
            });
        }
        self.observe(self.floor(), seq)?;
        counter.advance(seq).map_err(StoreError::backend)?;
        *self.counter.lock().map_err(|_| StoreError::Poisoned {
            what: "rollback counter",
        })? = Some(counter);
        Ok(())
    }
}

/// One tracked row a transaction writes: its entry, its new version (`None`: deleted)
/// and, for a compare-and-swap, the version it had to have.
pub(crate) struct Change {
    pub(crate) t: T,
    pub(crate) entry: Entry,
    pub(crate) new: Option<Version>,
    pub(crate) was: Option<Option<Version>>,
}

/// Checks a row read together with its bucket and the head: the row's version must be
/// the one the bucket records, the bucket's the one the head records.
pub(crate) fn check_row(
    t: T,
    entry: &Entry,
    row: Option<&[u8]>,
    bucket: &Bucket,
) -> Result<(), StoreError> {
    let have = row
        .map(|r| super::seal::nonce_of(r).ok_or_else(|| super::rows::tampered(t.table().name)))
        .transpose()?;
    match (bucket.get(entry), have) {
        (None, None) => Ok(()),
        (Some((tt, want)), Some(have)) if *tt == t && *want == have => Ok(()),
        _ => Err(super::rows::tampered(t.table().name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_and_bucket_round_trip_and_refuse_bad_encodings() {
        let mut head = Head::new();
        head.seq = 7;
        head.generation = 3;
        head.buckets[5] = Some([9; NONCE_LEN]);
        assert_eq!(Head::decode(&head.encode()).unwrap(), head);
        let mut bad = head.encode();
        bad.pop();
        assert!(Head::decode(&bad).is_err());

        let mut b = Bucket::default();
        b.set([2; 16], T::Session, Some([1; NONCE_LEN]));
        b.set([1; 16], T::Identity, Some([2; NONCE_LEN]));
        assert_eq!(Bucket::decode(&b.encode()).unwrap(), b);
        // Entries out of order, repeated, or naming an untracked table are refused.
        let enc = b.encode();
        let mut swapped = enc[..6].to_vec();
        swapped.extend_from_slice(&enc[6 + ENTRY_LEN..]);
        swapped.extend_from_slice(&enc[6..6 + ENTRY_LEN]);
        assert!(Bucket::decode(&swapped).is_err());
        let mut repeated = enc[..6].to_vec();
        repeated.extend_from_slice(&enc[6..6 + ENTRY_LEN]);
        repeated.extend_from_slice(&enc[6..6 + ENTRY_LEN]);
        assert!(Bucket::decode(&repeated).is_err());
        let mut message = enc.clone();
        message[6 + 16] = T::Message as u8;
        assert!(Bucket::decode(&message).is_err());
        b.set([1; 16], T::Identity, None);
        assert!(b.get(&[1; 16]).is_none());
    }

    #[test]
    fn a_row_must_carry_the_version_its_bucket_records() {
        let mut b = Bucket::default();
        let row = |v: u8| {
            let mut r = vec![v; NONCE_LEN];
            r.extend_from_slice(&[0; 20]);
            r
        };
        b.set([1; 16], T::Session, Some([4; NONCE_LEN]));
        assert!(check_row(T::Session, &[1; 16], Some(&row(4)), &b).is_ok());
        // An older copy of the row, a deleted row, a row the bucket does not know, a
        // row of another table under the same entry: all refused.
        assert!(check_row(T::Session, &[1; 16], Some(&row(3)), &b).is_err());
        assert!(check_row(T::Session, &[1; 16], None, &b).is_err());
        assert!(check_row(T::Session, &[2; 16], Some(&row(4)), &b).is_err());
        assert!(check_row(T::Identity, &[1; 16], Some(&row(4)), &b).is_err());
        assert!(check_row(T::Session, &[2; 16], None, &b).is_ok());
    }

    #[test]
    fn the_watch_refuses_a_head_older_than_one_seen() {
        let w = Watch::new(5);
        assert!(w.observe(w.floor(), 5).is_ok());
        assert!(w.observe(w.floor(), 9).is_ok());
        assert!(matches!(
            w.observe(w.floor(), 8),
            Err(StoreError::RolledBack { found: 8, seen: 9 })
        ));
        // A head read before a concurrent commit moved the floor is not a rollback.
        let floor = w.floor();
        w.committed(12).unwrap();
        assert!(w.observe(floor, 10).is_ok());
        assert_eq!(w.floor(), 12);
    }
}
