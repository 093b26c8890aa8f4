/* at-kafka: strings that come from peers, made safe to log: capped at a fixed size (a relay's
 * 5 MB error message is logged as its first bytes and its total length, not as one 5 MB line).
 * Pure.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Bytes of a peer's string kept in a log line. */
#define ATK_LOG_TEXT_MAX 512

/* A copy of text[0..len) for a log line: at most ATK_LOG_TEXT_MAX bytes of it (cut at a
 * UTF-8 character boundary), followed by "… (N bytes)" when it was longer. text may hold
 * NULs (they end the copy early, as g_strndup does). len -1: NUL-terminated. */
char *atk_log_text (const char *text, gssize len);

G_END_DECLS
