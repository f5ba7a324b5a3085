//! Arithmetic in GF(2^16) with SPQR's reduction polynomial x^16 + x^12 + x^3 + x + 1
//! (0x1100B): the field the erasure code's lanes live in. Addition is XOR.

/// The reduction polynomial, bit 16 included.
const POLY: u32 = 0x1_100B;

/// The product of `a` and `b`: a carry-less multiply, then reduction by [`POLY`]. No
/// branches or tables on the operands, so it runs in the same time for every input.
pub(crate) const fn mul(a: u16, b: u16) -> u16 {
    let a = a as u32;
    let b = b as u32;
    let mut product: u32 = 0;
    let mut bit = 0;
    while bit < 16 {
        product ^= (a << bit) & 0u32.wrapping_sub((b >> bit) & 1);
        bit += 1;
    }
    // Clear bits 30..=16 from the top down; each XOR of POLY << (bit - 16) clears bit
    // `bit` and touches only the bits below it.
    let mut bit = 30;
    while bit >= 16 {
        product ^= (POLY << (bit - 16)) & 0u32.wrapping_sub((product >> bit) & 1);
        bit -= 1;
    }
    product as u16
}

/// The inverse of `a`: a^(2^16 - 2), by square and multiply. 0 maps to 0, which callers
/// never ask for (every divisor in the code is a difference of distinct points).
pub(crate) const fn inv(a: u16) -> u16 {
    // 2^16 - 2 = 0b1111_1111_1111_1110: the product of a^(2^i) for i = 1..=15.
    let mut square = a;
    let mut out: u16 = 1;
    let mut i = 1;
    while i < 16 {
        square = mul(square, square);
        out = mul(out, square);
        i += 1;
    }
    out
}

/// Replaces every element of `values` by its inverse with one field inversion
/// (Montgomery's trick). Every element must be nonzero.
pub(crate) fn batch_inv(values: &mut [u16]) {
    let mut prefix = Vec::with_capacity(values.len());
    let mut acc: u16 = 1;
    for &v in values.iter() {
        prefix.push(acc);
        acc = mul(acc, v);
    }
    let mut inv_acc = inv(acc);
    for (v, before) in values.iter_mut().zip(prefix).rev() {
        let inverse = mul(inv_acc, before);
        inv_acc = mul(inv_acc, *v);
        *v = inverse;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A second multiply written the other way round (shift-and-add, reducing after
    /// every doubling), so the two only agree if both are right.
    fn slow_mul(mut a: u16, mut b: u16) -> u16 {
        let mut out: u16 = 0;
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

    #[test]
    fn mul_matches_shift_and_add() {
        let mut x: u32 = 0x1234_5678;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let (a, b) = ((x >> 16) as u16, x as u16);
            assert_eq!(mul(a, b), slow_mul(a, b), "{a:04x} * {b:04x}");
        }
        for a in [0u16, 1, 2, 0x8000, 0xffff] {
            for b in [0u16, 1, 2, 0x8000, 0xffff] {
                assert_eq!(mul(a, b), slow_mul(a, b));
            }
        }
    }

    #[test]
    fn known_products() {
        // x^15 * x = x^16 = x^12 + x^3 + x + 1.
        assert_eq!(mul(0x8000, 2), 0x100B);
        assert_eq!(mul(0, 0xffff), 0);
        assert_eq!(mul(1, 0xbeef), 0xbeef);
        // (x+1)^2 = x^2 + 1 in characteristic 2.
        assert_eq!(mul(3, 3), 5);
    }

    #[test]
    fn every_nonzero_element_has_its_inverse() {
        for a in 1..=u16::MAX {
            assert_eq!(mul(a, inv(a)), 1, "{a:04x}");
        }
        assert_eq!(inv(0), 0);
    }

    #[test]
    fn batch_inverse_matches_single() {
        let mut values: Vec<u16> = (1..200).map(|i| (i as u16).wrapping_mul(331)).collect();
        let expected: Vec<u16> = values.iter().map(|&v| inv(v)).collect();
        batch_inv(&mut values);
        assert_eq!(values, expected);
        let mut empty: [u16; 0] = [];
        batch_inv(&mut empty);
    }
}
