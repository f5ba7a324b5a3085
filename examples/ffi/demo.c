/* Two confide devices set up a session and talk through the C ABI: Alice keeps her
 * state in a SQLite file and is closed and reopened half-way; Bob lives in memory.
 * Built and run by tests/ffi.rs; run under valgrind by .ci/run. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "confide.h"

/* Reports a failed call; returns nonzero when `status` is not CONFIDE_OK. */
static int check(int32_t status, const char *what) {
  if (status != CONFIDE_OK) {
    const char *msg = confide_last_error_message();
    fprintf(stderr, "%s failed: code %d (%s)\n", what, status, msg ? msg : "?");
  }
  return status != CONFIDE_OK;
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
  if (check(confide_device_publish_bundle(bob, 1, 100, &bundle), "publish bundle")) goto done;
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
  printf("replay refused: code %d\n", status);
  if (status != CONFIDE_ERR_DUPLICATE_MESSAGE) goto done;
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
  printf("acknowledged, then refused: code %d\n", status);
  if (status != CONFIDE_ERR_DUPLICATE_MESSAGE) goto done;
  drop_buf(&msg);

  /* Alice's app restarts: close the device, and reopen it from the file. */
  confide_device_free(alice);
  alice = NULL;
  uint8_t bad_key[CONFIDE_STORE_KEY_LEN] = {0};
  status = confide_device_open(db, bad_key, sizeof bad_key, "alice", 1, &wrong);
  printf("wrong store key refused: code %d\n", status);
  if (status != CONFIDE_ERR_WRONG_KEY) goto done;
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
  printf("report before any connection: code %d\n", status);
  if (status != CONFIDE_ERR_NOT_FOUND) goto done;
  if (check(confide_device_record_connection(alice), "record connection") ||
      check(confide_device_account_report(alice, &info, schedule.data, schedule.len, &zip),
            "account report"))
    goto done;
  printf("account report: %zu-byte zip (%s)\n", zip.len,
         zip.len > 4 && memcmp(zip.data, "PK\x03\x04", 4) == 0 ? "PK header" : "BAD");

  /* Null handles are errors, not crashes. */
  status = confide_device_encrypt(NULL, "bob", 1, NULL, 0, &type, &msg);
  printf("null device refused: code %d\n", status);
  if (status != CONFIDE_ERR_INVALID_ARGUMENT) goto done;
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
  rmdir(dir);
  free(db);
  printf(rc == 0 ? "demo: ok\n" : "demo: FAILED\n");
  return rc;
}
