/* One subscribeRepos message: a header map ({op, t}) and a body map, back to back.
 * Everything decoded is a view into the caller's buffer; nothing is allocated.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-core"

#include "atk-frame.h"

#include <stdarg.h>
#include <stddef.h>

#include "atk-error.h"

/* The lexicon's limit on a commit's CAR; #sync CARs are small but we do not police them. */
#define COMMIT_BLOCKS_MAX 2000000

static gboolean G_GNUC_PRINTF (2, 3) bad_frame (GError **error, const char *format, ...)
{
  va_list args;

  va_start (args, format);
  g_propagate_error (error, g_error_new_valist (ATK_ERROR, ATK_ERROR_BAD_FRAME, format, args));
  va_end (args);
  return FALSE;
}

/* ---- typed field readers: a wrong type is a framing error, not a CBOR one ------------- */

static gboolean
expect_major (AtkCborReader *r, AtkCborMajor want, const char *name, GError **error)
{
  AtkCborMajor major;

  if (!atk_cbor_peek_major (r, &major, error))
    return FALSE;
  if (major != want)
    return bad_frame (error, "field \"%s\" has the wrong type", name);
  return TRUE;
}

static gboolean
field_text (AtkCborReader *r, const char *name, AtkStr *out, GError **error)
{
  return expect_major (r, ATK_CBOR_TEXT, name, error) && atk_cbor_read_text (r, out, error);
}

/* Optional text: null means absent. */
static gboolean
field_text_or_null (AtkCborReader *r, const char *name, gboolean *present, AtkStr *out,
                    GError **error)
{
  if (atk_cbor_try_null (r))
    {
      *present = FALSE;
      return TRUE;
    }
  *present = TRUE;
  return field_text (r, name, out, error);
}

static gboolean
field_int (AtkCborReader *r, const char *name, gint64 *out, GError **error)
{
  AtkCborMajor major;

  if (!atk_cbor_peek_major (r, &major, error))
    return FALSE;
  if (major != ATK_CBOR_UINT && major != ATK_CBOR_NEGINT)
    return bad_frame (error, "field \"%s\" is not an integer", name);
  return atk_cbor_read_int (r, out, error);
}

static gboolean
field_bool (AtkCborReader *r, const char *name, gboolean *out, GError **error)
{
  if (!expect_major (r, ATK_CBOR_SIMPLE, name, error))
    return FALSE;
  if (r->pos[0] != 0xf4 && r->pos[0] != 0xf5)
    return bad_frame (error, "field \"%s\" is not a boolean", name);
  return atk_cbor_read_bool (r, out, error);
}

static gboolean
field_link (AtkCborReader *r, const char *name, AtkCid *cid, GError **error)
{
  const guint8 *bytes;
  gsize len;

  if (!expect_major (r, ATK_CBOR_TAG, name, error))
    return FALSE;
  return atk_cbor_read_link (r, &bytes, &len, error) && atk_cid_parse (bytes, len, cid, error);
}

/* ---- maps ------------------------------------------------------------------------------ */

/* Handles one field; must consume its value (skipping what it does not know). */
typedef gboolean (*FieldFunc) (AtkCborReader *r, AtkStr key, gpointer data, guint *seen,
                               GError **error);

/* Reads a map, enforcing DAG-CBOR key rules, handing each field to func. */
static gboolean
read_map (AtkCborReader *r, const char *what, FieldFunc func, gpointer data, guint *seen,
          GError **error)
{
  AtkStr prev = { NULL, 0 };
  guint64 n;

  if (!expect_major (r, ATK_CBOR_MAP, what, error) || !atk_cbor_read_map_len (r, &n, error))
    return FALSE;
  for (guint64 i = 0; i < n; i++)
    {
      AtkStr key;

      if (!expect_major (r, ATK_CBOR_TEXT, "map key", error)
          || !atk_cbor_read_text (r, &key, error))
        return FALSE;
      if (prev.ptr != NULL && atk_cbor_key_compare (prev.ptr, prev.len, key.ptr, key.len) >= 0)
        {
          g_set_error_literal (error, ATK_ERROR, ATK_ERROR_BAD_CBOR,
                               "map keys out of canonical order or duplicated");
          return FALSE;
        }
      prev = key;
      if (!func (r, key, data, seen, error))
        {
          g_prefix_error (error, "%.*s: ", (int)MIN (key.len, 64), key.ptr);
          return FALSE;
        }
    }
  return TRUE;
}

enum
{
  SEEN_SEQ = 1 << 0,
  SEEN_DID = 1 << 1,
  SEEN_TIME = 1 << 2,
  SEEN_REV = 1 << 3,
  SEEN_COMMIT = 1 << 4,
  SEEN_BLOCKS = 1 << 5,
  SEEN_OPS = 1 << 6,
  SEEN_ACTIVE = 1 << 7,
  SEEN_NAME = 1 << 8,
  SEEN_ACTION = 1 << 9,
  SEEN_PATH = 1 << 10,
  SEEN_CID = 1 << 11,
  SEEN_OP = 1 << 12,
  SEEN_TYPE = 1 << 13,
};

/* ---- repo ops -------------------------------------------------------------------------- */

static gboolean
op_field (AtkCborReader *r, AtkStr key, gpointer data, guint *seen, GError **error)
{
  AtkRepoOp *op = data;

  if (atk_str_equal (key, "action"))
    {
      AtkStr action;
      if (!field_text (r, "action", &action, error))
        return FALSE;
      if (atk_str_equal (action, "create"))
        op->action = ATK_OP_CREATE;
      else if (atk_str_equal (action, "update"))
        op->action = ATK_OP_UPDATE;
      else if (atk_str_equal (action, "delete"))
        op->action = ATK_OP_DELETE;
      else
        return bad_frame (error, "unknown op action");
      *seen |= SEEN_ACTION;
      return TRUE;
    }
  if (atk_str_equal (key, "path"))
    {
      const char *slash;
      if (!field_text (r, "path", &op->path, error))
        return FALSE;
      slash = memchr (op->path.ptr, '/', op->path.len);
      if (slash == NULL || slash == op->path.ptr || slash == op->path.ptr + op->path.len - 1)
        return bad_frame (error, "op path is not collection/rkey");
      op->collection = (AtkStr){ op->path.ptr, (gsize)(slash - op->path.ptr) };
      op->rkey = (AtkStr){ slash + 1, op->path.len - op->collection.len - 1 };
      *seen |= SEEN_PATH;
      return TRUE;
    }
  if (atk_str_equal (key, "cid"))
    {
      *seen |= SEEN_CID;
      op->has_cid = !atk_cbor_try_null (r);
      return !op->has_cid || field_link (r, "cid", &op->cid, error);
    }
  /* "prev" and anything newer: validated, not kept. */
  return atk_cbor_skip (r, error);
}

static gboolean
read_ops (AtkCborReader *r, AtkFrame *frame, GError **error)
{
  guint64 n;

  if (!expect_major (r, ATK_CBOR_ARRAY, "ops", error) || !atk_cbor_read_array_len (r, &n, error))
    return FALSE;
  if (n > ATK_FRAME_MAX_OPS)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_TOO_LARGE, "%" G_GUINT64_FORMAT " ops in a commit",
                   n);
      return FALSE;
    }
  for (guint i = 0; i < n; i++)
    {
      AtkRepoOp *op = &frame->ops[i];
      guint seen = 0;

      memset (op, 0, sizeof *op);
      if (!read_map (r, "op", op_field, op, &seen, error))
        {
          g_prefix_error (error, "op %u: ", i);
          return FALSE;
        }
      if ((seen & (SEEN_ACTION | SEEN_PATH | SEEN_CID)) != (SEEN_ACTION | SEEN_PATH | SEEN_CID))
        return bad_frame (error, "op lacks action, path or cid");
      if (op->action != ATK_OP_DELETE && !op->has_cid)
        return bad_frame (error, "%s op without a cid", atk_op_action_name (op->action));
    }
  frame->n_ops = (guint)n;
  return TRUE;
}

/* ---- bodies ---------------------------------------------------------------------------- */

/* The fields shared by the event bodies, and each kind's own. Which keys a kind knows is
 * decided here; anything else is skipped (and so validated). */
static gboolean
body_field (AtkCborReader *r, AtkStr key, gpointer data, guint *seen, GError **error)
{
  AtkFrame *frame = data;
  AtkEventKind kind = frame->kind;
  gboolean commit = kind == ATK_EVENT_COMMIT;
  gboolean has_did
      = kind == ATK_EVENT_SYNC || kind == ATK_EVENT_IDENTITY || kind == ATK_EVENT_ACCOUNT;

  if (kind != ATK_EVENT_INFO && kind != ATK_EVENT_ERROR && atk_str_equal (key, "seq"))
    {
      AtkCborMajor major;

      /* Unknown kinds keep a seq only if it is an integer; they must not fail on it. */
      if (!atk_cbor_peek_major (r, &major, error))
        return FALSE;
      if (kind == ATK_EVENT_UNKNOWN && major != ATK_CBOR_UINT && major != ATK_CBOR_NEGINT)
        return atk_cbor_skip (r, error);
      *seen |= SEEN_SEQ;
      frame->has_seq = TRUE;
      if (!field_int (r, "seq", &frame->seq, error))
        return FALSE;
      /* A cursor is a JSON-safe non-negative integer: anything else would poison it. */
      if (frame->seq < 0 || frame->seq > ATK_FRAME_MAX_SEQ)
        return bad_frame (error, "seq %" G_GINT64_FORMAT " is outside 0..2^53", frame->seq);
      return TRUE;
    }
  if ((commit && atk_str_equal (key, "repo")) || (has_did && atk_str_equal (key, "did")))
    {
      *seen |= SEEN_DID;
      return field_text (r, "did", &frame->did, error);
    }
  if ((commit || has_did) && atk_str_equal (key, "time"))
    {
      *seen |= SEEN_TIME;
      return field_text (r, "time", &frame->time, error);
    }
  if ((commit || kind == ATK_EVENT_SYNC) && atk_str_equal (key, "rev"))
    {
      *seen |= SEEN_REV;
      return field_text (r, "rev", &frame->rev, error);
    }
  if ((commit || kind == ATK_EVENT_SYNC) && atk_str_equal (key, "blocks"))
    {
      *seen |= SEEN_BLOCKS;
      if (!expect_major (r, ATK_CBOR_BYTES, "blocks", error)
          || !atk_cbor_read_bytes (r, &frame->blocks, &frame->blocks_len, error))
        return FALSE;
      if (commit && frame->blocks_len > COMMIT_BLOCKS_MAX)
        {
          g_set_error (error, ATK_ERROR, ATK_ERROR_TOO_LARGE,
                       "commit blocks of %" G_GSIZE_FORMAT " bytes", frame->blocks_len);
          return FALSE;
        }
      return TRUE;
    }
  if (commit && atk_str_equal (key, "commit"))
    {
      *seen |= SEEN_COMMIT;
      return field_link (r, "commit", &frame->commit, error);
    }
  if (commit && atk_str_equal (key, "ops"))
    {
      *seen |= SEEN_OPS;
      return read_ops (r, frame, error);
    }
  if (commit && atk_str_equal (key, "since"))
    {
      gboolean present;
      AtkStr since;
      return field_text_or_null (r, "since", &present, &since, error);
    }
  if (kind == ATK_EVENT_IDENTITY && atk_str_equal (key, "handle"))
    return field_text_or_null (r, "handle", &frame->has_handle, &frame->handle, error);
  if (kind == ATK_EVENT_ACCOUNT && atk_str_equal (key, "active"))
    {
      *seen |= SEEN_ACTIVE;
      return field_bool (r, "active", &frame->active, error);
    }
  if (kind == ATK_EVENT_ACCOUNT && atk_str_equal (key, "status"))
    return field_text_or_null (r, "status", &frame->has_status, &frame->status, error);
  if ((kind == ATK_EVENT_INFO && atk_str_equal (key, "name"))
      || (kind == ATK_EVENT_ERROR && atk_str_equal (key, "error")))
    {
      *seen |= SEEN_NAME;
      return field_text (r, "name", &frame->name, error);
    }
  if ((kind == ATK_EVENT_INFO || kind == ATK_EVENT_ERROR) && atk_str_equal (key, "message"))
    return field_text_or_null (r, "message", &frame->has_message, &frame->message, error);

  return atk_cbor_skip (r, error);
}

static guint
required_fields (AtkEventKind kind)
{
  switch (kind)
    {
    case ATK_EVENT_COMMIT:
      return SEEN_SEQ | SEEN_DID | SEEN_TIME | SEEN_REV | SEEN_COMMIT | SEEN_BLOCKS | SEEN_OPS;
    case ATK_EVENT_SYNC:
      return SEEN_SEQ | SEEN_DID | SEEN_TIME | SEEN_REV | SEEN_BLOCKS;
    case ATK_EVENT_IDENTITY:
      return SEEN_SEQ | SEEN_DID | SEEN_TIME;
    case ATK_EVENT_ACCOUNT:
      return SEEN_SEQ | SEEN_DID | SEEN_TIME | SEEN_ACTIVE;
    case ATK_EVENT_INFO:
    case ATK_EVENT_ERROR:
      return SEEN_NAME;
    case ATK_EVENT_UNKNOWN:
    default:
      return 0;
    }
}

/* ---- header ---------------------------------------------------------------------------- */

typedef struct
{
  gint64 op;
  AtkStr t;
} Header;

static gboolean
header_field (AtkCborReader *r, AtkStr key, gpointer data, guint *seen, GError **error)
{
  Header *h = data;

  if (atk_str_equal (key, "op"))
    {
      *seen |= SEEN_OP;
      return field_int (r, "op", &h->op, error);
    }
  if (atk_str_equal (key, "t"))
    {
      *seen |= SEEN_TYPE;
      return field_text (r, "t", &h->t, error);
    }
  return atk_cbor_skip (r, error);
}

static AtkEventKind
kind_from_type (AtkStr t)
{
  static const struct
  {
    const char *name;
    AtkEventKind kind;
  } kinds[] = {
    { "#commit", ATK_EVENT_COMMIT },     { "#sync", ATK_EVENT_SYNC },
    { "#identity", ATK_EVENT_IDENTITY }, { "#account", ATK_EVENT_ACCOUNT },
    { "#info", ATK_EVENT_INFO },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (kinds); i++)
    if (atk_str_equal (t, kinds[i].name))
      return kinds[i].kind;
  return ATK_EVENT_UNKNOWN;
}

static void
frame_reset (AtkFrame *frame)
{
  /* Everything but the (large) ops array, which n_ops guards. */
  memset (frame, 0, offsetof (AtkFrame, ops));
  memset (&frame->has_handle, 0, sizeof *frame - offsetof (AtkFrame, has_handle));
}

gboolean
atk_frame_decode (const guint8 *data, gsize len, AtkFrame *frame, GError **error)
{
  AtkCborReader r;
  Header header = { 0, { "", 0 } };
  guint seen = 0, required;

  frame_reset (frame);
  frame->type = (AtkStr){ "", 0 };
  atk_cbor_reader_init (&r, data, len);

  if (!read_map (&r, "header", header_field, &header, &seen, error))
    {
      g_prefix_error (error, "frame header: ");
      return FALSE;
    }
  if (!(seen & SEEN_OP))
    return bad_frame (error, "frame header without %s", "op");
  if (header.op == -1)
    frame->kind = ATK_EVENT_ERROR;
  else if (header.op == 1)
    {
      if (!(seen & SEEN_TYPE))
        return bad_frame (error, "frame header without %s", "t");
      frame->type = header.t;
      frame->kind = kind_from_type (header.t);
    }
  else
    return bad_frame (error, "unknown frame op %" G_GINT64_FORMAT, header.op);

  seen = 0;
  if (!read_map (&r, "body", body_field, frame, &seen, error))
    {
      g_prefix_error (error, "%s body: ", atk_event_kind_name (frame->kind));
      return FALSE;
    }
  required = required_fields (frame->kind);
  if ((seen & required) != required)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_FRAME, "%s body lacks required fields",
                   atk_event_kind_name (frame->kind));
      return FALSE;
    }
  if (atk_cbor_reader_remaining (&r) != 0)
    return bad_frame (error, "trailing bytes after the %s body", atk_event_kind_name (frame->kind));
  return TRUE;
}

const char *
atk_event_kind_name (AtkEventKind kind)
{
  switch (kind)
    {
    case ATK_EVENT_COMMIT:
      return "commit";
    case ATK_EVENT_SYNC:
      return "sync";
    case ATK_EVENT_IDENTITY:
      return "identity";
    case ATK_EVENT_ACCOUNT:
      return "account";
    case ATK_EVENT_INFO:
      return "info";
    case ATK_EVENT_ERROR:
      return "error";
    case ATK_EVENT_UNKNOWN:
    default:
      return "unknown";
    }
}

const char *
atk_op_action_name (AtkOpAction action)
{
  switch (action)
    {
    case ATK_OP_CREATE:
      return "create";
    case ATK_OP_UPDATE:
      return "update";
    case ATK_OP_DELETE:
    default:
      return "delete";
    }
}

void
atk_frame_file_reader_init (AtkFrameFileReader *reader, const guint8 *data, gsize len)
{
  reader->pos = data;
  /* An empty mapped file has no data at all: NULL + 0 is undefined behaviour. */
  reader->end = data != NULL ? data + len : data;
}

gboolean
atk_frame_file_reader_next (AtkFrameFileReader *reader, const guint8 **frame, gsize *frame_len,
                            GError **error)
{
  gsize avail = (gsize)(reader->end - reader->pos);
  guint32 n;

  if (avail == 0)
    return FALSE;
  if (avail < 4)
    {
      g_set_error_literal (error, ATK_ERROR, ATK_ERROR_TRUNCATED,
                           "frame file ends inside a length");
      return FALSE;
    }
  n = (guint32)reader->pos[0] | (guint32)reader->pos[1] << 8 | (guint32)reader->pos[2] << 16
      | (guint32)reader->pos[3] << 24;
  if (n > avail - 4)
    {
      g_set_error_literal (error, ATK_ERROR, ATK_ERROR_TRUNCATED, "frame file ends inside a frame");
      return FALSE;
    }
  *frame = reader->pos + 4;
  *frame_len = n;
  reader->pos += 4 + n;
  return TRUE;
}
