/* at-kafka: the durable cursor in the state directory (write temp, fsync, rename; then, for
 * the saves that follow, rewritten in place).
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

/* The same file for an owner that saves it again and again (ten times a second): after a save
 * as above it keeps the file open, and a later cursor of the same length is written over it
 * in place and fdatasync()ed (a quarter of the CPU of temp, fsync, rename, fsync of the
 * directory). Anything else (another length, the file replaced, resized or gone, a failed
 * write) takes the temp-and-rename way again. Same errors as atk_cursor_store_save(). */
typedef struct _AtkCursorFile AtkCursorFile;

AtkCursorFile *atk_cursor_file_new (const char *state_directory);
gboolean atk_cursor_file_save (AtkCursorFile *self, gint64 cursor, GError **error);
void atk_cursor_file_free (AtkCursorFile *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtkCursorFile, atk_cursor_file_free)

G_END_DECLS
