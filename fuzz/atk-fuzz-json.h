/* A strict JSON checker (RFC 8259) for the fuzz targets: the output of the code under test is
 * checked with code of its own, not with the writer's assumptions.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* TRUE when text[0..len) is exactly one JSON value (surrounding whitespace allowed), in
 * valid UTF-8, with no NUL byte. */
gboolean atk_fuzz_json_valid (const char *text, gsize len);

/* The same, and the value is an object. */
gboolean atk_fuzz_json_object_valid (const char *text, gsize len);

G_END_DECLS
