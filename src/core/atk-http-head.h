/* at-kafka: a guard for the head of an HTTP request, ahead of the HTTP library. The metrics
 * endpoint answers GET and HEAD without bodies, so a request must be a small head and nothing
 * else: the bytes of a connection are fed here as they are read, and the verdict says whether
 * to pass them on, to wait for more, or to refuse the request before reading any further.
 * Pure: bytes in, a verdict out.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The largest request head accepted (request line and headers, blank line included). */
#define ATK_HTTP_HEAD_MAX 8192

typedef enum
{
  ATK_HTTP_HEAD_INCOMPLETE, /* no blank line yet: pass the bytes on, read more */
  ATK_HTTP_HEAD_COMPLETE,   /* the head ended; anything after it is not read */
  ATK_HTTP_HEAD_TOO_LARGE,  /* no end within ATK_HTTP_HEAD_MAX bytes: 431 */
  ATK_HTTP_HEAD_HAS_BODY,   /* Content-Length > 0 or a Transfer-Encoding: 413 */
} AtkHttpHeadVerdict;

typedef struct
{
  char buf[ATK_HTTP_HEAD_MAX];
  gsize len;
  AtkHttpHeadVerdict verdict;
} AtkHttpHead;

void atk_http_head_init (AtkHttpHead *head);

/* Feeds the next len bytes read from the connection. Returns the verdict; *n_head is how many
 * of these bytes belong to the head (the rest, after a complete head, are to be dropped).
 * After a verdict other than INCOMPLETE, further calls change nothing and take no bytes. */
AtkHttpHeadVerdict atk_http_head_feed (AtkHttpHead *head, const guint8 *data, gsize len,
                                       gsize *n_head);

/* The HTTP status that refuses a head with this verdict (0 for INCOMPLETE and COMPLETE). */
guint atk_http_head_refusal_status (AtkHttpHeadVerdict verdict);

G_END_DECLS
