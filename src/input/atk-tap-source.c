/* at-kafka: the Tap connection. The WebSocket machinery (reconnects, backoff, the
 * handshake timeout, the generation guard) is AtkWsClient's; this adds what is Tap's own:
 * the /channel path, text messages only, and the acks. Unlike the relay there is no
 * cursor: Tap keeps every event until it is acked and sends unacked ones again (after its
 * retry timeout, or when it restarts), so a reconnect needs no state from us beyond the
 * acks not yet sent. There is no idle timeout either: a quiet Tap is normal (nothing to
 * sync), and the WebSocket keepalive pings keep idle connections open through proxies.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-input"

#include "atk-tap-source.h"

#include "atk-error.h"
#include "atk-log.h"
#include "atk-tap-event.h"
#include "atk-ws-input.h"

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

static void atk_tap_source_input_init (AtkInputInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (AtkTapSource, atk_tap_source, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (ATK_TYPE_INPUT, atk_tap_source_input_init))

static void
log_event (gpointer source, GLogLevelFlags level, const char *message)
{
  AtkTapSource *self = source;

  g_log_structured (G_LOG_DOMAIN, level, ATK_LOG_INPUT_URL, self->tap_url, ATK_LOG_SOURCE_STATE,
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
on_client_state_changed (AtkWsClient *client, AtkSourceState state, gpointer user_data)
{
  AtkTapSource *self = user_data;

  if (state == ATK_SOURCE_CONNECTED)
    {
      log_event (self, G_LOG_LEVEL_MESSAGE, "connected");
      /* Acks of events stored while we were away: Tap then needs not resend them. */
      flush_acks (self);
    }
  atk_input_emit_state_changed (ATK_INPUT (self), state);
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

  atk_ws_input_reconnect (self->client, ATK_INPUT (self), log_event);
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

void
atk_tap_source_set_read_batch (AtkTapSource *self, guint batch_ms)
{
  g_return_if_fail (ATK_IS_TAP_SOURCE (self));

  if (self->client != NULL)
    atk_ws_client_set_read_batch (self->client, batch_ms);
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
  atk_ws_input_forward (self->client, ATK_INPUT (self), log_event);
  g_signal_connect (self->client, "state-changed", G_CALLBACK (on_client_state_changed), self);
  return self;
}

static void
atk_tap_source_dispose (GObject *object)
{
  AtkTapSource *self = ATK_TAP_SOURCE (object);

  atk_ws_input_release (&self->client, ATK_INPUT (self));
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
}

static void
atk_tap_source_init (AtkTapSource *self)
{
  self->queued_acks = g_array_new (FALSE, FALSE, sizeof (guint64));
}

/* ---- AtkInput ---------------------------------------------------------------------- */

static gboolean
tap_collection_wanted (const char *collection, gpointer user_data)
{
  return atk_event_transformer_collection_wanted (user_data, collection);
}

static gboolean
tap_decode (AtkInput *input, GBytes *payload, AtkEventTransformer *transformer, GPtrArray *messages,
            AtkInputEvent *event, GError **error)
{
  AtkTapSource *self = ATK_TAP_SOURCE (input);
  gsize len;
  const char *data = g_bytes_get_data (payload, &len);
  AtkTapEventOptions options = {
    .osprey = atk_event_transformer_get_osprey_compatible (transformer),
    .filter = tap_collection_wanted,
    .filter_data = transformer,
  };
  AtkTapEventResult result = { 0 };
  guint64 id;
  g_autoptr (GError) local_error = NULL;

  if (!atk_tap_event_transform (data, len, &options, g_get_real_time (), messages, &result,
                                &local_error))
    {
      /* An event we cannot use would come back forever: ack it when its id is readable. */
      event->unknown = g_error_matches (local_error, ATK_ERROR, ATK_ERROR_UNSUPPORTED);
      event->has_position = atk_tap_event_peek_id (data, len, &id);
      event->position = (gint64)id;
      if (event->has_position)
        atk_tap_source_ack (self, id);
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  event->has_position = TRUE;
  event->position = (gint64)result.id;
  event->n_filtered = result.filtered;
  return TRUE;
}

static const char *
tap_get_name (AtkInput *input)
{
  return "Tap";
}

static gint64
tap_get_received_us (AtkInput *input)
{
  AtkWsClient *client = ATK_TAP_SOURCE (input)->client;

  return client != NULL ? atk_ws_client_get_received_us (client) : 0;
}

static const char *
tap_get_url (AtkInput *input)
{
  return ATK_TAP_SOURCE (input)->tap_url;
}

static AtkInputFlags
tap_get_flags (AtkInput *input)
{
  return ATK_INPUT_KEEPS_PLACE;
}

static void
tap_ack (AtkInput *input, guint64 id)
{
  atk_tap_source_ack (ATK_TAP_SOURCE (input), id);
}

/* Acks handed to the connection ("ok") and given up ("dropped": Tap redelivers those
 * events); acks waiting for a connection. */
static void
tap_render_prometheus (AtkInput *input, GString *out)
{
  guint64 sent = 0, dropped = 0;
  guint queued = 0;

  atk_tap_source_get_ack_counts (ATK_TAP_SOURCE (input), &sent, &dropped, &queued);
  g_string_append_printf (out,
                          "# HELP atkafka_acks_sent Tap acks by status.\n"
                          "# TYPE atkafka_acks_sent counter\n"
                          "atkafka_acks_sent{status=\"ok\"} %" G_GUINT64_FORMAT "\n"
                          "atkafka_acks_sent{status=\"dropped\"} %" G_GUINT64_FORMAT "\n"
                          "# HELP atkafka_acks_queued Tap acks waiting for a connection.\n"
                          "# TYPE atkafka_acks_queued gauge\n"
                          "atkafka_acks_queued %u\n",
                          sent, dropped, queued);
}

static void
atk_tap_source_input_init (AtkInputInterface *iface)
{
  iface->get_name = tap_get_name;
  iface->get_url = tap_get_url;
  iface->get_received_us = tap_get_received_us;
  iface->get_flags = tap_get_flags;
  iface->start = (void (*) (AtkInput *))atk_tap_source_start;
  iface->stop = (void (*) (AtkInput *))atk_tap_source_stop;
  iface->reconnect = (void (*) (AtkInput *))atk_tap_source_reconnect;
  iface->get_state = (AtkSourceState (*) (AtkInput *))atk_tap_source_get_state;
  iface->get_reconnects = (guint64 (*) (AtkInput *))atk_tap_source_get_reconnects;
  iface->decode = tap_decode;
  iface->ack = tap_ack;
  iface->render_prometheus = tap_render_prometheus;
}
