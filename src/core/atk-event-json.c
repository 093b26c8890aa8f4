/* at-kafka: the standard event shapes (operation, account, identity, sync, info) as JSON.
 *
 * Pure: a decoded frame (and an op with its checked record block) in, JSON appended to a
 * GString out. The transformer decides which event to write and wraps it (Osprey).
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-core"

#include "atk-event-json.h"

#include <string.h>

#include "atk-cbor-json.h"
#include "atk-json-out.h"

#define APPEND_LITERAL ATK_OUT_LITERAL

static void
append_str (GString *out, AtkStr s)
{
  atk_json_append_string (out, s.ptr, s.len);
}

/* Writes {"did":…,"timestamp":…, — the start every standard event shares. */
static void
append_event_head (GString *out, const AtkFrame *frame)
{
  APPEND_LITERAL (out, "{\"did\":");
  append_str (out, frame->did);
  APPEND_LITERAL (out, ",\"timestamp\":");
  append_str (out, frame->time);
}

static void
append_event_tail (GString *out)
{
  APPEND_LITERAL (out, ",\"eventMetadata\":null}");
}

/* Appends text escaped for JSON but without the quotes, to join several parts (the uri)
 * inside one JSON string. */
static void
append_string_body (GString *out, AtkStr s)
{
  gsize at = out->len;

  atk_json_append_string (out, s.ptr, s.len);
  memmove (out->str + at, out->str + at + 1, out->len - at - 2);
  g_string_truncate (out, out->len - 2);
}

/* The standard operation event. `block` is the record's checked block, NULL for deletes
 * and for records that cannot be rendered (then `record_error` says why). FALSE when the
 * record does not render: out is then left partly written and *error set; the caller
 * either drops the message or writes it again with the error. */
gboolean
atk_event_json_append_operation (GString *out, const AtkFrame *frame, const AtkRepoOp *op,
                                 const AtkCarBlock *block, const char *record_error, GError **error)
{
  append_event_head (out, frame);
  APPEND_LITERAL (out, ",\"operation\":{\"action\":\"");
  {
    const char *action = atk_op_action_name (op->action);
    atk_out_append (out, action, strlen (action));
  }
  APPEND_LITERAL (out, "\",\"collection\":");
  append_str (out, op->collection);
  APPEND_LITERAL (out, ",\"rkey\":");
  append_str (out, op->rkey);
  APPEND_LITERAL (out, ",\"uri\":\"at://");
  append_string_body (out, frame->did);
  atk_out_append_c (out, '/');
  append_string_body (out, op->path);
  APPEND_LITERAL (out, "\",\"cid\":\"");
  /* Like the reference: the CID only for records we wrote, "" for deletes; a record that
   * cannot be rendered still has the CID its commit gives it. */
  if (block != NULL || (record_error != NULL && op->has_cid))
    atk_cid_append_string (&op->cid, out);
  APPEND_LITERAL (out, "\",\"path\":");
  append_str (out, op->path);
  APPEND_LITERAL (out, ",\"record\":");
  if (block == NULL)
    APPEND_LITERAL (out, "null");
  else if (!atk_cbor_json_write_record (block->data, block->len, out, error))
    return FALSE;
  if (record_error != NULL)
    {
      APPEND_LITERAL (out, ",\"recordError\":\"");
      g_string_append (out, record_error);
      atk_out_append_c (out, '"');
    }
  atk_out_append_c (out, '}');
  append_event_tail (out);
  return TRUE;
}

void
atk_event_json_append_account (GString *out, const AtkFrame *frame)
{
  append_event_head (out, frame);
  if (frame->active)
    APPEND_LITERAL (out, ",\"account\":{\"active\":true,\"seq\":");
  else
    APPEND_LITERAL (out, ",\"account\":{\"active\":false,\"seq\":");
  atk_out_append_int (out, frame->seq);
  if (frame->has_status)
    {
      APPEND_LITERAL (out, ",\"status\":");
      append_str (out, frame->status);
    }
  atk_out_append_c (out, '}');
  append_event_tail (out);
}

void
atk_event_json_append_identity (GString *out, const AtkFrame *frame)
{
  append_event_head (out, frame);
  APPEND_LITERAL (out, ",\"identity\":{\"seq\":");
  atk_out_append_int (out, frame->seq);
  APPEND_LITERAL (out, ",\"handle\":");
  if (frame->has_handle)
    append_str (out, frame->handle);
  else
    APPEND_LITERAL (out, "\"\"");
  atk_out_append_c (out, '}');
  append_event_tail (out);
}

void
atk_event_json_append_sync (GString *out, const AtkFrame *frame)
{
  append_event_head (out, frame);
  APPEND_LITERAL (out, ",\"sync\":{\"seq\":");
  atk_out_append_int (out, frame->seq);
  APPEND_LITERAL (out, ",\"rev\":");
  append_str (out, frame->rev);
  atk_out_append_c (out, '}');
  append_event_tail (out);
}

void
atk_event_json_append_info (GString *out, const AtkFrame *frame)
{
  APPEND_LITERAL (out, "{\"did\":\"\",\"timestamp\":\"\",\"info\":{\"name\":");
  append_str (out, frame->name);
  if (frame->has_message)
    {
      APPEND_LITERAL (out, ",\"message\":");
      append_str (out, frame->message);
    }
  atk_out_append_c (out, '}');
  append_event_tail (out);
}
