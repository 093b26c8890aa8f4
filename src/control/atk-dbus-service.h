/* at-kafka: the daemon on D-Bus (io.github.atkafka.Daemon1 at /io/github/atkafka/Daemon1).
 * Mirrors the statistics snapshot as read-only properties, forwards Pause/Resume/
 * Reconnect and OspreyCompatible writes to the daemon, and lets only authorised callers
 * change anything.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <gio/gio.h>

#include "atk-config.h"
#include "atk-daemon.h"
#include "atk-stats.h"

G_BEGIN_DECLS

#define ATK_DBUS_NAME "io.github.atkafka.Daemon1"
#define ATK_DBUS_PATH "/io/github/atkafka/Daemon1"

/* What the bus object needs from the daemon: AtkDaemon's API as a table, so the
 * service can be driven by a stand-in in tests. `daemon` must emit "stats-changed". */
typedef struct
{
  const AtkStats *(*get_stats) (gpointer daemon);
  const char *(*get_relay_host) (gpointer daemon);
  gboolean (*get_osprey_compatible) (gpointer daemon);
  void (*set_osprey_compatible) (gpointer daemon, gboolean osprey);
  void (*pause) (gpointer daemon);
  void (*resume) (gpointer daemon);
  void (*reconnect) (gpointer daemon);
  gboolean (*resign) (gpointer daemon, GError **error); /* NULL: not supported */
} AtkDaemonControl;

#define ATK_TYPE_DBUS_SERVICE (atk_dbus_service_get_type ())
G_DECLARE_FINAL_TYPE (AtkDbusService, atk_dbus_service, ATK, DBUS_SERVICE, GObject)

/* Connects to the bus (ATK_BUS_AUTO: the system bus when started by the system manager,
 * else the session bus), exports the object and takes the name. Fails if the bus is not
 * there or the name is taken. Callers restricted as described at
 * atk_dbus_service_new_for_connection(). bus_type must not be ATK_BUS_NONE. */
AtkDbusService *atk_dbus_service_new (AtkDaemon *daemon, AtkBusType bus_type, GError **error);

/* The same on an existing connection, with any daemon-like object. When system_policy
 * is TRUE, methods and property writes are allowed to root, to the service's own user
 * and to members of the "at-kafka" group; otherwise to root and the service's own user. */
AtkDbusService *atk_dbus_service_new_for_connection (GDBusConnection *connection, gpointer daemon,
                                                     const AtkDaemonControl *control,
                                                     gboolean system_policy, GError **error);

/* Replaces the policy above by exactly these uids (for tests, or a site policy). */
void atk_dbus_service_set_allowed_uids (AtkDbusService *self, const guint32 *uids, gsize n_uids);

/* Which group's members may change things on the system bus (default "at-kafka"). */
void atk_dbus_service_set_admin_group (AtkDbusService *self, const char *group);

/* Re-reads the stats now (normally done on "stats-changed"). */
void atk_dbus_service_refresh (AtkDbusService *self);

G_END_DECLS
