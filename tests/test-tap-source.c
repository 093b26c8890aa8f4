/* Tests for AtkTapSource: against an in-process Tap (a SoupServer that keeps Tap's
 * channel semantics: acks name event ids on any connection, unacked events are resent
 * after a retry timeout, a live event is a barrier for its repo) and against the real
 * Tap service from the Go reference libraries (cmd/tap, run with --outbox-only on a
 * database seeded with tests/tap/session.jsonl).
 *
 * The "Kafka" here is a set of stored ids: the test delivers an event some milliseconds
 * after it arrives and only then acks it; both Taps check every ack against that set.
 * SPDX-License-Identifier: MIT */
#include <libsoup/soup.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>

#include "atk-tap-event.h"
#include "atk-tap-source.h"
#include "atk-test-http.h"
#include "atk-test-util.h"

#define MAX_MESSAGE (5 * 1024 * 1024)

static guint
scaled_ms (guint ms)
{
  return g_getenv ("ATK_UNDER_VALGRIND") != NULL ? ms * 10 : ms;
}

/* ---- the store: what "Kafka" holds ---- */

typedef struct
{
  GHashTable *stored;   /* id → times stored */
  guint ack_violations; /* acks for ids not (yet) stored */
  guint acks;           /* acks Tap received */
} Store;

static gboolean
store_has (Store *store, guint64 id)
{
  return g_hash_table_contains (store->stored, &id);
}

static void
store_put (Store *store, guint64 id)
{
  guint64 *key = g_memdup2 (&id, sizeof id);
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (store->stored, key));

  g_hash_table_replace (store->stored, key, GUINT_TO_POINTER (n + 1));
}

static void
store_init (Store *store)
{
  memset (store, 0, sizeof *store);
  store->stored = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);
}

static void
store_clear (Store *store)
{
  g_hash_table_unref (store->stored);
}

/* ---- a client: AtkTapSource plus simulated delivery ---- */

typedef struct Client Client;

typedef struct
{
  Client *client;
  guint64 id;
  guint timer;
} Delivery;

struct Client
{
  AtkTapSource *source;
  Store *store;
  GArray *received;     /* guint64 ids, in arrival order */
  GPtrArray *texts;     /* the messages as received */
  GPtrArray *in_flight; /* Delivery */
  guint delay_ms;
  gboolean (*should_deliver) (guint64 id); /* NULL: everything */
  guint errors;
  guint connected;
  guint barrier_violations;
  gboolean stop_on_error; /* stay away after a drop until the test starts us again */
};

/* The session's repos and live flags, by id (1-based), to check Tap's ordering. */
static GPtrArray *session_dids;
static GArray *session_live;

static void
load_session_index (void)
{
  g_autoptr (GPtrArray) session = atk_test_load_tap_fixture ("session.jsonl");

  session_dids = g_ptr_array_new_with_free_func (g_free);
  session_live = g_array_new (FALSE, TRUE, sizeof (gboolean));
  g_ptr_array_add (session_dids, NULL);
  g_array_set_size (session_live, 1);
  for (guint i = 0; i < session->len; i++)
    {
      g_autoptr (JsonNode) node = json_from_string (session->pdata[i], NULL);
      JsonObject *obj = json_node_get_object (node);
      JsonObject *body
          = json_object_get_object_member (obj, json_object_get_string_member (obj, "type"));
      gboolean live = json_object_get_boolean_member_with_default (body, "live", FALSE);

      g_assert_cmpint (json_object_get_int_member (obj, "id"), ==, i + 1);
      g_ptr_array_add (session_dids, g_strdup (json_object_get_string_member (body, "did")));
      g_array_append_val (session_live, live);
    }
}

/* Tap's per-repo rule, seen from the client: an event arrives only when every earlier event
 * of its repo that must precede it (a live one, or any one if it is live) has been acked,
 * and we ack only what is stored. */
static gboolean
barrier_held (Store *store, guint64 id)
{
  for (guint64 j = 1; j < id && id < session_dids->len; j++)
    if (strcmp (session_dids->pdata[j], session_dids->pdata[id]) == 0
        && (g_array_index (session_live, gboolean, j) || g_array_index (session_live, gboolean, id))
        && !store_has (store, j))
      return FALSE;
  return TRUE;
}

static gboolean
on_delivered (gpointer data)
{
  Delivery *d = data;
  Client *client = d->client;

  /* Stored first, acked after: the order the daemon keeps (ack from the delivery report). */
  store_put (client->store, d->id);
  atk_tap_source_ack (client->source, d->id);
  d->timer = 0;
  g_ptr_array_remove_fast (client->in_flight, d);
  return G_SOURCE_REMOVE;
}

static void
delivery_free (gpointer data)
{
  Delivery *d = data;

  g_clear_handle_id (&d->timer, g_source_remove);
  g_free (d);
}

static void
on_event (AtkTapSource *source, GBytes *text, gpointer user_data)
{
  Client *client = user_data;
  gsize len;
  const char *data = g_bytes_get_data (text, &len);
  Delivery *d;
  guint64 id;

  g_assert_true (atk_tap_event_peek_id (data, len, &id));
  g_array_append_val (client->received, id);
  g_ptr_array_add (client->texts, g_strndup (data, len));
  if (!atk_tap_source_get_disable_acks (client->source) && !barrier_held (client->store, id))
    client->barrier_violations++;
  if (client->should_deliver != NULL && !client->should_deliver (id))
    return; /* lost with the process: never reaches Kafka */
  d = g_new0 (Delivery, 1);
  d->client = client;
  d->id = id;
  d->timer = g_timeout_add (client->delay_ms + g_random_int_range (0, 5), on_delivered, d);
  g_ptr_array_add (client->in_flight, d);
}

static void
on_state_changed (AtkTapSource *source, AtkSourceState state, gpointer user_data)
{
  Client *client = user_data;

  if (state == ATK_SOURCE_CONNECTED)
    client->connected++;
}

static void
on_connection_error (AtkTapSource *source, const char *message, gpointer user_data)
{
  Client *client = user_data;

  g_test_message ("connection error: %s", message);
  client->errors++;
  if (client->stop_on_error)
    atk_tap_source_stop (source);
}

static Client *
client_new (const char *url, Store *store, gboolean disable_acks)
{
  Client *client = g_new0 (Client, 1);

  client->source = atk_tap_source_new (url, MAX_MESSAGE, disable_acks);
  client->store = store;
  client->received = g_array_new (FALSE, FALSE, sizeof (guint64));
  client->texts = g_ptr_array_new_with_free_func (g_free);
  client->in_flight = g_ptr_array_new_with_free_func (delivery_free);
  client->delay_ms = 5;
  g_signal_connect (client->source, "payload", G_CALLBACK (on_event), client);
  g_signal_connect (client->source, "state-changed", G_CALLBACK (on_state_changed), client);
  g_signal_connect (client->source, "connection-error", G_CALLBACK (on_connection_error), client);
  atk_tap_source_start (client->source);
  return client;
}

/* Like a killed process: the connection goes, deliveries in flight never complete. */
static void
client_free (Client *client)
{
  g_signal_handlers_disconnect_by_data (client->source, client);
  g_object_unref (client->source);
  g_array_unref (client->received);
  g_ptr_array_unref (client->texts);
  g_ptr_array_unref (client->in_flight);
  g_free (client);
}

static guint
count_received (Client *client, guint64 id)
{
  guint n = 0;

  for (guint i = 0; i < client->received->len; i++)
    n += g_array_index (client->received, guint64, i) == id;
  return n;
}

/* ---- an in-process Tap ---- */

typedef struct
{
  guint64 id;
  char *did;
  gboolean live;
  char *text;
  gboolean acked;
  gint64 sent_at; /* in flight since, or 0 */
  guint sends;
} FakeEvent;

typedef struct
{
  SoupServer *server;
  char *url;
  GPtrArray *events; /* FakeEvent, by id */
  GPtrArray *conns;
  SoupWebsocketConnection *conn; /* the one Tap writes to (the newest) */
  Store *store;
  gboolean fire_and_forget;
  gint64 retry_timeout_us;
  guint close_after_sends; /* drop the connection after this many writes; 0 never */
  guint sends_on_conn;
  guint connections;
  guint client_messages;
  guint unknown_acks;
  guint pump_id;
} FakeTap;

static void
fake_event_free (gpointer data)
{
  FakeEvent *e = data;

  g_free (e->did);
  g_free (e->text);
  g_free (e);
}

static gboolean
did_blocked (FakeTap *tap, const FakeEvent *e, GHashTable *blocked)
{
  if (g_hash_table_contains (blocked, e->did))
    return TRUE;
  for (guint i = 0; i < tap->events->len; i++)
    {
      FakeEvent *other = tap->events->pdata[i];
      if (other != e && !other->acked && other->sent_at != 0 && strcmp (other->did, e->did) == 0
          && (other->live || e->live))
        return TRUE; /* a live event in flight, or a live event waiting for the others */
    }
  return FALSE;
}

/* What Tap's outbox does on each tick: requeue timed-out events, send what each repo's
 * ordering allows. */
static gboolean
fake_tap_pump (gpointer data)
{
  FakeTap *tap = data;
  gint64 now = g_get_monotonic_time ();
  g_autoptr (GHashTable) blocked = g_hash_table_new (g_str_hash, g_str_equal);

  for (guint i = 0; i < tap->events->len; i++)
    {
      FakeEvent *e = tap->events->pdata[i];
      if (!e->acked && e->sent_at != 0 && now - e->sent_at > tap->retry_timeout_us)
        e->sent_at = 0;
    }
  for (guint i = 0; i < tap->events->len; i++)
    {
      FakeEvent *e = tap->events->pdata[i];

      if (e->acked || e->sent_at != 0)
        continue;
      if (tap->conn == NULL
          || soup_websocket_connection_get_state (tap->conn) != SOUP_WEBSOCKET_STATE_OPEN
          || did_blocked (tap, e, blocked))
        {
          g_hash_table_add (blocked, e->did); /* later events of the repo wait too */
          continue;
        }
      soup_websocket_connection_send_text (tap->conn, e->text);
      e->sends++;
      e->sent_at = now;
      if (tap->fire_and_forget)
        e->acked = TRUE;
      if (++tap->sends_on_conn == tap->close_after_sends)
        {
          soup_websocket_connection_close (tap->conn, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, "cut");
          tap->close_after_sends = 0;
          break;
        }
    }
  return G_SOURCE_CONTINUE;
}

static FakeEvent *
fake_tap_find (FakeTap *tap, guint64 id)
{
  for (guint i = 0; i < tap->events->len; i++)
    if (((FakeEvent *)tap->events->pdata[i])->id == id)
      return tap->events->pdata[i];
  return NULL;
}

static void
on_fake_message (SoupWebsocketConnection *conn, SoupWebsocketDataType type, GBytes *message,
                 gpointer user_data)
{
  FakeTap *tap = user_data;
  g_autoptr (JsonNode) node = NULL;
  JsonObject *obj;
  FakeEvent *e;
  guint64 id;

  tap->client_messages++;
  node = json_from_string (g_bytes_get_data (message, NULL), NULL);
  g_assert_nonnull (node);
  obj = json_node_get_object (node);
  g_assert_cmpstr (json_object_get_string_member (obj, "type"), ==, "ack");
  g_assert_cmpuint (json_object_get_size (obj), ==, 2);
  id = (guint64)json_object_get_int_member (obj, "id");
  tap->store->acks++;
  if (!store_has (tap->store, id))
    tap->store->ack_violations++;
  /* Tap looks acks up by id, whatever connection they come on. */
  e = fake_tap_find (tap, id);
  if (e == NULL || e->acked)
    tap->unknown_acks++;
  else
    e->acked = TRUE;
}

static void
on_fake_websocket (SoupServer *server, SoupServerMessage *msg, const char *path,
                   SoupWebsocketConnection *conn, gpointer user_data)
{
  FakeTap *tap = user_data;

  g_ptr_array_add (tap->conns, g_object_ref (conn));
  g_signal_connect (conn, "message", G_CALLBACK (on_fake_message), tap);
  tap->conn = conn;
  tap->sends_on_conn = 0;
  tap->connections++;
}

static FakeTap *
fake_tap_new (Store *store, gint64 retry_timeout_ms)
{
  FakeTap *tap = g_new0 (FakeTap, 1);
  g_autoptr (GPtrArray) session = atk_test_load_tap_fixture ("session.jsonl");
  g_autoptr (GError) error = NULL;

  tap->store = store;
  tap->retry_timeout_us = retry_timeout_ms * 1000;
  tap->events = g_ptr_array_new_with_free_func (fake_event_free);
  tap->conns = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < session->len; i++)
    {
      g_autoptr (JsonNode) node = json_from_string (session->pdata[i], &error);
      JsonObject *obj = json_node_get_object (node);
      const char *type = json_object_get_string_member (obj, "type");
      JsonObject *body = json_object_get_object_member (obj, type);
      FakeEvent *e = g_new0 (FakeEvent, 1);

      g_assert_no_error (error);
      e->id = (guint64)json_object_get_int_member (obj, "id");
      e->did = g_strdup (json_object_get_string_member (body, "did"));
      e->live = json_object_get_boolean_member_with_default (body, "live", FALSE);
      e->text = g_strdup (session->pdata[i]);
      g_ptr_array_add (tap->events, e);
    }
  tap->server = atk_test_ws_server_new ("/channel", on_fake_websocket, tap, &tap->url);
  tap->pump_id = g_timeout_add (10, fake_tap_pump, tap);
  return tap;
}

static void
fake_tap_free (FakeTap *tap)
{
  for (guint i = 0; i < tap->conns->len; i++)
    g_signal_handlers_disconnect_by_data (tap->conns->pdata[i], tap);
  g_clear_handle_id (&tap->pump_id, g_source_remove);
  atk_test_http_server_stop (&tap->server);
  g_ptr_array_unref (tap->conns);
  g_ptr_array_unref (tap->events);
  g_free (tap->url);
  g_free (tap);
}

static gboolean
fake_tap_all_acked (gpointer data)
{
  FakeTap *tap = data;

  for (guint i = 0; i < tap->events->len; i++)
    if (!((FakeEvent *)tap->events->pdata[i])->acked)
      return FALSE;
  return TRUE;
}

static void
assert_all_stored (Store *store, FakeTap *tap)
{
  for (guint i = 0; i < tap->events->len; i++)
    g_assert_true (store_has (store, ((FakeEvent *)tap->events->pdata[i])->id));
}

/* ---- in-process Tap tests ---- */

/* Every event stored, and acked only after: Tap never sees an ack for an unstored id. */
static void
test_fake_acks_after_delivery (void)
{
  Store store;
  FakeTap *tap;
  Client *client;
  guint64 sent = 0, dropped = 0;

  store_init (&store);
  tap = fake_tap_new (&store, 60000);
  client = client_new (tap->url, &store, FALSE);
  client->delay_ms = 30;

  g_assert_true (atk_test_wait_until (NULL, fake_tap_all_acked, tap, scaled_ms (10000)));
  assert_all_stored (&store, tap);
  g_assert_cmpuint (store.ack_violations, ==, 0);
  g_assert_cmpuint (store.acks, ==, tap->events->len);
  g_assert_cmpuint (tap->unknown_acks, ==, 0);
  g_assert_cmpuint (client->received->len, ==, tap->events->len);
  atk_tap_source_get_ack_counts (client->source, &sent, &dropped, NULL);
  g_assert_cmpuint (sent, ==, tap->events->len);
  g_assert_cmpuint (dropped, ==, 0);
  g_assert_cmpuint (client->barrier_violations, ==, 0);

  client_free (client);
  fake_tap_free (tap);
  store_clear (&store);
}

static gboolean
deliver_odd (guint64 id)
{
  return id % 2 == 1;
}

/* at-kafka killed mid-stream: the even events it had received never reached Kafka and were
 * never acked. The restarted process gets them again from Tap (after its retry timeout)
 * and nothing is lost. */
static void
test_fake_kill_and_restart (void)
{
  Store store;
  FakeTap *tap;
  Client *first, *second;

  store_init (&store);
  tap = fake_tap_new (&store, 300);
  first = client_new (tap->url, &store, FALSE);
  first->should_deliver = deliver_odd;
  g_assert_true (atk_test_wait_for_count (NULL, &first->received->len, 5, scaled_ms (5000)));
  /* Let the odd deliveries finish, then "kill" it. */
  atk_test_run_for (NULL, 50);
  client_free (first);

  second = client_new (tap->url, &store, FALSE);
  g_assert_true (atk_test_wait_until (NULL, fake_tap_all_acked, tap, scaled_ms (10000)));
  assert_all_stored (&store, tap);
  g_assert_cmpuint (store.ack_violations, ==, 0);
  /* Even ids the first process had seen came again. */
  g_assert_cmpuint (count_received (second, 2), ==, 1);
  g_assert_cmpuint (second->barrier_violations, ==, 0);
  g_assert_cmpuint (((FakeEvent *)tap->events->pdata[1])->sends, >=, 2);

  client_free (second);
  fake_tap_free (tap);
  store_clear (&store);
}

/* Tap drops the connection in the middle; deliveries still running complete while we are
 * away: their acks wait and go out on the next connection, so Tap needs not resend them. */
static gboolean
client_has_error (gpointer data)
{
  Client *client = data;
  return client->errors > 0;
}

static gboolean
deliveries_done (gpointer data)
{
  Client *client = data;
  return client->in_flight->len == 0;
}

static void
test_fake_drop_mid_stream (void)
{
  Store store;
  FakeTap *tap;
  Client *client;
  guint64 sent = 0;
  guint queued = 0;

  store_init (&store);
  tap = fake_tap_new (&store, 60000); /* no timeouts: only the queued acks can finish */
  tap->close_after_sends = 3;
  client = client_new (tap->url, &store, FALSE);
  client->delay_ms = 100;
  client->stop_on_error = TRUE;

  g_assert_true (atk_test_wait_until (NULL, client_has_error, client, scaled_ms (5000)));
  g_assert_cmpint (atk_tap_source_get_state (client->source), ==, ATK_SOURCE_STOPPED);
  g_assert_true (atk_test_wait_until (NULL, deliveries_done, client, scaled_ms (5000)));
  atk_tap_source_get_ack_counts (client->source, &sent, NULL, &queued);
  g_assert_cmpuint (queued, ==, client->received->len);
  g_assert_cmpuint (queued, >, 0);
  g_assert_cmpuint (store.acks, ==, sent);

  client->stop_on_error = FALSE;
  atk_tap_source_start (client->source);
  g_assert_true (atk_test_wait_until (NULL, fake_tap_all_acked, tap, scaled_ms (10000)));
  assert_all_stored (&store, tap);
  g_assert_cmpuint (store.ack_violations, ==, 0);
  g_assert_cmpuint (tap->connections, ==, 2);
  g_assert_cmpuint (client->errors, ==, 1);
  g_assert_cmpuint (client->barrier_violations, ==, 0);
  for (guint i = 0; i < tap->events->len; i++)
    g_assert_cmpuint (((FakeEvent *)tap->events->pdata[i])->sends, ==, 1);
  atk_tap_source_get_ack_counts (client->source, &sent, NULL, &queued);
  g_assert_cmpuint (sent, ==, tap->events->len);
  g_assert_cmpuint (queued, ==, 0);

  client_free (client);
  fake_tap_free (tap);
  store_clear (&store);
}

/* --disable-acks: Tap in fire-and-forget mode; not one message goes back to it. */
static void
test_fake_disable_acks (void)
{
  Store store;
  FakeTap *tap;
  Client *client;
  guint64 sent = 1, dropped = 1;
  guint queued = 1;

  store_init (&store);
  tap = fake_tap_new (&store, 60000);
  tap->fire_and_forget = TRUE;
  client = client_new (tap->url, &store, TRUE);
  g_assert_true (atk_tap_source_get_disable_acks (client->source));
  g_assert_true (
      atk_test_wait_for_count (NULL, &client->received->len, tap->events->len, scaled_ms (5000)));
  g_assert_true (atk_test_wait_until (NULL, fake_tap_all_acked, tap, scaled_ms (5000)));
  atk_test_run_for (NULL, 100); /* room for deliveries, and for acks that must not come */
  assert_all_stored (&store, tap);
  g_assert_cmpuint (tap->client_messages, ==, 0);
  atk_tap_source_get_ack_counts (client->source, &sent, &dropped, &queued);
  g_assert_cmpuint (sent, ==, 0);
  g_assert_cmpuint (dropped, ==, 0);
  g_assert_cmpuint (queued, ==, 0);

  client_free (client);
  fake_tap_free (tap);
  store_clear (&store);
}

static gboolean
client_in_backoff_after_error (gpointer data)
{
  Client *client = data;
  return client->errors > 0 && atk_tap_source_get_state (client->source) == ATK_SOURCE_BACKOFF;
}

static gboolean
client_connected (gpointer data)
{
  Client *client = data;
  return atk_tap_source_get_state (client->source) == ATK_SOURCE_CONNECTED;
}

/* A Tap that is not there yet: backoff and retry, acks wait; the "/channel" URL form works
 * as well as the bare host. */
static void
test_fake_not_there_yet (void)
{
  Store store;
  g_autoptr (GSocketListener) listener = g_socket_listener_new ();
  g_autoptr (GError) error = NULL;
  guint16 port = 0;
  g_autofree char *url = NULL;
  FakeTap *tap;
  Client *client;
  guint queued = 0;

  store_init (&store);
  /* A port nobody listens on (bound, then released). */
  port = g_socket_listener_add_any_inet_port (listener, NULL, &error);
  g_assert_no_error (error);
  g_socket_listener_close (listener);
  url = g_strdup_printf ("ws://127.0.0.1:%u/channel", port);
  client = client_new (url, &store, FALSE);
  g_assert_true (
      atk_test_wait_until (NULL, client_in_backoff_after_error, client, scaled_ms (5000)));
  store_put (&store, 42);
  atk_tap_source_ack (client->source, 42);
  atk_tap_source_get_ack_counts (client->source, NULL, NULL, &queued);
  g_assert_cmpuint (queued, ==, 1);
  client_free (client);

  /* The real thing, addressed with a trailing slash. */
  tap = fake_tap_new (&store, 60000);
  g_free (url);
  url = g_strdup_printf ("%s/", tap->url);
  client = client_new (url, &store, FALSE);
  g_assert_true (atk_test_wait_until (NULL, client_connected, client, scaled_ms (5000)));
  g_assert_true (atk_test_wait_until (NULL, fake_tap_all_acked, tap, scaled_ms (10000)));
  g_assert_cmpuint (store.ack_violations, ==, 0);

  client_free (client);
  fake_tap_free (tap);
  store_clear (&store);
}

/* ---- the real Tap ---- */

typedef struct
{
  char *bin;
  char *dir;
  char *db;
  char *url;
  guint16 port;
  GSubprocess *process;
} RealTap;

static void
die_with_parent (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

/* $ATK_TAP, else `tap` on PATH, else $GOPATH/bin or ~/go/bin (where `go install` puts it). */
static char *
find_tap (void)
{
  const char *env = g_getenv ("ATK_TAP");
  const char *gopath = g_getenv ("GOPATH");
  char *path;

  if (env != NULL && *env)
    return g_strdup (env);
  if ((path = g_find_program_in_path ("tap")) != NULL)
    return path;
  path = gopath != NULL && *gopath ? g_build_filename (gopath, "bin", "tap", NULL)
                                   : g_build_filename (g_get_home_dir (), "go", "bin", "tap", NULL);
  if (g_file_test (path, G_FILE_TEST_IS_EXECUTABLE))
    return path;
  g_free (path);
  return NULL;
}

static guint16
free_port (void)
{
  g_autoptr (GSocketListener) listener = g_socket_listener_new ();
  g_autoptr (GError) error = NULL;
  guint16 port = g_socket_listener_add_any_inet_port (listener, NULL, &error);

  g_assert_no_error (error);
  g_socket_listener_close (listener);
  return port;
}

static gboolean
tap_healthy (gpointer data)
{
  RealTap *tap = data;
  g_autoptr (SoupSession) session = soup_session_new ();
  g_autofree char *uri = g_strdup_printf ("http://127.0.0.1:%u/health", tap->port);
  g_autoptr (SoupMessage) msg = soup_message_new (SOUP_METHOD_GET, uri);
  g_autoptr (GBytes) body = soup_session_send_and_read (session, msg, NULL, NULL);

  return body != NULL && soup_message_get_status (msg) == SOUP_STATUS_OK;
}

static void
real_tap_start (RealTap *tap, gboolean disable_acks)
{
  g_autoptr (GSubprocessLauncher) launcher
      = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
  g_autofree char *db_url = g_strdup_printf ("sqlite://%s", tap->db);
  g_autofree char *bind = g_strdup_printf ("127.0.0.1:%u", tap->port);
  g_autoptr (GError) error = NULL;
  const char *argv[] = { tap->bin, "run", "--outbox-only", "--db-url", db_url, "--bind", bind,
                         /* Unacked events come again after 1 s instead of a minute. */
                         "--retry-timeout", "1s", "--log-level", "warn",
                         disable_acks ? "--disable-acks" : NULL, NULL };

  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  g_subprocess_launcher_set_cwd (launcher, tap->dir);
  tap->process = g_subprocess_launcher_spawnv (launcher, argv, &error);
  g_assert_no_error (error);
  g_assert_true (atk_test_wait_until (NULL, tap_healthy, tap, scaled_ms (20000)));
}

static void
real_tap_stop (RealTap *tap)
{
  g_autoptr (GError) error = NULL;

  if (tap->process == NULL)
    return;
  g_subprocess_send_signal (tap->process, SIGTERM);
  g_subprocess_wait (tap->process, NULL, &error);
  g_assert_no_error (error);
  g_clear_object (&tap->process);
}

/* A Tap whose outbox holds the session, exactly as its own pipeline would have left it. */
static RealTap *
real_tap_new (gboolean disable_acks)
{
  RealTap *tap = g_new0 (RealTap, 1);
  g_autofree char *seed = g_test_build_filename (G_TEST_DIST, "tap", "seed-tap-db.py", NULL);
  g_autofree char *session = g_test_build_filename (G_TEST_DIST, "tap", "session.jsonl", NULL);
  g_autoptr (GError) error = NULL;
  gint status = 0;

  tap->bin = find_tap ();
  if (tap->bin == NULL)
    g_error ("Tap is not installed: go install "
             "github.com/bluesky-social/indigo/cmd/tap@v0.0.0-20260605210604-af2fec94f34c "
             "(or set ATK_TAP to its path)");
  tap->dir = atk_test_make_tmp_dir ("atk-tap-XXXXXX");
  tap->db = g_build_filename (tap->dir, "tap.db", NULL);
  tap->port = free_port ();
  tap->url = g_strdup_printf ("ws://127.0.0.1:%u", tap->port);

  real_tap_start (tap, disable_acks); /* creates its schema */
  real_tap_stop (tap);
  g_spawn_sync (NULL, (char *[]){ "python3", seed, tap->db, session, NULL }, NULL,
                G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, &status, &error);
  g_assert_no_error (error);
  g_spawn_check_wait_status (status, &error);
  g_assert_no_error (error);
  real_tap_start (tap, disable_acks);
  return tap;
}

static void
real_tap_free (RealTap *tap)
{
  real_tap_stop (tap);
  atk_test_rm_rf (tap->dir);
  g_free (tap->bin);
  g_free (tap->dir);
  g_free (tap->db);
  g_free (tap->url);
  g_free (tap);
}

static gboolean
store_complete (gpointer data)
{
  Store *store = data;
  return g_hash_table_size (store->stored) == 9;
}

/* What the real Tap sent is the session, byte for byte: the fixture is Tap's wire format. */
static void
assert_texts_are_session (Client *client)
{
  g_autoptr (GPtrArray) session = atk_test_load_tap_fixture ("session.jsonl");

  for (guint i = 0; i < client->texts->len; i++)
    {
      guint64 id = g_array_index (client->received, guint64, i);
      g_assert_cmpuint (id, >=, 1);
      g_assert_cmpuint (id, <=, session->len);
      g_assert_cmpstr (client->texts->pdata[i], ==, session->pdata[id - 1]);
    }
}

static gboolean
acks_sent_at_least (gpointer data)
{
  Client *client = data;
  guint64 sent = 0;

  atk_tap_source_get_ack_counts (client->source, &sent, NULL, NULL);
  return sent >= 9;
}

/* The real Tap: each event arrives, is stored, then acked; once acked, Tap does not send it
 * again (its retry timeout is 1 s here); Tap's live barrier means event 4 can only have
 * come after event 3 was acked, so acks reached and satisfied Tap itself. */
static void
test_real_tap_acks (void)
{
  RealTap *tap = real_tap_new (FALSE);
  Store store;
  Client *client;
  guint64 dropped = 1;

  store_init (&store);
  client = client_new (tap->url, &store, FALSE);
  client->delay_ms = 20;
  g_assert_true (atk_test_wait_until (NULL, store_complete, &store, scaled_ms (20000)));
  g_assert_true (atk_test_wait_until (NULL, acks_sent_at_least, client, scaled_ms (5000)));
  atk_test_run_for (NULL, scaled_ms (2500)); /* over two retry timeouts: nothing may come again */
  g_assert_cmpuint (client->received->len, ==, 9);
  for (guint64 id = 1; id <= 9; id++)
    g_assert_cmpuint (count_received (client, id), ==, 1);
  assert_texts_are_session (client);
  g_assert_cmpuint (client->barrier_violations, ==, 0);
  atk_tap_source_get_ack_counts (client->source, NULL, &dropped, NULL);
  g_assert_cmpuint (dropped, ==, 0);

  client_free (client);
  real_tap_free (tap);
  store_clear (&store);
}

/* Killed mid-stream, restarted: what the first process never stored comes again from the
 * real Tap, and the store ends complete. Then Tap itself restarts: it may resend what was
 * acked but not yet deleted (at least once), never less. */
static void
test_real_tap_kill_and_restart (void)
{
  RealTap *tap = real_tap_new (FALSE);
  Store store;
  Client *first, *second, *third;

  store_init (&store);
  first = client_new (tap->url, &store, FALSE);
  first->should_deliver = deliver_odd;
  g_assert_true (atk_test_wait_for_count (NULL, &first->received->len, 4, scaled_ms (20000)));
  atk_test_run_for (NULL, 100);
  g_assert_false (store_complete (&store));
  client_free (first);

  second = client_new (tap->url, &store, FALSE);
  g_assert_true (atk_test_wait_until (NULL, store_complete, &store, scaled_ms (30000)));
  g_assert_true (atk_test_wait_until (NULL, client_connected, second, scaled_ms (1000)));
  assert_texts_are_session (second);
  g_assert_cmpuint (second->barrier_violations, ==, 0);
  client_free (second);

  /* Tap restarts; the store stays complete and any resent event is one we already have. */
  real_tap_stop (tap);
  real_tap_start (tap, FALSE);
  third = client_new (tap->url, &store, FALSE);
  atk_test_run_for (NULL, scaled_ms (1500));
  for (guint i = 0; i < third->received->len; i++)
    g_assert_true (store_has (&store, g_array_index (third->received, guint64, i)));
  g_assert_true (store_complete (&store));

  client_free (third);
  real_tap_free (tap);
  store_clear (&store);
}

/* --disable-acks with Tap in fire-and-forget mode: every event arrives once, none again. */
static void
test_real_tap_disable_acks (void)
{
  RealTap *tap = real_tap_new (TRUE);
  Store store;
  Client *client;
  guint64 sent = 1;

  store_init (&store);
  client = client_new (tap->url, &store, TRUE);
  g_assert_true (atk_test_wait_until (NULL, store_complete, &store, scaled_ms (20000)));
  atk_test_run_for (NULL, scaled_ms (2500));
  g_assert_cmpuint (client->received->len, ==, 9);
  assert_texts_are_session (client);
  atk_tap_source_get_ack_counts (client->source, &sent, NULL, NULL);
  g_assert_cmpuint (sent, ==, 0);

  client_free (client);
  real_tap_free (tap);
  store_clear (&store);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  load_session_index ();

  g_test_add_func ("/tap-source/fake/acks-after-delivery", test_fake_acks_after_delivery);
  g_test_add_func ("/tap-source/fake/kill-and-restart", test_fake_kill_and_restart);
  g_test_add_func ("/tap-source/fake/drop-mid-stream", test_fake_drop_mid_stream);
  g_test_add_func ("/tap-source/fake/disable-acks", test_fake_disable_acks);
  g_test_add_func ("/tap-source/fake/not-there-yet", test_fake_not_there_yet);
  g_test_add_func ("/tap-source/real/acks", test_real_tap_acks);
  g_test_add_func ("/tap-source/real/kill-and-restart", test_real_tap_kill_and_restart);
  g_test_add_func ("/tap-source/real/disable-acks", test_real_tap_disable_acks);

  return g_test_run ();
}
