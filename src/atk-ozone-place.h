/* at-kafka: Ozone mode's place in Kafka, the second store beside <state-dir>/ozone-cursor:
 * a record in the compacted "<topic>.cursor" under its own key, "ozone <labeler DID>", with
 * the id of the last event Kafka acknowledged in the cursor's usual value ({"seq":ID,…}).
 * A host without the state file resumes from it: the source asks Ozone for that event
 * (tools.ozone.moderation.getEvent) to learn its createdAt. The state file wins when both
 * exist (it is written at every acknowledgement, the record on the save timer).
 * SPDX-License-Identifier: MIT */
#pragma once

#include "atk-config.h"
#include "atk-kafka-sink.h"
#include "atk-ozone-source.h"

G_BEGIN_DECLS

/* "ozone <labeler DID>"; free with g_free. */
char *atk_ozone_place_key (const AtkConfig *config);

/* At start, when the source has no place of its own: reads the record (blocking, at most
 * timeout_ms). A record that is not a cursor is ATK_ERROR_BAD_CONFIG; a Kafka that cannot
 * be asked is logged and not an error. */
gboolean atk_ozone_place_load (AtkOzoneSource *source, const AtkConfig *config,
                               const char *cursor_topic, guint timeout_ms, GError **error);

/* Produces the record when the place moved since *saved_id (updated). */
void atk_ozone_place_save (AtkOzoneSource *source, const AtkConfig *config, AtkKafkaSink *sink,
                           gint64 *saved_id);

G_END_DECLS
