/* at-kafka: RFC 3339 times and Osprey snowflakes. Pure: no clock of its own.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Parses an RFC 3339 / ISO 8601 datetime ("2024-01-01T12:00:00.000Z", or with a ±hh:mm
 * offset) to Unix milliseconds. */
gboolean atk_parse_datetime_ms (const char *text, gsize len, gint64 *out_ms);

/* Writes "YYYY-MM-DDTHH:MM:SSZ" for a Unix time; returns its length. */
gsize atk_format_rfc3339_utc (gint64 unix_seconds, char *buf, gsize size);

/* The snowflake for an event: milliseconds since 2015-01-01T00:00:00Z above bit 22, then
 * (seq & 0x3fff) << 8 | op_index. Same event, same id, on every replay. */
gint64 atk_snowflake_for_event (gint64 event_time_ms, gint64 seq, guint op_index);

G_END_DECLS
