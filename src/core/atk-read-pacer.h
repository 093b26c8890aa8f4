/* at-kafka: when a batched socket reader pauses (--read-batch-ms). Pure: byte counts and
 * monotonic times in, a decision out.
 *
 * A relay sends each frame as its own TCP segment; reading them as they come costs a
 * wake-up each. So after a turn that read data the reader leaves the socket alone for the
 * batch time, and the next turn takes that time's frames at once. It does not pause after
 * a turn that read ATK_READ_PACER_SKIP_BYTES or more (the peer is ahead of us), nor while
 * everything read since the last pause began, ATK_READ_PACER_CATCH_UP_BYTES at least, came
 * faster than ATK_READ_PACER_CATCH_UP_RATE: a backlog replayed flat out, which every pause
 * would stall behind a full receive window (the live firehose is ~7 MB/s).
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define ATK_READ_PACER_SKIP_BYTES (128 * 1024)
#define ATK_READ_PACER_CATCH_UP_BYTES (1024 * 1024)
#define ATK_READ_PACER_CATCH_UP_RATE (64 * 1024 * 1024) /* bytes a second */

typedef struct
{
  guint64 bytes;   /* read since the last pause began */
  gint64 since_us; /* when it began (or the connection opened) */
} AtkReadPacer;

void atk_read_pacer_init (AtkReadPacer *pacer, gint64 now_us);

/* After a turn that read got bytes: TRUE if the reader should pause now (a new cycle then
 * starts at now_us). */
gboolean atk_read_pacer_should_rest (AtkReadPacer *pacer, gsize got, gint64 now_us);

G_END_DECLS
