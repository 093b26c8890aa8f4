/* Tests for the configuration (atk_config_parse): every option as a flag and as its
 * ATKAFKA_* variable, the flag winning over the variable, the defaults README states, each
 * bad value refused with ATK_ERROR_BAD_CONFIG and one line naming the option, the
 * ATKAFKA_KAFKA_<KEY> passthrough and systemd's STATE_DIRECTORY.
 *
 * Only the public API (atk-config.h) is used: the expectations come from README's
 * configuration table, not from the parser's insides.
 * SPDX-License-Identifier: MIT */
#include <string.h>

#include "atk-config.h"
#include "atk-error.h"
#include "atk-test-util.h"

/* The two options every run needs, as variables (so that a test of a flag is not also a
 * test of these). */
static const char *const base_env[] = {
  "ATKAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092",
  "ATKAFKA_OUTPUT_TOPIC=events",
  NULL,
};

/* Parses args (without argv[0]) with the environment base_env + env. */
static AtkConfig *
parse_full (const char *const *args, const char *const *env, gboolean with_base, GError **error)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_auto (GStrv) envp = NULL;
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();
  char **argv_data;
  int argc;
  gboolean exit_now = TRUE;
  AtkConfig *config;

  g_ptr_array_add (argv, g_strdup ("at-kafka"));
  for (guint i = 0; args != NULL && args[i] != NULL; i++)
    g_ptr_array_add (argv, g_strdup (args[i]));
  argc = (int)argv->len;
  g_ptr_array_add (argv, NULL);
  /* The test's own variables first: they win over base_env's (the first one counts). */
  for (guint i = 0; env != NULL && env[i] != NULL; i++)
    g_strv_builder_add (builder, env[i]);
  if (with_base)
    g_strv_builder_addv (builder, (const char **)base_env);
  envp = g_strv_builder_end (builder);

  /* GOption consumes argv: hand it a copy of the pointers, free the strings ourselves. */
  argv_data = g_memdup2 (argv->pdata, argv->len * sizeof (char *));
  config = atk_config_parse (&argc, &argv_data, envp, &exit_now, error);
  g_free (argv_data);
  g_assert_false (exit_now);
  return config;
}

static AtkConfig *
parse (const char *const *args, const char *const *env)
{
  g_autoptr (GError) error = NULL;
  AtkConfig *config = parse_full (args, env, TRUE, &error);

  g_assert_no_error (error);
  g_assert_nonnull (config);
  return config;
}

/* The error for a bad configuration: ATK_ERROR_BAD_CONFIG, one line, naming `names` (a
 * '|'-separated list of words that must all appear). */
static void
assert_refused_full (const char *const *args, const char *const *env, gboolean with_base,
                     const char *names)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (AtkConfig) config = parse_full (args, env, with_base, &error);
  g_auto (GStrv) words = g_strsplit (names, "|", -1);

  g_assert_null (config);
  g_assert_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG);
  g_assert_null (strchr (error->message, '\n'));
  for (guint i = 0; words[i] != NULL; i++)
    if (strstr (error->message, words[i]) == NULL)
      g_error ("the error “%s” does not name %s", error->message, words[i]);
}

static void
assert_refused (const char *const *args, const char *const *env, const char *names)
{
  assert_refused_full (args, env, TRUE, names);
}

/* ---- reading a field of the configuration as text -------------------------------- */

typedef enum
{
  F_RELAY_HOST,
  F_BOOTSTRAP_SERVERS,
  F_OUTPUT_TOPIC,
  F_OSPREY,
  F_METRICS,
  F_WATCHED_COLLECTIONS,
  F_IGNORED_COLLECTIONS,
  F_COMPRESSION,
  F_PARTITIONS,
  F_REPLICATION,
  F_TRANSACTIONAL_ID,
  F_GROUP_ID,
  F_CURSOR,
  F_STATE_DIRECTORY,
  F_SAVE_INTERVAL,
  F_IN_FLIGHT_MESSAGES,
  F_IN_FLIGHT_BYTES,
  F_MAX_FRAME_BYTES,
  F_IDLE_TIMEOUT,
  F_READ_BATCH,
  F_BUS,
  F_PLC_HOST,
  F_API_HOST,
  F_EVENT_METADATA,
  F_WATCHED_SERVICES,
  F_IGNORED_SERVICES,
  F_TAP_HOST,
  F_DISABLE_ACKS,
  F_TLS_CA_FILE,
  F_OZONE_IDENTIFIER,
  F_OZONE_PASSWORD_FILE,
  F_OZONE_LABELER_DID,
  F_OZONE_POLL_INTERVAL,
} Field;

static char *
strv_text (char **strv)
{
  return strv == NULL ? g_strdup ("(none)") : g_strjoinv ("|", strv);
}

static char *
field_text (const AtkConfig *c, Field field)
{
  switch (field)
    {
    case F_RELAY_HOST:
      return g_strdup (c->relay_host);
    case F_BOOTSTRAP_SERVERS:
      return g_strdup (c->bootstrap_servers);
    case F_OUTPUT_TOPIC:
      return g_strdup (c->output_topic);
    case F_OSPREY:
      return g_strdup (c->osprey_compatible ? "true" : "false");
    case F_METRICS:
      return g_strdup (c->metrics_listen_address);
    case F_WATCHED_COLLECTIONS:
      return strv_text (c->watched_collections);
    case F_IGNORED_COLLECTIONS:
      return strv_text (c->ignored_collections);
    case F_COMPRESSION:
      return g_strdup (c->compression);
    case F_PARTITIONS:
      return g_strdup_printf ("%d", c->topic_partitions);
    case F_REPLICATION:
      return g_strdup_printf ("%d", c->topic_replication);
    case F_TRANSACTIONAL_ID:
      return g_strdup (c->transactional_id ? c->transactional_id : "(none)");
    case F_GROUP_ID:
      return g_strdup (c->group_id ? c->group_id : "(none)");
    case F_CURSOR:
      switch (c->cursor_mode)
        {
        case ATK_CURSOR_LIVE:
          return g_strdup ("live");
        case ATK_CURSOR_SEQ:
          return g_strdup_printf ("seq %" G_GINT64_FORMAT, c->cursor);
        case ATK_CURSOR_STORED:
        default:
          return g_strdup ("stored");
        }
    case F_STATE_DIRECTORY:
      return g_strdup (c->state_directory ? c->state_directory : "(none)");
    case F_SAVE_INTERVAL:
      return g_strdup_printf ("%u", c->cursor_save_interval_ms);
    case F_IN_FLIGHT_MESSAGES:
      return g_strdup_printf ("%u", c->max_in_flight_messages);
    case F_IN_FLIGHT_BYTES:
      return g_strdup_printf ("%" G_GUINT64_FORMAT, c->max_in_flight_bytes);
    case F_MAX_FRAME_BYTES:
      return g_strdup_printf ("%u", c->max_frame_bytes);
    case F_IDLE_TIMEOUT:
      return g_strdup_printf ("%u", c->idle_timeout_s);
    case F_READ_BATCH:
      return g_strdup_printf ("%u", c->read_batch_ms);
    case F_BUS:
      {
        const char *const names[] = { "auto", "system", "session", "none" };
        g_assert_cmpuint (c->bus, <, G_N_ELEMENTS (names));
        return g_strdup (names[c->bus]);
      }
    case F_PLC_HOST:
      return g_strdup (c->plc_host ? c->plc_host : "(none)");
    case F_API_HOST:
      return g_strdup (c->api_host ? c->api_host : "(none)");
    case F_EVENT_METADATA:
      return g_strdup (c->event_metadata ? "true" : "false");
    case F_WATCHED_SERVICES:
      return strv_text (c->watched_services);
    case F_IGNORED_SERVICES:
      return strv_text (c->ignored_services);
    case F_TAP_HOST:
      return g_strdup (c->tap_host ? c->tap_host : "(none)");
    case F_DISABLE_ACKS:
      return g_strdup (c->disable_acks ? "true" : "false");
    case F_TLS_CA_FILE:
      return g_strdup (c->tls_ca_file ? c->tls_ca_file : "(none)");
    case F_OZONE_IDENTIFIER:
      return g_strdup (c->ozone_identifier ? c->ozone_identifier : "(none)");
    case F_OZONE_PASSWORD_FILE:
      return g_strdup (c->ozone_password_file ? c->ozone_password_file : "(none)");
    case F_OZONE_LABELER_DID:
      return g_strdup (c->ozone_labeler_did ? c->ozone_labeler_did : "(none)");
    case F_OZONE_POLL_INTERVAL:
      return g_strdup_printf ("%u", c->ozone_poll_interval_ms);
    default:
      g_assert_not_reached ();
    }
}

static void
assert_field (const AtkConfig *config, Field field, const char *want, const char *context)
{
  g_autofree char *got = field_text (config, field);

  if (g_strcmp0 (got, want) != 0)
    g_error ("%s: got “%s”, want “%s”", context, got, want);
}

/* ---- every option: flag, variable, precedence -------------------------------------- */

typedef struct
{
  const char *flag;
  const char *variable;
  Field field;
  const char *value;  /* given as flag or variable … */
  const char *parsed; /* … reads back as this */
  const char *other;  /* a second valid value (the loser when both are given) */
  const char *other_parsed;
  const char *needs; /* an extra variable the option needs (e.g. ATKAFKA_PLC_HOST=…), or NULL */
} OptionCase;

static const OptionCase option_cases[] = {
  { "--relay-host", "ATKAFKA_RELAY_HOST", F_RELAY_HOST, "https://relay.example:8443/",
    "wss://relay.example:8443", "ws://127.0.0.1:2470", "ws://127.0.0.1:2470" },
  { "--bootstrap-servers", "ATKAFKA_BOOTSTRAP_SERVERS", F_BOOTSTRAP_SERVERS,
    "k1.example:9092,k2.example:9093", "k1.example:9092,k2.example:9093", "[::1]:19092",
    "[::1]:19092" },
  { "--output-topic", "ATKAFKA_OUTPUT_TOPIC", F_OUTPUT_TOPIC, "atproto.events-v1_x",
    "atproto.events-v1_x", "other", "other" },
  { "--osprey-compatible", "ATKAFKA_OSPREY_COMPATIBLE", F_OSPREY, "true", "true", "false",
    "false" },
  { "--metrics-listen-address", "ATKAFKA_METRICS_LISTEN_ADDRESS", F_METRICS, "127.0.0.1:9100",
    "127.0.0.1:9100", "", "" },
  { "--watched-collections", "ATKAFKA_WATCHED_COLLECTIONS", F_WATCHED_COLLECTIONS,
    "app.bsky.feed.post, app.bsky.graph.*", "app.bsky.feed.post|app.bsky.graph.*",
    "app.bsky.feed.like", "app.bsky.feed.like" },
  { "--ignored-collections", "ATKAFKA_IGNORED_COLLECTIONS", F_IGNORED_COLLECTIONS,
    "app.bsky.feed.like,chat.bsky.*", "app.bsky.feed.like|chat.bsky.*", "app.bsky.graph.follow",
    "app.bsky.graph.follow" },
  { "--compression", "ATKAFKA_COMPRESSION", F_COMPRESSION, "zstd", "zstd", "none", "none" },
  { "--topic-partitions", "ATKAFKA_TOPIC_PARTITIONS", F_PARTITIONS, "7", "7", "1", "1" },
  { "--topic-replication-factor", "ATKAFKA_TOPIC_REPLICATION_FACTOR", F_REPLICATION, "3", "3", "2",
    "2" },
  { "--transactional-id", "ATKAFKA_TRANSACTIONAL_ID", F_TRANSACTIONAL_ID, "at-kafka-1",
    "at-kafka-1", "other-id", "other-id" },
  { "--group-id", "ATKAFKA_GROUP_ID", F_GROUP_ID, "firehose", "firehose", "other", "other" },
  { "--cursor", "ATKAFKA_CURSOR", F_CURSOR, "123456", "seq 123456", "live", "live" },
  { "--state-directory", "ATKAFKA_STATE_DIRECTORY", F_STATE_DIRECTORY, "/var/lib/at-kafka",
    "/var/lib/at-kafka", "/tmp/other", "/tmp/other" },
  { "--cursor-save-interval", "ATKAFKA_CURSOR_SAVE_INTERVAL", F_SAVE_INTERVAL, "250", "250", "10",
    "10" },
  { "--max-in-flight-messages", "ATKAFKA_MAX_IN_FLIGHT_MESSAGES", F_IN_FLIGHT_MESSAGES, "5000",
    "5000", "100", "100" },
  { "--max-in-flight-bytes", "ATKAFKA_MAX_IN_FLIGHT_BYTES", F_IN_FLIGHT_BYTES, "8388608", "8388608",
    "1048576", "1048576" },
  { "--max-frame-bytes", "ATKAFKA_MAX_FRAME_BYTES", F_MAX_FRAME_BYTES, "1048576", "1048576",
    "65536", "65536" },
  { "--idle-timeout", "ATKAFKA_IDLE_TIMEOUT", F_IDLE_TIMEOUT, "5", "5", "86400", "86400" },
  { "--read-batch-ms", "ATKAFKA_READ_BATCH_MS", F_READ_BATCH, "0", "0", "60", "60" },
  { "--bus", "ATKAFKA_BUS", F_BUS, "none", "none", "session", "session" },
  { "--plc-host", "ATKAFKA_PLC_HOST", F_PLC_HOST, "https://plc.example/", "https://plc.example",
    "http://127.0.0.1:2582", "http://127.0.0.1:2582" },
  { "--api-host", "ATKAFKA_API_HOST", F_API_HOST, "https://api.example", "https://api.example",
    "http://127.0.0.1:3000/", "http://127.0.0.1:3000" },
  { "--event-metadata", "ATKAFKA_EVENT_METADATA", F_EVENT_METADATA, "true", "true", "false",
    "false", "ATKAFKA_PLC_HOST=http://127.0.0.1:2582" },
  { "--watched-services", "ATKAFKA_WATCHED_SERVICES", F_WATCHED_SERVICES,
    "PDS.Example.com, *.bsky.network", "pds.example.com|*.bsky.network", "127.0.0.1:2583",
    "127.0.0.1:2583", "ATKAFKA_PLC_HOST=http://127.0.0.1:2582" },
  { "--ignored-services", "ATKAFKA_IGNORED_SERVICES", F_IGNORED_SERVICES, "*.example.org",
    "*.example.org", "pds.example.net", "pds.example.net",
    "ATKAFKA_PLC_HOST=http://127.0.0.1:2582" },
  { "--tap-host", "ATKAFKA_TAP_HOST", F_TAP_HOST, "http://127.0.0.1:2480/", "ws://127.0.0.1:2480",
    "wss://tap.example", "wss://tap.example" },
  { "--disable-acks", "ATKAFKA_DISABLE_ACKS", F_DISABLE_ACKS, "true", "true", "false", "false" },
  { "--tls-ca-file", "ATKAFKA_TLS_CA_FILE", F_TLS_CA_FILE, "/etc/at-kafka/relay-ca.pem",
    "/etc/at-kafka/relay-ca.pem", "/tmp/other-ca.pem", "/tmp/other-ca.pem" },
  { "--ozone-identifier", "ATKAFKA_OZONE_IDENTIFIER", F_OZONE_IDENTIFIER, "mod.example.com",
    "mod.example.com", "did:plc:abc", "did:plc:abc" },
  { "--ozone-password-file", "ATKAFKA_OZONE_PASSWORD_FILE", F_OZONE_PASSWORD_FILE,
    "/run/credentials/at-kafka.service/ozone-password",
    "/run/credentials/at-kafka.service/ozone-password", "/tmp/pw", "/tmp/pw" },
  { "--ozone-labeler-did", "ATKAFKA_OZONE_LABELER_DID", F_OZONE_LABELER_DID, "did:plc:labeler",
    "did:plc:labeler", "did:web:ozone.example", "did:web:ozone.example" },
  { "--ozone-poll-interval", "ATKAFKA_OZONE_POLL_INTERVAL", F_OZONE_POLL_INTERVAL, "250", "250",
    "5000", "5000" },
};

static void
test_option (gconstpointer data)
{
  const OptionCase *oc = data;
  g_autofree char *flag = g_strdup_printf ("%s=%s", oc->flag, oc->value);
  g_autofree char *flag_other = g_strdup_printf ("%s=%s", oc->flag, oc->other);
  g_autofree char *var = g_strdup_printf ("%s=%s", oc->variable, oc->value);
  g_autofree char *var_other = g_strdup_printf ("%s=%s", oc->variable, oc->other);

  /* the flag alone, in both spellings (--flag=value and --flag value) */
  {
    const char *args[] = { flag, NULL };
    const char *env[] = { oc->needs, NULL };
    g_autoptr (AtkConfig) config = parse (args, env);
    assert_field (config, oc->field, oc->parsed, "flag");
  }
  {
    const char *args[] = { oc->flag, oc->other, NULL };
    const char *env[] = { oc->needs, NULL };
    g_autoptr (AtkConfig) config = NULL;

    /* the optional-argument booleans take their value only as --flag=value */
    if (oc->field == F_OSPREY || oc->field == F_EVENT_METADATA || oc->field == F_DISABLE_ACKS)
      args[0] = flag_other, args[1] = NULL;
    config = parse (args, env);
    assert_field (config, oc->field, oc->other_parsed, "flag (second value)");
  }
  /* the variable alone */
  {
    const char *env[] = { var, oc->needs, NULL };
    g_autoptr (AtkConfig) config = parse (NULL, env);
    assert_field (config, oc->field, oc->parsed, "variable");
  }
  /* both: the flag wins, whichever value each holds */
  {
    const char *args[] = { flag, NULL };
    const char *env[] = { var_other, oc->needs, NULL };
    g_autoptr (AtkConfig) config = parse (args, env);
    assert_field (config, oc->field, oc->parsed, "flag over variable");
  }
  {
    const char *args[] = { flag_other, NULL };
    const char *env[] = { var, oc->needs, NULL };
    g_autoptr (AtkConfig) config = parse (args, env);
    assert_field (config, oc->field, oc->other_parsed, "flag over variable (swapped)");
  }
}

/* ---- defaults (README's table) --------------------------------------------------- */

static void
test_defaults (void)
{
  g_autoptr (AtkConfig) config = parse (NULL, NULL);

  assert_field (config, F_RELAY_HOST, "wss://bsky.network", "default");
  assert_field (config, F_OSPREY, "false", "default");
  assert_field (config, F_METRICS, ":2112", "default");
  assert_field (config, F_WATCHED_COLLECTIONS, "(none)", "default");
  assert_field (config, F_IGNORED_COLLECTIONS, "(none)", "default");
  assert_field (config, F_COMPRESSION, "lz4", "default");
  assert_field (config, F_PARTITIONS, "200", "default");
  assert_field (config, F_REPLICATION, "1", "default");
  assert_field (config, F_TRANSACTIONAL_ID, "(none)", "default");
  assert_field (config, F_GROUP_ID, "(none)", "default");
  assert_field (config, F_CURSOR, "stored", "default");
  assert_field (config, F_STATE_DIRECTORY, "(none)", "default");
  assert_field (config, F_SAVE_INTERVAL, "100", "default");
  assert_field (config, F_IN_FLIGHT_MESSAGES, "200000", "default");
  assert_field (config, F_IN_FLIGHT_BYTES, "268435456", "default");
  assert_field (config, F_MAX_FRAME_BYTES, "6291456", "default");
  assert_field (config, F_IDLE_TIMEOUT, "60", "default");
  assert_field (config, F_READ_BATCH, "40", "default");
  assert_field (config, F_BUS, "auto", "default");
  assert_field (config, F_PLC_HOST, "(none)", "default");
  assert_field (config, F_API_HOST, "(none)", "default");
  assert_field (config, F_EVENT_METADATA, "false", "default");
  assert_field (config, F_TAP_HOST, "(none)", "default");
  assert_field (config, F_TLS_CA_FILE, "(none)", "default");
  assert_field (config, F_DISABLE_ACKS, "false", "default");
  assert_field (config, F_OZONE_POLL_INTERVAL, "1000", "default");
  assert_field (config, F_OZONE_IDENTIFIER, "(none)", "default");
  g_assert_cmpuint (config->kafka_properties->len, ==, 0);
  g_assert_null (config->input_file);
  g_assert_false (config->to_stdout);
  g_assert_false (config->verbose);
}

/* A boolean flag without a value means true; =false, =0 and =1 work too. */
static void
test_bool_forms (void)
{
  const char *const flags[] = { "--osprey-compatible", "--disable-acks", "--event-metadata" };
  const Field fields[] = { F_OSPREY, F_DISABLE_ACKS, F_EVENT_METADATA };
  const char *needs[] = { "ATKAFKA_PLC_HOST=http://127.0.0.1:2582", NULL };

  for (guint i = 0; i < G_N_ELEMENTS (flags); i++)
    {
      const struct
      {
        const char *suffix;
        const char *want;
      } forms[] = { { "", "true" },
                    { "=1", "true" },
                    { "=TRUE", "true" },
                    { "=0", "false" },
                    { "=false", "false" } };
      for (guint j = 0; j < G_N_ELEMENTS (forms); j++)
        {
          g_autofree char *arg = g_strconcat (flags[i], forms[j].suffix, NULL);
          const char *args[] = { arg, NULL };
          g_autoptr (AtkConfig) config = parse (args, needs);
          assert_field (config, fields[i], forms[j].want, arg);
        }
    }
}

static void
test_cursor_forms (void)
{
  const struct
  {
    const char *text;
    const char *want;
  } cases[] = {
    { "0", "seq 0" },   { "live", "live" },
    { "LIVE", "live" }, { "9223372036854775807", "seq 9223372036854775807" },
    { "", "stored" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *var = g_strdup_printf ("ATKAFKA_CURSOR=%s", cases[i].text);
      const char *env[] = { var, NULL };
      g_autoptr (AtkConfig) config = parse (NULL, env);
      assert_field (config, F_CURSOR, cases[i].want, var);
    }
}

static void
test_bus_forms (void)
{
  const char *const names[] = { "system", "session", "none", "auto" };

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *arg = g_strdup_printf ("--bus=%s", names[i]);
      const char *args[] = { arg, NULL };
      g_autoptr (AtkConfig) config = parse (args, NULL);
      assert_field (config, F_BUS, names[i], arg);
    }
}

/* Each codec README names is taken. */
static void
test_compression_forms (void)
{
  const char *const codecs[] = { "none", "gzip", "snappy", "lz4", "zstd" };

  for (guint i = 0; i < G_N_ELEMENTS (codecs); i++)
    {
      g_autofree char *var = g_strdup_printf ("ATKAFKA_COMPRESSION=%s", codecs[i]);
      const char *env[] = { var, NULL };
      g_autoptr (AtkConfig) config = parse (NULL, env);
      assert_field (config, F_COMPRESSION, codecs[i], var);
    }
}

/* The bounds of each number are accepted; one past them is refused (below). */
static void
test_number_bounds (void)
{
  const struct
  {
    const char *flag;
    Field field;
    const char *low, *high;
  } cases[] = {
    { "--topic-partitions", F_PARTITIONS, "1", "100000" },
    { "--topic-replication-factor", F_REPLICATION, "1", "32767" },
    { "--max-frame-bytes", F_MAX_FRAME_BYTES, "65536", "67108864" },
    { "--idle-timeout", F_IDLE_TIMEOUT, "1", "86400" },
    { "--read-batch-ms", F_READ_BATCH, "0", "1000" },
    { "--cursor-save-interval", F_SAVE_INTERVAL, "10", "3600000" },
    { "--max-in-flight-bytes", F_IN_FLIGHT_BYTES, "1048576", "1099511627776" },
    { "--max-in-flight-messages", F_IN_FLIGHT_MESSAGES, "100", "10000000" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    for (guint j = 0; j < 2; j++)
      {
        const char *value = j == 0 ? cases[i].low : cases[i].high;
        const char *args[] = { cases[i].flag, value, NULL };
        g_autoptr (AtkConfig) config = parse (args, NULL);
        assert_field (config, cases[i].field, value, cases[i].flag);
      }
}

static void
test_file_mode (void)
{
  /* --input FILE --stdout needs no broker and no topic */
  const char *args[] = { "--input", "/tmp/frames.bin", "--stdout", "-v", NULL };
  g_autoptr (GError) error = NULL;
  g_autoptr (AtkConfig) config = parse_full (args, NULL, FALSE, &error);

  g_assert_no_error (error);
  g_assert_cmpstr (config->input_file, ==, "/tmp/frames.bin");
  g_assert_true (config->to_stdout);
  g_assert_true (config->verbose);
  {
    const char *short_args[] = { "-i", "/tmp/f.bin", "--stdout", "--verbose", NULL };
    g_autoptr (AtkConfig) short_config = parse_full (short_args, NULL, FALSE, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (short_config->input_file, ==, "/tmp/f.bin");
    g_assert_true (short_config->verbose);
  }
}

/* ---- ATKAFKA_KAFKA_<KEY> and -X ---------------------------------------------------- */

static gint
index_of (GPtrArray *properties, const char *property)
{
  for (guint i = 0; i < properties->len; i++)
    if (g_strcmp0 (g_ptr_array_index (properties, i), property) == 0)
      return (gint)i;
  return -1;
}

static void
test_kafka_properties (void)
{
  const char *args[] = {
    "-X", "linger.ms=5", "--kafka-property", "message.max.bytes=3000000", "-X", "client.id=a=b",
    NULL
  };
  const char *env[] = {
    "ATKAFKA_KAFKA_SASL_MECHANISM=PLAIN",
    "ATKAFKA_KAFKA_MESSAGE_MAX_BYTES=2000000",
    NULL,
  };
  g_autoptr (AtkConfig) config = parse (args, env);
  GPtrArray *p = config->kafka_properties;
  gint env_max, flag_max;

  /* ATKAFKA_KAFKA_SASL_MECHANISM=PLAIN sets sasl.mechanism (README) */
  g_assert_cmpint (index_of (p, "sasl.mechanism=PLAIN"), >=, 0);
  g_assert_cmpint (index_of (p, "linger.ms=5"), >=, 0);
  g_assert_cmpint (index_of (p, "client.id=a=b"), >=, 0);
  /* A flag wins over its variable: the -X value is applied after the variable's. */
  env_max = index_of (p, "message.max.bytes=2000000");
  flag_max = index_of (p, "message.max.bytes=3000000");
  g_assert_cmpint (env_max, >=, 0);
  g_assert_cmpint (flag_max, >, env_max);
  /* Nothing else: exactly the five given. */
  g_assert_cmpuint (p->len, ==, 5);
}

/* ---- the state directory ----------------------------------------------------------- */

static void
test_state_directory (void)
{
  {
    const char *env[] = { "STATE_DIRECTORY=/var/lib/at-kafka", NULL };
    g_autoptr (AtkConfig) config = parse (NULL, env);
    assert_field (config, F_STATE_DIRECTORY, "/var/lib/at-kafka", "STATE_DIRECTORY");
  }
  {
    /* systemd passes several directories separated by ':' — the first is ours */
    const char *env[] = { "STATE_DIRECTORY=/var/lib/at-kafka:/var/lib/other", NULL };
    g_autoptr (AtkConfig) config = parse (NULL, env);
    assert_field (config, F_STATE_DIRECTORY, "/var/lib/at-kafka", "STATE_DIRECTORY list");
  }
  {
    const char *env[]
        = { "STATE_DIRECTORY=/var/lib/at-kafka", "ATKAFKA_STATE_DIRECTORY=/srv/cursor", NULL };
    g_autoptr (AtkConfig) config = parse (NULL, env);
    assert_field (config, F_STATE_DIRECTORY, "/srv/cursor", "ATKAFKA_ over STATE_DIRECTORY");
  }
  {
    const char *args[] = { "--state-directory", "/flag/dir", NULL };
    const char *env[]
        = { "STATE_DIRECTORY=/var/lib/at-kafka", "ATKAFKA_STATE_DIRECTORY=/srv/cursor", NULL };
    g_autoptr (AtkConfig) config = parse (args, env);
    assert_field (config, F_STATE_DIRECTORY, "/flag/dir", "flag over both");
  }
}

/* ---- bad values ---------------------------------------------------------------------- */

typedef struct
{
  const char *flag;
  const char *variable;
  const char *value;
  const char *names; /* what the message must name ('|'-separated) */
  const char *needs;
} BadCase;

static const BadCase bad_cases[] = {
  { "--relay-host", "ATKAFKA_RELAY_HOST", "ftp://relay.example", "--relay-host" },
  { "--relay-host", "ATKAFKA_RELAY_HOST", "not a url", "--relay-host" },
  { "--relay-host", "ATKAFKA_RELAY_HOST", "wss://relay.example/?x=1", "--relay-host" },
  { "--relay-host", "ATKAFKA_RELAY_HOST", "wss://", "--relay-host" },
  { "--bootstrap-servers", "ATKAFKA_BOOTSTRAP_SERVERS", "localhost", "--bootstrap-servers" },
  { "--bootstrap-servers", "ATKAFKA_BOOTSTRAP_SERVERS", "localhost:0", "--bootstrap-servers" },
  { "--bootstrap-servers", "ATKAFKA_BOOTSTRAP_SERVERS", "localhost:65536", "--bootstrap-servers" },
  { "--bootstrap-servers", "ATKAFKA_BOOTSTRAP_SERVERS", "local host:9092", "--bootstrap-servers" },
  { "--bootstrap-servers", "ATKAFKA_BOOTSTRAP_SERVERS", "a:1,b", "--bootstrap-servers" },
  { "--bootstrap-servers", "ATKAFKA_BOOTSTRAP_SERVERS", ",", "--bootstrap-servers" },
  { "--output-topic", "ATKAFKA_OUTPUT_TOPIC", "bad topic", "--output-topic" },
  { "--output-topic", "ATKAFKA_OUTPUT_TOPIC", "a/b", "--output-topic" },
  { "--osprey-compatible", "ATKAFKA_OSPREY_COMPATIBLE", "yes", "--osprey-compatible" },
  { "--watched-collections", "ATKAFKA_WATCHED_COLLECTIONS", "app.bsky/feed",
    "--watched-collections" },
  { "--ignored-collections", "ATKAFKA_IGNORED_COLLECTIONS", "app.*.post", "--ignored-collections" },
  { "--compression", "ATKAFKA_COMPRESSION", "brotli", "--compression" },
  { "--compression", "ATKAFKA_COMPRESSION", "LZ4X", "--compression" },
  { "--topic-partitions", "ATKAFKA_TOPIC_PARTITIONS", "0", "--topic-partitions" },
  { "--topic-partitions", "ATKAFKA_TOPIC_PARTITIONS", "100001", "--topic-partitions" },
  { "--topic-partitions", "ATKAFKA_TOPIC_PARTITIONS", "-1", "--topic-partitions" },
  { "--topic-partitions", "ATKAFKA_TOPIC_PARTITIONS", "1.5", "--topic-partitions" },
  { "--topic-partitions", "ATKAFKA_TOPIC_PARTITIONS", "ten", "--topic-partitions" },
  { "--topic-replication-factor", "ATKAFKA_TOPIC_REPLICATION_FACTOR", "0",
    "--topic-replication-factor" },
  { "--topic-replication-factor", "ATKAFKA_TOPIC_REPLICATION_FACTOR", "32768",
    "--topic-replication-factor" },
  { "--max-frame-bytes", "ATKAFKA_MAX_FRAME_BYTES", "65535", "--max-frame-bytes" },
  { "--max-frame-bytes", "ATKAFKA_MAX_FRAME_BYTES", "67108865", "--max-frame-bytes" },
  { "--idle-timeout", "ATKAFKA_IDLE_TIMEOUT", "0", "--idle-timeout" },
  { "--idle-timeout", "ATKAFKA_IDLE_TIMEOUT", "86401", "--idle-timeout" },
  { "--read-batch-ms", "ATKAFKA_READ_BATCH_MS", "1001", "--read-batch-ms" },
  { "--read-batch-ms", "ATKAFKA_READ_BATCH_MS", "-1", "--read-batch-ms" },
  { "--cursor", "ATKAFKA_CURSOR", "-1", "--cursor" },
  { "--cursor", "ATKAFKA_CURSOR", "tip", "--cursor" },
  { "--cursor", "ATKAFKA_CURSOR", "9223372036854775808", "--cursor" },
  { "--cursor-save-interval", "ATKAFKA_CURSOR_SAVE_INTERVAL", "9", "--cursor-save-interval" },
  { "--cursor-save-interval", "ATKAFKA_CURSOR_SAVE_INTERVAL", "3600001", "--cursor-save-interval" },
  { "--max-in-flight-bytes", "ATKAFKA_MAX_IN_FLIGHT_BYTES", "1048575", "--max-in-flight-bytes" },
  { "--max-in-flight-bytes", "ATKAFKA_MAX_IN_FLIGHT_BYTES", "1099511627777",
    "--max-in-flight-bytes" },
  { "--max-in-flight-messages", "ATKAFKA_MAX_IN_FLIGHT_MESSAGES", "99",
    "--max-in-flight-messages" },
  { "--max-in-flight-messages", "ATKAFKA_MAX_IN_FLIGHT_MESSAGES", "10000001",
    "--max-in-flight-messages" },
  { "--bus", "ATKAFKA_BUS", "user", "--bus" },
  { "--plc-host", "ATKAFKA_PLC_HOST", "ftp://plc.example", "--plc-host" },
  { "--plc-host", "ATKAFKA_PLC_HOST", "plc.example", "--plc-host" },
  { "--api-host", "ATKAFKA_API_HOST", "ws://api.example", "--api-host" },
  { "--event-metadata", "ATKAFKA_EVENT_METADATA", "maybe", "--event-metadata",
    "ATKAFKA_PLC_HOST=http://127.0.0.1:2582" },
  { "--watched-services", "ATKAFKA_WATCHED_SERVICES", "pds.example.com/x", "--watched-services",
    "ATKAFKA_PLC_HOST=http://127.0.0.1:2582" },
  { "--ignored-services", "ATKAFKA_IGNORED_SERVICES", "pds example", "--ignored-services",
    "ATKAFKA_PLC_HOST=http://127.0.0.1:2582" },
  { "--tap-host", "ATKAFKA_TAP_HOST", "ftp://tap.example", "--tap-host" },
  { "--disable-acks", "ATKAFKA_DISABLE_ACKS", "2", "--disable-acks" },
  { "--ozone-pds-host", "ATKAFKA_OZONE_PDS_HOST", "ftp://pds.example", "--ozone-pds-host" },
  { "--ozone-poll-interval", "ATKAFKA_OZONE_POLL_INTERVAL", "10", "--ozone-poll-interval" },
};

static void
test_bad_value (gconstpointer data)
{
  const BadCase *bc = data;
  g_autofree char *flag = g_strdup_printf ("%s=%s", bc->flag, bc->value);
  g_autofree char *var = g_strdup_printf ("%s=%s", bc->variable, bc->value);

  {
    const char *args[] = { flag, NULL };
    const char *env[] = { bc->needs, NULL };
    assert_refused (args, env, bc->names);
  }
  {
    /* the same message whichever way the value came */
    const char *env[] = { var, bc->needs, NULL };
    assert_refused (NULL, env, bc->names);
  }
}

/* Refusals that are about combinations, or about what is missing. */
static void
test_bad_combinations (void)
{
  {
    const char *args[] = { "--watched-collections=app.bsky.feed.post",
                           "--ignored-collections=app.bsky.feed.like", NULL };
    assert_refused (args, NULL, "--watched-collections|--ignored-collections");
  }
  {
    const char *args[] = { "--watched-services=a.example", "--ignored-services=b.example", NULL };
    const char *env[] = { "ATKAFKA_PLC_HOST=http://127.0.0.1:2582", NULL };
    assert_refused (args, env, "--watched-services|--ignored-services");
  }
  /* the next three need --plc-host */
  {
    const char *args[] = { "--event-metadata", NULL };
    assert_refused (args, NULL, "--plc-host");
  }
  {
    const char *args[] = { "--watched-services=pds.example.com", NULL };
    assert_refused (args, NULL, "--plc-host");
  }
  {
    const char *env[] = { "ATKAFKA_IGNORED_SERVICES=pds.example.com", NULL };
    assert_refused (NULL, env, "--plc-host");
  }
  /* Ozone mode needs its account and labeler, and is a mode of its own */
  {
    const char *args[] = { "--ozone-pds-host=http://127.0.0.1:2583",
                           "--ozone-labeler-did=did:plc:x", "--ozone-password-file=/tmp/pw", NULL };
    assert_refused (args, NULL, "--ozone-identifier");
  }
  {
    const char *args[] = { "--ozone-pds-host=http://127.0.0.1:2583", "--ozone-identifier=mod",
                           "--ozone-labeler-did=did:plc:x", NULL };
    assert_refused (args, NULL, "--ozone-password-file");
  }
  /* … which systemd's credentials directory can give */
  {
    const char *args[] = { "--ozone-pds-host=http://127.0.0.1:2583", "--ozone-identifier=mod",
                           "--ozone-labeler-did=did:plc:x", NULL };
    const char *env[] = { "CREDENTIALS_DIRECTORY=/run/credentials/at-kafka.service", NULL };
    g_autoptr (AtkConfig) config = parse (args, env);
    assert_field (config, F_OZONE_PASSWORD_FILE, "/run/credentials/at-kafka.service/ozone-password",
                  "credentials");
  }
  {
    const char *args[] = { "--ozone-pds-host=http://127.0.0.1:2583", "--ozone-identifier=mod",
                           "--ozone-password-file=/tmp/pw", "--ozone-labeler-did=labeler", NULL };
    assert_refused (args, NULL, "--ozone-labeler-did");
  }
  {
    const char *args[]
        = { "--ozone-pds-host=http://127.0.0.1:2583", "--ozone-identifier=mod",
            "--ozone-password-file=/tmp/pw",          "--ozone-labeler-did=did:plc:x",
            "--tap-host=ws://127.0.0.1:2480",         NULL };
    assert_refused (args, NULL, "--ozone-pds-host|--tap-host");
  }
  {
    const char *args[] = { "--ozone-pds-host=http://127.0.0.1:2583",
                           "--ozone-identifier=mod",
                           "--ozone-password-file=/tmp/pw",
                           "--ozone-labeler-did=did:plc:x",
                           "--group-id=g",
                           NULL };
    assert_refused (args, NULL, "--ozone-pds-host|--group-id");
  }
  /* required options */
  {
    const char *env[] = { "ATKAFKA_OUTPUT_TOPIC=events", NULL };
    assert_refused_full (NULL, env, FALSE, "--bootstrap-servers");
  }
  {
    const char *env[] = { "ATKAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092", NULL };
    assert_refused_full (NULL, env, FALSE, "--output-topic");
  }
  {
    const char *env[] = { "ATKAFKA_BOOTSTRAP_SERVERS=", "ATKAFKA_OUTPUT_TOPIC=events", NULL };
    assert_refused_full (NULL, env, FALSE, "--bootstrap-servers");
  }
  /* --stdout reads a file */
  {
    const char *args[] = { "--stdout", NULL };
    assert_refused_full (args, NULL, FALSE, "--stdout|--input");
  }
  /* -X without key=value */
  {
    const char *args[] = { "-X", "linger.ms", NULL };
    assert_refused (args, NULL, "--kafka-property");
  }
  {
    const char *args[] = { "-X", "=5", NULL };
    assert_refused (args, NULL, "--kafka-property");
  }
  /* an unknown flag, a stray argument, a flag without its value */
  {
    const char *args[] = { "--no-such-option", NULL };
    assert_refused (args, NULL, "--no-such-option");
  }
  {
    const char *args[] = { "stray", NULL };
    assert_refused (args, NULL, "stray");
  }
  {
    const char *args[] = { "--output-topic", NULL };
    assert_refused (args, NULL, "--output-topic");
  }
}

/* A long topic name: Kafka allows 249 characters. */
static void
test_topic_length (void)
{
  g_autofree char *ok_name = g_strnfill (249, 'a');
  g_autofree char *long_name = g_strnfill (250, 'a');
  g_autofree char *ok_arg = g_strdup_printf ("--output-topic=%s", ok_name);
  g_autofree char *long_arg = g_strdup_printf ("--output-topic=%s", long_name);
  const char *ok_args[] = { ok_arg, NULL };
  const char *long_args[] = { long_arg, NULL };
  g_autoptr (AtkConfig) config = parse (ok_args, NULL);

  g_assert_cmpstr (config->output_topic, ==, ok_name);
  assert_refused (long_args, NULL, "--output-topic");
}

static void
test_version (void)
{
  if (g_test_subprocess ())
    {
      const char *args[] = { "at-kafka", "--version", NULL };
      char **argv = g_memdup2 (args, sizeof args);
      int argc = 2;
      gboolean exit_now = FALSE;
      g_autoptr (GError) error = NULL;
      AtkConfig *config = atk_config_parse (&argc, &argv, NULL, &exit_now, &error);

      g_assert_null (config);
      g_assert_no_error (error);
      g_assert_true (exit_now);
      g_free (argv);
      return;
    }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stdout ("at-kafka *");
}

/* Relay URLs README accepts: ws, wss, http, https; http(s) become ws(s); a trailing '/'
 * goes. */
static void
test_normalise_relay_url (void)
{
  const struct
  {
    const char *in, *out;
  } cases[] = {
    { "wss://bsky.network", "wss://bsky.network" },
    { "https://bsky.network/", "wss://bsky.network" },
    { "http://127.0.0.1:2470", "ws://127.0.0.1:2470" },
    { "ws://relay.example/base/", "ws://relay.example/base" },
    { "HTTPS://relay.example", "wss://relay.example" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *url = atk_config_normalise_relay_url (cases[i].in, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (url, ==, cases[i].out);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/config/defaults", test_defaults);
  for (guint i = 0; i < G_N_ELEMENTS (option_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/config/option/%s", option_cases[i].flag + 2);
      g_test_add_data_func (path, &option_cases[i], test_option);
    }
  g_test_add_func ("/config/bool-forms", test_bool_forms);
  g_test_add_func ("/config/cursor-forms", test_cursor_forms);
  g_test_add_func ("/config/bus-forms", test_bus_forms);
  g_test_add_func ("/config/compression-forms", test_compression_forms);
  g_test_add_func ("/config/number-bounds", test_number_bounds);
  g_test_add_func ("/config/file-mode", test_file_mode);
  g_test_add_func ("/config/kafka-properties", test_kafka_properties);
  g_test_add_func ("/config/state-directory", test_state_directory);
  for (guint i = 0; i < G_N_ELEMENTS (bad_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/config/bad/%s/%u", bad_cases[i].flag + 2, i);
      g_test_add_data_func (path, &bad_cases[i], test_bad_value);
    }
  g_test_add_func ("/config/bad-combinations", test_bad_combinations);
  g_test_add_func ("/config/topic-length", test_topic_length);
  g_test_add_func ("/config/version", test_version);
  g_test_add_func ("/config/normalise-relay-url", test_normalise_relay_url);
  return g_test_run ();
}
