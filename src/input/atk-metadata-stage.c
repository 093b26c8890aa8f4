/* at-kafka: eventMetadata and service filters, in per-DID order.
 *
 * A DID with nothing waiting and a fresh cache entry goes straight through. Otherwise its
 * messages queue behind one lookup; when it answers, the queue drains until an #identity
 * message (which invalidates the DID and waits for a fresh lookup) or the end.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-metadata"

#include "atk-metadata-stage.h"

#include <string.h>

#include "atk-did-document.h"
#include "atk-error.h"
#include "atk-name-filter.h"

typedef struct
{
  char *did;
  GQueue messages;    /* AtkMessage*, oldest first */
  gboolean resolving; /* a lookup for the head is in flight */
  gboolean stale;     /* cleared while resolving: the answer serves nobody */
} DidQueue;

struct _AtkMetadataStage
{
  GObject parent_instance;

  AtkDidResolver *resolver;
  gboolean event_metadata;
  AtkNameFilter *services; /* NULL: no service filter */

  GHashTable *queues; /* did → DidQueue* (owned) */
  guint backlog;
  guint max_backlog;
  AtkMetadataStats stats;
};

G_DEFINE_FINAL_TYPE (AtkMetadataStage, atk_metadata_stage, G_TYPE_OBJECT)

enum
{
  SIGNAL_MESSAGE_READY,
  SIGNAL_MESSAGE_FILTERED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void process_queue (AtkMetadataStage *self, DidQueue *queue);

static void
did_queue_free (gpointer data)
{
  DidQueue *queue = data;

  g_queue_clear_full (&queue->messages, (GDestroyNotify)atk_message_free);
  g_free (queue->did);
  g_free (queue);
}

static void
atk_metadata_stage_finalize (GObject *object)
{
  AtkMetadataStage *self = ATK_METADATA_STAGE (object);

  /* Lookups in flight hold a reference: queues here have none running. */
  g_hash_table_destroy (self->queues);
  g_clear_pointer (&self->services, atk_name_filter_free);
  g_clear_object (&self->resolver);
  G_OBJECT_CLASS (atk_metadata_stage_parent_class)->finalize (object);
}

static void
atk_metadata_stage_class_init (AtkMetadataStageClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = atk_metadata_stage_finalize;

  signals[SIGNAL_MESSAGE_READY]
      = g_signal_new ("message-ready", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                      NULL, G_TYPE_NONE, 1, G_TYPE_POINTER);
  signals[SIGNAL_MESSAGE_FILTERED]
      = g_signal_new ("message-filtered", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                      NULL, NULL, G_TYPE_NONE, 1, G_TYPE_POINTER);
}

static void
atk_metadata_stage_init (AtkMetadataStage *self)
{
  self->queues = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, did_queue_free);
  self->max_backlog = 100000;
}

AtkMetadataStage *
atk_metadata_stage_new (AtkDidResolver *resolver)
{
  AtkMetadataStage *self = g_object_new (ATK_TYPE_METADATA_STAGE, NULL);

  g_return_val_if_fail (resolver == NULL || ATK_IS_DID_RESOLVER (resolver), self);
  if (resolver != NULL)
    self->resolver = g_object_ref (resolver);
  return self;
}

/* ---- service filters ---- */

gboolean
atk_metadata_stage_set_service_filter (AtkMetadataStage *self, const char *const *watched,
                                       const char *const *ignored, GError **error)
{
  g_autoptr (AtkNameFilter) filter = NULL;

  g_return_val_if_fail (ATK_IS_METADATA_STAGE (self), FALSE);

  filter = atk_name_filter_new (ATK_NAME_FILTER_HOSTS, watched, ignored, error);
  if (filter == NULL)
    return FALSE;
  if (atk_name_filter_is_active (filter) && self->resolver == NULL)
    {
      g_set_error_literal (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                           "Service filters need a PLC host");
      return FALSE;
    }
  g_clear_pointer (&self->services, atk_name_filter_free);
  self->services = g_steal_pointer (&filter);
  return TRUE;
}

static gboolean
service_wanted (AtkMetadataStage *self, const AtkDidInfo *info)
{
  const char *host = info->pds_host;

  return atk_name_filter_allows (self->services, host, host != NULL ? strlen (host) : 0);
}

gboolean
atk_metadata_stage_set_event_metadata (AtkMetadataStage *self, gboolean enabled, GError **error)
{
  g_return_val_if_fail (ATK_IS_METADATA_STAGE (self), FALSE);

  if (enabled && self->resolver == NULL)
    {
      g_set_error_literal (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                           "Event metadata needs a PLC host");
      return FALSE;
    }
  self->event_metadata = !!enabled;
  return TRUE;
}

gboolean
atk_metadata_stage_is_active (AtkMetadataStage *self)
{
  g_return_val_if_fail (ATK_IS_METADATA_STAGE (self), FALSE);
  return self->resolver != NULL
         && (self->event_metadata || atk_name_filter_is_active (self->services));
}

/* ---- the metadata object ---- */

/* Replaces the transformer's "eventMetadata":null. A message without that slot (offset 0,
 * or not "null" there) is left alone. */
static gboolean
splice_metadata (AtkMetadataStage *self, AtkMessage *message, const AtkDidInfo *info)
{
  GString *value = message->value;
  gsize at = message->metadata_offset;

  if (at == 0 || at + 4 > value->len || memcmp (value->str + at, "null", 4) != 0)
    return FALSE;
  atk_did_metadata_splice (info, g_get_real_time () / 1000, value, at, 4);
  return TRUE;
}

/* ---- the flow ---- */

static void
emit_ready (AtkMetadataStage *self, AtkMessage *message)
{
  g_signal_emit (self, signals[SIGNAL_MESSAGE_READY], 0, message);
  atk_message_free (message);
}

/* The end of a message's way through the stage: filtered, or out with what is known. */
static void
deliver (AtkMetadataStage *self, AtkMessage *message, const AtkDidInfo *info)
{
  if (info == NULL)
    {
      /* As the reference: a commit still gets an object, with nothing known in it. */
      self->stats.degraded++;
      if (self->event_metadata && message->kind == ATK_EVENT_COMMIT)
        splice_metadata (self, message, NULL);
      emit_ready (self, message);
      return;
    }
  if (!service_wanted (self, info))
    {
      self->stats.filtered++;
      g_signal_emit (self, signals[SIGNAL_MESSAGE_FILTERED], 0, message);
      atk_message_free (message);
      return;
    }
  if (self->event_metadata && splice_metadata (self, message, info))
    self->stats.enriched++;
  emit_ready (self, message);
}

static gboolean
has_did (const AtkMessage *message)
{
  return message->key != NULL && g_str_has_prefix (message->key, "did:");
}

typedef struct
{
  AtkMetadataStage *self; /* a reference */
  char *did;
} Lookup;

static void
on_resolved (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Lookup *lookup = user_data;
  g_autoptr (AtkMetadataStage) self = lookup->self;
  g_autofree char *did = lookup->did;
  g_autoptr (GError) error = NULL;
  g_autoptr (AtkDidInfo) info
      = atk_did_resolver_resolve_finish (ATK_DID_RESOLVER (source), result, &error);
  DidQueue *queue = g_hash_table_lookup (self->queues, did);
  AtkMessage *message;

  g_free (lookup);
  if (error != NULL)
    g_debug ("No metadata for %s: %s", did, error->message);
  g_assert (queue != NULL && queue->resolving);
  queue->resolving = FALSE;
  if (queue->stale)
    {
      /* Requested for messages clear() dropped: whatever came since starts afresh. */
      queue->stale = FALSE;
      process_queue (self, queue);
      return;
    }

  /* This answer serves the head and everything up to the next #identity. */
  message = g_queue_pop_head (&queue->messages);
  self->backlog--;
  deliver (self, message, info);
  while ((message = g_queue_peek_head (&queue->messages)) != NULL
         && message->kind != ATK_EVENT_IDENTITY)
    {
      g_queue_pop_head (&queue->messages);
      self->backlog--;
      deliver (self, message, info);
    }
  process_queue (self, queue);
}

static void
start_lookup (AtkMetadataStage *self, DidQueue *queue)
{
  Lookup *lookup = g_new0 (Lookup, 1);

  lookup->self = g_object_ref (self);
  lookup->did = g_strdup (queue->did);
  queue->resolving = TRUE;
  atk_did_resolver_resolve_async (self->resolver, queue->did, NULL, on_resolved, lookup);
}

/* Delivers message with the cache's answer for did, if it has one (positive or negative); FALSE
 * when the network has to be asked (an #identity always asks again). */
static gboolean
deliver_cached (AtkMetadataStage *self, const char *did, AtkMessage *message)
{
  g_autoptr (AtkDidInfo) info = NULL;
  g_autoptr (GError) error = NULL;

  if (message->kind == ATK_EVENT_IDENTITY)
    return FALSE;
  info = atk_did_resolver_lookup_cached (self->resolver, did, &error);
  if (info == NULL && error == NULL)
    return FALSE;
  deliver (self, message, info);
  return TRUE;
}

/* Moves the queue on: cached answers go out at once; the first message that needs the
 * network starts a lookup and waits. An empty queue is removed. */
static void
process_queue (AtkMetadataStage *self, DidQueue *queue)
{
  AtkMessage *message;

  while (!queue->resolving && (message = g_queue_peek_head (&queue->messages)) != NULL)
    {
      /* off the queue before it goes on (deliver() may come back here) */
      g_queue_pop_head (&queue->messages);
      self->backlog--;
      if (!deliver_cached (self, queue->did, message))
        {
          /* The network has to answer: back to the head, and ask (again after an #identity:
           * the handle or PDS may have changed). */
          g_queue_push_head (&queue->messages, message);
          self->backlog++;
          if (message->kind == ATK_EVENT_IDENTITY)
            atk_did_resolver_invalidate (self->resolver, queue->did);
          start_lookup (self, queue);
          return;
        }
    }
  if (!queue->resolving && queue->messages.length == 0)
    g_hash_table_remove (self->queues, queue->did);
}

void
atk_metadata_stage_push (AtkMetadataStage *self, AtkMessage *message)
{
  DidQueue *queue;

  g_return_if_fail (ATK_IS_METADATA_STAGE (self));
  g_return_if_fail (message != NULL);

  if (!atk_metadata_stage_is_active (self) || !has_did (message))
    {
      emit_ready (self, message);
      return;
    }
  queue = g_hash_table_lookup (self->queues, message->key);
  if (queue != NULL)
    {
      g_queue_push_tail (&queue->messages, message);
      self->backlog++;
      return;
    }
  /* Nothing waits for this DID: a cached answer serves the message without a queue (most
   * messages, once the cache is warm). */
  if (deliver_cached (self, message->key, message))
    return;
  queue = g_new0 (DidQueue, 1);
  queue->did = g_strdup (message->key);
  g_queue_init (&queue->messages);
  g_hash_table_insert (self->queues, queue->did, queue);
  g_queue_push_tail (&queue->messages, message);
  self->backlog++;
  process_queue (self, queue);
}

/* ---- state ---- */

static gboolean
clear_queue (gpointer key, gpointer value, gpointer user_data)
{
  DidQueue *queue = value;
  AtkMetadataStage *self = user_data;

  self->backlog -= queue->messages.length;
  g_queue_clear_full (&queue->messages, (GDestroyNotify)atk_message_free);
  g_queue_init (&queue->messages);
  if (!queue->resolving)
    return TRUE;
  /* on_resolved() still needs the queue; it must not serve later messages with an answer
   * asked for before an #identity it never saw. */
  queue->stale = TRUE;
  return FALSE;
}

void
atk_metadata_stage_clear (AtkMetadataStage *self)
{
  g_return_if_fail (ATK_IS_METADATA_STAGE (self));
  g_hash_table_foreach_remove (self->queues, clear_queue, self);
}

guint
atk_metadata_stage_get_backlog (AtkMetadataStage *self)
{
  g_return_val_if_fail (ATK_IS_METADATA_STAGE (self), 0);
  return self->backlog;
}

void
atk_metadata_stage_set_max_backlog (AtkMetadataStage *self, guint max)
{
  g_return_if_fail (ATK_IS_METADATA_STAGE (self));
  self->max_backlog = MAX (max, 1u);
}

gboolean
atk_metadata_stage_is_saturated (AtkMetadataStage *self)
{
  g_return_val_if_fail (ATK_IS_METADATA_STAGE (self), FALSE);
  return self->backlog >= self->max_backlog;
}

void
atk_metadata_stage_get_stats (AtkMetadataStage *self, AtkMetadataStats *stats)
{
  g_return_if_fail (ATK_IS_METADATA_STAGE (self));
  *stats = self->stats;
}

void
atk_metadata_stage_render_prometheus (AtkMetadataStage *self, GString *out)
{
  g_return_if_fail (ATK_IS_METADATA_STAGE (self));

  if (self->resolver != NULL)
    atk_did_resolver_render_prometheus (self->resolver, out);
  g_string_append_printf (
      out,
      "# HELP atkafka_metadata_events Messages through the metadata stage by result.\n"
      "# TYPE atkafka_metadata_events counter\n"
      "atkafka_metadata_events{result=\"enriched\"} %" G_GUINT64_FORMAT "\n"
      "atkafka_metadata_events{result=\"degraded\"} %" G_GUINT64_FORMAT "\n"
      "atkafka_metadata_events{result=\"filtered\"} %" G_GUINT64_FORMAT "\n"
      "# HELP atkafka_metadata_backlog Messages waiting for a DID lookup.\n"
      "# TYPE atkafka_metadata_backlog gauge\n"
      "atkafka_metadata_backlog %u\n",
      self->stats.enriched, self->stats.degraded, self->stats.filtered, self->backlog);
}
