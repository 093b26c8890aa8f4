/* Test helpers for the metadata tests: the real PLC directory and PDSes of run-plc.mjs as a
 * subprocess, and waiting on the main context with a deadline. Static, header-only: the
 * two test programs that use it include it.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#define ATK_TEST_PLC_START_MS 90000 /* npm-installed node servers: first start is slow */

typedef gboolean (*AtkPlcCondition) (gpointer user_data);

static gboolean
plc_tick (gpointer user_data)
{
  return G_SOURCE_CONTINUE;
}

/* Iterates the default context until cond holds or timeout_ms pass; returns cond. */
static G_GNUC_UNUSED gboolean
plc_wait_until (AtkPlcCondition cond, gpointer user_data, guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64)timeout_ms * 1000;
  guint ticker = g_timeout_add (10, plc_tick, NULL);

  while (!cond (user_data) && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (ticker);
  return cond (user_data);
}

typedef struct
{
  GSubprocess *proc;
  GDataInputStream *out;
  GOutputStream *in;
  JsonNode *ready; /* the first line: URLs and accounts */
} AtkTestPlc;

typedef struct
{
  gboolean done;
  char *line;
  GError *error;
} PlcLine;

static void
plc_on_line (GObject *source, GAsyncResult *result, gpointer user_data)
{
  PlcLine *line = user_data;

  line->line = g_data_input_stream_read_line_finish_utf8 (G_DATA_INPUT_STREAM (source), result,
                                                          NULL, &line->error);
  line->done = TRUE;
}

static gboolean
plc_line_done (gpointer user_data)
{
  return ((PlcLine *)user_data)->done;
}

static char *
plc_read_line (AtkTestPlc *plc, guint timeout_ms)
{
  PlcLine line = { 0 };

  g_data_input_stream_read_line_async (plc->out, G_PRIORITY_DEFAULT, NULL, plc_on_line, &line);
  if (!plc_wait_until (plc_line_done, &line, timeout_ms))
    g_error ("run-plc.mjs said nothing within %u ms", timeout_ms);
  g_assert_no_error (line.error);
  if (line.line == NULL)
    g_error ("run-plc.mjs exited (see its stderr above)");
  return line.line;
}

static G_GNUC_UNUSED AtkTestPlc *
atk_test_plc_start (void)
{
  const char *srcdir = g_getenv ("ATK_SOURCE_DIR");
  g_autofree char *dir = NULL;
  g_autofree char *script = NULL;
  g_autofree char *modules = NULL;
  g_autofree char *line = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocessLauncher) launcher = NULL;
  AtkTestPlc *plc = g_new0 (AtkTestPlc, 1);

  g_assert_nonnull (srcdir);
  dir = g_build_filename (srcdir, "tests", "plc", NULL);
  script = g_build_filename (dir, "run-plc.mjs", NULL);
  modules = g_build_filename (dir, "node_modules", "@did-plc", "server", NULL);
  if (!g_file_test (modules, G_FILE_TEST_IS_DIR))
    g_error ("%s is missing: run `npm ci --prefix %s` first", modules, dir);

  launcher
      = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_subprocess_launcher_setenv (launcher, "LOG_ENABLED", "false", TRUE);
  plc->proc = g_subprocess_launcher_spawn (launcher, &error, "node", script, NULL);
  g_assert_no_error (error);
  plc->out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (plc->proc));
  plc->in = g_object_ref (g_subprocess_get_stdin_pipe (plc->proc));
  line = plc_read_line (plc, ATK_TEST_PLC_START_MS);
  plc->ready = json_from_string (line, &error);
  g_assert_no_error (error);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (plc->ready));
  return plc;
}

static G_GNUC_UNUSED const char *
atk_test_plc_url (AtkTestPlc *plc)
{
  return json_object_get_string_member (json_node_get_object (plc->ready), "plc");
}

/* Account i's member `name`: "did", "handle" or "pds" (the endpoint it registered). */
static G_GNUC_UNUSED const char *
atk_test_plc_account (AtkTestPlc *plc, guint i, const char *name)
{
  JsonArray *accounts
      = json_object_get_array_member (json_node_get_object (plc->ready), "accounts");

  g_assert_cmpuint (i, <, json_array_get_length (accounts));
  return json_object_get_string_member (json_array_get_object_element (accounts, i), name);
}

/* Sends one command line and checks its answer is {"ok":…}. */
static G_GNUC_UNUSED void
atk_test_plc_command (AtkTestPlc *plc, const char *command)
{
  g_autofree char *text = g_strconcat (command, "\n", NULL);
  g_autofree char *answer = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) node = NULL;

  g_output_stream_write_all (plc->in, text, strlen (text), NULL, NULL, &error);
  g_assert_no_error (error);
  answer = plc_read_line (plc, 30000);
  node = json_from_string (answer, &error);
  g_assert_no_error (error);
  if (!json_object_has_member (json_node_get_object (node), "ok"))
    g_error ("run-plc.mjs: %s → %s", command, answer);
}

static G_GNUC_UNUSED void
atk_test_plc_free (AtkTestPlc *plc)
{
  g_autoptr (GError) error = NULL;

  if (plc == NULL)
    return;
  /* Closing stdin is its signal to stop. */
  g_output_stream_close (plc->in, NULL, NULL);
  if (!g_subprocess_wait (plc->proc, NULL, &error))
    g_subprocess_force_exit (plc->proc);
  g_clear_object (&plc->in);
  g_clear_object (&plc->out);
  g_clear_object (&plc->proc);
  g_clear_pointer (&plc->ready, json_node_unref);
  g_free (plc);
}
