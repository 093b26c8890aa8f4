/* at-kafka: DAG-CBOR to atproto JSON, written straight into an output buffer.
 *
 * Pure: bytes in, text out. Links become {"$link":"bafy…"}, byte strings become
 * {"$bytes":"<standard base64, unpadded>"}, integers are written as 64-bit JSON integers,
 * text is escaped for JSON (all control characters, '"' and '\\').
 * Rejected (nothing trustworthy is appended; callers truncate on failure): anything
 * atk-cbor.h rejects, non-text map keys, keys out of canonical order or duplicated,
 * maps that use the reserved "$link"/"$bytes" keys, a "$type" that is not a non-empty
 * string, blobs ($type "blob") without a link `ref`, text `mimeType` and integer `size`,
 * and trailing bytes after the value.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

#include "atk-cbor.h"

G_BEGIN_DECLS

/* Writes the single item at the reader's position and advances past it. */
gboolean atk_cbor_json_write_item (AtkCborReader *reader, GString *out, GError **error);

/* Writes a whole record: data must be exactly one map (the atproto record rule).
 * On failure out is restored to its length before the call. */
gboolean atk_cbor_json_write_record (const guint8 *data, gsize len, GString *out, GError **error);

/* Appends a JSON string literal (with quotes) for UTF-8 text. */
void atk_json_append_string (GString *out, const char *text, gsize len);

/* Appends RFC 4648 standard base64 without padding. */
void atk_base64_append_unpadded (GString *out, const guint8 *data, gsize len);

G_END_DECLS
