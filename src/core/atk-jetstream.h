/* at-kafka: the Jetstream v1 event shape (--payload-format=jetstream).
 *
 * The JSON that Bluesky's Jetstream serves on /subscribe, rendered from a decoded firehose
 * frame: {"did","time_us","kind","commit"|"identity"|"account"}. Pure: text out, no I/O, no
 * clock (the caller passes time_us).
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

#include "atk-car.h"
#include "atk-frame.h"

G_BEGIN_DECLS

/* The event inside a message (plain, or as the Osprey envelope's "data"). */
typedef enum
{
  ATK_PAYLOAD_STANDARD,  /* the reference's shape: {"did","timestamp","eventMetadata",…} */
  ATK_PAYLOAD_JETSTREAM, /* Jetstream v1's shape */
} AtkPayloadFormat;

/* "standard" / "jetstream"; FALSE for anything else. */
gboolean atk_payload_format_from_string (const char *text, AtkPayloadFormat *out);
const char *atk_payload_format_to_string (AtkPayloadFormat format);

/* One commit op: {"did","time_us","kind":"commit","commit":{"rev","operation","collection",
 * "rkey","record","cid"}}; `record` and `cid` only when block is not NULL (not for
 * deletes). block must already be checked against the op's CID. FALSE when the record
 * does not render; out is then restored to its length before the call. */
gboolean atk_jetstream_append_commit (GString *out, const AtkFrame *frame, const AtkRepoOp *op,
                                      const AtkCarBlock *block, gint64 time_us, GError **error);

/* #identity, #account, #sync and #info: {"did","time_us","kind":K,K:{…}}. The identity and
 * account objects are the firehose event's fields as Jetstream sends them (did, seq, time,
 * handle / active, status); #sync ({did, rev, seq, time}) and #info ({name, message}),
 * which Jetstream v1 never sent, follow the same pattern. */
void atk_jetstream_append_event (GString *out, const AtkFrame *frame, gint64 time_us);

/* The Osprey action_name Osprey's own Jetstream input plugin gives an op, as a JSON string:
 * "<operation>_<short>" for the collections it knows (post, like, repost, follow, profile:
 * "create_post", "delete_like", …) and "<operation>_<collection NSID>" for the others
 * ("create_app.bsky.graph.block"). */
void atk_jetstream_append_op_action_name (GString *out, const AtkRepoOp *op);

G_END_DECLS
