/* at-kafka: the durable cursor's two stores, <state-dir>/cursor and the compacted topic
 * "<topic>.cursor" (key: the topic). Loads the start cursor (an explicit --cursor wins, else
 * the higher of the two stores: both only ever hold acknowledged watermarks) and saves the
 * same value to both on the owner's timer, skipping a store that already holds it.
 * Both stores are held to the same rules: one that holds something other than a cursor
 * (a tombstone in Kafka is "nothing stored") refuses the start, and so do two stores more
 * than --max-seq-jump apart; the error names the store and how to reset it. A Kafka that
 * cannot be reached is not an error: the state file's cursor is used.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

#include "atk-config.h"
#include "atk-kafka-sink.h"

G_BEGIN_DECLS

/* Reading the Kafka cursor blocks the caller for at most this. */
#define ATK_CURSOR_KEEPER_LOAD_MS 5000

typedef struct _AtkCursorKeeper AtkCursorKeeper;

typedef enum
{
  ATK_CURSOR_MERGE_OK,          /* merged (or Kafka holds nothing) */
  ATK_CURSOR_MERGE_UNREACHABLE, /* Kafka could not be asked (logged) */
  ATK_CURSOR_MERGE_REFUSED,     /* corrupt, or the stores disagree: do not start */
} AtkCursorMerge;

/* Borrows config (it must outlive the keeper). */
AtkCursorKeeper *atk_cursor_keeper_new (const AtkConfig *config);
void atk_cursor_keeper_free (AtkCursorKeeper *self);

const char *atk_cursor_keeper_get_topic (AtkCursorKeeper *self);

/* Where to start: --cursor SEQ, --cursor live, or the stored cursor. With transactional
 * TRUE the Kafka store is not read here (read it with load_kafka() once init_transactions
 * has settled what an older instance left open). An unreadable state file is an error. */
gboolean atk_cursor_keeper_load_start (AtkCursorKeeper *self, gboolean transactional,
                                       gboolean *has_cursor, gint64 *cursor, GError **error);

/* The newest record of "<topic>.cursor"; FALSE (logged, error unset) when Kafka cannot be
 * asked, FALSE with ATK_ERROR_BAD_CONFIG when the record is not a cursor. */
gboolean atk_cursor_keeper_load_kafka (AtkCursorKeeper *self, guint timeout_ms, gboolean *found,
                                       gint64 *cursor, GError **error);

/* Merges Kafka's cursor into *cursor (the higher wins), checking it against the state
 * file's cursor read by load_start(). */
AtkCursorMerge atk_cursor_keeper_merge_kafka (AtkCursorKeeper *self, gboolean *has_cursor,
                                              gint64 *cursor, GError **error);

/* Saves cursor to the state file and, when sink is not NULL and ready, as a cursor record
 * (pass NULL in transactions: the record is part of each commit). */
void atk_cursor_keeper_save (AtkCursorKeeper *self, AtkKafkaSink *sink, gint64 cursor);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtkCursorKeeper, atk_cursor_keeper_free)

G_END_DECLS
