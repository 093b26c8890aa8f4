/* at-kafka: the Tap connection. The WebSocket machinery (reconnects, backoff, the
 * handshake timeout, the generation guard) is AtkWsClient's; this adds what is Tap's own:
 * the /channel path, text messages only, and the acks. Unlike the relay there is no
 * cursor: Tap keeps every event until it is acked and sends unacked ones again (after its
 * retry timeout, or when it restarts), so a reconnect needs no state from us beyond the
 * acks not yet sent. There is no idle timeout either: a quiet Tap is normal (nothing to
 * sync), and the WebSocket keepalive pings keep idle connections open through proxies.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka"

#include "atk-tap-source.h"

#define CHANNEL_PATH "/channel"
/* Acks waiting for a connection. Tap's own outbox holds about 100k events by default;
 * past this many we give up acks and let Tap redeliver. */
#define MAX_QUEUED_ACKS 100000

struct _AtkTapSource
{
  GObject parent_instance;

  char *tap_url;
  char *channel_url;
  gboolean disable_acks;

  AtkWsClient *client;

  GArray *queued_acks; /* guint64, oldest first */
  guint64 acks_sent;
  guint64 acks_dropped;
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

static void
log_event (AtkTapSource *self, GLogLevelFlags level, const char *message)
{
  g_log_structured (G_LOG_DOMAIN, level, "TAP", self->tap_url, "SOURCE_STATE",
                    atk_source_state_name (atk_tap_source_get_state (self)), "MESSAGE", "%s: %s",
                    self->channel_url, message);
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

static gboolean
send_ack_now (AtkTapSource *self, guint64 id)
{
  char text[64];

  g_snprintf (text, sizeof text, "{\"type\":\"ack\",\"id\":%" G_GUINT64_FORMAT "}", id);
  if (!atk_ws_client_send_text (self->client, text))
    return FALSE;
  self->acks_sent++;
  return TRUE;
}

static void
flush_acks (AtkTapSource *self)
{
  for (guint i = 0; i < self->queued_acks->len; i++)
    if (!send_ack_now (self, g_array_index (self->queued_acks, guint64, i)))
      break;
  g_array_set_size (self->queued_acks, 0);
}

static void
on_client_message (AtkWsClient *client, GBytes *message, gboolean binary, gpointer user_data)
{
  g_signal_emit (user_data, signals[SIGNAL_EVENT], 0, message);
}

static void
on_client_state_changed (AtkWsClient *client, AtkSourceState state, gpointer user_data)
{
  AtkTapSource *self = user_data;

  if (state == ATK_SOURCE_CONNECTED)
    {
      log_event (self, G_LOG_LEVEL_MESSAGE, "connected");
      /* Acks of events stored while we were away: Tap then needs not resend them. */
      flush_acks (self);
    }
  g_signal_emit (self, signals[SIGNAL_STATE_CHANGED], 0, state);
}

static void
on_client_connection_error (AtkWsClient *client, const char *message, gpointer user_data)
{
  AtkTapSource *self = user_data;

  log_event (self, G_LOG_LEVEL_MESSAGE, message);
  g_signal_emit (self, signals[SIGNAL_CONNECTION_ERROR], 0, message);
}

void
atk_tap_source_start (AtkTapSource *self)
{
  g_return_if_fail (ATK_IS_TAP_SOURCE (self));

  atk_ws_client_start (self->client);
}

void
atk_tap_source_stop (AtkTapSource *self)
{
  g_return_if_fail (ATK_IS_TAP_SOURCE (self));

  atk_ws_client_stop (self->client);
}

void
atk_tap_source_reconnect (AtkTapSource *self)
{
  g_return_if_fail (ATK_IS_TAP_SOURCE (self));

  if (atk_ws_client_get_state (self->client) == ATK_SOURCE_STOPPED)
    return;
  log_event (self, G_LOG_LEVEL_MESSAGE, "reconnecting on request");
  atk_ws_client_reconnect (self->client);
}

void
atk_tap_source_ack (AtkTapSource *self, guint64 id)
{
  g_return_if_fail (ATK_IS_TAP_SOURCE (self));

  if (self->disable_acks)
    return;
  if (self->client != NULL && send_ack_now (self, id))
    return;
  if (self->queued_acks->len < MAX_QUEUED_ACKS)
    g_array_append_val (self->queued_acks, id);
  else
    self->acks_dropped++;
}

AtkSourceState
atk_tap_source_get_state (AtkTapSource *self)
{
  g_return_val_if_fail (ATK_IS_TAP_SOURCE (self), ATK_SOURCE_STOPPED);

  return self->client != NULL ? atk_ws_client_get_state (self->client) : ATK_SOURCE_STOPPED;
}

guint64
atk_tap_source_get_reconnects (AtkTapSource *self)
{
  g_return_val_if_fail (ATK_IS_TAP_SOURCE (self), 0);

  return self->client != NULL ? atk_ws_client_get_reconnects (self->client) : 0;
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
  self->disable_acks = disable_acks;
  self->client = atk_ws_client_new (self->channel_url, FALSE, max_message_bytes, 0);
  atk_ws_client_set_labels (self->client, "Tap", "event", "max_message_bytes");
  g_signal_connect (self->client, "message", G_CALLBACK (on_client_message), self);
  g_signal_connect (self->client, "state-changed", G_CALLBACK (on_client_state_changed), self);
  g_signal_connect (self->client, "connection-error", G_CALLBACK (on_client_connection_error),
                    self);
  return self;
}

static void
atk_tap_source_dispose (GObject *object)
{
  AtkTapSource *self = ATK_TAP_SOURCE (object);

  /* Quietly: no signal of ours after the owner let go. */
  if (self->client != NULL)
    {
      g_signal_handlers_disconnect_by_data (self->client, self);
      atk_ws_client_stop (self->client);
      g_clear_object (&self->client);
    }
  if (self->queued_acks != NULL)
    {
      self->acks_dropped += self->queued_acks->len;
      g_array_set_size (self->queued_acks, 0);
    }

  G_OBJECT_CLASS (atk_tap_source_parent_class)->dispose (object);
}

static void
atk_tap_source_finalize (GObject *object)
{
  AtkTapSource *self = ATK_TAP_SOURCE (object);

  g_free (self->tap_url);
  g_free (self->channel_url);
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
  self->queued_acks = g_array_new (FALSE, FALSE, sizeof (guint64));
}
