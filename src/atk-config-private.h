/* at-kafka: the option table behind atk_config_parse(), shared by the configuration's files:
 *   atk-config-options.c  the table: one row per option
 *   atk-config.c          the machinery: flags, ATKAFKA_* variables, defaults, help, free
 *   atk-config-values.c   one parser per kind of value (numbers, URLs, lists, …)
 *   atk-config-checks.c   rules between options, checked once every value is read
 *   atk-config-kafka.c    librdkafka properties passed through (-X, ATKAFKA_KAFKA_*)
 *
 * Adding an option is one row in atk-config-options.c (and its field in AtkConfig). The
 * variable is ATKAFKA_ plus the upper-cased name ('-' → '_'); the help ends with a suffix
 * built from the row: "[ATKAFKA_NAME, default FALLBACK]", "[ATKAFKA_NAME, required]",
 * "[ATKAFKA_NAME, else $FALLBACK_VARIABLE]", "[ATKAFKA_NAME, NOTE]" or "[ATKAFKA_NAME]".
 * SPDX-License-Identifier: MIT */
#pragma once

#include "atk-config.h"

G_BEGIN_DECLS

typedef enum
{
  ATK_OPTION_STRING,     /* char *; text as given, or through parse */
  ATK_OPTION_FILENAME,   /* char *; a path (G_OPTION_ARG_FILENAME) */
  ATK_OPTION_STRV,       /* char **; parse required (a list) */
  ATK_OPTION_BOOL,       /* gboolean; --flag, --flag=true|false|1|0 */
  ATK_OPTION_INT,        /* int, within [min, max] */
  ATK_OPTION_UINT,       /* guint, within [min, max] */
  ATK_OPTION_UINT64,     /* guint64, within [min, max] */
  ATK_OPTION_INT64,      /* gint64, within [min, max] (max at most G_MAXINT64) */
  ATK_OPTION_ENUM,       /* an enum (or several fields); parse required */
  ATK_OPTION_SWITCH,     /* gboolean; a bare flag without value or variable */
  ATK_OPTION_PROPERTIES, /* GPtrArray of "key=value"; repeatable (atk-config-kafka.c) */
} AtkOptionType;

typedef enum
{
  ATK_OPTION_NONE = 0,
  ATK_OPTION_NO_ENV = 1 << 0,         /* flag only: no ATKAFKA_* variable, no help suffix */
  ATK_OPTION_EMPTY_IS_UNSET = 1 << 1, /* "" leaves the field NULL */
  ATK_OPTION_REQUIRED = 1 << 2,       /* must be given, unless --stdout (which ignores it) */
  ATK_OPTION_VERSION = 1 << 3,        /* prints the version and exits; no field */
} AtkOptionFlags;

/* The field's offset for rows without one (--version). */
#define ATK_OPTION_NO_FIELD G_MAXSIZE

typedef struct _AtkOption AtkOption;

/* Reads text (never NULL) into field (the row's field in config). flag is "--name", for
 * messages: a bad value is ATK_ERROR_BAD_CONFIG with a one-line message naming it. */
typedef gboolean (*AtkOptionParse) (const AtkOption *option, const char *flag, const char *text,
                                    gpointer field, AtkConfig *config, GError **error);

struct _AtkOption
{
  const char *name; /* the long flag without "--" */
  char short_name;  /* or 0 */
  AtkOptionType type;
  const char *fallback; /* the default, as text (parsed like a given value), or NULL */
  guint64 min, max;     /* bounds of the number types */
  gsize offset;         /* G_STRUCT_OFFSET (AtkConfig, field), or ATK_OPTION_NO_FIELD */
  AtkOptionParse parse; /* NULL: by type */
  AtkOptionFlags flags;
  const char *help;              /* N_(), without the suffix */
  const char *arg;               /* N_() placeholder of the value ("URL"), or NULL */
  const char *fallback_variable; /* read when neither flag nor ATKAFKA_* is set, or NULL */
  const char *note;              /* N_() help suffix instead of "default …", or NULL */
};

/* atk-config-options.c */
const AtkOption *atk_config_options (gsize *n_options);

/* atk-config.c */
/* "ATKAFKA_IDLE_TIMEOUT" for "idle-timeout". */
char *atk_option_variable (const AtkOption *option);
/* "[ATKAFKA_IDLE_TIMEOUT, default 60]", translated; NULL for ATK_OPTION_NO_ENV rows. */
char *atk_option_help_suffix (const AtkOption *option);

/* atk-config-values.c: parsers for the rows' parse column */
gboolean atk_config_parse_bool (const char *flag, const char *text, gboolean *out, GError **error);
gboolean atk_config_parse_uint (const char *flag, const char *text, guint64 min, guint64 max,
                                guint64 *out, GError **error);
gboolean atk_option_parse_nsid_list (const AtkOption *option, const char *flag, const char *text,
                                     gpointer field, AtkConfig *config, GError **error);
gboolean atk_option_parse_host_list (const AtkOption *option, const char *flag, const char *text,
                                     gpointer field, AtkConfig *config, GError **error);
gboolean atk_option_parse_http_url (const AtkOption *option, const char *flag, const char *text,
                                    gpointer field, AtkConfig *config, GError **error);
gboolean atk_option_parse_ws_url (const AtkOption *option, const char *flag, const char *text,
                                  gpointer field, AtkConfig *config, GError **error);
gboolean atk_option_parse_servers (const AtkOption *option, const char *flag, const char *text,
                                   gpointer field, AtkConfig *config, GError **error);
gboolean atk_option_parse_topic (const AtkOption *option, const char *flag, const char *text,
                                 gpointer field, AtkConfig *config, GError **error);
gboolean atk_option_parse_payload_format (const AtkOption *option, const char *flag,
                                          const char *text, gpointer field, AtkConfig *config,
                                          GError **error);
gboolean atk_option_parse_compression (const AtkOption *option, const char *flag, const char *text,
                                       gpointer field, AtkConfig *config, GError **error);
gboolean atk_option_parse_cursor (const AtkOption *option, const char *flag, const char *text,
                                  gpointer field, AtkConfig *config, GError **error);
gboolean atk_option_parse_bus (const AtkOption *option, const char *flag, const char *text,
                               gpointer field, AtkConfig *config, GError **error);
gboolean atk_option_parse_directory (const AtkOption *option, const char *flag, const char *text,
                                     gpointer field, AtkConfig *config, GError **error);

/* atk-config-checks.c: the rules between options, once every value is read. */
gboolean atk_config_check (const AtkConfig *config, GError **error);

/* atk-config-kafka.c: ATKAFKA_KAFKA_SASL_MECHANISM=PLAIN → "sasl.mechanism=PLAIN", then the
 * -X key=value flags in their order. */
gboolean atk_config_collect_kafka_properties (const char *flag, char **given, char **envp,
                                              GPtrArray **out, GError **error);

G_END_DECLS
