/* at-kafka: one output message, as the transformer makes it and the sink produces it.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

#include "atk-frame.h"

G_BEGIN_DECLS

typedef struct
{
  char *key;        /* the account DID, or "<unknown>" */
  GString *value;   /* compact JSON */
  gboolean has_seq; /* FALSE for #info (no seq on the wire) */
  gint64 seq;       /* the firehose seq of the frame it came from */
  AtkEventKind kind;
  const char *action_name; /* static: "operation#create", "account", "sync", … */
  char *collection;        /* ops only, else NULL */
  gint64 action_id;        /* the snowflake (also in Osprey values) */
  gint64 event_time_ms;    /* the event's time in ms since the Unix epoch, or 0 if none */
  gsize metadata_offset;   /* byte offset in value of the `null` of "eventMetadata":null (the
                            * metadata stage splices the object there); 0 = none */
  gint64 received_us;      /* monotonic time by which its frame had reached us (the input's
                            * bound, atk_input_get_received_us()); 0 = when it is produced */
} AtkMessage;

AtkMessage *atk_message_new (void);
/* With room for a value of about `size` bytes, so that writing it does not reallocate. */
AtkMessage *atk_message_new_sized (gsize size);
/* Back to this thread's pool of messages (atk-message.c), or to malloc. */
void atk_message_free (AtkMessage *message);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtkMessage, atk_message_free)

G_END_DECLS
