//! Safety numbers: the 60-digit code and the scannable QR payload two users compare to
//! check that they see each other's real identity keys. Compatible with libsignal's
//! `Fingerprint` (versions 1 and 2).
//!
//! Each user's half is computed alone, from their stable identifier (an ACI, a phone
//! number: any bytes both sides agree on) and their 33-byte identity key:
//!
//! ```text
//! h = SHA-512(0x0000 ‖ key ‖ id ‖ key)          // 0x0000: the hash format, not the version
//! repeat iterations − 1 times: h = SHA-512(h ‖ key)
//! ```
//!
//! - Displayable: the first 30 bytes of `h` as six 5-byte big-endian numbers, each mod
//!   100 000 and written as 5 digits: 30 digits per user. The two halves are joined in
//!   string order (smaller first), so both users see the same 60 digits.
//! - Scannable: protobuf `CombinedFingerprints { version, local { content }, remote {
//!   content } }` with the first 32 bytes of each `h`. Scanning the other phone's code
//!   matches when its local half is my remote half and vice versa.
//!
//! The displayable digits are the same for versions 1 and 2; only the scannable payload
//! carries the version.
//!
//! ```
//! use confide::fingerprint::{Comparison, Fingerprint, Party};
//! use confide::IdentityKeyPair;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut rng = confide::SystemRng::new();
//! let alice = IdentityKeyPair::generate(&mut rng);
//! let bob = IdentityKeyPair::generate(&mut rng);
//! let a = Party::new(b"+14152222222", alice.identity_key());
//! let b = Party::new(b"+14153333333", bob.identity_key());
//!
//! let on_alices_phone = Fingerprint::with_defaults(a, b)?;
//! let on_bobs_phone = Fingerprint::with_defaults(b, a)?;
//! assert_eq!(on_alices_phone.displayable().to_string(), on_bobs_phone.displayable().to_string());
//!
//! // Alice scans Bob's QR code.
//! let scanned = on_bobs_phone.scannable().to_bytes();
//! assert_eq!(on_alices_phone.scannable().compare(&scanned)?, Comparison::Match);
//! # Ok(()) }
//! ```

use prost::Message;

use crate::keys::IdentityKey;
use crate::proto::fingerprint as pb;

/// Iterations deployed clients use.
pub const DEFAULT_ITERATIONS: u32 = 5200;

/// Iteration counts libsignal accepts: more than 1, at most one million.
pub const ITERATIONS_RANGE: std::ops::RangeInclusive<u32> = 2..=1_000_000;

/// The scannable version current clients show.
pub const CURRENT_VERSION: u32 = 2;

/// Digits in a displayable fingerprint.
pub const DISPLAYABLE_DIGITS: usize = 60;

/// Bytes of each user's hash that go into the scannable payload.
const SCANNABLE_HASH_LEN: usize = 32;

/// The hash-format prefix. libsignal always hashes `0x0000` here: the scannable version is
/// not part of the hash.
const HASH_FORMAT: [u8; 2] = [0, 0];

/// One side of a conversation: a stable identifier and that user's identity key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Party<'a> {
    id: &'a [u8],
    key: &'a IdentityKey,
}

impl<'a> Party<'a> {
    /// `id` is the user's stable identifier as bytes (both sides must use the same
    /// bytes, e.g. the UTF-8 phone number or the 16-byte service id).
    pub fn new(id: &'a [u8], key: &'a IdentityKey) -> Self {
        Self { id, key }
    }

    /// The identifier bytes.
    pub fn id(&self) -> &'a [u8] {
        self.id
    }

    /// The identity key.
    pub fn key(&self) -> &'a IdentityKey {
        self.key
    }

    /// The user's iterated SHA-512 hash.
    fn hash(&self, iterations: u32) -> [u8; 64] {
        let key = self.key.serialize();
        let mut h = crate::crypto::sha512(&[&HASH_FORMAT, &key, self.id, &key]);
        for _ in 1..iterations {
            h = crate::crypto::sha512(&[&h, &key]);
        }
        h
    }
}

/// Why a fingerprint could not be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FingerprintError {
    /// The iteration count is outside [`ITERATIONS_RANGE`].
    #[error("fingerprint iterations {iterations} outside 2..=1000000")]
    InvalidIterations {
        /// The count given.
        iterations: u32,
    },
}

/// Why scanned bytes could not be read as a scannable fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScannedFingerprintError {
    /// The bytes are not a `CombinedFingerprints` protobuf.
    #[error("scanned fingerprint is not a valid encoding")]
    Malformed,
    /// A required field is absent.
    #[error("scanned fingerprint lacks field {field}")]
    MissingField {
        /// The field's name in `fingerprint.proto`.
        field: &'static str,
    },
    /// A fingerprint half is not 32 bytes.
    #[error("scanned fingerprint field {field} has {found} bytes, expected 32")]
    WrongLength {
        /// The field's name in `fingerprint.proto`.
        field: &'static str,
        /// Length found.
        found: usize,
    },
}

/// The result of comparing a scanned code with ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Comparison {
    /// Both identity keys and identifiers agree: the conversation is verified.
    Match,
    /// Same version, different content: a key or identifier differs on one side.
    Mismatch,
    /// The other app shows an older scannable version (a missing version reads as 0);
    /// the codes cannot be compared until it updates.
    OlderVersion {
        /// The scanned code's version.
        theirs: u32,
        /// Ours.
        ours: u32,
    },
    /// The other app shows a newer scannable version; this app must update.
    NewerVersion {
        /// The scanned code's version.
        theirs: u32,
        /// Ours.
        ours: u32,
    },
}

impl Comparison {
    /// Only [`Comparison::Match`] verifies.
    pub fn is_match(&self) -> bool {
        matches!(self, Comparison::Match)
    }
}

/// Both forms of one user's view of a conversation's safety number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    displayable: DisplayableFingerprint,
    scannable: ScannableFingerprint,
}

impl Fingerprint {
    /// Computes the fingerprint `local` sees for a conversation with `remote`, with
    /// scannable `version` (1 or 2 in deployed clients) and `iterations` rounds per side.
    pub fn new(
        version: u32,
        iterations: u32,
        local: Party<'_>,
        remote: Party<'_>,
    ) -> Result<Self, FingerprintError> {
        if !ITERATIONS_RANGE.contains(&iterations) {
            return Err(FingerprintError::InvalidIterations { iterations });
        }
        let l = local.hash(iterations);
        let r = remote.hash(iterations);
        let mut local_part = [0u8; SCANNABLE_HASH_LEN];
        let mut remote_part = [0u8; SCANNABLE_HASH_LEN];
        local_part.copy_from_slice(&l[..SCANNABLE_HASH_LEN]);
        remote_part.copy_from_slice(&r[..SCANNABLE_HASH_LEN]);
        Ok(Self {
            displayable: DisplayableFingerprint {
                local: digits(&l),
                remote: digits(&r),
            },
            scannable: ScannableFingerprint {
                version,
                local: local_part,
                remote: remote_part,
            },
        })
    }

    /// [`CURRENT_VERSION`] and [`DEFAULT_ITERATIONS`].
    pub fn with_defaults(local: Party<'_>, remote: Party<'_>) -> Result<Self, FingerprintError> {
        Self::new(CURRENT_VERSION, DEFAULT_ITERATIONS, local, remote)
    }

    /// The 60 digits to read aloud or compare by eye.
    pub fn displayable(&self) -> &DisplayableFingerprint {
        &self.displayable
    }

    /// The payload to show as a QR code, and to compare a scanned one with.
    pub fn scannable(&self) -> &ScannableFingerprint {
        &self.scannable
    }
}

/// Thirty digits from the first 30 bytes of a hash: six 5-byte big-endian numbers, each
/// reduced mod 100 000 and zero-padded to 5 digits.
fn digits(hash: &[u8; 64]) -> String {
    let mut s = String::with_capacity(30);
    for chunk in hash[..30].chunks_exact(5) {
        let n = chunk.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)) % 100_000;
        let mut div = 10_000;
        while div > 0 {
            // n / div < 10 here, so this is always one ASCII digit.
            s.push(char::from(b'0' + ((n / div) % 10) as u8));
            div /= 10;
        }
    }
    s
}

/// The 60-digit safety number. `Display` prints the digits; split them into groups of
/// five for people (see [`groups`](Self::groups)).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DisplayableFingerprint {
    local: String,
    remote: String,
}

impl DisplayableFingerprint {
    /// The 30 digits computed from the local user's key.
    pub fn local_digits(&self) -> &str {
        &self.local
    }

    /// The 30 digits computed from the remote user's key.
    pub fn remote_digits(&self) -> &str {
        &self.remote
    }

    /// The twelve 5-digit groups, in display order.
    pub fn groups(&self) -> Vec<String> {
        let all = self.to_string();
        all.as_bytes()
            .chunks(5)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect()
    }
}

impl std::fmt::Display for DisplayableFingerprint {
    /// Both halves, the smaller string first, so both users see the same 60 digits.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (first, second) = if self.local < self.remote {
            (&self.local, &self.remote)
        } else {
            (&self.remote, &self.local)
        };
        f.write_str(first)?;
        f.write_str(second)
    }
}

/// The QR-code payload: version and the first 32 bytes of each user's hash.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ScannableFingerprint {
    version: u32,
    local: [u8; SCANNABLE_HASH_LEN],
    remote: [u8; SCANNABLE_HASH_LEN],
}

impl ScannableFingerprint {
    /// The scannable version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The local user's 32 bytes.
    pub fn local(&self) -> &[u8; SCANNABLE_HASH_LEN] {
        &self.local
    }

    /// The remote user's 32 bytes.
    pub fn remote(&self) -> &[u8; SCANNABLE_HASH_LEN] {
        &self.remote
    }

    /// The protobuf bytes to put in the QR code (byte-identical to libsignal's).
    pub fn to_bytes(&self) -> Vec<u8> {
        pb::CombinedFingerprints {
            version: Some(self.version),
            local_fingerprint: Some(pb::LogicalFingerprint {
                content: Some(self.local.to_vec()),
            }),
            remote_fingerprint: Some(pb::LogicalFingerprint {
                content: Some(self.remote.to_vec()),
            }),
        }
        .encode_to_vec()
    }

    /// Compares a scanned code (the other phone's [`to_bytes`](Self::to_bytes)) with
    /// ours. Versions are compared first; contents in constant time, crosswise (their
    /// local half against our remote half and the other way round).
    pub fn compare(&self, scanned: &[u8]) -> Result<Comparison, ScannedFingerprintError> {
        let theirs = pb::CombinedFingerprints::decode(scanned)
            .map_err(|_| ScannedFingerprintError::Malformed)?;
        let version = theirs.version.unwrap_or(0);
        if version < self.version {
            return Ok(Comparison::OlderVersion {
                theirs: version,
                ours: self.version,
            });
        }
        if version > self.version {
            return Ok(Comparison::NewerVersion {
                theirs: version,
                ours: self.version,
            });
        }
        let their_local = content(theirs.local_fingerprint.as_ref(), "local_fingerprint")?;
        let their_remote = content(theirs.remote_fingerprint.as_ref(), "remote_fingerprint")?;
        let same_local = crate::crypto::ct_eq(their_local, &self.remote);
        let same_remote = crate::crypto::ct_eq(their_remote, &self.local);
        Ok(if same_local & same_remote {
            Comparison::Match
        } else {
            Comparison::Mismatch
        })
    }
}

fn content<'a>(
    half: Option<&'a pb::LogicalFingerprint>,
    field: &'static str,
) -> Result<&'a [u8], ScannedFingerprintError> {
    half.and_then(|h| h.content.as_deref())
        .ok_or(ScannedFingerprintError::MissingField { field })
}

impl TryFrom<&[u8]> for ScannableFingerprint {
    type Error = ScannedFingerprintError;

    /// Reads a scanned code; each half must be 32 bytes. ([`compare`](Self::compare)
    /// does not need this: it treats a half of another length as a mismatch, as
    /// libsignal does.)
    fn try_from(bytes: &[u8]) -> Result<Self, ScannedFingerprintError> {
        let msg = pb::CombinedFingerprints::decode(bytes)
            .map_err(|_| ScannedFingerprintError::Malformed)?;
        let version = msg
            .version
            .ok_or(ScannedFingerprintError::MissingField { field: "version" })?;
        let local = content(msg.local_fingerprint.as_ref(), "local_fingerprint")?;
        let remote = content(msg.remote_fingerprint.as_ref(), "remote_fingerprint")?;
        Ok(Self {
            version,
            local: fixed(local, "local_fingerprint")?,
            remote: fixed(remote, "remote_fingerprint")?,
        })
    }
}

fn fixed(
    bytes: &[u8],
    field: &'static str,
) -> Result<[u8; SCANNABLE_HASH_LEN], ScannedFingerprintError> {
    <[u8; SCANNABLE_HASH_LEN]>::try_from(bytes).map_err(|_| ScannedFingerprintError::WrongLength {
        field,
        found: bytes.len(),
    })
}
