//! What the store-driven 1:1 ([`crate::session::cipher`]) and group
//! ([`crate::group::cipher`]) operations share: the decrypt result and the one
//! compare-and-swap retry loop.

use zeroize::Zeroizing;

use crate::error::StoreError;
use crate::store::MessageId;

/// How often an operation is redone after a compare-and-swap conflict before it gives up
/// with [`StoreError::Contention`].
pub(crate) const MAX_COMMIT_ATTEMPTS: usize = 64;

/// A decrypted message. `Debug` shows the plaintext's length, not its bytes.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Decrypted {
    /// The plaintext.
    pub plaintext: Zeroizing<Vec<u8>>,
    /// The id the store keeps the message under: pass it to the store's `acknowledge`
    /// once the app has saved the plaintext.
    pub id: MessageId,
    /// `true` when this exact message was decrypted before and the plaintext comes from
    /// the store (a redelivery, typically after a crash before the app saved it): show
    /// it only if the app does not have it yet.
    pub redelivered: bool,
}

impl Decrypted {
    /// A first delivery of message `id`.
    pub(crate) fn fresh(plaintext: Zeroizing<Vec<u8>>, id: MessageId) -> Self {
        Self {
            plaintext,
            id,
            redelivered: false,
        }
    }

    /// The stored plaintext of an earlier delivery of message `id`.
    pub(crate) fn redelivery(plaintext: Zeroizing<Vec<u8>>, id: MessageId) -> Self {
        Self {
            plaintext,
            id,
            redelivered: true,
        }
    }
}

impl std::fmt::Debug for Decrypted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decrypted")
            .field(
                "plaintext",
                &format_args!("<{} bytes>", self.plaintext.len()),
            )
            .field("redelivered", &self.redelivered)
            .finish()
    }
}

/// Runs `attempt` (load, change a copy, commit with compare-and-swap) until it returns
/// `Some`: `None` means another operation won the race and the attempt must be redone
/// from the winner's state. After [`MAX_COMMIT_ATTEMPTS`] lost races it gives up with
/// [`StoreError::Contention`]; an error from `attempt` ends the loop at once.
pub(crate) fn retry<T, E: From<StoreError>>(
    mut attempt: impl FnMut() -> Result<Option<T>, E>,
) -> Result<T, E> {
    for _ in 0..MAX_COMMIT_ATTEMPTS {
        if let Some(out) = attempt()? {
            return Ok(out);
        }
    }
    Err(StoreError::Contention {
        attempts: MAX_COMMIT_ATTEMPTS,
    }
    .into())
}
