/* at-kafka: the Jetstream v1 event shape.
 *
 * Members are written in the order production Jetstream writes them; records go through
 * the same DAG-CBOR → atproto JSON writer as the standard shape.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-jetstream"

#include "atk-jetstream.h"

#include <string.h>

#include "atk-cbor-json.h"

#define APPEND_LITERAL(out, lit) g_string_append_len ((out), (lit), sizeof (lit) - 1)

gboolean
atk_payload_format_from_string (const char *text, AtkPayloadFormat *out)
{
  if (g_strcmp0 (text, "standard") == 0)
    *out = ATK_PAYLOAD_STANDARD;
  else if (g_strcmp0 (text, "jetstream") == 0)
    *out = ATK_PAYLOAD_JETSTREAM;
  else
    return FALSE;
  return TRUE;
}

const char *
atk_payload_format_to_string (AtkPayloadFormat format)
{
  return format == ATK_PAYLOAD_JETSTREAM ? "jetstream" : "standard";
}

static void
append_str (GString *out, AtkStr s)
{
  atk_json_append_string (out, s.ptr, s.len);
}

static void
append_head (GString *out, AtkStr did, gint64 time_us, const char *kind)
{
  APPEND_LITERAL (out, "{\"did\":");
  append_str (out, did);
  g_string_append_printf (out, ",\"time_us\":%" G_GINT64_FORMAT ",\"kind\":\"%s\",\"%s\":{",
                          time_us, kind, kind);
}

gboolean
atk_jetstream_append_commit (GString *out, const AtkFrame *frame, const AtkRepoOp *op,
                             const AtkCarBlock *block, gint64 time_us, GError **error)
{
  gsize start = out->len;

  append_head (out, frame->did, time_us, "commit");
  APPEND_LITERAL (out, "\"rev\":");
  append_str (out, frame->rev);
  APPEND_LITERAL (out, ",\"operation\":\"");
  g_string_append (out, atk_op_action_name (op->action));
  APPEND_LITERAL (out, "\",\"collection\":");
  append_str (out, op->collection);
  APPEND_LITERAL (out, ",\"rkey\":");
  append_str (out, op->rkey);
  /* Jetstream leaves both out of deletes. */
  if (block != NULL)
    {
      APPEND_LITERAL (out, ",\"record\":");
      if (!atk_cbor_json_write_record (block->data, block->len, out, error))
        {
          g_string_truncate (out, start);
          return FALSE;
        }
      APPEND_LITERAL (out, ",\"cid\":\"");
      atk_cid_append_string (&op->cid, out);
      g_string_append_c (out, '"');
    }
  APPEND_LITERAL (out, "}}");
  return TRUE;
}

static void
append_seq_time (GString *out, const AtkFrame *frame)
{
  g_string_append_printf (out, ",\"seq\":%" G_GINT64_FORMAT ",\"time\":", frame->seq);
  append_str (out, frame->time);
}

void
atk_jetstream_append_event (GString *out, const AtkFrame *frame, gint64 time_us)
{
  switch (frame->kind)
    {
    case ATK_EVENT_IDENTITY:
      append_head (out, frame->did, time_us, "identity");
      APPEND_LITERAL (out, "\"did\":");
      append_str (out, frame->did);
      if (frame->has_handle)
        {
          APPEND_LITERAL (out, ",\"handle\":");
          append_str (out, frame->handle);
        }
      append_seq_time (out, frame);
      break;
    case ATK_EVENT_ACCOUNT:
      append_head (out, frame->did, time_us, "account");
      if (frame->active)
        APPEND_LITERAL (out, "\"active\":true,\"did\":");
      else
        APPEND_LITERAL (out, "\"active\":false,\"did\":");
      append_str (out, frame->did);
      append_seq_time (out, frame);
      if (frame->has_status)
        {
          APPEND_LITERAL (out, ",\"status\":");
          append_str (out, frame->status);
        }
      break;
    case ATK_EVENT_SYNC:
      append_head (out, frame->did, time_us, "sync");
      APPEND_LITERAL (out, "\"did\":");
      append_str (out, frame->did);
      APPEND_LITERAL (out, ",\"rev\":");
      append_str (out, frame->rev);
      append_seq_time (out, frame);
      break;
    case ATK_EVENT_INFO:
    default:
      append_head (out, frame->did, time_us, "info");
      APPEND_LITERAL (out, "\"name\":");
      append_str (out, frame->name);
      if (frame->has_message)
        {
          APPEND_LITERAL (out, ",\"message\":");
          append_str (out, frame->message);
        }
      break;
    }
  APPEND_LITERAL (out, "}}");
}

/* Osprey's example Jetstream input plugin (example_atproto_plugins) names these. */
static const struct
{
  const char *nsid;
  const char *name;
} short_names[] = {
  { "app.bsky.feed.post", "post" },        { "app.bsky.feed.like", "like" },
  { "app.bsky.feed.repost", "repost" },    { "app.bsky.graph.follow", "follow" },
  { "app.bsky.actor.profile", "profile" },
};

void
atk_jetstream_append_op_action_name (GString *out, const AtkRepoOp *op)
{
  g_autoptr (GString) name = g_string_new (atk_op_action_name (op->action));

  g_string_append_c (name, '_');
  for (gsize i = 0; i < G_N_ELEMENTS (short_names); i++)
    if (op->collection.len == strlen (short_names[i].nsid)
        && memcmp (op->collection.ptr, short_names[i].nsid, op->collection.len) == 0)
      {
        g_string_append (name, short_names[i].name);
        atk_json_append_string (out, name->str, name->len);
        return;
      }
  g_string_append_len (name, op->collection.ptr, op->collection.len);
  atk_json_append_string (out, name->str, name->len);
}
