/* Unit tests for the daemon's delivery rules (src/atk-daemon.c, src/atk-daemon-input.c):
 * the real daemon, a real WebSocket relay in-process on loopback, and the fake sink
 * (atk-fake-sink.c) in place of librdkafka, so that each Kafka outcome is chosen by the
 * test: the cursor moves only past acknowledged messages; a message too large for Kafka is
 * counted, logged and skipped; a message that did not make it sends the daemon back to the
 * cursor; backpressure drops the relay and resumes without loss; shutdown with Kafka away;
 * a fatal producer; combinations refused at start.
 *
 * Frames: the captured PDS frames (uneven message counts: commits of 0 and 3 ops), or
 * synthetic #identity frames (one message each) made here with a CBOR writer of our own.
 * SPDX-License-Identifier: MIT */
#include <libsoup/soup.h>
#include <string.h>

#include "atk-config.h"
#include "atk-cursor-store.h"
#include "atk-daemon.h"
#include "atk-error.h"
#include "atk-fake-sink.h"
#include "atk-test-http.h"
#include "atk-test-util.h"

#define WAIT_MS 20000

/* ---- synthetic frames --------------------------------------------------------------- */

static void
cbor_head (GByteArray *out, guint8 major, guint64 n)
{
  guint8 b[9];
  guint size;

  /* the shortest form, as DAG-CBOR requires */
  if (n < 24)
    {
      b[0] = (guint8)(major << 5 | n);
      g_byte_array_append (out, b, 1);
      return;
    }
  size = n <= G_MAXUINT8 ? 1 : n <= G_MAXUINT16 ? 2 : n <= G_MAXUINT32 ? 4 : 8;
  b[0] = (guint8)(major << 5 | (size == 1 ? 24 : size == 2 ? 25 : size == 4 ? 26 : 27));
  for (guint i = 0; i < size; i++)
    b[1 + i] = (guint8)(n >> (8 * (size - 1 - i)));
  g_byte_array_append (out, b, size + 1);
}

static void
cbor_text (GByteArray *out, const char *text)
{
  cbor_head (out, 3, strlen (text));
  g_byte_array_append (out, (const guint8 *)text, (guint)strlen (text));
}

/* {"t":"#identity","op":1} {"did":…,"seq":seq,"time":…,"handle":…} */
static GBytes *
identity_frame (gint64 seq)
{
  g_autoptr (GByteArray) out = g_byte_array_new ();
  g_autofree char *did = g_strdup_printf ("did:plc:test%020" G_GINT64_FORMAT, seq % 7);

  /* DAG-CBOR key order: shorter keys first */
  cbor_head (out, 5, 2);
  cbor_text (out, "t");
  cbor_text (out, "#identity");
  cbor_text (out, "op");
  cbor_head (out, 0, 1);
  cbor_head (out, 5, 4);
  cbor_text (out, "did");
  cbor_text (out, did);
  cbor_text (out, "seq");
  cbor_head (out, 0, (guint64)seq);
  cbor_text (out, "time");
  cbor_text (out, "2024-01-01T12:00:00.000Z");
  cbor_text (out, "handle");
  cbor_text (out, "alice.example.com");
  return g_byte_array_free_to_bytes (g_steal_pointer (&out));
}

/* ---- an in-process relay -------------------------------------------------------------- */

typedef struct
{
  SoupServer *server;
  char *url;
  GPtrArray *frames; /* GBytes */
  GArray *seqs;      /* gint64 per frame */
  GPtrArray *queries;
  GPtrArray *conns;
  guint closed;
} Relay;

static void
on_closed (SoupWebsocketConnection *conn, Relay *relay)
{
  relay->closed++;
}

static void
on_websocket (SoupServer *server, SoupServerMessage *msg, const char *path,
              SoupWebsocketConnection *conn, gpointer user_data)
{
  Relay *relay = user_data;
  const char *query = g_uri_get_query (soup_server_message_get_uri (msg));
  gint64 cursor = -1;

  g_ptr_array_add (relay->queries, g_strdup (query ? query : ""));
  g_ptr_array_add (relay->conns, g_object_ref (conn));
  g_signal_connect (conn, "closed", G_CALLBACK (on_closed), relay);
  if (query != NULL && g_str_has_prefix (query, "cursor="))
    cursor = g_ascii_strtoll (query + strlen ("cursor="), NULL, 10);
  for (guint i = 0; i < relay->frames->len; i++)
    if (g_array_index (relay->seqs, gint64, i) > cursor)
      soup_websocket_connection_send_message (conn, SOUP_WEBSOCKET_DATA_BINARY,
                                              relay->frames->pdata[i]);
}

static Relay *
relay_new (void)
{
  Relay *relay = g_new0 (Relay, 1);

  relay->server = atk_test_ws_server_new ("/xrpc/com.atproto.sync.subscribeRepos", on_websocket,
                                          relay, &relay->url);
  relay->frames = g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);
  relay->seqs = g_array_new (FALSE, FALSE, sizeof (gint64));
  relay->queries = g_ptr_array_new_with_free_func (g_free);
  relay->conns = g_ptr_array_new_with_free_func (g_object_unref);
  return relay;
}

static void
relay_free (Relay *relay)
{
  for (guint i = 0; i < relay->conns->len; i++)
    g_signal_handlers_disconnect_by_data (relay->conns->pdata[i], relay);
  atk_test_http_server_stop (&relay->server);
  g_free (relay->url);
  g_ptr_array_unref (relay->frames);
  g_array_unref (relay->seqs);
  g_ptr_array_unref (relay->queries);
  g_ptr_array_unref (relay->conns);
  g_free (relay);
}

static void
relay_add (Relay *relay, GBytes *frame, gint64 seq)
{
  g_ptr_array_add (relay->frames, frame);
  g_array_append_val (relay->seqs, seq);
}

/* ---- log capture: warnings are part of the contract (README: "logged with its seq") --- */

static GPtrArray *logged; /* "LEVEL MESSAGE" */

static GLogWriterOutput
log_writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
  const char *message = NULL;

  for (gsize i = 0; i < n_fields; i++)
    if (g_strcmp0 (fields[i].key, "MESSAGE") == 0)
      message = fields[i].value;
  if (logged != NULL && message != NULL)
    g_ptr_array_add (
        logged,
        g_strdup_printf ("%s %s", (level & G_LOG_LEVEL_WARNING) ? "WARNING" : "INFO", message));
  if (level & G_LOG_LEVEL_CRITICAL)
    {
      g_log_writer_default (level, fields, n_fields, user_data);
      g_error ("unexpected critical: %s", message); /* a critical fails the test */
    }
  return g_log_writer_default (level, fields, n_fields, user_data);
}

static gboolean
was_logged (const char *level, const char *part1, const char *part2)
{
  for (guint i = 0; i < logged->len; i++)
    {
      const char *line = logged->pdata[i];
      if (g_str_has_prefix (line, level) && strstr (line, part1) != NULL
          && (part2 == NULL || strstr (line, part2) != NULL))
        return TRUE;
    }
  return FALSE;
}

/* ---- fixture ----------------------------------------------------------------------- */

typedef struct
{
  Relay *relay;
  char *dir;
  AtkDaemon *daemon;
  AtkKafkaSink *sink;
  guint fatal;
  guint ready;
  gint64 expect_seq; /* for conditions */
  guint expect_n;
} Fixture;

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  f->relay = relay_new ();
  f->dir = atk_test_make_tmp_dir ("atk-daemon-XXXXXX");
  logged = g_ptr_array_new_with_free_func (g_free);
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  g_clear_object (&f->daemon);
  relay_free (f->relay);
  atk_test_rm_rf (f->dir);
  g_free (f->dir);
  g_clear_pointer (&logged, g_ptr_array_unref);
}

static void
on_fatal (AtkDaemon *daemon, const char *reason, Fixture *f)
{
  f->fatal++;
}

static void
on_ready (AtkDaemon *daemon, Fixture *f)
{
  f->ready++;
}

/* A daemon on the fixture's relay with these extra flags (NULL-terminated). */
static AtkConfig *
make_config (Fixture *f, const char *const *extra, GError **error)
{
  g_autofree char *relay = g_strdup_printf ("--relay-host=%s", f->relay->url);
  g_autofree char *dir = g_strdup_printf ("--state-directory=%s", f->dir);
  g_autoptr (GPtrArray) args = g_ptr_array_new ();
  char **argv;
  int argc;
  gboolean exit_now = FALSE;
  AtkConfig *config;

  g_ptr_array_add (args, "at-kafka");
  g_ptr_array_add (args, relay);
  g_ptr_array_add (args, dir);
  g_ptr_array_add (args, "--bootstrap-servers=127.0.0.1:1");
  g_ptr_array_add (args, "--output-topic=events");
  g_ptr_array_add (args, "--metrics-listen-address=");
  g_ptr_array_add (args, "--cursor-save-interval=50");
  for (guint i = 0; extra != NULL && extra[i] != NULL; i++)
    g_ptr_array_add (args, (gpointer)extra[i]);
  argc = (int)args->len;
  g_ptr_array_add (args, NULL);
  argv = g_memdup2 (args->pdata, args->len * sizeof (char *));
  config = atk_config_parse (&argc, &argv, NULL, &exit_now, error);
  g_free (argv);
  return config;
}

static void
start_daemon (Fixture *f, const char *const *extra)
{
  g_autoptr (GError) error = NULL;
  AtkConfig *config = make_config (f, extra, &error);

  g_assert_no_error (error);
  f->daemon = atk_daemon_new (config, &error);
  g_assert_no_error (error);
  g_assert_nonnull (f->daemon);
  f->sink = atk_fake_sink_get_last ();
  g_assert_nonnull (f->sink);
  g_signal_connect (f->daemon, "fatal", G_CALLBACK (on_fatal), f);
  g_signal_connect (f->daemon, "ready", G_CALLBACK (on_ready), f);
  atk_daemon_start (f->daemon);
}

static GPtrArray *
produced (Fixture *f)
{
  return atk_fake_sink_get_produced (f->sink);
}

static gboolean
produced_at_least (gpointer data)
{
  Fixture *f = data;
  return produced (f)->len >= f->expect_n;
}

static void
wait_produced (Fixture *f, guint n)
{
  f->expect_n = n;
  if (!atk_test_wait_until (NULL, produced_at_least, f, WAIT_MS))
    g_error ("%u messages produced, %u expected", produced (f)->len, n);
}

static gboolean
cursor_is (gpointer data)
{
  Fixture *f = data;
  const AtkStats *stats = atk_daemon_get_stats (f->daemon);
  return stats->has_cursor && stats->cursor == f->expect_seq;
}

static void
wait_cursor (Fixture *f, gint64 seq)
{
  f->expect_seq = seq;
  if (!atk_test_wait_until (NULL, cursor_is, f, WAIT_MS))
    {
      const AtkStats *stats = atk_daemon_get_stats (f->daemon);
      g_error ("cursor %s%" G_GINT64_FORMAT ", expected %" G_GINT64_FORMAT,
               stats->has_cursor ? "" : "(none) ", stats->cursor, seq);
    }
}

static gint64
state_file_cursor (Fixture *f)
{
  gint64 cursor = -1;
  g_autoptr (GError) error = NULL;

  if (!atk_cursor_store_load (f->dir, &cursor, &error))
    return -1;
  g_assert_no_error (error);
  return cursor;
}

static gboolean
state_file_is (gpointer data)
{
  Fixture *f = data;
  return state_file_cursor (f) == f->expect_seq;
}

static gboolean
connections_at_least (gpointer data)
{
  Fixture *f = data;
  return f->relay->queries->len >= f->expect_n;
}

static void
wait_connections (Fixture *f, guint n)
{
  f->expect_n = n;
  if (!atk_test_wait_until (NULL, connections_at_least, f, WAIT_MS))
    g_error ("%u relay connections, %u expected", f->relay->queries->len, n);
}

static void
add_identity_frames (Fixture *f, gint64 first, gint64 last)
{
  for (gint64 seq = first; seq <= last; seq++)
    relay_add (f->relay, identity_frame (seq), seq);
}

/* ---- tests --------------------------------------------------------------------------- */

/* The captured frames: the cursor is always the last seq whose messages were all
 * acknowledged (frames without messages count as done), never more. */
static void
test_cursor_follows_acks (Fixture *f, gconstpointer data)
{
  g_autoptr (GPtrArray) frames = atk_test_load_frames ("pds-capture/frames.bin");
  g_autoptr (GPtrArray) oracle = atk_test_load_jsonl ("pds-capture/frames.jsonl");
  g_autoptr (GArray) counts = g_array_new (FALSE, FALSE, sizeof (guint));
  g_autoptr (GArray) seqs = g_array_new (FALSE, FALSE, sizeof (gint64));
  const char *const extra[] = { "--cursor=live", NULL };
  guint total = 0, delivered = 0;

  g_assert_cmpuint (frames->len, ==, oracle->len);
  for (guint i = 0; i < oracle->len; i++)
    {
      JsonObject *frame = json_node_get_object (oracle->pdata[i]);
      JsonObject *body = json_object_get_object_member (frame, "body");
      const char *t
          = json_object_get_string_member (json_object_get_object_member (frame, "header"), "t");
      guint n = g_strcmp0 (t, "#commit") == 0
                    ? json_array_get_length (json_object_get_array_member (body, "ops"))
                    : 1;
      gint64 seq = json_object_get_int_member (body, "seq");

      g_array_append_val (counts, n);
      g_array_append_val (seqs, seq);
      relay_add (f->relay, g_bytes_ref (frames->pdata[i]), seq);
      total += n;
    }
  start_daemon (f, extra);
  wait_produced (f, total);
  g_assert_false (atk_daemon_get_stats (f->daemon)->has_cursor);
  g_assert_cmpuint (f->ready, ==, 0); /* READY=1 waits for the first delivery */

  /* deliver in steps of 1, 2 and 5 messages; after each the cursor is exactly the seq of
   * the last frame whose messages are all delivered */
  for (guint step = 1; delivered < total; step = step % 5 + 1)
    {
      guint sum = 0;
      gint64 want = -1;

      delivered += atk_fake_sink_deliver (f->sink, step, TRUE, NULL);
      for (guint i = 0; i < counts->len; i++)
        {
          sum += g_array_index (counts, guint, i);
          if (sum > delivered)
            break;
          want = g_array_index (seqs, gint64, i);
        }
      if (want >= 0)
        wait_cursor (f, want);
    }
  g_assert_cmpuint (f->ready, ==, 1);
  g_assert_cmpuint (atk_daemon_get_stats (f->daemon)->produced_ok, ==, total);
  /* saved on the timer */
  f->expect_seq = g_array_index (seqs, gint64, seqs->len - 1);
  g_assert_true (atk_test_wait_until (NULL, state_file_is, f, WAIT_MS));
  g_assert_cmpuint (produced (f)->len, ==, total); /* nothing twice */
}

/* A message Kafka refuses at once as too large: counted, logged with its seq, skipped; the
 * stream goes on and the cursor moves past it. */
static void
test_too_large_skipped (Fixture *f, gconstpointer data)
{
  const char *const extra[] = { "--cursor=100", NULL };

  add_identity_frames (f, 101, 110);
  start_daemon (f, extra);
  /* refuse the first message the daemon produces (seq 101) */
  atk_fake_sink_refuse_next (f->sink, ATK_ERROR_TOO_LARGE);
  wait_produced (f, 9);
  g_assert_cmpint (((AtkFakeProduced *)produced (f)->pdata[0])->seq, ==, 102);
  atk_fake_sink_deliver (f->sink, 9, TRUE, NULL);
  wait_cursor (f, 110);
  g_assert_cmpuint (atk_daemon_get_stats (f->daemon)->produced_error, ==, 1);
  g_assert_cmpuint (atk_daemon_get_stats (f->daemon)->produced_ok, ==, 9);
  g_assert_true (was_logged ("WARNING", "seq 101", "skipped"));
  g_assert_cmpuint (f->relay->queries->len, ==, 1); /* no rewind */
}

/* A message Kafka rejects for good after sending (delivered, !ok): counted, skipped, the
 * cursor moves past it. */
static void
test_rejected_for_good (Fixture *f, gconstpointer data)
{
  const char *const extra[] = { "--cursor=100", NULL };

  add_identity_frames (f, 101, 105);
  start_daemon (f, extra);
  wait_produced (f, 5);
  atk_fake_sink_deliver (f->sink, 1, TRUE, NULL);
  atk_fake_sink_deliver (f->sink, 1, FALSE, "Broker: Message size too large");
  wait_cursor (f, 102);
  atk_fake_sink_deliver (f->sink, 3, TRUE, NULL);
  wait_cursor (f, 105);
  g_assert_cmpuint (atk_daemon_get_stats (f->daemon)->produced_error, ==, 1);
  g_assert_true (was_logged ("WARNING", "seq 102", "too large"));
}

/* A message that did not reach Kafka (purged, timed out): back to the cursor, and
 * everything after it is produced again, from a new connection asking for it. */
static void
test_undelivered_rewinds (Fixture *f, gconstpointer data)
{
  const char *const extra[] = { "--cursor=200", NULL };

  add_identity_frames (f, 201, 210);
  start_daemon (f, extra);
  wait_produced (f, 10);
  atk_fake_sink_deliver (f->sink, 3, TRUE, NULL);
  wait_cursor (f, 203);
  atk_fake_sink_undeliver (f->sink, 1); /* seq 204 */
  wait_connections (f, 2);
  g_assert_cmpstr (f->relay->queries->pdata[1], ==, "cursor=203");
  /* 204…210 again */
  wait_produced (f, 17);
  g_assert_cmpint (((AtkFakeProduced *)produced (f)->pdata[10])->seq, ==, 204);
  g_assert_cmpint (((AtkFakeProduced *)produced (f)->pdata[16])->seq, ==, 210);
  /* the first copies still in flight (205…210) and the second ones are all delivered */
  atk_fake_sink_deliver (f->sink, 13, TRUE, NULL);
  wait_cursor (f, 210);
}

/* A produce refused for a reason that says nothing about the message (a full queue): not
 * skipped: back to the cursor, and the rest of the frame waits. */
static void
test_queue_full_rewinds (Fixture *f, gconstpointer data)
{
  const char *const extra[] = { "--cursor=300", NULL };

  add_identity_frames (f, 301, 305);
  start_daemon (f, extra);
  atk_fake_sink_refuse_next (f->sink, ATK_ERROR_KAFKA);
  wait_connections (f, 2);
  g_assert_cmpstr (f->relay->queries->pdata[1], ==, "cursor=300");
  wait_produced (f, 5);
  g_assert_cmpint (((AtkFakeProduced *)produced (f)->pdata[0])->seq, ==, 301);
  atk_fake_sink_deliver (f->sink, 5, TRUE, NULL);
  wait_cursor (f, 305);
  g_assert_cmpuint (atk_daemon_get_stats (f->daemon)->produced_error, ==, 0);
}

static gboolean
relay_closed_at_least (gpointer data)
{
  Fixture *f = data;
  return f->relay->closed >= f->expect_n;
}

/* Above --max-in-flight-messages the relay connection is dropped; once Kafka has drained
 * half of it, a new one asks for what follows the last seq handed over: nothing lost,
 * nothing twice. */
static void
test_backpressure (Fixture *f, gconstpointer data)
{
  const char *const extra[] = { "--cursor=1000", "--max-in-flight-messages=100", NULL };
  guint delivered = 0;

  add_identity_frames (f, 1001, 1250);
  start_daemon (f, extra);
  wait_produced (f, 100);
  f->expect_n = 1;
  g_assert_true (atk_test_wait_until (NULL, relay_closed_at_least, f, WAIT_MS));
  g_assert_cmpuint (atk_daemon_get_stats (f->daemon)->backpressure_drops, ==, 1);
  g_assert_true (atk_daemon_get_stats (f->daemon)->paused);
  /* frames already on the wire may have been taken: no more than what was sent */
  atk_test_run_for (NULL, 200);
  g_assert_cmpuint (f->relay->queries->len, ==, 1);
  /* drain to just above half: still closed */
  delivered
      += atk_fake_sink_deliver (f->sink, atk_kafka_sink_get_in_flight (f->sink) - 50, TRUE, NULL);
  atk_test_run_for (NULL, 200);
  g_assert_cmpuint (f->relay->queries->len, ==, 1);
  /* below half: reconnect after the last seq handed over */
  delivered += atk_fake_sink_deliver (f->sink, 1, TRUE, NULL);
  wait_connections (f, 2);
  {
    gint64 last = ((AtkFakeProduced *)produced (f)->pdata[produced (f)->len - 1])->seq;
    g_autofree char *want = g_strdup_printf ("cursor=%" G_GINT64_FORMAT, last);
    g_assert_cmpstr (f->relay->queries->pdata[1], ==, want);
  }
  /* keep delivering until every frame is in: each seq exactly once, in order */
  while (produced (f)->len < 250 || atk_kafka_sink_get_in_flight (f->sink) > 0)
    {
      delivered += atk_fake_sink_deliver (f->sink, 10, TRUE, NULL);
      atk_test_run_for (NULL, 20);
      g_assert_cmpuint (produced (f)->len, <=, 250);
      if (f->relay->queries->len > 10)
        g_error ("too many reconnects");
    }
  for (guint i = 0; i < 250; i++)
    g_assert_cmpint (((AtkFakeProduced *)produced (f)->pdata[i])->seq, ==, 1001 + i);
  wait_cursor (f, 1250);
  g_assert_cmpuint (delivered, ==, 250);
}

/* Shutdown while Kafka is away: the flush is bounded by the timeout the caller gives (main
 * gives 10 s), the cursor saved covers only what was acknowledged, and it says so. */
static void
test_shutdown_kafka_down (Fixture *f, gconstpointer data)
{
  const char *const extra[] = { "--cursor=400", NULL };

  add_identity_frames (f, 401, 410);
  start_daemon (f, extra);
  wait_produced (f, 10);
  atk_fake_sink_deliver (f->sink, 4, TRUE, NULL);
  wait_cursor (f, 404);
  g_assert_false (atk_daemon_shutdown (f->daemon, 10000));
  g_assert_cmpuint (atk_fake_sink_get_last_flush_timeout (f->sink), <=, 10000);
  g_assert_cmpuint (atk_fake_sink_get_flush_calls (f->sink), >=, 1);
  g_assert_cmpint (state_file_cursor (f), ==, 404);
  g_assert_true (was_logged ("WARNING", "6 message(s) not delivered", NULL));
  /* the last cursor record went to Kafka too */
  {
    GPtrArray *records = atk_fake_sink_get_cursor_records (f->sink);
    g_assert_cmpuint (records->len, >=, 1);
    g_assert_cmpstr (records->pdata[records->len - 1], ==, "events=404");
  }
}

/* Shutdown with Kafka up: everything is flushed and the cursor is the last seq. */
static void
test_shutdown_flushes (Fixture *f, gconstpointer data)
{
  const char *const extra[] = { "--cursor=500", NULL };

  add_identity_frames (f, 501, 520);
  start_daemon (f, extra);
  wait_produced (f, 20);
  atk_fake_sink_set_deliver_on_flush (f->sink, TRUE);
  g_assert_true (atk_daemon_shutdown (f->daemon, 10000));
  g_assert_cmpint (state_file_cursor (f), ==, 520);
}

/* The producer fails for good: "fatal", the input stops, nothing is saved beyond the
 * acknowledged cursor. */
static void
test_fatal (Fixture *f, gconstpointer data)
{
  const char *const extra[] = { "--cursor=600", NULL };

  add_identity_frames (f, 601, 605);
  start_daemon (f, extra);
  wait_produced (f, 5);
  atk_fake_sink_deliver (f->sink, 2, TRUE, NULL);
  wait_cursor (f, 602);
  atk_fake_sink_fail (f->sink, "fenced");
  g_assert_cmpuint (f->fatal, ==, 1);
  f->expect_n = 1;
  g_assert_true (atk_test_wait_until (NULL, relay_closed_at_least, f, WAIT_MS));
  g_assert_false (atk_daemon_shutdown (f->daemon, 1000));
  g_assert_cmpint (state_file_cursor (f), ==, 602);
}

/* Combinations refused at start (README: --transactional-id cannot be combined with
 * --tap-host or --plc-host), before anything connects. */
static void
test_refused_modes (Fixture *f, gconstpointer data)
{
  const char *const with_plc[]
      = { "--transactional-id=t1", "--plc-host=http://127.0.0.1:1", "--cursor=live", NULL };
  const char *const with_tap[]
      = { "--transactional-id=t1", "--tap-host=ws://127.0.0.1:1", "--cursor=live", NULL };
  const char *const *cases[] = { with_plc, with_tap };
  const char *names[] = { "--plc-host", "--tap-host" };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      AtkConfig *config = make_config (f, cases[i], &error);
      g_autoptr (AtkDaemon) daemon = NULL;

      g_assert_no_error (error);
      daemon = atk_daemon_new (config, &error);
      g_assert_null (daemon);
      g_assert_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG);
      g_assert_nonnull (strstr (error->message, "--transactional-id"));
      g_assert_nonnull (strstr (error->message, names[i]));
    }
  g_assert_cmpuint (f->relay->queries->len, ==, 0);
}

/* The sink gets the Kafka settings of the configuration. */
static void
test_sink_options (Fixture *f, gconstpointer data)
{
  const char *const extra[] = { "--cursor=live", "--compression=zstd", "-X", "linger.ms=7", NULL };

  start_daemon (f, extra);
  g_assert_cmpstr (atk_fake_sink_get_option (f->sink, "topic"), ==, "events");
  g_assert_cmpstr (atk_fake_sink_get_option (f->sink, "cursor_topic"), ==, "events.cursor");
  g_assert_cmpstr (atk_fake_sink_get_option (f->sink, "compression"), ==, "zstd");
  g_assert_nonnull (strstr (atk_fake_sink_get_option (f->sink, "properties"), "linger.ms=7"));
  g_assert_null (atk_fake_sink_get_option (f->sink, "transactional_id"));
}

/* ---- Tap mode: acks only after delivery (atk-ack-table), queued while disconnected ---- */

typedef struct
{
  SoupServer *server;
  char *url;
  GPtrArray *events; /* char*, sent on each connection */
  GArray *acks;      /* guint64 ids received */
  GPtrArray *conns;
  guint connections;
} Tap;

static void
on_tap_message (SoupWebsocketConnection *conn, gint type, GBytes *message, Tap *tap)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *object;
  guint64 id;

  g_assert_cmpint (type, ==, SOUP_WEBSOCKET_DATA_TEXT);
  g_assert_true (json_parser_load_from_data (parser, g_bytes_get_data (message, NULL),
                                             (gssize)g_bytes_get_size (message), NULL));
  object = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpstr (json_object_get_string_member (object, "type"), ==, "ack");
  id = (guint64)json_object_get_int_member (object, "id");
  g_array_append_val (tap->acks, id);
}

static void
on_tap_websocket (SoupServer *server, SoupServerMessage *msg, const char *path,
                  SoupWebsocketConnection *conn, gpointer user_data)
{
  Tap *tap = user_data;

  tap->connections++;
  g_ptr_array_add (tap->conns, g_object_ref (conn));
  g_signal_connect (conn, "message", G_CALLBACK (on_tap_message), tap);
  for (guint i = 0; tap->connections == 1 && i < tap->events->len; i++)
    soup_websocket_connection_send_text (conn, tap->events->pdata[i]);
}

static Tap *
tap_new (void)
{
  Tap *tap = g_new0 (Tap, 1);

  tap->server = atk_test_ws_server_new ("/channel", on_tap_websocket, tap, &tap->url);
  tap->events = atk_test_load_tap_fixture ("session.jsonl");
  tap->acks = g_array_new (FALSE, FALSE, sizeof (guint64));
  tap->conns = g_ptr_array_new_with_free_func (g_object_unref);
  return tap;
}

static void
tap_free (Tap *tap)
{
  for (guint i = 0; i < tap->conns->len; i++)
    g_signal_handlers_disconnect_by_data (tap->conns->pdata[i], tap);
  atk_test_http_server_stop (&tap->server);
  g_free (tap->url);
  g_ptr_array_unref (tap->events);
  g_array_unref (tap->acks);
  g_ptr_array_unref (tap->conns);
  g_free (tap);
}

/* GET /metrics of the daemon, on the loop (the server runs on it too). */
static void
on_metrics_read (GObject *session, GAsyncResult *result, gpointer user_data)
{
  GBytes **out = user_data;
  g_autoptr (GError) error = NULL;

  *out = soup_session_send_and_read_finish (SOUP_SESSION (session), result, &error);
  g_assert_no_error (error);
}

static gboolean
bytes_set (gpointer data)
{
  return *(GBytes **)data != NULL;
}

/* The value of one unlabelled sample; fails when it is absent. */
static gdouble
metric (guint port, const char *name)
{
  g_autoptr (SoupSession) session = soup_session_new ();
  g_autofree char *url = g_strdup_printf ("http://127.0.0.1:%u/metrics", port);
  g_autoptr (SoupMessage) msg = soup_message_new ("GET", url);
  g_autoptr (GBytes) body = NULL;
  g_autofree char *text = NULL;
  g_auto (GStrv) lines = NULL;

  soup_session_send_and_read_async (session, msg, G_PRIORITY_DEFAULT, NULL, on_metrics_read, &body);
  g_assert_true (atk_test_wait_until (NULL, bytes_set, &body, WAIT_MS));
  text = g_strndup (g_bytes_get_data (body, NULL), g_bytes_get_size (body));
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], name) && lines[i][strlen (name)] == ' ')
      return g_ascii_strtod (lines[i] + strlen (name) + 1, NULL);
  g_error ("no sample %s in /metrics", name);
}

typedef struct
{
  guint port;
  const char *name;
  gdouble value;
} MetricWait;

static gboolean
metric_is (gpointer data)
{
  MetricWait *w = data;
  return metric (w->port, w->name) == w->value;
}

static void
wait_metric (guint port, const char *name, gdouble value)
{
  MetricWait w = { port, name, value };

  if (!atk_test_wait_until (NULL, metric_is, &w, WAIT_MS))
    g_error ("%s is %g, expected %g", name, metric (port, name), value);
}

static gboolean
has_ack (Tap *tap, guint64 id)
{
  for (guint i = 0; i < tap->acks->len; i++)
    if (g_array_index (tap->acks, guint64, i) == id)
      return TRUE;
  return FALSE;
}

/* A port free a moment ago (the daemon does not say which port it bound). */
static guint
free_port (void)
{
  g_autoptr (GSocket) socket
      = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr (GSocketAddress) bound = NULL;

  g_assert_true (g_socket_bind (socket, any, FALSE, NULL));
  bound = g_socket_get_local_address (socket, NULL);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

static void
test_tap_acks (Fixture *f, gconstpointer data)
{
  Tap *tap = tap_new ();
  g_autofree char *tap_arg = g_strdup_printf ("--tap-host=%s", tap->url);
  guint port = free_port ();
  g_autofree char *metrics_arg = g_strdup_printf ("--metrics-listen-address=127.0.0.1:%u", port);
  const char *const extra[] = { tap_arg, metrics_arg, NULL };
  /* messages per event id (session-expected.jsonl: identities make two) */
  const guint per_event[] = { 0, 1, 1, 1, 1, 2, 1, 1, 2, 1 };

  start_daemon (f, extra);
  wait_produced (f, 11);
  g_assert_cmpuint (produced (f)->len, ==, 11);
  wait_metric (port, "atkafka_tap_events_pending", 9);
  g_assert_cmpuint (tap->acks->len, ==, 0); /* nothing is acked before Kafka has it */

  /* event 1 (one message) delivered: acked */
  atk_fake_sink_deliver (f->sink, per_event[1], TRUE, NULL);
  g_assert_true (atk_test_wait_for_count (NULL, &tap->acks->len, 1, WAIT_MS));
  g_assert_cmpuint (g_array_index (tap->acks, guint64, 0), ==, 1);
  /* event 2 failed for good: never acked (Tap delivers it again) */
  atk_fake_sink_deliver (f->sink, per_event[2], FALSE, "rejected");
  /* event 3's message, then event 4's: acked in turn */
  atk_fake_sink_deliver (f->sink, per_event[3] + per_event[4], TRUE, NULL);
  g_assert_true (atk_test_wait_for_count (NULL, &tap->acks->len, 3, WAIT_MS));
  /* event 5 (identity: two messages): one delivered is not enough */
  atk_fake_sink_deliver (f->sink, 1, TRUE, NULL);
  atk_test_run_for (NULL, 100);
  g_assert_false (has_ack (tap, 5));

  /* disconnected (operator pause): the rest is delivered, its acks wait */
  atk_daemon_pause (f->daemon);
  atk_fake_sink_deliver (f->sink, 1 + 1 + 1 + 2 + 1, TRUE, NULL); /* rest of 5, 6…9 */
  wait_metric (port, "atkafka_acks_queued", 5);
  wait_metric (port, "atkafka_tap_events_pending", 0);
  g_assert_cmpuint (tap->acks->len, ==, 3);
  /* connected again: they go out first */
  atk_daemon_resume (f->daemon);
  g_assert_true (atk_test_wait_for_count (NULL, &tap->acks->len, 8, WAIT_MS));
  wait_metric (port, "atkafka_acks_queued", 0);
  for (guint64 id = 1; id <= 9; id++)
    g_assert_cmpint (has_ack (tap, id), ==, id != 2);
  g_assert_cmpuint (tap->acks->len, ==, 8);
  g_clear_object (&f->daemon);
  tap_free (tap);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* Warnings are expected here (skips, rewinds) and checked by was_logged(); criticals
   * still fail the test. */
  g_log_set_always_fatal (G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
  g_log_set_writer_func (log_writer, NULL, NULL);

#define ADD(path, func)                                                                            \
  g_test_add ("/daemon/" path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
  ADD ("cursor-follows-acks", test_cursor_follows_acks);
  ADD ("too-large-skipped", test_too_large_skipped);
  ADD ("rejected-for-good", test_rejected_for_good);
  ADD ("undelivered-rewinds", test_undelivered_rewinds);
  ADD ("queue-full-rewinds", test_queue_full_rewinds);
  ADD ("backpressure", test_backpressure);
  ADD ("shutdown-kafka-down", test_shutdown_kafka_down);
  ADD ("shutdown-flushes", test_shutdown_flushes);
  ADD ("fatal", test_fatal);
  ADD ("refused-modes", test_refused_modes);
  ADD ("sink-options", test_sink_options);
  ADD ("tap-acks", test_tap_acks);
  return g_test_run ();
}
