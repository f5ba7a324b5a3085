//! Media attachments: the deployed WhatsApp-style scheme, byte for byte.
//!
//! A sender picks a random 32-byte [`MediaKey`] per file, encrypts the file, uploads the
//! result to a blob store and sends the key, the hashes and a pointer inside an ordinary
//! end-to-end encrypted message. The scheme:
//!
//! 1. HKDF-SHA256 (salt: 32 zero bytes, info: the [`MediaKind`]'s string) expands the
//!    media key to 112 bytes: IV `[0:16]`, cipher key `[16:48]`, MAC key `[48:80]`,
//!    ref key `[80:112]` ([`ExpandedMediaKey`]).
//! 2. AES-256-CBC with PKCS#7 padding encrypts the file.
//! 3. `HMAC-SHA256(macKey, iv ‖ ciphertext)`, truncated to 10 bytes ([`MAC_LEN`]), is
//!    appended: the upload is `ciphertext ‖ mac`.
//! 4. The message carries `FileSHA256` (of the plaintext), `FileEncSHA256` (of the
//!    upload) and `FileLength` (of the plaintext): [`EncryptedMedia`].
//!
//! Four ways in, all producing the same bytes:
//! - in memory: [`encrypt_bytes`] / [`decrypt_bytes`];
//! - push-style chunks (`&[u8]` in, [`bytes::Bytes`] out): [`Encryptor`] / [`Decryptor`];
//! - `std::io::Read` → `Write`: [`encrypt_stream`] / [`decrypt_stream`];
//! - files: [`encrypt_file`] / [`decrypt_file`].
//!
//! Streaming work is done in chunks (256 KiB by default) in constant memory. Inputs
//! longer than one chunk move the hashes (and, encrypting, the HMAC) to a scoped helper
//! thread, so on two cores a stream is not slower than AES-CBC + HMAC on one
//! ([`StreamOptions`]). The push-style types stay on the caller's thread.
//!
//! Decryption always checks the MAC, which authenticates the upload under the media
//! key, and computes each SHA-256 only when [`Expected`] asks to check it: each is one
//! more full pass over the data. Decryption checking the MAC alone runs at about the
//! speed of HMAC + AES-CBC decryption on one core; checking the upload hash as well
//! costs that extra pass (or the helper thread).
//!
//! # How a streaming receiver is protected
//!
//! The MAC ends the upload, so one-pass decryption meets the ciphertext before it can
//! know it is authentic. confide never lets that plaintext pass as final:
//! - [`decrypt_bytes`] checks the MAC and expected upload hash before decrypting at all.
//! - [`Decryptor::update`] and [`decrypt_stream`] release plaintext marked unverified;
//!   only [`Decryptor::finish`] / the `Ok` of `decrypt_stream` says it is good, after
//!   the MAC (first, in constant time), the padding, and the expected upload hash,
//!   plaintext hash and length are all checked. They hold back the last block (the last
//!   chunk, for `decrypt_stream`) until then, so a file shorter than one chunk never
//!   leaves unverified.
//! - [`decrypt_file`] writes to a temporary file and renames it into place only after
//!   all checks; on failure nothing exists at the output path.
//! - [`verify`] checks MAC and upload hash without decrypting, for callers that want two
//!   passes over a seekable source.
//!
//! ```
//! use confide::media::{self, Expected, MediaKey, MediaKind};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut rng = confide::SystemRng::new();
//! let key = MediaKey::generate(&mut rng);
//! let (upload, info) = media::encrypt_bytes(&key, MediaKind::Document, b"quarterly.pdf bytes");
//!
//! // The receiver gets `key` and `info` in the message and fetches `upload`.
//! let expected = Expected::from(&info);
//! let (plain, checked) = media::decrypt_bytes(&key, MediaKind::Document, &upload, expected)?;
//! assert_eq!(plain, b"quarterly.pdf bytes");
//! assert_eq!(checked.file_sha256, Some(info.file_sha256));
//!
//! // The wrong kind derives different keys, so the MAC fails.
//! assert!(media::decrypt_bytes(&key, MediaKind::Image, &upload, Expected::none()).is_err());
//! # Ok(()) }
//! ```

mod decrypt;
mod encrypt;
mod engine;
mod error;
mod hashes;
mod key;
mod kind;
mod stream;
mod verify;

pub use decrypt::{DecryptedMedia, Decryptor, Expected, decrypt_bytes};
pub use encrypt::{EncryptedMedia, Encryptor, encrypt_bytes, encrypted_len};
pub use engine::MAC_LEN;
pub use error::{MediaDecryptError, MediaEncryptError, MediaKeyError, MediaKindError};
pub use key::{ExpandedMediaKey, MEDIA_KEY_LEN, MediaKey};
pub use kind::MediaKind;
pub use stream::{StreamOptions, decrypt_file, decrypt_stream, encrypt_file, encrypt_stream};
pub use verify::verify;
