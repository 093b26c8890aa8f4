/* at-kafka: Tap's JSON events to output messages.
 *
 * Tap (the Go reference libraries' cmd/tap) sends one JSON text message per event:
 *   {"id":N,"type":"record","record":{"live","did","rev","collection","rkey","action",
 *                                      "record"?,"cid"?}}
 *   {"id":N,"type":"identity","identity":{"did","handle","is_active","status"}}
 * (its README spells the flag "isActive"; the code writes "is_active": both are read).
 * Records are atproto JSON already ($link, $bytes, blobs), so they are copied through.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-core"

#include "atk-tap-event.h"

#include <string.h>

#include "atk-cbor-json.h"
#include "atk-error.h"
#include "atk-frame.h"
#include "atk-tap-json.h"
#include "atk-time.h"

#define UNKNOWN_KEY "<unknown>"

#define APPEND_LITERAL(out, lit) g_string_append_len ((out), (lit), sizeof (lit) - 1)

static gboolean
read_id (AtkTapJsonReader *r, guint64 *out)
{
  const char *start;
  guint64 value;
  g_autofree char *text = NULL;

  atk_tap_json_skip_ws (r);
  start = r->p;
  if (!atk_tap_json_read_number (r, NULL))
    return FALSE;
  text = g_strndup (start, r->p - start);
  /* The id goes into AtkMessage.seq (gint64): refuse what does not fit. */
  if (!g_ascii_string_to_unsigned (text, 10, 0, G_MAXINT64, &value, NULL))
    return atk_tap_json_fail (r, "\"id\" is not an unsigned integer");
  *out = value;
  return TRUE;
}

/* ---- the event ---- */

typedef struct
{
  gboolean has_id;
  guint64 id;
  GString *type;
  gboolean has_body; /* a "record" or "identity" object was read */
  GString *did;
  GString *collection;
  GString *rkey;
  GString *action;
  GString *cid;
  GString *rev;
  GString *handle;
  GString *status;
  GString *record; /* compact JSON, empty when absent */
  gboolean live;
  gboolean active;
  gboolean has_active;
} TapEvent;

static void
tap_event_init (TapEvent *evt)
{
  GString **strings[] = { &evt->type, &evt->did, &evt->collection, &evt->rkey,   &evt->action,
                          &evt->cid,  &evt->rev, &evt->handle,     &evt->status, &evt->record };

  memset (evt, 0, sizeof *evt);
  for (gsize i = 0; i < G_N_ELEMENTS (strings); i++)
    *strings[i] = g_string_new (NULL);
}

static void
tap_event_clear (TapEvent *evt)
{
  GString *strings[] = { evt->type, evt->did, evt->collection, evt->rkey,   evt->action,
                         evt->cid,  evt->rev, evt->handle,     evt->status, evt->record };

  for (gsize i = 0; i < G_N_ELEMENTS (strings); i++)
    g_string_free (strings[i], TRUE);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (TapEvent, tap_event_clear)

/* Members of the inner "record" or "identity" object; unknown ones are skipped. */
static gboolean
body_member (AtkTapJsonReader *r, const char *key, gpointer data)
{
  TapEvent *evt = data;
  struct
  {
    const char *name;
    GString *into;
  } strings[] = { { "did", evt->did },       { "collection", evt->collection },
                  { "rkey", evt->rkey },     { "action", evt->action },
                  { "cid", evt->cid },       { "rev", evt->rev },
                  { "handle", evt->handle }, { "status", evt->status } };

  for (gsize i = 0; i < G_N_ELEMENTS (strings); i++)
    if (strcmp (key, strings[i].name) == 0)
      {
        g_string_truncate (strings[i].into, 0);
        return atk_tap_json_read_string (r, strings[i].into, NULL);
      }
  if (strcmp (key, "live") == 0)
    return atk_tap_json_read_bool (r, &evt->live);
  if (strcmp (key, "is_active") == 0 || strcmp (key, "isActive") == 0)
    return evt->has_active = TRUE, atk_tap_json_read_bool (r, &evt->active);
  if (strcmp (key, "record") == 0)
    {
      g_string_truncate (evt->record, 0);
      atk_tap_json_skip_ws (r);
      if (r->p < r->end && *r->p == 'n')
        return atk_tap_json_read_word (r, "null", NULL);
      if (r->p >= r->end || *r->p != '{')
        return atk_tap_json_fail (r, "\"record\" is not an object");
      return atk_tap_json_copy_value (r, evt->record, 0);
    }
  return atk_tap_json_copy_value (r, NULL, 0);
}

static gboolean
top_member (AtkTapJsonReader *r, const char *key, gpointer data)
{
  TapEvent *evt = data;

  if (strcmp (key, "id") == 0)
    return evt->has_id = TRUE, read_id (r, &evt->id);
  if (strcmp (key, "type") == 0)
    {
      g_string_truncate (evt->type, 0);
      return atk_tap_json_read_string (r, evt->type, NULL);
    }
  if (strcmp (key, "record") == 0 || strcmp (key, "identity") == 0 || strcmp (key, "user") == 0)
    {
      atk_tap_json_skip_ws (r);
      if (r->p < r->end && *r->p == 'n')
        return atk_tap_json_read_word (r, "null", NULL);
      evt->has_body = TRUE;
      return atk_tap_json_read_object (r, body_member, evt);
    }
  return atk_tap_json_copy_value (r, NULL, 0);
}

static gboolean
parse_event (const char *text, gsize len, TapEvent *evt, GError **error)
{
  AtkTapJsonReader r = { text, text + len, error };

  if (!atk_tap_json_read_object (&r, top_member, evt))
    return FALSE;
  atk_tap_json_skip_ws (&r);
  if (r.p != r.end)
    return atk_tap_json_fail (&r, "trailing data after the event");
  if (!evt->has_id)
    return atk_tap_json_fail (&r, "no \"id\"");
  return TRUE;
}

gboolean
atk_tap_event_peek_id (const char *text, gsize len, guint64 *out_id)
{
  /* Not parse_event(): whatever else is wrong with the event must not hide its id, or Tap
   * would deliver it again for ever. */
  return atk_tap_json_peek_uint_member (text, len, "id", out_id);
}

char *
atk_tap_ack_message (guint64 id)
{
  return g_strdup_printf ("{\"type\":\"ack\",\"id\":%" G_GUINT64_FORMAT "}", id);
}

/* ---- times ---- */

/* A TID record key: 13 base32-sortable characters, the top 53 of the 63 bits are
 * microseconds since the Unix epoch. */
static gboolean
tid_time_ms (const char *rkey, gsize len, gint64 *out_ms)
{
  static const char alphabet[] = "234567abcdefghijklmnopqrstuvwxyz";
  guint64 value = 0;

  if (len != 13 || strchr ("234567abcdefghij", rkey[0]) == NULL)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    {
      const char *at = rkey[i] != '\0' ? strchr (alphabet, rkey[i]) : NULL;
      if (at == NULL)
        return FALSE;
      value = value << 5 | (guint64)(at - alphabet);
    }
  *out_ms = (gint64)(value >> 10) / 1000;
  return TRUE;
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ", the shape atproto times usually have. */
static void
append_time_ms (GString *out, gint64 ms)
{
  gint64 sec = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
  char buf[40];
  gsize n = atk_format_rfc3339_utc (sec, buf, sizeof buf);

  if (n > 0 && buf[n - 1] == 'Z')
    n--;
  g_string_append_len (out, buf, n);
  g_string_append_printf (out, ".%03dZ", (int)(ms - sec * 1000));
}

/* Finds a top-level string member of the (compact, valid) record, e.g. createdAt. */
static gboolean
record_string (const GString *record, const char *name, GString *out)
{
  AtkTapJsonReader r = { record->str, record->str + record->len, NULL };
  g_autoptr (GString) key = g_string_new (NULL);

  if (record->len == 0 || !atk_tap_json_expect (&r, '{') || atk_tap_json_expect (&r, '}'))
    return FALSE;
  do
    {
      g_string_truncate (key, 0);
      if (!atk_tap_json_read_string (&r, key, NULL) || !atk_tap_json_expect (&r, ':'))
        return FALSE;
      atk_tap_json_skip_ws (&r);
      if (strcmp (key->str, name) == 0)
        return r.p < r.end && *r.p == '"' && atk_tap_json_read_string (&r, out, NULL);
      if (!atk_tap_json_copy_value (&r, NULL, 0))
        return FALSE;
    }
  while (atk_tap_json_expect (&r, ','));
  return FALSE;
}

/* Tap sends no event time. Like the reference: a post's, repost's or like's createdAt
 * (as written, when it parses), else the time in a TID rkey, else now. The reference
 * leaves deletes without a timestamp; they get the rkey's time too. */
static gint64
record_event_time (const TapEvent *evt, gint64 now_ms, GString *timestamp)
{
  static const char *const created_at_collections[]
      = { "app.bsky.feed.post", "app.bsky.feed.repost", "app.bsky.feed.like" };
  g_autoptr (GString) created_at = g_string_new (NULL);
  gint64 ms;

  for (gsize i = 0; i < G_N_ELEMENTS (created_at_collections); i++)
    if (strcmp (evt->collection->str, created_at_collections[i]) == 0
        && record_string (evt->record, "createdAt", created_at)
        && atk_parse_datetime_ms (created_at->str, created_at->len, &ms))
      {
        g_string_assign (timestamp, created_at->str);
        return ms;
      }
  if (!tid_time_ms (evt->rkey->str, evt->rkey->len, &ms))
    ms = now_ms;
  append_time_ms (timestamp, ms);
  return ms;
}

/* ---- messages ---- */

typedef struct
{
  const AtkTapEventOptions *options;
  const TapEvent *evt;
  const char *timestamp;
  gint64 event_time_ms;
  char send_time[32];
} Context;

static AtkMessage *
message_begin (const Context *ctx, AtkEventKind kind, const char *action_name, guint slot)
{
  AtkMessage *message = atk_message_new ();

  message->key = ctx->evt->did->len > 0 ? g_strdup (ctx->evt->did->str) : g_strdup (UNKNOWN_KEY);
  message->has_seq = TRUE;
  message->seq = (gint64)ctx->evt->id;
  message->kind = kind;
  message->action_name = action_name;
  message->event_time_ms = ctx->event_time_ms;
  /* The Tap id stands in for the firehose seq: the same event keeps its id when Tap
   * redelivers it. `slot` separates the two messages of an identity event. */
  message->action_id = atk_snowflake_for_event (ctx->event_time_ms, message->seq, slot);
  if (ctx->options->osprey)
    {
      APPEND_LITERAL (message->value, "{\"data\":{\"action_name\":");
      atk_json_append_string (message->value, action_name, strlen (action_name));
      g_string_append_printf (message->value,
                              ",\"action_id\":%" G_GINT64_FORMAT ",\"data\":", message->action_id);
    }
  APPEND_LITERAL (message->value, "{\"did\":");
  atk_json_append_string (message->value, ctx->evt->did->str, ctx->evt->did->len);
  APPEND_LITERAL (message->value, ",\"timestamp\":");
  atk_json_append_string (message->value, ctx->timestamp, strlen (ctx->timestamp));
  return message;
}

static void
message_end (const Context *ctx, AtkMessage *message)
{
  APPEND_LITERAL (message->value, ",\"eventMetadata\":null}");
  if (!ctx->options->osprey)
    return;
  APPEND_LITERAL (message->value, ",\"timestamp\":");
  atk_json_append_string (message->value, ctx->timestamp, strlen (ctx->timestamp));
  APPEND_LITERAL (message->value, ",\"secret_data\":{},\"encoding\":\"UTF8\"},\"send_time\":");
  atk_json_append_string (message->value, ctx->send_time, strlen (ctx->send_time));
  g_string_append_c (message->value, '}');
}

static void
append_field (GString *out, const char *name, const GString *value)
{
  g_string_append_printf (out, ",\"%s\":", name);
  atk_json_append_string (out, value->str, value->len);
}

static const char *
record_action_name (const char *action)
{
  if (strcmp (action, "create") == 0)
    return "operation#create";
  if (strcmp (action, "update") == 0)
    return "operation#update";
  if (strcmp (action, "delete") == 0)
    return "operation#delete";
  return NULL;
}

static gboolean
check_record_event (const TapEvent *evt, const char *action_name, GError **error)
{
  const char *missing = NULL;

  if (evt->did->len == 0)
    missing = "did";
  else if (evt->collection->len == 0)
    missing = "collection";
  else if (evt->rkey->len == 0)
    missing = "rkey";
  else if (action_name == NULL)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_FRAME,
                   "Tap event %" G_GUINT64_FORMAT ": unknown record action “%s”", evt->id,
                   evt->action->str);
      return FALSE;
    }
  else if (strcmp (evt->action->str, "delete") != 0 && evt->record->len == 0)
    missing = "record";
  if (missing == NULL)
    return TRUE;
  g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_FRAME,
               "Tap event %" G_GUINT64_FORMAT ": record event without “%s”", evt->id, missing);
  return FALSE;
}

static gboolean
transform_record (Context *ctx, gint64 now_ms, GPtrArray *messages, AtkTapEventResult *result,
                  GError **error)
{
  const TapEvent *evt = ctx->evt;
  const char *action_name = record_action_name (evt->action->str);
  gboolean is_delete = action_name != NULL && strcmp (evt->action->str, "delete") == 0;
  g_autoptr (GString) timestamp = g_string_new (NULL);
  g_autoptr (GString) path = NULL;
  g_autoptr (GString) uri = NULL;
  AtkMessage *message;

  if (!check_record_event (evt, action_name, error))
    return FALSE;
  result->live = evt->live;
  if (ctx->options->filter != NULL
      && !ctx->options->filter (evt->collection->str, ctx->options->filter_data))
    {
      result->filtered = TRUE;
      return TRUE;
    }

  ctx->event_time_ms = record_event_time (evt, now_ms, timestamp);
  ctx->timestamp = timestamp->str;
  path = g_string_new (evt->collection->str);
  g_string_append_c (path, '/');
  g_string_append (path, evt->rkey->str);
  uri = g_string_new ("at://");
  g_string_append_printf (uri, "%s/%s", evt->did->str, path->str);

  message = message_begin (ctx, ATK_EVENT_COMMIT, action_name, 0);
  APPEND_LITERAL (message->value, ",\"operation\":{\"action\":");
  atk_json_append_string (message->value, evt->action->str, evt->action->len);
  append_field (message->value, "collection", evt->collection);
  append_field (message->value, "rkey", evt->rkey);
  append_field (message->value, "uri", uri);
  /* As the reference (and the firehose path): "" and null for deletes. */
  if (is_delete)
    APPEND_LITERAL (message->value, ",\"cid\":\"\"");
  else
    append_field (message->value, "cid", evt->cid);
  append_field (message->value, "path", path);
  APPEND_LITERAL (message->value, ",\"record\":");
  if (is_delete || evt->record->len == 0)
    APPEND_LITERAL (message->value, "null");
  else
    g_string_append_len (message->value, evt->record->str, evt->record->len);
  g_string_append_c (message->value, '}');
  message_end (ctx, message);
  message->collection = g_strdup (evt->collection->str);
  g_ptr_array_add (messages, message);
  result->n_messages = 1;
  return TRUE;
}

static gboolean
transform_identity (Context *ctx, gint64 now_ms, GPtrArray *messages, AtkTapEventResult *result,
                    GError **error)
{
  const TapEvent *evt = ctx->evt;
  g_autoptr (GString) timestamp = g_string_new (NULL);
  g_autoptr (GString) seq = g_string_new (NULL);
  AtkMessage *message;

  if (evt->did->len == 0 || !evt->has_active)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_FRAME,
                   "Tap event %" G_GUINT64_FORMAT ": identity event without “%s”", evt->id,
                   evt->did->len == 0 ? "did" : "is_active");
      return FALSE;
    }
  /* No time on the wire and nothing to derive one from. */
  ctx->event_time_ms = now_ms;
  append_time_ms (timestamp, now_ms);
  ctx->timestamp = timestamp->str;
  g_string_printf (seq, "%" G_GUINT64_FORMAT, evt->id);

  message = message_begin (ctx, ATK_EVENT_IDENTITY, "identity", 0);
  g_string_append_printf (message->value, ",\"identity\":{\"seq\":%s", seq->str);
  append_field (message->value, "handle", evt->handle);
  g_string_append_c (message->value, '}');
  message_end (ctx, message);
  g_ptr_array_add (messages, message);

  message = message_begin (ctx, ATK_EVENT_ACCOUNT, "account", 1);
  g_string_append_printf (message->value, ",\"account\":{\"active\":%s,\"seq\":%s",
                          evt->active ? "true" : "false", seq->str);
  if (evt->status->len > 0)
    append_field (message->value, "status", evt->status);
  g_string_append_c (message->value, '}');
  message_end (ctx, message);
  g_ptr_array_add (messages, message);
  result->n_messages = 2;
  return TRUE;
}

gboolean
atk_tap_event_transform (const char *text, gsize len, const AtkTapEventOptions *options,
                         gint64 now_us, GPtrArray *messages, AtkTapEventResult *result,
                         GError **error)
{
  static const AtkTapEventOptions defaults = { 0 };
  g_auto (TapEvent) evt;
  AtkTapEventResult local_result;
  Context ctx = { 0 };
  gint64 now_ms = now_us / 1000;

  g_return_val_if_fail (text != NULL || len == 0, FALSE);
  g_return_val_if_fail (messages != NULL, FALSE);

  if (result == NULL)
    result = &local_result;
  memset (result, 0, sizeof *result);
  tap_event_init (&evt);
  if (!parse_event (text != NULL ? text : "", len, &evt, error))
    return FALSE;
  result->id = evt.id;

  ctx.options = options != NULL ? options : &defaults;
  ctx.evt = &evt;
  atk_format_rfc3339_utc (now_us >= 0 ? now_us / G_USEC_PER_SEC : now_us / G_USEC_PER_SEC - 1,
                          ctx.send_time, sizeof ctx.send_time);

  if (strcmp (evt.type->str, "record") == 0 && evt.has_body)
    {
      result->kind = ATK_TAP_EVENT_RECORD;
      return transform_record (&ctx, now_ms, messages, result, error);
    }
  if ((strcmp (evt.type->str, "identity") == 0 || strcmp (evt.type->str, "user") == 0)
      && evt.has_body)
    {
      result->kind = ATK_TAP_EVENT_IDENTITY;
      return transform_identity (&ctx, now_ms, messages, result, error);
    }
  if (evt.type->len > 0 && strcmp (evt.type->str, "record") != 0
      && strcmp (evt.type->str, "identity") != 0 && strcmp (evt.type->str, "user") != 0)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_UNSUPPORTED,
                   "Tap event %" G_GUINT64_FORMAT ": unknown type “%s”", evt.id, evt.type->str);
      return FALSE;
    }
  g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_FRAME,
               "Tap event %" G_GUINT64_FORMAT ": no type or no event body", evt.id);
  return FALSE;
}
