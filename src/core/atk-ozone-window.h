/* at-kafka: which events of a queryEvents page are new, for Ozone mode. Pure: no I/O.
 *
 * Ozone stamps createdAt in its application before the row is committed, so two events
 * written at the same time can become visible out of (createdAt, id) order: a reader that
 * only asks for what comes after the last event it took would miss the one committed late.
 * The window therefore asks again for the last `lookback_ms` before the newest event taken
 * (createdAfter is inclusive) and remembers the ids it took there: an event is new when it
 * is after the floor (the durable place at start, never asked again: it is in Kafka) and not
 * taken already. Events that become visible more than lookback_ms late are still missed.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

#include "atk-ozone-page.h"

G_BEGIN_DECLS

typedef struct _AtkOzoneWindow AtkOzoneWindow;

AtkOzoneWindow *atk_ozone_window_new (gint64 lookback_ms);
void atk_ozone_window_free (AtkOzoneWindow *self);

/* Starts over after floor (NULL: Ozone's first event): forgets what was taken. */
void atk_ozone_window_reset (AtkOzoneWindow *self, const AtkOzonePosition *floor);

/* TRUE when the event is new (then it counts as taken). */
gboolean atk_ozone_window_take (AtkOzoneWindow *self, const AtkOzoneEvent *event);

/* The next poll's createdAfter ("2026-11-30T10:07:50.097Z", Ozone's own format), or NULL to
 * ask from the first event. Forgets the ids that fell out of the window. */
char *atk_ozone_window_created_after (AtkOzoneWindow *self);

/* How many ids the window remembers (for tests and metrics). */
guint atk_ozone_window_get_size (AtkOzoneWindow *self);

/* "2026-11-30T10:07:55.097Z" for Unix milliseconds. */
char *atk_ozone_format_ms (gint64 ms);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtkOzoneWindow, atk_ozone_window_free)

G_END_DECLS
