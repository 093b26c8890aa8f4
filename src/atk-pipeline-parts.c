/* at-kafka: what a pipeline is made of, from the configuration (see atk-pipeline-parts.h).
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka"

#include "atk-pipeline-parts.h"

#include "atk-did-resolver.h"
#include "atk-error.h"
#include "atk-firehose-source.h"
#include "atk-ozone-source.h"
#include "atk-tap-source.h"

/* For the tests only, undocumented: ATKAFKA_TEST_HANDLE_WELL_KNOWN=http:PORT fetches handles'
 * /.well-known/atproto-did from http://<handle>:PORT (a local PDS) instead of https. */
static void
set_test_well_known (AtkDidResolver *resolver)
{
  const char *value = g_getenv ("ATKAFKA_TEST_HANDLE_WELL_KNOWN");
  g_auto (GStrv) parts = NULL;
  guint64 port = 0;

  if (value == NULL || *value == '\0')
    return;
  parts = g_strsplit (value, ":", 2);
  if (g_strv_length (parts) != 2
      || (g_strcmp0 (parts[0], "http") != 0 && g_strcmp0 (parts[0], "https") != 0)
      || !g_ascii_string_to_unsigned (parts[1], 10, 1, 65535, &port, NULL))
    {
      g_warning ("Ignoring ATKAFKA_TEST_HANDLE_WELL_KNOWN=%s (expected http:PORT)", value);
      return;
    }
  g_message ("Test mode: handles are verified at %s://<handle>:%u", parts[0], (guint)port);
  atk_did_resolver_set_handle_well_known (resolver, parts[0], (guint)port);
}

AtkMetadataStage *
atk_pipeline_build_stage (const AtkConfig *config, GError **error)
{
  g_autoptr (AtkDidResolver) resolver = NULL;
  g_autoptr (AtkMetadataStage) stage = NULL;

  if (config->plc_host == NULL)
    return NULL;
  resolver = atk_did_resolver_new (config->plc_host, config->api_host, error);
  if (resolver == NULL)
    return NULL;
  atk_did_resolver_set_fetch_details (resolver, config->event_metadata);
  set_test_well_known (resolver);
  stage = atk_metadata_stage_new (resolver);
  if (!atk_metadata_stage_set_service_filter (stage, (const char *const *)config->watched_services,
                                              (const char *const *)config->ignored_services, error)
      || !atk_metadata_stage_set_event_metadata (stage, config->event_metadata, error))
    return NULL;
  if (!atk_metadata_stage_is_active (stage))
    return NULL;
  atk_metadata_stage_set_max_backlog (stage, config->max_in_flight_messages);
  return g_steal_pointer (&stage);
}

AtkInput *
atk_pipeline_build_input (const AtkConfig *config, GError **error)
{
  AtkFirehoseSource *relay;

  if (config->ozone_pds_host != NULL)
    {
      g_autoptr (AtkOzoneSource) ozone = atk_ozone_source_new (config, error);
      g_autoptr (GError) local = NULL;

      if (ozone == NULL)
        return NULL;
      if (!atk_ozone_source_login_sync (ozone, &local))
        {
          if (g_error_matches (local, ATK_ERROR, ATK_ERROR_BAD_CONFIG))
            {
              g_propagate_error (error, g_steal_pointer (&local));
              return NULL;
            }
          g_warning ("%s (trying again once started)", local->message);
        }
      return ATK_INPUT (g_steal_pointer (&ozone));
    }
  if (config->tap_host != NULL)
    {
      AtkTapSource *tap
          = atk_tap_source_new (config->tap_host, config->max_frame_bytes, config->disable_acks);

      atk_tap_source_set_read_batch (tap, config->read_batch_ms);
      return ATK_INPUT (tap);
    }
  relay = atk_firehose_source_new (config->relay_host, config->max_frame_bytes,
                                   config->idle_timeout_s);
  atk_firehose_source_set_read_batch (relay, config->read_batch_ms);
  return ATK_INPUT (relay);
}
