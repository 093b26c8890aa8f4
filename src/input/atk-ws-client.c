/* at-kafka: one reconnecting WebSocket client. One connection at a time; every way it can
 * end (refused, handshake rejected, closed by the peer, oversized message, silence) leads
 * to the same place: drop it, wait a jittered, growing delay, connect again.
 *
 * Re-entrancy: handlers of our signals may call stop() or reconnect(). Every attempt and
 * connection belongs to a "generation"; anything that abandons it bumps the counter, and
 * callbacks that find their generation stale do nothing. That is also how "no signal after
 * stop()" holds.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-input"

#include "atk-ws-client.h"

#include "atk-ws-conn.h"
#include "atk-ws-frame.h"
#include "atk-ws-handshake.h"

#define USER_AGENT "at-kafka/" ATK_VERSION

#define BACKOFF_BASE_MS 250
#define BACKOFF_CAP_MS 30000
#define KEEPALIVE_INTERVAL_S 30
#define CONNECT_TIMEOUT_S 30
/* A connection that lived this long (or delivered healthy_messages) was healthy: the next
 * drop retries from the shortest delay. A peer that accepts and then closes at once (an
 * error frame, an overloaded host) keeps growing the delay instead. */
#define HEALTHY_US (10 * G_USEC_PER_SEC)

struct _AtkWsClient
{
  GObject parent_instance;

  char *url;
  AtkWsClientUrlFunc url_func;
  gpointer url_data;
  AtkWsClientMessageFunc message_func;
  gpointer message_data;
  gboolean binary; /* the kind of message delivered */
  guint max_payload_bytes;
  guint idle_timeout_s;
  guint read_batch_ms;
  guint64 reads_before; /* reads on the connections before this one */
  guint healthy_messages;
  char *peer;
  char *noun;
  char *limit_name;

  GSocketClient *socket_client;
  AtkSourceState state;
  guint generation;

  GCancellable *cancellable; /* of the handshake in progress */
  AtkWsConn *conn;
  gint64 activity_us; /* attempt start, or the last message */
  gint64 connected_us;
  guint64 messages_on_conn;
  gboolean progress_on_conn; /* the owner said this connection delivered something new */

  guint retry_id;
  guint watchdog_id;
  guint failures; /* consecutive attempts that did not become healthy */
  guint backoff_delay_ms;
  guint backoff_bound_ms;
  gboolean attempted;
  guint64 reconnects;
};

G_DEFINE_FINAL_TYPE (AtkWsClient, atk_ws_client, G_TYPE_OBJECT)

G_DEFINE_ENUM_TYPE (AtkSourceState, atk_source_state,
                    G_DEFINE_ENUM_VALUE (ATK_SOURCE_STOPPED, "stopped"),
                    G_DEFINE_ENUM_VALUE (ATK_SOURCE_CONNECTING, "connecting"),
                    G_DEFINE_ENUM_VALUE (ATK_SOURCE_CONNECTED, "connected"),
                    G_DEFINE_ENUM_VALUE (ATK_SOURCE_BACKOFF, "backoff"))

enum
{
  SIGNAL_STATE_CHANGED,
  SIGNAL_CONNECTION_ERROR,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void begin_attempt (AtkWsClient *self);

const char *
atk_source_state_name (AtkSourceState state)
{
  switch (state)
    {
    case ATK_SOURCE_STOPPED:
      return "stopped";
    case ATK_SOURCE_CONNECTING:
      return "connecting";
    case ATK_SOURCE_CONNECTED:
      return "connected";
    case ATK_SOURCE_BACKOFF:
      return "backoff";
    default:
      return "unknown";
    }
}

static void
set_state (AtkWsClient *self, AtkSourceState state)
{
  if (self->state == state)
    return;
  self->state = state;
  g_signal_emit (self, signals[SIGNAL_STATE_CHANGED], 0, state);
}

/* Forgets the current connection without running any more of our code for it; the connection
 * sends its close frame and closes its stream by itself. */
static void
drop_connection (AtkWsClient *self, gushort code)
{
  g_autoptr (AtkWsConn) conn = g_steal_pointer (&self->conn);

  if (conn != NULL)
    {
      self->reads_before += atk_ws_conn_get_reads (conn);
      atk_ws_conn_close (conn, code);
    }
}

/* Abandons whatever is in progress: the handshake, the connection, the timers. */
static void
abandon (AtkWsClient *self, gushort close_code)
{
  self->generation++;
  if (self->cancellable != NULL)
    g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  g_clear_handle_id (&self->retry_id, g_source_remove);
  g_clear_handle_id (&self->watchdog_id, g_source_remove);
  drop_connection (self, close_code);
}

static gboolean
on_retry (gpointer user_data)
{
  AtkWsClient *self = user_data;

  self->retry_id = 0;
  begin_attempt (self);
  return G_SOURCE_REMOVE;
}

static void
schedule_retry (AtkWsClient *self)
{
  guint shift = MIN (self->failures, 16u);
  guint64 bound = (guint64)BACKOFF_BASE_MS << shift;

  self->backoff_bound_ms = (guint)MIN (bound, (guint64)BACKOFF_CAP_MS);
  self->backoff_delay_ms = (guint)g_random_int_range (0, (gint32)self->backoff_bound_ms + 1);
  self->failures++;
  self->retry_id = g_timeout_add (self->backoff_delay_ms, on_retry, self);
  set_state (self, ATK_SOURCE_BACKOFF);
}

static gboolean
connection_was_healthy (AtkWsClient *self)
{
  return self->conn != NULL
         && (self->progress_on_conn || g_get_monotonic_time () - self->connected_us >= HEALTHY_US
             || (self->healthy_messages > 0 && self->messages_on_conn >= self->healthy_messages));
}

/* The end of an attempt or of a connection: tell the owner, then wait and retry. */
static void
fail (AtkWsClient *self, const char *message)
{
  guint generation;

  if (connection_was_healthy (self))
    self->failures = 0;
  abandon (self, ATK_WS_CLOSE_GOING_AWAY);
  generation = self->generation;
  g_signal_emit (self, signals[SIGNAL_CONNECTION_ERROR], 0, message);
  if (generation != self->generation || self->state == ATK_SOURCE_STOPPED)
    return; /* a handler stopped or restarted us */
  schedule_retry (self);
}

/* Handshakes that hang and connections that fall silent look the same from here: nothing
 * arrives. Checked on a coarse timer rather than re-armed on every message. */
static gboolean
on_watchdog (gpointer user_data)
{
  AtkWsClient *self = user_data;
  gint64 quiet_us = g_get_monotonic_time () - self->activity_us;
  g_autofree char *message = NULL;

  if (self->state == ATK_SOURCE_CONNECTING)
    {
      guint limit_s
          = self->idle_timeout_s > 0 ? MAX (self->idle_timeout_s, 10u) : CONNECT_TIMEOUT_S;
      if (quiet_us < (gint64)limit_s * G_USEC_PER_SEC)
        return G_SOURCE_CONTINUE;
      message = g_strdup_printf ("handshake timed out after %u s", limit_s);
    }
  else if (self->state == ATK_SOURCE_CONNECTED && self->idle_timeout_s > 0)
    {
      if (quiet_us < (gint64)self->idle_timeout_s * G_USEC_PER_SEC)
        return G_SOURCE_CONTINUE;
      message = g_strdup_printf ("no %s for %u s, reconnecting", self->noun, self->idle_timeout_s);
    }
  else
    return G_SOURCE_CONTINUE;

  self->watchdog_id = 0; /* fail() would remove the source we are running from */
  fail (self, message);
  return G_SOURCE_REMOVE;
}

static void
start_watchdog (AtkWsClient *self)
{
  guint limit_ms = (self->idle_timeout_s > 0 ? self->idle_timeout_s : CONNECT_TIMEOUT_S) * 1000;

  if (self->watchdog_id == 0)
    self->watchdog_id = g_timeout_add (CLAMP (limit_ms / 8, 50u, 1000u), on_watchdog, self);
}

static void
on_conn_message (gpointer user_data, GBytes *message, gboolean binary)
{
  AtkWsClient *self = user_data;

  if (binary != self->binary)
    {
      g_debug ("%s: ignoring a %s message of %" G_GSIZE_FORMAT " bytes", self->url,
               binary ? "binary" : "text", g_bytes_get_size (message));
      return;
    }
  self->activity_us = g_get_monotonic_time ();
  self->messages_on_conn++;
  if (self->message_func != NULL)
    self->message_func (self->message_data, message);
}

static void
on_conn_end (gpointer user_data, const AtkWsConnEnd *end)
{
  AtkWsClient *self = user_data;
  g_autofree char *message = NULL;

  if (end->too_big)
    message = g_strdup_printf ("a message exceeded %s (%u); the connection was "
                               "closed with %d (message too big)",
                               self->limit_name, self->max_payload_bytes, ATK_WS_CLOSE_TOO_BIG);
  else if (end->error != NULL)
    message = g_strdup_printf ("connection failed: %s", end->error);
  else
    message = g_strdup_printf (
        "connection closed by %s (code %u%s%s) after %" G_GUINT64_FORMAT " %s", self->peer,
        end->code, *end->reason ? ": " : "", end->reason, self->messages_on_conn, self->noun);
  fail (self, message);
}

typedef struct
{
  AtkWsClient *self;
  guint generation;
} Attempt;

static void
attempt_free (Attempt *attempt)
{
  g_object_unref (attempt->self);
  g_free (attempt);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Attempt, attempt_free)

static void
adopt_connection (AtkWsClient *self, AtkWsConn *conn)
{
  self->conn = conn;
  self->connected_us = self->activity_us = g_get_monotonic_time ();
  self->messages_on_conn = 0;
  self->progress_on_conn = FALSE;
  g_clear_object (&self->cancellable);
  atk_ws_conn_set_read_batch (conn, self->read_batch_ms);
  atk_ws_conn_start (conn, on_conn_message, on_conn_end, self);
  set_state (self, ATK_SOURCE_CONNECTED);
}

/* The handshake is ours (AtkWsHandshake), and so is the framing (AtkWsConn). */
static void
on_connected (GObject *object, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (Attempt) attempt = user_data;
  AtkWsClient *self = attempt->self;
  g_autoptr (GError) error = NULL;
  g_autoptr (GIOStream) stream = NULL;
  g_autoptr (GBytes) leftover = NULL;
  g_autofree char *message = NULL;
  guint status = 0;

  stream = atk_ws_handshake_finish (result, &leftover, &status, &error);
  if (attempt->generation != self->generation)
    {
      if (stream != NULL)
        g_io_stream_close (stream, NULL, NULL);
      return; /* abandoned: stopped, restarted or timed out meanwhile */
    }
  if (stream == NULL)
    {
      message = g_strdup_printf ("connect failed: %s", error->message);
      fail (self, message);
      return;
    }
  adopt_connection (
      self, atk_ws_conn_new (stream, leftover, self->max_payload_bytes, KEEPALIVE_INTERVAL_S));
}

static void
begin_attempt (AtkWsClient *self)
{
  Attempt *attempt;

  abandon (self, ATK_WS_CLOSE_NORMAL);
  if (self->attempted)
    self->reconnects++;
  self->attempted = TRUE;
  self->activity_us = g_get_monotonic_time ();

  self->cancellable = g_cancellable_new ();
  attempt = g_new0 (Attempt, 1);
  attempt->self = g_object_ref (self);
  attempt->generation = self->generation;
  if (self->url_func != NULL)
    {
      g_free (self->url);
      self->url = self->url_func (self->url_data);
    }
  g_debug ("connecting to %s", self->url);
  atk_ws_handshake_async (self->socket_client, self->url, USER_AGENT, self->cancellable,
                          on_connected, attempt);
  start_watchdog (self);
  set_state (self, ATK_SOURCE_CONNECTING);
}

void
atk_ws_client_start (AtkWsClient *self)
{
  g_return_if_fail (ATK_IS_WS_CLIENT (self));

  if (self->state != ATK_SOURCE_STOPPED)
    return;
  self->failures = 0;
  begin_attempt (self);
}

void
atk_ws_client_stop (AtkWsClient *self)
{
  g_return_if_fail (ATK_IS_WS_CLIENT (self));

  abandon (self, ATK_WS_CLOSE_NORMAL);
  set_state (self, ATK_SOURCE_STOPPED);
}

/* At once after a connection that made progress; otherwise this is one more failure and
 * waits like one: a peer answering every connection with an error frame would otherwise get
 * thousands of connections a second. */
void
atk_ws_client_reconnect (AtkWsClient *self)
{
  g_return_if_fail (ATK_IS_WS_CLIENT (self));

  if (self->state == ATK_SOURCE_STOPPED)
    return;
  if (connection_was_healthy (self))
    {
      self->failures = 0;
      begin_attempt (self);
      return;
    }
  abandon (self, ATK_WS_CLOSE_NORMAL);
  schedule_retry (self);
}

void
atk_ws_client_note_progress (AtkWsClient *self)
{
  g_return_if_fail (ATK_IS_WS_CLIENT (self));

  if (self->conn != NULL)
    self->progress_on_conn = TRUE;
}

gboolean
atk_ws_client_is_open (AtkWsClient *self)
{
  g_return_val_if_fail (ATK_IS_WS_CLIENT (self), FALSE);

  return self->conn != NULL && atk_ws_conn_is_open (self->conn);
}

gboolean
atk_ws_client_send_text (AtkWsClient *self, const char *text)
{
  g_return_val_if_fail (ATK_IS_WS_CLIENT (self), FALSE);
  g_return_val_if_fail (text != NULL, FALSE);

  return self->conn != NULL && atk_ws_conn_send_text (self->conn, text);
}

void
atk_ws_client_set_message_func (AtkWsClient *self, AtkWsClientMessageFunc func, gpointer user_data)
{
  g_return_if_fail (ATK_IS_WS_CLIENT (self));

  self->message_func = func;
  self->message_data = user_data;
}

void
atk_ws_client_set_url_func (AtkWsClient *self, AtkWsClientUrlFunc func, gpointer user_data)
{
  g_return_if_fail (ATK_IS_WS_CLIENT (self));

  self->url_func = func;
  self->url_data = user_data;
}

const char *
atk_ws_client_get_url (AtkWsClient *self)
{
  g_return_val_if_fail (ATK_IS_WS_CLIENT (self), NULL);
  return self->url;
}

void
atk_ws_client_set_healthy_messages (AtkWsClient *self, guint n_messages)
{
  g_return_if_fail (ATK_IS_WS_CLIENT (self));
  self->healthy_messages = n_messages;
}

void
atk_ws_client_set_labels (AtkWsClient *self, const char *peer, const char *noun,
                          const char *limit_name)
{
  g_return_if_fail (ATK_IS_WS_CLIENT (self));
  g_return_if_fail (peer != NULL && noun != NULL && limit_name != NULL);

  g_free (self->peer);
  self->peer = g_strdup (peer);
  g_free (self->noun);
  self->noun = g_strdup (noun);
  g_free (self->limit_name);
  self->limit_name = g_strdup (limit_name);
}

void
atk_ws_client_set_read_batch (AtkWsClient *self, guint batch_ms)
{
  g_return_if_fail (ATK_IS_WS_CLIENT (self));

  self->read_batch_ms = batch_ms;
  if (self->conn != NULL)
    atk_ws_conn_set_read_batch (self->conn, batch_ms);
}

gint64
atk_ws_client_get_received_us (AtkWsClient *self)
{
  g_return_val_if_fail (ATK_IS_WS_CLIENT (self), 0);

  return self->conn != NULL ? atk_ws_conn_get_received_us (self->conn) : 0;
}

guint64
atk_ws_client_get_reads (AtkWsClient *self)
{
  g_return_val_if_fail (ATK_IS_WS_CLIENT (self), 0);

  return self->reads_before + (self->conn != NULL ? atk_ws_conn_get_reads (self->conn) : 0);
}

AtkSourceState
atk_ws_client_get_state (AtkWsClient *self)
{
  g_return_val_if_fail (ATK_IS_WS_CLIENT (self), ATK_SOURCE_STOPPED);
  return self->state;
}

guint64
atk_ws_client_get_reconnects (AtkWsClient *self)
{
  g_return_val_if_fail (ATK_IS_WS_CLIENT (self), 0);
  return self->reconnects;
}

void
atk_ws_client_get_backoff (AtkWsClient *self, guint *delay_ms, guint *bound_ms)
{
  g_return_if_fail (ATK_IS_WS_CLIENT (self));

  if (delay_ms != NULL)
    *delay_ms = self->backoff_delay_ms;
  if (bound_ms != NULL)
    *bound_ms = self->backoff_bound_ms;
}

AtkWsClient *
atk_ws_client_new (const char *url, gboolean binary, guint max_payload_bytes, guint idle_timeout_s)
{
  AtkWsClient *self;

  g_return_val_if_fail (url != NULL, NULL);

  self = g_object_new (ATK_TYPE_WS_CLIENT, NULL);
  self->url = g_strdup (url);
  self->binary = binary;
  self->max_payload_bytes = max_payload_bytes;
  self->idle_timeout_s = idle_timeout_s;
  return self;
}

static void
atk_ws_client_dispose (GObject *object)
{
  AtkWsClient *self = ATK_WS_CLIENT (object);

  abandon (self, ATK_WS_CLOSE_GOING_AWAY);
  self->state = ATK_SOURCE_STOPPED;
  g_clear_object (&self->socket_client);

  G_OBJECT_CLASS (atk_ws_client_parent_class)->dispose (object);
}

static void
atk_ws_client_finalize (GObject *object)
{
  AtkWsClient *self = ATK_WS_CLIENT (object);

  g_free (self->url);
  g_free (self->peer);
  g_free (self->noun);
  g_free (self->limit_name);

  G_OBJECT_CLASS (atk_ws_client_parent_class)->finalize (object);
}

static void
atk_ws_client_class_init (AtkWsClientClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = atk_ws_client_dispose;
  object_class->finalize = atk_ws_client_finalize;

  signals[SIGNAL_STATE_CHANGED]
      = g_signal_new ("state-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                      NULL, G_TYPE_NONE, 1, ATK_TYPE_SOURCE_STATE);
  signals[SIGNAL_CONNECTION_ERROR]
      = g_signal_new ("connection-error", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                      NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
}

static void
atk_ws_client_init (AtkWsClient *self)
{
  self->state = ATK_SOURCE_STOPPED;
  self->peer = g_strdup ("the server");
  self->noun = g_strdup ("message");
  self->limit_name = g_strdup ("the message size limit");
  self->socket_client = g_socket_client_new ();
  atk_ws_handshake_client_init (self->socket_client);
}
