/* at-kafka: one Tap event (JSON text from Tap's /channel) in, output messages out, in the
 * same standard and Osprey shapes as the firehose transformer.
 *
 * Pure: no I/O, no clock of its own (the caller passes "now"), no JSON library: Tap's
 * events are small and flat, and the record inside is copied (validated, whitespace
 * dropped) rather than rebuilt, so strings and numbers reach Kafka exactly as Tap sent
 * them.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

#include "atk-message.h"

G_BEGIN_DECLS

typedef enum
{
  ATK_TAP_EVENT_RECORD,   /* "type":"record" */
  ATK_TAP_EVENT_IDENTITY, /* "type":"identity" (older Tap builds: "user") */
} AtkTapEventKind;

/* What one Tap event turned into. */
typedef struct
{
  AtkTapEventKind kind;
  guint64 id;        /* Tap's event id: the value to ack */
  gboolean live;     /* record events: Tap's "live" flag (FALSE for backfill) */
  guint n_messages;  /* messages appended */
  gboolean filtered; /* a record event the collection filter dropped */
} AtkTapEventResult;

/* Collection filter for record events, like the transformer's; NULL = everything. */
typedef gboolean (*AtkTapCollectionFilter) (const char *collection, gpointer user_data);

typedef struct
{
  gboolean osprey;               /* wrap in the Osprey envelope */
  AtkTapCollectionFilter filter; /* may be NULL */
  gpointer filter_data;
} AtkTapEventOptions;

/* Reads a Tap event's id only, for acking events that fail to transform: the top-level
 * object's "id" member, digits only, 0..2^64-1 (Tap's ids are unsigned 64-bit; an id above
 * 2^63-1 is readable and acked, although such an event cannot be transformed). Whatever
 * else is wrong with the text (nesting, NULs or bad escapes in strings, a bad member,
 * trailing garbage, a truncated end after the id) does not hide the id. FALSE when the
 * text does not start with an object or has no such id. */
gboolean atk_tap_event_peek_id (const char *text, gsize len, guint64 *out_id);

/* Turns one Tap event into messages appended to `messages` (AtkMessage*):
 *  - record → one operation event (`operation#create|update|delete`);
 *  - identity → two: an `identity` event {seq, handle} and an `account` event
 *    {active, seq, status}, because Tap folds the firehose's #identity and #account
 *    into one event type.
 * Every message has has_seq TRUE and seq = the Tap id, so the caller can ack the id once
 * all messages of that id are delivered. now_us is the wall clock (Unix µs) for Osprey's
 * send_time and for events without a usable time. On error nothing is appended and the
 * error is ATK_ERROR_BAD_FRAME (not JSON, wrong shape, missing field) or
 * ATK_ERROR_UNSUPPORTED (an event type we do not know); `result`, if given, still holds the
 * id when it could be read. */
gboolean atk_tap_event_transform (const char *text, gsize len, const AtkTapEventOptions *options,
                                  gint64 now_us, GPtrArray *messages, AtkTapEventResult *result,
                                  GError **error);

/* The ack Tap expects for an event: {"type":"ack","id":N}. */
char *atk_tap_ack_message (guint64 id);

G_END_DECLS
