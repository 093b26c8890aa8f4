/* at-kafka: options from flags and ATKAFKA_* environment variables, driven by the option
 * table (atk-config-options.c).
 *
 * Every option is read as text first (flag, else variable, else default) and then parsed
 * by its row (by type, or by its parse function), so a bad value gives the same one-line
 * message whichever way it arrived; the rules between options come last
 * (atk-config-checks.c).
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka"

#include "atk-config-private.h"

#include <glib/gi18n.h>
#include <stdlib.h>
#include <string.h>

#include "atk-error.h"

/* What GOptionContext stored for one row: text (STRING-like rows, BOOL), strv
 * (PROPERTIES) or on (SWITCH). */
typedef struct
{
  char *text;
  char **strv;
  gboolean on;
} RawValue;

typedef struct
{
  const AtkOption *options;
  gsize n_options;
  RawValue *raw;
  GPtrArray *strings; /* descriptions built for the entries */
  GOptionEntry *entries;
} ParseState;

static void
parse_state_clear (ParseState *state)
{
  for (gsize i = 0; state->raw != NULL && i < state->n_options; i++)
    {
      g_free (state->raw[i].text);
      g_strfreev (state->raw[i].strv);
    }
  g_clear_pointer (&state->raw, g_free);
  g_clear_pointer (&state->entries, g_free);
  g_clear_pointer (&state->strings, g_ptr_array_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (ParseState, parse_state_clear)

char *
atk_option_variable (const AtkOption *option)
{
  g_autofree char *upper = g_ascii_strup (option->name, -1);

  g_strdelimit (upper, "-", '_');
  return g_strconcat ("ATKAFKA_", upper, NULL);
}

char *
atk_option_help_suffix (const AtkOption *option)
{
  g_autofree char *variable = NULL;
  g_autofree char *detail = NULL;

  if (option->flags & ATK_OPTION_NO_ENV)
    return NULL;
  variable = atk_option_variable (option);
  if (option->flags & ATK_OPTION_REQUIRED)
    detail = g_strdup (_ ("required"));
  else if (option->fallback != NULL)
    /* TRANSLATORS: the default value of an option, in --help */
    detail = g_strdup_printf (_ ("default %s"), option->fallback);
  else if (option->fallback_variable != NULL)
    /* TRANSLATORS: another environment variable read when the option is not set */
    detail = g_strdup_printf (_ ("else $%s"), option->fallback_variable);
  else if (option->note != NULL)
    detail = g_strdup (_ (option->note));
  if (detail == NULL)
    return g_strdup_printf ("[%s]", variable);
  return g_strdup_printf ("[%s, %s]", variable, detail);
}

/* Boolean flags take an optional value, so that --osprey-compatible=false works too. */
static gboolean
parse_optional_bool (const char *option_name, const char *value, gpointer data, GError **error)
{
  ParseState *state = data;
  const char *name = option_name + strspn (option_name, "-");

  for (gsize i = 0; i < state->n_options; i++)
    if (g_strcmp0 (state->options[i].name, name) == 0)
      {
        g_free (state->raw[i].text);
        state->raw[i].text = g_strdup (value != NULL ? value : "true");
        return TRUE;
      }
  g_return_val_if_reached (FALSE);
}

static void
build_entries (ParseState *state)
{
  state->raw = g_new0 (RawValue, state->n_options);
  state->entries = g_new0 (GOptionEntry, state->n_options + 1);
  state->strings = g_ptr_array_new_with_free_func (g_free);
  for (gsize i = 0; i < state->n_options; i++)
    {
      const AtkOption *option = &state->options[i];
      GOptionEntry *entry = &state->entries[i];
      g_autofree char *suffix = atk_option_help_suffix (option);
      char *description = suffix != NULL ? g_strdup_printf ("%s %s", _ (option->help), suffix)
                                         : g_strdup (_ (option->help));

      g_ptr_array_add (state->strings, description);
      entry->long_name = option->name;
      entry->short_name = option->short_name;
      entry->description = description;
      entry->arg_description = option->arg != NULL ? _ (option->arg) : NULL;
      switch (option->type)
        {
        case ATK_OPTION_BOOL:
          entry->flags = G_OPTION_FLAG_OPTIONAL_ARG;
          entry->arg = G_OPTION_ARG_CALLBACK;
          entry->arg_data = (gpointer)parse_optional_bool;
          break;
        case ATK_OPTION_SWITCH:
          entry->arg = G_OPTION_ARG_NONE;
          entry->arg_data = &state->raw[i].on;
          break;
        case ATK_OPTION_PROPERTIES:
          entry->arg = G_OPTION_ARG_STRING_ARRAY;
          entry->arg_data = &state->raw[i].strv;
          break;
        case ATK_OPTION_FILENAME:
          entry->arg = G_OPTION_ARG_FILENAME;
          entry->arg_data = &state->raw[i].text;
          break;
        default:
          entry->arg = G_OPTION_ARG_STRING;
          entry->arg_data = &state->raw[i].text;
          break;
        }
    }
}

static gboolean
store_number (const AtkOption *option, const char *flag, const char *text, gpointer field,
              GError **error)
{
  guint64 value = 0;

  if (!atk_config_parse_uint (flag, text, option->min, option->max, &value, error))
    return FALSE;
  if (option->type == ATK_OPTION_INT)
    *(int *)field = (int)value;
  else if (option->type == ATK_OPTION_UINT)
    *(guint *)field = (guint)value;
  else if (option->type == ATK_OPTION_INT64)
    *(gint64 *)field = (gint64)value;
  else
    *(guint64 *)field = value;
  return TRUE;
}

/* One row: flag, else variable, else the fallback variable, else the default. */
static gboolean
read_option (const AtkOption *option, const RawValue *raw, char **envp, AtkConfig *config,
             GError **error)
{
  g_autofree char *flag = g_strconcat ("--", option->name, NULL);
  g_autofree char *variable = NULL;
  gpointer field
      = option->offset == ATK_OPTION_NO_FIELD ? NULL : G_STRUCT_MEMBER_P (config, option->offset);
  const char *text = raw->text;

  if (option->type == ATK_OPTION_SWITCH)
    {
      if (field != NULL)
        *(gboolean *)field = raw->on;
      return TRUE;
    }
  if (option->type == ATK_OPTION_PROPERTIES)
    return atk_config_collect_kafka_properties (flag, raw->strv, envp, field, error);

  if (!(option->flags & ATK_OPTION_NO_ENV))
    {
      variable = atk_option_variable (option);
      if (text == NULL)
        text = g_environ_getenv (envp, variable);
    }
  if (text == NULL && option->fallback_variable != NULL)
    text = g_environ_getenv (envp, option->fallback_variable);
  if (option->flags & ATK_OPTION_REQUIRED)
    {
      if (config->to_stdout)
        return TRUE; /* --stdout needs no broker */
      if (text == NULL || *text == '\0')
        {
          g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG, _ ("%s (or %s) is required"), flag,
                       variable);
          return FALSE;
        }
    }
  if (text == NULL)
    text = option->fallback;
  if (text == NULL || ((option->flags & ATK_OPTION_EMPTY_IS_UNSET) && *text == '\0'))
    return TRUE;
  if (option->parse != NULL)
    return option->parse (option, flag, text, field, config, error);

  switch (option->type)
    {
    case ATK_OPTION_STRING:
    case ATK_OPTION_FILENAME:
      *(char **)field = g_strdup (text);
      return TRUE;
    case ATK_OPTION_BOOL:
      return atk_config_parse_bool (flag, text, field, error);
    case ATK_OPTION_INT:
    case ATK_OPTION_UINT:
    case ATK_OPTION_UINT64:
    case ATK_OPTION_INT64:
      return store_number (option, flag, text, field, error);
    default:
      g_return_val_if_reached (FALSE); /* a list or an enum needs its parse function */
    }
}

static gboolean
config_from_raw (const ParseState *state, char **envp, AtkConfig *config, GError **error)
{
  /* Flag-only rows first: --stdout decides whether the Kafka target is required. */
  for (gsize i = 0; i < state->n_options; i++)
    if ((state->options[i].flags & ATK_OPTION_NO_ENV)
        && !read_option (&state->options[i], &state->raw[i], envp, config, error))
      return FALSE;
  for (gsize i = 0; i < state->n_options; i++)
    if (!(state->options[i].flags & ATK_OPTION_NO_ENV)
        && !read_option (&state->options[i], &state->raw[i], envp, config, error))
      return FALSE;
  /* Ozone mode without a password: systemd's credential "ozone-password" (LoadCredential=). */
  if (config->ozone_pds_host != NULL && config->ozone_password == NULL
      && config->ozone_password_file == NULL
      && g_environ_getenv (envp, "CREDENTIALS_DIRECTORY") != NULL)
    config->ozone_password_file = g_build_filename (
        g_environ_getenv (envp, "CREDENTIALS_DIRECTORY"), "ozone-password", NULL);
  /* The one default that depends on another option (see the compression row). */
  if (config->compression == NULL)
    config->compression = g_strdup (config->osprey_compatible ? "gzip" : "lz4");
  return atk_config_check (config, error);
}

static gboolean
version_asked (const ParseState *state)
{
  for (gsize i = 0; i < state->n_options; i++)
    if ((state->options[i].flags & ATK_OPTION_VERSION) && state->raw[i].on)
      return TRUE;
  return FALSE;
}

AtkConfig *
atk_config_parse (int *argc, char ***argv, char **envp, gboolean *exit_now, GError **error)
{
  g_auto (ParseState) state = { 0 };
  g_autoptr (GOptionContext) context = NULL;
  g_autoptr (GOptionGroup) group = NULL;
  g_autoptr (AtkConfig) config = g_new0 (AtkConfig, 1);
  g_autoptr (GError) local_error = NULL;

  *exit_now = FALSE;
  state.options = atk_config_options (&state.n_options);
  build_entries (&state);
  context = g_option_context_new (NULL);
  g_option_context_set_summary (
      context,
      _ ("Subscribe to the AT Protocol firehose and produce every event to Kafka as JSON."));
  g_option_context_set_description (
      context, _ ("Every option can also be set by its ATKAFKA_* environment variable; a flag "
                  "wins over its variable.\nReport bugs on the project's issue tracker."));
  group = g_option_group_new ("at-kafka", NULL, NULL, &state, NULL);
  g_option_group_add_entries (group, state.entries);
  /* The entries are translated already (build_entries()). */
  g_option_context_set_main_group (context, g_steal_pointer (&group));

  if (!g_option_context_parse (context, argc, argv, &local_error))
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG, "%s", local_error->message);
      return NULL;
    }
  if (version_asked (&state))
    {
      g_print ("at-kafka %s\n", ATK_VERSION);
      *exit_now = TRUE;
      return NULL;
    }
  if (*argc > 1)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG, _ ("unexpected argument “%s”"),
                   (*argv)[1]);
      return NULL;
    }
  if (!config_from_raw (&state, envp, config, error))
    return NULL;
  return g_steal_pointer (&config);
}

void
atk_config_free (AtkConfig *config)
{
  gsize n_options;
  const AtkOption *options = atk_config_options (&n_options);

  if (config == NULL)
    return;
  for (gsize i = 0; i < n_options; i++)
    {
      gpointer field;

      if (options[i].offset == ATK_OPTION_NO_FIELD)
        continue;
      field = G_STRUCT_MEMBER_P (config, options[i].offset);
      switch (options[i].type)
        {
        case ATK_OPTION_STRING:
        case ATK_OPTION_FILENAME:
          g_clear_pointer ((char **)field, g_free);
          break;
        case ATK_OPTION_STRV:
          g_clear_pointer ((char ***)field, g_strfreev);
          break;
        case ATK_OPTION_PROPERTIES:
          g_clear_pointer ((GPtrArray **)field, g_ptr_array_unref);
          break;
        default:
          break;
        }
    }
  g_free (config);
}
