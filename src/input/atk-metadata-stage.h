/* at-kafka: the asynchronous stage between the transformer and the sink that attaches
 * eventMetadata and applies the service filters (--watched-services/--ignored-services).
 *
 * Messages come in with push() and leave through "message-ready" (to produce) or
 * "message-filtered" (dropped by a service filter: settle it in the cursor tracker), always
 * in push order per DID: a DID's messages wait while its lookup runs, other DIDs flow on.
 * A lookup that fails or times out lets the message through without metadata and
 * unfiltered ("degraded"), so a dead PLC directory costs metadata, never events.
 *
 * The eventMetadata object (field names as in the reference; empty strings are left out):
 *   {"didDocument":{…the DID document…},
 *    "pdsHost":"pds.example.com",             PDS host from the "#atproto_pds" service
 *    "handle":"alice.example.com",            from alsoKnownAs "at://…"
 *    "didCreatedAt":"2024-01-01T00:00:00.000Z", did:plc: the audit log's first createdAt
 *    "accountAge":86400,                      seconds from didCreatedAt to now; 0 if unknown
 *    "profile":{…getProfile output…}|null}    AppView profile with --api-host
 * It replaces the "eventMetadata":null the transformer wrote (AtkMessage.metadata_offset).
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib-object.h>

#include "atk-did-resolver.h"
#include "atk-message.h"

G_BEGIN_DECLS

#define ATK_TYPE_METADATA_STAGE (atk_metadata_stage_get_type ())
G_DECLARE_FINAL_TYPE (AtkMetadataStage, atk_metadata_stage, ATK, METADATA_STAGE, GObject)

/* Signals (both run before the stage frees the message; handlers borrow it):
 *   "message-ready"    (AtkMessage *message): produce it
 *   "message-filtered" (AtkMessage *message): dropped by a service filter */

/* resolver may be NULL: the stage is then a pass-through. */
AtkMetadataStage *atk_metadata_stage_new (AtkDidResolver *resolver);

/* Host patterns: "pds.example.com" is that host; "*.example.com" is example.com or any
 * host under it; "*" is any host. Blank entries are ignored. Both lists non-empty, a '*'
 * elsewhere, or a filter without a resolver is ATK_ERROR_BAD_CONFIG. An account whose
 * document names no PDS matches no pattern. */
gboolean atk_metadata_stage_set_service_filter (AtkMetadataStage *self, const char *const *watched,
                                                const char *const *ignored, GError **error);

/* Whether to attach eventMetadata; TRUE without a resolver is ATK_ERROR_BAD_CONFIG. */
gboolean atk_metadata_stage_set_event_metadata (AtkMetadataStage *self, gboolean enabled,
                                                GError **error);

/* Whether messages need lookups at all (metadata or a service filter is on). When FALSE,
 * push() emits every message at once. */
gboolean atk_metadata_stage_is_active (AtkMetadataStage *self);

/* Takes the message. May emit signals before it returns (cached DIDs, no DID). */
void atk_metadata_stage_push (AtkMetadataStage *self, AtkMessage *message);

/* Messages waiting for a lookup, and the bound above which is_saturated() says so (default
 * 100000). The stage never refuses a message: the owner pauses its input while saturated. */
guint atk_metadata_stage_get_backlog (AtkMetadataStage *self);
void atk_metadata_stage_set_max_backlog (AtkMetadataStage *self, guint max);
gboolean atk_metadata_stage_is_saturated (AtkMetadataStage *self);

/* Drops every waiting message without emitting anything (the owner goes back to its
 * cursor and will push them again). Lookups in flight finish but serve nobody. */
void atk_metadata_stage_clear (AtkMetadataStage *self);

typedef struct
{
  guint64 enriched; /* eventMetadata attached */
  guint64 degraded; /* lookup failed: passed without metadata or filtering */
  guint64 filtered; /* dropped by a service filter */
} AtkMetadataStats;

void atk_metadata_stage_get_stats (AtkMetadataStage *self, AtkMetadataStats *stats);

/* The resolver's metrics (atkafka_plc_requests, atkafka_api_requests, atkafka_cache_size)
 * and the stage's own: atkafka_metadata_events{result="enriched|degraded|filtered"},
 * atkafka_metadata_backlog. */
void atk_metadata_stage_render_prometheus (AtkMetadataStage *self, GString *out);

G_END_DECLS
