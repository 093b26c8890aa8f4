/* at-kafka: Ozone mode's pure part: a tools.ozone.moderation.queryEvents page read into its
 * events, the position of an event in Ozone's order, the cursor file's text, and the Kafka
 * message of one event. Pure: no I/O, no clock (the caller passes the send time).
 *
 * Ozone orders events by (createdAt, id) — its TimeIdKeyset — and `createdAfter` is
 * inclusive (createdAt >= the value). The source asks for createdAfter = the createdAt of
 * the last event it took and drops what is not after (createdAt, id) of that event, so
 * events sharing a millisecond are neither repeated nor skipped.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

#include "atk-message.h"

G_BEGIN_DECLS

/* An event's place in Ozone's order. */
typedef struct
{
  gint64 created_ms; /* createdAt in Unix milliseconds */
  gint64 id;         /* the event id */
  char *created_at;  /* createdAt as Ozone wrote it (sent back as createdAfter); owned */
} AtkOzonePosition;

void atk_ozone_position_clear (AtkOzonePosition *pos);
void atk_ozone_position_copy (AtkOzonePosition *dest, const AtkOzonePosition *src);
/* <0, 0, >0 as a comes before, is, or comes after b in Ozone's order. */
int atk_ozone_position_compare (const AtkOzonePosition *a, const AtkOzonePosition *b);

/* One ModEventView of a page. */
typedef struct
{
  AtkOzonePosition pos;
  char *type; /* event.$type ("tools.ozone.moderation.defs#modEventReport"), or NULL */
  char *json; /* the ModEventView, compact JSON, strings as Ozone sent them */
} AtkOzoneEvent;

void atk_ozone_event_free (AtkOzoneEvent *event);

/* Reads a queryEvents response body: its events (AtkOzoneEvent, in the page's order) and
 * its cursor (NULL when absent). A body that is not such an object, or an event without an
 * integer id or an RFC 3339 createdAt, is an ATK_ERROR_BAD_FRAME for the whole page: its
 * place cannot be known. */
gboolean atk_ozone_page_parse (const char *body, gsize len, GPtrArray **events, char **cursor,
                               GError **error);
/* Reads one ModEventView (the payload the source emits for each event). */
AtkOzoneEvent *atk_ozone_event_parse (const char *json, gsize len, GError **error);

/* The cursor file: "<labeler DID> <createdAt> <id>\n". */
char *atk_ozone_position_to_text (const char *labeler_did, const AtkOzonePosition *pos);
/* FALSE with ATK_ERROR_BAD_CONFIG naming what is wrong; *labeler_did is owned. */
gboolean atk_ozone_position_from_text (const char *text, char **labeler_did, AtkOzonePosition *pos,
                                       GError **error);

/* "ozone#modEventReport" for "tools.ozone.moderation.defs#modEventReport" ("ozone" when the
 * type is unknown). */
char *atk_ozone_action_name (const char *type);

/* The Kafka message of one event: key = the id in decimal, value = the ModEventView as is,
 * or in the Osprey envelope (action_name "ozone#<short type>"). send_time: RFC 3339, for
 * the envelope. The message's action_name (for the handled-events metric) is "ozone". */
AtkMessage *atk_ozone_event_to_message (const AtkOzoneEvent *event, gboolean osprey,
                                        const char *send_time);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtkOzoneEvent, atk_ozone_event_free)

G_END_DECLS
