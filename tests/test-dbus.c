/* AtkDbusService on a private bus (GTestDBus), driven by a stand-in daemon. Every call
 * goes from a second connection through the bus daemon, as a client's would; calls are
 * asynchronous because the service answers on this thread's main context. */
#include <gio/gio.h>
#include <string.h>
#include <unistd.h>

#include "atk-dbus-service.h"
#include "atk-fake-daemon.h"
#include "atk-test-util.h"

#define DAEMON_IFACE "io.github.atkafka.Daemon1"
#define TIMEOUT_MS 5000

/* The control calls land on the stand-in daemon, which counts them. */
static const char *
fake_get_relay_host (gpointer daemon)
{
  return "wss://relay.example";
}

static gboolean
fake_get_osprey (gpointer daemon)
{
  return ATK_FAKE_DAEMON (daemon)->osprey;
}

static void
fake_set_osprey (gpointer daemon, gboolean osprey)
{
  ATK_FAKE_DAEMON (daemon)->osprey = osprey;
  ATK_FAKE_DAEMON (daemon)->osprey_sets++;
}

static void
fake_pause (gpointer daemon)
{
  ATK_FAKE_DAEMON (daemon)->pauses++;
  ATK_FAKE_DAEMON (daemon)->stats.paused = TRUE;
}

static void
fake_resume (gpointer daemon)
{
  ATK_FAKE_DAEMON (daemon)->resumes++;
  ATK_FAKE_DAEMON (daemon)->stats.paused = FALSE;
}

static void
fake_reconnect (gpointer daemon)
{
  ATK_FAKE_DAEMON (daemon)->reconnects++;
}

static const AtkDaemonControl fake_control = {
  .get_stats = atk_fake_daemon_get_stats,
  .get_relay_host = fake_get_relay_host,
  .get_osprey_compatible = fake_get_osprey,
  .set_osprey_compatible = fake_set_osprey,
  .pause = fake_pause,
  .resume = fake_resume,
  .reconnect = fake_reconnect,
};

typedef struct
{
  GTestDBus *bus;
  GDBusConnection *service_conn;
  GDBusConnection *client;
  AtkFakeDaemon *daemon;
  AtkDbusService *service;
  GPtrArray *changed; /* property names seen in PropertiesChanged */
  guint changed_id;
} Fixture;

static GDBusConnection *
connect_to (const char *address)
{
  g_autoptr (GError) error = NULL;
  GDBusConnection *conn = g_dbus_connection_new_for_address_sync (
      address,
      G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT
          | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
      NULL, NULL, &error);

  g_assert_no_error (error);
  return conn;
}

static void
on_properties_changed (GDBusConnection *conn, const char *sender, const char *path,
                       const char *iface, const char *signal, GVariant *params, gpointer data)
{
  Fixture *fx = data;
  g_autoptr (GVariant) changed = NULL;
  GVariantIter iter;
  const char *name;

  changed = g_variant_get_child_value (params, 1);
  g_variant_iter_init (&iter, changed);
  while (g_variant_iter_next (&iter, "{&sv}", &name, NULL))
    g_ptr_array_add (fx->changed, g_strdup (name));
}

static void
fixture_set_up (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  const char *address;

  fx->bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_test_dbus_up (fx->bus);
  address = g_test_dbus_get_bus_address (fx->bus);
  fx->service_conn = connect_to (address);
  fx->client = connect_to (address);
  fx->changed = g_ptr_array_new_with_free_func (g_free);
  fx->changed_id = g_dbus_connection_signal_subscribe (
      fx->client, ATK_DBUS_NAME, "org.freedesktop.DBus.Properties", "PropertiesChanged",
      ATK_DBUS_PATH, DAEMON_IFACE, G_DBUS_SIGNAL_FLAGS_NONE, on_properties_changed, fx, NULL);
  fx->daemon = atk_fake_daemon_new ();
  fx->daemon->stats.source_state = "connecting";
  fx->service = atk_dbus_service_new_for_connection (fx->service_conn, fx->daemon, &fake_control,
                                                     FALSE, &error);
  g_assert_no_error (error);
}

static void
fixture_tear_down (Fixture *fx, gconstpointer data)
{
  g_dbus_connection_signal_unsubscribe (fx->client, fx->changed_id);
  g_clear_object (&fx->service);
  g_clear_object (&fx->daemon);
  g_dbus_connection_close_sync (fx->client, NULL, NULL);
  g_dbus_connection_close_sync (fx->service_conn, NULL, NULL);
  g_clear_object (&fx->client);
  g_clear_object (&fx->service_conn);
  g_ptr_array_unref (fx->changed);
  g_test_dbus_down (fx->bus);
  g_clear_object (&fx->bus);
}

/* Iterates the main context until *done, failing after TIMEOUT_MS. */
static void
wait_until (gboolean *done, const char *what)
{
  if (!atk_test_wait_for_flag (NULL, done, TIMEOUT_MS))
    g_error ("Timed out waiting for %s", what);
}

typedef struct
{
  gboolean done;
  GAsyncResult *result;
} Pending;

static void
on_done (GObject *source, GAsyncResult *result, gpointer data)
{
  Pending *pending = data;

  pending->result = g_object_ref (result);
  pending->done = TRUE;
}

static GVariant *
call (Fixture *fx, const char *iface, const char *method, GVariant *params, GError **error)
{
  Pending pending = { 0 };
  GVariant *reply;

  g_dbus_connection_call (fx->client, ATK_DBUS_NAME, ATK_DBUS_PATH, iface, method, params, NULL,
                          G_DBUS_CALL_FLAGS_NONE, TIMEOUT_MS, NULL, on_done, &pending);
  wait_until (&pending.done, method);
  reply = g_dbus_connection_call_finish (fx->client, pending.result, error);
  g_object_unref (pending.result);
  return reply;
}

static GVariant *
get_property (Fixture *fx, const char *name)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = call (fx, "org.freedesktop.DBus.Properties", "Get",
                                     g_variant_new ("(ss)", DAEMON_IFACE, name), &error);
  GVariant *value;

  g_assert_no_error (error);
  g_variant_get (reply, "(v)", &value);
  return value;
}

static gboolean
set_osprey (Fixture *fx, gboolean value, GError **error)
{
  g_autoptr (GVariant) reply = call (
      fx, "org.freedesktop.DBus.Properties", "Set",
      g_variant_new ("(ssv)", DAEMON_IFACE, "OspreyCompatible", g_variant_new_boolean (value)),
      error);
  return reply != NULL;
}

static void
test_introspect (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply
      = call (fx, "org.freedesktop.DBus.Introspectable", "Introspect", NULL, &error);
  const char *xml;
  g_autoptr (GDBusNodeInfo) node = NULL;
  GDBusInterfaceInfo *info;
  const char *const properties[]
      = { "State",         "RelayHost",      "Cursor",          "LastSeq",
          "EventsHandled", "EventsProduced", "EventsFailed",    "EventLagSeconds",
          "KafkaInFlight", "Paused",         "OspreyCompatible" };

  g_assert_no_error (error);
  g_variant_get (reply, "(&s)", &xml);
  node = g_dbus_node_info_new_for_xml (xml, &error);
  g_assert_no_error (error);
  info = g_dbus_node_info_lookup_interface (node, DAEMON_IFACE);
  g_assert_nonnull (info);
  for (guint i = 0; i < G_N_ELEMENTS (properties); i++)
    g_assert_nonnull (g_dbus_interface_info_lookup_property (info, properties[i]));
  g_assert_cmpint (g_dbus_interface_info_lookup_property (info, "OspreyCompatible")->flags, ==,
                   G_DBUS_PROPERTY_INFO_FLAGS_READABLE | G_DBUS_PROPERTY_INFO_FLAGS_WRITABLE);
  g_assert_cmpint (g_dbus_interface_info_lookup_property (info, "Cursor")->flags, ==,
                   G_DBUS_PROPERTY_INFO_FLAGS_READABLE);
  g_assert_nonnull (g_dbus_interface_info_lookup_method (info, "Pause"));
  g_assert_nonnull (g_dbus_interface_info_lookup_method (info, "Resume"));
  g_assert_nonnull (g_dbus_interface_info_lookup_method (info, "Reconnect"));
}

static void
on_communicated (GObject *source, GAsyncResult *result, gpointer data)
{
  on_done (source, result, data);
}

/* busctl (sd-bus) reads our object independently of GDBus. It runs asynchronously:
 * the service needs this thread's main loop to answer it. */
static void
test_busctl (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *address_arg
      = g_strdup_printf ("--address=%s", g_test_dbus_get_bus_address (fx->bus));
  g_autoptr (GSubprocess) busctl = NULL;
  g_autofree char *out = NULL, *err = NULL;
  g_auto (GStrv) lines = NULL;
  Pending pending = { 0 };
  const char *const expected[]
      = { ".State",          ".Cursor",       ".LastSeq",         ".EventsHandled",
          ".EventsProduced", ".EventsFailed", ".EventLagSeconds", ".KafkaInFlight",
          ".Paused",         ".RelayHost",    ".OspreyCompatible" };

  fx->daemon->stats.has_cursor = TRUE;
  fx->daemon->stats.cursor = 31337;
  atk_dbus_service_refresh (fx->service);
  busctl = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                             &error, "busctl", address_arg, "--no-pager", "--no-legend",
                             "introspect", ATK_DBUS_NAME, ATK_DBUS_PATH, DAEMON_IFACE, NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8_async (busctl, NULL, NULL, on_communicated, &pending);
  wait_until (&pending.done, "busctl");
  g_subprocess_communicate_utf8_finish (busctl, pending.result, &out, &err, &error);
  g_object_unref (pending.result);
  g_assert_no_error (error);
  if (!g_subprocess_get_successful (busctl))
    g_error ("busctl failed: %s", err);

  /* Lines look like ".Cursor  property  x  31337  emits-change". */
  lines = g_strsplit (out, "\n", -1);
  for (guint i = 0; i < G_N_ELEMENTS (expected); i++)
    {
      gboolean found = FALSE;
      for (guint j = 0; lines[j] != NULL && !found; j++)
        {
          g_auto (GStrv) fields = g_strsplit_set (lines[j], " ", -1);
          found = g_str_equal (fields[0], expected[i]) && strstr (lines[j], " property ") != NULL;
          if (found && g_str_equal (expected[i], ".Cursor"))
            g_assert_nonnull (strstr (lines[j], " 31337 "));
          if (found && g_str_equal (expected[i], ".OspreyCompatible"))
            g_assert_nonnull (strstr (lines[j], "writable"));
        }
      if (!found)
        g_error ("busctl does not list %s:\n%s", expected[i], out);
    }
  g_assert_nonnull (strstr (out, ".Pause "));
  g_assert_nonnull (strstr (out, ".Reconnect "));
}

static gboolean
seen_change (Fixture *fx, const char *name)
{
  for (guint i = 0; i < fx->changed->len; i++)
    if (g_str_equal (g_ptr_array_index (fx->changed, i), name))
      return TRUE;
  return FALSE;
}

typedef struct
{
  Fixture *fx;
  const char *name;
} Change;

static gboolean
change_seen (gpointer user_data)
{
  Change *change = user_data;
  return seen_change (change->fx, change->name);
}

static void
wait_for_change (Fixture *fx, const char *name)
{
  Change change = { fx, name };

  if (!atk_test_wait_until (NULL, change_seen, &change, TIMEOUT_MS))
    g_error ("No PropertiesChanged for %s", name);
}

static void
test_properties_follow_stats (Fixture *fx, gconstpointer data)
{
  AtkStats *stats = &fx->daemon->stats;
  g_autoptr (GVariant) state = get_property (fx, "State");
  g_autoptr (GVariant) cursor = get_property (fx, "Cursor");
  g_autoptr (GVariant) relay = get_property (fx, "RelayHost");
  g_autoptr (GVariant) v = NULL;

  /* Before any event: no cursor, no seq. */
  g_assert_cmpstr (g_variant_get_string (state, NULL), ==, "connecting");
  g_assert_cmpint (g_variant_get_int64 (cursor), ==, -1);
  g_assert_cmpstr (g_variant_get_string (relay, NULL), ==, "wss://relay.example");

  stats->source_state = "connected";
  stats->has_cursor = TRUE;
  stats->cursor = 1000;
  stats->has_last_seq = TRUE;
  stats->last_seq = 1005;
  stats->produced_ok = 77;
  stats->produced_error = 3;
  stats->in_flight = 9;
  stats->last_event_time_ms = g_get_real_time () / 1000 - 2500;
  atk_stats_count_handled (stats, "operation#create", "app.bsky.feed.post");
  atk_stats_count_handled (stats, "operation#create", "app.bsky.feed.like");
  atk_stats_count_handled (stats, "identity", "");
  g_signal_emit_by_name (fx->daemon, "stats-changed");

  wait_for_change (fx, "Cursor");
  g_assert_true (seen_change (fx, "State"));
  g_assert_true (seen_change (fx, "LastSeq"));
  g_assert_true (seen_change (fx, "EventsProduced"));
  g_assert_false (seen_change (fx, "RelayHost")); /* unchanged values are not signalled */

  v = get_property (fx, "Cursor");
  g_assert_cmpint (g_variant_get_int64 (v), ==, 1000);
  g_clear_pointer (&v, g_variant_unref);
  v = get_property (fx, "LastSeq");
  g_assert_cmpint (g_variant_get_int64 (v), ==, 1005);
  g_clear_pointer (&v, g_variant_unref);
  v = get_property (fx, "EventsHandled");
  g_assert_cmpuint (g_variant_get_uint64 (v), ==, 3);
  g_clear_pointer (&v, g_variant_unref);
  v = get_property (fx, "EventsFailed");
  g_assert_cmpuint (g_variant_get_uint64 (v), ==, 3);
  g_clear_pointer (&v, g_variant_unref);
  v = get_property (fx, "KafkaInFlight");
  g_assert_cmpuint (g_variant_get_uint32 (v), ==, 9);
  g_clear_pointer (&v, g_variant_unref);
  v = get_property (fx, "EventLagSeconds");
  g_assert_cmpfloat (g_variant_get_double (v), >=, 2.4);
  g_assert_cmpfloat (g_variant_get_double (v), <, 60);
  g_clear_pointer (&v, g_variant_unref);
  v = get_property (fx, "State");
  g_assert_cmpstr (g_variant_get_string (v, NULL), ==, "connected");
}

static void
test_methods_call_through (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GVariant) paused = NULL;

  reply = call (fx, DAEMON_IFACE, "Pause", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (fx->daemon->pauses, ==, 1);
  paused = get_property (fx, "Paused");
  g_assert_true (g_variant_get_boolean (paused));
  wait_for_change (fx, "Paused");
  g_clear_pointer (&reply, g_variant_unref);
  g_clear_pointer (&paused, g_variant_unref);

  reply = call (fx, DAEMON_IFACE, "Resume", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (fx->daemon->resumes, ==, 1);
  paused = get_property (fx, "Paused");
  g_assert_false (g_variant_get_boolean (paused));
  g_clear_pointer (&reply, g_variant_unref);

  reply = call (fx, DAEMON_IFACE, "Reconnect", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (fx->daemon->reconnects, ==, 1);
  g_assert_cmpuint (fx->daemon->pauses, ==, 1);
}

static void
test_set_osprey (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) value = NULL;

  g_assert_false (fx->daemon->osprey);
  g_assert_true (set_osprey (fx, TRUE, &error));
  g_assert_no_error (error);
  g_assert_true (fx->daemon->osprey);
  value = get_property (fx, "OspreyCompatible");
  g_assert_true (g_variant_get_boolean (value));

  g_assert_true (set_osprey (fx, FALSE, &error));
  g_assert_no_error (error);
  g_assert_false (fx->daemon->osprey);
  g_assert_cmpuint (fx->daemon->osprey_sets, ==, 2);

  /* A change made inside the daemon shows up on the bus, without a call back into it. */
  fx->daemon->osprey = TRUE;
  g_signal_emit_by_name (fx->daemon, "stats-changed");
  g_clear_pointer (&value, g_variant_unref);
  value = get_property (fx, "OspreyCompatible");
  g_assert_true (g_variant_get_boolean (value));
  g_assert_cmpuint (fx->daemon->osprey_sets, ==, 2);
}

static void
test_unauthorised (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GVariant) value = NULL;
  const char *const methods[] = { "Pause", "Resume", "Reconnect" };
  guint32 other = getuid () + 4242;
  guint32 me = getuid ();

  atk_dbus_service_set_allowed_uids (fx->service, &other, 1);
  for (guint i = 0; i < G_N_ELEMENTS (methods); i++)
    {
      reply = call (fx, DAEMON_IFACE, methods[i], NULL, &error);
      g_assert_null (reply);
      g_assert_error (error, G_DBUS_ERROR, G_DBUS_ERROR_ACCESS_DENIED);
      g_clear_error (&error);
    }
  g_assert_false (set_osprey (fx, TRUE, &error));
  g_assert_error (error, G_DBUS_ERROR, G_DBUS_ERROR_ACCESS_DENIED);
  g_clear_error (&error);
  g_assert_cmpuint (fx->daemon->pauses + fx->daemon->resumes + fx->daemon->reconnects, ==, 0);
  g_assert_cmpuint (fx->daemon->osprey_sets, ==, 0);

  /* Reading stays open, and the refused write changed nothing. */
  value = get_property (fx, "OspreyCompatible");
  g_assert_false (g_variant_get_boolean (value));

  /* The same caller, once allowed, gets through. */
  atk_dbus_service_set_allowed_uids (fx->service, &me, 1);
  reply = call (fx, DAEMON_IFACE, "Pause", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (fx->daemon->pauses, ==, 1);
}

static void
test_name_taken (Fixture *fx, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GDBusConnection) other = connect_to (g_test_dbus_get_bus_address (fx->bus));
  g_autoptr (AtkDbusService) second
      = atk_dbus_service_new_for_connection (other, fx->daemon, &fake_control, FALSE, &error);

  g_assert_null (second);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_EXISTS);
  g_dbus_connection_close_sync (other, NULL, NULL);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
  ADD ("/dbus/introspect", test_introspect);
  ADD ("/dbus/busctl", test_busctl);
  ADD ("/dbus/properties-follow-stats", test_properties_follow_stats);
  ADD ("/dbus/methods-call-through", test_methods_call_through);
  ADD ("/dbus/set-osprey", test_set_osprey);
  ADD ("/dbus/unauthorised", test_unauthorised);
  ADD ("/dbus/name-taken", test_name_taken);
#undef ADD
  return g_test_run ();
}
