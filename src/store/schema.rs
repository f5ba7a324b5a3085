//! The one description of the persistent stores' tables: their columns, keys and
//! indexes, and the schema version each appeared in. It drives both backends' DDL and
//! every statement the shared store logic runs (and so `verify`), each rendered in the
//! backend's SQL dialect here and nowhere else.

use super::rows::RowKey;

mod kyber;

/// A column's type.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    /// Text.
    Text,
    /// An integer (a device or prekey id, milliseconds).
    Int,
    /// Bytes.
    Blob,
}

/// One column.
pub(crate) struct Column {
    pub(crate) name: &'static str,
    pub(crate) ty: Ty,
    pub(crate) nullable: bool,
}

const fn col(name: &'static str, ty: Ty) -> Column {
    Column {
        name,
        ty,
        nullable: false,
    }
}

const fn nullable(name: &'static str, ty: Ty) -> Column {
    Column {
        name,
        ty,
        nullable: true,
    }
}

/// One table: its key columns, its other columns, then the sealed value `v`.
pub(crate) struct Table {
    /// The name (PostgreSQL prefixes it with `confide_`); also the sealing domain of its
    /// values.
    pub(crate) name: &'static str,
    /// The primary key (PostgreSQL puts `owner` before it).
    pub(crate) key: &'static [Column],
    /// Columns between the key and the value.
    pub(crate) extra: &'static [Column],
    /// Whether `v` may be NULL (an acknowledged message keeps no plaintext).
    pub(crate) value_nullable: bool,
    /// How `verify` rebuilds a row's sealing key from its key columns.
    pub(crate) row_key: RowKey,
    /// A partial index on a nullable column: (index name, column).
    pub(crate) index: Option<(&'static str, &'static str)>,
    /// A row `verify` skips: its `k` (SQLite's unsealed open counter).
    pub(crate) unsealed: Option<&'static str>,
    /// The schema version that added the table, in SQLite and in PostgreSQL.
    pub(crate) since: [u32; 2],
}

/// The tables, by their place in [`TABLES`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum T {
    Meta,
    Identity,
    PreKey,
    SignedPreKey,
    Session,
    Message,
    State,
    SenderKey,
    Integrity,
    KyberPreKey,
    KyberPreKeyUse,
}

impl T {
    /// Every table, in order. A table's place is its tag in the integrity tree's
    /// records, so new tables go at the end.
    pub(crate) const ALL: [T; 11] = [
        T::Meta,
        T::Identity,
        T::PreKey,
        T::SignedPreKey,
        T::Session,
        T::Message,
        T::State,
        T::SenderKey,
        T::Integrity,
        T::KyberPreKey,
        T::KyberPreKeyUse,
    ];

    /// The table's description.
    pub(crate) fn table(self) -> &'static Table {
        &TABLES[self as usize]
    }

    /// The table whose place in [`TABLES`] is `tag`.
    pub(crate) fn from_tag(tag: u8) -> Option<Self> {
        Self::ALL.get(usize::from(tag)).copied()
    }

    /// Whether the integrity head records this table's row versions: every table but
    /// the head itself (a message's version is that of its sealed metadata `m`).
    pub(crate) fn tracked(self) -> bool {
        self != T::Integrity
    }
}

const ADDRESS: &[Column] = &[col("name", Ty::Text), col("device", Ty::Int)];
const ID: &[Column] = &[col("id", Ty::Int)];

/// A table of key columns and a sealed value, added in schema version `since`
/// (SQLite, PostgreSQL).
const fn table(
    name: &'static str,
    key: &'static [Column],
    row_key: RowKey,
    since: [u32; 2],
) -> Table {
    Table {
        name,
        key,
        extra: &[],
        value_nullable: false,
        row_key,
        index: None,
        unsealed: None,
        since,
    }
}

/// Every table, in [`T`] order.
pub(crate) const TABLES: [Table; 11] = [
    Table {
        unsealed: Some("generation"),
        ..table("meta", &[col("k", Ty::Text)], RowKey::Meta, [1, 1])
    },
    table("identity", ADDRESS, RowKey::Address, [1, 1]),
    table("pre_key", ID, RowKey::Id, [1, 1]),
    table("signed_pre_key", ID, RowKey::Id, [1, 1]),
    table("session", ADDRESS, RowKey::Address, [1, 1]),
    Table {
        extra: &[col("received_at", Ty::Int), nullable("expires_at", Ty::Int)],
        value_nullable: true,
        index: Some(("message_expiry", "expires_at")),
        ..table(
            "message",
            &[
                col("name", Ty::Text),
                col("device", Ty::Int),
                col("id", Ty::Blob),
            ],
            RowKey::Message,
            [1, 1],
        )
    },
    table(
        "state",
        &[col("kind", Ty::Text), col("k", Ty::Text)],
        RowKey::State,
        [1, 1],
    ),
    // Sender keys of groups: SQLite's second schema version, in PostgreSQL's first.
    table(
        "sender_key",
        &[
            col("name", Ty::Text),
            col("device", Ty::Int),
            col("distribution", Ty::Blob),
        ],
        RowKey::SenderKey,
        [2, 1],
    ),
    // The integrity head (id 0) and its buckets: SQLite's third schema version,
    // PostgreSQL's second.
    table("integrity", ID, RowKey::Id, [3, 2]),
    // Kyber prekeys (protocol v4): SQLite's fourth schema version, PostgreSQL's third.
    // The last-resort flag is sealed with the record, so it cannot be flipped unseen.
    table("kyber_pre_key", ID, RowKey::Id, [4, 3]),
    // The recorded uses of last-resort Kyber prekeys: the Kyber prekey's id, then an
    // HMAC of the use (signed prekey id and base key), so no base key shows.
    table(
        "kyber_pre_key_use",
        &[col("kyber_id", Ty::Int), col("idx", Ty::Blob)],
        RowKey::KyberUse,
        [4, 3],
    ),
];

/// Columns added to a table after it was created: (table, column, schema versions).
pub(crate) const ADDED: [(T, Column, [u32; 2]); 1] = [
    // A message's sealed metadata (receive time, expiry, acknowledged), so the plain
    // columns purge and indexes use cannot be changed unseen.
    (T::Message, nullable("m", Ty::Blob), [3, 2]),
];

/// The SQL dialect of a backend.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// SQLite: one device per file, `?N` parameters.
    Sqlite,
    /// PostgreSQL: an `owner` column (the device) first in every key, `$N` parameters.
    Postgres,
}

/// How a value is written: replacing any row, or only where there is none.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Write {
    /// Insert or replace.
    Upsert,
    /// Insert unless a row with the key exists (then nothing changes).
    IfAbsent,
}

impl Dialect {
    fn index(self) -> usize {
        match self {
            Self::Sqlite => 0,
            Self::Postgres => 1,
        }
    }

    /// The schema version this dialect's newest table needs.
    #[cfg(test)]
    pub(crate) fn schema_version(self) -> u32 {
        TABLES
            .iter()
            .map(|t| t.since[self.index()])
            .chain(ADDED.iter().map(|a| a.2[self.index()]))
            .max()
            .unwrap_or(0)
    }

    /// The table's name in this dialect.
    pub(crate) fn name(self, t: &Table) -> String {
        match self {
            Self::Sqlite => t.name.to_owned(),
            Self::Postgres => format!("confide_{}", t.name),
        }
    }

    fn ty(self, ty: Ty) -> &'static str {
        match (self, ty) {
            (_, Ty::Text) => "TEXT",
            (Self::Sqlite, Ty::Int) => "INTEGER",
            (Self::Postgres, Ty::Int) => "BIGINT",
            (Self::Sqlite, Ty::Blob) => "BLOB",
            (Self::Postgres, Ty::Blob) => "BYTEA",
        }
    }

    /// Parameter `i` (1-based).
    fn param(self, i: usize) -> String {
        match self {
            Self::Sqlite => format!("?{i}"),
            Self::Postgres => format!("${i}"),
        }
    }

    /// The key columns, with `owner` first in PostgreSQL.
    fn key_columns(self, t: &Table) -> Vec<&'static str> {
        let owner = (self == Self::Postgres).then_some("owner");
        owner
            .into_iter()
            .chain(t.key.iter().map(|c| c.name))
            .collect()
    }

    /// `a = ?1 AND b = ?2 ...` over the key columns, parameters from 1.
    fn key_match(self, t: &Table) -> String {
        self.key_columns(t)
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c} = {}", self.param(i + 1)))
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    /// How many parameters the key takes (the owner included).
    pub(crate) fn key_len(self, t: &Table) -> usize {
        self.key_columns(t).len()
    }

    /// The DDL of every table (and its index) added in schema version `version`, and
    /// for PostgreSQL's first version the sequence its opens draw generations from.
    pub(crate) fn migration(self, version: u32) -> String {
        let mut sql = String::new();
        if self == Self::Postgres && version == 1 {
            sql.push_str("CREATE SEQUENCE confide_generation;\n");
        }
        for t in TABLES.iter().filter(|t| t.since[self.index()] == version) {
            sql.push_str(&self.create(t));
        }
        for (t, c, _) in ADDED.iter().filter(|a| a.2[self.index()] == version) {
            let null = if c.nullable { "" } else { " NOT NULL" };
            sql.push_str(&format!(
                "ALTER TABLE {} ADD COLUMN {} {}{null};\n",
                self.name(t.table()),
                c.name,
                self.ty(c.ty)
            ));
        }
        sql
    }

    fn create(self, t: &Table) -> String {
        let name = self.name(t);
        let mut cols: Vec<String> = Vec::new();
        if self == Self::Postgres {
            cols.push("owner TEXT NOT NULL".to_owned());
        }
        let v = Column {
            name: "v",
            ty: Ty::Blob,
            nullable: t.value_nullable,
        };
        for c in t.key.iter().chain(t.extra).chain([&v]) {
            let null = if c.nullable { "" } else { " NOT NULL" };
            cols.push(format!("{} {}{null}", c.name, self.ty(c.ty)));
        }
        let key = self.key_columns(t).join(", ");
        // SQLite: a single integer key is the rowid; other tables keep no rowid.
        let rowid = self == Self::Sqlite && t.key.len() == 1 && t.key[0].ty == Ty::Int;
        let tail = if self == Self::Sqlite && !rowid {
            " WITHOUT ROWID"
        } else {
            ""
        };
        let mut sql = format!(
            "CREATE TABLE {name} ({}, PRIMARY KEY ({key})){tail};\n",
            cols.join(", ")
        );
        if let Some((index, column)) = t.index {
            let on = match self {
                Self::Sqlite => column.to_owned(),
                Self::Postgres => format!("owner, {column}"),
            };
            let index = match self {
                Self::Sqlite => index.to_owned(),
                Self::Postgres => format!("confide_{index}"),
            };
            sql.push_str(&format!(
                "CREATE INDEX {index} ON {name} ({on}) WHERE {column} IS NOT NULL;\n"
            ));
        }
        sql
    }

    /// `SELECT <columns> FROM t WHERE <key>`.
    pub(crate) fn select(self, t: &Table, columns: &str) -> String {
        format!(
            "SELECT {columns} FROM {} WHERE {}",
            self.name(t),
            self.key_match(t)
        )
    }

    /// `SELECT v`, the sealed value.
    pub(crate) fn select_value(self, t: &Table) -> String {
        self.select(t, "v")
    }

    /// Writes the key columns and `v` (the last parameter).
    pub(crate) fn write(self, t: &Table, how: Write) -> String {
        self.insert(t, &["v"], how)
    }

    /// Inserts the key columns and `columns` (parameters in that order).
    pub(crate) fn insert(self, t: &Table, columns: &[&str], how: Write) -> String {
        let mut all = self.key_columns(t);
        let key = all.join(", ");
        all.extend_from_slice(columns);
        let params: Vec<String> = (1..=all.len()).map(|i| self.param(i)).collect();
        let (verb, tail) = match (self, how) {
            (Self::Sqlite, Write::Upsert) => ("INSERT OR REPLACE", String::new()),
            (Self::Sqlite, Write::IfAbsent) => ("INSERT OR IGNORE", String::new()),
            (Self::Postgres, Write::Upsert) => (
                "INSERT",
                format!(" ON CONFLICT ({key}) DO UPDATE SET v = EXCLUDED.v"),
            ),
            (Self::Postgres, Write::IfAbsent) => ("INSERT", " ON CONFLICT DO NOTHING".to_owned()),
        };
        format!(
            "{verb} INTO {} ({}) VALUES ({}){tail}",
            self.name(t),
            all.join(", "),
            params.join(", ")
        )
    }

    /// Replaces `v` (the parameter after the key) only while the sealed value still
    /// starts with the expected nonce (the last parameter): a compare-and-swap.
    pub(crate) fn swap(self, t: &Table) -> String {
        let n = self.key_len(t);
        let prefix = self.nonce_prefix();
        format!(
            "UPDATE {} SET v = {} WHERE {} AND {prefix} = {}",
            self.name(t),
            self.param(n + 1),
            self.key_match(t),
            self.param(n + 2)
        )
    }

    /// Deletes the row with the key.
    pub(crate) fn delete(self, t: &Table) -> String {
        format!("DELETE FROM {} WHERE {}", self.name(t), self.key_match(t))
    }

    /// The messages expired at the first parameter after the owner, and the
    /// acknowledged ones received before the second: their key columns and the columns
    /// their sealed metadata covers, so the purge deletes only rows whose metadata
    /// agrees.
    pub(crate) fn purge(self) -> String {
        let t = T::Message.table();
        let (owner, n) = match self {
            Self::Sqlite => (String::new(), 0),
            Self::Postgres => ("owner = $1 AND ".to_owned(), 1),
        };
        format!(
            "SELECT name, device, id, received_at, expires_at, v, m FROM {}
             WHERE {owner}((expires_at IS NOT NULL AND expires_at <= {})
                 OR (v IS NULL AND received_at < {}))",
            self.name(t),
            self.param(n + 1),
            self.param(n + 2)
        )
    }

    /// A leaf and its directory (ids the first two parameters after the owner) and the
    /// head, in one statement.
    pub(crate) fn path_only(self) -> String {
        let before = match self {
            Self::Sqlite => 0,
            Self::Postgres => 1,
        };
        format!("SELECT {}", self.path_at(before))
    }

    /// The row of `t` with the key (its `v`, NULL if absent), the leaf and the
    /// directory whose ids are the two parameters after the key, and the head, in one
    /// statement (one snapshot).
    pub(crate) fn checked(self, t: &Table) -> String {
        format!("SELECT ({}), {}", self.select_value(t), self.path(t))
    }

    /// The leaf, directory and head subqueries of a checked read of `t`.
    fn path(self, t: &Table) -> String {
        self.path_at(self.key_len(t))
    }

    /// The leaf, directory and head subqueries, the ids after the first `n` parameters.
    fn path_at(self, n: usize) -> String {
        format!(
            "({}), ({}), ({})",
            self.integrity_where(&self.param(n + 1)),
            self.integrity_where(&self.param(n + 2)),
            self.integrity_where("0")
        )
    }

    fn integrity_where(self, id: &str) -> String {
        let name = self.name(T::Integrity.table());
        match self {
            Self::Sqlite => format!("SELECT v FROM {name} WHERE id = {id}"),
            Self::Postgres => format!("SELECT v FROM {name} WHERE owner = $1 AND id = {id}"),
        }
    }

    /// One integrity row by id (the first parameter after the owner); in PostgreSQL the
    /// head is read `FOR UPDATE`, so a device's writers take their turns (SQLite's
    /// `BEGIN IMMEDIATE` already orders them).
    pub(crate) fn integrity_row(self, lock: bool) -> String {
        let sql = self.integrity_where(&self.param(self.key_len(T::Integrity.table())));
        match (self, lock) {
            (Self::Postgres, true) => format!("{sql} FOR UPDATE"),
            _ => sql,
        }
    }

    /// Replaces `column` (the parameter after the key) and the sealed metadata `m`
    /// (the next) of a message, only while `m` is still the value read (the last): a
    /// compare-and-swap on the metadata.
    pub(crate) fn update_message(self, column: &str) -> String {
        let t = T::Message.table();
        let n = self.key_len(t);
        format!(
            "UPDATE {} SET {column} = {}, m = {} WHERE {} AND m = {}",
            self.name(t),
            self.param(n + 1),
            self.param(n + 2),
            self.key_match(t),
            self.param(n + 3)
        )
    }

    /// Sets a message's `v` and `m` (the parameters after the key).
    pub(crate) fn reseal_message(self) -> String {
        let t = T::Message.table();
        let n = self.key_len(t);
        format!(
            "UPDATE {} SET v = {}, m = {} WHERE {}",
            self.name(t),
            self.param(n + 1),
            self.param(n + 2),
            self.key_match(t)
        )
    }

    /// How many rows the device has in `meta` (but its key check) and `session`:
    /// a device without a key check must have none.
    pub(crate) fn count_rows(self) -> String {
        let (meta, session) = (self.name(T::Meta.table()), self.name(T::Session.table()));
        match self {
            Self::Sqlite => format!(
                "SELECT (SELECT count(*) FROM {meta} WHERE k NOT IN ('key_check', 'generation'))
                      + (SELECT count(*) FROM {session})"
            ),
            Self::Postgres => format!(
                "SELECT (SELECT count(*) FROM {meta} WHERE owner = $1 AND k <> 'key_check')
                      + (SELECT count(*) FROM {session} WHERE owner = $1)"
            ),
        }
    }

    /// Every row of `t` (of the owner, in PostgreSQL) that `verify` opens: the columns
    /// [`scan_columns`] lists.
    pub(crate) fn scan(self, t: &Table) -> String {
        let cols: Vec<&str> = scan_columns(t).iter().map(|c| c.0).collect();
        let mut filter: Vec<String> = Vec::new();
        if self == Self::Postgres {
            filter.push("owner = $1".to_owned());
        }
        if let Some(k) = t.unsealed {
            filter.push(format!("k <> '{k}'"));
        }
        let filter = if filter.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", filter.join(" AND "))
        };
        format!("SELECT {} FROM {}{filter}", cols.join(", "), self.name(t))
    }
}

/// The columns `verify` (and a migration) reads of each row of `t`, with their types:
/// the key, the other columns, `v`, then the columns added later.
pub(crate) fn scan_columns(t: &Table) -> Vec<(&'static str, Ty)> {
    let added = ADDED
        .iter()
        .filter(|a| a.0.table().name == t.name)
        .map(|a| (a.1.name, a.1.ty));
    t.key
        .iter()
        .chain(t.extra)
        .map(|c| (c.name, c.ty))
        .chain([("v", Ty::Blob)])
        .chain(added)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::Dialect;

    /// Each store's schema version is the newest its tables need.
    #[test]
    fn schema_versions_match_the_tables() {
        #[cfg(feature = "sqlite")]
        assert_eq!(
            Dialect::Sqlite.schema_version(),
            crate::store::sqlite::SCHEMA_VERSION
        );
        #[cfg(feature = "postgres")]
        assert_eq!(
            Dialect::Postgres.schema_version(),
            crate::store::postgres::SCHEMA_VERSION
        );
    }

    /// The DDL the description renders is the schema the first releases wrote.
    #[test]
    fn ddl_matches_the_released_schemas() {
        let sqlite = Dialect::Sqlite.migration(1);
        assert!(sqlite.contains(
            "CREATE TABLE pre_key (id INTEGER NOT NULL, v BLOB NOT NULL, PRIMARY KEY (id));"
        ));
        assert!(sqlite.contains(
            "CREATE INDEX message_expiry ON message (expires_at) WHERE expires_at IS NOT NULL;"
        ));
        assert!(!sqlite.contains("sender_key"));
        assert!(Dialect::Sqlite.migration(2).starts_with(
            "CREATE TABLE sender_key (name TEXT NOT NULL, device INTEGER NOT NULL, \
             distribution BLOB NOT NULL, v BLOB NOT NULL, \
             PRIMARY KEY (name, device, distribution)) WITHOUT ROWID;"
        ));
        let pg = Dialect::Postgres.migration(1);
        assert!(pg.starts_with("CREATE SEQUENCE confide_generation;"));
        assert!(pg.contains(
            "CREATE TABLE confide_message (owner TEXT NOT NULL, name TEXT NOT NULL, \
             device BIGINT NOT NULL, id BYTEA NOT NULL, received_at BIGINT NOT NULL, \
             expires_at BIGINT, v BYTEA, PRIMARY KEY (owner, name, device, id));"
        ));
        assert!(pg.contains("confide_sender_key"));
        // The integrity head and the messages' sealed metadata: SQLite 3, PostgreSQL 2.
        assert_eq!(
            Dialect::Sqlite.migration(3),
            "CREATE TABLE integrity (id INTEGER NOT NULL, v BLOB NOT NULL, PRIMARY KEY (id));\n\
             ALTER TABLE message ADD COLUMN m BLOB;\n"
        );
        assert_eq!(
            Dialect::Postgres.migration(2),
            "CREATE TABLE confide_integrity (owner TEXT NOT NULL, id BIGINT NOT NULL, \
             v BYTEA NOT NULL, PRIMARY KEY (owner, id));\n\
             ALTER TABLE confide_message ADD COLUMN m BYTEA;\n"
        );
        // The Kyber prekeys and their uses: SQLite 4, PostgreSQL 3.
        assert_eq!(
            Dialect::Sqlite.migration(4),
            "CREATE TABLE kyber_pre_key (id INTEGER NOT NULL, v BLOB NOT NULL, \
             PRIMARY KEY (id));\n\
             CREATE TABLE kyber_pre_key_use (kyber_id INTEGER NOT NULL, idx BLOB NOT NULL, \
             v BLOB NOT NULL, PRIMARY KEY (kyber_id, idx)) WITHOUT ROWID;\n"
        );
        assert_eq!(
            Dialect::Postgres.migration(3),
            "CREATE TABLE confide_kyber_pre_key (owner TEXT NOT NULL, id BIGINT NOT NULL, \
             v BYTEA NOT NULL, PRIMARY KEY (owner, id));\n\
             CREATE TABLE confide_kyber_pre_key_use (owner TEXT NOT NULL, \
             kyber_id BIGINT NOT NULL, idx BYTEA NOT NULL, v BYTEA NOT NULL, \
             PRIMARY KEY (owner, kyber_id, idx));\n"
        );
        assert!(Dialect::Sqlite.migration(5).is_empty());
        assert!(Dialect::Postgres.migration(4).is_empty());
    }
}
