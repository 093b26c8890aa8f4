/* at-kafka: the standard event shapes (operation, account, identity, sync, info) as JSON.
 * Pure: no I/O, no globals. Each ends with "eventMetadata":null}, whose `null` the
 * metadata stage may replace (ATK_EVENT_JSON_METADATA_OFFSET right after writing).
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

#include "atk-car.h"
#include "atk-frame.h"

G_BEGIN_DECLS

/* Right after writing an event: the offset in out of its eventMetadata `null`. */
#define ATK_EVENT_JSON_METADATA_OFFSET(out) ((out)->len - sizeof ("null}") + 1)

/* The operation event. `block` is the record's checked block, NULL for deletes and for
 * records that cannot be rendered (then `record_error` says why, as "recordError").
 * FALSE when the record does not render: out is then left partly written and *error
 * set; the caller drops the message or writes it again with the error. */
gboolean atk_event_json_append_operation (GString *out, const AtkFrame *frame, const AtkRepoOp *op,
                                          const AtkCarBlock *block, const char *record_error,
                                          GError **error);

void atk_event_json_append_account (GString *out, const AtkFrame *frame);
void atk_event_json_append_identity (GString *out, const AtkFrame *frame);
void atk_event_json_append_sync (GString *out, const AtkFrame *frame);
/* The reference leaves did and timestamp empty for #info. */
void atk_event_json_append_info (GString *out, const AtkFrame *frame);

G_END_DECLS
