/* at-kafka: librdkafka properties passed through untouched (librdkafka itself checks
 * them when the daemon builds its producer): ATKAFKA_KAFKA_* variables, then -X flags.
 * SPDX-License-Identifier: MIT */
#include "atk-config-private.h"

#include <glib/gi18n.h>
#include <string.h>

#include "atk-error.h"

#define KAFKA_ENV_PREFIX "ATKAFKA_KAFKA_"

/* ATKAFKA_KAFKA_SASL_MECHANISM=PLAIN → "sasl.mechanism=PLAIN". */
static void
collect_env_properties (char **envp, GPtrArray *properties)
{
  for (guint i = 0; envp != NULL && envp[i] != NULL; i++)
    {
      const char *entry = envp[i];
      const char *eq = strchr (entry, '=');
      g_autofree char *key = NULL;

      if (!g_str_has_prefix (entry, KAFKA_ENV_PREFIX) || eq == NULL)
        continue;
      key = g_ascii_strdown (entry + strlen (KAFKA_ENV_PREFIX),
                             eq - entry - strlen (KAFKA_ENV_PREFIX));
      g_strdelimit (key, "_", '.');
      g_ptr_array_add (properties, g_strdup_printf ("%s=%s", key, eq + 1));
    }
}

gboolean
atk_config_collect_kafka_properties (const char *flag, char **given, char **envp, GPtrArray **out,
                                     GError **error)
{
  g_autoptr (GPtrArray) properties = g_ptr_array_new_with_free_func (g_free);

  collect_env_properties (envp, properties);
  for (guint i = 0; given != NULL && given[i] != NULL; i++)
    {
      const char *property = given[i];
      const char *eq = strchr (property, '=');
      if (eq == NULL || eq == property)
        {
          g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                       _ ("--kafka-property: “%s” is not key=value"), property);
          return FALSE;
        }
      g_ptr_array_add (properties, g_strdup (property));
    }
  *out = g_steal_pointer (&properties);
  return TRUE;
}
