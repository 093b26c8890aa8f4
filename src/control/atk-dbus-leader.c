/* at-kafka: the D-Bus Resign method (see atk-dbus-leader.h). Callers are checked by the
 * service's guarded skeleton before the method reaches this handler.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-dbus"

#include "atk-dbus-leader.h"

typedef struct
{
  gpointer daemon;
  const AtkDaemonControl *control;
} ResignTarget;

static gboolean
on_handle_resign (AtkBusDaemon1 *skeleton, GDBusMethodInvocation *invocation, ResignTarget *target)
{
  g_autoptr (GError) error = NULL;

  if (target->control->resign == NULL)
    {
      g_dbus_method_invocation_return_error_literal (
          invocation, G_DBUS_ERROR, G_DBUS_ERROR_NOT_SUPPORTED, "Resign is not supported here");
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  if (!target->control->resign (target->daemon, &error))
    {
      g_dbus_method_invocation_return_error_literal (invocation, G_DBUS_ERROR, G_DBUS_ERROR_FAILED,
                                                     error->message);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  atk_bus_daemon1_complete_resign (skeleton, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

void
atk_dbus_leader_connect (AtkBusDaemon1 *skeleton, gpointer daemon, const AtkDaemonControl *control)
{
  ResignTarget *target = g_new0 (ResignTarget, 1);

  target->daemon = daemon;
  target->control = control;
  g_signal_connect_data (skeleton, "handle-resign", G_CALLBACK (on_handle_resign), target,
                         (GClosureNotify)(void (*) (void))g_free, 0);
}

gboolean
atk_dbus_leader_daemon_resign (gpointer daemon, GError **error)
{
  return atk_daemon_resign (daemon, error);
}
