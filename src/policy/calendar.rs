//! UTC calendar dates without a date library: enough for schedules, reports and ZIP times.

use crate::Timestamp;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Midnight UTC of a calendar date; `None` for an invalid date or one before 1970.
pub fn utc_date(year: u32, month: u32, day: u32) -> Option<Timestamp> {
    if !(1..=12).contains(&month) || day == 0 {
        return None;
    }
    let y = i64::from(year);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let len = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if day > len {
        return None;
    }
    let days = u64::try_from(days_from_civil(y, month, day)).ok()?;
    Some(Timestamp::from_millis(days.checked_mul(super::DAY_MS)?))
}

/// The broken-down UTC time: (year, month, day, hour, minute, second).
pub(crate) fn civil(t: Timestamp) -> (i64, u32, u32, u32, u32, u32) {
    let secs = t.as_millis() / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = u32::try_from(secs % 86_400).unwrap_or(0);
    let (y, m, d) = civil_from_days(days);
    (y, m, d, rem / 3600, rem / 60 % 60, rem % 60)
}

/// ISO 8601 in UTC to the second, e.g. `2021-05-15T00:00:00Z`.
pub fn format_utc(t: Timestamp) -> String {
    let (y, mo, d, h, mi, s) = civil(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates_round_trip() {
        let t = utc_date(2021, 5, 15).unwrap();
        assert_eq!(t.as_millis(), 1_621_036_800_000);
        assert_eq!(format_utc(t), "2021-05-15T00:00:00Z");
        assert_eq!(
            format_utc(utc_date(2016, 2, 29).unwrap()),
            "2016-02-29T00:00:00Z"
        );
        assert_eq!(utc_date(2021, 2, 29), None);
        assert_eq!(utc_date(2021, 13, 1), None);
        assert_eq!(utc_date(1969, 12, 31), None);
        assert_eq!(
            format_utc(Timestamp::from_millis(1_700_000_000_000)),
            "2023-11-14T22:13:20Z"
        );
    }
}
