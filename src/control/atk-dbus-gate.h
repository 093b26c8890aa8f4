/* at-kafka: turns away calls from D-Bus callers already denied, on GDBus's worker thread.
 *
 * AtkDbusService decides each caller once (an asynchronous uid lookup) and answers on the
 * main loop. A flood of calls from a denied caller would otherwise queue one message and one
 * invocation per call for the main loop: while it is busy, memory grows with the flood. The
 * gate is a connection filter: a method call (or a Properties.Set) to our object from a
 * sender it was told to deny is answered AccessDenied, or dropped when it wants no reply,
 * before it is queued. Get, GetAll, Introspect and Peer calls always pass.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _AtkDbusGate AtkDbusGate;

/* Installs the filter on connection for calls to object_path. */
AtkDbusGate *atk_dbus_gate_new (GDBusConnection *connection, const char *object_path);
/* Removes the filter; the gate's memory goes when GDBus no longer runs it. */
void atk_dbus_gate_free (AtkDbusGate *gate);

/* From now on, calls from this unique name are turned away. At most 4,096 names are kept;
 * when full, all are forgotten, and the service decides their next calls again. */
void atk_dbus_gate_deny (AtkDbusGate *gate, const char *sender, guint32 uid);
void atk_dbus_gate_forget (AtkDbusGate *gate, const char *sender);
void atk_dbus_gate_forget_all (AtkDbusGate *gate);
/* Calls turned away so far. */
guint64 atk_dbus_gate_get_turned_away (AtkDbusGate *gate);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtkDbusGate, atk_dbus_gate_free)

G_END_DECLS
