/* at-kafka: one subscribeRepos WebSocket message (header + body) decoded into views.
 *
 * Pure: no allocation, no I/O. Every AtkStr and pointer in an AtkFrame points into the
 * frame buffer passed to atk_frame_decode(), which must outlive the AtkFrame.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

#include "atk-cbor.h"
#include "atk-cid.h"

G_BEGIN_DECLS

#define ATK_FRAME_MAX_OPS 200 /* the lexicon's limit on ops per commit */
/* The largest seq a frame may carry (2^53, JSON's safe integers); a seq outside
 * 0..ATK_FRAME_MAX_SEQ is ATK_ERROR_BAD_FRAME, for every kind of event. */
#define ATK_FRAME_MAX_SEQ G_GINT64_CONSTANT (9007199254740992)

typedef enum
{
  ATK_EVENT_UNKNOWN, /* op 1 with a type we do not know: skip and count */
  ATK_EVENT_COMMIT,
  ATK_EVENT_SYNC,
  ATK_EVENT_IDENTITY,
  ATK_EVENT_ACCOUNT,
  ATK_EVENT_INFO,
  ATK_EVENT_ERROR, /* op -1: body {error, message?} */
} AtkEventKind;

typedef enum
{
  ATK_OP_CREATE,
  ATK_OP_UPDATE,
  ATK_OP_DELETE,
} AtkOpAction;

typedef struct
{
  AtkOpAction action;
  AtkStr path;       /* "collection/rkey" */
  AtkStr collection; /* the half of path before the first '/' */
  AtkStr rkey;       /* the rest */
  gboolean has_cid;  /* FALSE for delete (null cid) */
  AtkCid cid;
} AtkRepoOp;

typedef struct
{
  AtkEventKind kind;
  AtkStr type; /* header "t", e.g. "#commit"; empty for errors */

  gboolean has_seq;
  gint64 seq;
  AtkStr did;  /* "repo" for #commit, "did" for the others */
  AtkStr time; /* as sent */
  AtkStr rev;

  /* #commit */
  AtkCid commit;
  const guint8 *blocks; /* CAR v1 bytes (#commit, #sync) */
  gsize blocks_len;
  guint n_ops;
  AtkRepoOp ops[ATK_FRAME_MAX_OPS];

  /* #identity */
  gboolean has_handle;
  AtkStr handle;

  /* #account */
  gboolean active;
  gboolean has_status;
  AtkStr status;

  /* #info and error frames */
  AtkStr name; /* #info name, or the error frame's "error" */
  gboolean has_message;
  AtkStr message;
} AtkFrame;

/* Decodes header and body. Unknown body fields are skipped (validated); required fields
 * missing or of the wrong type are ATK_ERROR_BAD_FRAME, and so is an integer seq outside
 * 0..ATK_FRAME_MAX_SEQ. An unknown `t` is not an error: kind is ATK_EVENT_UNKNOWN and only
 * `type` (and seq if present) are set. */
gboolean atk_frame_decode (const guint8 *data, gsize len, AtkFrame *frame, GError **error);

const char *atk_event_kind_name (AtkEventKind kind); /* "commit", "sync", … */
const char *atk_op_action_name (AtkOpAction action); /* "create", "update", "delete" */

/* Reads a file of [u32 little-endian length][frame] records (the test-vector format).
 * Returns FALSE at the clean end; a truncated record is ATK_ERROR_TRUNCATED. */
typedef struct
{
  const guint8 *pos;
  const guint8 *end;
} AtkFrameFileReader;

void atk_frame_file_reader_init (AtkFrameFileReader *reader, const guint8 *data, gsize len);
gboolean atk_frame_file_reader_next (AtkFrameFileReader *reader, const guint8 **frame,
                                     gsize *frame_len, GError **error);

G_END_DECLS
