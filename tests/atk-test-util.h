/* Helpers shared by the GTest programs. They read the vectors with their own code, never
 * with the code under test, so that a bug there cannot hide in the oracle. */
#pragma once

#include <gio/gio.h>
#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* ---- vectors ---- */

/* Path of a file under the test vectors (ATK_VECTORS_DIR). */
char *atk_test_vector_path (const char *relative);

/* Loads a vector file whole; aborts the test if missing (vectors are always present in CI). */
GBytes *atk_test_load_vector (const char *relative);

/* Splits a [u32 LE length][frame] vector file by hand (not with src/atk-frame.c) into
 * GBytes views of each frame. Fails the test on a torn file or on a file with no frame. */
GPtrArray *atk_test_load_frames (const char *relative);

/* One parsed JsonNode per line of a .jsonl vector (a final newline is allowed, an empty line
 * elsewhere is not). Fails the test on a line that is not JSON. */
GPtrArray *atk_test_load_jsonl (const char *relative);

/* "a1 61 61 01" → bytes; spaces are ignored, anything else must be hex pairs. */
GByteArray *atk_test_hex (const char *text);

/* The non-empty lines of tests/tap/<name> (the Tap session fixtures), as strings. */
GPtrArray *atk_test_load_tap_fixture (const char *name);

/* ---- JSON values ---- */

typedef enum
{
  /* 1 and 1.0 are equal: for vectors that write integers as 123.0. */
  ATK_TEST_JSON_NUMBERS_BY_VALUE,
  /* An integer never equals a double: the output's number types are part of the check. */
  ATK_TEST_JSON_NUMBERS_STRICT,
} AtkTestJsonNumbers;

/* Deep equality; object member order is ignored. On a mismatch, where (if not NULL) gets
 * the path to the first difference, e.g. ".ops[2].path". */
gboolean atk_test_json_equal (JsonNode *a, JsonNode *b, AtkTestJsonNumbers numbers, GString *where);

/* Fails the test, showing both values and where they differ, unless they are equal. */
void atk_test_assert_json_equal (JsonNode *got, JsonNode *want, AtkTestJsonNumbers numbers,
                                 const char *context);

/* ---- waiting on a main context, always with a deadline ---- */

typedef gboolean (*AtkTestCondition) (gpointer user_data);

/* Iterates context (NULL: the default one) until cond(user_data) holds or timeout_ms pass;
 * returns cond(user_data). A condition changed by another thread is seen within a tick. */
gboolean atk_test_wait_until (GMainContext *context, AtkTestCondition cond, gpointer user_data,
                              guint timeout_ms);

/* atk_test_wait_until() for the common case of a flag set by a callback. */
gboolean atk_test_wait_for_flag (GMainContext *context, const gboolean *flag, guint timeout_ms);

/* atk_test_wait_until() for a count that grows (a GArray's or GPtrArray's len, say) to at
 * least at_least. */
gboolean atk_test_wait_for_count (GMainContext *context, const guint *count, guint at_least,
                                  guint timeout_ms);

/* Iterates context for ms, whatever happens: room for events that must not come. */
void atk_test_run_for (GMainContext *context, guint ms);

/* ---- files ---- */

/* A fresh directory under the temporary directory; tmpl ends in XXXXXX. */
char *atk_test_make_tmp_dir (const char *tmpl);

/* Removes path and, for a directory, everything below it (symlinks are not followed). */
void atk_test_rm_rf (const char *path);

/* ---- memory ---- */

/* A "KiB" field of /proc/self/status (e.g. "VmRSS", "VmHWM"). */
gsize atk_test_status_kib (const char *field);

/* ---- ports ---- */

/* A TCP port on 127.0.0.1 that refuses every connection for as long as *holder (set here;
 * unref it when done) lives: a socket bound to port 0 that never listens. No other process
 * can take the port meanwhile, unlike a port found free and closed again. */
guint16 atk_test_refusing_port (GSocket **holder);

/* For a server that cannot bind port 0 and report it (a Kafka broker, which must come
 * back on the same port after a restart): the lower of two consecutive ports on which
 * nothing listens now, below the kernel's ephemeral range (ip_local_port_range), so that
 * no port-0 bind or outgoing connection is handed them meanwhile. Read from /proc, not by
 * binding and closing. The caller checks that its server got the port. */
guint16 atk_test_unused_port_pair (void);

G_END_DECLS
