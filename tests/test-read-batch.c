/* Tests for --read-batch-ms: the relay input reads the socket once per batch window instead of
 * once per frame, and does not pause while the peer is ahead of it. A real WebSocket on
 * loopback (an in-process SoupServer on the same main loop); every wait has a deadline.
 * SPDX-License-Identifier: MIT */
#include <libsoup/soup.h>

#include "atk-firehose-source.h"
#include "atk-read-pacer.h"
#include "atk-test-http.h"
#include "atk-test-util.h"

/* Under valgrind everything runs about ten times slower; so do the deadlines. */
static guint
scaled_ms (guint ms)
{
  return g_getenv ("ATK_UNDER_VALGRIND") != NULL ? ms * 10 : ms;
}

typedef struct
{
  SoupServer *server;
  char *url;
  GPtrArray *frames; /* GBytes, sent on the first connection */
  guint pace_ms;     /* one frame per pace_ms; 0: all at once */
  SoupWebsocketConnection *conn;
  guint next;
  guint pace_id;
  /* the client side */
  guint received;
  gboolean in_order;
  gint64 first_us, last_us;
  gint64 last_received_us; /* atk_input_get_received_us() */
  guint n_received_times;  /* how many different ones */
} Peer;

static gboolean
send_next (gpointer user_data)
{
  Peer *peer = user_data;

  if (peer->next >= peer->frames->len)
    {
      peer->pace_id = 0;
      return G_SOURCE_REMOVE;
    }
  soup_websocket_connection_send_message (peer->conn, SOUP_WEBSOCKET_DATA_BINARY,
                                          peer->frames->pdata[peer->next++]);
  return G_SOURCE_CONTINUE;
}

static void
on_websocket (SoupServer *server, SoupServerMessage *msg, const char *path,
              SoupWebsocketConnection *conn, gpointer user_data)
{
  Peer *peer = user_data;

  g_assert_null (peer->conn); /* one connection: the client never reconnects here */
  peer->conn = g_object_ref (conn);
  if (peer->pace_ms > 0)
    peer->pace_id = g_timeout_add (peer->pace_ms, send_next, peer);
  else
    while (send_next (peer) == G_SOURCE_CONTINUE)
      ;
}

static void
on_payload (AtkInput *input, GBytes *payload, gpointer user_data)
{
  Peer *peer = user_data;
  gint64 now = g_get_monotonic_time ();

  if (peer->received == 0)
    peer->first_us = now;
  peer->last_us = now;
  if (atk_input_get_received_us (input) != peer->last_received_us)
    peer->n_received_times++;
  peer->last_received_us = atk_input_get_received_us (input);
  if (peer->received >= peer->frames->len
      || !g_bytes_equal (payload, peer->frames->pdata[peer->received]))
    peer->in_order = FALSE;
  peer->received++;
}

static Peer *
peer_new (GPtrArray *frames, guint pace_ms)
{
  Peer *peer = g_new0 (Peer, 1);

  peer->frames = g_ptr_array_ref (frames);
  peer->pace_ms = pace_ms;
  peer->in_order = TRUE;
  peer->server = atk_test_ws_server_new ("/xrpc/com.atproto.sync.subscribeRepos", on_websocket,
                                         peer, &peer->url);
  return peer;
}

static void
peer_free (Peer *peer)
{
  g_clear_handle_id (&peer->pace_id, g_source_remove);
  g_clear_object (&peer->conn);
  atk_test_http_server_stop (&peer->server);
  g_ptr_array_unref (peer->frames);
  g_free (peer->url);
  g_free (peer);
}

/* Runs the relay input with batch_ms against peer until every frame arrived; returns the
 * socket reads that got data. */
static guint64
receive_all (Peer *peer, guint batch_ms, guint timeout_ms)
{
  g_autoptr (AtkFirehoseSource) source = atk_firehose_source_new (peer->url, 8 << 20, 0);
  guint64 reads;

  atk_firehose_source_set_read_batch (source, batch_ms);
  g_signal_connect (source, "payload", G_CALLBACK (on_payload), peer);
  atk_firehose_source_start (source);
  if (!atk_test_wait_for_count (NULL, &peer->received, peer->frames->len, scaled_ms (timeout_ms)))
    g_error ("%u of %u frames arrived within %u ms (batch %u ms, %" G_GUINT64_FORMAT " reads)",
             peer->received, peer->frames->len, scaled_ms (timeout_ms), batch_ms,
             atk_firehose_source_get_reads (source));
  reads = atk_firehose_source_get_reads (source);
  g_assert_true (peer->in_order);
  g_assert_cmpuint (peer->received, ==, peer->frames->len);
  atk_firehose_source_stop (source);
  g_signal_handlers_disconnect_by_data (source, peer);
  return reads;
}

/* A frame every 2 ms, as a relay sends them (one small message at a time): with a 50 ms batch,
 * at most one read per 50 ms of the run (plus the first); with no batch, about one per frame. */
static void
test_paced (void)
{
  g_autoptr (GPtrArray) capture = atk_test_load_frames ("relay-capture/frames.bin");
  g_autoptr (GPtrArray) frames = g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);
  Peer *peer;
  guint64 reads, bound;
  guint i;

  for (i = 0; i < 100; i++)
    g_ptr_array_add (frames, g_bytes_ref (capture->pdata[i]));

  peer = peer_new (frames, 2);
  reads = receive_all (peer, 50, 20000);
  /* a read, then 50 ms without one: n reads span about (n - 1) * 50 ms. GLib times the pause
   * from the time it cached when the loop iteration began, which on a loaded machine can be
   * well before the read (seen: 8 reads in 258 ms under stress-ng beside four other tests), so
   * the bound allows pauses of half that; and one more read for one that got only the start of
   * a frame (a write the server split). */
  bound = (guint64)((peer->last_us - peer->first_us) / (25 * 1000)) + 2;
  g_test_message ("batch 50 ms: %u frames in %.0f ms, %" G_GUINT64_FORMAT
                  " reads (bound %" G_GUINT64_FORMAT ")",
                  peer->received, (peer->last_us - peer->first_us) / 1e3, reads, bound);
  g_assert_cmpuint (reads, >=, 1);
  g_assert_cmpuint (reads, <=, bound);
  g_assert_cmpuint (reads, <, frames->len / 4);
  peer_free (peer);

  /* The contrast, so that the check above can fail: no batch, a read per frame or so. */
  peer = peer_new (frames, 2);
  reads = receive_all (peer, 0, 20000);
  g_test_message ("no batch: %u frames in %.0f ms, %" G_GUINT64_FORMAT " reads", peer->received,
                  (peer->last_us - peer->first_us) / 1e3, reads);
  g_assert_cmpuint (reads, >=, frames->len / 2);
  peer_free (peer);
}

/* 4 MB sent at once: every read takes 128 KiB or more, so the input does not pause between them
 * (a 1 s pause per read of at most 256 KiB would take 15 s or more). */
static void
test_backlog (void)
{
  g_autoptr (GPtrArray) frames = g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);
  Peer *peer;
  guint64 reads;
  guint i;

  for (i = 0; i < 64; i++)
    {
      guint8 *data = g_malloc (64 * 1024);
      gsize j;

      for (j = 0; j < 64 * 1024; j++)
        data[j] = (guint8)(i * 31 + j * 7);
      g_ptr_array_add (frames, g_bytes_new_take (data, 64 * 1024));
    }
  peer = peer_new (frames, 0);
  reads = receive_all (peer, 1000, 30000);
  g_test_message ("batch 1000 ms, 4 MiB at once: %u frames in %.0f ms, %" G_GUINT64_FORMAT " reads",
                  peer->received, (peer->last_us - peer->first_us) / 1e3, reads);
  g_assert_cmpint (peer->last_us - peer->first_us, <, scaled_ms (6000) * (gint64)1000);
  /* No pause: the frames count from the read that got them (a new time in each), not from the
   * first read while the peer stays ahead. */
  g_test_message ("%u different receive times", peer->n_received_times);
  g_assert_cmpuint (peer->n_received_times, >, reads / 2);
  peer_free (peer);
}

/* ---- when a frame reached us -------------------------------------------------------- */

typedef struct
{
  guint n;
  gint64 received_us[5]; /* atk_input_get_received_us() in "payload" */
  gint64 seen_us[5];
} Seen;

static void
on_payload_seen (AtkInput *input, GBytes *payload, gpointer user_data)
{
  Seen *seen = user_data;

  if (seen->n < G_N_ELEMENTS (seen->received_us))
    {
      seen->received_us[seen->n] = atk_input_get_received_us (input);
      seen->seen_us[seen->n] = g_get_monotonic_time ();
    }
  seen->n++;
}

static gboolean
peer_connected (gpointer user_data)
{
  return ((Peer *)user_data)->conn != NULL;
}

typedef struct
{
  Peer *peer;
  GBytes *frame;
  gint64 sent_us;
} Send;

static gboolean
send_later (gpointer user_data)
{
  Send *send = user_data;

  send->sent_us = g_get_monotonic_time ();
  soup_websocket_connection_send_message (send->peer->conn, SOUP_WEBSOCKET_DATA_BINARY,
                                          send->frame);
  return G_SOURCE_REMOVE;
}

static void
send_once (gpointer user_data)
{
  send_later (user_data);
}

/* The delivery latency counts from atk_input_get_received_us(): a frame that came during a rest
 * counts from the rest's start (before it was sent), not from the read at the rest's end; a
 * frame that came while the socket was watched again counts from its wake-up (after it was
 * sent), not from a rest long over. With a 1 s batch. */
static void
test_received (void)
{
  g_autoptr (GPtrArray) capture = atk_test_load_frames ("relay-capture/frames.bin");
  g_autoptr (GPtrArray) none = g_ptr_array_new ();
  Peer *peer = peer_new (none, 0);
  g_autoptr (AtkFirehoseSource) source = atk_firehose_source_new (peer->url, 8 << 20, 0);
  Seen seen = { 0 };
  Send a = { peer, capture->pdata[0], 0 }, b = { peer, capture->pdata[1], 0 },
       c = { peer, capture->pdata[2], 0 };

  atk_firehose_source_set_read_batch (source, 1000);
  g_signal_connect (source, "payload", G_CALLBACK (on_payload_seen), &seen);
  atk_firehose_source_start (source);
  g_assert_true (atk_test_wait_until (NULL, peer_connected, peer, scaled_ms (10000)));

  send_later (&a);
  g_assert_true (atk_test_wait_for_count (NULL, &seen.n, 1, scaled_ms (10000)));
  /* The turn that read A is over, so its rest has begun: B comes during it. */
  send_later (&b);
  g_assert_true (atk_test_wait_for_count (NULL, &seen.n, 2, scaled_ms (10000)));
  g_test_message ("B: sent %.1f ms after A was seen, seen %.1f ms after it was sent, received "
                  "%.1f ms before it was sent",
                  (b.sent_us - seen.seen_us[0]) / 1e3, (seen.seen_us[1] - b.sent_us) / 1e3,
                  (b.sent_us - seen.received_us[1]) / 1e3);
  g_assert_cmpint (seen.received_us[1], >=, seen.seen_us[0]);
  g_assert_cmpint (seen.received_us[1], <=, b.sent_us);
  g_assert_cmpint (seen.seen_us[1] - b.sent_us, >=, 500 * 1000); /* it did wait for the rest */

  /* C goes 1.5 s after B was seen: after the rest that began with B's read ended with nothing
   * read (that timeout was attached first, so it runs first even if the loop is late). */
  g_timeout_add_once (1500, send_once, &c);
  g_assert_true (atk_test_wait_for_count (NULL, &seen.n, 3, scaled_ms (10000)));
  g_test_message ("C: seen %.1f ms after it was sent, received %.1f ms after",
                  (seen.seen_us[2] - c.sent_us) / 1e3, (seen.received_us[2] - c.sent_us) / 1e3);
  g_assert_cmpint (seen.received_us[2], >=, c.sent_us);
  g_assert_cmpint (seen.received_us[2], <=, seen.seen_us[2]);

  atk_firehose_source_stop (source);
  g_signal_handlers_disconnect_by_data (source, &seen);
  peer_free (peer);
}

/* What came during a rest and did not fit in the first turn after it (TURN_BYTES, 256 KiB)
 * counts from the rest's start too: 384 KiB sent during a 1 s rest, in four frames. */
static void
test_received_spill (void)
{
  g_autoptr (GPtrArray) capture = atk_test_load_frames ("relay-capture/frames.bin");
  g_autoptr (GPtrArray) none = g_ptr_array_new ();
  Peer *peer = peer_new (none, 0);
  g_autoptr (AtkFirehoseSource) source = atk_firehose_source_new (peer->url, 8 << 20, 0);
  Seen spill = { 0 };
  Send a = { peer, capture->pdata[0], 0 };
  gint64 sent_us;
  guint64 reads_before;

  atk_firehose_source_set_read_batch (source, 1000);
  g_signal_connect (source, "payload", G_CALLBACK (on_payload_seen), &spill);
  atk_firehose_source_start (source);
  g_assert_true (atk_test_wait_until (NULL, peer_connected, peer, scaled_ms (10000)));
  send_later (&a);
  g_assert_true (atk_test_wait_for_count (NULL, &spill.n, 1, scaled_ms (10000)));
  /* the rest has begun */
  reads_before = atk_firehose_source_get_reads (source);
  sent_us = g_get_monotonic_time ();
  for (guint i = 0; i < 4; i++)
    {
      g_autoptr (GBytes) big = g_bytes_new_take (g_malloc0 (96 * 1024), 96 * 1024);

      soup_websocket_connection_send_message (peer->conn, SOUP_WEBSOCKET_DATA_BINARY, big);
    }
  g_assert_true (atk_test_wait_for_count (NULL, &spill.n, 5, scaled_ms (10000)));
  g_test_message ("%" G_GUINT64_FORMAT " reads for the 384 KiB; received %.1f, %.1f, %.1f, %.1f ms "
                  "before they were sent",
                  atk_firehose_source_get_reads (source) - reads_before,
                  (sent_us - spill.received_us[1]) / 1e3, (sent_us - spill.received_us[2]) / 1e3,
                  (sent_us - spill.received_us[3]) / 1e3, (sent_us - spill.received_us[4]) / 1e3);
  g_assert_cmpuint (atk_firehose_source_get_reads (source) - reads_before, >=, 2);
  for (guint i = 1; i < 5; i++)
    g_assert_cmpint (spill.received_us[i], <=, sent_us);

  atk_firehose_source_stop (source);
  g_signal_handlers_disconnect_by_data (source, &spill);
  peer_free (peer);
}

/* ---- the pause rule itself (atk-read-pacer.h), with made-up times -------------------- */

#define MS 1000 /* µs */

static void
test_pacer (void)
{
  AtkReadPacer pacer;
  const gsize KiB = 1024;

  atk_read_pacer_init (&pacer, 0);
  /* the live firehose: the first turn's frames, a few KB: pause */
  g_assert_true (atk_read_pacer_should_rest (&pacer, 20 * KiB, 1 * MS));
  /* after the pause (from 1 ms), what came in it, in turns: 256 KiB ones do not pause (the
   * peer is ahead), the small one that empties the socket does (612 KiB in 42 ms: 15 MB/s) */
  g_assert_false (atk_read_pacer_should_rest (&pacer, 256 * KiB, 42 * MS));
  g_assert_false (atk_read_pacer_should_rest (&pacer, 256 * KiB, 42 * MS));
  g_assert_true (atk_read_pacer_should_rest (&pacer, 100 * KiB, 43 * MS));
  /* a turn that read nothing changes nothing */
  g_assert_false (atk_read_pacer_should_rest (&pacer, 0, 44 * MS));

  /* a backlog flat out: 4 MiB in the 60 ms since the pause began (from 43 ms), then small
   * turns that empty the socket while the peer keeps sending: ~68 MiB/s, no pause */
  for (guint i = 0; i < 16; i++)
    g_assert_false (atk_read_pacer_should_rest (&pacer, 256 * KiB, 100 * MS));
  g_assert_false (atk_read_pacer_should_rest (&pacer, 64 * KiB, 103 * MS));
  g_assert_false (atk_read_pacer_should_rest (&pacer, 64 * KiB, 104 * MS));
  /* the peer slows to the live rate: the average since 43 ms falls below 64 MiB/s, pause */
  g_assert_true (atk_read_pacer_should_rest (&pacer, 20 * KiB, 2000 * MS));

  /* under a MiB is never a backlog, however fast it came (one burst, noise) */
  for (guint i = 0; i < 7; i++)
    g_assert_false (atk_read_pacer_should_rest (&pacer, 128 * KiB, 2001 * MS));
  g_assert_true (atk_read_pacer_should_rest (&pacer, 64 * KiB, 2001 * MS));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/read-batch/paced", test_paced);
  g_test_add_func ("/read-batch/backlog", test_backlog);
  g_test_add_func ("/read-batch/received", test_received);
  g_test_add_func ("/read-batch/received-spill", test_received_spill);
  g_test_add_func ("/read-batch/pacer", test_pacer);

  return g_test_run ();
}
