/* at-kafka: turns away calls from denied D-Bus callers on GDBus's worker thread.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-dbus"

#include "atk-dbus-gate.h"

#define MAX_DENIED_SENDERS 4096

/* What the filter reads runs on GDBus's worker thread: everything it touches is behind the
 * mutex, and the block lives until GDBus calls the filter's destroy notify. */
typedef struct
{
  GMutex lock;
  char *object_path;
  GHashTable *denied; /* unique name → uid (GUINT_TO_POINTER) */
  guint64 turned_away;
} Shared;

struct _AtkDbusGate
{
  GDBusConnection *connection;
  guint filter_id;
  Shared *shared;
};

static void
shared_free (gpointer data)
{
  Shared *shared = data;

  g_mutex_clear (&shared->lock);
  g_hash_table_unref (shared->denied);
  g_free (shared->object_path);
  g_free (shared);
}

/* Calls anyone may make: reading the properties, introspection, ping. */
static gboolean
always_open (const char *interface, const char *member)
{
  if (g_strcmp0 (interface, "org.freedesktop.DBus.Properties") == 0)
    return g_strcmp0 (member, "Get") == 0 || g_strcmp0 (member, "GetAll") == 0;
  return g_strcmp0 (interface, "org.freedesktop.DBus.Introspectable") == 0
         || g_strcmp0 (interface, "org.freedesktop.DBus.Peer") == 0;
}

static GDBusMessage *
filter (GDBusConnection *connection, GDBusMessage *message, gboolean incoming, gpointer data)
{
  Shared *shared = data;
  const char *sender;
  gboolean denied;
  guint32 uid = 0;
  gpointer value = NULL;

  if (!incoming || g_dbus_message_get_message_type (message) != G_DBUS_MESSAGE_TYPE_METHOD_CALL)
    return message;
  sender = g_dbus_message_get_sender (message);
  if (sender == NULL || g_strcmp0 (g_dbus_message_get_path (message), shared->object_path) != 0
      || always_open (g_dbus_message_get_interface (message), g_dbus_message_get_member (message)))
    return message;
  g_mutex_lock (&shared->lock);
  denied = g_hash_table_lookup_extended (shared->denied, sender, NULL, &value);
  if (denied)
    shared->turned_away++;
  g_mutex_unlock (&shared->lock);
  if (!denied)
    return message;
  uid = GPOINTER_TO_UINT (value);
  if (!(g_dbus_message_get_flags (message) & G_DBUS_MESSAGE_FLAGS_NO_REPLY_EXPECTED))
    {
      g_autoptr (GDBusMessage) reply
          = g_dbus_message_new_method_error (message, "org.freedesktop.DBus.Error.AccessDenied",
                                             "uid %u is not allowed to control at-kafka", uid);

      /* Thread-safe; a failure (the connection closing) leaves nothing to do. */
      (void)g_dbus_connection_send_message (connection, reply, G_DBUS_SEND_MESSAGE_FLAGS_NONE, NULL,
                                            NULL);
    }
  g_object_unref (message);
  return NULL;
}

AtkDbusGate *
atk_dbus_gate_new (GDBusConnection *connection, const char *object_path)
{
  AtkDbusGate *gate = g_new0 (AtkDbusGate, 1);
  Shared *shared = g_new0 (Shared, 1);

  g_return_val_if_fail (G_IS_DBUS_CONNECTION (connection), NULL);
  g_mutex_init (&shared->lock);
  shared->object_path = g_strdup (object_path);
  shared->denied = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  gate->connection = g_object_ref (connection);
  gate->shared = shared;
  gate->filter_id = g_dbus_connection_add_filter (connection, filter, shared, shared_free);
  return gate;
}

void
atk_dbus_gate_free (AtkDbusGate *gate)
{
  if (gate == NULL)
    return;
  /* GDBus frees the shared block (shared_free) once the filter can no longer run. */
  g_dbus_connection_remove_filter (gate->connection, gate->filter_id);
  g_object_unref (gate->connection);
  g_free (gate);
}

void
atk_dbus_gate_deny (AtkDbusGate *gate, const char *sender, guint32 uid)
{
  g_return_if_fail (gate != NULL && sender != NULL);

  g_mutex_lock (&gate->shared->lock);
  /* Unique names are never reused and go with NameOwnerChanged; a flood of new connections
   * that never close is bounded here: the service decides the forgotten ones again. */
  if (g_hash_table_size (gate->shared->denied) >= MAX_DENIED_SENDERS)
    g_hash_table_remove_all (gate->shared->denied);
  g_hash_table_insert (gate->shared->denied, g_strdup (sender), GUINT_TO_POINTER (uid));
  g_mutex_unlock (&gate->shared->lock);
}

void
atk_dbus_gate_forget (AtkDbusGate *gate, const char *sender)
{
  g_return_if_fail (gate != NULL && sender != NULL);

  g_mutex_lock (&gate->shared->lock);
  g_hash_table_remove (gate->shared->denied, sender);
  g_mutex_unlock (&gate->shared->lock);
}

void
atk_dbus_gate_forget_all (AtkDbusGate *gate)
{
  g_return_if_fail (gate != NULL);

  g_mutex_lock (&gate->shared->lock);
  g_hash_table_remove_all (gate->shared->denied);
  g_mutex_unlock (&gate->shared->lock);
}

guint64
atk_dbus_gate_get_turned_away (AtkDbusGate *gate)
{
  guint64 n;

  g_return_val_if_fail (gate != NULL, 0);
  g_mutex_lock (&gate->shared->lock);
  n = gate->shared->turned_away;
  g_mutex_unlock (&gate->shared->lock);
  return n;
}
