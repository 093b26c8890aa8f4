/* at-kafka: the Ozone input (Ozone mode), an AtkInput that keeps its own place
 * (ATK_INPUT_KEEPS_PLACE). Logs into a PDS (com.atproto.server.createSession), polls
 * tools.ozone.moderation.queryEvents through it with "atproto-proxy: <labeler>#atproto_labeler"
 * (ascending, 100 a page), and emits each ModEventView as a "payload"; decode() makes the
 * message (key: the event id). Its place — the (createdAt, id) of the last event Kafka
 * acknowledged, in Ozone's order — moves with ack() and is kept in
 * <state-dir>/ozone-cursor. An expired session is refreshed (refreshSession, else a new
 * login); failures back off with jitter. Knows nothing about Kafka.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <gio/gio.h>

#include "atk-config.h"
#include "atk-input.h"

G_BEGIN_DECLS

#define ATK_TYPE_OZONE_SOURCE (atk_ozone_source_get_type ())
G_DECLARE_FINAL_TYPE (AtkOzoneSource, atk_ozone_source, ATK, OZONE_SOURCE, GObject)

/* Borrows config (--ozone-*, --state-directory, --osprey-compatible). Reads the stored
 * cursor: an unreadable one, or one of another labeler, is ATK_ERROR_BAD_CONFIG. */
AtkOzoneSource *atk_ozone_source_new (const AtkConfig *config, GError **error);

/* Logs in now, blocking (at start): credentials the PDS refuses are ATK_ERROR_BAD_CONFIG;
 * a PDS that cannot be reached is another error (the source keeps trying once started). */
gboolean atk_ozone_source_login_sync (AtkOzoneSource *self, GError **error);

/* The id of the last event Kafka acknowledged with all before it (FALSE: none yet); id may
 * be NULL. */
gboolean atk_ozone_source_get_durable_id (AtkOzoneSource *self, gint64 *id);

/* Without a place of its own (no cursor file): resume after event id, whose createdAt the
 * source asks Ozone for (tools.ozone.moderation.getEvent) before its first poll. An id Ozone
 * does not know is logged, and the source starts from the first event. */
void atk_ozone_source_resume_after_id (AtkOzoneSource *self, gint64 id);

G_END_DECLS
