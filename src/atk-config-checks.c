/* at-kafka: the rules between options, checked once every option is read: the
 * combinations that would be half done are refused at start with one line.
 * SPDX-License-Identifier: MIT */
#include "atk-config-private.h"

#include <glib/gi18n.h>

#include "atk-error.h"

static gboolean
non_empty (char **list)
{
  return list != NULL && list[0] != NULL;
}

gboolean
atk_config_check (const AtkConfig *config, GError **error)
{
  if (non_empty (config->watched_services) && non_empty (config->ignored_services))
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   _ ("--watched-services and --ignored-services cannot be used together"));
      return FALSE;
    }
  if (config->plc_host == NULL
      && (non_empty (config->watched_services) || non_empty (config->ignored_services)
          || config->event_metadata))
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   _ ("--plc-host is needed for service filters and --event-metadata"));
      return FALSE;
    }
  if (non_empty (config->watched_collections) && non_empty (config->ignored_collections))
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   _ ("--watched-collections and --ignored-collections cannot be used together"));
      return FALSE;
    }
  /* The Jetstream shape has no eventMetadata member, and Tap events are rendered apart. */
  if (config->payload_format == ATK_PAYLOAD_JETSTREAM && config->event_metadata)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   _ ("--payload-format=jetstream cannot be used with --event-metadata (the "
                      "Jetstream shape has no eventMetadata)"));
      return FALSE;
    }
  if (config->payload_format == ATK_PAYLOAD_JETSTREAM && config->tap_host != NULL)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   _ ("--payload-format=jetstream cannot be used with --tap-host"));
      return FALSE;
    }
  if (config->to_stdout && config->input_file == NULL)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG, _ ("--stdout needs --input FILE"));
      return FALSE;
    }
  return TRUE;
}
