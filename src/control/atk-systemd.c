/* SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-systemd"

#include "atk-systemd.h"

#include <systemd/sd-daemon.h>

struct _AtkSystemdNotifier
{
  GObject parent_instance;

  GObject *daemon;
  AtkStatsGetter get_stats;
  gulong ready_id;
  guint status_id;
  guint watchdog_id;
  guint status_interval_ms;
  gboolean ready;
  gboolean stopping;

  /* For the events/s figure: the count and time at the previous STATUS=. */
  guint64 last_produced;
  gint64 last_status_time;
};

G_DEFINE_TYPE (AtkSystemdNotifier, atk_systemd_notifier, G_TYPE_OBJECT)

/* sd_notify returns 0 when there is no NOTIFY_SOCKET: not an error, just not systemd. */
static void
notify (const char *state)
{
  int r = sd_notify (0, state);

  if (r < 0)
    g_debug ("sd_notify(%s) failed: %s", state, g_strerror (-r));
}

static char *
format_status (AtkSystemdNotifier *self)
{
  const AtkStats *stats = self->get_stats (self->daemon);
  gint64 now = g_get_monotonic_time ();
  guint64 produced = stats->produced_ok;
  gdouble seconds = (now - self->last_status_time) / (gdouble)G_USEC_PER_SEC;
  gdouble rate = seconds > 0 ? (produced - self->last_produced) / seconds : 0;
  g_autofree char *cursor = NULL;

  self->last_produced = produced;
  self->last_status_time = now;
  cursor = stats->has_cursor ? g_strdup_printf ("%" G_GINT64_FORMAT, stats->cursor)
                             : g_strdup ("none");
  return g_strdup_printf ("STATUS=%s%s, cursor %s, %.0f events/s",
                          stats->source_state != NULL ? stats->source_state : "unknown",
                          stats->paused ? " (paused)" : "", cursor, rate);
}

static gboolean
on_status_timeout (gpointer user_data)
{
  AtkSystemdNotifier *self = user_data;
  g_autofree char *status = format_status (self);

  notify (status);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_watchdog_timeout (gpointer user_data)
{
  notify ("WATCHDOG=1");
  return G_SOURCE_CONTINUE;
}

static void
on_ready (AtkSystemdNotifier *self)
{
  g_autofree char *status = NULL;

  if (self->ready || self->stopping)
    return;
  self->ready = TRUE;
  status = format_status (self);
  notify ("READY=1");
  notify (status);
}

/* systemd expects a ping well inside WatchdogSec; half leaves room for a busy loop. */
static void
start_watchdog (AtkSystemdNotifier *self)
{
  uint64_t usec = 0;
  int r = sd_watchdog_enabled (0, &usec);

  if (r <= 0 || usec == 0)
    return;
  self->watchdog_id = g_timeout_add (MAX (1, usec / 2 / 1000), on_watchdog_timeout, self);
  g_debug ("Watchdog every %" G_GUINT64_FORMAT " ms", (guint64)usec / 2 / 1000);
}

void
atk_systemd_notifier_stopping (AtkSystemdNotifier *self)
{
  g_return_if_fail (ATK_IS_SYSTEMD_NOTIFIER (self));

  if (self->stopping)
    return;
  self->stopping = TRUE;
  g_clear_handle_id (&self->status_id, g_source_remove);
  g_clear_handle_id (&self->watchdog_id, g_source_remove);
  notify ("STOPPING=1\nSTATUS=Stopping: flushing Kafka and saving the cursor");
}

static void
atk_systemd_notifier_dispose (GObject *object)
{
  AtkSystemdNotifier *self = ATK_SYSTEMD_NOTIFIER (object);

  g_clear_handle_id (&self->status_id, g_source_remove);
  g_clear_handle_id (&self->watchdog_id, g_source_remove);
  if (self->daemon != NULL)
    g_clear_signal_handler (&self->ready_id, self->daemon);
  g_clear_object (&self->daemon);
  G_OBJECT_CLASS (atk_systemd_notifier_parent_class)->dispose (object);
}

static void
atk_systemd_notifier_class_init (AtkSystemdNotifierClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = atk_systemd_notifier_dispose;
}

static void
atk_systemd_notifier_init (AtkSystemdNotifier *self)
{
}

AtkSystemdNotifier *
atk_systemd_notifier_new_full (gpointer daemon, AtkStatsGetter get_stats, guint status_interval_ms)
{
  AtkSystemdNotifier *self;

  g_return_val_if_fail (G_IS_OBJECT (daemon), NULL);
  g_return_val_if_fail (get_stats != NULL, NULL);
  g_return_val_if_fail (status_interval_ms > 0, NULL);

  self = g_object_new (ATK_TYPE_SYSTEMD_NOTIFIER, NULL);
  self->daemon = g_object_ref (daemon);
  self->get_stats = get_stats;
  self->status_interval_ms = status_interval_ms;
  self->last_status_time = g_get_monotonic_time ();
  self->last_produced = get_stats (daemon)->produced_ok;
  self->ready_id = g_signal_connect_swapped (daemon, "ready", G_CALLBACK (on_ready), self);
  self->status_id = g_timeout_add (status_interval_ms, on_status_timeout, self);
  start_watchdog (self);
  notify ("STATUS=Starting: connecting to the relay and Kafka");
  return self;
}

static const AtkStats *
daemon_get_stats (gpointer daemon)
{
  return atk_daemon_get_stats (daemon);
}

AtkSystemdNotifier *
atk_systemd_notifier_new (AtkDaemon *daemon)
{
  g_return_val_if_fail (ATK_IS_DAEMON (daemon), NULL);

  return atk_systemd_notifier_new_full (daemon, daemon_get_stats, ATK_SYSTEMD_STATUS_INTERVAL_MS);
}
