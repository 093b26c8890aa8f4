/* at-kafka: the relay connection. The WebSocket machinery (reconnects, backoff, timeouts,
 * the generation guard) is AtkWsClient's; this adds what is the relay's own: the
 * subscribeRepos path, the cursor query on every (re)connect, binary frames only, the
 * idle timeout, and the relay's fields in the logs.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka"

#include "atk-firehose-source.h"

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

G_DEFINE_FINAL_TYPE (AtkFirehoseSource, atk_firehose_source, G_TYPE_OBJECT)

enum
{
  PROP_0,
  PROP_STATE,
  N_PROPS
};

enum
{
  SIGNAL_FRAME,
  SIGNAL_STATE_CHANGED,
  SIGNAL_CONNECTION_ERROR,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

static void
log_event (AtkFirehoseSource *self, GLogLevelFlags level, const char *message)
{
  g_autofree char *cursor
      = self->has_cursor ? g_strdup_printf ("%" G_GINT64_FORMAT, self->cursor) : g_strdup ("live");

  g_log_structured (G_LOG_DOMAIN, level, "RELAY", self->relay_url, "CURSOR", cursor, "SOURCE_STATE",
                    atk_source_state_name (atk_firehose_source_get_state (self)), "MESSAGE",
                    "%s: %s", self->relay_url, message);
}

/* The URL of the next attempt: the cursor is read when the connection is made. */
static char *
build_url (AtkFirehoseSource *self)
{
  GString *url = g_string_new (self->relay_url);

  while (url->len > 0 && url->str[url->len - 1] == '/')
    g_string_truncate (url, url->len - 1);
  g_string_append (url, SUBSCRIBE_PATH);
  if (self->has_cursor)
    g_string_append_printf (url, "?cursor=%" G_GINT64_FORMAT, self->cursor);
  return g_string_free (url, FALSE);
}

static void
on_client_message (AtkWsClient *client, GBytes *message, gboolean binary, gpointer user_data)
{
  g_signal_emit (user_data, signals[SIGNAL_FRAME], 0, message);
}

static void
on_client_state_changed (AtkWsClient *client, AtkSourceState state, gpointer user_data)
{
  AtkFirehoseSource *self = user_data;

  if (state == ATK_SOURCE_CONNECTED)
    log_event (self, G_LOG_LEVEL_MESSAGE, "connected");
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATE]);
  g_signal_emit (self, signals[SIGNAL_STATE_CHANGED], 0, state);
}

static void
on_client_connection_error (AtkWsClient *client, const char *message, gpointer user_data)
{
  AtkFirehoseSource *self = user_data;

  log_event (self, G_LOG_LEVEL_MESSAGE, message);
  g_signal_emit (self, signals[SIGNAL_CONNECTION_ERROR], 0, message);
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

  if (atk_ws_client_get_state (self->client) == ATK_SOURCE_STOPPED)
    return;
  log_event (self, G_LOG_LEVEL_MESSAGE, "reconnecting on request");
  atk_ws_client_reconnect (self->client);
}

void
atk_firehose_source_set_cursor (AtkFirehoseSource *self, gboolean has_cursor, gint64 seq)
{
  g_autofree char *url = NULL;

  g_return_if_fail (ATK_IS_FIREHOSE_SOURCE (self));

  /* A seq past the last one is progress: a reconnect after it need not wait. */
  if (has_cursor && (!self->has_cursor || seq > self->cursor))
    atk_ws_client_note_progress (self->client);
  self->has_cursor = has_cursor;
  self->cursor = has_cursor ? seq : 0;
  url = build_url (self);
  atk_ws_client_set_url (self->client, url);
}

AtkSourceState
atk_firehose_source_get_state (AtkFirehoseSource *self)
{
  g_return_val_if_fail (ATK_IS_FIREHOSE_SOURCE (self), ATK_SOURCE_STOPPED);

  return self->client != NULL ? atk_ws_client_get_state (self->client) : ATK_SOURCE_STOPPED;
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
  atk_ws_client_set_healthy_messages (self->client, HEALTHY_FRAMES);
  atk_ws_client_set_labels (self->client, "the relay", "frame", "max_frame_bytes");
  g_signal_connect (self->client, "message", G_CALLBACK (on_client_message), self);
  g_signal_connect (self->client, "state-changed", G_CALLBACK (on_client_state_changed), self);
  g_signal_connect (self->client, "connection-error", G_CALLBACK (on_client_connection_error),
                    self);
  return self;
}

static void
atk_firehose_source_dispose (GObject *object)
{
  AtkFirehoseSource *self = ATK_FIREHOSE_SOURCE (object);

  /* Quietly: no signal of ours after the owner let go. */
  if (self->client != NULL)
    {
      g_signal_handlers_disconnect_by_data (self->client, self);
      atk_ws_client_stop (self->client);
      g_clear_object (&self->client);
    }

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

  signals[SIGNAL_FRAME] = g_signal_new ("frame", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                        NULL, NULL, g_cclosure_marshal_VOID__BOXED, G_TYPE_NONE, 1,
                                        G_TYPE_BYTES | G_SIGNAL_TYPE_STATIC_SCOPE);
  g_signal_set_va_marshaller (signals[SIGNAL_FRAME], G_TYPE_FROM_CLASS (klass),
                              g_cclosure_marshal_VOID__BOXEDv);
  signals[SIGNAL_STATE_CHANGED]
      = g_signal_new ("state-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                      NULL, G_TYPE_NONE, 1, ATK_TYPE_SOURCE_STATE);
  signals[SIGNAL_CONNECTION_ERROR]
      = g_signal_new ("connection-error", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                      NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
}

static void
atk_firehose_source_init (AtkFirehoseSource *self)
{
}
