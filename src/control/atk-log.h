/* at-kafka: the log vocabulary and the one helper for event-scoped lines.
 *
 * Journal fields (g_log_structured; only MESSAGE is a format):
 *   ATK_SEQ          the input's position of the event: relay seq, Tap event id
 *   ATK_DID          the account the event is about
 *   ATK_CURSOR       the cursor a connection resumes from ("live": the live tip)
 *   ATK_INPUT_URL    the relay or Tap the input talks to
 *   ATK_SOURCE_STATE the input's connection state
 *   ATK_KAFKA_ERROR, ATK_KAFKA_TOPIC, ATK_KAFKA_BROKER, ATK_KAFKA_FACILITY  (the sink)
 * One G_LOG_DOMAIN per part: at-kafka (daemon, pipeline, configuration, main), at-kafka-core
 * (src/core), at-kafka-input (relay and Tap inputs, WebSocket client, file runner),
 * at-kafka-did (DID resolver), at-kafka-metadata (metadata stage), at-kafka-sink (sink and
 * transactions), at-kafka-cursor (the cursor's stores), at-kafka-dbus, at-kafka-systemd,
 * at-kafka-metrics.
 *
 * Lines about single events (a frame skipped, a message refused) are rate-limited per kind
 * with the core's AtkLogLimit: at most one line per ATK_LOG_INTERVAL_S; the next line says
 * how many were held back, and the daemon's periodic stats line counts those still held.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

#include "atk-seq-check.h" /* AtkLogLimit */

G_BEGIN_DECLS

#define ATK_LOG_SEQ "ATK_SEQ"
#define ATK_LOG_DID "ATK_DID"
#define ATK_LOG_CURSOR "ATK_CURSOR"
#define ATK_LOG_INPUT_URL "ATK_INPUT_URL"
#define ATK_LOG_SOURCE_STATE "ATK_SOURCE_STATE"

#define ATK_LOG_INTERVAL_S 10

/* Logs MESSAGE (format) with ATK_SEQ (when has_seq) and ATK_DID (when did is not NULL),
 * unless limit (may be NULL: no limit) has logged a line less than ATK_LOG_INTERVAL_S ago:
 * then only counts it. A line after held-back ones ends with "(N more since the last line)". */
void atk_log_event_full (const char *domain, GLogLevelFlags level, AtkLogLimit *limit,
                         gboolean has_seq, gint64 seq, const char *did, const char *format, ...)
    G_GNUC_PRINTF (7, 8);
#define atk_log_event(level, limit, has_seq, seq, did, ...)                                        \
  atk_log_event_full (G_LOG_DOMAIN, level, limit, has_seq, seq, did, __VA_ARGS__)

G_END_DECLS
