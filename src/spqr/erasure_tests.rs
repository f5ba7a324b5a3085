//! Tests of the erasure code, against a slow independent reference.

use super::*;
use proptest::prelude::*;

/// SPQR v1's payload sizes: hdr+MAC, ek, ct1, ct2+MAC.
const SIZES: [usize; 4] = [96, 1152, 960, 160];

fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(37).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect()
}

/// Reference: GF(2^16) multiply by shift-and-add, reducing after every doubling.
fn ref_mul(mut a: u16, mut b: u16) -> u16 {
    let mut out = 0;
    while b != 0 {
        if b & 1 == 1 {
            out ^= a;
        }
        let carry = a & 0x8000 != 0;
        a <<= 1;
        if carry {
            a ^= 0x100B;
        }
        b >>= 1;
    }
    out
}

fn ref_inv(a: u16) -> u16 {
    let mut out = 1;
    let mut base = a;
    let mut e: u32 = 65534;
    while e > 0 {
        if e & 1 == 1 {
            out = ref_mul(out, base);
        }
        base = ref_mul(base, base);
        e >>= 1;
    }
    out
}

/// Reference: the coefficients of each lane's polynomial by Gaussian elimination on the
/// Vandermonde system at x = 0..N-1, then chunk k by Horner's rule.
fn ref_chunk(payload: &[u8], k: u16) -> [u8; 32] {
    let n = payload.len() / 32;
    let mut out = [0u8; 32];
    for lane in 0..16 {
        let ys: Vec<u16> = (0..n)
            .map(|x| {
                u16::from_be_bytes([payload[x * 32 + lane * 2], payload[x * 32 + lane * 2 + 1]])
            })
            .collect();
        // Rows [1, x, x^2, ..., x^(n-1) | y].
        let mut m: Vec<Vec<u16>> = (0..n)
            .map(|x| {
                let mut row = Vec::with_capacity(n + 1);
                let mut p = 1u16;
                for _ in 0..n {
                    row.push(p);
                    p = ref_mul(p, x as u16);
                }
                row.push(ys[x]);
                row
            })
            .collect();
        for col in 0..n {
            let pivot = (col..n).find(|&r| m[r][col] != 0).unwrap();
            m.swap(col, pivot);
            let inv = ref_inv(m[col][col]);
            for v in m[col].iter_mut() {
                *v = ref_mul(*v, inv);
            }
            for r in 0..n {
                if r != col && m[r][col] != 0 {
                    let f = m[r][col];
                    let pivot_row = m[col].clone();
                    for (v, p) in m[r].iter_mut().zip(pivot_row) {
                        *v ^= ref_mul(f, p);
                    }
                }
            }
        }
        let coeffs: Vec<u16> = m.iter().map(|row| row[n]).collect();
        let value = coeffs
            .iter()
            .rev()
            .fold(0u16, |acc, &c| ref_mul(acc, k) ^ c);
        out[lane * 2..lane * 2 + 2].copy_from_slice(&value.to_be_bytes());
    }
    out
}

#[test]
fn refuses_bad_lengths() {
    for len in [0, 1, 31, 33, 100, MAX_PAYLOAD_LEN + 32] {
        assert_eq!(
            Encoder::new(&vec![0; len]).unwrap_err(),
            ErasureError::BadLength { len }
        );
        assert_eq!(
            Decoder::new(len).unwrap_err(),
            ErasureError::BadLength { len }
        );
    }
    assert!(Encoder::new(&[0; MAX_PAYLOAD_LEN]).is_ok());
    assert!(Decoder::new(32).is_ok());
}

#[test]
fn systematic_chunks_are_the_payload() {
    for len in SIZES {
        let p = payload(len, 1);
        let mut enc = Encoder::new(&p).unwrap();
        for (k, row) in p.chunks(32).enumerate() {
            let c = enc.next_chunk();
            assert_eq!(usize::from(c.index), k);
            assert_eq!(c.data, row);
        }
        assert_eq!(enc.next_index(), (len / 32) as u16);
        assert_eq!(enc.payload(), p.as_slice());
    }
}

#[test]
fn parity_matches_the_vandermonde_reference() {
    for len in [96, 160, 960] {
        let p = payload(len, 7);
        let enc = Encoder::new(&p).unwrap();
        let n = (len / 32) as u16;
        for k in [0, n - 1, n, n + 1, 2 * n + 3, 1000, 0x8000, u16::MAX] {
            assert_eq!(enc.chunk(k).data, ref_chunk(&p, k), "len {len} chunk {k}");
        }
    }
}

#[test]
fn pinned_parity_bytes() {
    // Parity chunks of fixed payloads, computed by this code and checked against
    // `ref_chunk`; pinned so that any change to the field, the lane layout or the
    // evaluation points fails.
    let cases: [(usize, u16, &str); 3] = [
        (
            96,
            3,
            "eb9035da7fa449ee9338dd02a74cf1963b6005aa4ff4993e6308ad52f79cc166",
        ),
        (
            96,
            u16::MAX,
            "a3e7b4ff09775143c771a5ee2669b9e1446351e35759cd772b7f2c77bfebd9cb",
        ),
        (
            160,
            77,
            "0a39d1e74e7a83851960eaf44371103f3c5d8ff2859f136682a1496f16350b0d",
        ),
    ];
    for (len, k, expected) in cases {
        let p = payload(len, 11);
        let chunk = Encoder::new(&p).unwrap().chunk(k);
        assert_eq!(chunk.data, ref_chunk(&p, k));
        assert_eq!(hex::encode(chunk.data), expected, "len {len} chunk {k}");
    }
}

#[test]
fn round_trip_every_size_from_parity_only() {
    for len in SIZES {
        let p = payload(len, 3);
        let n = len / 32;
        let mut enc = Encoder::new(&p).unwrap();
        let mut dec = Decoder::new(len).unwrap();
        // Skip every payload chunk: parity only.
        for _ in 0..n {
            enc.next_chunk();
        }
        for i in 0..n {
            assert!(!dec.is_complete());
            assert_eq!(dec.decoded(), None);
            dec.add(&enc.next_chunk());
            assert_eq!(dec.chunks().len(), i + 1);
        }
        assert!(dec.is_complete());
        assert_eq!(dec.decoded().unwrap(), p);
        assert_eq!(dec.len(), len);
    }
}

#[test]
fn round_trip_systematic_in_any_order() {
    for len in SIZES {
        let p = payload(len, 4);
        let n = (len / 32) as u16;
        let enc = Encoder::new(&p).unwrap();
        let mut dec = Decoder::new(len).unwrap();
        for k in (0..n).rev() {
            dec.add(&enc.chunk(k));
        }
        assert_eq!(dec.decoded().unwrap(), p);
    }
}

#[test]
fn mixed_and_high_indices_rebuild() {
    let p = payload(1152, 9);
    let enc = Encoder::new(&p).unwrap();
    let mut dec = Decoder::new(1152).unwrap();
    let indices: Vec<u16> = (0..18)
        .map(|i| i * 2)
        .chain((0..18).map(|i| u16::MAX - i * 101))
        .collect();
    for &k in &indices {
        dec.add(&enc.chunk(k));
    }
    assert_eq!(dec.decoded().unwrap(), p);
}

#[test]
fn duplicates_are_ignored_and_extra_chunks_dropped() {
    let p = payload(160, 5);
    let enc = Encoder::new(&p).unwrap();
    let mut dec = Decoder::new(160).unwrap();
    for k in [7, 7, 9, 7, 9] {
        dec.add(&enc.chunk(k));
    }
    assert_eq!(dec.chunks().len(), 2);
    // A forged duplicate index changes nothing either.
    dec.add(&Chunk {
        index: 7,
        data: [0xff; 32],
    });
    assert_eq!(dec.chunks()[0], enc.chunk(7));
    for k in [1, 100, 2000, 3] {
        dec.add(&enc.chunk(k));
    }
    assert_eq!(dec.chunks().len(), 5);
    assert_eq!(dec.decoded().unwrap(), p);
    dec.add(&enc.chunk(4));
    assert_eq!(dec.chunks().len(), 5);
    assert!(!dec.chunks().iter().any(|c| c.index == 4));
}

#[test]
fn next_chunk_wraps_at_u16() {
    let p = payload(96, 2);
    let mut enc = Encoder::resume(&p, u16::MAX).unwrap();
    assert_eq!(enc.next_chunk().index, u16::MAX);
    let wrapped = enc.next_chunk();
    assert_eq!(wrapped.index, 0);
    assert_eq!(wrapped.data, p[..32]);
    assert_eq!(enc.next_index(), 1);
}

#[test]
fn resume_continues_where_stored() {
    let p = payload(960, 6);
    let mut enc = Encoder::new(&p).unwrap();
    let mut dec = Decoder::new(960).unwrap();
    for _ in 0..50 {
        let c = enc.next_chunk();
        if c.index % 3 != 0 {
            dec.add(&c);
        }
    }
    let mut enc2 = Encoder::resume(enc.payload(), enc.next_index()).unwrap();
    assert_eq!(enc2.next_chunk(), enc.next_chunk());
    let dec2 = Decoder::resume(dec.len(), dec.chunks()).unwrap();
    assert_eq!(dec2.chunks(), dec.chunks());
    assert_eq!(dec2.decoded(), dec.decoded());
    assert_eq!(dec2.decoded().unwrap(), p);

    let c = enc.chunk(5);
    assert_eq!(
        Decoder::resume(960, &[c.clone(), c]).unwrap_err(),
        ErasureError::DuplicateChunk { index: 5 }
    );
    let too_many: Vec<Chunk> = (0..4)
        .map(|k| Encoder::new(&p[..96]).unwrap().chunk(k))
        .collect();
    assert_eq!(
        Decoder::resume(96, &too_many).unwrap_err(),
        ErasureError::TooManyChunks
    );
    assert_eq!(
        Decoder::resume(95, &[]).unwrap_err(),
        ErasureError::BadLength { len: 95 }
    );
}

#[test]
fn debug_shows_no_payload() {
    let enc = Encoder::new(&[0xab; 96]).unwrap();
    let shown = format!("{enc:?} {:?}", Decoder::new(96).unwrap());
    assert!(!shown.contains("171"), "{shown}");
    assert!(!shown.to_lowercase().contains("ab, "), "{shown}");
}

fn size_payload_and_indices() -> impl Strategy<Value = (Vec<u8>, Vec<u16>)> {
    prop::sample::select(SIZES.to_vec()).prop_flat_map(|len| {
        let n = len / 32;
        (
            prop::collection::vec(any::<u8>(), len),
            prop::collection::hash_set(
                prop_oneof![0u16..80, any::<u16>(), (u16::MAX - 40)..=u16::MAX],
                n,
            )
            .prop_map(|s| s.into_iter().collect::<Vec<_>>()),
        )
    })
}

proptest! {
    #[test]
    fn any_n_distinct_indices_rebuild((p, indices) in size_payload_and_indices()) {
        let enc = Encoder::new(&p).unwrap();
        let mut dec = Decoder::new(p.len()).unwrap();
        for &k in &indices {
            prop_assert!(!dec.is_complete());
            dec.add(&enc.chunk(k));
            dec.add(&enc.chunk(k));
        }
        prop_assert_eq!(dec.decoded().unwrap(), p);
    }
}
