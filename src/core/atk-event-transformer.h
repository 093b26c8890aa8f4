/* at-kafka: firehose frames in, output messages out (standard or Osprey shape, filtered).
 *
 * Pure: no I/O and no clock of its own (the caller passes "now"), so the file path
 * (--input/--stdout), the live daemon, the tests and the fuzzers run the same code.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib-object.h>

#include "atk-frame.h"
#include "atk-jetstream.h" /* AtkPayloadFormat */
#include "atk-message.h"
#include "atk-time.h" /* atk_snowflake_for_event, atk_parse_datetime_ms */

G_BEGIN_DECLS

#define ATK_TYPE_EVENT_TRANSFORMER (atk_event_transformer_get_type ())
G_DECLARE_FINAL_TYPE (AtkEventTransformer, atk_event_transformer, ATK, EVENT_TRANSFORMER, GObject)

/* How many ops of one frame failed with one kind of error. */
typedef struct
{
  const char *kind; /* atk_error_kind_name(): "cid_mismatch", "missing_block", … (static) */
  guint count;
} AtkOpErrorCount;

/* Distinct kinds an op error can have (every AtkError code fits). */
#define ATK_TRANSFORM_MAX_OP_ERROR_KINDS 16

/* What one frame turned into, beyond the messages themselves. */
typedef struct
{
  const AtkFrame *frame; /* the decoded frame; valid until the next transform */
  guint n_messages;      /* messages appended */
  guint n_filtered;      /* ops dropped by collection filters */
  /* Ops whose record could not be rendered (missing block, CID mismatch, bad CBOR…): each
   * was produced with "record":null and "recordError":"<kind>", or skipped when
   * skip_unrenderable_records is set (then ops_skipped is TRUE). */
  guint n_op_errors;
  gboolean ops_skipped;
  AtkOpErrorCount op_error_kinds[ATK_TRANSFORM_MAX_OP_ERROR_KINDS]; /* n_op_errors by kind */
  guint n_op_error_kinds;
  GError *op_error; /* the first op error, for logging; owned, see clear() */
} AtkTransformResult;

void atk_transform_result_clear (AtkTransformResult *result);

AtkEventTransformer *atk_event_transformer_new (void);

void atk_event_transformer_set_osprey_compatible (AtkEventTransformer *self, gboolean osprey);
gboolean atk_event_transformer_get_osprey_compatible (AtkEventTransformer *self);

/* Default FALSE: an op whose record cannot be rendered is still produced, with
 * "record":null and "recordError":"<kind>". TRUE skips it, as the reference does
 * (the Jetstream payload format always skips them). */
void atk_event_transformer_set_skip_unrenderable_records (AtkEventTransformer *self, gboolean skip);

/* The event inside each message: the standard shape (default) or Jetstream v1's, whose
 * time_us is now_us of the transform (when at-kafka saw the event) and which has no
 * eventMetadata slot (metadata_offset 0). */
void atk_event_transformer_set_payload_format (AtkEventTransformer *self, AtkPayloadFormat format);
AtkPayloadFormat atk_event_transformer_get_payload_format (AtkEventTransformer *self);

/* NULL-terminated NSID lists; "app.bsky.*" means app.bsky itself or anything under it.
 * Both non-empty is ATK_ERROR_BAD_CONFIG. As in the reference, a plain "app.bsky.feed"
 * also covers "app.bsky.feed.*"; a lone "*" matches all; any other '*' is BAD_CONFIG;
 * blank entries are ignored. Only commit ops are filtered. */
gboolean atk_event_transformer_set_collection_filter (AtkEventTransformer *self,
                                                      const char *const *watched,
                                                      const char *const *ignored, GError **error);

/* The collection filter's verdict for one NSID (Tap mode filters with it too). */
gboolean atk_event_transformer_collection_wanted (AtkEventTransformer *self,
                                                  const char *collection);

/* Turns one frame into zero or more messages appended to `messages` (AtkMessage*, the
 * array should free with atk_message_free). now_us is the wall clock (Unix µs) used for
 * Osprey's send_time. Returns FALSE only when the frame itself is unusable (not a
 * frame, required field missing); unknown types and error frames return TRUE with no
 * messages and result->frame->kind telling what it was.
 * `result` must start zeroed ({ 0 }); each call clears it (freeing a previous op_error)
 * before filling it, and atk_transform_result_clear() frees it at the end.
 * Snowflakes: ops use their index in the commit, other events 0; events without a
 * parsable time use now; #info uses now and a per-instance counter in place of seq,
 * with op index 255 so that it never equals an event's id. */
gboolean atk_event_transformer_transform (AtkEventTransformer *self, const guint8 *data, gsize len,
                                          gint64 now_us, GPtrArray *messages,
                                          AtkTransformResult *result, GError **error);

G_END_DECLS
