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

/* Ozone mode needs its account and labeler, and is a mode of its own. */
static gboolean
check_ozone (const AtkConfig *config, GError **error)
{
  const char *missing = NULL;

  if (config->ozone_pds_host == NULL)
    return TRUE;
  if (config->ozone_identifier == NULL)
    missing = "--ozone-identifier";
  else if (config->ozone_labeler_did == NULL)
    missing = "--ozone-labeler-did";
  else if (config->ozone_password == NULL && config->ozone_password_file == NULL)
    missing = "--ozone-password-file (or --ozone-password, or a systemd credential ozone-password)";
  if (missing != NULL)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG, _ ("--ozone-pds-host needs %s"),
                   missing);
      return FALSE;
    }
  if (config->ozone_password != NULL && config->ozone_password_file != NULL)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   _ ("--ozone-password and --ozone-password-file cannot be used together"));
      return FALSE;
    }
  if (!g_str_has_prefix (config->ozone_labeler_did, "did:"))
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   _ ("--ozone-labeler-did: “%s” is not a DID"), config->ozone_labeler_did);
      return FALSE;
    }
  if (config->tap_host != NULL || config->plc_host != NULL
      || config->payload_format == ATK_PAYLOAD_JETSTREAM || config->input_file != NULL)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   _ ("--ozone-pds-host cannot be used with --tap-host, --plc-host, --input or "
                      "--payload-format=jetstream (Ozone mode produces moderation events as "
                      "Ozone returns them)"));
      return FALSE;
    }
  /* The group hands over the relay cursor; Ozone's place is another kind of cursor. */
  if (config->group_id != NULL)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   _ ("--ozone-pds-host cannot be used with --group-id (one instance polls "
                      "Ozone; run it under systemd's Restart= instead)"));
      return FALSE;
    }
  return TRUE;
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
  if (!check_ozone (config, error))
    return FALSE;
  if (config->to_stdout && config->input_file == NULL)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG, _ ("--stdout needs --input FILE"));
      return FALSE;
    }
  return TRUE;
}
