/* A scripted AtkKafkaSink for unit tests (see atk-fake-sink.h).
 * SPDX-License-Identifier: MIT */
#include "atk-fake-sink.h"

#include <string.h>

#include "atk-error.h"

struct _AtkKafkaSink
{
  GObject parent_instance;

  GHashTable *options; /* name → value */
  gboolean auto_ready;
  gboolean ready;
  gboolean fatal;
  guint ensure_attempts;
  GPtrArray *produced; /* AtkFakeProduced*, all */
  GQueue in_flight;    /* AtkFakeProduced* (borrowed from produced) */
  guint64 in_flight_bytes;
  GPtrArray *cursor_records; /* "key=seq" */
  gint refuse_code;          /* -1: none */
  gboolean refuse_cursor;
  gboolean deliver_on_flush;
  guint flush_calls;
  guint last_flush_timeout;
  GHashTable *txn_scripts; /* kind → GQueue of AtkTxnStatus */
  GHashTable *txn_calls;   /* kind → count */
  guint generation;        /* bumped by atk_kafka_sink_forget_in_flight() */
  AtkKafkaSinkDeliveryFunc delivery_func;
  gpointer delivery_data;
};

G_DEFINE_TYPE (AtkKafkaSink, atk_kafka_sink, G_TYPE_OBJECT)

enum
{
  SIGNAL_DELIVERED,
  SIGNAL_UNDELIVERED,
  SIGNAL_RELEASED,
  SIGNAL_FATAL,
  SIGNAL_READY,
  N_SIGNALS
};
static guint signals[N_SIGNALS];
static AtkKafkaSink *last_sink; /* weak */

static void
produced_free (gpointer data)
{
  AtkFakeProduced *p = data;

  g_free (p->key);
  g_free (p->value);
  g_free (p->action_name);
  g_free (p);
}

static void
txn_queue_free (gpointer data)
{
  g_queue_free (data);
}

static void
atk_kafka_sink_finalize (GObject *object)
{
  AtkKafkaSink *self = ATK_KAFKA_SINK (object);

  if (last_sink == self)
    last_sink = NULL;
  g_queue_clear (&self->in_flight);
  g_ptr_array_unref (self->produced);
  g_ptr_array_unref (self->cursor_records);
  g_hash_table_unref (self->options);
  g_hash_table_unref (self->txn_scripts);
  g_hash_table_unref (self->txn_calls);
  G_OBJECT_CLASS (atk_kafka_sink_parent_class)->finalize (object);
}

static void
atk_kafka_sink_class_init (AtkKafkaSinkClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = atk_kafka_sink_finalize;
  signals[SIGNAL_DELIVERED] = g_signal_new (
      "delivered", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE,
      5, G_TYPE_INT64, G_TYPE_BOOLEAN, G_TYPE_BOOLEAN, G_TYPE_STRING, G_TYPE_DOUBLE);
  signals[SIGNAL_UNDELIVERED]
      = g_signal_new ("undelivered", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                      NULL, G_TYPE_NONE, 3, G_TYPE_INT64, G_TYPE_BOOLEAN, G_TYPE_STRING);
  signals[SIGNAL_RELEASED] = g_signal_new ("released", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                           0, NULL, NULL, NULL, G_TYPE_NONE, 0);
  signals[SIGNAL_FATAL] = g_signal_new ("fatal", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                        NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
  signals[SIGNAL_READY] = g_signal_new ("ready", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                        NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
atk_kafka_sink_init (AtkKafkaSink *self)
{
  self->auto_ready = TRUE;
  self->refuse_code = -1;
  self->produced = g_ptr_array_new_with_free_func (produced_free);
  self->cursor_records = g_ptr_array_new_with_free_func (g_free);
  self->options = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  self->txn_scripts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, txn_queue_free);
  self->txn_calls = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
}

/* ---- the real sink's API ----------------------------------------------------------- */

AtkKafkaSink *
atk_kafka_sink_new (const AtkKafkaSinkOptions *options, GError **error)
{
  AtkKafkaSink *self = g_object_new (ATK_TYPE_KAFKA_SINK, NULL);
  g_autoptr (GString) properties = g_string_new (NULL);

  g_hash_table_insert (self->options, "bootstrap_servers", g_strdup (options->bootstrap_servers));
  g_hash_table_insert (self->options, "topic", g_strdup (options->topic));
  g_hash_table_insert (self->options, "compression", g_strdup (options->compression));
  g_hash_table_insert (self->options, "cursor_topic", g_strdup (options->cursor_topic));
  g_hash_table_insert (self->options, "transactional_id", g_strdup (options->transactional_id));
  for (guint i = 0; options->properties != NULL && options->properties[i] != NULL; i++)
    g_string_append_printf (properties, "%s%s", i > 0 ? "\n" : "", options->properties[i]);
  g_hash_table_insert (self->options, "properties", g_strdup (properties->str));
  last_sink = self;
  return self;
}

void
atk_kafka_sink_ensure_topic (AtkKafkaSink *self)
{
  self->ensure_attempts++;
  if (self->auto_ready)
    atk_fake_sink_set_ready (self);
}

gboolean
atk_kafka_sink_is_ready (AtkKafkaSink *self)
{
  return self->ready;
}

guint
atk_kafka_sink_get_ensure_attempts (AtkKafkaSink *self)
{
  return self->ensure_attempts;
}

gboolean
atk_kafka_sink_produce (AtkKafkaSink *self, AtkMessage *message, GError **error)
{
  g_autoptr (AtkMessage) owned = message; /* freed on every return */
  AtkFakeProduced *p;

  (void)owned;
  if (self->refuse_code >= 0)
    {
      gint code = self->refuse_code;
      self->refuse_code = -1;
      g_set_error (error, ATK_ERROR, code, "fake sink refuses a %" G_GSIZE_FORMAT "-byte message",
                   message->value->len);
      return FALSE;
    }
  p = g_new0 (AtkFakeProduced, 1);
  p->key = g_strdup (message->key);
  p->value = g_strndup (message->value->str, message->value->len);
  p->has_seq = message->has_seq;
  p->seq = message->seq;
  p->action_name = g_strdup (message->action_name);
  p->generation = self->generation;
  g_ptr_array_add (self->produced, p);
  g_queue_push_tail (&self->in_flight, p);
  self->in_flight_bytes += strlen (p->value) + (p->key != NULL ? strlen (p->key) : 0);
  return TRUE;
}

void
atk_kafka_sink_forget_in_flight (AtkKafkaSink *self)
{
  self->generation++;
}

/* The group tests run against the real broker; nothing to drop here. */
void
atk_kafka_sink_purge (AtkKafkaSink *self)
{
}

guint
atk_kafka_sink_get_in_flight (AtkKafkaSink *self)
{
  return self->in_flight.length;
}

guint64
atk_kafka_sink_get_in_flight_bytes (AtkKafkaSink *self)
{
  return self->in_flight_bytes;
}

gboolean
atk_kafka_sink_flush (AtkKafkaSink *self, guint timeout_ms)
{
  self->flush_calls++;
  self->last_flush_timeout = timeout_ms;
  if (self->deliver_on_flush)
    atk_fake_sink_deliver (self, self->in_flight.length, TRUE, NULL);
  return self->in_flight.length == 0;
}

gboolean
atk_kafka_sink_produce_cursor (AtkKafkaSink *self, const char *key, gint64 seq, GError **error)
{
  if (self->refuse_cursor)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_KAFKA, "fake sink refuses the cursor record");
      return FALSE;
    }
  g_ptr_array_add (self->cursor_records, g_strdup_printf ("%s=%" G_GINT64_FORMAT, key, seq));
  return TRUE;
}

const char *
atk_kafka_sink_get_compression (AtkKafkaSink *self)
{
  const char *compression = g_hash_table_lookup (self->options, "compression");

  return compression != NULL ? compression : "lz4";
}

void
atk_kafka_sink_render_prometheus (AtkKafkaSink *self, GString *out)
{
}

gboolean
atk_kafka_sink_is_fatal (AtkKafkaSink *self)
{
  return self->fatal;
}

static AtkTxnStatus
next_txn_status (AtkKafkaSink *self, const char *kind, GError **error)
{
  GQueue *script = g_hash_table_lookup (self->txn_scripts, kind);
  guint calls = GPOINTER_TO_UINT (g_hash_table_lookup (self->txn_calls, kind));
  AtkTxnStatus status = ATK_TXN_OK;

  g_hash_table_insert (self->txn_calls, g_strdup (kind), GUINT_TO_POINTER (calls + 1));
  if (script != NULL && !g_queue_is_empty (script))
    status = GPOINTER_TO_INT (g_queue_pop_head (script));
  if (status != ATK_TXN_OK)
    g_set_error (error, ATK_ERROR, ATK_ERROR_KAFKA, "fake transaction %s: status %d", kind, status);
  if (status == ATK_TXN_FATAL)
    atk_fake_sink_fail (self, "fake fatal transaction error");
  return status;
}

AtkTxnStatus
atk_kafka_sink_init_transactions (AtkKafkaSink *self, guint timeout_ms, GError **error)
{
  return next_txn_status (self, "init", error);
}

AtkTxnStatus
atk_kafka_sink_begin_transaction (AtkKafkaSink *self, GError **error)
{
  return next_txn_status (self, "begin", error);
}

AtkTxnStatus
atk_kafka_sink_commit_transaction (AtkKafkaSink *self, guint timeout_ms, GError **error)
{
  AtkTxnStatus status = next_txn_status (self, "commit", error);

  if (status == ATK_TXN_OK)
    atk_fake_sink_deliver (self, self->in_flight.length, TRUE, NULL);
  else if (status == ATK_TXN_ABORTED)
    atk_fake_sink_undeliver (self, self->in_flight.length);
  return status;
}

AtkTxnStatus
atk_kafka_sink_abort_transaction (AtkKafkaSink *self, guint timeout_ms, GError **error)
{
  AtkTxnStatus status = next_txn_status (self, "abort", error);

  atk_fake_sink_undeliver (self, self->in_flight.length);
  return status == ATK_TXN_OK ? ATK_TXN_ABORTED : status;
}

/* ---- the test's controls ------------------------------------------------------------ */

AtkKafkaSink *
atk_fake_sink_get_last (void)
{
  return last_sink;
}

const char *
atk_fake_sink_get_option (AtkKafkaSink *self, const char *name)
{
  return g_hash_table_lookup (self->options, name);
}

void
atk_fake_sink_set_auto_ready (AtkKafkaSink *self, gboolean auto_ready)
{
  self->auto_ready = auto_ready;
}

void
atk_fake_sink_set_ready (AtkKafkaSink *self)
{
  if (self->ready)
    return;
  self->ready = TRUE;
  g_signal_emit (self, signals[SIGNAL_READY], 0);
}

GPtrArray *
atk_fake_sink_get_produced (AtkKafkaSink *self)
{
  return self->produced;
}

GPtrArray *
atk_fake_sink_get_cursor_records (AtkKafkaSink *self)
{
  return self->cursor_records;
}

static AtkFakeProduced *
pop_in_flight (AtkKafkaSink *self)
{
  AtkFakeProduced *p = g_queue_pop_head (&self->in_flight);

  self->in_flight_bytes -= strlen (p->value) + (p->key != NULL ? strlen (p->key) : 0);
  return p;
}

void
atk_kafka_sink_set_delivery_func (AtkKafkaSink *self, AtkKafkaSinkDeliveryFunc func,
                                  gpointer user_data)
{
  self->delivery_func = func;
  self->delivery_data = user_data;
}

guint
atk_fake_sink_deliver (AtkKafkaSink *self, guint n, gboolean ok, const char *error_message)
{
  guint done = 0;

  g_object_ref (self);
  for (; done < n && !g_queue_is_empty (&self->in_flight); done++)
    {
      AtkFakeProduced *p = pop_in_flight (self);
      if (p->generation != self->generation)
        g_signal_emit (self, signals[SIGNAL_RELEASED], 0);
      else
        {
          const char *message = ok ? NULL : (error_message ? error_message : "fake failure");

          if (self->delivery_func != NULL)
            self->delivery_func (self->delivery_data, p->seq, p->has_seq, ok, message, 0.001);
          g_signal_emit (self, signals[SIGNAL_DELIVERED], 0, p->seq, p->has_seq, ok, message,
                         0.001);
        }
    }
  g_object_unref (self);
  return done;
}

guint
atk_fake_sink_undeliver (AtkKafkaSink *self, guint n)
{
  guint done = 0;

  g_object_ref (self);
  for (; done < n && !g_queue_is_empty (&self->in_flight); done++)
    {
      AtkFakeProduced *p = pop_in_flight (self);
      if (p->generation != self->generation)
        g_signal_emit (self, signals[SIGNAL_RELEASED], 0);
      else
        g_signal_emit (self, signals[SIGNAL_UNDELIVERED], 0, p->seq, p->has_seq, "fake: purged");
    }
  g_object_unref (self);
  return done;
}

void
atk_fake_sink_refuse_next (AtkKafkaSink *self, gint code)
{
  self->refuse_code = code;
}

void
atk_fake_sink_refuse_cursor (AtkKafkaSink *self, gboolean refuse)
{
  self->refuse_cursor = refuse;
}

void
atk_fake_sink_set_deliver_on_flush (AtkKafkaSink *self, gboolean deliver)
{
  self->deliver_on_flush = deliver;
}

guint
atk_fake_sink_get_flush_calls (AtkKafkaSink *self)
{
  return self->flush_calls;
}

guint
atk_fake_sink_get_last_flush_timeout (AtkKafkaSink *self)
{
  return self->last_flush_timeout;
}

void
atk_fake_sink_script_txn (AtkKafkaSink *self, const char *kind, AtkTxnStatus status)
{
  GQueue *script = g_hash_table_lookup (self->txn_scripts, kind);

  if (script == NULL)
    {
      script = g_queue_new ();
      g_hash_table_insert (self->txn_scripts, g_strdup (kind), script);
    }
  g_queue_push_tail (script, GINT_TO_POINTER (status));
}

guint
atk_fake_sink_get_txn_calls (AtkKafkaSink *self, const char *kind)
{
  return GPOINTER_TO_UINT (g_hash_table_lookup (self->txn_calls, kind));
}

void
atk_fake_sink_fail (AtkKafkaSink *self, const char *reason)
{
  if (self->fatal)
    return;
  self->fatal = TRUE;
  g_signal_emit (self, signals[SIGNAL_FATAL], 0, reason);
}
