/* A stand-in for AtkDaemon, for the parts that only watch it (D-Bus service, systemd
 * notifier): it owns the stats they read, has the daemon's "stats-changed" and "ready"
 * signals (emit them by name), and counts the control calls a test routes to it. */
#pragma once

#include <glib-object.h>

#include "atk-stats.h"

G_BEGIN_DECLS

#define ATK_TYPE_FAKE_DAEMON (atk_fake_daemon_get_type ())
G_DECLARE_FINAL_TYPE (AtkFakeDaemon, atk_fake_daemon, ATK, FAKE_DAEMON, GObject)

/* Public: the tests set the stats and read the counters directly. */
struct _AtkFakeDaemon
{
  GObject parent_instance;
  AtkStats stats;
  gboolean osprey;
  guint pauses, resumes, reconnects, osprey_sets;
};

AtkFakeDaemon *atk_fake_daemon_new (void);

/* The stats getter the notifier and the service take (daemon is an AtkFakeDaemon). */
const AtkStats *atk_fake_daemon_get_stats (gpointer daemon);

G_END_DECLS
