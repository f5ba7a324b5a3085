//! SPQR's systematic erasure code: a payload of N 32-byte chunks becomes an endless
//! stream of chunks, any N distinct ones of which rebuild it, so an epoch's key material
//! survives lost and reordered messages.
//!
//! The payload is read as big-endian u16 words; word i belongs to lane i % 16 at
//! position x = i / 16. Each lane is the polynomial over GF(2^16) of degree < N through
//! its words at x = 0..N-1, and chunk k holds the 16 lanes' values at x = k. Chunks
//! 0..N-1 are therefore the payload itself; chunks from N on are parity, computed and
//! inverted by Lagrange interpolation.

use std::sync::Arc;

use zeroize::{Zeroize, Zeroizing};

use super::gf;

/// The size of one chunk: 16 lanes of one big-endian u16 each.
pub(crate) const CHUNK_LEN: usize = 32;

/// Lanes per chunk.
const LANES: usize = CHUNK_LEN / 2;

/// The longest payload accepted: 64 chunks. SPQR's largest is ek, 1152 bytes; the bound
/// keeps decoding's quadratic cost small whatever length a caller passes.
pub(crate) const MAX_PAYLOAD_LEN: usize = 64 * CHUNK_LEN;

/// Why a payload or a stored coder was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ErasureError {
    /// The length is zero, not a multiple of 32 or above [`MAX_PAYLOAD_LEN`].
    #[error("erasure payload length {len} is not a nonzero multiple of 32 up to 2048")]
    BadLength {
        /// The length refused.
        len: usize,
    },
    /// A stored decoder holds the same chunk index twice.
    #[error("stored erasure decoder repeats chunk {index}")]
    DuplicateChunk {
        /// The repeated index.
        index: u16,
    },
    /// A stored decoder holds more chunks than its payload needs.
    #[error("stored erasure decoder holds more chunks than it needs")]
    TooManyChunks,
}

/// One coded piece of a payload: the 16 lanes evaluated at `index`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct Chunk {
    /// The evaluation point; below N, also the payload chunk it copies.
    pub(crate) index: u16,
    /// The 16 lane values, big-endian.
    pub(crate) data: [u8; CHUNK_LEN],
}

/// The number of chunks (the points per lane) of a payload of `len` bytes.
fn chunk_count(len: usize) -> Result<usize, ErasureError> {
    if len == 0 || len % CHUNK_LEN != 0 || len > MAX_PAYLOAD_LEN {
        return Err(ErasureError::BadLength { len });
    }
    Ok(len / CHUNK_LEN)
}

/// The barycentric weights of the points `xs` (distinct): w_i = 1 / prod_{j != i}
/// (x_i - x_j). They depend only on the points, so a coder computes them once.
fn weights(xs: &[u16]) -> Vec<u16> {
    let mut out: Vec<u16> = xs
        .iter()
        .enumerate()
        .map(|(i, &xi)| {
            xs.iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .fold(1, |acc, (_, &xj)| gf::mul(acc, xi ^ xj))
        })
        .collect();
    gf::batch_inv(&mut out);
    out
}

/// The Lagrange coefficients of the points `xs` at `at`, which must not be one of them:
/// L_i(at) = w_i * prod_j (at - x_j) / (at - x_i). O(N) with one field inversion.
fn coefficients(xs: &[u16], weights: &[u16], at: u16) -> Vec<u16> {
    let mut diffs: Vec<u16> = xs.iter().map(|&x| at ^ x).collect();
    let whole = diffs.iter().fold(1, |acc, &d| gf::mul(acc, d));
    gf::batch_inv(&mut diffs);
    diffs
        .iter()
        .zip(weights)
        .map(|(&inv_diff, &w)| gf::mul(gf::mul(whole, w), inv_diff))
        .collect()
}

/// The chunk `sum_i coeffs[i] * rows[i]`, lane by lane.
fn combine<'a>(coeffs: &[u16], rows: impl Iterator<Item = &'a [u8]>) -> [u8; CHUNK_LEN] {
    let mut acc = [0u16; LANES];
    for (&c, row) in coeffs.iter().zip(rows) {
        for (lane, word) in acc.iter_mut().zip(row.chunks_exact(2)) {
            *lane ^= gf::mul(c, u16::from_be_bytes([word[0], word[1]]));
        }
    }
    let mut out = [0u8; CHUNK_LEN];
    for (bytes, lane) in out.chunks_exact_mut(2).zip(acc) {
        bytes.copy_from_slice(&lane.to_be_bytes());
    }
    out
}

/// Emits the chunks of one payload, in index order. Payload and weights never change,
/// so a clone (one per SPQR message) shares them.
#[derive(Clone)]
pub(crate) struct Encoder {
    /// The payload (not secret in SPQR's uses, zeroized anyway: the code is generic).
    payload: Arc<Zeroizing<Vec<u8>>>,
    /// The barycentric weights of the points 0..N-1.
    weights: Arc<[u16]>,
    /// The index [`next_chunk`](Self::next_chunk) emits next.
    next: u16,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("len", &self.payload.len())
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl Encoder {
    /// An encoder of `payload`, starting at chunk 0.
    pub(crate) fn new(payload: &[u8]) -> Result<Self, ErasureError> {
        Self::resume(payload, 0)
    }

    /// An encoder of `payload` whose next chunk is `next_index`: the state a stored
    /// sender continues from.
    pub(crate) fn resume(payload: &[u8], next_index: u16) -> Result<Self, ErasureError> {
        let n = chunk_count(payload.len())?;
        let points: Vec<u16> = (0..n as u16).collect();
        Ok(Self {
            payload: Arc::new(Zeroizing::new(payload.to_vec())),
            weights: weights(&points).into(),
            next: next_index,
        })
    }

    /// The next chunk; indices run 0, 1, 2, ... and wrap after 65535.
    pub(crate) fn next_chunk(&mut self) -> Chunk {
        let chunk = self.chunk(self.next);
        self.next = self.next.wrapping_add(1);
        chunk
    }

    /// Chunk `index`: a copy of the payload below N, parity from N on (O(N) per lane).
    pub(crate) fn chunk(&self, index: u16) -> Chunk {
        let rows = self.payload.chunks_exact(CHUNK_LEN);
        if let Some(row) = rows.clone().nth(usize::from(index)) {
            let mut data = [0u8; CHUNK_LEN];
            data.copy_from_slice(row);
            return Chunk { index, data };
        }
        let points: Vec<u16> = (0..self.weights.len() as u16).collect();
        let coeffs = coefficients(&points, &self.weights, index);
        Chunk {
            index,
            data: combine(&coeffs, rows),
        }
    }

    /// The payload being sent.
    pub(crate) fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The index [`next_chunk`](Self::next_chunk) emits next.
    pub(crate) fn next_index(&self) -> u16 {
        self.next
    }
}

/// Collects chunks of one payload until N distinct ones rebuild it.
#[derive(Clone)]
pub(crate) struct Decoder {
    /// The payload length.
    len: usize,
    /// The distinct chunks received, at most N, in arrival order.
    chunks: Vec<Chunk>,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("len", &self.len)
            .field("received", &self.chunks.len())
            .finish_non_exhaustive()
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        for chunk in &mut self.chunks {
            chunk.data.zeroize();
        }
    }
}

impl Decoder {
    /// A decoder of a payload of `len` bytes, with no chunk yet.
    pub(crate) fn new(len: usize) -> Result<Self, ErasureError> {
        let n = chunk_count(len)?;
        Ok(Self {
            len,
            chunks: Vec::with_capacity(n),
        })
    }

    /// A decoder holding `chunks` (as [`chunks`](Self::chunks) gave them): the state a
    /// stored receiver continues from. Refuses repeated indices and more than N chunks,
    /// which [`add`](Self::add) never keeps.
    pub(crate) fn resume(len: usize, chunks: &[Chunk]) -> Result<Self, ErasureError> {
        let mut decoder = Self::new(len)?;
        for chunk in chunks {
            if decoder.is_complete() {
                return Err(ErasureError::TooManyChunks);
            }
            if decoder.has(chunk.index) {
                return Err(ErasureError::DuplicateChunk { index: chunk.index });
            }
            decoder.chunks.push(chunk.clone());
        }
        Ok(decoder)
    }

    /// The number of chunks the payload needs.
    fn needed(&self) -> usize {
        self.len / CHUNK_LEN
    }

    fn has(&self, index: u16) -> bool {
        self.chunks.iter().any(|c| c.index == index)
    }

    /// Takes one chunk; a repeated index, or any chunk once N are held, is ignored.
    pub(crate) fn add(&mut self, chunk: &Chunk) {
        if !self.is_complete() && !self.has(chunk.index) {
            self.chunks.push(chunk.clone());
        }
    }

    /// Whether N distinct chunks are held.
    pub(crate) fn is_complete(&self) -> bool {
        self.chunks.len() >= self.needed()
    }

    /// The payload once N distinct chunks are held. Chunks below N are copied; only the
    /// payload chunks missing among them are interpolated (O(N^2) per lane).
    pub(crate) fn decoded(&self) -> Option<Vec<u8>> {
        if !self.is_complete() {
            return None;
        }
        let n = self.needed();
        let mut out = vec![0u8; self.len];
        let mut missing = vec![true; n];
        for chunk in &self.chunks {
            let at = usize::from(chunk.index);
            if let (Some(slot), Some(row)) =
                (missing.get_mut(at), out.chunks_exact_mut(CHUNK_LEN).nth(at))
            {
                *slot = false;
                row.copy_from_slice(&chunk.data);
            }
        }
        if missing.iter().any(|&m| m) {
            let xs: Vec<u16> = self.chunks.iter().map(|c| c.index).collect();
            let w = weights(&xs);
            for (at, row) in out.chunks_exact_mut(CHUNK_LEN).enumerate() {
                if missing.get(at) == Some(&true) {
                    let coeffs = coefficients(&xs, &w, at as u16);
                    let rows = self.chunks.iter().map(|c| c.data.as_slice());
                    row.copy_from_slice(&combine(&coeffs, rows));
                }
            }
        }
        Some(out)
    }

    /// The payload length.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The distinct chunks held, in arrival order (for storage).
    pub(crate) fn chunks(&self) -> &[Chunk] {
        &self.chunks
    }
}

#[cfg(test)]
#[path = "erasure_tests.rs"]
mod tests;
