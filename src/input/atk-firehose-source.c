/* at-kafka: the relay connection. The WebSocket machinery (reconnects, backoff, timeouts,
 * the generation guard) is AtkWsClient's; this adds what is the relay's own: the
 * subscribeRepos path, the cursor query on every (re)connect, binary frames only, the
 * idle timeout, and the relay's fields in the logs.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-input"

#include "atk-firehose-source.h"

#include "atk-log-text.h"

#include "atk-error.h"
#include "atk-log.h"
#include "atk-ws-input.h"

#define SUBSCRIBE_PATH "/xrpc/com.atproto.sync.subscribeRepos"
/* A connection that delivered this many frames was healthy, however short it was. */
#define HEALTHY_FRAMES 100

struct _AtkFirehoseSource
{
  GObject parent_instance;

  char *relay_url;
  gboolean has_cursor;
  gint64 cursor;

  AtkWsClient *client;
};

static void atk_firehose_source_input_init (AtkInputInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (AtkFirehoseSource, atk_firehose_source, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (ATK_TYPE_INPUT,
                                                      atk_firehose_source_input_init))

enum
{
  PROP_0,
  PROP_STATE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void
log_event (gpointer source, GLogLevelFlags level, const char *message)
{
  AtkFirehoseSource *self = source;
  g_autofree char *cursor
      = self->has_cursor ? g_strdup_printf ("%" G_GINT64_FORMAT, self->cursor) : g_strdup ("live");

  g_log_structured (G_LOG_DOMAIN, level, ATK_LOG_INPUT_URL, self->relay_url, ATK_LOG_CURSOR, cursor,
                    ATK_LOG_SOURCE_STATE,
                    atk_source_state_name (atk_firehose_source_get_state (self)), "MESSAGE",
                    "%s: %s", self->relay_url, message);
}

/* The URL of the next attempt: the cursor is read when the connection is made. */
static char *
build_url (gpointer user_data)
{
  AtkFirehoseSource *self = user_data;
  GString *url = g_string_new (self->relay_url);

  while (url->len > 0 && url->str[url->len - 1] == '/')
    g_string_truncate (url, url->len - 1);
  g_string_append (url, SUBSCRIBE_PATH);
  if (self->has_cursor)
    g_string_append_printf (url, "?cursor=%" G_GINT64_FORMAT, self->cursor);
  return g_string_free (url, FALSE);
}

static void
on_client_state_changed (AtkWsClient *client, AtkSourceState state, gpointer user_data)
{
  AtkFirehoseSource *self = user_data;

  if (state == ATK_SOURCE_CONNECTED)
    log_event (self, G_LOG_LEVEL_MESSAGE, "connected");
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATE]);
  atk_input_emit_state_changed (ATK_INPUT (self), state);
}

void
atk_firehose_source_start (AtkFirehoseSource *self)
{
  g_return_if_fail (ATK_IS_FIREHOSE_SOURCE (self));

  atk_ws_client_start (self->client);
}

void
atk_firehose_source_stop (AtkFirehoseSource *self)
{
  g_return_if_fail (ATK_IS_FIREHOSE_SOURCE (self));

  atk_ws_client_stop (self->client);
}

void
atk_firehose_source_reconnect (AtkFirehoseSource *self)
{
  g_return_if_fail (ATK_IS_FIREHOSE_SOURCE (self));

  atk_ws_input_reconnect (self->client, ATK_INPUT (self), log_event);
}

/* Called for every frame: the URL is built only when the client connects (build_url). */
void
atk_firehose_source_set_cursor (AtkFirehoseSource *self, gboolean has_cursor, gint64 seq)
{
  g_return_if_fail (ATK_IS_FIREHOSE_SOURCE (self));

  /* A seq past the last one is progress: a reconnect after it need not wait. */
  if (has_cursor && (!self->has_cursor || seq > self->cursor))
    atk_ws_client_note_progress (self->client);
  self->has_cursor = has_cursor;
  self->cursor = has_cursor ? seq : 0;
}

AtkSourceState
atk_firehose_source_get_state (AtkFirehoseSource *self)
{
  g_return_val_if_fail (ATK_IS_FIREHOSE_SOURCE (self), ATK_SOURCE_STOPPED);

  return self->client != NULL ? atk_ws_client_get_state (self->client) : ATK_SOURCE_STOPPED;
}

void
atk_firehose_source_set_read_batch (AtkFirehoseSource *self, guint batch_ms)
{
  g_return_if_fail (ATK_IS_FIREHOSE_SOURCE (self));

  if (self->client != NULL)
    atk_ws_client_set_read_batch (self->client, batch_ms);
}

guint64
atk_firehose_source_get_reads (AtkFirehoseSource *self)
{
  g_return_val_if_fail (ATK_IS_FIREHOSE_SOURCE (self), 0);

  return self->client != NULL ? atk_ws_client_get_reads (self->client) : 0;
}

guint64
atk_firehose_source_get_reconnects (AtkFirehoseSource *self)
{
  g_return_val_if_fail (ATK_IS_FIREHOSE_SOURCE (self), 0);

  return self->client != NULL ? atk_ws_client_get_reconnects (self->client) : 0;
}

void
atk_firehose_source_get_backoff (AtkFirehoseSource *self, guint *delay_ms, guint *bound_ms)
{
  g_return_if_fail (ATK_IS_FIREHOSE_SOURCE (self));

  atk_ws_client_get_backoff (self->client, delay_ms, bound_ms);
}

AtkFirehoseSource *
atk_firehose_source_new (const char *relay_url, guint max_frame_bytes, guint idle_timeout_s)
{
  AtkFirehoseSource *self;
  g_autofree char *url = NULL;

  g_return_val_if_fail (relay_url != NULL, NULL);

  self = g_object_new (ATK_TYPE_FIREHOSE_SOURCE, NULL);
  self->relay_url = g_strdup (relay_url);
  url = build_url (self);
  self->client = atk_ws_client_new (url, TRUE, max_frame_bytes, idle_timeout_s);
  atk_ws_client_set_url_func (self->client, build_url, self);
  atk_ws_client_set_healthy_messages (self->client, HEALTHY_FRAMES);
  atk_ws_client_set_labels (self->client, "the relay", "frame", "max_frame_bytes");
  atk_ws_input_forward (self->client, ATK_INPUT (self), log_event);
  g_signal_connect (self->client, "state-changed", G_CALLBACK (on_client_state_changed), self);
  return self;
}

static void
atk_firehose_source_dispose (GObject *object)
{
  AtkFirehoseSource *self = ATK_FIREHOSE_SOURCE (object);

  atk_ws_input_release (&self->client, ATK_INPUT (self));

  G_OBJECT_CLASS (atk_firehose_source_parent_class)->dispose (object);
}

static void
atk_firehose_source_finalize (GObject *object)
{
  AtkFirehoseSource *self = ATK_FIREHOSE_SOURCE (object);

  g_free (self->relay_url);

  G_OBJECT_CLASS (atk_firehose_source_parent_class)->finalize (object);
}

static void
atk_firehose_source_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  AtkFirehoseSource *self = ATK_FIREHOSE_SOURCE (object);

  switch (prop_id)
    {
    case PROP_STATE:
      g_value_set_enum (value, atk_firehose_source_get_state (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
atk_firehose_source_class_init (AtkFirehoseSourceClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = atk_firehose_source_dispose;
  object_class->finalize = atk_firehose_source_finalize;
  object_class->get_property = atk_firehose_source_get_property;

  properties[PROP_STATE]
      = g_param_spec_enum ("state", NULL, NULL, ATK_TYPE_SOURCE_STATE, ATK_SOURCE_STOPPED,
                           G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
atk_firehose_source_init (AtkFirehoseSource *self)
{
}

/* ---- AtkInput ---------------------------------------------------------------------- */

/* #info and #error frames: what they mean for the pipeline (ConsumerTooSlow: reconnect
 * here; resuming from the last handed-over seq loses nothing). */
static AtkInputNotice
control_notice (AtkFirehoseSource *self, const AtkFrame *frame)
{
  /* both come from the relay: capped for the log */
  g_autofree char *name = atk_log_text (frame->name.ptr, frame->name.len);
  g_autofree char *message = atk_log_text (frame->message.ptr, frame->message.len);

  if (frame->kind == ATK_EVENT_INFO)
    {
      if (g_strcmp0 (name, "OutdatedCursor") == 0)
        {
          g_warning ("The relay no longer has events after our cursor (OutdatedCursor: %s): "
                     "events between the cursor and the relay's oldest are lost to us",
                     message);
          return ATK_INPUT_NOTICE_OUTDATED_CURSOR;
        }
      g_message ("Relay info %s: %s", name, message);
      return ATK_INPUT_NOTICE_NONE;
    }
  if (g_strcmp0 (name, "FutureCursor") == 0)
    {
      g_warning (
          "The relay says our cursor is in its future (FutureCursor: %s): falling back to the live "
          "tip; check that --relay-host is the relay the cursor came from",
          message);
      return ATK_INPUT_NOTICE_FUTURE_CURSOR;
    }
  if (g_strcmp0 (name, "ConsumerTooSlow") == 0)
    {
      g_warning ("The relay says we are too slow (ConsumerTooSlow: %s): reconnecting", message);
      atk_firehose_source_reconnect (self);
    }
  else
    g_warning ("Relay error frame %s: %s", name, message);
  return ATK_INPUT_NOTICE_ERROR;
}

static gboolean
firehose_decode (AtkInput *input, GBytes *payload, AtkEventTransformer *transformer,
                 GPtrArray *messages, AtkInputEvent *event, GError **error)
{
  AtkFirehoseSource *self = ATK_FIREHOSE_SOURCE (input);
  gsize len;
  const guint8 *data = g_bytes_get_data (payload, &len);
  AtkTransformResult result = { 0 };
  const AtkFrame *frame;

  if (!atk_event_transformer_transform (transformer, data, len, g_get_real_time (), messages,
                                        &result, error))
    {
      atk_transform_result_clear (&result);
      return FALSE;
    }
  frame = result.frame;
  event->has_position = frame->has_seq;
  event->position = frame->seq;
  event->unknown = frame->kind == ATK_EVENT_UNKNOWN;
  if (frame->kind == ATK_EVENT_INFO || frame->kind == ATK_EVENT_ERROR)
    event->notice = control_notice (self, frame);
  event->n_filtered = result.n_filtered;
  event->n_op_errors = result.n_op_errors;
  event->ops_skipped = result.ops_skipped;
  event->n_op_error_kinds = result.n_op_error_kinds;
  memcpy (event->op_error_kinds, result.op_error_kinds, sizeof event->op_error_kinds);
  event->op_error = g_steal_pointer (&result.op_error);
  if (frame->did.len > 0)
    event->did = g_strndup (frame->did.ptr, frame->did.len);
  atk_transform_result_clear (&result);
  return TRUE;
}

static const char *
firehose_get_name (AtkInput *input)
{
  return "Relay";
}

static gint64
firehose_get_received_us (AtkInput *input)
{
  AtkWsClient *client = ATK_FIREHOSE_SOURCE (input)->client;

  return client != NULL ? atk_ws_client_get_received_us (client) : 0;
}

static const char *
firehose_get_url (AtkInput *input)
{
  return ATK_FIREHOSE_SOURCE (input)->relay_url;
}

static void
atk_firehose_source_input_init (AtkInputInterface *iface)
{
  iface->get_name = firehose_get_name;
  iface->get_url = firehose_get_url;
  iface->get_received_us = firehose_get_received_us;
  iface->start = (void (*) (AtkInput *))atk_firehose_source_start;
  iface->stop = (void (*) (AtkInput *))atk_firehose_source_stop;
  iface->reconnect = (void (*) (AtkInput *))atk_firehose_source_reconnect;
  iface->get_state = (AtkSourceState (*) (AtkInput *))atk_firehose_source_get_state;
  iface->get_reconnects = (guint64 (*) (AtkInput *))atk_firehose_source_get_reconnects;
  iface->decode = firehose_decode;
  iface->set_cursor = (void (*) (AtkInput *, gboolean, gint64))atk_firehose_source_set_cursor;
}
