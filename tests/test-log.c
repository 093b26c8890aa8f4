/* Tests for atk-log: the event-line helper's fields and its rate limit.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-test"

#include "atk-log.h"

typedef struct
{
  guint lines;
  char *seq;
  char *did;
  char *message;
  char *domain;
} Written;

static Written written;

static GLogWriterOutput
writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
  written.lines++;
  g_clear_pointer (&written.seq, g_free);
  g_clear_pointer (&written.did, g_free);
  g_clear_pointer (&written.message, g_free);
  g_clear_pointer (&written.domain, g_free);
  for (gsize i = 0; i < n_fields; i++)
    {
      char *value = g_strndup (fields[i].value, fields[i].length < 0 ? strlen (fields[i].value)
                                                                     : (gsize)fields[i].length);
      if (g_strcmp0 (fields[i].key, "ATK_SEQ") == 0)
        written.seq = value;
      else if (g_strcmp0 (fields[i].key, "ATK_DID") == 0)
        written.did = value;
      else if (g_strcmp0 (fields[i].key, "MESSAGE") == 0)
        written.message = value;
      else if (g_strcmp0 (fields[i].key, "GLIB_DOMAIN") == 0)
        written.domain = value;
      else
        g_free (value);
    }
  return G_LOG_WRITER_HANDLED;
}

static void
test_fields (void)
{
  guint before = written.lines;

  atk_log_event (G_LOG_LEVEL_INFO, NULL, TRUE, 42, "did:plc:x", "seq %d skipped", 42);
  g_assert_cmpuint (written.lines, ==, before + 1);
  g_assert_cmpstr (written.seq, ==, "42");
  g_assert_cmpstr (written.did, ==, "did:plc:x");
  g_assert_cmpstr (written.message, ==, "seq 42 skipped");
  g_assert_cmpstr (written.domain, ==, "at-kafka-test");

  atk_log_event (G_LOG_LEVEL_INFO, NULL, FALSE, 0, NULL, "no event");
  g_assert_null (written.seq);
  g_assert_null (written.did);
  g_assert_cmpstr (written.message, ==, "no event");
}

/* A burst: the first line goes out, the rest are held back (counted in the limit) until the
 * interval has passed; the next line then says how many. */
static void
test_rate_limit (void)
{
  AtkLogLimit limit = { 0 };
  guint before = written.lines;

  for (guint i = 0; i < 16; i++)
    atk_log_event (G_LOG_LEVEL_INFO, &limit, TRUE, i, NULL, "line %u", i);
  g_assert_cmpuint (written.lines, ==, before + 1);
  g_assert_cmpstr (written.message, ==, "line 0");
  g_assert_cmpuint (limit.held, ==, 15);

  limit.next_us = 0; /* as if the interval had passed */
  atk_log_event (G_LOG_LEVEL_INFO, &limit, TRUE, 16, NULL, "line %u", 16);
  g_assert_cmpuint (written.lines, ==, before + 2);
  g_assert_cmpstr (written.message, ==, "line 16 (15 more since the last line)");
  g_assert_cmpuint (limit.held, ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_log_set_writer_func (writer, NULL, NULL);
  g_test_add_func ("/log/fields", test_fields);
  g_test_add_func ("/log/rate-limit", test_rate_limit);
  return g_test_run ();
}
