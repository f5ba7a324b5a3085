//! The bytes of one SPQR message, the SignalMessage's `pq_ratchet` field. Hand-rolled,
//! not protobuf:
//!
//! ```text
//! 0x01 (version V1) | varint epoch (u64, >= 1) | varint key index (u32) | u8 type
//!   | for Hdr, Ek, EkCt1Ack, Ct1, Ct2: varint chunk index (<= 65535) | 32 chunk bytes
//! ```
//!
//! Varints are LEB128: 7 bits a byte, low bits first, high bit set on every byte but
//! the last. Bytes after the message are allowed and ignored (room for later versions).

use super::erasure::{CHUNK_LEN, Chunk};

/// The version byte of SPQR v1.
const VERSION_V1: u8 = 1;

/// What one message carries: its epoch's next chunk, an acknowledgement or nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Payload {
    /// Nothing (type 0).
    None,
    /// A chunk of the header and its MAC (type 1).
    Hdr(Chunk),
    /// A chunk of the encapsulation key vector (type 2).
    Ek(Chunk),
    /// A chunk of the encapsulation key vector that also acknowledges ct1 (type 3).
    EkCt1Ack(Chunk),
    /// The acknowledgement that ct1 arrived, with no data (type 4).
    Ct1Ack,
    /// A chunk of the first ciphertext part (type 5).
    Ct1(Chunk),
    /// A chunk of the second ciphertext part and its MAC (type 6).
    Ct2(Chunk),
}

impl Payload {
    /// The type byte and the chunk, if the type has one.
    fn parts(&self) -> (u8, Option<&Chunk>) {
        match self {
            Self::None => (0, None),
            Self::Hdr(c) => (1, Some(c)),
            Self::Ek(c) => (2, Some(c)),
            Self::EkCt1Ack(c) => (3, Some(c)),
            Self::Ct1Ack => (4, None),
            Self::Ct1(c) => (5, Some(c)),
            Self::Ct2(c) => (6, Some(c)),
        }
    }
}

/// One SPQR v1 message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Message {
    /// The sender's SCKA epoch (its key comes from chain epoch `epoch - 1`); at least 1.
    pub(crate) epoch: u64,
    /// The index of this message's key in its chain (0 only before a chain exists).
    pub(crate) index: u32,
    /// What the message carries.
    pub(crate) payload: Payload,
}

/// Why a `pq_ratchet` field was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum SpqrWireError {
    /// The message ends inside a field.
    #[error("SPQR message truncated")]
    Truncated,
    /// A varint is longer than its type allows, or has a redundant zero last byte.
    #[error("SPQR message has a malformed varint")]
    BadVarint,
    /// The epoch is 0, which no sender uses.
    #[error("SPQR message has epoch 0")]
    ZeroEpoch,
    /// The message type byte is above 6.
    #[error("SPQR message type {0} is unknown")]
    UnknownType(u8),
    /// A chunk index is above 65535.
    #[error("SPQR chunk index out of range")]
    ChunkIndex,
}

/// What a received `pq_ratchet` field holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// Version 0: an empty field (or a first byte of 0), from a peer without SPQR.
    V0,
    /// A version 1 message.
    V1(Message),
    /// A version above 1 (first byte >= 2), which this code cannot read.
    Unknown,
}

/// Appends `value` as a LEB128 varint (minimal, at most 10 bytes).
fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value & 0x7f) as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads a LEB128 varint of at most `max_bytes` bytes whose value fits `max_bits`,
/// refusing the non-minimal forms no correct encoder writes.
fn take_varint(bytes: &mut &[u8], max_bits: u32) -> Result<u64, SpqrWireError> {
    let mut value: u64 = 0;
    let mut shift: u32 = 0;
    loop {
        let (&byte, rest) = bytes.split_first().ok_or(SpqrWireError::Truncated)?;
        *bytes = rest;
        let bits = u64::from(byte & 0x7f);
        // The bits this byte adds must stay below max_bits (this also bounds the
        // length: 10 bytes for u64, 5 for u32).
        if shift >= max_bits || (shift + 7 > max_bits && bits >> (max_bits - shift) != 0) {
            return Err(SpqrWireError::BadVarint);
        }
        value |= bits << shift;
        if byte & 0x80 == 0 {
            // A zero last byte after others is a redundant, non-minimal encoding.
            if byte == 0 && shift > 0 {
                return Err(SpqrWireError::BadVarint);
            }
            return Ok(value);
        }
        shift += 7;
    }
}

fn take_chunk(bytes: &mut &[u8]) -> Result<Chunk, SpqrWireError> {
    let index = take_varint(bytes, 64)?;
    let index = u16::try_from(index).map_err(|_| SpqrWireError::ChunkIndex)?;
    let (data, rest) = bytes
        .split_first_chunk::<CHUNK_LEN>()
        .ok_or(SpqrWireError::Truncated)?;
    *bytes = rest;
    Ok(Chunk { index, data: *data })
}

impl Message {
    /// The message's bytes: 4 (without a chunk) or 37 (with one) for small numbers, at
    /// most 17 and 52.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let (ty, chunk) = self.payload.parts();
        let mut out = Vec::with_capacity(40);
        out.push(VERSION_V1);
        put_varint(&mut out, self.epoch);
        put_varint(&mut out, u64::from(self.index));
        out.push(ty);
        if let Some(chunk) = chunk {
            put_varint(&mut out, u64::from(chunk.index));
            out.extend_from_slice(&chunk.data);
        }
        out
    }
}

/// Reads a received `pq_ratchet` field (empty when the field was absent).
pub(crate) fn decode(bytes: &[u8]) -> Result<Decoded, SpqrWireError> {
    let Some((&version, mut rest)) = bytes.split_first() else {
        return Ok(Decoded::V0);
    };
    match version {
        0 => return Ok(Decoded::V0),
        VERSION_V1 => {}
        _ => return Ok(Decoded::Unknown),
    }
    let epoch = take_varint(&mut rest, 64)?;
    if epoch == 0 {
        return Err(SpqrWireError::ZeroEpoch);
    }
    let index = take_varint(&mut rest, 32)?;
    let index = u32::try_from(index).map_err(|_| SpqrWireError::BadVarint)?;
    let (&ty, mut rest) = rest.split_first().ok_or(SpqrWireError::Truncated)?;
    let payload = match ty {
        0 => Payload::None,
        1 => Payload::Hdr(take_chunk(&mut rest)?),
        2 => Payload::Ek(take_chunk(&mut rest)?),
        3 => Payload::EkCt1Ack(take_chunk(&mut rest)?),
        4 => Payload::Ct1Ack,
        5 => Payload::Ct1(take_chunk(&mut rest)?),
        6 => Payload::Ct2(take_chunk(&mut rest)?),
        other => return Err(SpqrWireError::UnknownType(other)),
    };
    Ok(Decoded::V1(Message {
        epoch,
        index,
        payload,
    }))
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
