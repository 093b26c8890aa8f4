/* at-kafka-replay: a local relay for tests, demos and benchmarks.
 *
 * Serves a frame file ([u32 LE length][frame] records) on
 * ws://127.0.0.1:PORT/xrpc/com.atproto.sync.subscribeRepos, honouring `cursor` the way a
 * relay does (OutdatedCursor #info, FutureCursor error), optionally looping the file with
 * rewritten, ever-increasing seqs, pacing to a rate, or cutting connections.
 *
 * Sending respects backpressure: libsoup 3.2 has no "buffered amount", so frames are only
 * queued while the socket is writable (the kernel has room); otherwise we wait for it. The
 * memory libsoup holds per client stays around one socket buffer, whatever --loop says.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-replay"

#include <glib-unix.h>
#include <libsoup/soup.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>

#include "atk-cbor.h"
#include "atk-error.h"
#include "atk-frame.h"

#define SUBSCRIBE_PATH "/xrpc/com.atproto.sync.subscribeRepos"
#define BATCH_FRAMES 64 /* frames per main-loop turn, so pings and closes get a turn too */

typedef struct
{
  const guint8 *data;
  gsize len;
  gboolean has_seq;
  gint64 seq;
  gsize seq_off; /* byte range of the seq value inside data */
  gsize seq_len;
} ReplayFrame;

typedef struct
{
  /* options */
  int port;
  double rate;
  int loops; /* 0: forever */
  int cut_after;
  int exit_after_clients;
  gboolean close_at_end;
  gboolean live_tip;

  GMappedFile *file;
  GArray *frames; /* ReplayFrame */
  gboolean has_seqs;
  gint64 min_seq;
  gint64 max_seq;
  gint64 first_seq; /* of the first frame that has one */

  SoupServer *server;
  GMainLoop *loop;
  guint clients_started;
  guint clients_finished;
  guint64 frames_sent;
  guint64 bytes_sent;
  gint64 start_us;
  guint64 tip; /* one past the newest frame sent to any client */
} Replay;

typedef struct
{
  Replay *replay;
  guint id;
  SoupWebsocketConnection *conn;
  guint64 next; /* index in the virtual (looped) stream */
  guint64 end;  /* one past the last index; G_MAXUINT64 when looping forever */
  guint64 sent;
  gint64 paced_since_us;
  guint64 paced_sent;
  guint pump_id;
  GSource *writable_source;
  gboolean finished_sending;
} Client;

static void pump_later (Client *client);

/* ---- the frame file ---- */

/* Finds the body's "seq" (an unsigned integer) in a message frame {op:1}. Frames without
 * one (#info, error frames, anything unparsable) are passed through untouched. */
static void
locate_seq (ReplayFrame *frame)
{
  AtkCborReader r;
  guint64 n_pairs, i;
  gint64 op = 0;
  AtkStr key;

  atk_cbor_reader_init (&r, frame->data, frame->len);
  if (!atk_cbor_read_map_len (&r, &n_pairs, NULL))
    return;
  for (i = 0; i < n_pairs; i++)
    {
      if (!atk_cbor_read_text (&r, &key, NULL))
        return;
      if (atk_str_equal (key, "op") ? !atk_cbor_read_int (&r, &op, NULL)
                                    : !atk_cbor_skip (&r, NULL))
        return;
    }
  if (op != 1 || !atk_cbor_read_map_len (&r, &n_pairs, NULL))
    return;
  for (i = 0; i < n_pairs; i++)
    {
      AtkCborMajor major;
      const guint8 *value;

      if (!atk_cbor_read_text (&r, &key, NULL))
        return;
      value = r.pos;
      if (atk_str_equal (key, "seq") && atk_cbor_peek_major (&r, &major, NULL)
          && major == ATK_CBOR_UINT && atk_cbor_read_int (&r, &frame->seq, NULL))
        {
          frame->has_seq = TRUE;
          frame->seq_off = (gsize)(value - frame->data);
          frame->seq_len = (gsize)(r.pos - value);
          return;
        }
      if (!atk_cbor_skip (&r, NULL))
        return;
    }
}

static gboolean
replay_load (Replay *replay, const char *path, GError **error)
{
  AtkFrameFileReader reader;
  ReplayFrame frame = { 0 };

  replay->file = g_mapped_file_new (path, FALSE, error);
  if (replay->file == NULL)
    return FALSE;
  atk_frame_file_reader_init (&reader, (const guint8 *)g_mapped_file_get_contents (replay->file),
                              g_mapped_file_get_length (replay->file));
  replay->frames = g_array_new (FALSE, TRUE, sizeof (ReplayFrame));
  while (atk_frame_file_reader_next (&reader, &frame.data, &frame.len, error))
    {
      frame.has_seq = FALSE;
      locate_seq (&frame);
      if (frame.has_seq)
        {
          if (!replay->has_seqs)
            replay->first_seq = replay->min_seq = replay->max_seq = frame.seq;
          replay->min_seq = MIN (replay->min_seq, frame.seq);
          replay->max_seq = MAX (replay->max_seq, frame.seq);
          replay->has_seqs = TRUE;
        }
      g_array_append_val (replay->frames, frame);
    }
  if (error != NULL && *error != NULL)
    {
      g_prefix_error (error, "%s: ", path);
      return FALSE;
    }
  return TRUE;
}

/* ---- the virtual stream: the file repeated, seqs shifted by one span per repetition ---- */

static ReplayFrame *
frame_at (Replay *replay, guint64 index, gint64 *seq)
{
  guint64 n = replay->frames->len;
  ReplayFrame *frame = &g_array_index (replay->frames, ReplayFrame, index % n);
  gint64 span = replay->max_seq - replay->min_seq + 1;

  if (seq != NULL && frame->has_seq)
    *seq = frame->seq + (gint64)(index / n) * span;
  return frame;
}

static void
cbor_put_head (GByteArray *out, guint8 major, guint64 value)
{
  guint8 buf[9];
  guint len, i;

  if (value < 24)
    {
      buf[0] = (guint8)(major << 5 | value);
      len = 1;
    }
  else
    {
      guint width = value <= 0xff ? 1 : value <= 0xffff ? 2 : value <= 0xffffffffu ? 4 : 8;
      buf[0] = (guint8)(major << 5 | (width == 1 ? 24 : width == 2 ? 25 : width == 4 ? 26 : 27));
      for (i = 0; i < width; i++)
        buf[1 + i] = (guint8)(value >> (8 * (width - 1 - i)));
      len = 1 + width;
    }
  g_byte_array_append (out, buf, len);
}

static void
cbor_put_text (GByteArray *out, const char *text)
{
  cbor_put_head (out, 3, strlen (text));
  g_byte_array_append (out, (const guint8 *)text, (guint)strlen (text));
}

/* The frame as it goes out: unchanged, or with the seq value replaced. Everything else
 * is copied byte for byte; the map keys do not change, so the canonical order holds. */
static GBytes *
render_frame (Replay *replay, guint64 index)
{
  gint64 seq = 0;
  ReplayFrame *frame = frame_at (replay, index, &seq);
  GByteArray *out;

  if (!frame->has_seq || seq == frame->seq)
    return g_bytes_new_static (frame->data, frame->len);
  out = g_byte_array_sized_new ((guint)frame->len + 8);
  g_byte_array_append (out, frame->data, (guint)frame->seq_off);
  cbor_put_head (out, 0, (guint64)seq);
  g_byte_array_append (out, frame->data + frame->seq_off + frame->seq_len,
                       (guint)(frame->len - frame->seq_off - frame->seq_len));
  return g_byte_array_free_to_bytes (out);
}

static GBytes *
make_info_frame (const char *name, const char *message)
{
  GByteArray *out = g_byte_array_new ();

  cbor_put_head (out, 5, 2); /* {t: "#info", op: 1}: canonical order, shorter key first */
  cbor_put_text (out, "t");
  cbor_put_text (out, "#info");
  cbor_put_text (out, "op");
  cbor_put_head (out, 0, 1);
  cbor_put_head (out, 5, 2);
  cbor_put_text (out, "name");
  cbor_put_text (out, name);
  cbor_put_text (out, "message");
  cbor_put_text (out, message);
  return g_byte_array_free_to_bytes (out);
}

static GBytes *
make_error_frame (const char *name, const char *message)
{
  GByteArray *out = g_byte_array_new ();

  cbor_put_head (out, 5, 1); /* {op: -1} */
  cbor_put_text (out, "op");
  cbor_put_head (out, 1, 0);
  cbor_put_head (out, 5, 2);
  cbor_put_text (out, "error");
  cbor_put_text (out, name);
  cbor_put_text (out, "message");
  cbor_put_text (out, message);
  return g_byte_array_free_to_bytes (out);
}

/* ---- one client ---- */

static void
client_send (Client *client, GBytes *frame)
{
  gsize len = g_bytes_get_size (frame);

  soup_websocket_connection_send_message (client->conn, SOUP_WEBSOCKET_DATA_BINARY, frame);
  client->replay->frames_sent++;
  client->replay->bytes_sent += len;
}

static void
client_close (Client *client, gushort code, const char *reason)
{
  client->finished_sending = TRUE;
  g_message ("client %u: closing after %" G_GUINT64_FORMAT " frames (%s)", client->id, client->sent,
             reason);
  /* Queued behind the data frames already given to libsoup, so all of them arrive. */
  soup_websocket_connection_close (client->conn, code, reason);
}

static gboolean
on_writable (GObject *stream, gpointer user_data)
{
  Client *client = user_data;

  g_clear_pointer (&client->writable_source, g_source_unref);
  pump_later (client);
  return G_SOURCE_REMOVE;
}

static gboolean
wait_writable (Client *client)
{
  GOutputStream *out
      = g_io_stream_get_output_stream (soup_websocket_connection_get_io_stream (client->conn));
  GPollableOutputStream *pollable = G_POLLABLE_OUTPUT_STREAM (out);

  if (g_pollable_output_stream_is_writable (pollable))
    return FALSE;
  client->writable_source = g_pollable_output_stream_create_source (pollable, NULL);
  g_source_set_callback (client->writable_source, G_SOURCE_FUNC (on_writable), client, NULL);
  g_source_attach (client->writable_source, NULL);
  return TRUE;
}

static gboolean on_pump (gpointer user_data);

/* With --rate: TRUE (and a timer set) if the next frame is not due yet. */
static gboolean
wait_rate (Client *client)
{
  double due_s;
  gint64 now = g_get_monotonic_time ();

  if (client->replay->rate <= 0)
    return FALSE;
  due_s = (double)client->paced_sent / client->replay->rate;
  if ((double)(now - client->paced_since_us) / G_USEC_PER_SEC >= due_s)
    return FALSE;
  client->pump_id = g_timeout_add (
      MAX (1u, (guint)(due_s * 1000 - (double)(now - client->paced_since_us) / 1000)), on_pump,
      client);
  return TRUE;
}

static void
pump (Client *client)
{
  Replay *replay = client->replay;
  guint i;

  for (i = 0; i < BATCH_FRAMES; i++)
    {
      g_autoptr (GBytes) frame = NULL;

      if (client->finished_sending
          || soup_websocket_connection_get_state (client->conn) != SOUP_WEBSOCKET_STATE_OPEN)
        return;
      if (replay->cut_after > 0 && client->sent >= (guint64)replay->cut_after)
        {
          client_close (client, SOUP_WEBSOCKET_CLOSE_NORMAL, "cut-after");
          return;
        }
      if (client->next >= client->end)
        {
          if (replay->close_at_end)
            client_close (client, SOUP_WEBSOCKET_CLOSE_NORMAL, "end of file");
          else
            client->finished_sending = TRUE; /* like a live relay: stay open, quiet */
          return;
        }
      if (wait_rate (client) || wait_writable (client))
        return;
      frame = render_frame (replay, client->next);
      client_send (client, frame);
      client->next++;
      replay->tip = MAX (replay->tip, client->next);
      client->sent++;
      client->paced_sent++;
    }
  pump_later (client);
}

static gboolean
on_pump (gpointer user_data)
{
  Client *client = user_data;

  client->pump_id = 0;
  pump (client);
  return G_SOURCE_REMOVE;
}

static void
pump_later (Client *client)
{
  if (client->pump_id == 0 && client->writable_source == NULL)
    client->pump_id = g_idle_add (on_pump, client);
}

static void
client_free (Client *client)
{
  g_clear_handle_id (&client->pump_id, g_source_remove);
  if (client->writable_source != NULL)
    g_source_destroy (client->writable_source);
  g_clear_pointer (&client->writable_source, g_source_unref);
  g_signal_handlers_disconnect_by_data (client->conn, client);
  g_object_unref (client->conn);
  g_free (client);
}

static void
on_client_closed (SoupWebsocketConnection *conn, gpointer user_data)
{
  Client *client = user_data;
  Replay *replay = client->replay;

  g_message ("client %u: finished, %" G_GUINT64_FORMAT " frames sent", client->id, client->sent);
  client_free (client);
  replay->clients_finished++;
  if (replay->exit_after_clients > 0
      && replay->clients_finished >= (guint)replay->exit_after_clients)
    g_main_loop_quit (replay->loop);
}

/* Where a client with this cursor starts; FALSE (and the frames to send) if it gets an
 * error instead. */
static gboolean
client_position (Client *client, const char *cursor_text)
{
  Replay *replay = client->replay;
  guint64 n = replay->frames->len;
  gint64 cursor, last_seq = 0;
  guint64 index;
  g_autoptr (GBytes) frame = NULL;

  client->end = replay->loops == 0 ? G_MAXUINT64 : n * (guint64)replay->loops;
  client->next = cursor_text == NULL && replay->live_tip ? MIN (replay->tip, client->end) : 0;
  if (cursor_text == NULL || !replay->has_seqs || n == 0)
    return TRUE;
  if (!g_ascii_string_to_signed (cursor_text, 10, 0, G_MAXINT64, &cursor, NULL))
    {
      frame = make_error_frame ("InvalidRequest", "cursor must be a non-negative integer");
      client_send (client, frame);
      return FALSE;
    }
  if (cursor < replay->first_seq - 1)
    {
      frame = make_info_frame ("OutdatedCursor", "Requested cursor exceeded limit. Possibly "
                                                 "missing events");
      client_send (client, frame);
      return TRUE;
    }
  if (replay->loops != 0)
    for (index = client->end; index-- > 0;)
      if (frame_at (replay, index, NULL)->has_seq)
        {
          frame_at (replay, index, &last_seq);
          break;
        }
  if (replay->loops != 0 && cursor > last_seq)
    {
      frame = make_error_frame ("FutureCursor", "Cursor in the future.");
      client_send (client, frame);
      return FALSE;
    }
  /* Skip whole repetitions, then scan: seqs in a capture need not be contiguous. */
  index = (guint64)((cursor - replay->min_seq + 1) / (replay->max_seq - replay->min_seq + 1));
  index = index > 0 ? (index - 1) * n : 0;
  for (; index < client->end; index++)
    {
      gint64 seq = 0;
      if (frame_at (replay, index, &seq)->has_seq && seq > cursor)
        break;
    }
  client->next = index;
  return TRUE;
}

static void
on_websocket (SoupServer *server, SoupServerMessage *msg, const char *path,
              SoupWebsocketConnection *conn, gpointer user_data)
{
  Replay *replay = user_data;
  Client *client = g_new0 (Client, 1);
  const char *query = g_uri_get_query (soup_server_message_get_uri (msg));
  g_autoptr (GHashTable) params = NULL;
  const char *cursor = NULL;

  if (query != NULL)
    params = g_uri_parse_params (query, -1, "&", G_URI_PARAMS_NONE, NULL);
  if (params != NULL)
    cursor = g_hash_table_lookup (params, "cursor");

  client->replay = replay;
  client->id = ++replay->clients_started;
  client->conn = g_object_ref (conn);
  client->paced_since_us = g_get_monotonic_time ();
  g_signal_connect (conn, "closed", G_CALLBACK (on_client_closed), client);
  g_message (
      "client %u: connected from %s, cursor %s, user agent %s", client->id,
      soup_server_message_get_remote_host (msg), cursor ? cursor : "(none)",
      soup_message_headers_get_one (soup_server_message_get_request_headers (msg), "User-Agent"));

  if (!client_position (client, cursor))
    {
      client_close (client, SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION, "bad cursor");
      return;
    }
  pump_later (client);
}

/* ---- main ---- */

static gboolean
on_quit_signal (gpointer user_data)
{
  g_main_loop_quit (user_data);
  return G_SOURCE_REMOVE;
}

static gboolean
replay_listen (Replay *replay, GError **error)
{
  GSList *uris;
  guint port;

  replay->server = soup_server_new ("server-header", "at-kafka-replay", NULL);
  /* Frames go out as they are, like a relay's: compressing them would cost both ends CPU. */
  soup_server_remove_websocket_extension (replay->server, SOUP_TYPE_WEBSOCKET_EXTENSION_DEFLATE);
  soup_server_add_websocket_handler (replay->server, SUBSCRIBE_PATH, NULL, NULL, on_websocket,
                                     replay, NULL);
  if (!soup_server_listen_local (replay->server, (guint)replay->port, SOUP_SERVER_LISTEN_IPV4_ONLY,
                                 error))
    return FALSE;
  uris = soup_server_get_uris (replay->server);
  port = (guint)g_uri_get_port (uris->data);
  g_slist_free_full (uris, (GDestroyNotify)g_uri_unref);
  printf ("listening on ws://127.0.0.1:%u\n", port);
  fflush (stdout);
  return TRUE;
}

static void
replay_summary (Replay *replay)
{
  double elapsed = (double)(g_get_monotonic_time () - replay->start_us) / G_USEC_PER_SEC;

  fprintf (stderr,
           "at-kafka-replay: clients=%u frames=%" G_GUINT64_FORMAT " bytes=%" G_GUINT64_FORMAT
           " elapsed=%.3fs rate=%.0f frames/s\n",
           replay->clients_started, replay->frames_sent, replay->bytes_sent, elapsed,
           elapsed > 0 ? (double)replay->frames_sent / elapsed : 0.0);
}

static gboolean
parse_options (Replay *replay, int *argc, char ***argv, char **path, GError **error)
{
  const GOptionEntry entries[]
      = { { "port", 'p', 0, G_OPTION_ARG_INT, &replay->port,
            "Port on 127.0.0.1 (0: pick a free one)", "PORT" },
          { "rate", 'r', 0, G_OPTION_ARG_DOUBLE, &replay->rate,
            "Frames per second per client (default: flat out)", "N" },
          { "loop", 'l', 0, G_OPTION_ARG_INT, &replay->loops,
            "Play the file N times with increasing seqs (0: forever; default 1)", "N" },
          { "cut-after", 0, 0, G_OPTION_ARG_INT, &replay->cut_after,
            "Close each connection after sending N frames on it", "N" },
          { "exit-after-clients", 0, 0, G_OPTION_ARG_INT, &replay->exit_after_clients,
            "Exit once N connections have finished", "N" },
          { "close-at-end", 0, 0, G_OPTION_ARG_NONE, &replay->close_at_end,
            "Close the connection after the last frame (default: stay open like a live relay)",
            NULL },
          { "live-tip", 0, 0, G_OPTION_ARG_NONE, &replay->live_tip,
            "A client without a cursor starts after the newest frame sent to any client so far, "
            "as at a live relay's tip (default: at the first frame)",
            NULL },
          { NULL } };
  g_autoptr (GOptionContext) context
      = g_option_context_new ("FILE - serve a frame file as a relay");

  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_set_description (
      context, "A cursor older than the first frame's seq - 1 gets an #info OutdatedCursor frame,\n"
               "then the whole file; one beyond the last seq (unless looping forever) gets a\n"
               "FutureCursor error frame and the connection closes.\n");
  if (!g_option_context_parse (context, argc, argv, error))
    return FALSE;
  if (*argc != 2)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "expected one FILE argument");
      return FALSE;
    }
  if (replay->port < 0 || replay->port > 65535 || replay->loops < 0 || replay->cut_after < 0
      || replay->exit_after_clients < 0 || replay->rate < 0)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "negative or out-of-range value");
      return FALSE;
    }
  *path = g_strdup ((*argv)[1]);
  return TRUE;
}

int
main (int argc, char **argv)
{
  Replay replay = { .loops = 1 };
  g_autoptr (GError) error = NULL;
  g_autofree char *path = NULL;

  setlocale (LC_ALL, "");
  if (!parse_options (&replay, &argc, &argv, &path, &error) || !replay_load (&replay, path, &error)
      || !replay_listen (&replay, &error))
    {
      fprintf (stderr, "at-kafka-replay: %s\n", error->message);
      return 2;
    }
  g_message ("serving %u frames from %s (seqs %" G_GINT64_FORMAT "..%" G_GINT64_FORMAT ")",
             replay.frames->len, path, replay.min_seq, replay.max_seq);

  replay.loop = g_main_loop_new (NULL, FALSE);
  replay.start_us = g_get_monotonic_time ();
  g_unix_signal_add (SIGINT, on_quit_signal, replay.loop);
  g_unix_signal_add (SIGTERM, on_quit_signal, replay.loop);
  g_main_loop_run (replay.loop);

  replay_summary (&replay);
  soup_server_disconnect (replay.server);
  g_object_unref (replay.server);
  g_main_loop_unref (replay.loop);
  g_array_unref (replay.frames);
  g_mapped_file_unref (replay.file);
  return 0;
}
