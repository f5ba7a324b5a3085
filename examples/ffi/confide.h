#ifndef CONFIDE_H
#define CONFIDE_H

/* Generated from examples/ffi/lib.rs by cbindgen; tests/ffi.rs keeps it in sync. */

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

// Success.
#define CONFIDE_OK 0

// A required pointer was null, a string was not UTF-8, or a length or enum value is
// out of range.
#define CONFIDE_ERR_INVALID_ARGUMENT 1

// Bytes that are not a valid message, bundle, key or schedule; or a message that
// failed authentication.
#define CONFIDE_ERR_INVALID_MESSAGE 2

// The message was already decrypted and acknowledged (or the store cannot tell a
// redelivery).
#define CONFIDE_ERR_DUPLICATE_MESSAGE 3

// No session with this address (so no identity to seal to, either).
#define CONFIDE_ERR_NO_SESSION 4

// The remote identity key differs from the trusted one (see
// `confide_device_accept_identity`).
#define CONFIDE_ERR_UNTRUSTED_IDENTITY 5

// A bundle's signed prekey signature is invalid.
#define CONFIDE_ERR_INVALID_SIGNATURE 6

// A prekey message names a prekey this device does not have.
#define CONFIDE_ERR_UNKNOWN_PREKEY 7

// Any other failure (see the message).
#define CONFIDE_ERR_OTHER 8

// A bug in confide: a panic was caught at the boundary.
#define CONFIDE_ERR_PANIC 9

// The store failed: I/O, a locked or corrupt database, a row that fails
// authentication.
#define CONFIDE_ERR_STORAGE 10

// The database was sealed with another store key.
#define CONFIDE_ERR_WRONG_KEY 11

// Nothing is known yet: no trusted identity for that address (for the safety number), or
// no activity recorded for the account report.
#define CONFIDE_ERR_NOT_FOUND 12

// A sender certificate that does not parse, is not this device's (when sealing), or
// does not validate under the trust root (bad signature, unknown or revoked server
// key).
#define CONFIDE_ERR_INVALID_CERTIFICATE 13

// The sender certificate expired before the receiving device's time: the sender needs
// a fresh one from its server.
#define CONFIDE_ERR_CERTIFICATE_EXPIRED 14

// No sender key: this device has no sending chain in the group yet (see
// `confide_device_group_distribution`), or never processed the sender's distribution
// message for the message's chain. Ask the sender to resend its distribution.
#define CONFIDE_ERR_NO_SENDER_KEY 15

// A sealed message whose certificate names this very device (an echo of one of its
// own messages); nothing was decrypted, and the app drops it.
#define CONFIDE_ERR_SELF_SEND 16

// A whisper (ordinary) message.
#define CONFIDE_MESSAGE_TYPE_WHISPER 2

// A prekey message: the first messages of a session, until the peer answers.
#define CONFIDE_MESSAGE_TYPE_PREKEY 3

// A group (sender-key) message; appears as `ConfideUnsealed::content_type`.
#define CONFIDE_MESSAGE_TYPE_SENDER_KEY 7

// Sealed sender v1: one recipient device, the envelope names only it.
#define CONFIDE_SEALED_SENDER_V1 1

// Sealed sender v2: one multi-recipient message the server splits per recipient (see
// `confide_sealed_v2_for_recipient`); recipients are named by their UUIDs.
#define CONFIDE_SEALED_SENDER_V2 2

// Bytes of the store key `confide_device_open` takes.
#define CONFIDE_STORE_KEY_LEN 32

// Bytes a serialized identity key has.
#define CONFIDE_IDENTITY_KEY_LEN 33

// Size of the array `confide_device_safety_number` writes: 60 digits and a NUL.
#define CONFIDE_SAFETY_NUMBER_SIZE 61

// Bytes of a group's distribution id (a UUID) that the `confide_device_group_*` calls
// read.
#define CONFIDE_DISTRIBUTION_ID_LEN 16

// Bytes of a serialized public key (a type byte and 32 key bytes), such as a sealed
// sender trust root.
#define CONFIDE_PUBLIC_KEY_LEN 33

#if defined(CONFIDE_FFI_TESTING)
// Bytes of a private key given to `confide_test_sender_certificate`.
#define CONFIDE_PRIVATE_KEY_LEN 32
#endif

// `ConfideAccountInfo` visibility: everyone.
#define CONFIDE_VISIBILITY_EVERYONE 0

// `ConfideAccountInfo` visibility: my contacts.
#define CONFIDE_VISIBILITY_CONTACTS 1

// `ConfideAccountInfo` visibility: nobody.
#define CONFIDE_VISIBILITY_NOBODY 2

// `ConfideAccountInfo` default message timer: off.
#define CONFIDE_TIMER_OFF 0

// `ConfideAccountInfo` default message timer: 24 hours.
#define CONFIDE_TIMER_24_HOURS 1

// `ConfideAccountInfo` default message timer: 7 days.
#define CONFIDE_TIMER_7_DAYS 2

// `ConfideAccountInfo` default message timer: 90 days.
#define CONFIDE_TIMER_90_DAYS 3

// One device of one user: its identity, prekeys, sessions and privacy state, in a
// SQLite file or in memory. Opaque; free with `confide_device_free`.
typedef struct ConfideDevice ConfideDevice;

// Bytes returned by confide; free with `confide_buffer_free`.
typedef struct ConfideBuffer {
  // The bytes, or null when `len` is 0.
  uint8_t *data;
  // Their number.
  size_t len;
} ConfideBuffer;

// The account facts confide does not keep itself, for `confide_device_account_report`.
// Linked devices, groups and business chats are left out of this version of the ABI
// (the report lists none).
typedef struct ConfideAccountInfo {
  // The registered phone number (NUL-terminated UTF-8).
  const char *phone_number;
  // The profile's display name (NUL-terminated UTF-8).
  const char *display_name;
  // The profile's "About" text (NUL-terminated UTF-8).
  const char *about;
  // Whether a profile photo is set.
  bool has_photo;
  // Who sees "last seen" (`CONFIDE_VISIBILITY_*`).
  uint8_t last_seen;
  // Who sees the profile photo (`CONFIDE_VISIBILITY_*`).
  uint8_t profile_photo;
  // Who sees "About" (`CONFIDE_VISIBILITY_*`).
  uint8_t about_visibility;
  // Who can add the user to groups (`CONFIDE_VISIBILITY_*`).
  uint8_t groups;
  // Whether read receipts are sent.
  bool read_receipts;
  // The default timer for new chats (`CONFIDE_TIMER_*`).
  uint8_t default_message_timer;
} ConfideAccountInfo;

// One recipient device of a sealed group message.
typedef struct ConfideRecipient {
  // The recipient's name (NUL-terminated UTF-8); for sealed sender v2, its UUID.
  const char *name;
  // The recipient's device id.
  uint32_t device_id;
} ConfideRecipient;

// What `confide_device_unseal` found in a sealed message. The fields it sets are owned
// by the caller: free them all with `confide_unsealed_free`.
typedef struct ConfideUnsealed {
  // The sender's name as its validated certificate states it (its UUID),
  // NUL-terminated; the address its session and group chains are kept under.
  char *sender_name;
  // The sender's device id, from the certificate.
  uint32_t sender_device;
  // The inner message's kind: `CONFIDE_MESSAGE_TYPE_PREKEY`, `_WHISPER` or
  // `_SENDER_KEY`.
  uint8_t content_type;
  // How the sender asks failures to be shown (0 default, 1 resendable, 2 implicit).
  uint32_t content_hint;
  // The group id the sender attached (empty when none).
  struct ConfideBuffer group_id;
  // The decrypted message.
  struct ConfideBuffer plaintext;
  // A message (1:1 or group) this SQLite device decrypted before and not yet
  // acknowledged with `confide_device_acknowledge_sealed` (its plaintext comes from
  // the store); as for `confide_device_decrypt` and `confide_device_group_decrypt`.
  bool redelivered;
} ConfideUnsealed;

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

// Opens (creating if needed) a persistent device whose state lives in the SQLite file
// at `path`, sealed under the 32-byte `key` (keep it in the platform keystore). The
// first open makes a fresh identity; reopening resumes the identity, sessions and
// privacy state. `name` and `device_id` are this device's own address. `*out`
// receives the handle; free it with `confide_device_free`.
//
// Thread-safe. Several handles (in one or several processes) may open the same file.
//
// # Safety
// `path` and `name` are NUL-terminated; `key` holds `key_len` bytes; `out` is
// writable.
int32_t confide_device_open(const char *path,
                            const uint8_t *key,
                            size_t key_len,
                            const char *name,
                            uint32_t device_id,
                            struct ConfideDevice **out);

// Creates a device with a fresh identity whose state lives only in memory (gone at
// `confide_device_free`). `name` and `device_id` are its own address. `*out` receives
// the handle.
//
// Thread-safe.
//
// # Safety
// `name` is NUL-terminated; `out` is writable.
int32_t confide_device_new_in_memory(const char *name,
                                     uint32_t device_id,
                                     struct ConfideDevice **out);

// Frees a device (null is ignored); a SQLite file is closed, its contents kept.
//
// Not thread-safe: no other call on this device may run concurrently or later.
//
// # Safety
// `device` is null or a handle from `confide_device_open`/`confide_device_new_in_memory`
// not yet freed.
void confide_device_free(struct ConfideDevice *device);

// Fixes the device's clock at `now_ms` (milliseconds since the Unix epoch), or with 0
// returns it to the system clock. Every time-dependent rule (signed prekey timestamps,
// message receipt times, the policy state, the report's date) reads this clock. Meant
// for tests and reproducible runs.
//
// Thread-safe.
//
// # Safety
// `device` is a live handle.
int32_t confide_device_set_time(const struct ConfideDevice *device, uint64_t now_ms);

// Writes the device's 33-byte public identity key into `*out`.
//
// Thread-safe.
//
// # Safety
// `device` is a live handle; `out` is writable.
int32_t confide_device_identity_key(const struct ConfideDevice *device, struct ConfideBuffer *out);

// Makes and keeps a new signed prekey and a one-time prekey, under ids the device
// allocates (never reused, so a bundle published earlier stays valid until its keys
// are used), and writes the bundle to publish (`PreKeyBundle::to_bytes`) into `*out`.
//
// Thread-safe.
//
// # Safety
// `device` is a live handle; `out` is writable.
int32_t confide_device_publish_bundle(const struct ConfideDevice *device,
                                      struct ConfideBuffer *out);

// Starts a session with (`name`, `remote_device_id`) from the bundle bytes it
// published. Trusts the bundle's identity key on first use; a different key than the
// trusted one is `CONFIDE_ERR_UNTRUSTED_IDENTITY`.
//
// Thread-safe on a SQLite device; on an in-memory device serialize calls for the same
// address.
//
// # Safety
// `device` is a live handle; `name` is NUL-terminated; `bundle` holds `bundle_len`
// bytes.
int32_t confide_device_start_session(const struct ConfideDevice *device,
                                     const char *name,
                                     uint32_t remote_device_id,
                                     const uint8_t *bundle,
                                     size_t bundle_len);

// Writes to `*out` whether there is a session with (`name`, `remote_device_id`).
//
// Thread-safe.
//
// # Safety
// `device` is a live handle; `name` is NUL-terminated; `out` is writable.
int32_t confide_device_has_session(const struct ConfideDevice *device,
                                   const char *name,
                                   uint32_t remote_device_id,
                                   bool *out);

// Trusts the 33-byte identity `key` for (`name`, `remote_device_id`) from now on, after
// the app showed the user that the contact's safety number changed.
//
// Thread-safe.
//
// # Safety
// `device` is a live handle; `name` is NUL-terminated; `key` holds `key_len` bytes.
int32_t confide_device_accept_identity(const struct ConfideDevice *device,
                                       const char *name,
                                       uint32_t remote_device_id,
                                       const uint8_t *key,
                                       size_t key_len);

// Encrypts `plaintext` for (`name`, `remote_device_id`). Writes the message type
// (`CONFIDE_MESSAGE_TYPE_*`) to `*out_type` and the message bytes to `*out`. On a
// SQLite device the advanced chain is on disk before this returns.
//
// Thread-safe on a SQLite device; on an in-memory device serialize calls for the same
// address.
//
// # Safety
// `device` is a live handle; `name` is NUL-terminated; `plaintext` holds
// `plaintext_len` bytes; `out_type` and `out` are writable.
int32_t confide_device_encrypt(const struct ConfideDevice *device,
                               const char *name,
                               uint32_t remote_device_id,
                               const uint8_t *plaintext,
                               size_t plaintext_len,
                               uint8_t *out_type,
                               struct ConfideBuffer *out);

// Decrypts a message of `message_type` from (`name`, `remote_device_id`) and writes
// the plaintext to `*out`. On any failure no state changes, so a corrupted message
// leaves the session working.
//
// `*out_redelivered` (may be null) is set to whether this exact message was decrypted
// before and its plaintext comes from the store: a SQLite device keeps each plaintext
// until `confide_device_acknowledge`, so a redelivery after a crash is not lost. After
// the acknowledgement (or on an in-memory device) a repeat is
// `CONFIDE_ERR_DUPLICATE_MESSAGE`.
//
// Thread-safe on a SQLite device; on an in-memory device serialize calls for the same
// address.
//
// # Safety
// `device` is a live handle; `name` is NUL-terminated; `message` holds `message_len`
// bytes; `out` is writable; `out_redelivered` is null or writable.
int32_t confide_device_decrypt(const struct ConfideDevice *device,
                               const char *name,
                               uint32_t remote_device_id,
                               uint8_t message_type,
                               const uint8_t *message,
                               size_t message_len,
                               struct ConfideBuffer *out,
                               bool *out_redelivered);

// Tells a SQLite device that the app has saved the plaintext of this message (the
// same type and bytes given to `confide_device_decrypt`): the store drops its copy and
// keeps only a record that refuses a redelivery as a duplicate. `*out_found` (may be
// null) is set to whether the message was stored; always false on an in-memory device,
// which keeps no plaintext.
//
// Thread-safe.
//
// # Safety
// `device` is a live handle; `name` is NUL-terminated; `message` holds `message_len`
// bytes; `out_found` is null or writable.
int32_t confide_device_acknowledge(const struct ConfideDevice *device,
                                   const char *name,
                                   uint32_t remote_device_id,
                                   uint8_t message_type,
                                   const uint8_t *message,
                                   size_t message_len,
                                   bool *out_found);

// Computes the safety number of the conversation with (`name`, `remote_device_id`),
// from this device's identity key and the one it trusts for that address. `local_id`
// and `remote_id` are the two users' stable identifiers as both apps spell them (for
// example the UTF-8 phone numbers). Writes the 60 digits and a NUL into the caller's
// `out_digits` array of `CONFIDE_SAFETY_NUMBER_SIZE` bytes, and, if `out_scannable` is
// not null, the QR-code payload (version 2) into it. No trusted identity yet is
// `CONFIDE_ERR_NOT_FOUND`.
//
// Thread-safe.
//
// # Safety
// `device` is a live handle; `name` is NUL-terminated; `local_id` and `remote_id` hold
// their lengths in bytes; `out_digits` is writable for `CONFIDE_SAFETY_NUMBER_SIZE`
// bytes; `out_scannable` is null or writable.
int32_t confide_device_safety_number(const struct ConfideDevice *device,
                                     const uint8_t *local_id,
                                     size_t local_id_len,
                                     const char *name,
                                     uint32_t remote_device_id,
                                     const uint8_t *remote_id,
                                     size_t remote_id_len,
                                     char *out_digits,
                                     struct ConfideBuffer *out_scannable);

// Records that the user connected now; the first call registers the account for the
// policy state and the account report. On a SQLite device it persists.
//
// Thread-safe.
//
// # Safety
// `device` is a live handle.
int32_t confide_device_record_connection(const struct ConfideDevice *device);

// Writes the bytes of the 2021 policy schedule (the 2016 and 2021 terms, whose texts
// are hashed, with the June 2021 suspension if `suspended`) into `*out`, for
// `confide_device_account_report`.
//
// Thread-safe.
//
// # Safety
// `text_2016` and `text_2021` hold their lengths in bytes; `out` is writable.
int32_t confide_policy_timeline_2021(const uint8_t *text_2016,
                                     size_t text_2016_len,
                                     const uint8_t *text_2021,
                                     size_t text_2021_len,
                                     bool suspended,
                                     struct ConfideBuffer *out);

// Builds the account-information report now, under the policy `schedule` (bytes from
// `confide_policy_timeline_2021` or a server), and writes it as a ZIP archive
// (`account_info.json`, `account_info.html`, the JSON schema) into `*out`. Needs a
// prior `confide_device_record_connection` (else `CONFIDE_ERR_NOT_FOUND`).
//
// Thread-safe.
//
// # Safety
// `device` is a live handle; `info` points to a `ConfideAccountInfo` whose strings are
// NUL-terminated; `schedule` holds `schedule_len` bytes; `out` is writable.
int32_t confide_device_account_report(const struct ConfideDevice *device,
                                      const struct ConfideAccountInfo *info,
                                      const uint8_t *schedule,
                                      size_t schedule_len,
                                      struct ConfideBuffer *out);

// Writes the distribution message of this device's sending chain in the group
// `distribution_id` (16 bytes) into `*out`, creating and saving the chain on first use;
// later calls return the same chain's message at its current step. Send it to every
// member over the pairwise sessions (`confide_device_encrypt`), who pass it to
// `confide_device_group_process`. Current (libsignal) group layout.
//
// Thread-safe: on a SQLite device the chain is created by a compare-and-swap commit
// (so two handles on one file agree on it); an in-memory device runs its group calls
// one at a time.
//
// # Safety
// `device` is a live handle; `distribution_id` holds `CONFIDE_DISTRIBUTION_ID_LEN`
// bytes; `out` is writable.
int32_t confide_device_group_distribution(const struct ConfideDevice *device,
                                          const uint8_t *distribution_id,
                                          struct ConfideBuffer *out);

// Starts a fresh sending chain in the group (after a member left) and writes its
// distribution message into `*out`, for the remaining members only. The old chain and
// its signing key are gone from the store before this returns.
//
// Thread-safe.
//
// # Safety
// As `confide_device_group_distribution`.
int32_t confide_device_group_rotate(const struct ConfideDevice *device,
                                    const uint8_t *distribution_id,
                                    struct ConfideBuffer *out);

// Stores the chain that a distribution message from (`name`, `sender_device_id`)
// describes, so that sender's group messages decrypt. The message names its group.
// A message for another group or layout than the stored chain is
// `CONFIDE_ERR_INVALID_MESSAGE` and changes nothing.
//
// Thread-safe.
//
// # Safety
// `device` is a live handle; `name` is NUL-terminated; `message` holds `message_len`
// bytes.
int32_t confide_device_group_process(const struct ConfideDevice *device,
                                     const char *name,
                                     uint32_t sender_device_id,
                                     const uint8_t *message,
                                     size_t message_len);

// Encrypts `plaintext` for the group `distribution_id` with this device's sending
// chain and writes the group message into `*out` (send the same bytes to every
// member). The advanced chain is saved before this returns, so no chain step is used
// twice. No chain yet is `CONFIDE_ERR_NO_SENDER_KEY`.
//
// Thread-safe.
//
// # Safety
// `device` is a live handle; `distribution_id` holds `CONFIDE_DISTRIBUTION_ID_LEN`
// bytes; `plaintext` holds `plaintext_len` bytes; `out` is writable.
int32_t confide_device_group_encrypt(const struct ConfideDevice *device,
                                     const uint8_t *distribution_id,
                                     const uint8_t *plaintext,
                                     size_t plaintext_len,
                                     struct ConfideBuffer *out);

// Decrypts a group message from (`name`, `sender_device_id`) and writes the plaintext
// into `*out`. An unknown chain is `CONFIDE_ERR_NO_SENDER_KEY`; a forged or corrupted
// message `CONFIDE_ERR_INVALID_MESSAGE`. A failure changes nothing.
//
// `*out_redelivered` (may be null) is set to whether this exact message was decrypted
// before and its plaintext comes from the store: a SQLite device commits the advanced
// chain and the plaintext in one transaction and keeps the plaintext until
// `confide_device_group_acknowledge`, so a redelivery after a crash is not lost. After
// the acknowledgement (or on an in-memory device, which keeps no plaintext) a repeat
// is `CONFIDE_ERR_DUPLICATE_MESSAGE`.
//
// Thread-safe.
//
// # Safety
// `device` is a live handle; `name` is NUL-terminated; `message` holds `message_len`
// bytes; `out` is writable; `out_redelivered` is null or writable.
int32_t confide_device_group_decrypt(const struct ConfideDevice *device,
                                     const char *name,
                                     uint32_t sender_device_id,
                                     const uint8_t *message,
                                     size_t message_len,
                                     struct ConfideBuffer *out,
                                     bool *out_redelivered);

// Tells a SQLite device that the app has saved the plaintext of this group message
// from (`name`, `sender_device_id`) (the same bytes given to
// `confide_device_group_decrypt`): the store drops its copy and keeps only a record
// that refuses a redelivery as a duplicate. `*out_found` (may be null) is set to
// whether the message was stored; always false on an in-memory device, which keeps no
// plaintext. Bytes that are not a group message are `CONFIDE_ERR_INVALID_MESSAGE`.
//
// Thread-safe.
//
// # Safety
// `device` is a live handle; `name` is NUL-terminated; `message` holds `message_len`
// bytes; `out_found` is null or writable.
int32_t confide_device_group_acknowledge(const struct ConfideDevice *device,
                                         const char *name,
                                         uint32_t sender_device_id,
                                         const uint8_t *message,
                                         size_t message_len,
                                         bool *out_found);

// Encrypts `plaintext` for (`name`, `remote_device_id`) over the session (as
// `confide_device_encrypt`: the chain is saved first) and seals it under this device's
// sender `certificate` (bytes from the app's server), so the envelope does not name
// the sender. Writes the sealed message into `*out`:
// - `version` `CONFIDE_SEALED_SENDER_V1`: the message to deliver to that device;
// - `CONFIDE_SEALED_SENDER_V2`: the multi-recipient message to hand to the server
//   (which splits it, see `confide_sealed_v2_for_recipient`); `name` must be the
//   recipient's UUID, and its registration id comes from the session.
//
// A certificate that is not this device's is `CONFIDE_ERR_INVALID_CERTIFICATE`; no
// identity known for the recipient is `CONFIDE_ERR_NO_SESSION`; both are checked before
// anything is encrypted. The content hint is "default".
//
// Thread-safe on a SQLite device; on an in-memory device serialize calls for the same
// address.
//
// # Safety
// `device` is a live handle; `name` is NUL-terminated; `certificate` and `plaintext`
// hold their lengths in bytes; `out` is writable.
int32_t confide_device_seal_message(const struct ConfideDevice *device,
                                    const char *name,
                                    uint32_t remote_device_id,
                                    const uint8_t *certificate,
                                    size_t certificate_len,
                                    const uint8_t *plaintext,
                                    size_t plaintext_len,
                                    uint8_t version,
                                    struct ConfideBuffer *out);

// Encrypts `plaintext` for the group `distribution_id` (as
// `confide_device_group_encrypt`: the chain is saved first) and seals it under this
// device's sender `certificate`, with the app's `group_id` (may be empty) inside the
// envelope. Writes into `*out`:
// - `version` `CONFIDE_SEALED_SENDER_V1`: the message for the one recipient in
//   `recipients` (`recipient_count` must be 1; each v1 call spends a chain step);
// - `CONFIDE_SEALED_SENDER_V2`: one multi-recipient message for all `recipients`
//   (named by their UUIDs, each with a session), for the server to split.
//
// Thread-safe.
//
// # Safety
// `device` is a live handle; `distribution_id` holds `CONFIDE_DISTRIBUTION_ID_LEN`
// bytes; `group_id`, `certificate` and `plaintext` hold their lengths in bytes;
// `recipients` points to `recipient_count` entries whose names are NUL-terminated;
// `out` is writable.
int32_t confide_device_seal_group_message(const struct ConfideDevice *device,
                                          const uint8_t *distribution_id,
                                          const uint8_t *group_id,
                                          size_t group_id_len,
                                          const uint8_t *certificate,
                                          size_t certificate_len,
                                          const uint8_t *plaintext,
                                          size_t plaintext_len,
                                          uint8_t version,
                                          const struct ConfideRecipient *recipients,
                                          size_t recipient_count,
                                          struct ConfideBuffer *out);

// What the server does with a v2 multi-recipient message (for servers, tests and
// demos): writes into `*out` the per-recipient message it delivers to `name` (a UUID).
// A message without a share for `name` is `CONFIDE_ERR_NOT_FOUND`.
//
// Thread-safe.
//
// # Safety
// `message` holds `message_len` bytes; `name` is NUL-terminated; `out` is writable.
int32_t confide_sealed_v2_for_recipient(const uint8_t *message,
                                        size_t message_len,
                                        const char *name,
                                        struct ConfideBuffer *out);

// Opens a sealed message (v1, or v2 as the server delivered it), validates its sender
// certificate under `trust_root` (33 bytes, or the 32 bare key bytes) at the device's
// time, and decrypts the inner 1:1 or group message as `confide_device_decrypt` and
// `confide_device_group_decrypt` do, from the sender the certificate names. On
// success fills `*out` (free it with `confide_unsealed_free`); on failure leaves it
// as it was and changes no state. Codes beyond those of the two decrypt calls:
// `CONFIDE_ERR_INVALID_CERTIFICATE`, `CONFIDE_ERR_CERTIFICATE_EXPIRED`,
// `CONFIDE_ERR_SELF_SEND`, and `CONFIDE_ERR_UNTRUSTED_IDENTITY` when the certificate's
// identity differs from the one trusted for that sender.
//
// A sender name with an interior NUL (which no C string could name) is returned with
// each NUL replaced by U+FFFD.
//
// Thread-safe on a SQLite device; on an in-memory device serialize calls that may
// carry 1:1 messages from the same sender.
//
// # Safety
// `device` is a live handle; `trust_root` and `message` hold their lengths in bytes;
// `out` is writable.
int32_t confide_device_unseal(const struct ConfideDevice *device,
                              const uint8_t *trust_root,
                              size_t trust_root_len,
                              const uint8_t *message,
                              size_t message_len,
                              struct ConfideUnsealed *out);

// Tells a SQLite device that the app has saved the plaintext of this sealed 1:1 or
// group message (the same bytes given to `confide_device_unseal`), as
// `confide_device_acknowledge` and `confide_device_group_acknowledge` do for unsealed
// ones: the store drops its copy, and a redelivery is then
// `CONFIDE_ERR_DUPLICATE_MESSAGE`. The envelope is opened and its certificate validated
// under `trust_root` again, to find the sender and the inner message. `*out_found`
// (may be null) is set to whether the message was stored; always false on an
// in-memory device, which keeps no plaintext.
//
// Thread-safe.
//
// # Safety
// `device` is a live handle; `trust_root` and `message` hold their lengths in bytes;
// `out_found` is null or writable.
int32_t confide_device_acknowledge_sealed(const struct ConfideDevice *device,
                                          const uint8_t *trust_root,
                                          size_t trust_root_len,
                                          const uint8_t *message,
                                          size_t message_len,
                                          bool *out_found);

// Frees what `confide_device_unseal` put in `*unsealed` (wiping the plaintext) and
// zeroes it, so freeing twice is harmless. Null is ignored.
//
// Thread-safe.
//
// # Safety
// `unsealed` is null, zeroed, or filled by `confide_device_unseal` and not freed since.
void confide_unsealed_free(struct ConfideUnsealed *unsealed);

#if defined(CONFIDE_FFI_TESTING)
// FOR TESTS AND DEMOS ONLY: exported only by a library built with the cargo feature
// `ffi-testing`, declared only when `CONFIDE_FFI_TESTING` is defined. Plays the
// sealed-sender server: certifies the server key `server_private` under id
// `server_key_id` with the trust root `trust_root_private`, then certifies this device
// (its name as the UUID, its device id and identity key, no phone number) until
// `expiration_ms` (milliseconds since the Unix epoch). Writes
// the sender certificate into `*out_certificate` and, if `out_trust_root` is not null,
// the trust root's public key (`CONFIDE_PUBLIC_KEY_LEN` bytes) into it. A real app
// gets its certificate and the trust root from its server; a trust root's private key
// never belongs in an app.
//
// Thread-safe.
//
// # Safety
// `device` is a live handle; `trust_root_private` and `server_private` hold
// `CONFIDE_PRIVATE_KEY_LEN` bytes each; `out_certificate` is writable;
// `out_trust_root` is null or writable for `CONFIDE_PUBLIC_KEY_LEN` bytes.
int32_t confide_test_sender_certificate(const struct ConfideDevice *device,
                                        const uint8_t *trust_root_private,
                                        const uint8_t *server_private,
                                        uint32_t server_key_id,
                                        uint64_t expiration_ms,
                                        struct ConfideBuffer *out_certificate,
                                        uint8_t *out_trust_root);
#endif

// Wipes and frees a buffer returned by confide (a zeroed buffer is ignored).
//
// Thread-safe.
//
// # Safety
// `buffer` came from confide and was not freed before.
void confide_buffer_free(struct ConfideBuffer buffer);

// The last failure on this thread, or null after a success. Valid until the next
// confide call on this thread; do not free it.
//
// Thread-safe (the message is per thread).
const char *confide_last_error_message(void);

// confide's version, a static NUL-terminated string.
//
// Thread-safe.
const char *confide_version(void);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* CONFIDE_H */
