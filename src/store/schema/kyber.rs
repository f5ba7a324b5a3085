//! The statements of [`super::Dialect`] that the Kyber prekey tables need beyond the
//! ones every table has: a delete that is a compare-and-swap (a one-time key consumed
//! only while it is the key the handshake read) and the uses recorded for one key.

use super::{Dialect, T, Table};

impl Dialect {
    /// The first 12 bytes of the sealed value `v`: its nonce, which is its version.
    pub(super) fn nonce_prefix(self) -> &'static str {
        match self {
            Self::Sqlite => "substr(v, 1, 12)",
            Self::Postgres => "substring(v from 1 for 12)",
        }
    }

    /// Deletes the row with the key only while its sealed value still starts with the
    /// expected nonce (the parameter after the key).
    pub(crate) fn delete_at(self, t: &Table) -> String {
        format!(
            "DELETE FROM {} WHERE {} AND {} = {}",
            self.name(t),
            self.key_match(t),
            self.nonce_prefix(),
            self.param(self.key_len(t) + 1)
        )
    }

    /// The row id and sealed value of every use recorded for the Kyber prekey whose id
    /// is the first parameter after the owner.
    pub(crate) fn kyber_uses(self) -> String {
        let t = T::KyberPreKeyUse.table();
        let (owner, n) = match self {
            Self::Sqlite => ("", 0),
            Self::Postgres => ("owner = $1 AND ", 1),
        };
        format!(
            "SELECT idx, v FROM {} WHERE {owner}kyber_id = {}",
            self.name(t),
            self.param(n + 1)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Dialect, T};

    #[test]
    fn kyber_statements_render_in_both_dialects() {
        let t = T::KyberPreKey.table();
        assert_eq!(
            Dialect::Sqlite.delete_at(t),
            "DELETE FROM kyber_pre_key WHERE id = ?1 AND substr(v, 1, 12) = ?2"
        );
        assert_eq!(
            Dialect::Postgres.delete_at(t),
            "DELETE FROM confide_kyber_pre_key WHERE owner = $1 AND id = $2 \
             AND substring(v from 1 for 12) = $3"
        );
        assert_eq!(
            Dialect::Sqlite.kyber_uses(),
            "SELECT idx, v FROM kyber_pre_key_use WHERE kyber_id = ?1"
        );
        assert_eq!(
            Dialect::Postgres.kyber_uses(),
            "SELECT idx, v FROM confide_kyber_pre_key_use WHERE owner = $1 AND kyber_id = $2"
        );
    }
}
