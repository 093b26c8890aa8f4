/* Tests for AtkFirehoseSource and the at-kafka-replay tool, over real WebSockets on
 * loopback: an in-process SoupServer for the source's own behaviour, the replay binary
 * (as a subprocess) for the tool. Every wait is for a condition, with a deadline.
 * SPDX-License-Identifier: MIT */
#include <libsoup/soup.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>

#include "atk-cbor.h"
#include "atk-firehose-source.h"
#include "atk-test-util.h"

#define MAX_FRAME_5MB (5 * 1024 * 1024)
#define CURSOR_BASE 1000000

/* ---- waiting ---- */

/* Under valgrind everything runs about ten times slower; so do the deadlines. */
static guint
scaled_ms (guint ms)
{
  return g_getenv ("ATK_UNDER_VALGRIND") != NULL ? ms * 10 : ms;
}

static gboolean
wait_for (AtkTestCondition cond, gpointer data, guint timeout_ms)
{
  return atk_test_wait_until (NULL, cond, data, scaled_ms (timeout_ms));
}

typedef struct
{
  const guint *value;
  guint target;
} AtLeast;

static gboolean
at_least (gpointer data)
{
  AtLeast *a = data;
  return *a->value >= a->target;
}

static gboolean
wait_count (const guint *value, guint target, guint timeout_ms)
{
  AtLeast a = { value, target };
  return wait_for (at_least, &a, timeout_ms);
}

/* What the tests need from a frame: the header, the body's seq, and the info/error name. */
typedef struct
{
  gint64 op;
  char *t;
  gboolean has_seq;
  gint64 seq;
  char *name; /* #info "name" or error "error" */
  const guint8 *body;
  gsize body_len;
} Parsed;

static void
parsed_clear (Parsed *p)
{
  g_free (p->t);
  g_free (p->name);
}

static void
parse_frame (GBytes *bytes, Parsed *out)
{
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  AtkCborReader r;
  guint64 n, i;
  AtkStr key, text;

  memset (out, 0, sizeof *out);
  atk_cbor_reader_init (&r, data, len);
  g_assert_true (atk_cbor_read_map_len (&r, &n, NULL));
  for (i = 0; i < n; i++)
    {
      g_assert_true (atk_cbor_read_text (&r, &key, NULL));
      if (atk_str_equal (key, "op"))
        g_assert_true (atk_cbor_read_int (&r, &out->op, NULL));
      else if (atk_str_equal (key, "t"))
        {
          g_assert_true (atk_cbor_read_text (&r, &text, NULL));
          out->t = g_strndup (text.ptr, text.len);
        }
      else
        g_assert_true (atk_cbor_skip (&r, NULL));
    }
  out->body = r.pos;
  out->body_len = atk_cbor_reader_remaining (&r);
  g_assert_true (atk_cbor_read_map_len (&r, &n, NULL));
  for (i = 0; i < n; i++)
    {
      g_assert_true (atk_cbor_read_text (&r, &key, NULL));
      if (atk_str_equal (key, "seq"))
        {
          g_assert_true (atk_cbor_read_int (&r, &out->seq, NULL));
          out->has_seq = TRUE;
        }
      else if (atk_str_equal (key, "name") || atk_str_equal (key, "error"))
        {
          g_assert_true (atk_cbor_read_text (&r, &text, NULL));
          out->name = g_strndup (text.ptr, text.len);
        }
      else
        g_assert_true (atk_cbor_skip (&r, NULL));
    }
  g_assert_cmpuint (atk_cbor_reader_remaining (&r), ==, 0);
}

static gint64
frame_seq (GBytes *bytes)
{
  Parsed p;
  gint64 seq;

  parse_frame (bytes, &p);
  g_assert_true (p.has_seq);
  seq = p.seq;
  parsed_clear (&p);
  return seq;
}

/* Asserts that two frames are equal except for the body's seq value: same header bytes,
 * same body keys in the same order, every other value byte-identical. */
static void
assert_same_but_seq (GBytes *a, GBytes *b)
{
  Parsed pa, pb;
  AtkCborReader ra, rb;
  guint64 na, nb, i;

  parse_frame (a, &pa);
  parse_frame (b, &pb);
  g_assert_cmpmem (g_bytes_get_data (a, NULL), g_bytes_get_size (a) - pa.body_len,
                   g_bytes_get_data (b, NULL), g_bytes_get_size (b) - pb.body_len);
  atk_cbor_reader_init (&ra, pa.body, pa.body_len);
  atk_cbor_reader_init (&rb, pb.body, pb.body_len);
  g_assert_true (atk_cbor_read_map_len (&ra, &na, NULL));
  g_assert_true (atk_cbor_read_map_len (&rb, &nb, NULL));
  g_assert_cmpuint (na, ==, nb);
  for (i = 0; i < na; i++)
    {
      AtkStr ka, kb;
      const guint8 *va, *vb;

      g_assert_true (atk_cbor_read_text (&ra, &ka, NULL));
      g_assert_true (atk_cbor_read_text (&rb, &kb, NULL));
      g_assert_cmpmem (ka.ptr, ka.len, kb.ptr, kb.len);
      va = ra.pos;
      vb = rb.pos;
      g_assert_true (atk_cbor_skip (&ra, NULL));
      g_assert_true (atk_cbor_skip (&rb, NULL));
      if (!atk_str_equal (ka, "seq"))
        g_assert_cmpmem (va, ra.pos - va, vb, rb.pos - vb);
    }
  parsed_clear (&pa);
  parsed_clear (&pb);
}

/* ---- an in-process relay ---- */

typedef struct
{
  SoupServer *server;
  char *url;
  GPtrArray *frames;  /* GBytes to send on each connection, from the cursor */
  guint cut_after;    /* close each connection after this many frames (0: never) */
  gboolean send_text; /* a text message first */
  GPtrArray *queries; /* query string of each connection ("" if none) */
  GPtrArray *user_agents;
  GPtrArray *conns;
  guint connections;
  guint closed;
} TestRelay;

static void
on_relay_conn_closed (SoupWebsocketConnection *conn, gpointer user_data)
{
  TestRelay *relay = user_data;
  relay->closed++;
}

static void
on_relay_websocket (SoupServer *server, SoupServerMessage *msg, const char *path,
                    SoupWebsocketConnection *conn, gpointer user_data)
{
  TestRelay *relay = user_data;
  const char *query = g_uri_get_query (soup_server_message_get_uri (msg));
  const char *ua
      = soup_message_headers_get_one (soup_server_message_get_request_headers (msg), "User-Agent");
  guint start = 0, sent = 0, i;

  g_ptr_array_add (relay->queries, g_strdup (query ? query : ""));
  g_ptr_array_add (relay->user_agents, g_strdup (ua ? ua : ""));
  g_debug ("extensions offered: %s",
           soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                         "Sec-WebSocket-Extensions"));
  g_ptr_array_add (relay->conns, g_object_ref (conn));
  g_signal_connect (conn, "closed", G_CALLBACK (on_relay_conn_closed), relay);
  relay->connections++;

  /* The cursor is CURSOR_BASE + frames the client has already seen. */
  if (query != NULL && g_str_has_prefix (query, "cursor="))
    start = (guint)(g_ascii_strtoll (query + strlen ("cursor="), NULL, 10) - CURSOR_BASE);
  if (relay->send_text)
    soup_websocket_connection_send_text (conn, "not a frame");
  for (i = start; relay->frames != NULL && i < relay->frames->len; i++)
    {
      soup_websocket_connection_send_message (conn, SOUP_WEBSOCKET_DATA_BINARY,
                                              relay->frames->pdata[i]);
      if (++sent == relay->cut_after)
        {
          soup_websocket_connection_close (conn, SOUP_WEBSOCKET_CLOSE_NORMAL, "cut");
          return;
        }
    }
}

static TestRelay *
test_relay_new (GPtrArray *frames)
{
  TestRelay *relay = g_new0 (TestRelay, 1);
  g_autoptr (GError) error = NULL;
  GSList *uris;

  relay->server = soup_server_new (NULL, NULL);
  soup_server_add_websocket_handler (relay->server, "/xrpc/com.atproto.sync.subscribeRepos", NULL,
                                     NULL, on_relay_websocket, relay, NULL);
  soup_server_listen_local (relay->server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error);
  g_assert_no_error (error);
  uris = soup_server_get_uris (relay->server);
  relay->url = g_strdup_printf ("ws://127.0.0.1:%d", g_uri_get_port (uris->data));
  g_slist_free_full (uris, (GDestroyNotify)g_uri_unref);
  relay->frames = frames ? g_ptr_array_ref (frames) : NULL;
  relay->queries = g_ptr_array_new_with_free_func (g_free);
  relay->user_agents = g_ptr_array_new_with_free_func (g_free);
  relay->conns = g_ptr_array_new_with_free_func (g_object_unref);
  return relay;
}

static void
test_relay_free (TestRelay *relay)
{
  guint i;

  for (i = 0; i < relay->conns->len; i++)
    g_signal_handlers_disconnect_by_data (relay->conns->pdata[i], relay);
  soup_server_disconnect (relay->server);
  g_object_unref (relay->server);
  g_free (relay->url);
  g_clear_pointer (&relay->frames, g_ptr_array_unref);
  g_ptr_array_unref (relay->queries);
  g_ptr_array_unref (relay->user_agents);
  g_ptr_array_unref (relay->conns);
  g_free (relay);
}

/* ---- watching a source ---- */

typedef struct
{
  AtkFirehoseSource *source;
  GPtrArray *frames;   /* GBytes received */
  GArray *states;      /* AtkSourceState, in order */
  GArray *state_times; /* gint64 monotonic µs of each state change */
  GArray *backoffs;    /* (delay_ms, bound_ms) pairs on entering BACKOFF */
  GPtrArray *errors;   /* connection-error messages */
  gboolean count_only; /* do not keep the frames */
  guint64 n_bytes;
  guint n_frames;
  guint n_errors;
  guint n_backoffs;
  guint n_connected;
  guint frames_at_first_error;
  gboolean follow_cursor;    /* set_cursor(CURSOR_BASE + frames received) per frame */
  gboolean follow_frame_seq; /* set_cursor(seq of the frame) per frame */
  guint stop_after;          /* stop() from inside the frame handler after this many */
  guint signals_after_stop;
  gboolean stopped;
} Watch;

static void
on_frame (AtkFirehoseSource *source, GBytes *frame, gpointer user_data)
{
  Watch *w = user_data;

  if (w->stopped)
    w->signals_after_stop++;
  w->n_frames++;
  w->n_bytes += g_bytes_get_size (frame);
  if (!w->count_only)
    g_ptr_array_add (w->frames, g_bytes_ref (frame));
  if (w->follow_cursor)
    atk_firehose_source_set_cursor (source, TRUE, CURSOR_BASE + w->n_frames);
  if (w->follow_frame_seq)
    {
      Parsed p;
      parse_frame (frame, &p);
      if (p.has_seq)
        atk_firehose_source_set_cursor (source, TRUE, p.seq);
      parsed_clear (&p);
    }
  if (w->stop_after > 0 && w->n_frames == w->stop_after)
    {
      atk_firehose_source_stop (source);
      w->stopped = TRUE;
    }
}

static void
on_state (AtkFirehoseSource *source, AtkSourceState state, gpointer user_data)
{
  Watch *w = user_data;
  gint64 now = g_get_monotonic_time ();

  if (w->stopped)
    w->signals_after_stop++;
  g_assert_cmpint (state, ==, atk_firehose_source_get_state (source));
  g_array_append_val (w->states, state);
  g_array_append_val (w->state_times, now);
  if (state == ATK_SOURCE_BACKOFF)
    {
      guint pair[2];
      atk_firehose_source_get_backoff (source, &pair[0], &pair[1]);
      g_array_append_vals (w->backoffs, pair, 2);
      w->n_backoffs++;
    }
  if (state == ATK_SOURCE_CONNECTED)
    w->n_connected++;
}

static void
on_error (AtkFirehoseSource *source, const char *message, gpointer user_data)
{
  Watch *w = user_data;

  if (w->stopped)
    w->signals_after_stop++;
  g_assert_nonnull (message);
  g_assert_cmpstr (message, !=, "");
  if (w->n_errors == 0)
    w->frames_at_first_error = w->n_frames;
  g_ptr_array_add (w->errors, g_strdup (message));
  w->n_errors++;
}

static Watch *
watch_new (const char *url, guint max_frame_bytes, guint idle_timeout_s)
{
  Watch *w = g_new0 (Watch, 1);

  w->source = atk_firehose_source_new (url, max_frame_bytes, idle_timeout_s);
  w->frames = g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);
  w->states = g_array_new (FALSE, FALSE, sizeof (AtkSourceState));
  w->state_times = g_array_new (FALSE, FALSE, sizeof (gint64));
  w->backoffs = g_array_new (FALSE, FALSE, sizeof (guint));
  w->errors = g_ptr_array_new_with_free_func (g_free);
  g_signal_connect (w->source, "payload", G_CALLBACK (on_frame), w);
  g_signal_connect (w->source, "state-changed", G_CALLBACK (on_state), w);
  g_signal_connect (w->source, "connection-error", G_CALLBACK (on_error), w);
  return w;
}

static void
watch_free (Watch *w)
{
  atk_firehose_source_stop (w->source);
  g_signal_handlers_disconnect_by_data (w->source, w);
  g_object_unref (w->source);
  /* Let the dropped connection finish closing before the next test. */
  atk_test_run_for (NULL, scaled_ms (50));
  g_ptr_array_unref (w->frames);
  g_array_unref (w->states);
  g_array_unref (w->state_times);
  g_array_unref (w->backoffs);
  g_ptr_array_unref (w->errors);
  g_free (w);
}

static void
assert_frames_equal (GPtrArray *got, guint got_from, GPtrArray *want, guint want_from, guint n)
{
  guint i;

  g_assert_cmpuint (got->len, >=, got_from + n);
  g_assert_cmpuint (want->len, >=, want_from + n);
  for (i = 0; i < n; i++)
    g_assert_true (g_bytes_equal (got->pdata[got_from + i], want->pdata[want_from + i]));
}

static gboolean
state_is_connected (gpointer data)
{
  return atk_firehose_source_get_state (data) == ATK_SOURCE_CONNECTED;
}

/* ---- source tests ---- */

static void
test_source_frames_identical (void)
{
  g_autoptr (GPtrArray) frames = atk_test_load_frames ("relay-capture/frames.bin");
  TestRelay *relay = test_relay_new (frames);
  Watch *w = watch_new (relay->url, MAX_FRAME_5MB, 0);
  g_autofree char *want_ua = g_strdup_printf ("at-kafka/%s", ATK_VERSION);

  g_assert_cmpuint (frames->len, ==, 150);
  g_assert_cmpint (atk_firehose_source_get_state (w->source), ==, ATK_SOURCE_STOPPED);
  atk_firehose_source_start (w->source);
  g_assert_cmpint (atk_firehose_source_get_state (w->source), ==, ATK_SOURCE_CONNECTING);
  g_assert_true (wait_count (&w->n_frames, frames->len, 10000));

  assert_frames_equal (w->frames, 0, frames, 0, frames->len);
  g_assert_cmpuint (relay->connections, ==, 1);
  g_assert_cmpstr (relay->queries->pdata[0], ==, ""); /* no cursor: live tip */
  g_assert_cmpstr (relay->user_agents->pdata[0], ==, want_ua);
  g_assert_cmpint (atk_firehose_source_get_state (w->source), ==, ATK_SOURCE_CONNECTED);
  g_assert_cmpuint (w->n_errors, ==, 0);
  g_assert_cmpuint (atk_firehose_source_get_reconnects (w->source), ==, 0);
  g_assert_cmpuint (w->states->len, ==, 2);
  g_assert_cmpint (g_array_index (w->states, AtkSourceState, 0), ==, ATK_SOURCE_CONNECTING);
  g_assert_cmpint (g_array_index (w->states, AtkSourceState, 1), ==, ATK_SOURCE_CONNECTED);

  watch_free (w);
  test_relay_free (relay);
}

static GBytes *
random_bytes (gsize len)
{
  guint8 *data = g_malloc (len);
  gsize i;

  for (i = 0; i < len; i++)
    data[i] = (guint8)g_random_int ();
  return g_bytes_new_take (data, len);
}

static void
test_source_large_frame (void)
{
  g_autoptr (GPtrArray) frames = g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);
  TestRelay *relay;
  Watch *w;
  guint i;

  g_ptr_array_add (frames, random_bytes (3 * 1024 * 1024));
  g_ptr_array_add (frames, random_bytes (100));
  relay = test_relay_new (frames);

  /* With a 5 MB limit the 3 MB message arrives whole. */
  w = watch_new (relay->url, MAX_FRAME_5MB, 0);
  atk_firehose_source_start (w->source);
  g_assert_true (wait_count (&w->n_frames, 2, 20000));
  assert_frames_equal (w->frames, 0, frames, 0, 2);
  g_assert_cmpuint (w->n_errors, ==, 0);
  watch_free (w);

  /* With libsoup's 128 KiB default it cannot: the source reports it and reconnects. */
  w = watch_new (relay->url, 128 * 1024, 0);
  atk_firehose_source_start (w->source);
  g_assert_true (wait_count (&w->n_errors, 2, 20000));
  g_assert_true (wait_count (&relay->connections, 2, 20000));
  for (i = 0; i < w->frames->len; i++)
    g_assert_cmpuint (g_bytes_get_size (w->frames->pdata[i]), <, 128 * 1024);
  g_assert_nonnull (strstr (w->errors->pdata[0], "1009"));
  g_assert_nonnull (strstr (w->errors->pdata[0], "max_frame_bytes"));
  g_assert_cmpuint (atk_firehose_source_get_reconnects (w->source), >=, 1);
  g_assert_cmpint (atk_firehose_source_get_state (w->source), !=, ATK_SOURCE_STOPPED);
  watch_free (w);

  test_relay_free (relay);
}

static gboolean
states_contain (GArray *states, guint from, AtkSourceState a, AtkSourceState b)
{
  guint i;

  for (i = from; i + 1 < states->len; i++)
    if (g_array_index (states, AtkSourceState, i) == a
        && g_array_index (states, AtkSourceState, i + 1) == b)
      return TRUE;
  return FALSE;
}

static void
test_source_reconnect_with_cursor (void)
{
  g_autoptr (GPtrArray) frames = atk_test_load_frames ("relay-capture/frames.bin");
  TestRelay *relay = test_relay_new (frames);
  Watch *w = watch_new (relay->url, MAX_FRAME_5MB, 0);
  g_autofree char *q1 = g_strdup_printf ("cursor=%d", CURSOR_BASE + 50);
  g_autofree char *q2 = g_strdup_printf ("cursor=%d", CURSOR_BASE + 100);

  relay->cut_after = 50;
  w->follow_cursor = TRUE;
  atk_firehose_source_start (w->source);
  g_assert_true (wait_count (&w->n_frames, frames->len, 20000));
  g_assert_true (wait_count (&relay->connections, 4, 20000)); /* the 4th gets nothing */

  /* Every frame once, in order, across three cuts. */
  g_assert_cmpuint (w->frames->len, ==, frames->len);
  assert_frames_equal (w->frames, 0, frames, 0, frames->len);
  g_assert_cmpstr (relay->queries->pdata[0], ==, "");
  g_assert_cmpstr (relay->queries->pdata[1], ==, q1);
  g_assert_cmpstr (relay->queries->pdata[2], ==, q2);
  g_assert_cmpuint (w->frames_at_first_error, ==, 50);
  g_assert_nonnull (strstr (w->errors->pdata[0], "1000"));
  g_assert_cmpuint (atk_firehose_source_get_reconnects (w->source), ==, 3);
  /* After a drop: BACKOFF, then CONNECTING → CONNECTED again. */
  g_assert_true (states_contain (w->states, 2, ATK_SOURCE_CONNECTED, ATK_SOURCE_BACKOFF));
  g_assert_true (states_contain (w->states, 3, ATK_SOURCE_BACKOFF, ATK_SOURCE_CONNECTING));
  g_assert_true (states_contain (w->states, 3, ATK_SOURCE_CONNECTING, ATK_SOURCE_CONNECTED));
  g_assert_true (wait_for (state_is_connected, w->source, 5000));
  g_assert_cmpuint (w->n_connected, ==, 4);

  watch_free (w);
  test_relay_free (relay);
}

static void
test_source_backoff (void)
{
  g_autoptr (GSocket) refusing = NULL;
  g_autofree char *url = g_strdup_printf ("ws://127.0.0.1:%u", atk_test_refusing_port (&refusing));
  Watch *w = watch_new (url, MAX_FRAME_5MB, 0);
  const guint want_bounds[] = { 250, 500, 1000, 2000 };
  guint i, j;

  atk_firehose_source_start (w->source);
  g_assert_true (wait_count (&w->n_backoffs, 4, 15000));
  g_assert_true (wait_count (&w->n_errors, 4, 1000));

  g_assert_cmpuint (w->n_connected, ==, 0);
  for (i = 0; i < 4; i++)
    {
      guint delay = g_array_index (w->backoffs, guint, 2 * i);
      guint bound = g_array_index (w->backoffs, guint, 2 * i + 1);
      g_assert_cmpuint (bound, ==, want_bounds[i]);
      g_assert_cmpuint (delay, <=, bound);
    }
  /* The states alternate CONNECTING, BACKOFF, …, and each retry waits its delay. */
  for (i = 0; i < w->states->len; i++)
    g_assert_cmpint (g_array_index (w->states, AtkSourceState, i), ==,
                     i % 2 == 0 ? ATK_SOURCE_CONNECTING : ATK_SOURCE_BACKOFF);
  for (i = 1, j = 0; i + 1 < w->states->len && j < 4; i += 2, j++)
    {
      gint64 waited_us = g_array_index (w->state_times, gint64, i + 1)
                         - g_array_index (w->state_times, gint64, i);
      g_assert_cmpint (waited_us + 1000, >=,
                       (gint64)g_array_index (w->backoffs, guint, 2 * j) * 1000);
    }
  g_assert_cmpuint (atk_firehose_source_get_reconnects (w->source), >=, 3);
  g_assert_nonnull (strstr (w->errors->pdata[0], "connect failed"));

  watch_free (w);
}

static void
test_source_idle_timeout (void)
{
  TestRelay *relay = test_relay_new (NULL); /* accepts, then says nothing */
  Watch *w = watch_new (relay->url, MAX_FRAME_5MB, 1);
  gint64 connected_us, error_us;

  atk_firehose_source_start (w->source);
  g_assert_true (wait_count (&w->n_connected, 1, 5000));
  connected_us = g_get_monotonic_time ();
  g_assert_true (wait_count (&w->n_errors, 1, 5000));
  error_us = g_get_monotonic_time ();
  g_assert_nonnull (strstr (w->errors->pdata[0], "no frame for 1 s"));
  g_assert_cmpint (error_us - connected_us, >=, 900 * 1000);
  /* … and it connects again. */
  g_assert_true (wait_count (&relay->connections, 2, 5000));
  g_assert_true (wait_count (&w->n_connected, 2, 5000));

  watch_free (w);
  test_relay_free (relay);
}

static gboolean
relay_saw_close (gpointer data)
{
  TestRelay *relay = data;
  return relay->closed >= relay->connections && relay->connections > 0;
}

static void
test_source_stop (void)
{
  g_autoptr (GPtrArray) frames = atk_test_load_frames ("relay-capture/frames.bin");
  TestRelay *relay = test_relay_new (frames);
  Watch *w = watch_new (relay->url, MAX_FRAME_5MB, 1);
  guint delay_ms;

  /* stop() from inside the frame handler: nothing is delivered after it. */
  w->stop_after = 10;
  atk_firehose_source_start (w->source);
  g_assert_true (wait_count (&w->n_frames, 10, 10000));
  g_assert_cmpint (atk_firehose_source_get_state (w->source), ==, ATK_SOURCE_STOPPED);
  g_assert_true (wait_for (relay_saw_close, relay, 5000)); /* the relay saw it close */
  /* Past the idle timeout too: no watchdog survives stop(). */
  atk_test_run_for (NULL, scaled_ms (1500));
  g_assert_cmpuint (w->n_frames, ==, 10);
  g_assert_cmpuint (w->signals_after_stop, ==, 0);
  g_assert_cmpuint (relay->connections, ==, 1);

  /* stop() during BACKOFF: the pending retry never runs. */
  test_relay_free (relay);
  relay = NULL;
  {
    g_autoptr (GSocket) refusing = NULL;
    g_autofree char *url
        = g_strdup_printf ("ws://127.0.0.1:%u", atk_test_refusing_port (&refusing));
    Watch *w2 = watch_new (url, MAX_FRAME_5MB, 0);
    guint states;

    atk_firehose_source_start (w2->source);
    g_assert_true (wait_count (&w2->n_backoffs, 1, 5000));
    atk_firehose_source_get_backoff (w2->source, &delay_ms, NULL);
    atk_firehose_source_stop (w2->source);
    w2->stopped = TRUE;
    states = w2->states->len;
    g_assert_cmpint (g_array_index (w2->states, AtkSourceState, states - 1), ==,
                     ATK_SOURCE_STOPPED);
    atk_test_run_for (NULL, scaled_ms (delay_ms + 200));
    g_assert_cmpuint (w2->states->len, ==, states);
    g_assert_cmpuint (w2->signals_after_stop, ==, 0);
    g_assert_cmpuint (atk_firehose_source_get_reconnects (w2->source), ==, 0);

    /* And it can start again. */
    w2->stopped = FALSE;
    atk_firehose_source_start (w2->source);
    g_assert_cmpint (atk_firehose_source_get_state (w2->source), ==, ATK_SOURCE_CONNECTING);
    watch_free (w2);
  }
  watch_free (w);
}

static void
test_source_text_ignored (void)
{
  g_autoptr (GPtrArray) frames = atk_test_load_frames ("relay-capture/frames.bin");
  TestRelay *relay;
  Watch *w;

  g_ptr_array_set_size (frames, 3);
  relay = test_relay_new (frames);
  relay->send_text = TRUE;
  w = watch_new (relay->url, MAX_FRAME_5MB, 0);
  atk_firehose_source_start (w->source);
  g_assert_true (wait_count (&w->n_frames, 3, 10000));
  assert_frames_equal (w->frames, 0, frames, 0, 3);
  g_assert_cmpuint (w->n_errors, ==, 0);

  watch_free (w);
  test_relay_free (relay);
}

static void
test_source_reconnect_now (void)
{
  g_autoptr (GPtrArray) frames = atk_test_load_frames ("relay-capture/frames.bin");
  TestRelay *relay = test_relay_new (frames);
  Watch *w = watch_new (relay->url, MAX_FRAME_5MB, 0);
  g_autofree char *q = g_strdup_printf ("cursor=%d", CURSOR_BASE + 150);
  guint before;

  w->follow_cursor = TRUE;
  atk_firehose_source_start (w->source);
  g_assert_true (wait_count (&w->n_frames, 150, 10000));
  before = w->states->len;
  atk_firehose_source_reconnect (w->source);
  g_assert_cmpint (atk_firehose_source_get_state (w->source), ==, ATK_SOURCE_CONNECTING);
  g_assert_true (wait_count (&relay->connections, 2, 5000));
  g_assert_true (wait_for (state_is_connected, w->source, 5000));
  g_assert_cmpstr (relay->queries->pdata[1], ==, q);
  g_assert_cmpuint (w->states->len, ==, before + 2); /* CONNECTING, CONNECTED: no BACKOFF */
  g_assert_cmpuint (w->n_errors, ==, 0);
  g_assert_cmpuint (atk_firehose_source_get_reconnects (w->source), ==, 1);

  watch_free (w);
  test_relay_free (relay);
}

/* ---- the replay tool ---- */

typedef struct
{
  GSubprocess *process;
  char *url;
  gboolean exited;
} Replay;

static void
die_with_parent (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGTERM);
}

static Replay *
replay_start (const char *const *extra_args, const char *vector, gboolean capture_stderr)
{
  Replay *replay = g_new0 (Replay, 1);
  g_autofree char *binary
      = g_build_filename (g_getenv ("ATK_BUILD_DIR"), "tools", "at-kafka-replay", NULL);
  g_autofree char *file = atk_test_vector_path (vector);
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GSubprocessLauncher) launcher = NULL;
  g_autoptr (GDataInputStream) out = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *line = NULL;
  guint i;

  g_ptr_array_add (argv, binary);
  for (i = 0; extra_args != NULL && extra_args[i] != NULL; i++)
    g_ptr_array_add (argv, (char *)extra_args[i]);
  g_ptr_array_add (argv, file);
  g_ptr_array_add (argv, NULL);
  launcher = g_subprocess_launcher_new (
      G_SUBPROCESS_FLAGS_STDOUT_PIPE
      | (capture_stderr ? G_SUBPROCESS_FLAGS_STDERR_PIPE : G_SUBPROCESS_FLAGS_NONE));
  /* A failed assertion aborts this process: take the relay down with it. */
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  replay->process
      = g_subprocess_launcher_spawnv (launcher, (const char *const *)argv->pdata, &error);
  g_assert_no_error (error);
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (replay->process));
  g_filter_input_stream_set_close_base_stream (G_FILTER_INPUT_STREAM (out), FALSE);
  line = g_data_input_stream_read_line (out, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (line);
  g_assert_true (g_str_has_prefix (line, "listening on ws://127.0.0.1:"));
  replay->url = g_strdup (line + strlen ("listening on "));
  return replay;
}

static void
on_replay_exited (GObject *object, GAsyncResult *result, gpointer user_data)
{
  Replay *replay = user_data;
  g_subprocess_wait_finish (G_SUBPROCESS (object), result, NULL);
  replay->exited = TRUE;
}

static gboolean
replay_exited (gpointer data)
{
  return ((Replay *)data)->exited;
}

static void
replay_free (Replay *replay)
{
  if (!replay->exited)
    {
      g_subprocess_send_signal (replay->process, SIGTERM);
      g_subprocess_wait_async (replay->process, NULL, on_replay_exited, replay);
      g_assert_true (wait_for (replay_exited, replay, 5000));
    }
  g_object_unref (replay->process);
  g_free (replay->url);
  g_free (replay);
}

static void
test_replay_all_frames (void)
{
  g_autoptr (GPtrArray) frames = atk_test_load_frames ("relay-capture/frames.bin");
  Replay *replay = replay_start (NULL, "relay-capture/frames.bin", FALSE);
  Watch *w = watch_new (replay->url, MAX_FRAME_5MB, 0);

  atk_firehose_source_start (w->source);
  g_assert_true (wait_count (&w->n_frames, frames->len, 10000));
  assert_frames_equal (w->frames, 0, frames, 0, frames->len);
  g_assert_cmpuint (w->n_errors, ==, 0);

  watch_free (w);
  replay_free (replay);
}

static void
test_replay_outdated_cursor (void)
{
  g_autoptr (GPtrArray) frames = atk_test_load_frames ("relay-capture/frames.bin");
  Replay *replay = replay_start (NULL, "relay-capture/frames.bin", FALSE);
  Watch *w = watch_new (replay->url, MAX_FRAME_5MB, 0);
  Parsed info;

  atk_firehose_source_set_cursor (w->source, TRUE, 5);
  atk_firehose_source_start (w->source);
  g_assert_true (wait_count (&w->n_frames, frames->len + 1, 10000));
  parse_frame (w->frames->pdata[0], &info);
  g_assert_cmpint (info.op, ==, 1);
  g_assert_cmpstr (info.t, ==, "#info");
  g_assert_cmpstr (info.name, ==, "OutdatedCursor");
  g_assert_false (info.has_seq);
  parsed_clear (&info);
  assert_frames_equal (w->frames, 1, frames, 0, frames->len);

  watch_free (w);
  replay_free (replay);
}

static void
test_replay_cursor_middle (void)
{
  g_autoptr (GPtrArray) frames = atk_test_load_frames ("relay-capture/frames.bin");
  Replay *replay = replay_start (NULL, "relay-capture/frames.bin", FALSE);
  Watch *w = watch_new (replay->url, MAX_FRAME_5MB, 0);

  /* Resume after frame 99: frames 100… follow, and nothing before them. */
  atk_firehose_source_set_cursor (w->source, TRUE, frame_seq (frames->pdata[99]));
  atk_firehose_source_start (w->source);
  g_assert_true (wait_count (&w->n_frames, 50, 10000));
  atk_test_run_for (NULL, scaled_ms (200)); /* room for frames that should not come */
  g_assert_cmpuint (w->n_frames, ==, 50);
  assert_frames_equal (w->frames, 0, frames, 100, 50);

  watch_free (w);
  replay_free (replay);
}

static void
test_replay_future_cursor (void)
{
  g_autoptr (GPtrArray) frames = atk_test_load_frames ("relay-capture/frames.bin");
  Replay *replay = replay_start (NULL, "relay-capture/frames.bin", FALSE);
  Watch *w = watch_new (replay->url, MAX_FRAME_5MB, 0);
  Parsed err;

  atk_firehose_source_set_cursor (w->source, TRUE, frame_seq (frames->pdata[149]) + 1000);
  atk_firehose_source_start (w->source);
  g_assert_true (wait_count (&w->n_errors, 1, 10000)); /* the relay closed after the error frame */
  g_assert_cmpuint (w->frames_at_first_error, ==, 1);
  parse_frame (w->frames->pdata[0], &err);
  g_assert_cmpint (err.op, ==, -1);
  g_assert_null (err.t);
  g_assert_cmpstr (err.name, ==, "FutureCursor");
  parsed_clear (&err);

  watch_free (w);
  replay_free (replay);
}

static void
test_replay_loop (void)
{
  g_autoptr (GPtrArray) frames = atk_test_load_frames ("relay-capture/frames.bin");
  const char *const args[] = { "--loop", "3", NULL };
  Replay *replay = replay_start (args, "relay-capture/frames.bin", FALSE);
  Watch *w = watch_new (replay->url, MAX_FRAME_5MB, 0);
  Watch *w2;
  gint64 prev = G_MININT64;
  guint i;

  atk_firehose_source_start (w->source);
  g_assert_true (wait_count (&w->n_frames, 3 * frames->len, 20000));
  assert_frames_equal (w->frames, 0, frames, 0, frames->len); /* the first pass as is */
  for (i = 0; i < w->frames->len; i++)
    {
      gint64 seq = frame_seq (w->frames->pdata[i]);
      g_assert_cmpint (seq, >, prev);
      prev = seq;
      assert_same_but_seq (w->frames->pdata[i], frames->pdata[i % frames->len]);
    }

  /* A cursor inside the second pass resumes right after it. */
  w2 = watch_new (replay->url, MAX_FRAME_5MB, 0);
  atk_firehose_source_set_cursor (w2->source, TRUE, frame_seq (w->frames->pdata[200]));
  atk_firehose_source_start (w2->source);
  g_assert_true (wait_count (&w2->n_frames, 450 - 201, 20000));
  assert_frames_equal (w2->frames, 0, w->frames, 201, 450 - 201);

  watch_free (w2);
  watch_free (w);
  replay_free (replay);
}

static void
test_replay_cut_after (void)
{
  g_autoptr (GPtrArray) frames = atk_test_load_frames ("relay-capture/frames.bin");
  const char *const args[] = { "--cut-after", "40", NULL };
  Replay *replay = replay_start (args, "relay-capture/frames.bin", FALSE);
  Watch *w = watch_new (replay->url, MAX_FRAME_5MB, 0);

  w->follow_frame_seq = TRUE; /* like the daemon: resume after the last seq seen */
  atk_firehose_source_start (w->source);
  g_assert_true (wait_count (&w->n_frames, frames->len, 20000));
  g_assert_cmpuint (w->frames_at_first_error, ==, 40);
  g_assert_nonnull (strstr (w->errors->pdata[0], "cut-after"));
  g_assert_true (wait_count (&w->n_errors, 3, 5000));
  g_assert_cmpuint (w->frames->len, ==, frames->len);
  assert_frames_equal (w->frames, 0, frames, 0, frames->len);
  g_assert_cmpuint (atk_firehose_source_get_reconnects (w->source), >=, 3);

  watch_free (w);
  replay_free (replay);
}

static void
test_replay_exit_after_clients (void)
{
  const char *const args[] = { "--exit-after-clients", "1", "--close-at-end", NULL };
  Replay *replay = replay_start (args, "pds-capture/frames.bin", TRUE);
  g_autoptr (GPtrArray) frames = atk_test_load_frames ("pds-capture/frames.bin");
  Watch *w = watch_new (replay->url, MAX_FRAME_5MB, 0);
  g_autoptr (GBytes) err_bytes = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *err_text = NULL;
  g_autoptr (GInputStream) err = NULL;

  atk_firehose_source_start (w->source);
  g_assert_true (wait_count (&w->n_errors, 1, 10000)); /* closed at the end of the file */
  assert_frames_equal (w->frames, 0, frames, 0, frames->len);
  atk_firehose_source_stop (w->source);
  g_subprocess_wait_async (replay->process, NULL, on_replay_exited, replay);
  g_assert_true (wait_for (replay_exited, replay, 5000));
  g_assert_true (g_subprocess_get_if_exited (replay->process));
  g_assert_cmpint (g_subprocess_get_exit_status (replay->process), ==, 0);

  err = g_object_ref (g_subprocess_get_stderr_pipe (replay->process));
  err_bytes = g_input_stream_read_bytes (err, 65536, NULL, &error);
  g_assert_no_error (error);
  err_text = g_strndup (g_bytes_get_data (err_bytes, NULL), g_bytes_get_size (err_bytes));
  g_assert_nonnull (strstr (err_text, "at-kafka-replay: clients=1 "));

  watch_free (w);
  replay_free (replay);
}

/* Not a pass/fail test: reports frames/s of replay -> source over loopback. */
static void
test_replay_throughput (void)
{
  gboolean valgrind = g_getenv ("ATK_UNDER_VALGRIND") != NULL;
  const char *const args[] = { "--loop", valgrind ? "2" : "200", NULL };
  guint want = (valgrind ? 2 : 200) * 150;
  Replay *replay = replay_start (args, "relay-capture/frames.bin", FALSE);
  Watch *w = watch_new (replay->url, MAX_FRAME_5MB, 0);
  gint64 start, elapsed;
  double bytes;

  w->count_only = TRUE;
  atk_firehose_source_start (w->source);
  start = g_get_monotonic_time ();
  g_assert_true (wait_count (&w->n_frames, want, 120000));
  elapsed = g_get_monotonic_time () - start;
  bytes = (double)w->n_bytes;
  g_test_message ("replay -> source: %u frames, %.1f MB in %.3f s: %.0f frames/s, %.1f MB/s", want,
                  bytes / 1e6, elapsed / 1e6, want / (elapsed / 1e6),
                  bytes / 1e6 / (elapsed / 1e6));
  g_assert_cmpuint (w->n_errors, ==, 0);

  watch_free (w);
  replay_free (replay);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/source/frames-identical", test_source_frames_identical);
  g_test_add_func ("/source/large-frame", test_source_large_frame);
  g_test_add_func ("/source/reconnect-with-cursor", test_source_reconnect_with_cursor);
  g_test_add_func ("/source/backoff", test_source_backoff);
  g_test_add_func ("/source/idle-timeout", test_source_idle_timeout);
  g_test_add_func ("/source/stop", test_source_stop);
  g_test_add_func ("/source/text-ignored", test_source_text_ignored);
  g_test_add_func ("/source/reconnect-now", test_source_reconnect_now);
  g_test_add_func ("/replay/all-frames", test_replay_all_frames);
  g_test_add_func ("/replay/outdated-cursor", test_replay_outdated_cursor);
  g_test_add_func ("/replay/cursor-middle", test_replay_cursor_middle);
  g_test_add_func ("/replay/future-cursor", test_replay_future_cursor);
  g_test_add_func ("/replay/loop", test_replay_loop);
  g_test_add_func ("/replay/cut-after", test_replay_cut_after);
  g_test_add_func ("/replay/exit-after-clients", test_replay_exit_after_clients);
  g_test_add_func ("/replay/throughput", test_replay_throughput);

  return g_test_run ();
}
