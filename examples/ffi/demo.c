/* Two confide devices set up a session and talk through the C ABI: Alice keeps her
 * state in a SQLite file and is closed and reopened half-way; Bob lives in memory.
 * Then three devices named by UUIDs (Ben's on SQLite) form a group (sender keys) and
 * exchange sealed-sender messages, v1 and v2.
 * Built and run by tests/ffi.rs; run under valgrind by .ci/run. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The demo certifies its own devices: it needs the test helpers (feature ffi-testing). */
#define CONFIDE_FFI_TESTING
#include "confide.h"

/* Reports a failed call; returns nonzero when `status` is not CONFIDE_OK. */
static int check(int32_t status, const char *what) {
  if (status != CONFIDE_OK) {
    const char *msg = confide_last_error_message();
    fprintf(stderr, "%s failed: code %d (%s)\n", what, status, msg ? msg : "?");
  }
  return status != CONFIDE_OK;
}

/* Prints how a call that must fail was refused; returns nonzero unless with `expected`. */
static int refused(int32_t status, int32_t expected, const char *what) {
  printf("%s: code %d\n", what, status);
  return status != expected;
}

/* Frees a buffer confide returned and marks it empty, so freeing twice is harmless. */
static void drop_buf(ConfideBuffer *b) {
  confide_buffer_free(*b);
  *b = (ConfideBuffer){0};
}

static const uint8_t *text(const char *s) { return (const uint8_t *)s; }

/* Path of `file` inside `dir` (caller frees). */
static char *join(const char *dir, const char *file) {
  size_t n = strlen(dir) + strlen(file) + 2;
  char *p = malloc(n);
  if (p) snprintf(p, n, "%s/%s", dir, file);
  return p;
}

static void remove_in(const char *dir, const char *file) {
  char *p = join(dir, file);
  if (p) {
    unlink(p);
    free(p);
  }
}

/* Sealed sender names a sender by the UUID in its certificate, and v2 names recipients
 * by UUID, so the group and sealed-sender part uses three devices named by UUIDs. */
#define ANN "9d0652a3-dcc3-4d11-975f-74d61598733f"
#define BEN "796abedb-ca4e-4f18-8803-1fde5b921f9f"
#define CAT "e80f7bbe-5b94-471e-bd8c-2173654ea3d1"

/* Hands the group distribution message `skdm` from `from` to the member `to`: encrypted
 * over their pairwise session, decrypted and processed by `to`. */
static int distribute(ConfideDevice *from, const char *from_name, ConfideDevice *to,
                      const char *to_name, const ConfideBuffer *skdm) {
  ConfideBuffer wire = {0}, got = {0};
  uint8_t type = 0;
  int failed =
      check(confide_device_encrypt(from, to_name, 1, skdm->data, skdm->len, &type, &wire),
            "pairwise encrypt") ||
      check(confide_device_decrypt(to, from_name, 1, type, wire.data, wire.len, &got, NULL),
            "pairwise decrypt") ||
      check(confide_device_group_process(to, from_name, 1, got.data, got.len), "group process");
  drop_buf(&wire);
  drop_buf(&got);
  return failed;
}

/* Prints what a device unsealed and frees it. */
static void show_unsealed(const char *who, const char *how, ConfideUnsealed *u) {
  printf("%s unsealed (%s) from %.8s...(device %u), type %u, group id %zu bytes: %.*s\n", who, how,
         u->sender_name, u->sender_device, u->content_type, u->group_id.len, (int)u->plaintext.len,
         (const char *)u->plaintext.data);
  confide_unsealed_free(u);
}

/* `dev` (on SQLite) gets a sealed message it unsealed before: the plaintext comes from its
 * store, flagged as redelivered (printed after `again`), until it acknowledges the
 * envelope; then the envelope is a duplicate (printed after `acknowledged`). */
static int redelivered_until_acknowledged(ConfideDevice *dev, const uint8_t *root,
                                          const ConfideBuffer *sealed, const char *again,
                                          const char *acknowledged) {
  ConfideUnsealed u = {0};
  bool found = false;
  if (check(confide_device_unseal(dev, root, CONFIDE_PUBLIC_KEY_LEN, sealed->data, sealed->len,
                                  &u),
            "unseal again"))
    return 1;
  printf("%s: %.*s (redelivered: %d)\n", again, (int)u.plaintext.len,
         (const char *)u.plaintext.data, u.redelivered);
  bool redelivered = u.redelivered;
  confide_unsealed_free(&u);
  if (!redelivered ||
      check(confide_device_acknowledge_sealed(dev, root, CONFIDE_PUBLIC_KEY_LEN, sealed->data,
                                              sealed->len, &found),
            "acknowledge sealed") ||
      !found)
    return 1;
  int32_t status =
      confide_device_unseal(dev, root, CONFIDE_PUBLIC_KEY_LEN, sealed->data, sealed->len, &u);
  confide_unsealed_free(&u);
  return refused(status, CONFIDE_ERR_DUPLICATE_MESSAGE, acknowledged);
}

/* A three-party group (Ann sends, Ben and Cat read) and sealed sender both ways. Ben
 * keeps his state in a SQLite file in `dir`. */
static int group_and_sealed(const char *dir, const uint8_t *key, size_t key_len) {
  int rc = 1;
  ConfideDevice *ann = NULL, *ben = NULL, *cat = NULL;
  ConfideBuffer bundle = {0}, skdm = {0}, got = {0}, msg = {0}, sealed = {0}, delivered = {0},
                cert_ann = {0}, cert_ben = {0}, cert_cat = {0};
  ConfideUnsealed u = {0};
  bool found = false, redelivered = false;
  int32_t status;
  char *ben_db = join(dir, "ben.db");
  uint8_t group[CONFIDE_DISTRIBUTION_ID_LEN];
  for (size_t i = 0; i < sizeof group; i++) group[i] = (uint8_t)(0xA0 + i);

  if (!ben_db) goto out;
  if (check(confide_device_new_in_memory(ANN, 1, &ann), "new ann") ||
      check(confide_device_open(ben_db, key, key_len, BEN, 1, &ben), "open ben") ||
      check(confide_device_new_in_memory(CAT, 1, &cat), "new cat"))
    goto out;
  /* Ann has pairwise sessions with Ben and Cat. */
  if (check(confide_device_publish_bundle(ben, &bundle), "ben bundle") ||
      check(confide_device_start_session(ann, BEN, 1, bundle.data, bundle.len), "session ben"))
    goto out;
  drop_buf(&bundle);
  if (check(confide_device_publish_bundle(cat, &bundle), "cat bundle") ||
      check(confide_device_start_session(ann, CAT, 1, bundle.data, bundle.len), "session cat"))
    goto out;

  /* Ann's distribution message goes to each member over the pairwise session. */
  if (check(confide_device_group_distribution(ann, group, &skdm), "group distribution"))
    goto out;
  if (distribute(ann, ANN, ben, BEN, &skdm) || distribute(ann, ANN, cat, CAT, &skdm)) goto out;
  printf("group: distribution message (%zu bytes) processed by ben and cat\n", skdm.len);

  const char *hello = "hello group";
  if (check(confide_device_group_encrypt(ann, group, text(hello), strlen(hello), &msg),
            "group encrypt"))
    goto out;
  if (check(confide_device_group_decrypt(ben, ANN, 1, msg.data, msg.len, &got, &redelivered),
            "ben decrypt"))
    goto out;
  printf("group: ben read: %.*s (redelivered: %d)\n", (int)got.len, (const char *)got.data,
         redelivered);
  if (redelivered) goto out;
  drop_buf(&got);
  if (check(confide_device_group_decrypt(cat, ANN, 1, msg.data, msg.len, &got, NULL),
            "cat decrypt"))
    goto out;
  printf("group: cat read: %.*s\n", (int)got.len, (const char *)got.data);
  drop_buf(&got);
  /* Cat lives in memory and keeps no plaintext: a repeat is a duplicate at once. */
  status = confide_device_group_decrypt(cat, ANN, 1, msg.data, msg.len, &got, NULL);
  if (refused(status, CONFIDE_ERR_DUPLICATE_MESSAGE, "group replay on cat refused")) goto out;
  /* Ben's SQLite store committed the plaintext with the chain step: the same message
   * again (say after a crash before the app saved it) is a redelivery... */
  if (check(confide_device_group_decrypt(ben, ANN, 1, msg.data, msg.len, &got, &redelivered),
            "ben redelivery"))
    goto out;
  printf("group: redelivered to ben: %.*s (redelivered: %d)\n", (int)got.len,
         (const char *)got.data, redelivered);
  if (!redelivered) goto out;
  drop_buf(&got);
  /* ...until he acknowledges it; then it is a duplicate. */
  if (check(confide_device_group_acknowledge(ben, ANN, 1, msg.data, msg.len, &found),
            "group acknowledge") ||
      !found)
    goto out;
  status = confide_device_group_decrypt(ben, ANN, 1, msg.data, msg.len, &got, NULL);
  if (refused(status, CONFIDE_ERR_DUPLICATE_MESSAGE, "group message acknowledged, then refused"))
    goto out;
  status = confide_device_group_decrypt(cat, BEN, 1, msg.data, msg.len, &got, NULL);
  if (refused(status, CONFIDE_ERR_NO_SENDER_KEY, "group message under the wrong sender refused"))
    goto out;
  drop_buf(&msg);

  /* Sealed sender. The server's part (trust root, server key, certificates) is played by
   * the test helper; a real app gets its certificate and the trust root from its server. */
  uint8_t root_private[CONFIDE_PRIVATE_KEY_LEN], server_private[CONFIDE_PRIVATE_KEY_LEN];
  uint8_t root[CONFIDE_PUBLIC_KEY_LEN], other_root[CONFIDE_PUBLIC_KEY_LEN];
  for (size_t i = 0; i < sizeof root_private; i++) {
    root_private[i] = (uint8_t)(3 * i + 5);
    server_private[i] = (uint8_t)(11 * i + 2);
  }
  const uint64_t expires = 4102444800000ULL; /* 2100-01-01 */
  if (check(confide_test_sender_certificate(ann, root_private, server_private, 1, expires,
                                            &cert_ann, root),
            "certificate ann") ||
      check(confide_test_sender_certificate(ben, root_private, server_private, 1, expires,
                                            &cert_ben, NULL),
            "certificate ben") ||
      check(confide_test_sender_certificate(cat, root_private, server_private, 1, expires,
                                            &cert_cat, NULL),
            "certificate cat"))
    goto out;

  /* Ann -> Ben, v1. */
  const char *v1 = "sealed v1 from ann";
  if (check(confide_device_seal_message(ann, BEN, 1, cert_ann.data, cert_ann.len, text(v1),
                                        strlen(v1), CONFIDE_SEALED_SENDER_V1, &sealed),
            "seal v1"))
    goto out;
  /* A corrupted envelope and a foreign trust root are refused, changing nothing... */
  sealed.data[sealed.len / 2] ^= 0x01;
  status = confide_device_unseal(ben, root, sizeof root, sealed.data, sealed.len, &u);
  if (refused(status, CONFIDE_ERR_INVALID_MESSAGE, "corrupted sealed message refused")) goto out;
  sealed.data[sealed.len / 2] ^= 0x01;
  memcpy(other_root, root, sizeof root);
  other_root[5] ^= 0x01;
  status = confide_device_unseal(ben, other_root, sizeof other_root, sealed.data, sealed.len, &u);
  if (refused(status, CONFIDE_ERR_INVALID_CERTIFICATE, "foreign trust root refused")) goto out;
  /* ...so the genuine envelope still opens. */
  if (check(confide_device_unseal(ben, root, sizeof root, sealed.data, sealed.len, &u),
            "unseal v1"))
    goto out;
  show_unsealed("ben", "v1", &u);
  /* Ben's SQLite store keeps the plaintext until he acknowledges the envelope. */
  if (redelivered_until_acknowledged(ben, root, &sealed, "ben got the v1 envelope again",
                                     "sealed message acknowledged, then refused"))
    goto out;
  drop_buf(&sealed);

  /* Ben -> Ann, v2: one multi-recipient message; the server hands Ann her copy. */
  const char *v2 = "sealed v2 from ben";
  if (check(confide_device_seal_message(ben, ANN, 1, cert_ben.data, cert_ben.len, text(v2),
                                        strlen(v2), CONFIDE_SEALED_SENDER_V2, &sealed),
            "seal v2") ||
      check(confide_sealed_v2_for_recipient(sealed.data, sealed.len, ANN, &delivered),
            "split v2") ||
      check(confide_device_unseal(ann, root, sizeof root, delivered.data, delivered.len, &u),
            "unseal v2"))
    goto out;
  show_unsealed("ann", "v2", &u);
  drop_buf(&sealed);
  drop_buf(&delivered);

  /* Ann -> the group, sealed v2 to Ben and Cat at once. */
  const char *to_all = "sealed to the group";
  const char *group_id = "demo-group";
  ConfideRecipient members[] = {{BEN, 1}, {CAT, 1}};
  if (check(confide_device_seal_group_message(ann, group, text(group_id), strlen(group_id),
                                              cert_ann.data, cert_ann.len, text(to_all),
                                              strlen(to_all), CONFIDE_SEALED_SENDER_V2, members,
                                              2, &sealed),
            "seal group v2"))
    goto out;
  if (check(confide_sealed_v2_for_recipient(sealed.data, sealed.len, CAT, &delivered),
            "split for cat") ||
      check(confide_device_unseal(cat, root, sizeof root, delivered.data, delivered.len, &u),
            "cat unseal"))
    goto out;
  show_unsealed("cat", "group v2", &u);
  status = confide_device_unseal(cat, root, sizeof root, delivered.data, delivered.len, &u);
  if (refused(status, CONFIDE_ERR_DUPLICATE_MESSAGE, "sealed group replay on cat refused"))
    goto out;
  /* In-memory: nothing to acknowledge. */
  if (check(confide_device_acknowledge_sealed(cat, root, sizeof root, delivered.data,
                                              delivered.len, &found),
            "cat acknowledge sealed group") ||
      found)
    goto out;
  drop_buf(&delivered);
  if (check(confide_sealed_v2_for_recipient(sealed.data, sealed.len, BEN, &delivered),
            "split for ben") ||
      check(confide_device_unseal(ben, root, sizeof root, delivered.data, delivered.len, &u),
            "ben unseal"))
    goto out;
  if (u.redelivered) goto out;
  show_unsealed("ben", "group v2", &u);
  /* Ben (SQLite) gets his copy again: the stored plaintext, flagged, until he
   * acknowledges the envelope; then it is a duplicate. */
  if (redelivered_until_acknowledged(ben, root, &delivered,
                                     "ben got the sealed group message again",
                                     "sealed group message acknowledged, then refused"))
    goto out;
  drop_buf(&sealed);
  drop_buf(&delivered);

  /* Once the certificate has expired (on the receiver's clock) it is refused. */
  if (check(confide_device_seal_message(ann, BEN, 1, cert_ann.data, cert_ann.len, text(v1),
                                        strlen(v1), CONFIDE_SEALED_SENDER_V1, &sealed),
            "seal v1 again") ||
      check(confide_device_set_time(ben, expires + 1), "set time"))
    goto out;
  status = confide_device_unseal(ben, root, sizeof root, sealed.data, sealed.len, &u);
  if (refused(status, CONFIDE_ERR_CERTIFICATE_EXPIRED, "expired certificate refused")) goto out;
  drop_buf(&sealed);

  /* Cat leaves: Ann rotates and gives the new chain to Ben only. */
  drop_buf(&skdm);
  if (check(confide_device_group_rotate(ann, group, &skdm), "rotate") ||
      distribute(ann, ANN, ben, BEN, &skdm))
    goto out;
  const char *after = "cat has left";
  if (check(confide_device_group_encrypt(ann, group, text(after), strlen(after), &msg),
            "group encrypt after rotation") ||
      check(confide_device_group_decrypt(ben, ANN, 1, msg.data, msg.len, &got, NULL),
            "ben decrypt after rotation"))
    goto out;
  printf("group: ben read after the rotation: %.*s\n", (int)got.len, (const char *)got.data);
  drop_buf(&got);
  status = confide_device_group_decrypt(cat, ANN, 1, msg.data, msg.len, &got, NULL);
  if (refused(status, CONFIDE_ERR_NO_SENDER_KEY, "cat, who left, refused")) goto out;
  drop_buf(&got);
  drop_buf(&msg);

  /* Misuse is refused before anything is encrypted. */
  int32_t misuse[] = {
      /* Ben's certificate on Ann's device. */
      confide_device_seal_message(ann, BEN, 1, cert_ben.data, cert_ben.len, text(v1), strlen(v1),
                                  CONFIDE_SEALED_SENDER_V1, &sealed),
      /* No such sealed sender version. */
      confide_device_seal_message(ann, BEN, 1, cert_ann.data, cert_ann.len, text(v1), strlen(v1),
                                  3, &sealed),
      /* v1 seals for exactly one recipient. */
      confide_device_seal_group_message(ann, group, NULL, 0, cert_ann.data, cert_ann.len,
                                        text(v1), strlen(v1), CONFIDE_SEALED_SENDER_V1, members,
                                        2, &sealed),
      /* Ben has no sending chain in the group. */
      confide_device_group_encrypt(ben, group, text(v1), strlen(v1), &msg),
      /* Cat has no session with Ben, so no identity to seal to. */
      confide_device_seal_message(cat, BEN, 1, cert_cat.data, cert_cat.len, text(v1), strlen(v1),
                                  CONFIDE_SEALED_SENDER_V1, &sealed),
  };
  int32_t expected[] = {CONFIDE_ERR_INVALID_CERTIFICATE, CONFIDE_ERR_INVALID_ARGUMENT,
                        CONFIDE_ERR_INVALID_ARGUMENT, CONFIDE_ERR_NO_SENDER_KEY,
                        CONFIDE_ERR_NO_SESSION};
  printf("misuse refused: codes");
  for (size_t i = 0; i < sizeof misuse / sizeof misuse[0]; i++) printf(" %d", misuse[i]);
  printf("\n");
  if (memcmp(misuse, expected, sizeof misuse) != 0) goto out;
  rc = 0;

out:
  confide_unsealed_free(&u);
  drop_buf(&bundle);
  drop_buf(&skdm);
  drop_buf(&got);
  drop_buf(&msg);
  drop_buf(&sealed);
  drop_buf(&delivered);
  drop_buf(&cert_ann);
  drop_buf(&cert_ben);
  drop_buf(&cert_cat);
  confide_device_free(ann);
  confide_device_free(ben);
  confide_device_free(cat);
  free(ben_db);
  return rc;
}

int main(void) {
  int rc = 1;
  ConfideDevice *alice = NULL, *bob = NULL, *wrong = NULL;
  ConfideBuffer bundle = {0}, msg = {0}, reply = {0}, read = {0}, scan = {0}, zip = {0},
                schedule = {0};
  uint8_t type = 0, reply_type = 0;
  bool flag = false;
  int32_t status;
  uint8_t key[CONFIDE_STORE_KEY_LEN];
  char alice_number[CONFIDE_SAFETY_NUMBER_SIZE], bob_number[CONFIDE_SAFETY_NUMBER_SIZE];
  char *db = NULL;

  /* The store key would live in the platform keystore; a fixed one will do here. */
  for (size_t i = 0; i < sizeof key; i++) key[i] = (uint8_t)(i * 7 + 1);

  const char *tmp = getenv("TMPDIR");
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/confide-demo-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  db = join(dir, "alice.db");
  if (!db) goto done;

  printf("confide %s\n", confide_version());
  if (check(confide_device_open(db, key, sizeof key, "alice", 1, &alice), "open alice") ||
      check(confide_device_new_in_memory("bob", 1, &bob), "new bob"))
    goto done;

  /* Bob publishes a bundle; Alice starts a session from it. */
  if (check(confide_device_publish_bundle(bob, &bundle), "publish bundle")) goto done;
  if (check(confide_device_start_session(alice, "bob", 1, bundle.data, bundle.len),
            "start session"))
    goto done;

  const char *hello = "hello from C";
  if (check(confide_device_encrypt(alice, "bob", 1, text(hello), strlen(hello), &type, &msg),
            "encrypt"))
    goto done;
  printf("alice sent type %u, %zu bytes\n", type, msg.len);
  if (check(confide_device_decrypt(bob, "alice", 1, type, msg.data, msg.len, &read, &flag),
            "decrypt"))
    goto done;
  printf("bob read: %.*s\n", (int)read.len, (const char *)read.data);
  drop_buf(&read);

  /* Bob's store is in memory and keeps no plaintext: a repeat is a duplicate. */
  status = confide_device_decrypt(bob, "alice", 1, type, msg.data, msg.len, &read, NULL);
  if (refused(status, CONFIDE_ERR_DUPLICATE_MESSAGE, "replay refused")) goto done;
  drop_buf(&msg);

  const char *answer = "hi C, Bob here";
  if (check(confide_device_encrypt(bob, "alice", 1, text(answer), strlen(answer), &type, &msg),
            "encrypt reply"))
    goto done;
  if (check(confide_device_decrypt(alice, "bob", 1, type, msg.data, msg.len, &read, &flag),
            "decrypt reply"))
    goto done;
  printf("alice read: %.*s (redelivered: %d)\n", (int)read.len, (const char *)read.data, flag);
  drop_buf(&read);

  /* Alice's SQLite store kept the plaintext: the same message again is a redelivery... */
  if (check(confide_device_decrypt(alice, "bob", 1, type, msg.data, msg.len, &read, &flag),
            "redelivery"))
    goto done;
  printf("redelivered to alice: %.*s (redelivered: %d)\n", (int)read.len,
         (const char *)read.data, flag);
  if (!flag) goto done;
  drop_buf(&read);
  /* ...until she acknowledges it; then it is a duplicate. */
  if (check(confide_device_acknowledge(alice, "bob", 1, type, msg.data, msg.len, &flag),
            "acknowledge") ||
      !flag)
    goto done;
  status = confide_device_decrypt(alice, "bob", 1, type, msg.data, msg.len, &read, NULL);
  if (refused(status, CONFIDE_ERR_DUPLICATE_MESSAGE, "acknowledged, then refused")) goto done;
  drop_buf(&msg);

  /* Alice's app restarts: close the device, and reopen it from the file. */
  confide_device_free(alice);
  alice = NULL;
  uint8_t bad_key[CONFIDE_STORE_KEY_LEN] = {0};
  status = confide_device_open(db, bad_key, sizeof bad_key, "alice", 1, &wrong);
  if (refused(status, CONFIDE_ERR_WRONG_KEY, "wrong store key refused")) goto done;
  if (check(confide_device_open(db, key, sizeof key, "alice", 1, &alice), "reopen alice"))
    goto done;
  if (check(confide_device_has_session(alice, "bob", 1, &flag), "has_session") || !flag)
    goto done;
  printf("alice reopened: session with bob resumed\n");

  const char *again = "still here after a restart";
  if (check(confide_device_encrypt(alice, "bob", 1, text(again), strlen(again), &type, &msg),
            "encrypt after reopening"))
    goto done;
  if (check(confide_device_decrypt(bob, "alice", 1, type, msg.data, msg.len, &read, NULL),
            "decrypt after reopening"))
    goto done;
  printf("bob read: %.*s (type %u)\n", (int)read.len, (const char *)read.data, type);
  drop_buf(&read);

  /* A corrupted copy is refused with a code; the genuine message decrypts afterwards. */
  const char *later = "one more from Bob";
  if (check(confide_device_encrypt(bob, "alice", 1, text(later), strlen(later), &reply_type,
                                   &reply),
            "encrypt later"))
    goto done;
  reply.data[reply.len - 1] ^= 0x01;
  status = confide_device_decrypt(alice, "bob", 1, reply_type, reply.data, reply.len, &read, NULL);
  printf("corrupted message refused: code %d (%s)\n", status, confide_last_error_message());
  if (status != CONFIDE_ERR_INVALID_MESSAGE) goto done;
  reply.data[reply.len - 1] ^= 0x01;
  if (check(confide_device_decrypt(alice, "bob", 1, reply_type, reply.data, reply.len, &read,
                                   NULL),
            "decrypt genuine"))
    goto done;
  printf("alice read after the corrupted copy: %.*s\n", (int)read.len, (const char *)read.data);
  drop_buf(&read);

  /* Both see the same safety number. */
  if (check(confide_device_safety_number(alice, text("alice"), 5, "bob", 1, text("bob"), 3,
                                         alice_number, &scan),
            "safety number (alice)") ||
      check(confide_device_safety_number(bob, text("bob"), 3, "alice", 1, text("alice"), 5,
                                         bob_number, NULL),
            "safety number (bob)"))
    goto done;
  printf("safety number: %s (%s on both sides; QR payload %zu bytes)\n", alice_number,
         strcmp(alice_number, bob_number) == 0 ? "same" : "DIFFERENT", scan.len);
  if (strcmp(alice_number, bob_number) != 0) goto done;

  /* Alice's account report, as a ZIP archive. */
  const char *t2016 = "terms 2016", *t2021 = "terms 2021";
  ConfideAccountInfo info = {
      .phone_number = "+15550100",
      .display_name = "Alice",
      .about = "Hey there",
      .has_photo = false,
      .last_seen = CONFIDE_VISIBILITY_CONTACTS,
      .profile_photo = CONFIDE_VISIBILITY_EVERYONE,
      .about_visibility = CONFIDE_VISIBILITY_EVERYONE,
      .groups = CONFIDE_VISIBILITY_CONTACTS,
      .read_receipts = true,
      .default_message_timer = CONFIDE_TIMER_OFF,
  };
  if (check(confide_policy_timeline_2021(text(t2016), strlen(t2016), text(t2021), strlen(t2021),
                                         true, &schedule),
            "schedule"))
    goto done;
  status = confide_device_account_report(alice, &info, schedule.data, schedule.len, &zip);
  if (refused(status, CONFIDE_ERR_NOT_FOUND, "report before any connection")) goto done;
  if (check(confide_device_record_connection(alice), "record connection") ||
      check(confide_device_account_report(alice, &info, schedule.data, schedule.len, &zip),
            "account report"))
    goto done;
  printf("account report: %zu-byte zip (%s)\n", zip.len,
         zip.len > 4 && memcmp(zip.data, "PK\x03\x04", 4) == 0 ? "PK header" : "BAD");

  /* Groups and sealed sender, on three more devices. */
  if (group_and_sealed(dir, key, sizeof key) != 0) goto done;

  /* Null handles are errors, not crashes. */
  status = confide_device_encrypt(NULL, "bob", 1, NULL, 0, &type, &msg);
  if (refused(status, CONFIDE_ERR_INVALID_ARGUMENT, "null device refused")) goto done;
  rc = 0;

done:
  drop_buf(&bundle);
  drop_buf(&msg);
  drop_buf(&reply);
  drop_buf(&read);
  drop_buf(&scan);
  drop_buf(&zip);
  drop_buf(&schedule);
  confide_device_free(wrong);
  confide_device_free(alice);
  confide_device_free(bob);
  remove_in(dir, "alice.db");
  remove_in(dir, "alice.db-wal");
  remove_in(dir, "alice.db-shm");
  remove_in(dir, "ben.db");
  remove_in(dir, "ben.db-wal");
  remove_in(dir, "ben.db-shm");
  rmdir(dir);
  free(db);
  printf(rc == 0 ? "demo: ok\n" : "demo: FAILED\n");
  return rc;
}
