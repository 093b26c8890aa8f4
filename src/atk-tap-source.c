/* at-kafka: the Tap connection. One WebSocket at a time; every way it can end leads to
 * the same place: drop it, wait a jittered, growing delay, connect again. Unlike the
 * relay there is no cursor: Tap keeps every event until it is acked and sends unacked
 * ones again (after its retry timeout, or when it restarts), so a reconnect needs no
 * state from us beyond the acks not yet sent.
 *
 * Re-entrancy: as in AtkFirehoseSource, every attempt and connection belongs to a
 * "generation"; callbacks that find theirs stale do nothing.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka"

#include "atk-tap-source.h"

#include <string.h>

#include <libsoup/soup.h>

#define CHANNEL_PATH "/channel"
#define USER_AGENT "at-kafka/" ATK_VERSION

#define BACKOFF_BASE_MS 250
#define BACKOFF_CAP_MS 30000
#define KEEPALIVE_INTERVAL_S 30
#define CONNECT_TIMEOUT_S 30
#define HEALTHY_US (10 * G_USEC_PER_SEC)
/* Acks waiting for a connection. Tap's own outbox holds about 100k events by default;
 * past this many we give up acks and let Tap redeliver. */
#define MAX_QUEUED_ACKS 100000

struct _AtkTapSource
{
  GObject parent_instance;

  char *tap_url;
  char *channel_url;
  guint max_message_bytes;
  gboolean disable_acks;

  SoupSession *session;
  AtkSourceState state;
  guint generation;

  GCancellable *cancellable;
  SoupWebsocketConnection *conn;
  char *conn_error;
  gint64 attempt_us;
  gint64 connected_us;
  guint64 events_on_conn;

  GArray *queued_acks; /* guint64, oldest first */
  guint64 acks_sent;
  guint64 acks_dropped;

  guint retry_id;
  guint timeout_id;
  guint failures;
  gboolean attempted;
  guint64 reconnects;
};

G_DEFINE_FINAL_TYPE (AtkTapSource, atk_tap_source, G_TYPE_OBJECT)

enum
{
  SIGNAL_EVENT,
  SIGNAL_STATE_CHANGED,
  SIGNAL_CONNECTION_ERROR,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void begin_attempt (AtkTapSource *self);

static void
log_event (AtkTapSource *self, GLogLevelFlags level, const char *message)
{
  g_log_structured (G_LOG_DOMAIN, level, "TAP", self->tap_url, "SOURCE_STATE",
                    atk_source_state_name (self->state), "MESSAGE", "%s: %s", self->channel_url,
                    message);
}

static void
set_state (AtkTapSource *self, AtkSourceState state)
{
  if (self->state == state)
    return;
  self->state = state;
  g_signal_emit (self, signals[SIGNAL_STATE_CHANGED], 0, state);
}

static char *
build_channel_url (const char *tap_url)
{
  GString *url = g_string_new (tap_url);

  while (url->len > 0 && url->str[url->len - 1] == '/')
    g_string_truncate (url, url->len - 1);
  if (!g_str_has_suffix (url->str, CHANNEL_PATH))
    g_string_append (url, CHANNEL_PATH);
  return g_string_free (url, FALSE);
}

/* The last reference goes from an idle callback: this can run inside the connection's
 * own signal emission, where libsoup still uses the object after our handler returns. */
static void
drop_connection (AtkTapSource *self, gushort code)
{
  SoupWebsocketConnection *conn = g_steal_pointer (&self->conn);

  g_clear_pointer (&self->conn_error, g_free);
  if (conn == NULL)
    return;
  g_signal_handlers_disconnect_by_data (conn, self);
  if (soup_websocket_connection_get_state (conn) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_close (conn, code, NULL);
  g_idle_add_once (g_object_unref, conn);
}

static void
abandon (AtkTapSource *self, gushort close_code)
{
  self->generation++;
  if (self->cancellable != NULL)
    g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  g_clear_handle_id (&self->retry_id, g_source_remove);
  g_clear_handle_id (&self->timeout_id, g_source_remove);
  drop_connection (self, close_code);
}

static gboolean
on_retry (gpointer user_data)
{
  AtkTapSource *self = user_data;

  self->retry_id = 0;
  begin_attempt (self);
  return G_SOURCE_REMOVE;
}

static void
schedule_retry (AtkTapSource *self)
{
  guint64 bound = (guint64)BACKOFF_BASE_MS << MIN (self->failures, 16u);
  guint bound_ms = (guint)MIN (bound, (guint64)BACKOFF_CAP_MS);

  self->failures++;
  self->retry_id
      = g_timeout_add ((guint)g_random_int_range (0, (gint32)bound_ms + 1), on_retry, self);
  set_state (self, ATK_SOURCE_BACKOFF);
}

static void
fail (AtkTapSource *self, const char *message)
{
  guint generation;

  if (self->conn != NULL && g_get_monotonic_time () - self->connected_us >= HEALTHY_US)
    self->failures = 0;
  abandon (self, SOUP_WEBSOCKET_CLOSE_GOING_AWAY);
  generation = self->generation;
  log_event (self, G_LOG_LEVEL_MESSAGE, message);
  g_signal_emit (self, signals[SIGNAL_CONNECTION_ERROR], 0, message);
  if (generation != self->generation || self->state == ATK_SOURCE_STOPPED)
    return; /* a handler stopped or restarted us */
  schedule_retry (self);
}

/* Only the handshake has a deadline: a quiet Tap is normal (nothing to sync), and the
 * WebSocket keepalive pings keep idle connections open through proxies. */
static gboolean
on_handshake_timeout (gpointer user_data)
{
  AtkTapSource *self = user_data;

  self->timeout_id = 0;
  fail (self, "handshake timed out");
  return G_SOURCE_REMOVE;
}

static void
send_ack_now (AtkTapSource *self, guint64 id)
{
  char text[64];

  g_snprintf (text, sizeof text, "{\"type\":\"ack\",\"id\":%" G_GUINT64_FORMAT "}", id);
  soup_websocket_connection_send_text (self->conn, text);
  self->acks_sent++;
}

static gboolean
connection_open (AtkTapSource *self)
{
  return self->conn != NULL
         && soup_websocket_connection_get_state (self->conn) == SOUP_WEBSOCKET_STATE_OPEN;
}

static void
flush_acks (AtkTapSource *self)
{
  for (guint i = 0; i < self->queued_acks->len && connection_open (self); i++)
    send_ack_now (self, g_array_index (self->queued_acks, guint64, i));
  g_array_set_size (self->queued_acks, 0);
}

static void
on_conn_message (SoupWebsocketConnection *conn, SoupWebsocketDataType type, GBytes *message,
                 gpointer user_data)
{
  AtkTapSource *self = user_data;

  if (type != SOUP_WEBSOCKET_DATA_TEXT)
    {
      g_debug ("%s: ignoring a binary message of %" G_GSIZE_FORMAT " bytes", self->channel_url,
               g_bytes_get_size (message));
      return;
    }
  self->events_on_conn++;
  g_signal_emit (self, signals[SIGNAL_EVENT], 0, message);
}

static void
on_conn_error (SoupWebsocketConnection *conn, GError *error, gpointer user_data)
{
  AtkTapSource *self = user_data;

  /* Fatal errors are followed by "closed", where the connection is replaced. */
  g_free (self->conn_error);
  self->conn_error = g_strdup (error->message);
}

static void
on_conn_closed (SoupWebsocketConnection *conn, gpointer user_data)
{
  AtkTapSource *self = user_data;
  g_autofree char *message = NULL;

  if (self->conn_error != NULL)
    message = g_strdup_printf ("connection failed: %s", self->conn_error);
  else
    message
        = g_strdup_printf ("connection closed by Tap (code %u) after %" G_GUINT64_FORMAT " events",
                           soup_websocket_connection_get_close_code (conn), self->events_on_conn);
  fail (self, message);
}

typedef struct
{
  AtkTapSource *self;
  SoupMessage *msg;
  guint generation;
} Attempt;

static void
attempt_free (Attempt *attempt)
{
  g_object_unref (attempt->self);
  g_object_unref (attempt->msg);
  g_free (attempt);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Attempt, attempt_free)

static void
adopt_connection (AtkTapSource *self, SoupWebsocketConnection *conn)
{
  soup_websocket_connection_set_max_incoming_payload_size (conn, self->max_message_bytes);
  soup_websocket_connection_set_keepalive_interval (conn, KEEPALIVE_INTERVAL_S);
  g_signal_connect (conn, "message", G_CALLBACK (on_conn_message), self);
  g_signal_connect (conn, "error", G_CALLBACK (on_conn_error), self);
  g_signal_connect (conn, "closed", G_CALLBACK (on_conn_closed), self);
  self->conn = conn;
  self->connected_us = g_get_monotonic_time ();
  self->events_on_conn = 0;
  g_clear_object (&self->cancellable);
  g_clear_handle_id (&self->timeout_id, g_source_remove);
  log_event (self, G_LOG_LEVEL_MESSAGE, "connected");
  /* Acks of events stored while we were away: Tap then needs not resend them. */
  flush_acks (self);
  set_state (self, ATK_SOURCE_CONNECTED);
}

static void
on_connected (GObject *object, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (Attempt) attempt = user_data;
  AtkTapSource *self = attempt->self;
  g_autoptr (GError) error = NULL;
  g_autoptr (SoupWebsocketConnection) conn = NULL;
  g_autofree char *message = NULL;
  guint status;

  conn = soup_session_websocket_connect_finish (SOUP_SESSION (object), result, &error);
  if (attempt->generation != self->generation)
    return;
  if (conn == NULL)
    {
      status = soup_message_get_status (attempt->msg);
      if (status != SOUP_STATUS_NONE && status != SOUP_STATUS_SWITCHING_PROTOCOLS)
        message = g_strdup_printf ("connect failed: HTTP %u: %s", status, error->message);
      else
        message = g_strdup_printf ("connect failed: %s", error->message);
      fail (self, message);
      return;
    }
  adopt_connection (self, g_steal_pointer (&conn));
}

static void
begin_attempt (AtkTapSource *self)
{
  SoupMessage *msg = soup_message_new (SOUP_METHOD_GET, self->channel_url);
  Attempt *attempt;

  abandon (self, SOUP_WEBSOCKET_CLOSE_NORMAL);
  if (self->attempted)
    self->reconnects++;
  self->attempted = TRUE;
  self->attempt_us = g_get_monotonic_time ();
  if (msg == NULL)
    {
      fail (self, "cannot build the channel URL");
      return;
    }

  self->cancellable = g_cancellable_new ();
  attempt = g_new0 (Attempt, 1);
  attempt->self = g_object_ref (self);
  attempt->msg = msg;
  attempt->generation = self->generation;
  soup_session_websocket_connect_async (self->session, msg, NULL, NULL, G_PRIORITY_DEFAULT,
                                        self->cancellable, on_connected, attempt);
  self->timeout_id = g_timeout_add_seconds (CONNECT_TIMEOUT_S, on_handshake_timeout, self);
  set_state (self, ATK_SOURCE_CONNECTING);
}

void
atk_tap_source_start (AtkTapSource *self)
{
  g_return_if_fail (ATK_IS_TAP_SOURCE (self));

  if (self->state != ATK_SOURCE_STOPPED)
    return;
  self->failures = 0;
  begin_attempt (self);
}

void
atk_tap_source_stop (AtkTapSource *self)
{
  g_return_if_fail (ATK_IS_TAP_SOURCE (self));

  abandon (self, SOUP_WEBSOCKET_CLOSE_NORMAL);
  set_state (self, ATK_SOURCE_STOPPED);
}

void
atk_tap_source_reconnect (AtkTapSource *self)
{
  g_return_if_fail (ATK_IS_TAP_SOURCE (self));

  if (self->state == ATK_SOURCE_STOPPED)
    return;
  log_event (self, G_LOG_LEVEL_MESSAGE, "reconnecting on request");
  self->failures = 0;
  begin_attempt (self);
}

void
atk_tap_source_ack (AtkTapSource *self, guint64 id)
{
  g_return_if_fail (ATK_IS_TAP_SOURCE (self));

  if (self->disable_acks)
    return;
  if (connection_open (self))
    send_ack_now (self, id);
  else if (self->queued_acks->len < MAX_QUEUED_ACKS)
    g_array_append_val (self->queued_acks, id);
  else
    self->acks_dropped++;
}

AtkSourceState
atk_tap_source_get_state (AtkTapSource *self)
{
  g_return_val_if_fail (ATK_IS_TAP_SOURCE (self), ATK_SOURCE_STOPPED);
  return self->state;
}

guint64
atk_tap_source_get_reconnects (AtkTapSource *self)
{
  g_return_val_if_fail (ATK_IS_TAP_SOURCE (self), 0);
  return self->reconnects;
}

gboolean
atk_tap_source_get_disable_acks (AtkTapSource *self)
{
  g_return_val_if_fail (ATK_IS_TAP_SOURCE (self), FALSE);
  return self->disable_acks;
}

void
atk_tap_source_get_ack_counts (AtkTapSource *self, guint64 *sent, guint64 *dropped, guint *queued)
{
  g_return_if_fail (ATK_IS_TAP_SOURCE (self));

  if (sent != NULL)
    *sent = self->acks_sent;
  if (dropped != NULL)
    *dropped = self->acks_dropped;
  if (queued != NULL)
    *queued = self->queued_acks->len;
}

AtkTapSource *
atk_tap_source_new (const char *tap_url, guint max_message_bytes, gboolean disable_acks)
{
  AtkTapSource *self;

  g_return_val_if_fail (tap_url != NULL, NULL);

  self = g_object_new (ATK_TYPE_TAP_SOURCE, NULL);
  self->tap_url = g_strdup (tap_url);
  self->channel_url = build_channel_url (tap_url);
  self->max_message_bytes = max_message_bytes;
  self->disable_acks = disable_acks;
  return self;
}

static void
atk_tap_source_dispose (GObject *object)
{
  AtkTapSource *self = ATK_TAP_SOURCE (object);

  abandon (self, SOUP_WEBSOCKET_CLOSE_GOING_AWAY);
  self->state = ATK_SOURCE_STOPPED;
  if (self->queued_acks != NULL)
    {
      self->acks_dropped += self->queued_acks->len;
      g_array_set_size (self->queued_acks, 0);
    }
  g_clear_object (&self->session);

  G_OBJECT_CLASS (atk_tap_source_parent_class)->dispose (object);
}

static void
atk_tap_source_finalize (GObject *object)
{
  AtkTapSource *self = ATK_TAP_SOURCE (object);

  g_free (self->tap_url);
  g_free (self->channel_url);
  g_free (self->conn_error);
  g_array_unref (self->queued_acks);

  G_OBJECT_CLASS (atk_tap_source_parent_class)->finalize (object);
}

static void
atk_tap_source_class_init (AtkTapSourceClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = atk_tap_source_dispose;
  object_class->finalize = atk_tap_source_finalize;

  signals[SIGNAL_EVENT] = g_signal_new ("event", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                        NULL, NULL, g_cclosure_marshal_VOID__BOXED, G_TYPE_NONE, 1,
                                        G_TYPE_BYTES | G_SIGNAL_TYPE_STATIC_SCOPE);
  signals[SIGNAL_STATE_CHANGED]
      = g_signal_new ("state-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                      NULL, G_TYPE_NONE, 1, ATK_TYPE_SOURCE_STATE);
  signals[SIGNAL_CONNECTION_ERROR]
      = g_signal_new ("connection-error", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                      NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
}

static void
atk_tap_source_init (AtkTapSource *self)
{
  self->state = ATK_SOURCE_STOPPED;
  self->queued_acks = g_array_new (FALSE, FALSE, sizeof (guint64));
  self->session = soup_session_new_with_options ("user-agent", USER_AGENT, NULL);
}
