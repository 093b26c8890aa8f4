/* at-kafka: options from flags and ATKAFKA_* environment variables.
 *
 * Every option is read as text first (flag, else variable, else default) and then
 * validated by one parser per kind, so a bad value gives the same one-line message
 * whichever way it arrived.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka"

#include "atk-config.h"

#include <glib/gi18n.h>
#include <stdlib.h>

#include "atk-error.h"

#define DEFAULT_RELAY_HOST "wss://bsky.network"
#define DEFAULT_METRICS_ADDRESS ":2112"
#define KAFKA_ENV_PREFIX "ATKAFKA_KAFKA_"

/* The raw text of each option as given on the command line (NULL when absent). */
typedef struct
{
  char *relay_host;
  char *bootstrap_servers;
  char *output_topic;
  char *osprey_compatible;
  char *metrics_listen_address;
  char *watched_collections;
  char *ignored_collections;
  char *watched_services;
  char *ignored_services;
  char *plc_host;
  char *api_host;
  char *event_metadata;
  char *tap_host;
  char *disable_acks;
  char *compression;
  char *topic_partitions;
  char *topic_replication;
  char **kafka_properties;
  char *max_frame_bytes;
  char *idle_timeout;
  char *max_seq_jump;
  char *cursor;
  char *state_directory;
  char *cursor_save_interval;
  char *max_in_flight_bytes;
  char *max_in_flight_messages;
  char *transactional_id;
  char *bus;
  char *input_file;
  gboolean to_stdout;
  gboolean verbose;
  gboolean version;
} RawOptions;

static void
raw_options_clear (RawOptions *raw)
{
  char **strings[] = {
    &raw->relay_host,
    &raw->bootstrap_servers,
    &raw->output_topic,
    &raw->osprey_compatible,
    &raw->metrics_listen_address,
    &raw->watched_collections,
    &raw->ignored_collections,
    &raw->watched_services,
    &raw->ignored_services,
    &raw->plc_host,
    &raw->api_host,
    &raw->event_metadata,
    &raw->tap_host,
    &raw->disable_acks,
    &raw->compression,
    &raw->topic_partitions,
    &raw->topic_replication,
    &raw->max_frame_bytes,
    &raw->idle_timeout,
    &raw->max_seq_jump,
    &raw->cursor,
    &raw->state_directory,
    &raw->cursor_save_interval,
    &raw->max_in_flight_bytes,
    &raw->max_in_flight_messages,
    &raw->transactional_id,
    &raw->bus,
    &raw->input_file,
  };
  for (gsize i = 0; i < G_N_ELEMENTS (strings); i++)
    g_clear_pointer (strings[i], g_free);
  g_clear_pointer (&raw->kafka_properties, g_strfreev);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (RawOptions, raw_options_clear)

/* Boolean flags take an optional value, so that --osprey-compatible=false works too. */
static gboolean
parse_optional_bool (const char *option_name, const char *value, gpointer data, GError **error)
{
  RawOptions *raw = data;
  char **field;

  if (g_strcmp0 (option_name, "--event-metadata") == 0)
    field = &raw->event_metadata;
  else if (g_strcmp0 (option_name, "--disable-acks") == 0)
    field = &raw->disable_acks;
  else
    field = &raw->osprey_compatible;
  g_free (*field);
  *field = g_strdup (value != NULL ? value : "true");
  return TRUE;
}

static GOptionEntry *
build_entries (RawOptions *raw)
{
  GOptionEntry entries[] = {
    { "relay-host", 0, 0, G_OPTION_ARG_STRING, &raw->relay_host,
      N_ ("Relay to subscribe to (ws://, wss://, http:// or https://) [ATKAFKA_RELAY_HOST, "
          "default wss://bsky.network]"),
      N_ ("URL") },
    { "bootstrap-servers", 0, 0, G_OPTION_ARG_STRING, &raw->bootstrap_servers,
      N_ ("Comma-separated Kafka bootstrap servers, host:port [ATKAFKA_BOOTSTRAP_SERVERS, "
          "required]"),
      N_ ("LIST") },
    { "output-topic", 0, 0, G_OPTION_ARG_STRING, &raw->output_topic,
      N_ ("Kafka topic to produce to [ATKAFKA_OUTPUT_TOPIC, required]"), N_ ("TOPIC") },
    { "osprey-compatible", 0, G_OPTION_FLAG_OPTIONAL_ARG, G_OPTION_ARG_CALLBACK,
      parse_optional_bool,
      N_ ("Wrap events in the Osprey envelope [ATKAFKA_OSPREY_COMPATIBLE, default false]"),
      N_ ("BOOL") },
    { "metrics-listen-address", 0, 0, G_OPTION_ARG_STRING, &raw->metrics_listen_address,
      N_ ("Prometheus endpoint address, empty to disable [ATKAFKA_METRICS_LISTEN_ADDRESS, "
          "default :2112]"),
      N_ ("ADDRESS") },
    { "watched-collections", 0, 0, G_OPTION_ARG_STRING, &raw->watched_collections,
      N_ ("Only produce operations on these collections; app.bsky.* matches a prefix "
          "[ATKAFKA_WATCHED_COLLECTIONS]"),
      N_ ("NSIDS") },
    { "ignored-collections", 0, 0, G_OPTION_ARG_STRING, &raw->ignored_collections,
      N_ ("Never produce operations on these collections [ATKAFKA_IGNORED_COLLECTIONS]"),
      N_ ("NSIDS") },
    { "watched-services", 0, 0, G_OPTION_ARG_STRING, &raw->watched_services,
      N_ ("Only accounts whose PDS is one of these hosts; *.example.com matches subdomains; "
          "needs --plc-host [ATKAFKA_WATCHED_SERVICES]"),
      N_ ("HOSTS") },
    { "ignored-services", 0, 0, G_OPTION_ARG_STRING, &raw->ignored_services,
      N_ ("Skip accounts whose PDS is one of these hosts; needs --plc-host "
          "[ATKAFKA_IGNORED_SERVICES]"),
      N_ ("HOSTS") },
    { "plc-host", 0, 0, G_OPTION_ARG_STRING, &raw->plc_host,
      N_ ("PLC directory (http or https URL) for DID documents [ATKAFKA_PLC_HOST]"), N_ ("URL") },
    { "api-host", 0, 0, G_OPTION_ARG_STRING, &raw->api_host,
      N_ ("AppView (http or https URL) for profiles in the event metadata [ATKAFKA_API_HOST]"),
      N_ ("URL") },
    { "event-metadata", 0, G_OPTION_FLAG_OPTIONAL_ARG, G_OPTION_ARG_CALLBACK, parse_optional_bool,
      N_ ("Attach eventMetadata (DID document, PDS host, handle, account age, profile); needs "
          "--plc-host [ATKAFKA_EVENT_METADATA, default false]"),
      N_ ("BOOL") },
    { "tap-host", 0, 0, G_OPTION_ARG_STRING, &raw->tap_host,
      N_ ("Read events from a Tap service (ws:// or wss://) instead of a relay "
          "[ATKAFKA_TAP_HOST]"),
      N_ ("URL") },
    { "disable-acks", 0, G_OPTION_FLAG_OPTIONAL_ARG, G_OPTION_ARG_CALLBACK, parse_optional_bool,
      N_ ("Tap mode: send no acks (Tap must run without acks) [ATKAFKA_DISABLE_ACKS, default "
          "false]"),
      N_ ("BOOL") },
    { "compression", 0, 0, G_OPTION_ARG_STRING, &raw->compression,
      N_ ("Kafka compression codec: none, gzip, snappy, lz4 or zstd [ATKAFKA_COMPRESSION, "
          "default lz4]"),
      N_ ("CODEC") },
    { "topic-partitions", 0, 0, G_OPTION_ARG_STRING, &raw->topic_partitions,
      N_ ("Partitions when creating the topic [ATKAFKA_TOPIC_PARTITIONS, default 200]"), N_ ("N") },
    { "topic-replication-factor", 0, 0, G_OPTION_ARG_STRING, &raw->topic_replication,
      N_ ("Replication factor when creating the topic [ATKAFKA_TOPIC_REPLICATION_FACTOR, "
          "default 1]"),
      N_ ("N") },
    { "kafka-property", 'X', 0, G_OPTION_ARG_STRING_ARRAY, &raw->kafka_properties,
      N_ ("Any librdkafka property, repeatable (also ATKAFKA_KAFKA_SASL_MECHANISM=… for "
          "sasl.mechanism)"),
      N_ ("KEY=VALUE") },
    { "max-frame-bytes", 0, 0, G_OPTION_ARG_STRING, &raw->max_frame_bytes,
      N_ ("Largest WebSocket message accepted from the relay [ATKAFKA_MAX_FRAME_BYTES, "
          "default 6291456]"),
      N_ ("BYTES") },
    { "idle-timeout", 0, 0, G_OPTION_ARG_STRING, &raw->idle_timeout,
      N_ ("Reconnect when the relay sends nothing for this many seconds [ATKAFKA_IDLE_TIMEOUT, "
          "default 60]"),
      N_ ("SECONDS") },
    { "max-seq-jump", 0, 0, G_OPTION_ARG_STRING, &raw->max_seq_jump,
      N_ ("Largest step between consecutive seqs, and between the two stored cursors, taken "
          "as sane; 0: no bound [ATKAFKA_MAX_SEQ_JUMP, default 10000000]"),
      N_ ("N") },
    { "cursor", 0, 0, G_OPTION_ARG_STRING, &raw->cursor,
      N_ ("Start after this seq, or \"live\" for the live tip; default: the stored cursor "
          "[ATKAFKA_CURSOR]"),
      N_ ("SEQ|live") },
    { "state-directory", 0, 0, G_OPTION_ARG_FILENAME, &raw->state_directory,
      N_ ("Where the cursor is kept [ATKAFKA_STATE_DIRECTORY, else $STATE_DIRECTORY]"),
      N_ ("DIR") },
    { "cursor-save-interval", 0, 0, G_OPTION_ARG_STRING, &raw->cursor_save_interval,
      N_ ("Save the cursor at most this often, in ms [ATKAFKA_CURSOR_SAVE_INTERVAL, default "
          "1000]"),
      N_ ("MS") },
    { "max-in-flight-bytes", 0, 0, G_OPTION_ARG_STRING, &raw->max_in_flight_bytes,
      N_ ("Stop reading the relay above this many unacknowledged bytes "
          "[ATKAFKA_MAX_IN_FLIGHT_BYTES, default 268435456]"),
      N_ ("BYTES") },
    { "max-in-flight-messages", 0, 0, G_OPTION_ARG_STRING, &raw->max_in_flight_messages,
      N_ ("Stop reading the relay above this many unacknowledged messages "
          "[ATKAFKA_MAX_IN_FLIGHT_MESSAGES, default 200000]"),
      N_ ("N") },
    { "transactional-id", 0, 0, G_OPTION_ARG_STRING, &raw->transactional_id,
      N_ ("Produce in Kafka transactions with this id (exactly once for read_committed "
          "consumers) [ATKAFKA_TRANSACTIONAL_ID]"),
      N_ ("ID") },
    { "bus", 0, 0, G_OPTION_ARG_STRING, &raw->bus,
      N_ ("D-Bus to serve on: system, session or none [ATKAFKA_BUS, default: system under "
          "systemd, else session]"),
      N_ ("BUS") },
    { "input", 'i', 0, G_OPTION_ARG_FILENAME, &raw->input_file,
      N_ ("Read frames from a file of [u32 LE length][frame] records instead of a relay"),
      N_ ("FILE") },
    { "stdout", 0, 0, G_OPTION_ARG_NONE, &raw->to_stdout,
      N_ ("Write each message value as a line of JSON to standard output instead of Kafka"), NULL },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &raw->verbose, N_ ("Log debug messages"), NULL },
    { "version", 0, 0, G_OPTION_ARG_NONE, &raw->version, N_ ("Print the version and exit"), NULL },
    { NULL },
  };
  return g_memdup2 (entries, sizeof entries);
}

/* The value of an option: the flag if given, else the environment variable, else NULL. */
static const char *
pick (const char *flag, char **envp, const char *variable)
{
  if (flag != NULL)
    return flag;
  return g_environ_getenv (envp, variable);
}

static gboolean
parse_bool (const char *option, const char *text, gboolean *out, GError **error)
{
  if (g_ascii_strcasecmp (text, "true") == 0 || g_strcmp0 (text, "1") == 0)
    *out = TRUE;
  else if (g_ascii_strcasecmp (text, "false") == 0 || g_strcmp0 (text, "0") == 0)
    *out = FALSE;
  else
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   _ ("%s: expected true or false, got “%s”"), option, text);
      return FALSE;
    }
  return TRUE;
}

static gboolean
parse_uint (const char *option, const char *text, guint64 min, guint64 max, guint64 *out,
            GError **error)
{
  guint64 value = 0;

  if (!g_ascii_string_to_unsigned (text, 10, min, max, &value, NULL))
    {
      /* Numbers as strings first: a format macro inside _() cannot be extracted. */
      g_autofree char *low = g_strdup_printf ("%" G_GUINT64_FORMAT, min);
      g_autofree char *high = g_strdup_printf ("%" G_GUINT64_FORMAT, max);
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   _ ("%s: expected a whole number from %s to %s, got “%s”"), option, low, high,
                   text);
      return FALSE;
    }
  *out = value;
  return TRUE;
}

/* Splits "a, b,c" into a NULL-terminated list; each item must be an NSID or "prefix.*". */
static gboolean
parse_nsid_list (const char *option, const char *text, char ***out, GError **error)
{
  g_auto (GStrv) parts = g_strsplit (text, ",", -1);
  g_autoptr (GPtrArray) items = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; parts[i] != NULL; i++)
    {
      char *item = g_strstrip (parts[i]);
      if (*item == '\0')
        continue;
      for (const char *c = item; *c; c++)
        if (!g_ascii_isalnum (*c) && *c != '.' && *c != '-' && !(*c == '*' && c[1] == '\0'))
          {
            g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                         _ ("%s: “%s” is not a collection NSID (like app.bsky.feed.post or "
                            "app.bsky.*)"),
                         option, item);
            return FALSE;
          }
      g_ptr_array_add (items, g_strdup (item));
    }
  g_ptr_array_add (items, NULL);
  *out = (char **)g_ptr_array_free (g_steal_pointer (&items), FALSE);
  return TRUE;
}

char *
atk_config_normalise_relay_url (const char *url, GError **error)
{
  g_autoptr (GUri) uri = NULL;
  const char *scheme;
  const char *ws_scheme;
  g_autofree char *path = NULL;
  g_autoptr (GError) local_error = NULL;

  uri = g_uri_parse (url, G_URI_FLAGS_NONE, &local_error);
  if (uri == NULL)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   _ ("--relay-host: “%s” is not a URL: %s"), url, local_error->message);
      return NULL;
    }
  scheme = g_uri_get_scheme (uri);
  if (g_ascii_strcasecmp (scheme, "ws") == 0 || g_ascii_strcasecmp (scheme, "http") == 0)
    ws_scheme = "ws";
  else if (g_ascii_strcasecmp (scheme, "wss") == 0 || g_ascii_strcasecmp (scheme, "https") == 0)
    ws_scheme = "wss";
  else
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   _ ("--relay-host: “%s” must start with ws://, wss://, http:// or https://"),
                   url);
      return NULL;
    }
  if (g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0')
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG, _ ("--relay-host: “%s” has no host"),
                   url);
      return NULL;
    }
  if (g_uri_get_query (uri) != NULL || g_uri_get_fragment (uri) != NULL)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   _ ("--relay-host: “%s” must not have a query or fragment"), url);
      return NULL;
    }
  path = g_strdup (g_uri_get_path (uri));
  while (*path != '\0' && path[strlen (path) - 1] == '/')
    path[strlen (path) - 1] = '\0';
  {
    g_autoptr (GUri) normalised
        = g_uri_build (G_URI_FLAGS_NONE, ws_scheme, NULL, g_uri_get_host (uri),
                       g_uri_get_port (uri), path, NULL, NULL);
    return g_uri_to_string (normalised);
  }
}

/* host:port[,host:port…], as librdkafka would accept it; caught here to fail at start. */
static gboolean
validate_bootstrap_servers (const char *text, GError **error)
{
  g_auto (GStrv) servers = g_strsplit (text, ",", -1);
  guint n = 0;

  for (guint i = 0; servers[i] != NULL; i++)
    {
      const char *server = g_strstrip (servers[i]);
      const char *colon = strrchr (server, ':');
      guint64 port = 0;

      if (*server == '\0')
        continue;
      /* "PLAINTEXT://host:port" and friends are fine too. */
      if (strstr (server, "://") != NULL)
        server = strstr (server, "://") + 3;
      colon = strrchr (server, ':');
      if (colon == NULL || colon == server
          || !g_ascii_string_to_unsigned (colon + 1, 10, 1, 65535, &port, NULL))
        {
          g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                       _ ("--bootstrap-servers: “%s” is not host:port"), servers[i]);
          return FALSE;
        }
      for (const char *c = server; c < colon; c++)
        if (!g_ascii_isalnum (*c) && !strchr (".-_[]:", *c))
          {
            g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                         _ ("--bootstrap-servers: “%s” is not host:port"), servers[i]);
            return FALSE;
          }
      n++;
    }
  if (n == 0)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   _ ("--bootstrap-servers: no server given"));
      return FALSE;
    }
  return TRUE;
}

/* ATKAFKA_KAFKA_SASL_MECHANISM=PLAIN → "sasl.mechanism=PLAIN". */
static void
collect_kafka_env_properties (char **envp, GPtrArray *properties)
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

static gboolean
parse_kafka_properties (const RawOptions *raw, char **envp, AtkConfig *config, GError **error)
{
  config->kafka_properties = g_ptr_array_new_with_free_func (g_free);
  collect_kafka_env_properties (envp, config->kafka_properties);
  for (guint i = 0; raw->kafka_properties != NULL && raw->kafka_properties[i] != NULL; i++)
    {
      const char *property = raw->kafka_properties[i];
      const char *eq = strchr (property, '=');
      if (eq == NULL || eq == property)
        {
          g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                       _ ("--kafka-property: “%s” is not key=value"), property);
          return FALSE;
        }
      g_ptr_array_add (config->kafka_properties, g_strdup (property));
    }
  return TRUE;
}

static gboolean
parse_cursor (const char *text, AtkConfig *config, GError **error)
{
  guint64 seq = 0;

  if (text == NULL || *text == '\0')
    config->cursor_mode = ATK_CURSOR_STORED;
  else if (g_ascii_strcasecmp (text, "live") == 0)
    config->cursor_mode = ATK_CURSOR_LIVE;
  else if (parse_uint ("--cursor", text, 0, G_MAXINT64, &seq, error))
    {
      config->cursor_mode = ATK_CURSOR_SEQ;
      config->cursor = (gint64)seq;
    }
  else
    return FALSE;
  return TRUE;
}

static gboolean
parse_bus (const char *text, AtkConfig *config, GError **error)
{
  if (text == NULL || *text == '\0' || g_strcmp0 (text, "auto") == 0)
    config->bus = ATK_BUS_AUTO;
  else if (g_strcmp0 (text, "system") == 0)
    config->bus = ATK_BUS_SYSTEM;
  else if (g_strcmp0 (text, "session") == 0)
    config->bus = ATK_BUS_SESSION;
  else if (g_strcmp0 (text, "none") == 0)
    config->bus = ATK_BUS_NONE;
  else
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   _ ("--bus: expected system, session or none, got “%s”"), text);
      return FALSE;
    }
  return TRUE;
}

static gboolean
parse_compression (const char *text, AtkConfig *config, GError **error)
{
  const char *const codecs[] = { "none", "gzip", "snappy", "lz4", "zstd", NULL };

  if (!g_strv_contains (codecs, text))
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   _ ("--compression: expected none, gzip, snappy, lz4 or zstd, got “%s”"), text);
      return FALSE;
    }
  config->compression = g_strdup (text);
  return TRUE;
}

/* "https://plc.directory" and friends: an http(s) URL with a host, kept without a trailing '/'. */
static gboolean
parse_http_url (const char *option, const char *text, char **out, GError **error)
{
  g_autoptr (GUri) uri = g_uri_parse (text, G_URI_FLAGS_NONE, NULL);
  const char *scheme = uri != NULL ? g_uri_get_scheme (uri) : NULL;
  gsize len = strlen (text);

  if (uri == NULL || g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0'
      || (g_ascii_strcasecmp (scheme, "http") != 0 && g_ascii_strcasecmp (scheme, "https") != 0))
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   _ ("%s: “%s” is not an http:// or https:// URL"), option, text);
      return FALSE;
    }
  while (len > 0 && text[len - 1] == '/')
    len--;
  *out = g_strndup (text, len);
  return TRUE;
}

/* PDS host patterns: "pds.example.com" or "*.example.com". */
static gboolean
parse_host_list (const char *option, const char *text, char ***out, GError **error)
{
  g_auto (GStrv) parts = g_strsplit (text, ",", -1);
  g_autoptr (GPtrArray) items = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; parts[i] != NULL; i++)
    {
      char *item = g_strstrip (parts[i]);
      const char *host = g_str_has_prefix (item, "*.") ? item + 2 : item;

      if (*item == '\0')
        continue;
      for (const char *c = host; *c; c++)
        if (!g_ascii_isalnum (*c) && *c != '.' && *c != '-' && *c != ':')
          {
            g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                         _ ("%s: “%s” is not a host name (like pds.example.com or "
                            "*.example.com)"),
                         option, item);
            return FALSE;
          }
      g_ptr_array_add (items, g_ascii_strdown (item, -1));
    }
  g_ptr_array_add (items, NULL);
  *out = (char **)g_ptr_array_free (g_steal_pointer (&items), FALSE);
  return TRUE;
}

static gboolean
parse_services (const RawOptions *raw, char **envp, AtkConfig *config, GError **error)
{
  const char *plc = pick (raw->plc_host, envp, "ATKAFKA_PLC_HOST");
  const char *api = pick (raw->api_host, envp, "ATKAFKA_API_HOST");
  const char *watched = pick (raw->watched_services, envp, "ATKAFKA_WATCHED_SERVICES");
  const char *ignored = pick (raw->ignored_services, envp, "ATKAFKA_IGNORED_SERVICES");
  const char *metadata = pick (raw->event_metadata, envp, "ATKAFKA_EVENT_METADATA");

  if (plc != NULL && *plc != '\0' && !parse_http_url ("--plc-host", plc, &config->plc_host, error))
    return FALSE;
  if (api != NULL && *api != '\0' && !parse_http_url ("--api-host", api, &config->api_host, error))
    return FALSE;
  if (watched != NULL
      && !parse_host_list ("--watched-services", watched, &config->watched_services, error))
    return FALSE;
  if (ignored != NULL
      && !parse_host_list ("--ignored-services", ignored, &config->ignored_services, error))
    return FALSE;
  if (metadata != NULL
      && !parse_bool ("--event-metadata", metadata, &config->event_metadata, error))
    return FALSE;
  if (config->watched_services != NULL && config->watched_services[0] != NULL
      && config->ignored_services != NULL && config->ignored_services[0] != NULL)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   _ ("--watched-services and --ignored-services cannot be used together"));
      return FALSE;
    }
  if (config->plc_host == NULL
      && ((config->watched_services != NULL && config->watched_services[0] != NULL)
          || (config->ignored_services != NULL && config->ignored_services[0] != NULL)
          || config->event_metadata))
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   _ ("--plc-host is needed for service filters and --event-metadata"));
      return FALSE;
    }
  return TRUE;
}

static gboolean
parse_tap (const RawOptions *raw, char **envp, AtkConfig *config, GError **error)
{
  const char *tap = pick (raw->tap_host, envp, "ATKAFKA_TAP_HOST");
  const char *disable_acks = pick (raw->disable_acks, envp, "ATKAFKA_DISABLE_ACKS");

  if (disable_acks != NULL
      && !parse_bool ("--disable-acks", disable_acks, &config->disable_acks, error))
    return FALSE;
  if (tap == NULL || *tap == '\0')
    return TRUE;
  config->tap_host = atk_config_normalise_relay_url (tap, error);
  if (config->tap_host == NULL)
    {
      /* The URL check names --relay-host; say which option it was. */
      g_prefix_error (error, "--tap-host: ");
      return FALSE;
    }
  return TRUE;
}

/* Each numeric option: its flag text, variable, default, bounds and destination. */
static gboolean
parse_numbers (const RawOptions *raw, char **envp, AtkConfig *config, GError **error)
{
  const struct
  {
    const char *flag;
    const char *value;
    const char *variable;
    guint64 fallback, min, max;
    guint64 *out;
  } numbers[] = {
    { "--topic-partitions", raw->topic_partitions, "ATKAFKA_TOPIC_PARTITIONS", 200, 1, 100000 },
    { "--topic-replication-factor", raw->topic_replication, "ATKAFKA_TOPIC_REPLICATION_FACTOR", 1,
      1, 32767 },
    { "--max-frame-bytes", raw->max_frame_bytes, "ATKAFKA_MAX_FRAME_BYTES", 6 * 1024 * 1024,
      64 * 1024, 64 * 1024 * 1024 },
    { "--idle-timeout", raw->idle_timeout, "ATKAFKA_IDLE_TIMEOUT", 60, 1, 86400 },
    { "--cursor-save-interval", raw->cursor_save_interval, "ATKAFKA_CURSOR_SAVE_INTERVAL", 1000, 10,
      3600 * 1000 },
    { "--max-in-flight-bytes", raw->max_in_flight_bytes, "ATKAFKA_MAX_IN_FLIGHT_BYTES",
      256 * 1024 * 1024, 1024 * 1024, G_GUINT64_CONSTANT (1) << 40 },
    { "--max-in-flight-messages", raw->max_in_flight_messages, "ATKAFKA_MAX_IN_FLIGHT_MESSAGES",
      200000, 100, 10000000 },
    { "--max-seq-jump", raw->max_seq_jump, "ATKAFKA_MAX_SEQ_JUMP", 10000000, 0,
      G_GUINT64_CONSTANT (1) << 53 },
  };
  guint64 values[G_N_ELEMENTS (numbers)];

  for (gsize i = 0; i < G_N_ELEMENTS (numbers); i++)
    {
      const char *text = pick (numbers[i].value, envp, numbers[i].variable);
      values[i] = numbers[i].fallback;
      if (text != NULL
          && !parse_uint (numbers[i].flag, text, numbers[i].min, numbers[i].max, &values[i], error))
        return FALSE;
    }
  config->topic_partitions = (int)values[0];
  config->topic_replication = (int)values[1];
  config->max_frame_bytes = (guint)values[2];
  config->idle_timeout_s = (guint)values[3];
  config->cursor_save_interval_ms = (guint)values[4];
  config->max_in_flight_bytes = values[5];
  config->max_in_flight_messages = (guint)values[6];
  config->max_seq_jump = (gint64)values[7];
  return TRUE;
}

static gboolean
parse_filters (const RawOptions *raw, char **envp, AtkConfig *config, GError **error)
{
  const char *watched = pick (raw->watched_collections, envp, "ATKAFKA_WATCHED_COLLECTIONS");
  const char *ignored = pick (raw->ignored_collections, envp, "ATKAFKA_IGNORED_COLLECTIONS");

  if (watched != NULL
      && !parse_nsid_list ("--watched-collections", watched, &config->watched_collections, error))
    return FALSE;
  if (ignored != NULL
      && !parse_nsid_list ("--ignored-collections", ignored, &config->ignored_collections, error))
    return FALSE;
  if (config->watched_collections != NULL && config->watched_collections[0] != NULL
      && config->ignored_collections != NULL && config->ignored_collections[0] != NULL)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   _ ("--watched-collections and --ignored-collections cannot be used together"));
      return FALSE;
    }
  return TRUE;
}

static gboolean
parse_kafka_target (const RawOptions *raw, char **envp, AtkConfig *config, GError **error)
{
  const char *servers = pick (raw->bootstrap_servers, envp, "ATKAFKA_BOOTSTRAP_SERVERS");
  const char *topic = pick (raw->output_topic, envp, "ATKAFKA_OUTPUT_TOPIC");

  if (config->to_stdout)
    return TRUE; /* --stdout needs no broker */
  if (servers == NULL || *servers == '\0')
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   _ ("--bootstrap-servers (or ATKAFKA_BOOTSTRAP_SERVERS) is required"));
      return FALSE;
    }
  if (!validate_bootstrap_servers (servers, error))
    return FALSE;
  if (topic == NULL || *topic == '\0')
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   _ ("--output-topic (or ATKAFKA_OUTPUT_TOPIC) is required"));
      return FALSE;
    }
  for (const char *c = topic; *c; c++)
    if ((!g_ascii_isalnum (*c) && !strchr ("._-", *c)) || strlen (topic) > 249)
      {
        g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                     _ ("--output-topic: “%s” is not a valid Kafka topic name"), topic);
        return FALSE;
      }
  config->bootstrap_servers = g_strdup (servers);
  config->output_topic = g_strdup (topic);
  return TRUE;
}

static gboolean
config_from_raw (const RawOptions *raw, char **envp, AtkConfig *config, GError **error)
{
  const char *text;

  config->input_file = g_strdup (raw->input_file);
  config->to_stdout = raw->to_stdout;
  config->verbose = raw->verbose;

  if (!parse_services (raw, envp, config, error) || !parse_tap (raw, envp, config, error))
    return FALSE;
  text = pick (raw->relay_host, envp, "ATKAFKA_RELAY_HOST");
  config->relay_host = atk_config_normalise_relay_url (text ? text : DEFAULT_RELAY_HOST, error);
  if (config->relay_host == NULL)
    return FALSE;
  if (!parse_kafka_target (raw, envp, config, error))
    return FALSE;
  text = pick (raw->osprey_compatible, envp, "ATKAFKA_OSPREY_COMPATIBLE");
  if (text != NULL && !parse_bool ("--osprey-compatible", text, &config->osprey_compatible, error))
    return FALSE;
  text = pick (raw->metrics_listen_address, envp, "ATKAFKA_METRICS_LISTEN_ADDRESS");
  config->metrics_listen_address = g_strdup (text ? text : DEFAULT_METRICS_ADDRESS);
  text = pick (raw->compression, envp, "ATKAFKA_COMPRESSION");
  if (!parse_compression (text ? text : "lz4", config, error))
    return FALSE;
  if (!parse_numbers (raw, envp, config, error) || !parse_filters (raw, envp, config, error)
      || !parse_kafka_properties (raw, envp, config, error))
    return FALSE;
  if (!parse_cursor (pick (raw->cursor, envp, "ATKAFKA_CURSOR"), config, error))
    return FALSE;
  text = pick (raw->state_directory, envp, "ATKAFKA_STATE_DIRECTORY");
  if (text == NULL)
    text = g_environ_getenv (envp, "STATE_DIRECTORY"); /* systemd's StateDirectory= */
  /* systemd may pass several colon-separated directories; the first is ours. */
  if (text != NULL && *text != '\0')
    config->state_directory = g_strndup (text, strcspn (text, ":"));
  text = pick (raw->transactional_id, envp, "ATKAFKA_TRANSACTIONAL_ID");
  if (text != NULL && *text != '\0')
    config->transactional_id = g_strdup (text);
  return parse_bus (pick (raw->bus, envp, "ATKAFKA_BUS"), config, error);
}

AtkConfig *
atk_config_parse (int *argc, char ***argv, char **envp, gboolean *exit_now, GError **error)
{
  g_auto (RawOptions) raw = { 0 };
  g_autofree GOptionEntry *entries = build_entries (&raw);
  g_autoptr (GOptionContext) context = NULL;
  g_autoptr (GOptionGroup) group = NULL;
  g_autoptr (AtkConfig) config = g_new0 (AtkConfig, 1);
  g_autoptr (GError) local_error = NULL;

  *exit_now = FALSE;
  context = g_option_context_new (NULL);
  g_option_context_set_summary (
      context,
      _ ("Subscribe to the AT Protocol firehose and produce every event to Kafka as JSON."));
  g_option_context_set_description (
      context, _ ("Every option can also be set by its ATKAFKA_* environment variable; a flag "
                  "wins over its variable.\nReport bugs on the project's issue tracker."));
  group = g_option_group_new ("at-kafka", NULL, NULL, &raw, NULL);
  g_option_group_add_entries (group, entries);
  g_option_group_set_translation_domain (group, GETTEXT_PACKAGE);
  g_option_context_set_main_group (context, g_steal_pointer (&group));

  if (!g_option_context_parse (context, argc, argv, &local_error))
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG, "%s", local_error->message);
      return NULL;
    }
  if (raw.version)
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
  if (!config_from_raw (&raw, envp, config, error))
    return NULL;
  if (config->to_stdout && config->input_file == NULL)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG, _ ("--stdout needs --input FILE"));
      return NULL;
    }
  return g_steal_pointer (&config);
}

void
atk_config_free (AtkConfig *config)
{
  if (config == NULL)
    return;
  g_free (config->relay_host);
  g_free (config->bootstrap_servers);
  g_free (config->output_topic);
  g_free (config->compression);
  g_clear_pointer (&config->kafka_properties, g_ptr_array_unref);
  g_strfreev (config->watched_collections);
  g_strfreev (config->ignored_collections);
  g_free (config->metrics_listen_address);
  g_free (config->state_directory);
  g_free (config->transactional_id);
  g_free (config->plc_host);
  g_free (config->api_host);
  g_strfreev (config->watched_services);
  g_strfreev (config->ignored_services);
  g_free (config->tap_host);
  g_free (config->input_file);
  g_free (config);
}
