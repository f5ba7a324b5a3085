//! Padding before encryption (scheme and overhead in the [module docs](super)).

use zeroize::Zeroizing;

use super::error::PaddingError;

/// The padding step in bytes: padded content is always a positive multiple of it.
pub const PADDING_BLOCK: usize = 160;

const MARKER: u8 = 0x80;

/// The padded length for `len` bytes of content: the next multiple of
/// [`PADDING_BLOCK`] strictly above `len`.
pub fn padded_len(len: usize) -> usize {
    (len / PADDING_BLOCK + 1).saturating_mul(PADDING_BLOCK)
}

/// `content ‖ 0x80 ‖ 0x00…` up to [`padded_len`]. Zeroized on drop, since content
/// holds media keys.
pub fn pad(content: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(padded_len(content.len())));
    out.extend_from_slice(content);
    out.push(MARKER);
    out.resize(padded_len(content.len()), 0);
    out
}

/// The content inside `padded`, refusing any padding [`pad`] would not have written.
pub fn unpad(padded: &[u8]) -> Result<&[u8], PaddingError> {
    let len = padded.len();
    if len == 0 || len % PADDING_BLOCK != 0 {
        return Err(PaddingError::BadLength { len });
    }
    let marker_at = padded
        .iter()
        .rposition(|&b| b != 0)
        .ok_or(PaddingError::NoMarker)?;
    if padded[marker_at] != MARKER {
        return Err(PaddingError::NoMarker);
    }
    let found = len - marker_at;
    if found > PADDING_BLOCK {
        return Err(PaddingError::TooLong { found });
    }
    Ok(&padded[..marker_at])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_step_by_whole_blocks() {
        assert_eq!(padded_len(0), 160);
        assert_eq!(padded_len(159), 160);
        assert_eq!(padded_len(160), 320);
        assert_eq!(padded_len(usize::MAX), usize::MAX);
    }

    #[test]
    fn marker_alone_in_a_zero_block_is_refused() {
        let mut p = vec![0u8; 320];
        p[0] = MARKER;
        assert_eq!(unpad(&p), Err(PaddingError::TooLong { found: 320 }));
        p[0] = 0;
        p[159] = MARKER;
        assert_eq!(unpad(&p), Err(PaddingError::TooLong { found: 161 }));
        p[160] = MARKER;
        assert_eq!(unpad(&p).map(<[u8]>::len), Ok(160));
    }
}
