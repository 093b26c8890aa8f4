/* at-kafka: the durable cursor in the state directory (write temp, fsync, rename).
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Reads <dir>/cursor. FALSE with *error unset if there is none yet. */
gboolean atk_cursor_store_load (const char *state_directory, gint64 *cursor, GError **error);

/* Replaces <dir>/cursor durably (creating dir if needed). */
gboolean atk_cursor_store_save (const char *state_directory, gint64 cursor, GError **error);

G_END_DECLS
