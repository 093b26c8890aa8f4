/* at-kafka: firehose frames in, output messages out.
 *
 * The hot path of the daemon: every value is written straight into the message's GString,
 * no JSON trees, no per-event allocation beyond the message itself. This file decides
 * which messages a frame makes (filters, record errors, Osprey envelope); the event
 * shapes themselves are written by atk-event-json.c and atk-jetstream.c.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-core"

#include "atk-event-transformer.h"

#include <string.h>

#include "atk-car.h"
#include "atk-cbor-json.h"
#include "atk-error.h"
#include "atk-event-json.h"
#include "atk-jetstream.h"
#include "atk-json-out.h"
#include "atk-name-filter.h"
#include "atk-time.h"

/* Op indexes of commits stay below ATK_FRAME_MAX_OPS; #info ids use this slot so they can
 * never equal the id of an op or event minted in the same millisecond. */
#define SNOWFLAKE_INFO_SLOT 0xff

#define UNKNOWN_KEY "<unknown>"

struct _AtkEventTransformer
{
  GObject parent_instance;

  gboolean osprey;
  gboolean skip_unrenderable;
  AtkPayloadFormat payload;
  AtkNameFilter *collections; /* NULL: every collection */

  /* Large scratch state kept in the instance: an AtkFrame holds 200 ops and the CAR index
   * 4096 blocks, too big for the stack of a callback. result->frame points at frame. */
  AtkFrame frame;
  AtkCarIndex *car;
  AtkCidHasher *hasher; /* one SHA-256 context for every record block */

  /* send_time is the same for every message of one call; cached per second. */
  gint64 send_time_sec;
  char send_time[32];
  gsize send_time_len;

  guint32 info_counter;
};

G_DEFINE_FINAL_TYPE (AtkEventTransformer, atk_event_transformer, G_TYPE_OBJECT)

/* One event being written: what every message of a frame shares. */
typedef struct
{
  const AtkFrame *frame;
  gint64 now_us;
  gint64 now_ms;
  gint64 event_time_ms; /* 0 when the frame has no parsable time */
} EventContext;

static void
atk_event_transformer_finalize (GObject *object)
{
  AtkEventTransformer *self = ATK_EVENT_TRANSFORMER (object);

  g_clear_pointer (&self->collections, atk_name_filter_free);
  g_clear_pointer (&self->car, g_free);
  g_clear_pointer (&self->hasher, atk_cid_hasher_free);

  G_OBJECT_CLASS (atk_event_transformer_parent_class)->finalize (object);
}

static void
atk_event_transformer_class_init (AtkEventTransformerClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = atk_event_transformer_finalize;
}

static void
atk_event_transformer_init (AtkEventTransformer *self)
{
  self->car = g_new0 (AtkCarIndex, 1);
  self->hasher = atk_cid_hasher_new ();
  self->send_time_sec = G_MININT64;
}

AtkEventTransformer *
atk_event_transformer_new (void)
{
  return g_object_new (ATK_TYPE_EVENT_TRANSFORMER, NULL);
}

void
atk_transform_result_clear (AtkTransformResult *result)
{
  g_clear_error (&result->op_error);
  result->frame = NULL;
  result->n_messages = 0;
  result->n_filtered = 0;
  result->n_op_errors = 0;
  result->ops_skipped = FALSE;
  result->n_op_error_kinds = 0;
}

void
atk_event_transformer_set_osprey_compatible (AtkEventTransformer *self, gboolean osprey)
{
  g_return_if_fail (ATK_IS_EVENT_TRANSFORMER (self));
  self->osprey = !!osprey;
}

gboolean
atk_event_transformer_get_osprey_compatible (AtkEventTransformer *self)
{
  g_return_val_if_fail (ATK_IS_EVENT_TRANSFORMER (self), FALSE);
  return self->osprey;
}

void
atk_event_transformer_set_skip_unrenderable_records (AtkEventTransformer *self, gboolean skip)
{
  g_return_if_fail (ATK_IS_EVENT_TRANSFORMER (self));
  self->skip_unrenderable = !!skip;
}

void
atk_event_transformer_set_payload_format (AtkEventTransformer *self, AtkPayloadFormat format)
{
  g_return_if_fail (ATK_IS_EVENT_TRANSFORMER (self));
  self->payload = format;
}

AtkPayloadFormat
atk_event_transformer_get_payload_format (AtkEventTransformer *self)
{
  g_return_val_if_fail (ATK_IS_EVENT_TRANSFORMER (self), ATK_PAYLOAD_STANDARD);
  return self->payload;
}

/* ---- collection filters ---- */

gboolean
atk_event_transformer_set_collection_filter (AtkEventTransformer *self, const char *const *watched,
                                             const char *const *ignored, GError **error)
{
  AtkNameFilter *filter;

  g_return_val_if_fail (ATK_IS_EVENT_TRANSFORMER (self), FALSE);

  filter = atk_name_filter_new (ATK_NAME_FILTER_NSIDS, watched, ignored, error);
  if (filter == NULL)
    return FALSE;
  g_clear_pointer (&self->collections, atk_name_filter_free);
  self->collections = filter;
  return TRUE;
}

static gboolean
collection_wanted (AtkEventTransformer *self, AtkStr collection)
{
  return atk_name_filter_allows (self->collections, collection.ptr, collection.len);
}

gboolean
atk_event_transformer_collection_wanted (AtkEventTransformer *self, const char *collection)
{
  AtkStr str = { collection, strlen (collection) };

  g_return_val_if_fail (ATK_IS_EVENT_TRANSFORMER (self), TRUE);
  return collection_wanted (self, str);
}

/* "2024-01-01T12:00:00Z", the reference's RFC 3339 send_time (seconds, UTC); the same for
 * every message of one second, so it is formatted once per second. */
static void
update_send_time (AtkEventTransformer *self, gint64 now_us)
{
  gint64 sec = now_us >= 0 ? now_us / G_USEC_PER_SEC : (now_us + 1) / G_USEC_PER_SEC - 1;

  if (sec == self->send_time_sec)
    return;
  self->send_time_sec = sec;
  self->send_time_len = atk_format_rfc3339_utc (sec, self->send_time, sizeof self->send_time);
}

/* ---- JSON writing ---- */

#define APPEND_LITERAL ATK_OUT_LITERAL

/* op: with the Jetstream payload, ops are named as Osprey's Jetstream plugin names them. */
static void
append_osprey_head (AtkEventTransformer *self, GString *out, const char *action_name,
                    const AtkRepoOp *op, gint64 action_id)
{
  APPEND_LITERAL (out, "{\"data\":{\"action_name\":");
  if (op != NULL && self->payload == ATK_PAYLOAD_JETSTREAM)
    atk_jetstream_append_op_action_name (out, op);
  else
    atk_json_append_string (out, action_name, strlen (action_name));
  APPEND_LITERAL (out, ",\"action_id\":");
  atk_out_append_int (out, action_id);
  APPEND_LITERAL (out, ",\"data\":");
}

static void
append_osprey_tail (AtkEventTransformer *self, GString *out, const AtkFrame *frame)
{
  APPEND_LITERAL (out, ",\"timestamp\":");
  /* Like the reference, #info (no time on the wire) is stamped with the wall clock. */
  if (frame->kind == ATK_EVENT_INFO)
    atk_json_append_string (out, self->send_time, self->send_time_len);
  else
    atk_json_append_string (out, frame->time.ptr, frame->time.len);
  APPEND_LITERAL (out, ",\"secret_data\":{},\"encoding\":\"UTF8\"},\"send_time\":");
  atk_json_append_string (out, self->send_time, self->send_time_len);
  atk_out_append_c (out, '}');
}

/* size: about how long the value will be (the record's JSON takes at most about twice its
 * DAG-CBOR), so that writing it does not reallocate. */
static AtkMessage *
message_new (const EventContext *ctx, const char *action_name, guint op_index, gsize size)
{
  const AtkFrame *frame = ctx->frame;
  AtkMessage *message = atk_message_new_sized (size);

  message->key
      = frame->did.len > 0 ? g_strndup (frame->did.ptr, frame->did.len) : g_strdup (UNKNOWN_KEY);
  message->has_seq = frame->has_seq;
  message->seq = frame->seq;
  message->kind = frame->kind;
  message->action_name = action_name;
  message->event_time_ms = ctx->event_time_ms;
  message->action_id = atk_snowflake_for_event (
      ctx->event_time_ms > 0 ? ctx->event_time_ms : ctx->now_ms, frame->seq, op_index);
  return message;
}

/* ---- commits ---- */

static const char *
op_action_name (AtkOpAction action)
{
  switch (action)
    {
    case ATK_OP_CREATE:
      return "operation#create";
    case ATK_OP_UPDATE:
      return "operation#update";
    case ATK_OP_DELETE:
    default:
      return "operation#delete";
    }
}

/* Finds and checks the op's record block: present in the CAR and hashing to its CID. */
static const AtkCarBlock *
find_record (const AtkCarIndex *car, AtkCidHasher *hasher, const AtkRepoOp *op, GError **error)
{
  const AtkCarBlock *block;

  if (!op->has_cid)
    {
      g_set_error_literal (error, ATK_ERROR, ATK_ERROR_MISSING_BLOCK, "op has no record CID");
      return NULL;
    }
  block = atk_car_index_lookup (car, &op->cid);
  if (block == NULL)
    {
      g_set_error_literal (error, ATK_ERROR, ATK_ERROR_MISSING_BLOCK,
                           "record block not in the commit's CAR");
      return NULL;
    }
  if (!atk_cid_verify_with (hasher, &op->cid, block->data, block->len, error))
    return NULL;
  return block;
}

/* Counts an op whose record cannot be rendered, by kind; keeps the first error (with the
 * op's path) for the caller's log. Returns the kind. */
static const char *
note_op_error (AtkTransformResult *result, const AtkRepoOp *op, GError *error)
{
  const char *kind = atk_error_kind_name (error);
  guint i;

  result->n_op_errors++;
  for (i = 0; i < result->n_op_error_kinds; i++)
    if (result->op_error_kinds[i].kind == kind)
      break;
  if (i == result->n_op_error_kinds && i < ATK_TRANSFORM_MAX_OP_ERROR_KINDS)
    result->op_error_kinds[result->n_op_error_kinds++] = (AtkOpErrorCount){ kind, 0 };
  if (i < result->n_op_error_kinds)
    result->op_error_kinds[i].count++;

  if (result->op_error == NULL)
    {
      g_prefix_error (&error, "op %.*s: ", (int)MIN (op->path.len, 512), op->path.ptr);
      result->op_error = error;
    }
  else
    g_clear_error (&error);
  return kind;
}

/* Builds the CAR index on first use: commits whose ops are all deletes or filtered out
 * never pay for it. *state: 0 not built, 1 built, else -1 - the AtkError code it failed
 * with (so every op of the commit reports the same kind). */
static gboolean
ensure_car (AtkEventTransformer *self, const AtkFrame *frame, gint *state, GError **error)
{
  if (*state == 0)
    {
      if (atk_car_index_build (self->car, frame->blocks, frame->blocks_len, error))
        *state = 1;
      else
        *state = -1
                 - (error != NULL && *error != NULL && (*error)->domain == ATK_ERROR
                        ? (*error)->code
                        : ATK_ERROR_BAD_CAR);
    }
  else if (*state < 0)
    g_set_error_literal (error, ATK_ERROR, -1 - *state, "commit CAR is unreadable");
  return *state > 0;
}

static void
transform_op (AtkEventTransformer *self, const EventContext *ctx, guint index, gint *car_state,
              GPtrArray *messages, AtkTransformResult *result)
{
  const AtkFrame *frame = ctx->frame;
  const AtkRepoOp *op = &frame->ops[index];
  const char *action_name = op_action_name (op->action);
  g_autoptr (AtkMessage) message = NULL;
  const AtkCarBlock *block = NULL;
  const char *record_error = NULL;
  GError *error = NULL;
  gboolean skip;
  gsize start;

  if (!collection_wanted (self, op->collection))
    {
      result->n_filtered++;
      return;
    }
  /* Jetstream's shape has no place for a record error: there they are skipped. */
  skip = self->skip_unrenderable || self->payload == ATK_PAYLOAD_JETSTREAM;
  if (op->action != ATK_OP_DELETE
      && (!ensure_car (self, frame, car_state, &error)
          || (block = find_record (self->car, self->hasher, op, &error)) == NULL))
    {
      record_error = note_op_error (result, op, g_steal_pointer (&error));
      if (skip)
        {
          result->ops_skipped = TRUE;
          return;
        }
    }

  message = message_new (ctx, action_name, index, 512 + (block != NULL ? 2 * block->len : 0));
  if (self->osprey)
    append_osprey_head (self, message->value, action_name, op, message->action_id);
  start = message->value->len;
  if (self->payload == ATK_PAYLOAD_JETSTREAM)
    {
      if (!atk_jetstream_append_commit (message->value, frame, op, block, ctx->now_us, &error))
        {
          note_op_error (result, op, g_steal_pointer (&error));
          result->ops_skipped = TRUE;
          return;
        }
    }
  else
    {
      if (!atk_event_json_append_operation (message->value, frame, op, block, record_error, &error))
        {
          /* Rare: the block is there and hashes right, but its bytes are not a record. */
          record_error = note_op_error (result, op, g_steal_pointer (&error));
          if (skip)
            {
              result->ops_skipped = TRUE;
              return;
            }
          g_string_truncate (message->value, start);
          atk_event_json_append_operation (message->value, frame, op, NULL, record_error, NULL);
        }
      message->metadata_offset = ATK_EVENT_JSON_METADATA_OFFSET (message->value);
    }
  if (self->osprey)
    append_osprey_tail (self, message->value, frame);
  message->collection = g_strndup (op->collection.ptr, op->collection.len);
  g_ptr_array_add (messages, g_steal_pointer (&message));
  result->n_messages++;
}

static void
transform_commit (AtkEventTransformer *self, const EventContext *ctx, GPtrArray *messages,
                  AtkTransformResult *result)
{
  gint car_state = 0; /* see ensure_car() */

  for (guint i = 0; i < ctx->frame->n_ops; i++)
    transform_op (self, ctx, i, &car_state, messages, result);
}

/* ---- the other events ---- */

static const char *
event_action_name (AtkEventKind kind)
{
  switch (kind)
    {
    case ATK_EVENT_ACCOUNT:
      return "account";
    case ATK_EVENT_IDENTITY:
      return "identity";
    case ATK_EVENT_SYNC:
      return "sync";
    case ATK_EVENT_INFO:
      return "info";
    case ATK_EVENT_COMMIT:
    case ATK_EVENT_UNKNOWN:
    case ATK_EVENT_ERROR:
    default:
      return "unknown";
    }
}

static void
transform_event (AtkEventTransformer *self, const EventContext *ctx, GPtrArray *messages,
                 AtkTransformResult *result)
{
  const AtkFrame *frame = ctx->frame;
  const char *action_name = event_action_name (frame->kind);
  AtkMessage *message;

  if (frame->kind == ATK_EVENT_INFO)
    {
      /* No seq, no did and no time: a per-instance counter keeps ids unique. */
      message = atk_message_new ();
      message->key = g_strdup (UNKNOWN_KEY);
      message->has_seq = FALSE;
      message->kind = frame->kind;
      message->action_name = action_name;
      message->action_id
          = atk_snowflake_for_event (ctx->now_ms, self->info_counter++, SNOWFLAKE_INFO_SLOT);
    }
  else
    message = message_new (ctx, action_name, 0, 512);

  if (self->osprey)
    append_osprey_head (self, message->value, action_name, NULL, message->action_id);
  if (self->payload == ATK_PAYLOAD_JETSTREAM)
    {
      /* No eventMetadata slot: the metadata stage leaves these alone. */
      atk_jetstream_append_event (message->value, frame, ctx->now_us);
      if (self->osprey)
        append_osprey_tail (self, message->value, frame);
      g_ptr_array_add (messages, message);
      result->n_messages++;
      return;
    }
  switch (frame->kind)
    {
    case ATK_EVENT_ACCOUNT:
      atk_event_json_append_account (message->value, frame);
      break;
    case ATK_EVENT_IDENTITY:
      atk_event_json_append_identity (message->value, frame);
      break;
    case ATK_EVENT_SYNC:
      atk_event_json_append_sync (message->value, frame);
      break;
    case ATK_EVENT_INFO:
    default:
      atk_event_json_append_info (message->value, frame);
      break;
    }
  message->metadata_offset = ATK_EVENT_JSON_METADATA_OFFSET (message->value);
  if (self->osprey)
    append_osprey_tail (self, message->value, frame);
  g_ptr_array_add (messages, message);
  result->n_messages++;
}

gboolean
atk_event_transformer_transform (AtkEventTransformer *self, const guint8 *data, gsize len,
                                 gint64 now_us, GPtrArray *messages, AtkTransformResult *result,
                                 GError **error)
{
  AtkFrame *frame = &self->frame;
  EventContext ctx = { frame, now_us, 0, 0 };

  g_return_val_if_fail (ATK_IS_EVENT_TRANSFORMER (self), FALSE);
  g_return_val_if_fail (data != NULL || len == 0, FALSE);
  g_return_val_if_fail (messages != NULL && result != NULL, FALSE);

  atk_transform_result_clear (result);
  if (!atk_frame_decode (data, len, frame, error))
    return FALSE;
  result->frame = frame;

  ctx.now_ms = now_us / 1000;
  if (frame->time.len > 0
      && !atk_parse_datetime_ms (frame->time.ptr, frame->time.len, &ctx.event_time_ms))
    ctx.event_time_ms = 0;
  if (self->osprey)
    update_send_time (self, now_us);

  switch (frame->kind)
    {
    case ATK_EVENT_COMMIT:
      transform_commit (self, &ctx, messages, result);
      break;
    case ATK_EVENT_ACCOUNT:
    case ATK_EVENT_IDENTITY:
    case ATK_EVENT_SYNC:
    case ATK_EVENT_INFO:
      transform_event (self, &ctx, messages, result);
      break;
    case ATK_EVENT_UNKNOWN:
    case ATK_EVENT_ERROR:
    default:
      /* Open union and error frames: the caller counts them from result->frame. */
      break;
    }
  return TRUE;
}
