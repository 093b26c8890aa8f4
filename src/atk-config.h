/* at-kafka: the configuration, from flags and ATKAFKA_* environment variables.
 * A flag wins over its variable; a variable wins over the default.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

#include "atk-jetstream.h" /* AtkPayloadFormat */

G_BEGIN_DECLS

typedef enum
{
  ATK_BUS_AUTO,
  ATK_BUS_SYSTEM,
  ATK_BUS_SESSION,
  ATK_BUS_NONE,
} AtkBusType;

typedef enum
{
  ATK_CURSOR_STORED, /* resume from the state file / Kafka (default) */
  ATK_CURSOR_LIVE,   /* start at the live tip on purpose */
  ATK_CURSOR_SEQ,    /* start after an explicit seq */
} AtkCursorMode;

typedef struct
{
  /* source */
  char *relay_host;      /* normalised: ws:// or wss:// scheme, no trailing '/' */
  guint max_frame_bytes; /* WebSocket max incoming payload */
  guint idle_timeout_s;  /* reconnect when no frame arrives for this long */
  guint read_batch_ms;   /* after a read that got data, the next read waits this long */
  gint64 max_seq_jump;   /* a larger step between seqs is a bad frame; 0: no bound */
  AtkCursorMode cursor_mode;
  gint64 cursor;
  char *tls_ca_file; /* PEM CA certificates trusted instead of the system's, or NULL */

  /* Kafka */
  char *bootstrap_servers;
  char *output_topic;
  char *compression; /* librdkafka compression.codec */
  int topic_partitions;
  int topic_replication;
  GPtrArray *kafka_properties; /* "key=value" strings */
  guint64 max_in_flight_bytes; /* backpressure bound */
  guint max_in_flight_messages;
  char *transactional_id; /* NULL: at-least-once; else Kafka transactions */
  char *group_id;         /* NULL: alone; else one of a group, elected through Kafka */

  /* output */
  gboolean osprey_compatible;
  gboolean skip_unrenderable_records; /* the reference's skip instead of "recordError" */
  AtkPayloadFormat payload_format;
  char **watched_collections;
  char **ignored_collections;

  /* DID resolution: event metadata and service filters */
  char *plc_host; /* http(s) URL without trailing '/', or NULL */
  char *api_host;
  char **watched_services; /* lower-case hosts, "*.example.com" for subdomains */
  char **ignored_services;
  gboolean event_metadata;

  /* Tap mode: events from a Tap service instead of a relay */
  char *tap_host; /* normalised ws:// or wss:// base, or NULL */
  gboolean disable_acks;

  /* Ozone mode: moderation events from an Ozone labeler, through a PDS */
  char *ozone_pds_host; /* http(s) URL without trailing '/', or NULL */
  char *ozone_identifier;
  char *ozone_password; /* from the flag, the variable, or the file */
  char *ozone_password_file;
  char *ozone_labeler_did;
  guint ozone_poll_interval_ms;

  /* services */
  char *metrics_listen_address; /* ":2112", "127.0.0.1:2112", or "" to disable */
  char *state_directory;
  guint cursor_save_interval_ms;
  AtkBusType bus;

  /* file mode */
  char *input_file;
  gboolean to_stdout;

  gboolean verbose;
} AtkConfig;

/* Parses argv (consumed) and the environment (envp, e.g. from g_get_environ()). A bad value
 * is ATK_ERROR_BAD_CONFIG with a one-line message naming the option. Returns NULL and
 * sets *exit_now (with *error unset) when --help or --version was handled. */
AtkConfig *atk_config_parse (int *argc, char ***argv, char **envp, gboolean *exit_now,
                             GError **error);
void atk_config_free (AtkConfig *config);

/* "wss://bsky.network" → "wss://bsky.network"; "https://x/" → "wss://x"; bad → error. */
char *atk_config_normalise_relay_url (const char *url, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtkConfig, atk_config_free)

G_END_DECLS
