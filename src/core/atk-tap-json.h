/* at-kafka: the small JSON reader behind the Tap event parser (atk-tap-event.c).
 *
 * Pure: no I/O. Every reader function reads at r->p (skipping whitespace first where a
 * token may start), advances past what it read and, on failure, sets *r->error to an
 * ATK_ERROR_BAD_FRAME "Tap event: …" and returns FALSE.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define ATK_TAP_JSON_MAX_DEPTH 128 /* nesting of a record; Tap's own are far shallower */

typedef struct
{
  const char *p;
  const char *end;
  GError **error; /* may be NULL */
} AtkTapJsonReader;

gboolean atk_tap_json_fail (AtkTapJsonReader *r, const char *what);
void atk_tap_json_skip_ws (AtkTapJsonReader *r);
/* Skips whitespace and consumes c; FALSE (no error set) if the next character is not c. */
gboolean atk_tap_json_expect (AtkTapJsonReader *r, char c);

/* A string token: `decoded` (may be NULL) gets its UTF-8 value, where a NUL is refused;
 * `raw` (may be NULL) gets the token itself, quotes included. */
gboolean atk_tap_json_read_string (AtkTapJsonReader *r, GString *decoded, GString *raw);
/* A number token (JSON grammar), copied as sent to raw (may be NULL). */
gboolean atk_tap_json_read_number (AtkTapJsonReader *r, GString *raw);
/* The literal word (true, false, null), copied to raw (may be NULL). */
gboolean atk_tap_json_read_word (AtkTapJsonReader *r, const char *word, GString *raw);
gboolean atk_tap_json_read_bool (AtkTapJsonReader *r, gboolean *out);
/* Validates any value; appends it compactly to out unless NULL (a skip). */
gboolean atk_tap_json_copy_value (AtkTapJsonReader *r, GString *out, guint depth);

/* Iterates the members of an object: calls member with each key (r->p just after the
 * ':'); the callback must consume the value. */
typedef gboolean (*AtkTapJsonMemberFunc) (AtkTapJsonReader *r, const char *key, gpointer data);
gboolean atk_tap_json_read_object (AtkTapJsonReader *r, AtkTapJsonMemberFunc member, gpointer data);

/* Finds the unsigned integer (0..2^64-1, digits only) of member `name` of the top-level
 * object in text without parsing the rest: deep nesting, bad strings or values elsewhere and
 * anything after the object do not hide it. FALSE when text does not start with an object
 * or the (last) member with that name is missing or not such an integer. The name is
 * compared with the key as written (no escapes). */
gboolean atk_tap_json_peek_uint_member (const char *text, gsize len, const char *name,
                                        guint64 *out);

/* TRUE when no container in text nests deeper than max_depth (the top-level value is depth
 * 1). A bracket count that steps over strings, no recursion: run it before handing a peer's
 * JSON to a recursive parser (json-glib recurses once per level and overflows the stack on
 * a few hundred thousand '['). */
gboolean atk_json_depth_within (const char *text, gsize len, guint max_depth);

G_END_DECLS
