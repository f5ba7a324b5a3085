//! The Signal Protocol message version a session state speaks, as a value: each state
//! carries its own, so a record can hold states of different versions once a second
//! version exists.

/// A protocol version this release speaks. Only v3 today; a later version (a
/// post-quantum handshake) is a new variant, not a new code path through constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ProtocolVersion {
    /// Signal Protocol v3: X3DH over Curve25519, the Double Ratchet, `0x33` messages.
    V3,
}

impl ProtocolVersion {
    /// Every version this release speaks, oldest first.
    pub const ALL: [Self; 1] = [Self::V3];

    /// The version number (`3`), as `storage.proto` keeps it in `session_version`.
    pub const fn number(self) -> u8 {
        match self {
            Self::V3 => 3,
        }
    }

    /// The first byte of every message: this version in both nibbles (`0x33`).
    pub const fn version_byte(self) -> u8 {
        let n = self.number();
        (n << 4) | n
    }

    /// The version a message's first byte names, if this release speaks it. Both
    /// nibbles must agree: a relabelled byte is refused, not read as its high nibble.
    pub fn from_version_byte(byte: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.version_byte() == byte)
    }

    /// The version a stored state's `session_version` names, if this release speaks it.
    pub fn from_number(number: u32) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|v| u32::from(v.number()) == number)
    }

    /// The HKDF info of the handshake's key derivation (`"WhisperText"` for v3).
    pub(crate) const fn handshake_label(self) -> &'static [u8] {
        match self {
            Self::V3 => b"WhisperText",
        }
    }
}

impl std::fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "v{}", self.number())
    }
}
