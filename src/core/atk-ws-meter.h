/* at-kafka: a meter on the bytes a WebSocket server sends, read as they arrive and before the
 * WebSocket library assembles them. It follows the frame headers (RFC 6455 §5.2) and says when
 * a peer breaks one of our bounds:
 *  - the message being assembled from its fragments outgrows max_message_bytes (libsoup 3.2
 *    checks each frame only: 500 MiB in 64 KiB continuation frames would pass);
 *  - control frames (pings above all) come faster than a token bucket allows: each costs a
 *    pong. Those beyond the bucket are cut out of the stream (the library never sees them,
 *    so it neither answers nor queues a pong for them).
 * Pure: bytes and a clock value in, the bytes to keep and a verdict out. It never looks at
 * payloads.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Control frames: a burst of this many, then this many a second. */
#define ATK_WS_METER_CONTROL_BURST 100
#define ATK_WS_METER_CONTROL_RATE 20

typedef enum
{
  ATK_WS_METER_OK,
  ATK_WS_METER_TOO_BIG, /* a message beyond max_message_bytes */
} AtkWsMeterVerdict;

typedef struct
{
  guint64 max_message_bytes;
  /* the frame header being read */
  guint8 header[14];
  guint header_len;
  guint64 payload_left;  /* of the current frame, after its header */
  gboolean dropping;     /* the current frame is cut out of the stream */
  guint64 message_bytes; /* of the data message being assembled */
  /* control frame bucket */
  gdouble tokens;
  gint64 tokens_us;
  guint64 control_frames; /* passed on */
  guint64 pings;          /* passed on */
  guint64 dropped_control;
  AtkWsMeterVerdict verdict;
} AtkWsMeter;

void atk_ws_meter_init (AtkWsMeter *meter, guint64 max_message_bytes, gint64 now_us);

/* Reads *len more bytes of the stream, in place: the bytes of control frames beyond the bucket
 * are removed (what is kept moves to the front; *len becomes its length). Once a verdict
 * other than OK is given it sticks. */
AtkWsMeterVerdict atk_ws_meter_filter (AtkWsMeter *meter, guint8 *data, gsize *len, gint64 now_us);

G_END_DECLS
