/* libFuzzer target: the WebSocket frame reader of our client (AtkWsFrameReader), which reads
 * every byte a relay or Tap server sends. One input = the first byte (the message bound and
 * how the rest is cut into reads) and the bytes of one connection. The bytes are fed as
 * AtkWsConn does (a buffer that grows to what NEED_MORE asks); checks: every frame lies within
 * the buffer, a message never outgrows the bound (also across fragments), NEED_MORE asks for
 * more than there is, an error sticks, and the chunked feed gives the same frames as a feed of
 * everything at once.
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "atk-ws-frame.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

typedef struct
{
  guint64 digest; /* of the frames seen, in order */
  guint frames;
  gboolean failed;
} Outcome;

static void
mix (Outcome *out, guint64 value)
{
  out->digest = (out->digest ^ value) * 1099511628211u;
}

/* Feeds data[0..size) in reads of the lengths `seed` draws (all at once when seed is 0). */
static void
run (const guint8 *data, gsize size, guint64 max, guint32 seed, Outcome *out)
{
  AtkWsFrameReader reader;
  guint8 *buf = g_malloc (size + 1);
  gsize have = 0, pos = 0, fed = 0;
  guint64 message = 0;
  gboolean in_message = FALSE;

  memset (out, 0, sizeof *out);
  atk_ws_frame_reader_init (&reader, max, 0);
  while (!out->failed)
    {
      AtkWsFrame frame;
      gsize consumed, needed;
      AtkWsFrameResult r = atk_ws_frame_reader_next (&reader, buf + pos, have - pos, 0, &frame,
                                                     &consumed, &needed);

      if (consumed > have - pos)
        abort ();
      if (r == ATK_WS_FRAME_NEED_MORE)
        {
          gsize n;

          if (consumed != 0 || needed <= have - pos)
            abort ();
          if (fed == size)
            break;
          seed = seed * 1103515245u + 12345u;
          n = seed == 0 ? size - fed : MIN (size - fed, 1 + (seed >> 16) % 301);
          memcpy (buf + have, data + fed, n);
          have += n;
          fed += n;
          continue;
        }
      if (r == ATK_WS_FRAME_ERROR)
        {
          if (frame.close_code < 1000 || frame.error == NULL)
            abort ();
          if (atk_ws_frame_reader_next (&reader, buf, have, 0, &frame, &consumed, &needed)
              != ATK_WS_FRAME_ERROR)
            abort (); /* it sticks */
          out->failed = TRUE;
          mix (out, 0xe0 + frame.close_code);
          break;
        }
      if (consumed == 0 || frame.payload < buf + pos
          || frame.payload + frame.payload_len > buf + pos + consumed)
        abort ();
      if (r == ATK_WS_FRAME_DATA)
        {
          if (frame.opcode != ATK_WS_OPCODE_TEXT && frame.opcode != ATK_WS_OPCODE_BINARY)
            abort ();
          if (frame.first == in_message)
            abort (); /* a continuation without a start, or a start inside a message */
          message = (frame.first ? 0 : message) + frame.payload_len;
          if (message > max)
            abort ();
          in_message = !frame.fin;
        }
      else if (frame.payload_len > 125 || frame.opcode < ATK_WS_OPCODE_CLOSE)
        abort ();
      mix (out, r * 16 + frame.opcode);
      mix (out, frame.payload_len);
      out->frames++;
      pos += consumed;
    }
  g_free (buf);
  /* the control bucket: time stands still here, so no more than its burst passed */
  if (reader.control_frames > ATK_WS_FRAME_CONTROL_BURST)
    abort ();
}

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  Outcome whole, chunked;
  guint64 max;
  guint8 key[4] = { 1, 2, 3, 4 };
  guint8 header[ATK_WS_FRAME_HEADER_MAX];

  if (size < 1)
    return 0;
  max = (guint64[]){ 0, 125, 1000, 65536, G_MAXUINT32 }[data[0] % 5];
  run (data + 1, size - 1, max, 0, &whole);
  run (data + 1, size - 1, max, data[0] | 1u, &chunked);
  if (whole.digest != chunked.digest || whole.frames != chunked.frames
      || whole.failed != chunked.failed)
    abort ();
  /* a header we write reads back (unmasked) with the same length */
  if (size >= 3)
    {
      guint64 len = (guint64)data[1] << (data[2] % 40);
      gsize n = atk_ws_frame_write_header (header, ATK_WS_OPCODE_TEXT, len, key);

      if (n > ATK_WS_FRAME_HEADER_MAX || (header[1] & 0x80) == 0
          || n
                 != (len < 126            ? 6u
                     : len <= G_MAXUINT16 ? 8u
                                          : 14u))
        abort ();
    }
  return 0;
}
