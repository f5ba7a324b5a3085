//! A C ABI over confide's [`Device`] API, built as a `cdylib` example
//! (`target/<profile>/examples/libconfide_ffi.so`); `confide.h` declares it.
//!
//! Conventions, for every function:
//! - the return value is a status code (`CONFIDE_OK` or a `CONFIDE_ERR_*`), and
//!   `confide_last_error_message()` then describes the last failure on this thread;
//! - a `ConfideDevice` is an opaque handle, freed with `confide_device_free`; buffers
//!   that confide returns are owned by the caller and freed with `confide_buffer_free`
//!   (which wipes them first, since they may hold plaintext); fixed-size results (the
//!   safety number) go into caller-owned arrays; buffers the caller passes are only read
//!   during the call;
//! - no panic crosses the boundary: every entry point runs under `catch_unwind`, and a
//!   caught panic is returned as `CONFIDE_ERR_PANIC`;
//! - thread safety is stated per function. In short: a device may be shared between
//!   threads; a SQLite-backed device commits every operation, 1:1 and group alike, with
//!   a compare-and-swap on the session or sender-key row, so even calls for the same
//!   remote address or group may overlap, from several handles and processes on one file
//!   too; an in-memory device needs the caller to serialize calls for the same remote
//!   address (each is load, change, save), while its group calls (and the group part of
//!   sealed calls) run one at a time per handle on their own.
//!   `confide_device_free` must not race any call on that device.
//!
//! One handle type serves the whole API: the group (sender-key) calls
//! `confide_device_group_*` and the sealed-sender calls `confide_device_seal_*` /
//! `confide_device_unseal` take the same `ConfideDevice *` as the 1:1 calls, and keep
//! their state in the same store.
//!
//! Time comes from the system clock unless `confide_device_set_time` fixes it;
//! randomness comes from the operating system.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char};
use std::mem::MaybeUninit;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use confide::Decrypted;
use confide::device::{Clock, Device, GroupDistributionError, SealAs, SealFor, SealVersion};
use confide::export::{AccountInfo, MessageTimer, PrivacySettings, Profile, Visibility};
use confide::fingerprint::{Fingerprint, Party};
use confide::group::{DistributionId, Layout, SenderKeyDistributionMessage, SenderKeyMessage};
use confide::keys::PublicKey;
use confide::policy::{PolicySchedule, timeline_2021};
use confide::sealed::{
    ContentType, MultiRecipientMessage, Recipient, SenderCertificate, ServiceId, TrustRoots,
};
use confide::store::{
    DurableStore, InMemoryStore, MessageId, ProtocolStore, SqliteStore, StoreKey,
};
use confide::{
    Address, CiphertextMessage, ErrorCode, IdentityKey, PreKeyBundle, SystemRng, Timestamp,
};

/// Success.
pub const CONFIDE_OK: i32 = 0;
/// A required pointer was null, a string was not UTF-8, or a length or enum value is
/// out of range.
pub const CONFIDE_ERR_INVALID_ARGUMENT: i32 = 1;
/// Bytes that are not a valid message, bundle, key or schedule; or a message that
/// failed authentication.
pub const CONFIDE_ERR_INVALID_MESSAGE: i32 = 2;
/// The message was already decrypted and acknowledged (or the store cannot tell a
/// redelivery).
pub const CONFIDE_ERR_DUPLICATE_MESSAGE: i32 = 3;
/// No session with this address (so no identity to seal to, either).
pub const CONFIDE_ERR_NO_SESSION: i32 = 4;
/// The remote identity key differs from the trusted one (see
/// `confide_device_accept_identity`).
pub const CONFIDE_ERR_UNTRUSTED_IDENTITY: i32 = 5;
/// A bundle's signed prekey signature is invalid.
pub const CONFIDE_ERR_INVALID_SIGNATURE: i32 = 6;
/// A prekey message names a prekey this device does not have.
pub const CONFIDE_ERR_UNKNOWN_PREKEY: i32 = 7;
/// Any other failure (see the message).
pub const CONFIDE_ERR_OTHER: i32 = 8;
/// A bug in confide: a panic was caught at the boundary.
pub const CONFIDE_ERR_PANIC: i32 = 9;
/// The store failed: I/O, a locked or corrupt database, a row that fails
/// authentication.
pub const CONFIDE_ERR_STORAGE: i32 = 10;
/// The database was sealed with another store key.
pub const CONFIDE_ERR_WRONG_KEY: i32 = 11;
/// Nothing is known yet: no trusted identity for that address (for the safety number), or
/// no activity recorded for the account report.
pub const CONFIDE_ERR_NOT_FOUND: i32 = 12;
/// A sender certificate that does not parse, is not this device's (when sealing), or
/// does not validate under the trust root (bad signature, unknown or revoked server
/// key).
pub const CONFIDE_ERR_INVALID_CERTIFICATE: i32 = 13;
/// The sender certificate expired before the receiving device's time: the sender needs
/// a fresh one from its server.
pub const CONFIDE_ERR_CERTIFICATE_EXPIRED: i32 = 14;
/// No sender key: this device has no sending chain in the group yet (see
/// `confide_device_group_distribution`), or never processed the sender's distribution
/// message for the message's chain. Ask the sender to resend its distribution.
pub const CONFIDE_ERR_NO_SENDER_KEY: i32 = 15;
/// A sealed message whose certificate names this very device (an echo of one of its
/// own messages); nothing was decrypted, and the app drops it.
pub const CONFIDE_ERR_SELF_SEND: i32 = 16;

/// A whisper (ordinary) message.
pub const CONFIDE_MESSAGE_TYPE_WHISPER: u8 = 2;
/// A prekey message: the first messages of a session, until the peer answers.
pub const CONFIDE_MESSAGE_TYPE_PREKEY: u8 = 3;
/// A group (sender-key) message; appears as `ConfideUnsealed::content_type`.
pub const CONFIDE_MESSAGE_TYPE_SENDER_KEY: u8 = 7;

/// Sealed sender v1: one recipient device, the envelope names only it.
pub const CONFIDE_SEALED_SENDER_V1: u8 = 1;
/// Sealed sender v2: one multi-recipient message the server splits per recipient (see
/// `confide_sealed_v2_for_recipient`); recipients are named by their UUIDs.
pub const CONFIDE_SEALED_SENDER_V2: u8 = 2;

/// Bytes of the store key `confide_device_open` takes.
pub const CONFIDE_STORE_KEY_LEN: usize = 32;
/// Bytes a serialized identity key has.
pub const CONFIDE_IDENTITY_KEY_LEN: usize = 33;
/// Size of the array `confide_device_safety_number` writes: 60 digits and a NUL.
pub const CONFIDE_SAFETY_NUMBER_SIZE: usize = 61;
/// Bytes of a group's distribution id (a UUID) that the `confide_device_group_*` calls
/// read.
pub const CONFIDE_DISTRIBUTION_ID_LEN: usize = 16;
/// Bytes of a serialized public key (a type byte and 32 key bytes), such as a sealed
/// sender trust root.
pub const CONFIDE_PUBLIC_KEY_LEN: usize = 33;
/// Bytes of a private key given to `confide_test_sender_certificate`.
#[cfg(feature = "ffi-testing")]
pub const CONFIDE_PRIVATE_KEY_LEN: usize = 32;

/// `ConfideAccountInfo` visibility: everyone.
pub const CONFIDE_VISIBILITY_EVERYONE: u8 = 0;
/// `ConfideAccountInfo` visibility: my contacts.
pub const CONFIDE_VISIBILITY_CONTACTS: u8 = 1;
/// `ConfideAccountInfo` visibility: nobody.
pub const CONFIDE_VISIBILITY_NOBODY: u8 = 2;

/// `ConfideAccountInfo` default message timer: off.
pub const CONFIDE_TIMER_OFF: u8 = 0;
/// `ConfideAccountInfo` default message timer: 24 hours.
pub const CONFIDE_TIMER_24_HOURS: u8 = 1;
/// `ConfideAccountInfo` default message timer: 7 days.
pub const CONFIDE_TIMER_7_DAYS: u8 = 2;
/// `ConfideAccountInfo` default message timer: 90 days.
pub const CONFIDE_TIMER_90_DAYS: u8 = 3;

/// The system clock, or a fixed time the caller set (0 means "use the system clock").
struct FfiClock(Arc<AtomicU64>);

impl Clock for FfiClock {
    fn now(&self) -> Timestamp {
        match self.0.load(Ordering::SeqCst) {
            0 => Timestamp::from_system_time(std::time::SystemTime::now()),
            ms => Timestamp::from_millis(ms),
        }
    }
}

/// The `Device` behind every handle, over either store (a SQLite file or memory).
type FfiDevice = Device<Box<dyn ProtocolStore>, SystemRng, FfiClock>;

/// One device of one user: its identity, prekeys, sessions and privacy state, in a
/// SQLite file or in memory. Opaque; free with `confide_device_free`.
pub struct ConfideDevice {
    device: FfiDevice,
    fixed_time: Arc<AtomicU64>,
}

// The per-function "thread-safe" promises rest on this: a handle may move between and
// be shared by threads.
const _: fn() = || {
    fn shared_across_threads<T: Send + Sync>() {}
    shared_across_threads::<ConfideDevice>();
};

/// Bytes returned by confide; free with `confide_buffer_free`.
#[repr(C)]
pub struct ConfideBuffer {
    /// The bytes, or null when `len` is 0.
    pub data: *mut u8,
    /// Their number.
    pub len: usize,
}

/// The account facts confide does not keep itself, for `confide_device_account_report`.
/// Linked devices, groups and business chats are left out of this version of the ABI
/// (the report lists none).
#[repr(C)]
pub struct ConfideAccountInfo {
    /// The registered phone number (NUL-terminated UTF-8).
    pub phone_number: *const c_char,
    /// The profile's display name (NUL-terminated UTF-8).
    pub display_name: *const c_char,
    /// The profile's "About" text (NUL-terminated UTF-8).
    pub about: *const c_char,
    /// Whether a profile photo is set.
    pub has_photo: bool,
    /// Who sees "last seen" (`CONFIDE_VISIBILITY_*`).
    pub last_seen: u8,
    /// Who sees the profile photo (`CONFIDE_VISIBILITY_*`).
    pub profile_photo: u8,
    /// Who sees "About" (`CONFIDE_VISIBILITY_*`).
    pub about_visibility: u8,
    /// Who can add the user to groups (`CONFIDE_VISIBILITY_*`).
    pub groups: u8,
    /// Whether read receipts are sent.
    pub read_receipts: bool,
    /// The default timer for new chats (`CONFIDE_TIMER_*`).
    pub default_message_timer: u8,
}

/// One recipient device of a sealed group message.
#[repr(C)]
pub struct ConfideRecipient {
    /// The recipient's name (NUL-terminated UTF-8); for sealed sender v2, its UUID.
    pub name: *const c_char,
    /// The recipient's device id.
    pub device_id: u32,
}

/// What `confide_device_unseal` found in a sealed message. The fields it sets are owned
/// by the caller: free them all with `confide_unsealed_free`.
#[repr(C)]
pub struct ConfideUnsealed {
    /// The sender's name as its validated certificate states it (its UUID),
    /// NUL-terminated; the address its session and group chains are kept under.
    pub sender_name: *mut c_char,
    /// The sender's device id, from the certificate.
    pub sender_device: u32,
    /// The inner message's kind: `CONFIDE_MESSAGE_TYPE_PREKEY`, `_WHISPER` or
    /// `_SENDER_KEY`.
    pub content_type: u8,
    /// How the sender asks failures to be shown (0 default, 1 resendable, 2 implicit).
    pub content_hint: u32,
    /// The group id the sender attached (empty when none).
    pub group_id: ConfideBuffer,
    /// The decrypted message.
    pub plaintext: ConfideBuffer,
    /// A message (1:1 or group) this SQLite device decrypted before and not yet
    /// acknowledged with `confide_device_acknowledge_sealed` (its plaintext comes from
    /// the store); as for `confide_device_decrypt` and `confide_device_group_decrypt`.
    pub redelivered: bool,
}

thread_local! {
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

struct Failure(i32, String);

fn set_error(message: Option<String>) {
    let c = message.map(|m| CString::new(m.replace('\0', " ")).unwrap_or_default());
    // try_with: during thread teardown there is nowhere to keep the message.
    let _ = LAST_ERROR.try_with(|e| *e.borrow_mut() = c);
}

/// Runs `f`, converting its error or panic into a status code.
fn guard(f: impl FnOnce() -> Result<(), Failure>) -> i32 {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => {
            set_error(None);
            CONFIDE_OK
        }
        Ok(Err(Failure(code, message))) => {
            set_error(Some(message));
            code
        }
        Err(_) => {
            set_error(Some(
                "internal error (panic caught at the C boundary)".into(),
            ));
            CONFIDE_ERR_PANIC
        }
    }
}

/// An error and its sources, joined, so the message says what failed underneath.
fn describe(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = inner.source();
    }
    s
}

fn invalid(what: &str) -> Failure {
    Failure(
        CONFIDE_ERR_INVALID_ARGUMENT,
        format!("invalid argument: {what}"),
    )
}

/// The status code for a failure's stable code (see `confide::ErrorCode`): the one
/// table from the library's codes to this ABI's.
fn status(code: &str) -> i32 {
    match code {
        "InvalidMessage"
        | "InvalidVersion"
        | "WeakKey"
        | "InvalidKey"
        | "WrongDistribution"
        | "WrongLayout"
        | "TooFarAhead"
        | "InvalidSealedSenderMessage"
        | "UnknownSealedSenderVersion" => CONFIDE_ERR_INVALID_MESSAGE,
        "DuplicateMessage" => CONFIDE_ERR_DUPLICATE_MESSAGE,
        "NoSession" => CONFIDE_ERR_NO_SESSION,
        "UntrustedIdentity" => CONFIDE_ERR_UNTRUSTED_IDENTITY,
        "InvalidSignature" => CONFIDE_ERR_INVALID_SIGNATURE,
        "InvalidPreKeyId" | "InvalidSignedPreKeyId" => CONFIDE_ERR_UNKNOWN_PREKEY,
        "Store" => CONFIDE_ERR_STORAGE,
        "WrongKey" => CONFIDE_ERR_WRONG_KEY,
        "NotRegistered" => CONFIDE_ERR_NOT_FOUND,
        "InvalidCertificate" | "CertificateRevoked" => CONFIDE_ERR_INVALID_CERTIFICATE,
        "CertificateExpired" => CONFIDE_ERR_CERTIFICATE_EXPIRED,
        "NoSenderKeyState" => CONFIDE_ERR_NO_SENDER_KEY,
        "SelfSend" => CONFIDE_ERR_SELF_SEND,
        "InvalidArgument" => CONFIDE_ERR_INVALID_ARGUMENT,
        _ => CONFIDE_ERR_OTHER,
    }
}

/// Every library error becomes its status code, with its described message.
impl<E: ErrorCode> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(status(e.code()), describe(&e))
    }
}

/// # Safety
/// `p` is null or points to a live `ConfideDevice`.
unsafe fn device_ref<'a>(p: *const ConfideDevice) -> Result<&'a ConfideDevice, Failure> {
    // SAFETY: the caller guarantees `p` is null or a live handle from confide_device_*.
    unsafe { p.as_ref() }.ok_or_else(|| invalid("device is null"))
}

/// # Safety
/// `p` is null or a NUL-terminated string that outlives `'a`.
unsafe fn string<'a>(p: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if p.is_null() {
        return Err(invalid(what));
    }
    // SAFETY: non-null, and the caller guarantees NUL termination.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| invalid(what))
}

/// # Safety
/// `p` is valid for `len` bytes, or `len` is 0.
unsafe fn bytes<'a>(p: *const u8, len: usize, what: &str) -> Result<&'a [u8], Failure> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(invalid(what));
    }
    // SAFETY: non-null and the caller guarantees `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// # Safety
/// `p` is null or a NUL-terminated string.
unsafe fn address(p: *const c_char, device_id: u32) -> Result<Address, Failure> {
    // SAFETY: forwarded caller guarantee.
    Ok(Address::new(unsafe { string(p, "name") }?, device_id))
}

/// A per-peer call's raw arguments, as C passes them: the handle, the peer's name and
/// device id, and one byte argument with its length.
type PeerBytes = (*const ConfideDevice, *const c_char, u32, *const u8, usize);

/// Decodes `PeerBytes`; `what` names the byte argument in errors.
///
/// # Safety
/// The handle is null or live; the name is null or NUL-terminated; the bytes are valid
/// for their length, or it is 0.
unsafe fn peer_args<'a>(
    (device, name, device_id, p, len): PeerBytes,
    what: &str,
) -> Result<(&'a ConfideDevice, Address, &'a [u8]), Failure> {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        Ok((
            device_ref(device)?,
            address(name, device_id)?,
            bytes(p, len, what)?,
        ))
    }
}

/// A caller's out pointer as a place that safe code can write to; `None` when null.
///
/// # Safety
/// `p` is null or writable, and nothing else reads or writes it during `'a`.
unsafe fn optional_out<'a, T>(p: *mut T) -> Option<&'a mut MaybeUninit<T>> {
    // SAFETY: `MaybeUninit<T>` has `T`'s layout, and the caller guarantees null or
    // writable.
    unsafe { p.cast::<MaybeUninit<T>>().as_mut() }
}

/// As `optional_out`, for an out pointer the call needs: null is refused as `what`.
/// The calls decode it with their other arguments, before any work, so nothing is
/// spent (a prekey, a chain step) on a result that could not be handed back.
///
/// # Safety
/// As `optional_out`.
unsafe fn required_out<'a, T>(p: *mut T, what: &str) -> Result<&'a mut MaybeUninit<T>, Failure> {
    // SAFETY: forwarded caller guarantee.
    unsafe { optional_out(p) }.ok_or_else(|| invalid(what))
}

/// Writes `value` where the caller asked for it (nowhere when it passed null).
fn put_optional<T>(out: Option<&mut MaybeUninit<T>>, value: T) -> Result<(), Failure> {
    if let Some(out) = out {
        out.write(value);
    }
    Ok(())
}

/// Hands `data` to the caller as a buffer of its own (see `new_buffer`).
fn put_buffer(out: &mut MaybeUninit<ConfideBuffer>, data: &[u8]) -> Result<(), Failure> {
    out.write(new_buffer(data));
    Ok(())
}

/// Copies `data` into an exactly-sized allocation (no spare copy left behind by a
/// shrinking reallocation, which matters for plaintext) for the caller.
fn new_buffer(data: &[u8]) -> ConfideBuffer {
    let len = data.len();
    let ptr = if len == 0 {
        std::ptr::null_mut()
    } else {
        Box::into_raw(Box::<[u8]>::from(data)).cast::<u8>()
    };
    ConfideBuffer { data: ptr, len }
}

/// A 1:1 message of `message_type` from its bytes.
fn ciphertext(message_type: u8, raw: &[u8]) -> Result<CiphertextMessage, Failure> {
    CiphertextMessage::from_parts(message_type, raw).map_err(Failure::from)
}

/// A (current-layout) group message from its bytes.
fn group_message(raw: &[u8]) -> Result<SenderKeyMessage, Failure> {
    SenderKeyMessage::parse(raw, Layout::Current).map_err(Failure::from)
}

/// Drops the stored plaintext of the message `id` names from `sender`, and tells
/// whether there was one: a SQLite device keeps each plaintext until acknowledged, an
/// in-memory one none.
fn acknowledge_stored(
    d: &ConfideDevice,
    sender: &Address,
    id: &MessageId,
) -> Result<bool, Failure> {
    Ok(d.device.acknowledge(sender, id)?)
}

/// Runs `call` on decoded `PeerBytes` under `guard`: the frame of the per-peer calls
/// that return nothing.
///
/// # Safety
/// As `peer_args`.
unsafe fn peer_call(
    args: PeerBytes,
    what: &str,
    call: impl FnOnce(&FfiDevice, &Address, &[u8]) -> Result<(), Failure>,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded caller guarantees.
        let (d, remote, raw) = unsafe { peer_args(args, what) }?;
        call(&d.device, &remote, raw)
    })
}

/// The frame of the two decrypt calls: `decrypt` turns the sender's message (the bytes
/// in `args`) into plaintext, which goes to `*out` with the redelivery flag.
///
/// # Safety
/// As `confide_device_decrypt`.
unsafe fn decrypt_with(
    args: PeerBytes,
    out: *mut ConfideBuffer,
    out_redelivered: *mut bool,
    decrypt: impl FnOnce(&FfiDevice, &Address, &[u8]) -> Result<Decrypted, Failure>,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded caller guarantees.
        let (out, out_redelivered, (d, sender, raw)) = unsafe {
            (
                required_out(out, "out is null")?,
                optional_out(out_redelivered),
                peer_args(args, "message")?,
            )
        };
        let got = decrypt(&d.device, &sender, raw)?;
        put_buffer(out, &got.plaintext)?;
        put_optional(out_redelivered, got.redelivered)
    })
}

/// The frame of the two acknowledge calls: `message_id` names the sender's message (the
/// bytes in `args`) as the store keeps it, and `*out_found` says whether it did (see
/// `acknowledge_stored`).
///
/// # Safety
/// As `confide_device_acknowledge`.
unsafe fn acknowledge_with(
    args: PeerBytes,
    out_found: *mut bool,
    message_id: impl FnOnce(&[u8]) -> Result<MessageId, Failure>,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded caller guarantees.
        let (out_found, (d, sender, raw)) =
            unsafe { (optional_out(out_found), peer_args(args, "message")?) };
        // Parsed on every device, so that bad bytes are refused on an in-memory one too.
        let id = message_id(raw)?;
        let found = acknowledge_stored(d, &sender, &id)?;
        put_optional(out_found, found)
    })
}

/// A handle on a device over `store`.
fn new_handle(store: Box<dyn ProtocolStore>, name: &str, device_id: u32) -> *mut ConfideDevice {
    let fixed_time = Arc::new(AtomicU64::new(0));
    // v4 when the peer's bundle has a Kyber prekey, v3 otherwise: C and Python apps may
    // talk to v3-only peers.
    let device = Device::new(
        store,
        Address::new(name, device_id),
        SystemRng::new(),
        FfiClock(Arc::clone(&fixed_time)),
    )
    .with_versions(confide::session::Versions::V3AndV4);
    Box::into_raw(Box::new(ConfideDevice { device, fixed_time }))
}

#[cfg(unix)]
fn path_of(raw: &CStr) -> Result<PathBuf, Failure> {
    use std::os::unix::ffi::OsStrExt;
    Ok(PathBuf::from(std::ffi::OsStr::from_bytes(raw.to_bytes())))
}

#[cfg(not(unix))]
fn path_of(raw: &CStr) -> Result<PathBuf, Failure> {
    raw.to_str()
        .map(PathBuf::from)
        .map_err(|_| invalid("path is not UTF-8"))
}

/// Opens (creating if needed) a persistent device whose state lives in the SQLite file
/// at `path`, sealed under the 32-byte `key` (keep it in the platform keystore). The
/// first open makes a fresh identity; reopening resumes the identity, sessions and
/// privacy state. `name` and `device_id` are this device's own address. `*out`
/// receives the handle; free it with `confide_device_free`.
///
/// Thread-safe. Several handles (in one or several processes) may open the same file.
///
/// # Safety
/// `path` and `name` are NUL-terminated; `key` holds `key_len` bytes; `out` is
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_open(
    path: *const c_char,
    key: *const u8,
    key_len: usize,
    name: *const c_char,
    device_id: u32,
    out: *mut *mut ConfideDevice,
) -> i32 {
    guard(|| {
        if path.is_null() {
            return Err(invalid("path is null"));
        }
        // SAFETY: path checked non-null and NUL-terminated by contract; the rest are
        // forwarded caller guarantees.
        let (out, path, key, name) = unsafe {
            (
                required_out(out, "out is null")?,
                path_of(CStr::from_ptr(path))?,
                bytes(key, key_len, "key")?,
                string(name, "name")?,
            )
        };
        let key = StoreKey::try_from(key).map_err(|_| invalid("the store key is not 32 bytes"))?;
        let mut rng = SystemRng::new();
        let store = SqliteStore::open(path, &key, &mut rng)?;
        store.bootstrap_identity(&mut rng)?;
        out.write(new_handle(Box::new(store), name, device_id));
        Ok(())
    })
}

/// Creates a device with a fresh identity whose state lives only in memory (gone at
/// `confide_device_free`). `name` and `device_id` are its own address. `*out` receives
/// the handle.
///
/// Thread-safe.
///
/// # Safety
/// `name` is NUL-terminated; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_new_in_memory(
    name: *const c_char,
    device_id: u32,
    out: *mut *mut ConfideDevice,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded caller guarantees.
        let (out, name) = unsafe { (required_out(out, "out is null")?, string(name, "name")?) };
        let store = InMemoryStore::generate(&mut SystemRng::new());
        out.write(new_handle(Box::new(store), name, device_id));
        Ok(())
    })
}

/// Frees a device (null is ignored); a SQLite file is closed, its contents kept.
///
/// Not thread-safe: no other call on this device may run concurrently or later.
///
/// # Safety
/// `device` is null or a handle from `confide_device_open`/`confide_device_new_in_memory`
/// not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_free(device: *mut ConfideDevice) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if !device.is_null() {
            // SAFETY: the caller passes a handle from Box::into_raw, freed once.
            drop(unsafe { Box::from_raw(device) });
        }
    }));
}

/// Fixes the device's clock at `now_ms` (milliseconds since the Unix epoch), or with 0
/// returns it to the system clock. Every time-dependent rule (signed prekey timestamps,
/// message receipt times, the policy state, the report's date) reads this clock. Meant
/// for tests and reproducible runs.
///
/// Thread-safe.
///
/// # Safety
/// `device` is a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_set_time(device: *const ConfideDevice, now_ms: u64) -> i32 {
    guard(|| {
        // SAFETY: forwarded caller guarantee.
        let d = unsafe { device_ref(device) }?;
        d.fixed_time.store(now_ms, Ordering::SeqCst);
        Ok(())
    })
}

/// Writes the device's 33-byte public identity key into `*out`.
///
/// Thread-safe.
///
/// # Safety
/// `device` is a live handle; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_identity_key(
    device: *const ConfideDevice,
    out: *mut ConfideBuffer,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded caller guarantees.
        let (d, out) = unsafe { (device_ref(device)?, required_out(out, "out is null")?) };
        let key = d.device.identity_key()?;
        put_buffer(out, &key.serialize())
    })
}

/// Makes and keeps a new signed prekey and a one-time prekey, under ids the device
/// allocates (never reused, so a bundle published earlier stays valid until its keys
/// are used), and writes the bundle to publish (`PreKeyBundle::to_bytes`) into `*out`.
///
/// Thread-safe.
///
/// # Safety
/// `device` is a live handle; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_publish_bundle(
    device: *const ConfideDevice,
    out: *mut ConfideBuffer,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded caller guarantees.
        let (d, out) = unsafe { (device_ref(device)?, required_out(out, "out is null")?) };
        put_buffer(out, &d.device.publish_bundle()?.to_bytes())
    })
}

/// Starts a session with (`name`, `remote_device_id`) from the bundle bytes it
/// published. Trusts the bundle's identity key on first use; a different key than the
/// trusted one is `CONFIDE_ERR_UNTRUSTED_IDENTITY`.
///
/// Thread-safe on a SQLite device; on an in-memory device serialize calls for the same
/// address.
///
/// # Safety
/// `device` is a live handle; `name` is NUL-terminated; `bundle` holds `bundle_len`
/// bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_start_session(
    device: *const ConfideDevice,
    name: *const c_char,
    remote_device_id: u32,
    bundle: *const u8,
    bundle_len: usize,
) -> i32 {
    let args = (device, name, remote_device_id, bundle, bundle_len);
    // SAFETY: forwarded caller guarantees.
    unsafe {
        peer_call(args, "bundle", |d, remote, raw| {
            let bundle = PreKeyBundle::from_bytes(raw)?;
            d.start_session(remote, &bundle).map_err(Failure::from)
        })
    }
}

/// Writes to `*out` whether there is a session with (`name`, `remote_device_id`).
///
/// Thread-safe.
///
/// # Safety
/// `device` is a live handle; `name` is NUL-terminated; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_has_session(
    device: *const ConfideDevice,
    name: *const c_char,
    remote_device_id: u32,
    out: *mut bool,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded caller guarantees.
        let (d, remote, out) = unsafe {
            (
                device_ref(device)?,
                address(name, remote_device_id)?,
                required_out(out, "out is null")?,
            )
        };
        out.write(d.device.has_session(&remote)?);
        Ok(())
    })
}

/// Trusts the 33-byte identity `key` for (`name`, `remote_device_id`) from now on, after
/// the app showed the user that the contact's safety number changed.
///
/// Thread-safe.
///
/// # Safety
/// `device` is a live handle; `name` is NUL-terminated; `key` holds `key_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_accept_identity(
    device: *const ConfideDevice,
    name: *const c_char,
    remote_device_id: u32,
    key: *const u8,
    key_len: usize,
) -> i32 {
    let args = (device, name, remote_device_id, key, key_len);
    // SAFETY: forwarded caller guarantees.
    unsafe {
        peer_call(args, "key", |d, remote, raw| {
            let key = IdentityKey::try_from(raw)?;
            d.accept_identity(remote, &key).map_err(Failure::from)
        })
    }
}

/// Encrypts `plaintext` for (`name`, `remote_device_id`). Writes the message type
/// (`CONFIDE_MESSAGE_TYPE_*`) to `*out_type` and the message bytes to `*out`. On a
/// SQLite device the advanced chain is on disk before this returns.
///
/// Thread-safe on a SQLite device; on an in-memory device serialize calls for the same
/// address.
///
/// # Safety
/// `device` is a live handle; `name` is NUL-terminated; `plaintext` holds
/// `plaintext_len` bytes; `out_type` and `out` are writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_encrypt(
    device: *const ConfideDevice,
    name: *const c_char,
    remote_device_id: u32,
    plaintext: *const u8,
    plaintext_len: usize,
    out_type: *mut u8,
    out: *mut ConfideBuffer,
) -> i32 {
    guard(|| {
        let args = (device, name, remote_device_id, plaintext, plaintext_len);
        // SAFETY: forwarded caller guarantees.
        let (out_type, out, (d, remote, plaintext)) = unsafe {
            (
                required_out(out_type, "out_type or out is null")?,
                required_out(out, "out_type or out is null")?,
                peer_args(args, "plaintext")?,
            )
        };
        let message = d.device.encrypt_raw(&remote, plaintext)?;
        out_type.write(message.message_type());
        put_buffer(out, message.serialized())
    })
}

/// Decrypts a message of `message_type` from (`name`, `remote_device_id`) and writes
/// the plaintext to `*out`. On any failure no state changes, so a corrupted message
/// leaves the session working.
///
/// `*out_redelivered` (may be null) is set to whether this exact message was decrypted
/// before and its plaintext comes from the store: a SQLite device keeps each plaintext
/// until `confide_device_acknowledge`, so a redelivery after a crash is not lost. After
/// the acknowledgement (or on an in-memory device) a repeat is
/// `CONFIDE_ERR_DUPLICATE_MESSAGE`.
///
/// Thread-safe on a SQLite device; on an in-memory device serialize calls for the same
/// address.
///
/// # Safety
/// `device` is a live handle; `name` is NUL-terminated; `message` holds `message_len`
/// bytes; `out` is writable; `out_redelivered` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_decrypt(
    device: *const ConfideDevice,
    name: *const c_char,
    remote_device_id: u32,
    message_type: u8,
    message: *const u8,
    message_len: usize,
    out: *mut ConfideBuffer,
    out_redelivered: *mut bool,
) -> i32 {
    let args = (device, name, remote_device_id, message, message_len);
    // SAFETY: forwarded caller guarantees.
    unsafe {
        decrypt_with(args, out, out_redelivered, |d, remote, raw| {
            let message = ciphertext(message_type, raw)?;
            d.decrypt_raw(remote, &message).map_err(Failure::from)
        })
    }
}

/// Tells a SQLite device that the app has saved the plaintext of this message (the
/// same type and bytes given to `confide_device_decrypt`): the store drops its copy and
/// keeps only a record that refuses a redelivery as a duplicate. `*out_found` (may be
/// null) is set to whether the message was stored; always false on an in-memory device,
/// which keeps no plaintext.
///
/// Thread-safe.
///
/// # Safety
/// `device` is a live handle; `name` is NUL-terminated; `message` holds `message_len`
/// bytes; `out_found` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_acknowledge(
    device: *const ConfideDevice,
    name: *const c_char,
    remote_device_id: u32,
    message_type: u8,
    message: *const u8,
    message_len: usize,
    out_found: *mut bool,
) -> i32 {
    let args = (device, name, remote_device_id, message, message_len);
    // SAFETY: forwarded caller guarantees.
    unsafe {
        acknowledge_with(args, out_found, |raw| {
            Ok(MessageId::of(&ciphertext(message_type, raw)?))
        })
    }
}

/// Computes the safety number of the conversation with (`name`, `remote_device_id`),
/// from this device's identity key and the one it trusts for that address. `local_id`
/// and `remote_id` are the two users' stable identifiers as both apps spell them (for
/// example the UTF-8 phone numbers). Writes the 60 digits and a NUL into the caller's
/// `out_digits` array of `CONFIDE_SAFETY_NUMBER_SIZE` bytes, and, if `out_scannable` is
/// not null, the QR-code payload (version 2) into it. No trusted identity yet is
/// `CONFIDE_ERR_NOT_FOUND`.
///
/// Thread-safe.
///
/// # Safety
/// `device` is a live handle; `name` is NUL-terminated; `local_id` and `remote_id` hold
/// their lengths in bytes; `out_digits` is writable for `CONFIDE_SAFETY_NUMBER_SIZE`
/// bytes; `out_scannable` is null or writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn confide_device_safety_number(
    device: *const ConfideDevice,
    local_id: *const u8,
    local_id_len: usize,
    name: *const c_char,
    remote_device_id: u32,
    remote_id: *const u8,
    remote_id_len: usize,
    out_digits: *mut c_char,
    out_scannable: *mut ConfideBuffer,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded caller guarantees; the caller's `out_digits` array holds
        // CONFIDE_SAFETY_NUMBER_SIZE bytes, so it is writable as a byte array that long.
        let (out_digits, out_scannable, d, remote, local_id, remote_id) = unsafe {
            (
                required_out(
                    out_digits.cast::<[u8; CONFIDE_SAFETY_NUMBER_SIZE]>(),
                    "out_digits is null",
                )?,
                optional_out(out_scannable),
                device_ref(device)?,
                address(name, remote_device_id)?,
                bytes(local_id, local_id_len, "local_id")?,
                bytes(remote_id, remote_id_len, "remote_id")?,
            )
        };
        let ours = d.device.identity_key()?;
        let theirs = d.device.remote_identity(&remote)?.ok_or_else(|| {
            Failure(
                CONFIDE_ERR_NOT_FOUND,
                format!(
                    "no trusted identity for {}.{}",
                    remote.name(),
                    remote_device_id
                ),
            )
        })?;
        let fingerprint = Fingerprint::with_defaults(
            Party::new(local_id, &ours),
            Party::new(remote_id, &theirs),
        )?;
        let mut digits = [0u8; CONFIDE_SAFETY_NUMBER_SIZE];
        let text = fingerprint.displayable().to_string();
        let dst = digits
            .get_mut(..text.len())
            .ok_or_else(|| Failure(CONFIDE_ERR_OTHER, "safety number too long".into()))?;
        dst.copy_from_slice(text.as_bytes());
        if let Some(out) = out_scannable {
            put_buffer(out, &fingerprint.scannable().to_bytes())?;
        }
        // `digits` is exactly the array's length, and its last byte stays NUL.
        out_digits.write(digits);
        Ok(())
    })
}

/// Records that the user connected now; the first call registers the account for the
/// policy state and the account report. On a SQLite device it persists.
///
/// Thread-safe.
///
/// # Safety
/// `device` is a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_record_connection(device: *const ConfideDevice) -> i32 {
    guard(|| {
        // SAFETY: forwarded caller guarantee.
        let d = unsafe { device_ref(device) }?;
        d.device.record_connection().map_err(Failure::from)
    })
}

/// Writes the bytes of the 2021 policy schedule (the 2016 and 2021 terms, whose texts
/// are hashed, with the June 2021 suspension if `suspended`) into `*out`, for
/// `confide_device_account_report`.
///
/// Thread-safe.
///
/// # Safety
/// `text_2016` and `text_2021` hold their lengths in bytes; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_policy_timeline_2021(
    text_2016: *const u8,
    text_2016_len: usize,
    text_2021: *const u8,
    text_2021_len: usize,
    suspended: bool,
    out: *mut ConfideBuffer,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded caller guarantees.
        let (a, b, out) = unsafe {
            (
                bytes(text_2016, text_2016_len, "text_2016")?,
                bytes(text_2021, text_2021_len, "text_2021")?,
                required_out(out, "out is null")?,
            )
        };
        put_buffer(out, &timeline_2021([a, b], suspended).to_bytes())
    })
}

fn visibility(v: u8) -> Result<Visibility, Failure> {
    match v {
        CONFIDE_VISIBILITY_EVERYONE => Ok(Visibility::Everyone),
        CONFIDE_VISIBILITY_CONTACTS => Ok(Visibility::Contacts),
        CONFIDE_VISIBILITY_NOBODY => Ok(Visibility::Nobody),
        _ => Err(invalid("unknown visibility")),
    }
}

fn timer(v: u8) -> Result<MessageTimer, Failure> {
    match v {
        CONFIDE_TIMER_OFF => Ok(MessageTimer::Off),
        CONFIDE_TIMER_24_HOURS => Ok(MessageTimer::Hours24),
        CONFIDE_TIMER_7_DAYS => Ok(MessageTimer::Days7),
        CONFIDE_TIMER_90_DAYS => Ok(MessageTimer::Days90),
        _ => Err(invalid("unknown message timer")),
    }
}

/// Builds the account-information report now, under the policy `schedule` (bytes from
/// `confide_policy_timeline_2021` or a server), and writes it as a ZIP archive
/// (`account_info.json`, `account_info.html`, the JSON schema) into `*out`. Needs a
/// prior `confide_device_record_connection` (else `CONFIDE_ERR_NOT_FOUND`).
///
/// Thread-safe.
///
/// # Safety
/// `device` is a live handle; `info` points to a `ConfideAccountInfo` whose strings are
/// NUL-terminated; `schedule` holds `schedule_len` bytes; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_account_report(
    device: *const ConfideDevice,
    info: *const ConfideAccountInfo,
    schedule: *const u8,
    schedule_len: usize,
    out: *mut ConfideBuffer,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded caller guarantees.
        let (d, info, schedule, out) = unsafe {
            (
                device_ref(device)?,
                info.as_ref().ok_or_else(|| invalid("info is null"))?,
                bytes(schedule, schedule_len, "schedule")?,
                required_out(out, "out is null")?,
            )
        };
        let schedule = PolicySchedule::from_bytes(schedule)?;
        // SAFETY: the caller guarantees the strings are NUL-terminated (or null).
        let (phone, display_name, about) = unsafe {
            (
                string(info.phone_number, "phone_number")?,
                string(info.display_name, "display_name")?,
                string(info.about, "about")?,
            )
        };
        let account = AccountInfo {
            phone_number: phone.to_owned(),
            profile: Profile {
                name: display_name.to_owned(),
                about: about.to_owned(),
                has_photo: info.has_photo,
            },
            privacy: PrivacySettings {
                last_seen: visibility(info.last_seen)?,
                profile_photo: visibility(info.profile_photo)?,
                about: visibility(info.about_visibility)?,
                groups: visibility(info.groups)?,
                read_receipts: info.read_receipts,
                default_message_timer: timer(info.default_message_timer)?,
            },
            devices: Vec::new(),
            groups: Vec::new(),
            business_chats: Vec::new(),
        };
        let report = d.device.account_report(&account, &schedule)?;
        let zip = report.to_zip()?;
        put_buffer(out, &zip)
    })
}

/// Reads the 16-byte distribution id at `p`.
///
/// # Safety
/// `p` is null or valid for `CONFIDE_DISTRIBUTION_ID_LEN` bytes.
unsafe fn distribution_id(p: *const u8) -> Result<DistributionId, Failure> {
    // SAFETY: forwarded caller guarantee.
    let raw = unsafe { bytes(p, CONFIDE_DISTRIBUTION_ID_LEN, "distribution_id") }?;
    let id = <[u8; CONFIDE_DISTRIBUTION_ID_LEN]>::try_from(raw)
        .map_err(|_| invalid("distribution_id"))?;
    Ok(DistributionId::from_bytes(id))
}

/// Parses a sender certificate and checks that it names this device's identity, so a
/// wrong certificate is refused before a chain step is spent on a message the
/// recipient would reject.
///
/// # Safety
/// `p` is valid for `len` bytes, or `len` is 0.
unsafe fn own_certificate(
    d: &ConfideDevice,
    p: *const u8,
    len: usize,
) -> Result<SenderCertificate, Failure> {
    // SAFETY: forwarded caller guarantee.
    let raw = unsafe { bytes(p, len, "certificate") }?;
    let certificate = SenderCertificate::try_from(raw)?;
    let ours = d.device.identity_key()?;
    let info = certificate.sender();
    if info.identity_key != ours
        || info.uuid != d.device.address().name()
        || info.device_id != d.device.address().device_id()
    {
        return Err(Failure(
            CONFIDE_ERR_INVALID_CERTIFICATE,
            "the sender certificate is not this device's (identity, name or device id differ)"
                .into(),
        ));
    }
    Ok(certificate)
}

/// A sealed sender v2 recipient's UUID, from the name it is known by.
fn service_id(name: &str) -> Result<ServiceId, Failure> {
    name.parse()
        .map_err(|_| invalid("a sealed sender v2 recipient is named by its UUID"))
}

/// A trust root: the 33-byte serialized public key, or its 32 bare key bytes.
///
/// # Safety
/// `p` is valid for `len` bytes, or `len` is 0.
unsafe fn public_key(p: *const u8, len: usize) -> Result<PublicKey, Failure> {
    // SAFETY: forwarded caller guarantee.
    let raw = unsafe { bytes(p, len, "trust_root") }?;
    match <[u8; 32]>::try_from(raw) {
        Ok(bare) => {
            PublicKey::try_from_x25519(bare).map_err(|_| invalid("trust_root is not a public key"))
        }
        Err(_) => PublicKey::try_from(raw).map_err(|_| invalid("trust_root is not a public key")),
    }
}

/// The sealed sender version byte the caller passed.
fn sealed_version(version: u8) -> Result<u8, Failure> {
    match version {
        CONFIDE_SEALED_SENDER_V1 | CONFIDE_SEALED_SENDER_V2 => Ok(version),
        _ => Err(invalid("sealed sender version is 1 or 2")),
    }
}

/// Whom a sealed message goes to: the one device in `to` for v1, or for v2 all of `to`
/// with the identity key and registration id their sessions gave (kept in `v2`).
fn seal_for<'a>(
    d: &ConfideDevice,
    version: u8,
    to: &'a [Address],
    v2: &'a mut Vec<Recipient>,
) -> Result<SealFor<'a>, Failure> {
    if let (CONFIDE_SEALED_SENDER_V1, [one]) = (version, to) {
        return Ok(SealFor::V1(one));
    }
    *v2 = to
        .iter()
        .map(|a| d.device.recipient(a))
        .collect::<Result<_, _>>()?;
    Ok(SealFor::V2(v2))
}

/// The handle, trust root and sealed message that the unseal and acknowledge calls take.
///
/// # Safety
/// `device` is null or a live handle; `trust_root` and `message` are valid for their
/// lengths in bytes, or those are 0.
unsafe fn sealed_args<'a>(
    device: *const ConfideDevice,
    trust_root: *const u8,
    trust_root_len: usize,
    message: *const u8,
    message_len: usize,
) -> Result<(&'a ConfideDevice, TrustRoots, &'a [u8]), Failure> {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        Ok((
            device_ref(device)?,
            TrustRoots::new(public_key(trust_root, trust_root_len)?),
            bytes(message, message_len, "message")?,
        ))
    }
}

/// What the two distribution calls share: `make` gives the distribution message of the
/// group's sending chain, which goes to `*out`.
///
/// # Safety
/// As `confide_device_group_distribution`.
unsafe fn distribution_with(
    device: *const ConfideDevice,
    distribution_id: *const u8,
    out: *mut ConfideBuffer,
    make: impl FnOnce(
        &FfiDevice,
        DistributionId,
    ) -> Result<SenderKeyDistributionMessage, GroupDistributionError>,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded caller guarantees.
        let (out, d, id) = unsafe {
            (
                required_out(out, "out is null")?,
                device_ref(device)?,
                self::distribution_id(distribution_id)?,
            )
        };
        let message = make(&d.device, id)?;
        put_buffer(out, message.serialized())
    })
}

/// Writes the distribution message of this device's sending chain in the group
/// `distribution_id` (16 bytes) into `*out`, creating and saving the chain on first use;
/// later calls return the same chain's message at its current step. Send it to every
/// member over the pairwise sessions (`confide_device_encrypt`), who pass it to
/// `confide_device_group_process`. Current (libsignal) group layout.
///
/// Thread-safe: on a SQLite device the chain is created by a compare-and-swap commit
/// (so two handles on one file agree on it); an in-memory device runs its group calls
/// one at a time.
///
/// # Safety
/// `device` is a live handle; `distribution_id` holds `CONFIDE_DISTRIBUTION_ID_LEN`
/// bytes; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_group_distribution(
    device: *const ConfideDevice,
    distribution_id: *const u8,
    out: *mut ConfideBuffer,
) -> i32 {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        distribution_with(device, distribution_id, out, |d, id| {
            d.group_distribution_raw(id, Layout::Current)
        })
    }
}

/// Starts a fresh sending chain in the group (after a member left) and writes its
/// distribution message into `*out`, for the remaining members only. The old chain and
/// its signing key are gone from the store before this returns.
///
/// Thread-safe.
///
/// # Safety
/// As `confide_device_group_distribution`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_group_rotate(
    device: *const ConfideDevice,
    distribution_id: *const u8,
    out: *mut ConfideBuffer,
) -> i32 {
    // SAFETY: forwarded caller guarantees.
    unsafe { distribution_with(device, distribution_id, out, |d, id| d.group_rotate(id)) }
}

/// Stores the chain that a distribution message from (`name`, `sender_device_id`)
/// describes, so that sender's group messages decrypt. The message names its group.
/// A message for another group or layout than the stored chain is
/// `CONFIDE_ERR_INVALID_MESSAGE` and changes nothing.
///
/// Thread-safe.
///
/// # Safety
/// `device` is a live handle; `name` is NUL-terminated; `message` holds `message_len`
/// bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_group_process(
    device: *const ConfideDevice,
    name: *const c_char,
    sender_device_id: u32,
    message: *const u8,
    message_len: usize,
) -> i32 {
    let args = (device, name, sender_device_id, message, message_len);
    // SAFETY: forwarded caller guarantees.
    unsafe {
        peer_call(args, "message", |d, sender, raw| {
            let message = SenderKeyDistributionMessage::parse(raw, Layout::Current)?;
            d.group_process(sender, group_of(&message.distribution_id())?, &message)
                .map_err(Failure::from)
        })
    }
}

/// Encrypts `plaintext` for the group `distribution_id` with this device's sending
/// chain and writes the group message into `*out` (send the same bytes to every
/// member). The advanced chain is saved before this returns, so no chain step is used
/// twice. No chain yet is `CONFIDE_ERR_NO_SENDER_KEY`.
///
/// Thread-safe.
///
/// # Safety
/// `device` is a live handle; `distribution_id` holds `CONFIDE_DISTRIBUTION_ID_LEN`
/// bytes; `plaintext` holds `plaintext_len` bytes; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_group_encrypt(
    device: *const ConfideDevice,
    distribution_id: *const u8,
    plaintext: *const u8,
    plaintext_len: usize,
    out: *mut ConfideBuffer,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded caller guarantees.
        let (out, d, id, plaintext) = unsafe {
            (
                required_out(out, "out is null")?,
                device_ref(device)?,
                self::distribution_id(distribution_id)?,
                bytes(plaintext, plaintext_len, "plaintext")?,
            )
        };
        let message = d.device.group_encrypt_raw(id, plaintext)?;
        put_buffer(out, message.serialized())
    })
}

/// Decrypts a group message from (`name`, `sender_device_id`) and writes the plaintext
/// into `*out`. An unknown chain is `CONFIDE_ERR_NO_SENDER_KEY`; a forged or corrupted
/// message `CONFIDE_ERR_INVALID_MESSAGE`. A failure changes nothing.
///
/// `*out_redelivered` (may be null) is set to whether this exact message was decrypted
/// before and its plaintext comes from the store: a SQLite device commits the advanced
/// chain and the plaintext in one transaction and keeps the plaintext until
/// `confide_device_group_acknowledge`, so a redelivery after a crash is not lost. After
/// the acknowledgement (or on an in-memory device, which keeps no plaintext) a repeat
/// is `CONFIDE_ERR_DUPLICATE_MESSAGE`.
///
/// Thread-safe.
///
/// # Safety
/// `device` is a live handle; `name` is NUL-terminated; `message` holds `message_len`
/// bytes; `out` is writable; `out_redelivered` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_group_decrypt(
    device: *const ConfideDevice,
    name: *const c_char,
    sender_device_id: u32,
    message: *const u8,
    message_len: usize,
    out: *mut ConfideBuffer,
    out_redelivered: *mut bool,
) -> i32 {
    let args = (device, name, sender_device_id, message, message_len);
    // SAFETY: forwarded caller guarantees.
    unsafe {
        decrypt_with(args, out, out_redelivered, |d, sender, raw| {
            let message = group_message(raw)?;
            d.group_decrypt_raw(sender, group_of(&message.distribution_id())?, &message)
                .map_err(Failure::from)
        })
    }
}

/// The id a SQLite store keeps a (current-layout) group message under: its
/// distribution id and bytes, as `Device::group_decrypt` computed it.
fn group_message_id(raw: &[u8]) -> Result<MessageId, Failure> {
    let message = group_message(raw)?;
    Ok(MessageId::of_group(
        group_of(&message.distribution_id())?,
        &message,
    ))
}

/// The group a (current-layout) message names.
fn group_of(id: &Option<DistributionId>) -> Result<DistributionId, Failure> {
    id.ok_or_else(|| {
        Failure(
            CONFIDE_ERR_INVALID_MESSAGE,
            "group message names no distribution".into(),
        )
    })
}

/// Tells a SQLite device that the app has saved the plaintext of this group message
/// from (`name`, `sender_device_id`) (the same bytes given to
/// `confide_device_group_decrypt`): the store drops its copy and keeps only a record
/// that refuses a redelivery as a duplicate. `*out_found` (may be null) is set to
/// whether the message was stored; always false on an in-memory device, which keeps no
/// plaintext. Bytes that are not a group message are `CONFIDE_ERR_INVALID_MESSAGE`.
///
/// Thread-safe.
///
/// # Safety
/// `device` is a live handle; `name` is NUL-terminated; `message` holds `message_len`
/// bytes; `out_found` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_group_acknowledge(
    device: *const ConfideDevice,
    name: *const c_char,
    sender_device_id: u32,
    message: *const u8,
    message_len: usize,
    out_found: *mut bool,
) -> i32 {
    let args = (device, name, sender_device_id, message, message_len);
    // SAFETY: forwarded caller guarantees.
    unsafe { acknowledge_with(args, out_found, group_message_id) }
}

/// Encrypts `plaintext` for (`name`, `remote_device_id`) over the session (as
/// `confide_device_encrypt`: the chain is saved first) and seals it under this device's
/// sender `certificate` (bytes from the app's server), so the envelope does not name
/// the sender. Writes the sealed message into `*out`:
/// - `version` `CONFIDE_SEALED_SENDER_V1`: the message to deliver to that device;
/// - `CONFIDE_SEALED_SENDER_V2`: the multi-recipient message to hand to the server
///   (which splits it, see `confide_sealed_v2_for_recipient`); `name` must be the
///   recipient's UUID, and its registration id comes from the session.
///
/// A certificate that is not this device's is `CONFIDE_ERR_INVALID_CERTIFICATE`; no
/// identity known for the recipient is `CONFIDE_ERR_NO_SESSION`; both are checked before
/// anything is encrypted. The content hint is "default".
///
/// Thread-safe on a SQLite device; on an in-memory device serialize calls for the same
/// address.
///
/// # Safety
/// `device` is a live handle; `name` is NUL-terminated; `certificate` and `plaintext`
/// hold their lengths in bytes; `out` is writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn confide_device_seal_message(
    device: *const ConfideDevice,
    name: *const c_char,
    remote_device_id: u32,
    certificate: *const u8,
    certificate_len: usize,
    plaintext: *const u8,
    plaintext_len: usize,
    version: u8,
    out: *mut ConfideBuffer,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded caller guarantee.
        let out = unsafe { required_out(out, "out is null") }?;
        let version = sealed_version(version)?;
        let args = (device, name, remote_device_id, plaintext, plaintext_len);
        // SAFETY: forwarded caller guarantees.
        let (d, remote, plaintext) = unsafe { peer_args(args, "plaintext") }?;
        // SAFETY: forwarded caller guarantee.
        let certificate = unsafe { own_certificate(d, certificate, certificate_len) }?;
        let version = match version {
            CONFIDE_SEALED_SENDER_V1 => SealVersion::V1,
            _ => SealVersion::V2,
        };
        let from = SealAs::new(&certificate).version(version);
        put_buffer(out, &d.device.seal_message_raw(&remote, plaintext, &from)?)
    })
}

/// Encrypts `plaintext` for the group `distribution_id` (as
/// `confide_device_group_encrypt`: the chain is saved first) and seals it under this
/// device's sender `certificate`, with the app's `group_id` (may be empty) inside the
/// envelope. Writes into `*out`:
/// - `version` `CONFIDE_SEALED_SENDER_V1`: the message for the one recipient in
///   `recipients` (`recipient_count` must be 1; each v1 call spends a chain step);
/// - `CONFIDE_SEALED_SENDER_V2`: one multi-recipient message for all `recipients`
///   (named by their UUIDs, each with a session), for the server to split.
///
/// Thread-safe.
///
/// # Safety
/// `device` is a live handle; `distribution_id` holds `CONFIDE_DISTRIBUTION_ID_LEN`
/// bytes; `group_id`, `certificate` and `plaintext` hold their lengths in bytes;
/// `recipients` points to `recipient_count` entries whose names are NUL-terminated;
/// `out` is writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn confide_device_seal_group_message(
    device: *const ConfideDevice,
    distribution_id: *const u8,
    group_id: *const u8,
    group_id_len: usize,
    certificate: *const u8,
    certificate_len: usize,
    plaintext: *const u8,
    plaintext_len: usize,
    version: u8,
    recipients: *const ConfideRecipient,
    recipient_count: usize,
    out: *mut ConfideBuffer,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded caller guarantee.
        let out = unsafe { required_out(out, "out is null") }?;
        let version = sealed_version(version)?;
        if recipients.is_null() || recipient_count == 0 {
            return Err(invalid("recipients is null or empty"));
        }
        if version == CONFIDE_SEALED_SENDER_V1 && recipient_count != 1 {
            return Err(invalid("sealed sender v1 takes exactly one recipient"));
        }
        // SAFETY: forwarded caller guarantees; `recipients` checked non-null.
        let (d, id, group_id, plaintext, entries) = unsafe {
            (
                device_ref(device)?,
                self::distribution_id(distribution_id)?,
                bytes(group_id, group_id_len, "group_id")?,
                bytes(plaintext, plaintext_len, "plaintext")?,
                std::slice::from_raw_parts(recipients, recipient_count),
            )
        };
        // SAFETY: forwarded caller guarantee.
        let certificate = unsafe { own_certificate(d, certificate, certificate_len) }?;
        let addresses = entries
            .iter()
            // SAFETY: the caller guarantees each name is NUL-terminated.
            .map(|r| unsafe { address(r.name, r.device_id) })
            .collect::<Result<Vec<_>, _>>()?;
        let mut v2 = Vec::new();
        let to = seal_for(d, version, &addresses, &mut v2)?;
        let mut from = SealAs::new(&certificate);
        if !group_id.is_empty() {
            from = from.group_id(group_id);
        }
        put_buffer(
            out,
            &d.device.seal_group_message_raw(id, plaintext, &from, to)?,
        )
    })
}

/// What the server does with a v2 multi-recipient message (for servers, tests and
/// demos): writes into `*out` the per-recipient message it delivers to `name` (a UUID).
/// A message without a share for `name` is `CONFIDE_ERR_NOT_FOUND`.
///
/// Thread-safe.
///
/// # Safety
/// `message` holds `message_len` bytes; `name` is NUL-terminated; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_sealed_v2_for_recipient(
    message: *const u8,
    message_len: usize,
    name: *const c_char,
    out: *mut ConfideBuffer,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded caller guarantees.
        let (out, raw, name) = unsafe {
            (
                required_out(out, "out is null")?,
                bytes(message, message_len, "message")?,
                string(name, "name")?,
            )
        };
        let service_id = service_id(name)?;
        let multi = MultiRecipientMessage::try_from(raw)?;
        let delivered = multi.for_recipient(&service_id).ok_or_else(|| {
            Failure(
                CONFIDE_ERR_NOT_FOUND,
                "the message has no key share for this recipient".into(),
            )
        })?;
        put_buffer(out, &delivered)
    })
}

/// Opens a sealed message (v1, or v2 as the server delivered it), validates its sender
/// certificate under `trust_root` (33 bytes, or the 32 bare key bytes) at the device's
/// time, and decrypts the inner 1:1 or group message as `confide_device_decrypt` and
/// `confide_device_group_decrypt` do, from the sender the certificate names. On
/// success fills `*out` (free it with `confide_unsealed_free`); on failure leaves it
/// as it was and changes no state. Codes beyond those of the two decrypt calls:
/// `CONFIDE_ERR_INVALID_CERTIFICATE`, `CONFIDE_ERR_CERTIFICATE_EXPIRED`,
/// `CONFIDE_ERR_SELF_SEND`, and `CONFIDE_ERR_UNTRUSTED_IDENTITY` when the certificate's
/// identity differs from the one trusted for that sender.
///
/// A sender name with an interior NUL (which no C string could name) is returned with
/// each NUL replaced by U+FFFD.
///
/// Thread-safe on a SQLite device; on an in-memory device serialize calls that may
/// carry 1:1 messages from the same sender.
///
/// # Safety
/// `device` is a live handle; `trust_root` and `message` hold their lengths in bytes;
/// `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_unseal(
    device: *const ConfideDevice,
    trust_root: *const u8,
    trust_root_len: usize,
    message: *const u8,
    message_len: usize,
    out: *mut ConfideUnsealed,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded caller guarantees.
        let (out, (d, root, raw)) = unsafe {
            (
                required_out(out, "out is null")?,
                sealed_args(device, trust_root, trust_root_len, message, message_len)?,
            )
        };
        let got = d.device.unseal(raw, &root)?;
        // Nothing below can fail: the message is consumed, so it must reach the caller.
        let name = CString::new(got.sender.name().replace('\0', "\u{FFFD}")).unwrap_or_default();
        out.write(ConfideUnsealed {
            sender_name: name.into_raw(),
            sender_device: got.sender.device_id(),
            content_type: got.content_type.message_type(),
            content_hint: got.content_hint.to_u32(),
            group_id: new_buffer(got.group_id.as_deref().unwrap_or_default()),
            plaintext: new_buffer(&got.plaintext),
            redelivered: got.redelivered,
        });
        Ok(())
    })
}

/// Tells a SQLite device that the app has saved the plaintext of this sealed 1:1 or
/// group message (the same bytes given to `confide_device_unseal`), as
/// `confide_device_acknowledge` and `confide_device_group_acknowledge` do for unsealed
/// ones: the store drops its copy, and a redelivery is then
/// `CONFIDE_ERR_DUPLICATE_MESSAGE`. The envelope is opened and its certificate validated
/// under `trust_root` again, to find the sender and the inner message. `*out_found`
/// (may be null) is set to whether the message was stored; always false on an
/// in-memory device, which keeps no plaintext.
///
/// Thread-safe.
///
/// # Safety
/// `device` is a live handle; `trust_root` and `message` hold their lengths in bytes;
/// `out_found` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_device_acknowledge_sealed(
    device: *const ConfideDevice,
    trust_root: *const u8,
    trust_root_len: usize,
    message: *const u8,
    message_len: usize,
    out_found: *mut bool,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded caller guarantees.
        let (out_found, (d, root, raw)) = unsafe {
            (
                optional_out(out_found),
                sealed_args(device, trust_root, trust_root_len, message, message_len)?,
            )
        };
        let identity = d.device.store().local_identity()?;
        let content = confide::sealed::open(raw, &identity, &root, d.device.now())?;
        let info = content.sender().sender();
        let sender = Address::new(info.uuid.clone(), info.device_id);
        let contents = content.contents();
        let found = match content.content_type() {
            kind @ (ContentType::PreKey | ContentType::Whisper) => {
                let id = MessageId::of(&ciphertext(kind.message_type(), contents)?);
                acknowledge_stored(d, &sender, &id)?
            }
            ContentType::SenderKey => acknowledge_stored(d, &sender, &group_message_id(contents)?)?,
            _ => false,
        };
        put_optional(out_found, found)
    })
}

/// Frees what `confide_device_unseal` put in `*unsealed` (wiping the plaintext) and
/// zeroes it, so freeing twice is harmless. Null is ignored.
///
/// Thread-safe.
///
/// # Safety
/// `unsealed` is null, zeroed, or filled by `confide_device_unseal` and not freed since.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_unsealed_free(unsealed: *mut ConfideUnsealed) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the caller guarantees null or a valid, initialized struct.
        let Some(u) = (unsafe { unsealed.as_mut() }) else {
            return;
        };
        if !u.sender_name.is_null() {
            // SAFETY: made by CString::into_raw in confide_device_unseal, freed once.
            drop(unsafe { CString::from_raw(u.sender_name) });
        }
        // SAFETY: both buffers were made by new_buffer and are freed once.
        unsafe {
            free_buffer(&u.plaintext);
            free_buffer(&u.group_id);
        }
        *u = ConfideUnsealed {
            sender_name: std::ptr::null_mut(),
            sender_device: 0,
            content_type: 0,
            content_hint: 0,
            group_id: new_buffer(&[]),
            plaintext: new_buffer(&[]),
            redelivered: false,
        };
    }));
}

/// FOR TESTS AND DEMOS ONLY: exported only by a library built with the cargo feature
/// `ffi-testing`, declared only when `CONFIDE_FFI_TESTING` is defined. Plays the
/// sealed-sender server: certifies the server key `server_private` under id
/// `server_key_id` with the trust root `trust_root_private`, then certifies this device
/// (its name as the UUID, its device id and identity key, no phone number) until
/// `expiration_ms` (milliseconds since the Unix epoch). Writes
/// the sender certificate into `*out_certificate` and, if `out_trust_root` is not null,
/// the trust root's public key (`CONFIDE_PUBLIC_KEY_LEN` bytes) into it. A real app
/// gets its certificate and the trust root from its server; a trust root's private key
/// never belongs in an app.
///
/// Thread-safe.
///
/// # Safety
/// `device` is a live handle; `trust_root_private` and `server_private` hold
/// `CONFIDE_PRIVATE_KEY_LEN` bytes each; `out_certificate` is writable;
/// `out_trust_root` is null or writable for `CONFIDE_PUBLIC_KEY_LEN` bytes.
#[cfg(feature = "ffi-testing")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_test_sender_certificate(
    device: *const ConfideDevice,
    trust_root_private: *const u8,
    server_private: *const u8,
    server_key_id: u32,
    expiration_ms: u64,
    out_certificate: *mut ConfideBuffer,
    out_trust_root: *mut u8,
) -> i32 {
    use confide::keys::PrivateKey;
    use confide::sealed::{SenderInfo, ServerCertificate};
    guard(|| {
        // SAFETY: forwarded caller guarantees; the caller's `out_trust_root` array holds
        // CONFIDE_PUBLIC_KEY_LEN bytes, so it is writable as a byte array that long.
        let (out_certificate, out_trust_root, d, root, server) = unsafe {
            (
                required_out(out_certificate, "out_certificate is null")?,
                optional_out(out_trust_root.cast::<[u8; CONFIDE_PUBLIC_KEY_LEN]>()),
                device_ref(device)?,
                bytes(
                    trust_root_private,
                    CONFIDE_PRIVATE_KEY_LEN,
                    "trust_root_private",
                )?,
                bytes(server_private, CONFIDE_PRIVATE_KEY_LEN, "server_private")?,
            )
        };
        let private = |raw: &[u8], what: &str| {
            let mut key = zeroize::Zeroizing::new([0u8; CONFIDE_PRIVATE_KEY_LEN]);
            key.copy_from_slice(
                raw.get(..CONFIDE_PRIVATE_KEY_LEN)
                    .ok_or_else(|| invalid(what))?,
            );
            Ok::<_, Failure>(PrivateKey::from_bytes(*key))
        };
        let root = private(root, "trust_root_private")?;
        let server = private(server, "server_private")?;
        let mut rng = SystemRng::new();
        let server_certificate =
            ServerCertificate::new(server_key_id, server.public_key(), &root, &mut rng);
        let info = SenderInfo {
            uuid: d.device.address().name().to_owned(),
            e164: None,
            device_id: d.device.address().device_id(),
            identity_key: d.device.identity_key()?,
            expiration: Timestamp::from_millis(expiration_ms),
        };
        let certificate = SenderCertificate::new(info, server_certificate, &server, &mut rng);
        put_buffer(out_certificate, certificate.serialized())?;
        put_optional(out_trust_root, root.public_key().serialize())
    })
}

/// Wipes and frees a buffer made by `new_buffer` (a zeroed one is ignored).
///
/// # Safety
/// `buffer` came from `new_buffer` and was not freed before.
unsafe fn free_buffer(buffer: &ConfideBuffer) {
    if !buffer.data.is_null() && buffer.len != 0 {
        let slice = std::ptr::slice_from_raw_parts_mut(buffer.data, buffer.len);
        // SAFETY: built by new_buffer from a Box<[u8]> of exactly this length, and
        // not freed before (caller guarantee).
        let mut owned = unsafe { Box::from_raw(slice) };
        zeroize::Zeroize::zeroize(&mut *owned);
        drop(owned);
    }
}

/// Wipes and frees a buffer returned by confide (a zeroed buffer is ignored).
///
/// Thread-safe.
///
/// # Safety
/// `buffer` came from confide and was not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn confide_buffer_free(buffer: ConfideBuffer) {
    // SAFETY: the caller guarantees the buffer came from confide and is freed once.
    let _ = catch_unwind(AssertUnwindSafe(|| unsafe { free_buffer(&buffer) }));
}

/// The last failure on this thread, or null after a success. Valid until the next
/// confide call on this thread; do not free it.
///
/// Thread-safe (the message is per thread).
#[unsafe(no_mangle)]
pub extern "C" fn confide_last_error_message() -> *const c_char {
    catch_unwind(|| {
        LAST_ERROR
            .try_with(|e| e.borrow().as_ref().map_or(std::ptr::null(), |c| c.as_ptr()))
            .unwrap_or(std::ptr::null())
    })
    .unwrap_or(std::ptr::null())
}

/// confide's version, a static NUL-terminated string.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn confide_version() -> *const c_char {
    static VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    VERSION.as_ptr().cast()
}
