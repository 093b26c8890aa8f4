/* SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-dbus"

#include "atk-dbus-service.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include "atk-bus-generated.h"
#include "atk-dbus-gate.h"
#include "atk-dbus-leader.h"
#include "atk-guarded-skeleton.h"

#define DBUS_NAME_FLAG_DO_NOT_QUEUE 4
#define DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER 1
#define DBUS_REQUEST_NAME_REPLY_ALREADY_OWNER 4
#define BUS_CALL_TIMEOUT_MS 5000
#define DEFAULT_ADMIN_GROUP "at-kafka"
/* Calls waiting for one sender's credentials, and senders remembered, at most. */
#define MAX_PENDING_PER_SENDER 256
#define MAX_CACHED_SENDERS 1024

struct _AtkDbusService
{
  GObject parent_instance;

  GObject *daemon;
  const AtkDaemonControl *control;
  GDBusConnection *connection;
  AtkBusDaemon1 *skeleton;
  gulong stats_changed_id;
  gboolean owns_name;

  gboolean system_policy;
  GArray *allowed_uids; /* guint32; when set, replaces the default policy */
  char *admin_group;

  /* Callers' uids, asked of the bus once per unique name, asynchronously. A unique name is
   * never reused, so an answer stays true until the name goes (NameOwnerChanged). */
  GHashTable *senders; /* unique name → Verdict */
  GHashTable *lookups; /* unique name → GPtrArray of Call, while the bus is asked */
  AtkDbusGate *gate;   /* turns away the denied ones' next calls before they are queued */
  guint name_owner_changed_id;
  GCancellable *cancellable;
  guint64 lookups_made;
};

G_DEFINE_TYPE (AtkDbusService, atk_dbus_service, G_TYPE_OBJECT)

/* Authorisation */

static gboolean
user_in_group (guint32 uid, const char *group_name)
{
  struct passwd *pw = getpwuid (uid);
  struct group *gr = group_name != NULL ? getgrnam (group_name) : NULL;
  g_autofree gid_t *groups = NULL;
  int n_groups = 64;

  if (pw == NULL || gr == NULL)
    return FALSE;
  if (pw->pw_gid == gr->gr_gid)
    return TRUE;
  /* getgrouplist() says how many it needs when the array is too small. */
  groups = g_new (gid_t, n_groups);
  if (getgrouplist (pw->pw_name, pw->pw_gid, groups, &n_groups) < 0)
    {
      groups = g_renew (gid_t, groups, n_groups);
      if (getgrouplist (pw->pw_name, pw->pw_gid, groups, &n_groups) < 0)
        return FALSE;
    }
  for (int i = 0; i < n_groups; i++)
    if (groups[i] == gr->gr_gid)
      return TRUE;
  return FALSE;
}

static gboolean
uid_is_allowed (AtkDbusService *self, guint32 uid)
{
  if (self->allowed_uids != NULL)
    {
      for (guint i = 0; i < self->allowed_uids->len; i++)
        if (g_array_index (self->allowed_uids, guint32, i) == uid)
          return TRUE;
      return FALSE;
    }
  if (uid == 0 || uid == getuid ())
    return TRUE;
  return self->system_policy && user_in_group (uid, self->admin_group);
}

/* Asks the bus who sent the call: the policy file may be missing or wrong, so the daemon
 * decides by itself. Asynchronously, once per unique name: the answer is remembered, and calls
 * that arrive while it is asked wait for it. */
typedef struct
{
  GDBusMethodInvocation *invocation;
  AtkGuardedSkeleton *skeleton;
} Call;

/* What was decided for a sender (the group lookup is not free either: done once). */
typedef struct
{
  guint32 uid;
  gboolean allowed;
} Verdict;

static void
call_free (Call *call)
{
  g_object_unref (call->invocation);
  g_free (call);
}

static void
decide (AtkDbusService *self, Call *call, const Verdict *verdict)
{
  const char *sender = g_dbus_method_invocation_get_sender (call->invocation);

  if (verdict == NULL)
    {
      g_dbus_method_invocation_return_error (g_object_ref (call->invocation), G_DBUS_ERROR,
                                             G_DBUS_ERROR_ACCESS_DENIED,
                                             "Cannot tell who the caller is");
      return;
    }
  if (verdict->allowed)
    {
      atk_guarded_skeleton_dispatch (call->skeleton, call->invocation);
      return;
    }
  g_debug ("Denied %s (uid %u)", sender, verdict->uid);
  g_dbus_method_invocation_return_error (g_object_ref (call->invocation), G_DBUS_ERROR,
                                         G_DBUS_ERROR_ACCESS_DENIED,
                                         "uid %u is not allowed to control at-kafka", verdict->uid);
}

typedef struct
{
  AtkDbusService *self;
  char *sender;
} Lookup;

static void
on_unix_user (GObject *object, GAsyncResult *result, gpointer user_data)
{
  Lookup *lookup = user_data;
  AtkDbusService *self = lookup->self;
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply
      = g_dbus_connection_call_finish (G_DBUS_CONNECTION (object), result, &error);
  g_autoptr (GPtrArray) calls = NULL;
  g_autofree char *waiting_for = NULL; /* the table's key, stolen with its calls */
  Verdict *verdict = NULL;
  guint32 uid = 0;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    goto out; /* disposed */
  g_hash_table_steal_extended (self->lookups, lookup->sender, (gpointer *)&waiting_for,
                               (gpointer *)&calls);
  if (reply != NULL)
    {
      g_variant_get (reply, "(u)", &uid);
      verdict = g_new0 (Verdict, 1);
      verdict->uid = uid;
      verdict->allowed = uid_is_allowed (self, uid);
      if (!verdict->allowed && self->gate != NULL)
        atk_dbus_gate_deny (self->gate, lookup->sender, uid);
      if (g_hash_table_size (self->senders) >= MAX_CACHED_SENDERS)
        g_hash_table_remove_all (self->senders);
      g_hash_table_insert (self->senders, g_strdup (lookup->sender), verdict);
    }
  else
    g_debug ("Cannot tell who %s is: %s", lookup->sender, error->message);
  for (guint i = 0; calls != NULL && i < calls->len; i++)
    decide (self, calls->pdata[i], verdict);
out:
  g_object_unref (self);
  g_free (lookup->sender);
  g_free (lookup);
}

static void
check_caller_async (AtkGuardedSkeleton *skeleton, GDBusMethodInvocation *invocation,
                    gpointer user_data)
{
  AtkDbusService *self = user_data;
  const char *sender = g_dbus_method_invocation_get_sender (invocation);
  Call *call;
  GPtrArray *waiting;
  const Verdict *cached;
  Lookup *lookup;

  if (sender == NULL)
    {
      g_dbus_method_invocation_return_error_literal (invocation, G_DBUS_ERROR,
                                                     G_DBUS_ERROR_ACCESS_DENIED,
                                                     "Callers without a bus name are not allowed");
      return;
    }
  call = g_new0 (Call, 1);
  call->invocation = invocation; /* ours: GDBus handed us its reference */
  call->skeleton = skeleton;
  cached = g_hash_table_lookup (self->senders, sender);
  if (cached != NULL)
    {
      decide (self, call, cached);
      call_free (call);
      return;
    }
  waiting = g_hash_table_lookup (self->lookups, sender);
  if (waiting != NULL)
    {
      if (waiting->len >= MAX_PENDING_PER_SENDER)
        {
          g_dbus_method_invocation_return_error_literal (g_object_ref (invocation), G_DBUS_ERROR,
                                                         G_DBUS_ERROR_LIMITS_EXCEEDED,
                                                         "Too many calls at once");
          call_free (call);
          return;
        }
      g_ptr_array_add (waiting, call);
      return;
    }
  waiting = g_ptr_array_new_with_free_func ((GDestroyNotify)call_free);
  g_ptr_array_add (waiting, call);
  g_hash_table_insert (self->lookups, g_strdup (sender), waiting);
  lookup = g_new0 (Lookup, 1);
  lookup->self = g_object_ref (self);
  lookup->sender = g_strdup (sender);
  self->lookups_made++;
  g_dbus_connection_call (
      self->connection, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
      "GetConnectionUnixUser", g_variant_new ("(s)", sender), G_VARIANT_TYPE ("(u)"),
      G_DBUS_CALL_FLAGS_NONE, BUS_CALL_TIMEOUT_MS, self->cancellable, on_unix_user, lookup);
}

/* A unique name that goes is never seen again: forget it. */
static void
on_name_owner_changed (GDBusConnection *connection, const char *sender_name,
                       const char *object_path, const char *interface_name, const char *signal_name,
                       GVariant *parameters, gpointer user_data)
{
  AtkDbusService *self = user_data;
  const char *name = NULL;
  const char *old_owner = NULL;
  const char *new_owner = NULL;

  if (!g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(sss)")))
    return;
  g_variant_get (parameters, "(&s&s&s)", &name, &old_owner, &new_owner);
  if (name[0] == ':' && new_owner[0] == '\0')
    {
      g_hash_table_remove (self->senders, name);
      if (self->gate != NULL)
        atk_dbus_gate_forget (self->gate, name);
    }
}

/* Properties and methods */

void
atk_dbus_service_refresh (AtkDbusService *self)
{
  const AtkStats *stats = self->control->get_stats (self->daemon);
  const char *relay = self->control->get_relay_host (self->daemon);
  AtkBusDaemon1 *iface = self->skeleton;
  gdouble lag = 0;

  if (stats->last_event_time_ms > 0)
    lag = MAX (0, g_get_real_time () / 1000 - stats->last_event_time_ms) / 1000.0;

  /* The generated setters only schedule PropertiesChanged for values that changed. */
  atk_bus_daemon1_set_state (iface, stats->source_state != NULL ? stats->source_state : "");
  atk_bus_daemon1_set_relay_host (iface, relay != NULL ? relay : "");
  atk_bus_daemon1_set_cursor (iface, stats->has_cursor ? stats->cursor : -1);
  atk_bus_daemon1_set_last_seq (iface, stats->has_last_seq ? stats->last_seq : -1);
  atk_bus_daemon1_set_events_handled (iface, atk_stats_get_handled_total (stats));
  atk_bus_daemon1_set_events_produced (iface, stats->produced_ok);
  atk_bus_daemon1_set_events_failed (iface, stats->produced_error);
  atk_bus_daemon1_set_event_lag_seconds (iface, lag);
  atk_bus_daemon1_set_kafka_in_flight (iface, stats->in_flight);
  atk_bus_daemon1_set_paused (iface, stats->paused);
  atk_bus_daemon1_set_osprey_compatible (iface,
                                         self->control->get_osprey_compatible (self->daemon));
}

static void
on_property_written (const char *property_name, gpointer user_data)
{
  AtkDbusService *self = user_data;

  if (g_strcmp0 (property_name, "OspreyCompatible") != 0)
    return;
  g_debug ("OspreyCompatible set to %d over D-Bus",
           atk_bus_daemon1_get_osprey_compatible (self->skeleton));
  self->control->set_osprey_compatible (self->daemon,
                                        atk_bus_daemon1_get_osprey_compatible (self->skeleton));
}

static gboolean
on_handle_pause (AtkDbusService *self, GDBusMethodInvocation *invocation)
{
  self->control->pause (self->daemon);
  atk_dbus_service_refresh (self);
  atk_bus_daemon1_complete_pause (self->skeleton, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
on_handle_resume (AtkDbusService *self, GDBusMethodInvocation *invocation)
{
  self->control->resume (self->daemon);
  atk_dbus_service_refresh (self);
  atk_bus_daemon1_complete_resume (self->skeleton, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
on_handle_reconnect (AtkDbusService *self, GDBusMethodInvocation *invocation)
{
  self->control->reconnect (self->daemon);
  atk_bus_daemon1_complete_reconnect (self->skeleton, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* Bus name */

static gboolean
request_name (GDBusConnection *connection, GError **error)
{
  g_autoptr (GVariant) reply = NULL;
  guint32 result;

  reply = g_dbus_connection_call_sync (
      connection, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
      "RequestName", g_variant_new ("(su)", ATK_DBUS_NAME, DBUS_NAME_FLAG_DO_NOT_QUEUE),
      G_VARIANT_TYPE ("(u)"), G_DBUS_CALL_FLAGS_NONE, BUS_CALL_TIMEOUT_MS, NULL, error);
  if (reply == NULL)
    {
      g_prefix_error (error, "Cannot own %s: ", ATK_DBUS_NAME);
      return FALSE;
    }
  g_variant_get (reply, "(u)", &result);
  if (result != DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER
      && result != DBUS_REQUEST_NAME_REPLY_ALREADY_OWNER)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_EXISTS,
                   "%s is already owned (is another at-kafka running?)", ATK_DBUS_NAME);
      return FALSE;
    }
  return TRUE;
}

/* Object */

static void
atk_dbus_service_dispose (GObject *object)
{
  AtkDbusService *self = ATK_DBUS_SERVICE (object);

  if (self->daemon != NULL)
    g_clear_signal_handler (&self->stats_changed_id, self->daemon);
  if (self->cancellable != NULL)
    g_cancellable_cancel (self->cancellable);
  if (self->name_owner_changed_id != 0)
    {
      g_dbus_connection_signal_unsubscribe (self->connection, self->name_owner_changed_id);
      self->name_owner_changed_id = 0;
    }
  if (self->skeleton != NULL)
    g_dbus_interface_skeleton_unexport (G_DBUS_INTERFACE_SKELETON (self->skeleton));
  if (self->owns_name)
    {
      /* Not waiting for the answer: the message is queued before anything sent later. */
      g_dbus_connection_call (self->connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                              "org.freedesktop.DBus", "ReleaseName",
                              g_variant_new ("(s)", ATK_DBUS_NAME), NULL, G_DBUS_CALL_FLAGS_NONE,
                              -1, NULL, NULL, NULL);
      self->owns_name = FALSE;
    }
  g_clear_object (&self->skeleton);
  g_clear_pointer (&self->gate, atk_dbus_gate_free);
  g_clear_object (&self->connection);
  g_clear_object (&self->daemon);
  G_OBJECT_CLASS (atk_dbus_service_parent_class)->dispose (object);
}

static void
atk_dbus_service_finalize (GObject *object)
{
  AtkDbusService *self = ATK_DBUS_SERVICE (object);

  g_clear_pointer (&self->allowed_uids, g_array_unref);
  g_free (self->admin_group);
  g_hash_table_unref (self->senders);
  g_hash_table_unref (self->lookups);
  g_clear_object (&self->cancellable);
  G_OBJECT_CLASS (atk_dbus_service_parent_class)->finalize (object);
}

static void
atk_dbus_service_class_init (AtkDbusServiceClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = atk_dbus_service_dispose;
  object_class->finalize = atk_dbus_service_finalize;
}

static void
atk_dbus_service_init (AtkDbusService *self)
{
  self->admin_group = g_strdup (DEFAULT_ADMIN_GROUP);
  self->senders = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->lookups
      = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_ptr_array_unref);
  self->cancellable = g_cancellable_new ();
}

static void
connect_skeleton (AtkDbusService *self)
{
  self->skeleton
      = ATK_BUS_DAEMON1 (atk_guarded_skeleton_new (check_caller_async, on_property_written, self));
  g_signal_connect_swapped (self->skeleton, "handle-pause", G_CALLBACK (on_handle_pause), self);
  g_signal_connect_swapped (self->skeleton, "handle-resume", G_CALLBACK (on_handle_resume), self);
  g_signal_connect_swapped (self->skeleton, "handle-reconnect", G_CALLBACK (on_handle_reconnect),
                            self);
  atk_dbus_leader_connect (self->skeleton, self->daemon, self->control);
  self->stats_changed_id = g_signal_connect_swapped (self->daemon, "stats-changed",
                                                     G_CALLBACK (atk_dbus_service_refresh), self);
}

AtkDbusService *
atk_dbus_service_new_for_connection (GDBusConnection *connection, gpointer daemon,
                                     const AtkDaemonControl *control, gboolean system_policy,
                                     GError **error)
{
  g_autoptr (AtkDbusService) self = NULL;

  g_return_val_if_fail (G_IS_DBUS_CONNECTION (connection), NULL);
  g_return_val_if_fail (G_IS_OBJECT (daemon), NULL);
  g_return_val_if_fail (control != NULL, NULL);

  self = g_object_new (ATK_TYPE_DBUS_SERVICE, NULL);
  self->connection = g_object_ref (connection);
  self->daemon = g_object_ref (daemon);
  self->control = control;
  self->system_policy = system_policy;
  self->name_owner_changed_id = g_dbus_connection_signal_subscribe (
      connection, "org.freedesktop.DBus", "org.freedesktop.DBus", "NameOwnerChanged",
      "/org/freedesktop/DBus", NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_name_owner_changed, self, NULL);
  connect_skeleton (self);
  atk_dbus_service_refresh (self);
  self->gate = atk_dbus_gate_new (connection, ATK_DBUS_PATH);

  if (!g_dbus_interface_skeleton_export (G_DBUS_INTERFACE_SKELETON (self->skeleton), connection,
                                         ATK_DBUS_PATH, error))
    return NULL;
  if (!request_name (connection, error))
    return NULL;
  self->owns_name = TRUE;
  return g_steal_pointer (&self);
}

void
atk_dbus_service_set_allowed_uids (AtkDbusService *self, const guint32 *uids, gsize n_uids)
{
  g_return_if_fail (ATK_IS_DBUS_SERVICE (self));

  g_clear_pointer (&self->allowed_uids, g_array_unref);
  self->allowed_uids = g_array_sized_new (FALSE, FALSE, sizeof (guint32), n_uids);
  g_array_append_vals (self->allowed_uids, uids, n_uids);
  g_hash_table_remove_all (self->senders); /* decided under the old policy */
  if (self->gate != NULL)
    atk_dbus_gate_forget_all (self->gate);
}

void
atk_dbus_service_set_admin_group (AtkDbusService *self, const char *group)
{
  g_return_if_fail (ATK_IS_DBUS_SERVICE (self));

  g_free (self->admin_group);
  self->admin_group = g_strdup (group);
  g_hash_table_remove_all (self->senders);
}

/* AtkDaemon as an AtkDaemonControl. */

static const AtkStats *
daemon_get_stats (gpointer daemon)
{
  return atk_daemon_get_stats (daemon);
}

static const char *
daemon_get_relay_host (gpointer daemon)
{
  return atk_daemon_get_relay_host (daemon);
}

static gboolean
daemon_get_osprey_compatible (gpointer daemon)
{
  return atk_daemon_get_osprey_compatible (daemon);
}

static void
daemon_set_osprey_compatible (gpointer daemon, gboolean osprey)
{
  atk_daemon_set_osprey_compatible (daemon, osprey);
}

static void
daemon_pause (gpointer daemon)
{
  atk_daemon_pause (daemon);
}

static void
daemon_resume (gpointer daemon)
{
  atk_daemon_resume (daemon);
}

static void
daemon_reconnect (gpointer daemon)
{
  atk_daemon_reconnect (daemon);
}

static const AtkDaemonControl daemon_control = {
  .get_stats = daemon_get_stats,
  .get_relay_host = daemon_get_relay_host,
  .get_osprey_compatible = daemon_get_osprey_compatible,
  .set_osprey_compatible = daemon_set_osprey_compatible,
  .pause = daemon_pause,
  .resume = daemon_resume,
  .reconnect = daemon_reconnect,
  .resign = atk_dbus_leader_daemon_resign,
};

/* "Under systemd" means started by the system manager, which is PID 1 and sets
 * INVOCATION_ID; a user manager's services get the session bus. */
static GBusType
resolve_bus_type (AtkBusType bus_type)
{
  if (bus_type == ATK_BUS_SYSTEM)
    return G_BUS_TYPE_SYSTEM;
  if (bus_type == ATK_BUS_SESSION)
    return G_BUS_TYPE_SESSION;
  return g_getenv ("INVOCATION_ID") != NULL && getppid () == 1 ? G_BUS_TYPE_SYSTEM
                                                               : G_BUS_TYPE_SESSION;
}

AtkDbusService *
atk_dbus_service_new (AtkDaemon *daemon, AtkBusType bus_type, GError **error)
{
  g_autoptr (GDBusConnection) connection = NULL;
  GBusType type;

  g_return_val_if_fail (ATK_IS_DAEMON (daemon), NULL);
  g_return_val_if_fail (bus_type != ATK_BUS_NONE, NULL);

  type = resolve_bus_type (bus_type);
  connection = g_bus_get_sync (type, NULL, error);
  if (connection == NULL)
    return NULL;
  /* A restarted bus must not take the daemon down with it. */
  g_dbus_connection_set_exit_on_close (connection, FALSE);
  return atk_dbus_service_new_for_connection (connection, daemon, &daemon_control,
                                              type == G_BUS_TYPE_SYSTEM, error);
}
