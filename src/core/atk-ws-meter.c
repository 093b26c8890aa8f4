/* SPDX-License-Identifier: MIT */
#include "atk-ws-meter.h"

#include <string.h>

void
atk_ws_meter_init (AtkWsMeter *meter, guint64 max_message_bytes, gint64 now_us)
{
  memset (meter, 0, sizeof *meter);
  meter->max_message_bytes = max_message_bytes;
  meter->tokens = ATK_WS_METER_CONTROL_BURST;
  meter->tokens_us = now_us;
}

/* Bytes of the header once its second byte is known: 2, plus 2 or 8 of extended length, plus
 * 4 of mask (a server must not mask; libsoup closes then, but the count stays right). */
static guint
header_size (const guint8 *header)
{
  guint mask = (header[1] & 0x80) ? 4 : 0;

  switch (header[1] & 0x7f)
    {
    case 126:
      return 4 + mask;
    case 127:
      return 10 + mask;
    default:
      return 2 + mask;
    }
}

static guint64
payload_length (const guint8 *header)
{
  guint64 len = header[1] & 0x7f;

  if (len == 126)
    return (guint64)header[2] << 8 | header[3];
  if (len == 127)
    {
      len = 0;
      for (guint i = 2; i < 10; i++)
        len = len << 8 | header[i];
    }
  return len;
}

static gboolean
take_control_token (AtkWsMeter *meter, gint64 now_us)
{
  if (now_us > meter->tokens_us)
    {
      meter->tokens += (now_us - meter->tokens_us) * (ATK_WS_METER_CONTROL_RATE / 1e6);
      meter->tokens = MIN (meter->tokens, (gdouble)ATK_WS_METER_CONTROL_BURST);
      meter->tokens_us = now_us;
    }
  if (meter->tokens < 1)
    return FALSE;
  meter->tokens -= 1;
  return TRUE;
}

/* A whole header: account for the frame it starts. */
static AtkWsMeterVerdict
on_header (AtkWsMeter *meter)
{
  gboolean fin = (meter->header[0] & 0x80) != 0;
  guint opcode = meter->header[0] & 0x0f;
  guint64 len = payload_length (meter->header);

  meter->payload_left = len;
  if (opcode & 0x08)
    {
      if (!meter->dropping)
        {
          meter->control_frames++;
          meter->pings += opcode == 0x9;
        }
      return ATK_WS_METER_OK;
    }
  /* data or continuation: libsoup rejects out-of-order fragments itself */
  if (opcode != 0)
    meter->message_bytes = 0;
  if (len > meter->max_message_bytes - MIN (meter->message_bytes, meter->max_message_bytes))
    return ATK_WS_METER_TOO_BIG;
  meter->message_bytes += len;
  if (fin)
    meter->message_bytes = 0;
  return ATK_WS_METER_OK;
}

AtkWsMeterVerdict
atk_ws_meter_filter (AtkWsMeter *meter, guint8 *data, gsize *len, gint64 now_us)
{
  gsize in = 0;
  gsize out = 0;
  gsize n = *len;

  while (in < n && meter->verdict == ATK_WS_METER_OK)
    {
      if (meter->payload_left > 0)
        {
          gsize skip = (gsize)MIN ((guint64)(n - in), meter->payload_left);

          if (!meter->dropping)
            memmove (data + out, data + in, skip);
          out += meter->dropping ? 0 : skip;
          in += skip;
          meter->payload_left -= skip;
          continue;
        }
      /* a frame's first byte decides whether all of it is cut */
      if (meter->header_len == 0)
        meter->dropping = (data[in] & 0x08) != 0 && !take_control_token (meter, now_us);
      if (meter->header_len == 0 && meter->dropping)
        meter->dropped_control++;
      meter->header[meter->header_len++] = data[in];
      if (!meter->dropping)
        data[out++] = data[in];
      in++;
      if (meter->header_len < 2 || meter->header_len < header_size (meter->header))
        continue;
      meter->header_len = 0;
      meter->verdict = on_header (meter);
    }
  *len = out;
  return meter->verdict;
}
