//! A ZIP writer for stored (uncompressed) entries: all the report needs, and readable
//! by every ZIP tool.

use super::report::ReportError;
use crate::Timestamp;
use crate::policy::calendar_civil;

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), bit by bit: the files are
/// small, so no table.
pub(crate) fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// MS-DOS (time, date) in UTC; dates before 1980 become 1980-01-01.
fn dos_time(t: Timestamp) -> (u16, u16) {
    let (y, mo, d, h, mi, s) = calendar_civil(t);
    if y < 1980 {
        return (0, (1 << 5) | 1);
    }
    let y = u16::try_from((y - 1980).min(127)).unwrap_or(127);
    let narrow = |v: u32| u16::try_from(v).unwrap_or(0);
    let time = (narrow(h) << 11) | (narrow(mi) << 5) | narrow(s / 2);
    let date = (y << 9) | (narrow(mo) << 5) | narrow(d);
    (time, date)
}

/// Writes `files` (name, bytes) as a ZIP archive with stored entries.
pub(crate) fn write_zip(
    files: &[(&str, &[u8])],
    modified: Timestamp,
) -> Result<Vec<u8>, ReportError> {
    let (time, date) = dos_time(modified);
    let u32_of = |n: usize| u32::try_from(n).map_err(|_| ReportError::TooLarge);
    let u16_of = |n: usize| u16::try_from(n).map_err(|_| ReportError::TooLarge);
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in files {
        let offset = u32_of(out.len())?;
        let crc = crc32(data);
        let size = u32_of(data.len())?;
        let name_len = u16_of(name.len())?;
        // Local file header.
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&10u16.to_le_bytes()); // version needed: 1.0
        out.extend_from_slice(&0x0800u16.to_le_bytes()); // flags: UTF-8 names
        out.extend_from_slice(&0u16.to_le_bytes()); // method: stored
        out.extend_from_slice(&time.to_le_bytes());
        out.extend_from_slice(&date.to_le_bytes());
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        // Central directory record.
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&((3u16 << 8) | 20).to_le_bytes()); // made by: Unix, 2.0
        central.extend_from_slice(&10u16.to_le_bytes());
        central.extend_from_slice(&0x0800u16.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&time.to_le_bytes());
        central.extend_from_slice(&date.to_le_bytes());
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&name_len.to_le_bytes());
        central.extend_from_slice(&[0u8; 8]); // extra, comment, disk, internal attributes
        central.extend_from_slice(&(0o100_644u32 << 16).to_le_bytes()); // rw-r--r-- file
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let cd_offset = u32_of(out.len())?;
    let cd_size = u32_of(central.len())?;
    let count = u16_of(files.len())?;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0u8; 4]); // this disk, disk with the directory
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_known_answers() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(
            crc32(b"The quick brown fox jumps over the lazy dog"),
            0x414F_A339
        );
    }

    #[test]
    fn dos_times() {
        let t = crate::policy::utc_date(2021, 5, 15).unwrap();
        let (time, date) = dos_time(Timestamp::from_millis(
            t.as_millis() + 13 * 3_600_000 + 7 * 60_000 + 9_000,
        ));
        assert_eq!(time, (13 << 11) | (7 << 5) | 4);
        assert_eq!(date, (41 << 9) | (5 << 5) | 15);
        assert_eq!(dos_time(Timestamp::from_millis(0)), (0, 33));
    }
}
