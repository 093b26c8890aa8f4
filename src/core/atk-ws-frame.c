/* SPDX-License-Identifier: MIT */
#include "atk-ws-frame.h"

#include <string.h>

void
atk_ws_frame_reader_init (AtkWsFrameReader *reader, guint64 max_message_bytes, gint64 now_us)
{
  memset (reader, 0, sizeof *reader);
  reader->max_message_bytes = max_message_bytes;
  reader->message_opcode = ATK_WS_OPCODE_CONTINUATION;
  reader->tokens = ATK_WS_FRAME_CONTROL_BURST;
  reader->tokens_us = now_us;
}

static gboolean
take_control_token (AtkWsFrameReader *reader, gint64 now_us)
{
  if (now_us > reader->tokens_us)
    {
      reader->tokens += (now_us - reader->tokens_us) * (ATK_WS_FRAME_CONTROL_RATE / 1e6);
      reader->tokens = MIN (reader->tokens, (gdouble)ATK_WS_FRAME_CONTROL_BURST);
      reader->tokens_us = now_us;
    }
  if (reader->tokens < 1)
    return FALSE;
  reader->tokens -= 1;
  return TRUE;
}

static AtkWsFrameResult
fail (AtkWsFrameReader *reader, AtkWsFrame *frame, guint16 code, const char *why)
{
  reader->failed = TRUE;
  frame->close_code = code;
  frame->error = why;
  return ATK_WS_FRAME_ERROR;
}

AtkWsFrameResult
atk_ws_frame_reader_next (AtkWsFrameReader *reader, const guint8 *data, gsize len, gint64 now_us,
                          AtkWsFrame *frame, gsize *consumed, gsize *needed)
{
  gsize header_len = 2;
  guint64 payload_len;
  guint opcode;
  gboolean fin;

  memset (frame, 0, sizeof *frame);
  *consumed = 0;
  *needed = 0;
  if (reader->failed)
    return fail (reader, frame, ATK_WS_CLOSE_PROTOCOL_ERROR, "the stream already failed");
  if (len < 2)
    {
      *needed = 2;
      return ATK_WS_FRAME_NEED_MORE;
    }
  fin = (data[0] & 0x80) != 0;
  opcode = data[0] & 0x0f;
  if ((data[0] & 0x70) != 0)
    return fail (reader, frame, ATK_WS_CLOSE_PROTOCOL_ERROR, "reserved bits set (no extension)");
  if ((data[1] & 0x80) != 0)
    return fail (reader, frame, ATK_WS_CLOSE_PROTOCOL_ERROR, "a masked frame from the server");
  payload_len = data[1] & 0x7f;
  if (payload_len == 126)
    header_len = 4;
  else if (payload_len == 127)
    header_len = 10;
  if (len < header_len)
    {
      *needed = header_len;
      return ATK_WS_FRAME_NEED_MORE;
    }
  if (header_len == 4)
    payload_len = (guint64)data[2] << 8 | data[3];
  else if (header_len == 10)
    {
      payload_len = 0;
      for (guint i = 2; i < 10; i++)
        payload_len = payload_len << 8 | data[i];
      if (payload_len >> 63)
        return fail (reader, frame, ATK_WS_CLOSE_PROTOCOL_ERROR,
                     "a 64-bit length with its top bit");
    }

  if (opcode & 0x08)
    {
      if (opcode > ATK_WS_OPCODE_PONG)
        return fail (reader, frame, ATK_WS_CLOSE_PROTOCOL_ERROR, "a reserved control opcode");
      if (!fin || payload_len > 125)
        return fail (reader, frame, ATK_WS_CLOSE_PROTOCOL_ERROR,
                     "a fragmented or long control frame");
    }
  else if (opcode > ATK_WS_OPCODE_BINARY)
    return fail (reader, frame, ATK_WS_CLOSE_PROTOCOL_ERROR, "a reserved data opcode");
  else if (opcode == ATK_WS_OPCODE_CONTINUATION
           && reader->message_opcode == ATK_WS_OPCODE_CONTINUATION)
    return fail (reader, frame, ATK_WS_CLOSE_PROTOCOL_ERROR, "a continuation without a message");
  else if (opcode != ATK_WS_OPCODE_CONTINUATION
           && reader->message_opcode != ATK_WS_OPCODE_CONTINUATION)
    return fail (reader, frame, ATK_WS_CLOSE_PROTOCOL_ERROR,
                 "a new message inside a fragmented one");
  else
    {
      guint64 so_far = opcode == ATK_WS_OPCODE_CONTINUATION ? reader->message_bytes : 0;

      /* from the header alone: the payload need not arrive to be refused */
      if (payload_len > reader->max_message_bytes - MIN (so_far, reader->max_message_bytes))
        return fail (reader, frame, ATK_WS_CLOSE_TOO_BIG, "a message too big");
    }

  if (len - header_len < payload_len)
    {
      *needed = header_len + (gsize)payload_len;
      return ATK_WS_FRAME_NEED_MORE;
    }
  *consumed = header_len + (gsize)payload_len;
  frame->fin = fin;
  frame->payload = data + header_len;
  frame->payload_len = (gsize)payload_len;

  if (opcode & 0x08)
    {
      frame->opcode = opcode;
      if (!take_control_token (reader, now_us))
        {
          reader->skipped_control++;
          return ATK_WS_FRAME_SKIPPED;
        }
      reader->control_frames++;
      reader->pings += opcode == ATK_WS_OPCODE_PING;
      return ATK_WS_FRAME_CONTROL;
    }
  frame->first = opcode != ATK_WS_OPCODE_CONTINUATION;
  if (frame->first)
    {
      reader->message_opcode = opcode;
      reader->message_bytes = 0;
    }
  frame->opcode = reader->message_opcode;
  reader->message_bytes += payload_len;
  if (fin)
    {
      reader->message_opcode = ATK_WS_OPCODE_CONTINUATION;
      reader->message_bytes = 0;
    }
  return ATK_WS_FRAME_DATA;
}

gsize
atk_ws_frame_write_header (guint8 *header, AtkWsOpcode opcode, guint64 len, const guint8 key[4])
{
  gsize n = 2;

  header[0] = 0x80 | (opcode & 0x0f);
  if (len < 126)
    header[1] = 0x80 | (guint8)len;
  else if (len <= G_MAXUINT16)
    {
      header[1] = 0x80 | 126;
      header[2] = (guint8)(len >> 8);
      header[3] = (guint8)len;
      n = 4;
    }
  else
    {
      header[1] = 0x80 | 127;
      for (guint i = 0; i < 8; i++)
        header[2 + i] = (guint8)(len >> (56 - 8 * i));
      n = 10;
    }
  memcpy (header + n, key, 4);
  return n + 4;
}

void
atk_ws_frame_mask (guint8 *data, gsize len, const guint8 key[4])
{
  for (gsize i = 0; i < len; i++)
    data[i] ^= key[i & 3];
}
