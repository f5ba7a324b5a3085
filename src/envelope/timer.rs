//! The disappearing-messages timer of a chat or a message.

use std::num::NonZeroU32;
use std::time::Duration;

use super::error::TimerError;

/// How long a message lives before it disappears, or off.
///
/// confide offers WhatsApp's three durations ([`Self::HOURS_24`], [`Self::DAYS_7`],
/// [`Self::DAYS_90`]). Received values may be any whole number of seconds up to
/// [`Self::MAX_SECS`] (90 days): a later version's new preset still parses, and nothing
/// is kept longer than the longest preset allows.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DisappearingTimer(Option<NonZeroU32>);

const DAY: u32 = 24 * 60 * 60;

impl DisappearingTimer {
    /// Messages stay until deleted by hand.
    pub const OFF: Self = Self(None);
    /// 24 hours.
    pub const HOURS_24: Self = Self(NonZeroU32::new(DAY));
    /// 7 days (the only duration in 2020, still the usual one).
    pub const DAYS_7: Self = Self(NonZeroU32::new(7 * DAY));
    /// 90 days.
    pub const DAYS_90: Self = Self(NonZeroU32::new(90 * DAY));
    /// The longest timer accepted, in seconds (90 days).
    pub const MAX_SECS: u32 = 90 * DAY;
    /// The durations a sender offers, shortest first.
    pub const PRESETS: [Self; 3] = [Self::HOURS_24, Self::DAYS_7, Self::DAYS_90];

    /// The timer for a wire value: 0 is off, 1..=[`Self::MAX_SECS`] seconds otherwise.
    pub fn from_secs(seconds: u32) -> Result<Self, TimerError> {
        if seconds > Self::MAX_SECS {
            return Err(TimerError::TooLong { seconds });
        }
        Ok(Self(NonZeroU32::new(seconds)))
    }

    /// The wire value: seconds, 0 when off.
    pub fn as_secs(self) -> u32 {
        self.0.map_or(0, NonZeroU32::get)
    }

    /// The lifetime, `None` when off.
    pub fn duration(self) -> Option<Duration> {
        self.0.map(|s| Duration::from_secs(u64::from(s.get())))
    }

    /// Whether messages disappear at all.
    pub fn is_on(self) -> bool {
        self.0.is_some()
    }

    /// Whether this is one of [`Self::PRESETS`] (or off), as opposed to a custom value
    /// received from a peer.
    pub fn is_preset(self) -> bool {
        !self.is_on() || Self::PRESETS.contains(&self)
    }

    pub(crate) fn as_millis(self) -> Option<u64> {
        self.0.map(|s| u64::from(s.get()) * 1000)
    }
}

impl std::fmt::Debug for DisappearingTimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            None => f.write_str("DisappearingTimer(off)"),
            Some(s) => write!(f, "DisappearingTimer({s} s)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_values() {
        assert_eq!(DisappearingTimer::from_secs(0), Ok(DisappearingTimer::OFF));
        assert_eq!(
            DisappearingTimer::from_secs(604_800),
            Ok(DisappearingTimer::DAYS_7)
        );
        assert_eq!(DisappearingTimer::DAYS_90.as_secs(), 7_776_000);
        assert_eq!(
            DisappearingTimer::from_secs(7_776_001),
            Err(TimerError::TooLong { seconds: 7_776_001 })
        );
        let custom = DisappearingTimer::from_secs(3600).unwrap();
        assert!(custom.is_on() && !custom.is_preset());
        assert!(DisappearingTimer::OFF.is_preset());
        assert_eq!(DisappearingTimer::HOURS_24.as_millis(), Some(86_400_000));
        assert_eq!(
            format!("{:?}", DisappearingTimer::OFF),
            "DisappearingTimer(off)"
        );
        assert_eq!(format!("{custom:?}"), "DisappearingTimer(3600 s)");
    }
}
