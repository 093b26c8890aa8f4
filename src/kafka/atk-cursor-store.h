/* at-kafka: the durable cursor in the state directory (write temp, fsync, rename).
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The largest cursor either store holds (2^53, as for frames' seqs). */
#define ATK_CURSOR_STORE_MAX_SEQ G_GINT64_CONSTANT (9007199254740992)

/* Reads <dir>/cursor. FALSE with *error unset if there is none yet; FALSE with an error
 * naming the file when it cannot be read or holds anything but a seq in 0..2^53. */
gboolean atk_cursor_store_load (const char *state_directory, gint64 *cursor, GError **error);

/* Replaces <dir>/cursor durably (creating dir if needed). A cursor outside 0..2^53 is
 * refused with an error. */
gboolean atk_cursor_store_save (const char *state_directory, gint64 cursor, GError **error);

G_END_DECLS
