/* Unit tests for AtkCursorKeeper (src/kafka/atk-cursor-keeper.c) with the fake sink: where
 * the daemon starts (--cursor SEQ and --cursor live win over the stores; else the state
 * file, merged with Kafka's), and how the cursor is saved to both stores (each value once,
 * a store that failed is tried again). Kafka's own store is read from a broker that is not
 * there (127.0.0.1:1): the state file must then be used, and the wait is bounded.
 * SPDX-License-Identifier: MIT */
#include <glib/gstdio.h>

#include "atk-config.h"
#include "atk-cursor-keeper.h"
#include "atk-cursor-store.h"
#include "atk-error.h"
#include "atk-fake-sink.h"
#include "atk-test-util.h"

typedef struct
{
  char *dir;
  AtkConfig *config;
  AtkCursorKeeper *keeper;
  AtkKafkaSink *sink;
} Fixture;

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  f->dir = atk_test_make_tmp_dir ("atk-keeper-XXXXXX");
}

/* A keeper for these extra flags (the state directory is always the fixture's). */
static void
make_keeper (Fixture *f, const char *flag)
{
  g_autofree char *dir_arg = g_strdup_printf ("--state-directory=%s", f->dir);
  const char *args[]
      = { "at-kafka", "--bootstrap-servers=127.0.0.1:1", "--output-topic=events", dir_arg, flag,
          NULL };
  char **argv = g_memdup2 (args, sizeof args);
  int argc = flag != NULL ? 5 : 4;
  gboolean exit_now = FALSE;
  g_autoptr (GError) error = NULL;
  AtkKafkaSinkOptions options = { .bootstrap_servers = "127.0.0.1:1", .topic = "events" };

  f->config = atk_config_parse (&argc, &argv, NULL, &exit_now, &error);
  g_free (argv);
  g_assert_no_error (error);
  f->keeper = atk_cursor_keeper_new (f->config);
  f->sink = atk_kafka_sink_new (&options, NULL);
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  g_clear_pointer (&f->keeper, atk_cursor_keeper_free);
  g_clear_pointer (&f->config, atk_config_free);
  g_clear_object (&f->sink);
  atk_test_rm_rf (f->dir);
  g_free (f->dir);
}

static void
write_state (Fixture *f, gint64 cursor)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (atk_cursor_store_save (f->dir, cursor, &error));
  g_assert_no_error (error);
}

static gint64
read_state (Fixture *f)
{
  g_autoptr (GError) error = NULL;
  gint64 cursor = -1;

  g_assert_true (atk_cursor_store_load (f->dir, &cursor, &error));
  g_assert_no_error (error);
  return cursor;
}

static void
test_topic (Fixture *f, gconstpointer data)
{
  make_keeper (f, NULL);
  g_assert_cmpstr (atk_cursor_keeper_get_topic (f->keeper), ==, "events.cursor");
}

/* --cursor SEQ wins over a state file holding more. */
static void
test_explicit_cursor_wins (Fixture *f, gconstpointer data)
{
  g_autofree char *path = g_build_filename (f->dir, "cursor", NULL);
  gboolean has_cursor = FALSE;
  gint64 cursor = -1;
  g_autoptr (GError) error = NULL;

  write_state (f, 1500);
  make_keeper (f, "--cursor=100");
  for (guint transactional = 0; transactional < 2; transactional++)
    {
      g_assert_true (
          atk_cursor_keeper_load_start (f->keeper, transactional, &has_cursor, &cursor, &error));
      g_assert_no_error (error);
      g_assert_true (has_cursor);
      g_assert_cmpint (cursor, ==, 100);
    }
  /* and even a corrupt state file does not matter then */
  g_assert_true (g_file_set_contents (path, "garbage", -1, NULL));
  g_assert_true (atk_cursor_keeper_load_start (f->keeper, FALSE, &has_cursor, &cursor, &error));
  g_assert_cmpint (cursor, ==, 100);
}

static void
test_live_wins (Fixture *f, gconstpointer data)
{
  gboolean has_cursor = TRUE;
  gint64 cursor = -1;
  g_autoptr (GError) error = NULL;

  write_state (f, 1500);
  make_keeper (f, "--cursor=live");
  g_assert_true (atk_cursor_keeper_load_start (f->keeper, FALSE, &has_cursor, &cursor, &error));
  g_assert_no_error (error);
  g_assert_false (has_cursor);
}

/* Stored: the state file's cursor, when Kafka cannot be asked; the wait is bounded. */
static void
test_stored_state_file (Fixture *f, gconstpointer data)
{
  gboolean has_cursor = FALSE;
  gint64 cursor = -1;
  g_autoptr (GError) error = NULL;
  gint64 t0;

  write_state (f, 1500);
  make_keeper (f, NULL);
  t0 = g_get_monotonic_time ();
  g_assert_true (atk_cursor_keeper_load_start (f->keeper, FALSE, &has_cursor, &cursor, &error));
  g_assert_no_error (error);
  g_assert_true (has_cursor);
  g_assert_cmpint (cursor, ==, 1500);
  /* ATK_CURSOR_KEEPER_LOAD_MS and some slack for a loaded machine */
  g_assert_cmpint (g_get_monotonic_time () - t0, <, 4 * ATK_CURSOR_KEEPER_LOAD_MS * 1000);
}

/* Transactional: the state file only (Kafka's store is read once transactions are set up). */
static void
test_stored_transactional (Fixture *f, gconstpointer data)
{
  gboolean has_cursor = TRUE;
  gint64 cursor = -1;
  g_autoptr (GError) error = NULL;

  make_keeper (f, NULL);
  g_assert_true (atk_cursor_keeper_load_start (f->keeper, TRUE, &has_cursor, &cursor, &error));
  g_assert_no_error (error);
  g_assert_false (has_cursor);
  write_state (f, 77);
  g_assert_true (atk_cursor_keeper_load_start (f->keeper, TRUE, &has_cursor, &cursor, &error));
  g_assert_true (has_cursor);
  g_assert_cmpint (cursor, ==, 77);
}

/* An unreadable state file is an error, not a silent start at the live tip. */
static void
test_corrupt_state_file (Fixture *f, gconstpointer data)
{
  g_autofree char *path = g_build_filename (f->dir, "cursor", NULL);
  gboolean has_cursor = FALSE;
  gint64 cursor = -1;
  g_autoptr (GError) error = NULL;

  g_assert_true (g_file_set_contents (path, "12x34\n", -1, NULL));
  make_keeper (f, NULL);
  g_assert_false (atk_cursor_keeper_load_start (f->keeper, TRUE, &has_cursor, &cursor, &error));
  g_assert_nonnull (error);
}

/* A save writes both stores; the same value again writes neither. */
static void
test_save_both_stores (Fixture *f, gconstpointer data)
{
  g_autofree char *path = g_build_filename (f->dir, "cursor", NULL);
  GPtrArray *records;

  make_keeper (f, NULL);
  records = atk_fake_sink_get_cursor_records (f->sink);
  atk_kafka_sink_ensure_topic (f->sink);
  atk_cursor_keeper_save (f->keeper, f->sink, 10);
  g_assert_cmpint (read_state (f), ==, 10);
  g_assert_cmpuint (records->len, ==, 1);
  g_assert_cmpstr (records->pdata[0], ==, "events=10");

  /* unchanged: nothing written (the file is not even touched) */
  g_assert_cmpint (g_unlink (path), ==, 0);
  atk_cursor_keeper_save (f->keeper, f->sink, 10);
  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
  g_assert_cmpuint (records->len, ==, 1);

  atk_cursor_keeper_save (f->keeper, f->sink, 25);
  g_assert_cmpint (read_state (f), ==, 25);
  g_assert_cmpuint (records->len, ==, 2);
  g_assert_cmpstr (records->pdata[1], ==, "events=25");
}

/* No sink (transactions: the record goes with each commit): the file only. */
static void
test_save_without_sink (Fixture *f, gconstpointer data)
{
  make_keeper (f, NULL);
  atk_kafka_sink_ensure_topic (f->sink);
  atk_cursor_keeper_save (f->keeper, NULL, 33);
  g_assert_cmpint (read_state (f), ==, 33);
  g_assert_cmpuint (atk_fake_sink_get_cursor_records (f->sink)->len, ==, 0);
}

/* Kafka not ready, or refusing the record: the same value is produced at a later save. */
static void
test_save_retries_kafka (Fixture *f, gconstpointer data)
{
  GPtrArray *records;

  make_keeper (f, NULL);
  records = atk_fake_sink_get_cursor_records (f->sink);
  atk_fake_sink_set_auto_ready (f->sink, FALSE);
  atk_kafka_sink_ensure_topic (f->sink);
  atk_cursor_keeper_save (f->keeper, f->sink, 5);
  g_assert_cmpuint (records->len, ==, 0);
  g_assert_cmpint (read_state (f), ==, 5);
  atk_fake_sink_set_ready (f->sink);

  atk_fake_sink_refuse_cursor (f->sink, TRUE);
  atk_cursor_keeper_save (f->keeper, f->sink, 5);
  g_assert_cmpuint (records->len, ==, 0);

  atk_fake_sink_refuse_cursor (f->sink, FALSE);
  atk_cursor_keeper_save (f->keeper, f->sink, 5);
  g_assert_cmpuint (records->len, ==, 1);
  g_assert_cmpstr (records->pdata[0], ==, "events=5");
}

/* The state file cannot be written: a warning, and the next save tries again. */
static void
test_save_retries_file (Fixture *f, gconstpointer data)
{
  g_autofree char *blocker = g_build_filename (f->dir, "cursor", NULL);

  make_keeper (f, NULL);
  /* a directory where the file should be: rename() onto it fails */
  g_assert_cmpint (g_mkdir (blocker, 0700), ==, 0);
  g_test_expect_message ("at-kafka-cursor", G_LOG_LEVEL_WARNING, "Cannot save the cursor*");
  atk_cursor_keeper_save (f->keeper, NULL, 8);
  g_test_assert_expected_messages ();
  g_assert_cmpint (g_rmdir (blocker), ==, 0);
  atk_cursor_keeper_save (f->keeper, NULL, 8);
  g_assert_cmpint (read_state (f), ==, 8);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func)                                                                            \
  g_test_add ("/cursor-keeper/" path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
  ADD ("topic", test_topic);
  ADD ("explicit-cursor-wins", test_explicit_cursor_wins);
  ADD ("live-wins", test_live_wins);
  ADD ("stored-state-file", test_stored_state_file);
  ADD ("stored-transactional", test_stored_transactional);
  ADD ("corrupt-state-file", test_corrupt_state_file);
  ADD ("save-both-stores", test_save_both_stores);
  ADD ("save-without-sink", test_save_without_sink);
  ADD ("save-retries-kafka", test_save_retries_kafka);
  ADD ("save-retries-file", test_save_retries_file);
  return g_test_run ();
}
