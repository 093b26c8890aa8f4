/* at-kafka: parse the options, build the daemon (or the file runner), run the loop.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka"

#include <glib-unix.h>
#include <glib/gi18n.h>
#include <locale.h>
#include <stdio.h>

#include "atk-config.h"
#include "atk-daemon.h"
#include "atk-dbus-service.h"
#include "atk-error.h"
#include "atk-file-runner.h"
#include "atk-systemd.h"

#define EXIT_BAD_CONFIG 2
#define SHUTDOWN_FLUSH_MS 10000

static int
run_file (const AtkConfig *config)
{
  AtkFileRunSummary summary;
  g_autoptr (GError) error = NULL;
  gboolean ok = atk_file_runner_run (config, stdout, &summary, &error);

  fprintf (stderr,
           "frames=%" G_GUINT64_FORMAT " messages=%" G_GUINT64_FORMAT " skipped=%" G_GUINT64_FORMAT
           " filtered=%" G_GUINT64_FORMAT " errors=%" G_GUINT64_FORMAT "\n",
           summary.frames, summary.messages, summary.skipped, summary.filtered, summary.errors);
  if (!ok)
    {
      fprintf (stderr, "at-kafka: %s\n", error->message);
      return EXIT_FAILURE;
    }
  return EXIT_SUCCESS;
}

static gboolean
on_quit_signal (gpointer user_data)
{
  GMainLoop *loop = user_data;

  g_message ("Signal received, shutting down");
  g_main_loop_quit (loop);
  return G_SOURCE_CONTINUE; /* removed by run_daemon() */
}

/* The producer cannot go on (e.g. fenced by a newer instance): stop, and exit non-zero
 * (atk_daemon_shutdown() returns FALSE after a fatal error). */
static void
on_daemon_fatal (AtkDaemon *daemon, const char *reason, gpointer user_data)
{
  g_main_loop_quit (user_data);
}

/* D-Bus is for steering, not for producing: with the default bus choice, a machine without
 * that bus still runs the daemon. An explicitly requested bus that fails is an error. */
static gboolean
export_on_bus (AtkDaemon *daemon, AtkBusType bus, AtkDbusService **service, GError **error)
{
  g_autoptr (GError) local_error = NULL;

  if (bus == ATK_BUS_NONE)
    return TRUE;
  *service = atk_dbus_service_new (daemon, bus, &local_error);
  if (*service != NULL)
    return TRUE;
  if (bus != ATK_BUS_AUTO)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  g_message ("Not on D-Bus: %s", local_error->message);
  return TRUE;
}

static int
run_daemon (AtkConfig *config)
{
  g_autoptr (GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr (AtkDaemon) daemon = NULL;
  g_autoptr (AtkDbusService) service = NULL;
  g_autoptr (AtkSystemdNotifier) notifier = NULL;
  g_autoptr (GError) error = NULL;
  AtkBusType bus = config->bus;
  guint sigint_id, sigterm_id;
  gboolean flushed;

  daemon = atk_daemon_new (config, &error);
  if (daemon == NULL)
    {
      fprintf (stderr, "at-kafka: %s\n", error->message);
      return g_error_matches (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG) ? EXIT_BAD_CONFIG
                                                                      : EXIT_FAILURE;
    }
  if (!export_on_bus (daemon, bus, &service, &error))
    {
      fprintf (stderr, "at-kafka: %s\n", error->message);
      return EXIT_FAILURE;
    }
  notifier = atk_systemd_notifier_new (daemon);
  sigint_id = g_unix_signal_add (SIGINT, on_quit_signal, loop);
  sigterm_id = g_unix_signal_add (SIGTERM, on_quit_signal, loop);
  g_signal_connect (daemon, "fatal", G_CALLBACK (on_daemon_fatal), loop);
  g_signal_connect_swapped (daemon, "quit", G_CALLBACK (g_main_loop_quit), loop);

  atk_daemon_start (daemon);
  g_main_loop_run (loop);

  g_source_remove (sigint_id);
  g_source_remove (sigterm_id);
  atk_systemd_notifier_stopping (notifier);
  flushed = atk_daemon_shutdown (daemon, SHUTDOWN_FLUSH_MS);
  return flushed ? EXIT_SUCCESS : EXIT_FAILURE;
}

int
main (int argc, char **argv)
{
  g_autoptr (AtkConfig) config = NULL;
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) envp = g_get_environ ();
  gboolean exit_now = FALSE;

  setlocale (LC_ALL, "");
  /* ATK_LOCALEDIR lets the tests (and a build-tree run) find the uncompiled-in catalogues. */
  bindtextdomain (GETTEXT_PACKAGE,
                  g_getenv ("ATK_LOCALEDIR") ? g_getenv ("ATK_LOCALEDIR") : LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  config = atk_config_parse (&argc, &argv, envp, &exit_now, &error);
  if (exit_now)
    return EXIT_SUCCESS;
  if (config == NULL)
    {
      fprintf (stderr, "at-kafka: %s\n", error->message);
      return EXIT_BAD_CONFIG;
    }
  if (config->verbose)
    g_setenv ("G_MESSAGES_DEBUG", "all", TRUE);

  if (config->input_file != NULL && config->to_stdout)
    return run_file (config);
  if (config->input_file != NULL)
    {
      fprintf (stderr, "at-kafka: %s\n",
               _ ("--input needs --stdout (producing a file to Kafka is not supported)"));
      return EXIT_BAD_CONFIG;
    }
  return run_daemon (g_steal_pointer (&config));
}
