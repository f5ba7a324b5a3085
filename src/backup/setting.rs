//! The user's backup setting and what the device remembers about its backups, part of
//! the typed privacy model and of the account-information report.

use super::BackupStamp;
use crate::Timestamp;

/// How the user backs up, as they chose it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BackupSetting {
    /// No backups (the default): nothing leaves the device.
    #[default]
    Off,
    /// End-to-end encrypted under a key the user keeps as 64 digits.
    DigitKey,
    /// End-to-end encrypted under a key kept in a password vault (OPAQUE).
    PasswordVault,
}

impl BackupSetting {
    /// The name the account report uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::DigitKey => "64_digit_key",
            Self::PasswordVault => "password_vault",
        }
    }

    /// The setting with this report name.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Off, Self::DigitKey, Self::PasswordVault]
            .into_iter()
            .find(|s| s.as_str() == name)
    }

    fn code(self) -> u8 {
        match self {
            Self::Off => 0,
            Self::DigitKey => 1,
            Self::PasswordVault => 2,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        [Self::Off, Self::DigitKey, Self::PasswordVault]
            .into_iter()
            .find(|s| s.code() == c)
    }
}

/// A restore this device was made from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestoreRecord {
    /// When the restore ran.
    pub restored_at: Timestamp,
    /// When the backup was written.
    pub backup_created_at: Timestamp,
    /// Which backup it was.
    pub stamp: BackupStamp,
    /// The consent ledger's head hash as the backup carried it: the ledger restored
    /// exactly (the report shows both, so anyone can check they match).
    pub consent_ledger_head: [u8; 32],
    /// Whether the backup carried a legacy opt-out (then honoured here too).
    pub legacy_opt_out: bool,
}

/// What the device keeps about backups (state row `backup.status`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackupStatus {
    /// The user's setting.
    pub setting: BackupSetting,
    /// The last backup written (its generation is the device's counter).
    pub last_backup: Option<(Timestamp, BackupStamp)>,
    /// The generation the next backup gets is one more than this.
    pub generation: u64,
    /// The restore the device was made from, if any.
    pub restored: Option<RestoreRecord>,
}

const STATUS_VERSION: u8 = 1;

impl BackupStatus {
    /// Version byte, setting, generation, then the two optional parts each behind a
    /// presence byte.
    pub(crate) fn to_bytes(self) -> Vec<u8> {
        let mut out = vec![STATUS_VERSION, self.setting.code()];
        out.extend_from_slice(&self.generation.to_be_bytes());
        match &self.last_backup {
            Some((at, stamp)) => {
                out.push(1);
                out.extend_from_slice(&at.as_millis().to_be_bytes());
                out.extend_from_slice(&stamp.to_bytes());
            }
            None => out.push(0),
        }
        match &self.restored {
            Some(r) => {
                out.push(1);
                out.extend_from_slice(&r.restored_at.as_millis().to_be_bytes());
                out.extend_from_slice(&r.backup_created_at.as_millis().to_be_bytes());
                out.extend_from_slice(&r.stamp.to_bytes());
                out.extend_from_slice(&r.consent_ledger_head);
                out.push(u8::from(r.legacy_opt_out));
            }
            None => out.push(0),
        }
        out
    }

    /// The inverse of `to_bytes`; `None` for anything else.
    pub(crate) fn from_bytes(b: &[u8]) -> Option<Self> {
        let mut r = Cursor(b);
        if r.u8()? != STATUS_VERSION {
            return None;
        }
        let setting = BackupSetting::from_code(r.u8()?)?;
        let generation = r.u64()?;
        let last_backup = match r.u8()? {
            0 => None,
            1 => Some((Timestamp::from_millis(r.u64()?), r.stamp()?)),
            _ => return None,
        };
        let restored = match r.u8()? {
            0 => None,
            1 => Some(RestoreRecord {
                restored_at: Timestamp::from_millis(r.u64()?),
                backup_created_at: Timestamp::from_millis(r.u64()?),
                stamp: r.stamp()?,
                consent_ledger_head: r.take(32)?.try_into().ok()?,
                legacy_opt_out: match r.u8()? {
                    0 => false,
                    1 => true,
                    _ => return None,
                },
            }),
            _ => return None,
        };
        r.0.is_empty().then_some(Self {
            setting,
            last_backup,
            generation,
            restored,
        })
    }
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    fn stamp(&mut self) -> Option<BackupStamp> {
        BackupStamp::from_bytes(self.take(BackupStamp::LEN)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_status_round_trip() {
        for s in [
            BackupSetting::Off,
            BackupSetting::DigitKey,
            BackupSetting::PasswordVault,
        ] {
            assert_eq!(BackupSetting::from_name(s.as_str()), Some(s));
        }
        let stamp = BackupStamp {
            generation: 4,
            digest: [9; 32],
        };
        let status = BackupStatus {
            setting: BackupSetting::PasswordVault,
            last_backup: Some((Timestamp::from_millis(77), stamp)),
            generation: 4,
            restored: Some(RestoreRecord {
                restored_at: Timestamp::from_millis(1),
                backup_created_at: Timestamp::from_millis(2),
                stamp,
                consent_ledger_head: [3; 32],
                legacy_opt_out: true,
            }),
        };
        let b = status.to_bytes();
        assert_eq!(BackupStatus::from_bytes(&b), Some(status));
        for cut in 0..b.len() {
            assert_eq!(BackupStatus::from_bytes(&b[..cut]), None);
        }
        assert_eq!(
            BackupStatus::from_bytes(&BackupStatus::default().to_bytes()),
            Some(BackupStatus::default())
        );
    }
}
