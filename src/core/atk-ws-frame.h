/* at-kafka: the receiving side of RFC 6455 framing, for a client: bytes in, frames out. Reads
 * one frame at a time from a buffer, checks it (no masking from a server, no reserved bits or
 * opcodes, control frames whole and short), follows fragmented messages (continuations in
 * order, the whole message within max_message_bytes) and meters control frames with a token
 * bucket (those beyond it are skipped, so that a ping flood costs no pongs). Pure: no I/O, no
 * allocation; payloads are pointers into the caller's buffer.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Control frames: a burst of this many, then this many a second. */
#define ATK_WS_FRAME_CONTROL_BURST 100
#define ATK_WS_FRAME_CONTROL_RATE 20

#define ATK_WS_FRAME_HEADER_MAX 14

typedef enum
{
  ATK_WS_OPCODE_CONTINUATION = 0x0,
  ATK_WS_OPCODE_TEXT = 0x1,
  ATK_WS_OPCODE_BINARY = 0x2,
  ATK_WS_OPCODE_CLOSE = 0x8,
  ATK_WS_OPCODE_PING = 0x9,
  ATK_WS_OPCODE_PONG = 0xa,
} AtkWsOpcode;

/* Close codes (RFC 6455 §7.4.1) */
#define ATK_WS_CLOSE_NORMAL 1000
#define ATK_WS_CLOSE_GOING_AWAY 1001
#define ATK_WS_CLOSE_PROTOCOL_ERROR 1002
#define ATK_WS_CLOSE_NO_STATUS 1005
#define ATK_WS_CLOSE_BAD_DATA 1007
#define ATK_WS_CLOSE_POLICY_VIOLATION 1008
#define ATK_WS_CLOSE_TOO_BIG 1009

typedef enum
{
  ATK_WS_FRAME_NEED_MORE, /* no whole frame yet: *needed says how many bytes it takes */
  ATK_WS_FRAME_DATA,      /* a data frame: a whole message (fin, not a continuation) or a part */
  ATK_WS_FRAME_CONTROL,   /* a close, ping or pong frame */
  ATK_WS_FRAME_SKIPPED,   /* a control frame beyond the bucket, consumed and ignored */
  ATK_WS_FRAME_ERROR,     /* the stream breaks the protocol or a bound: close with close_code */
} AtkWsFrameResult;

typedef struct
{
  AtkWsOpcode opcode;    /* of the frame; for DATA, the message's (text or binary) */
  gboolean fin;          /* the last frame of its message */
  gboolean first;        /* DATA: the first frame of its message */
  const guint8 *payload; /* into the buffer given to atk_ws_frame_reader_next() */
  gsize payload_len;
  guint16 close_code; /* ERROR: the close code to send */
  const char *error;  /* ERROR: why, for logs (static) */
} AtkWsFrame;

typedef struct
{
  guint64 max_message_bytes;
  AtkWsOpcode message_opcode; /* of the fragmented message in progress, or CONTINUATION */
  guint64 message_bytes;      /* of that message so far */
  gdouble tokens;
  gint64 tokens_us;
  guint64 control_frames; /* passed on */
  guint64 pings;          /* passed on */
  guint64 skipped_control;
  gboolean failed; /* an ERROR sticks */
} AtkWsFrameReader;

void atk_ws_frame_reader_init (AtkWsFrameReader *reader, guint64 max_message_bytes, gint64 now_us);

/* Reads the frame at the start of data[0..len). On DATA, CONTROL and SKIPPED, *consumed is the
 * frame's length (header and payload). On NEED_MORE, *needed is the number of bytes the frame
 * takes in all, as far as known (at least len + 1). A data frame whose message would outgrow
 * max_message_bytes is refused from its header alone (close code 1009). */
AtkWsFrameResult atk_ws_frame_reader_next (AtkWsFrameReader *reader, const guint8 *data, gsize len,
                                           gint64 now_us, AtkWsFrame *frame, gsize *consumed,
                                           gsize *needed);

/* Writes a masked client frame header for a payload of len bytes into header (at most
 * ATK_WS_FRAME_HEADER_MAX bytes) and returns its length; the payload must then be masked
 * with atk_ws_frame_mask() and the same key. */
gsize atk_ws_frame_write_header (guint8 *header, AtkWsOpcode opcode, guint64 len,
                                 const guint8 key[4]);
void atk_ws_frame_mask (guint8 *data, gsize len, const guint8 key[4]);

G_END_DECLS
