//! The Signal Protocol message version a session state speaks, as a value: each state
//! carries its own, so a record can hold states of different versions once a second
//! version exists.

/// A protocol version this release speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ProtocolVersion {
    /// Signal Protocol v3: X3DH over Curve25519, the Double Ratchet, `0x33` messages.
    V3,
    /// Signal Protocol v4: PQXDH (X3DH plus a Kyber1024 encapsulation) and the Double
    /// Ratchet with SPQR's post-quantum salt, `0x44` messages.
    V4,
}

impl ProtocolVersion {
    /// Every version this release speaks, oldest first.
    pub const ALL: [Self; 2] = [Self::V3, Self::V4];

    /// The version number (`3` or `4`), as `storage.proto` keeps it in `session_version`.
    pub const fn number(self) -> u8 {
        match self {
            Self::V3 => 3,
            Self::V4 => 4,
        }
    }

    /// The first byte of every message: this version in both nibbles (`0x33`, `0x44`).
    pub const fn version_byte(self) -> u8 {
        let n = self.number();
        (n << 4) | n
    }

    /// The version a message's first byte names, if this release speaks it. Both
    /// nibbles must agree: a relabelled byte is refused, not read as its high nibble
    /// (libsignal reads only the high nibble; confide is stricter).
    pub fn from_version_byte(byte: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.version_byte() == byte)
    }

    /// The version a stored state's `session_version` names, if this release speaks it.
    pub fn from_number(number: u32) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|v| u32::from(v.number()) == number)
    }

    /// The HKDF info of the handshake's key derivation.
    pub(crate) const fn handshake_label(self) -> &'static [u8] {
        match self {
            Self::V3 => b"WhisperText",
            Self::V4 => b"WhisperText_X25519_SHA-256_CRYSTALS-KYBER-1024",
        }
    }
}

impl std::fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "v{}", self.number())
    }
}

/// Which protocol versions a device speaks in sessions it starts and accepts. Existing
/// sessions keep the version they began with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Versions {
    /// v4 only (the default for new apps, and what libsignal 0.103 speaks): bundles
    /// without a Kyber prekey are refused, and so are v3 prekey messages.
    #[default]
    V4Only,
    /// v4 whenever a bundle carries a Kyber prekey, v3 otherwise; both are accepted.
    V3AndV4,
    /// v3 only, for peers without Kyber prekeys: a bundle's Kyber prekey is ignored, v4
    /// prekey messages are refused, and the device publishes no Kyber prekeys.
    V3Only,
}

impl Versions {
    /// Whether sessions of `version` may be started or accepted.
    pub const fn allows(self, version: ProtocolVersion) -> bool {
        matches!(
            (self, version),
            (Self::V4Only | Self::V3AndV4, ProtocolVersion::V4)
                | (Self::V3AndV4 | Self::V3Only, ProtocolVersion::V3)
        )
    }
}
