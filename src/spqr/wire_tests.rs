//! Tests of the SPQR message encoding.

use super::*;
use proptest::prelude::*;

fn chunk(index: u16, fill: u8) -> Chunk {
    Chunk {
        index,
        data: [fill; CHUNK_LEN],
    }
}

fn every_payload(c: &Chunk) -> Vec<Payload> {
    vec![
        Payload::None,
        Payload::Hdr(c.clone()),
        Payload::Ek(c.clone()),
        Payload::EkCt1Ack(c.clone()),
        Payload::Ct1Ack,
        Payload::Ct1(c.clone()),
        Payload::Ct2(c.clone()),
    ]
}

fn v1(bytes: &[u8]) -> Message {
    match decode(bytes).unwrap() {
        Decoded::V1(m) => m,
        other => panic!("not V1: {other:?}"),
    }
}

#[test]
fn varint_vector() {
    // From spqr's own serialization test: 0x012C is AC 02.
    let mut out = Vec::new();
    put_varint(&mut out, 0x012C);
    assert_eq!(out, [0xAC, 0x02]);
    let mut input: &[u8] = &[0xAC, 0x02, 0xFF];
    assert_eq!(take_varint(&mut input, 64).unwrap(), 0x012C);
    assert_eq!(input, [0xFF]);
}

#[test]
fn varint_limits() {
    for value in [
        0,
        1,
        127,
        128,
        16_383,
        16_384,
        u64::from(u32::MAX),
        u64::MAX,
    ] {
        let mut out = Vec::new();
        put_varint(&mut out, value);
        let mut input = out.as_slice();
        assert_eq!(take_varint(&mut input, 64).unwrap(), value);
        assert!(input.is_empty());
    }
    let mut out = Vec::new();
    put_varint(&mut out, u64::MAX);
    assert_eq!(out.len(), 10);
    assert_eq!(out[9], 0x01);
    // An 11th byte, a 10th byte above 1, and a 6th byte or too large a u32 are refused.
    let eleven = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x81, 0x00,
    ];
    assert_eq!(
        take_varint(&mut &eleven[..], 64),
        Err(SpqrWireError::BadVarint)
    );
    let ten = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
    assert_eq!(
        take_varint(&mut &ten[..], 64),
        Err(SpqrWireError::BadVarint)
    );
    let u32_max = [0xff, 0xff, 0xff, 0xff, 0x0f];
    assert_eq!(take_varint(&mut &u32_max[..], 32), Ok(u64::from(u32::MAX)));
    let u32_over = [0xff, 0xff, 0xff, 0xff, 0x1f];
    assert_eq!(
        take_varint(&mut &u32_over[..], 32),
        Err(SpqrWireError::BadVarint)
    );
    let u32_six = [0x80, 0x80, 0x80, 0x80, 0x80, 0x00];
    assert_eq!(
        take_varint(&mut &u32_six[..], 32),
        Err(SpqrWireError::BadVarint)
    );
    // Non-minimal: a redundant zero last byte.
    assert_eq!(
        take_varint(&mut &[0x81, 0x00][..], 64),
        Err(SpqrWireError::BadVarint)
    );
    assert_eq!(
        take_varint(&mut &[0x80, 0x00][..], 64),
        Err(SpqrWireError::BadVarint)
    );
    assert_eq!(take_varint(&mut &[0x00][..], 64), Ok(0));
    assert_eq!(
        take_varint(&mut &[0x80][..], 64),
        Err(SpqrWireError::Truncated)
    );
    assert_eq!(take_varint(&mut &[][..], 64), Err(SpqrWireError::Truncated));
}

#[test]
fn round_trip_every_type() {
    let c = chunk(300, 0x5a);
    for payload in every_payload(&c) {
        for (epoch, index) in [(1, 0), (2, 1), (127, 127), (128, 128), (u64::MAX, u32::MAX)] {
            let m = Message {
                epoch,
                index,
                payload: payload.clone(),
            };
            let bytes = m.encode();
            assert_eq!(bytes[0], 0x01);
            assert_eq!(v1(&bytes), m);
        }
    }
}

#[test]
fn exact_bytes_and_sizes() {
    let m = Message {
        epoch: 3,
        index: 5,
        payload: Payload::Ct1(chunk(7, 0xee)),
    };
    let bytes = m.encode();
    assert_eq!(bytes.len(), 37);
    assert_eq!(bytes[..5], [0x01, 0x03, 0x05, 0x05, 0x07]);
    assert_eq!(bytes[5..], [0xee; 32]);

    let none = Message {
        epoch: 1,
        index: 0,
        payload: Payload::None,
    };
    assert_eq!(none.encode(), [0x01, 0x01, 0x00, 0x00]);
    let ack = Message {
        epoch: 1,
        index: 9,
        payload: Payload::Ct1Ack,
    };
    assert_eq!(ack.encode(), [0x01, 0x01, 0x09, 0x04]);

    // The largest realistic message: 2-byte epoch and index, 3-byte chunk index.
    let big = Message {
        epoch: 200,
        index: 20_000,
        payload: Payload::Ek(chunk(u16::MAX, 1)),
    };
    let bytes = big.encode();
    assert_eq!(bytes.len(), 1 + 2 + 3 + 1 + 3 + 32);
    assert_eq!(bytes[6..10], [0x02, 0xff, 0xff, 0x03]);
}

#[test]
fn versions() {
    assert_eq!(decode(&[]), Ok(Decoded::V0));
    assert_eq!(decode(&[0x00, 0x01, 0x02]), Ok(Decoded::V0));
    for first in [2u8, 3, 0x80, 0xff] {
        assert_eq!(decode(&[first]), Ok(Decoded::Unknown));
        assert_eq!(decode(&[first, 0xff, 0xff]), Ok(Decoded::Unknown));
    }
}

#[test]
fn trailing_bytes_are_ignored() {
    let m = Message {
        epoch: 4,
        index: 2,
        payload: Payload::Hdr(chunk(1, 9)),
    };
    let mut bytes = m.encode();
    bytes.extend_from_slice(&[0xff, 0x00, 0x12]);
    assert_eq!(v1(&bytes), m);
    let mut none = Message {
        epoch: 4,
        index: 2,
        payload: Payload::None,
    }
    .encode();
    // Whatever follows a None is not a chunk.
    none.extend_from_slice(&[0x01; 33]);
    assert_eq!(v1(&none).payload, Payload::None);
}

#[test]
fn refusals() {
    use SpqrWireError::*;
    // Truncated anywhere.
    let full = Message {
        epoch: 300,
        index: 70_000,
        payload: Payload::Ct2(chunk(200, 3)),
    }
    .encode();
    for cut in 1..full.len() {
        assert_eq!(decode(&full[..cut]), Err(Truncated), "cut at {cut}");
    }
    assert!(decode(&full).is_ok());
    // Epoch 0.
    assert_eq!(decode(&[0x01, 0x00, 0x00, 0x00]), Err(ZeroEpoch));
    // Unknown type.
    for ty in [7u8, 8, 0x80, 0xff] {
        assert_eq!(decode(&[0x01, 0x01, 0x00, ty]), Err(UnknownType(ty)));
    }
    // Chunk index 65536 (80 80 04) and beyond.
    let mut over = vec![0x01, 0x01, 0x01, 0x05, 0x80, 0x80, 0x04];
    over.extend_from_slice(&[0; 32]);
    assert_eq!(decode(&over), Err(ChunkIndex));
    over[4..7].copy_from_slice(&[0xff, 0xff, 0x03]);
    assert!(decode(&over).is_ok());
    // Key index above u32::MAX, and a 6-byte key index.
    assert_eq!(
        decode(&[0x01, 0x01, 0x80, 0x80, 0x80, 0x80, 0x10, 0x00]),
        Err(BadVarint)
    );
    assert_eq!(
        decode(&[0x01, 0x01, 0x81, 0x80, 0x80, 0x80, 0x80, 0x00, 0x00]),
        Err(BadVarint)
    );
    // Non-minimal epoch and chunk index.
    assert_eq!(decode(&[0x01, 0x81, 0x00, 0x00, 0x00]), Err(BadVarint));
    let mut nonmin = vec![0x01, 0x01, 0x01, 0x05, 0x85, 0x00];
    nonmin.extend_from_slice(&[0; 32]);
    assert_eq!(decode(&nonmin), Err(BadVarint));
}

fn any_chunk() -> impl Strategy<Value = Chunk> {
    (any::<u16>(), any::<[u8; 32]>()).prop_map(|(index, data)| Chunk { index, data })
}

fn any_message() -> impl Strategy<Value = Message> {
    let payload = prop_oneof![
        Just(Payload::None),
        any_chunk().prop_map(Payload::Hdr),
        any_chunk().prop_map(Payload::Ek),
        any_chunk().prop_map(Payload::EkCt1Ack),
        Just(Payload::Ct1Ack),
        any_chunk().prop_map(Payload::Ct1),
        any_chunk().prop_map(Payload::Ct2),
    ];
    (1..=u64::MAX, any::<u32>(), payload).prop_map(|(epoch, index, payload)| Message {
        epoch,
        index,
        payload,
    })
}

proptest! {
    #[test]
    fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode(&bytes);
        let mut v1 = vec![0x01];
        v1.extend_from_slice(&bytes);
        if let Ok(Decoded::V1(m)) = decode(&v1) {
            // Whatever decodes re-encodes to a prefix of its input.
            let again = m.encode();
            prop_assert_eq!(&v1[..again.len()], again.as_slice());
        }
    }

    #[test]
    fn decode_inverts_encode(m in any_message(), tail in prop::collection::vec(any::<u8>(), 0..8)) {
        let mut bytes = m.encode();
        prop_assert_eq!(decode(&bytes), Ok(Decoded::V1(m.clone())));
        bytes.extend_from_slice(&tail);
        prop_assert_eq!(decode(&bytes), Ok(Decoded::V1(m)));
    }
}
