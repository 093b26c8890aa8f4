/* at-kafka: the D-Bus side of a group of instances: the Resign method.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <gio/gio.h>

#include "atk-bus-generated.h"
#include "atk-dbus-service.h"

G_BEGIN_DECLS

/* Answers Resign on skeleton with control->resign (an error when it is NULL). Borrows
 * daemon and control: they outlive the skeleton. */
void atk_dbus_leader_connect (AtkBusDaemon1 *skeleton, gpointer daemon,
                              const AtkDaemonControl *control);

/* AtkDaemon's resign, as AtkDaemonControl.resign. */
gboolean atk_dbus_leader_daemon_resign (gpointer daemon, GError **error);

G_END_DECLS
