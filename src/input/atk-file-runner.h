/* at-kafka: --input FILE --stdout. Reads a frame file and writes each message value as a
 * line of JSON, through exactly the transformer the live daemon uses.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <stdio.h>

#include "atk-config.h"

G_BEGIN_DECLS

typedef struct
{
  guint64 frames;
  guint64 messages;
  guint64 skipped;  /* frames that produce nothing: unknown types, error frames */
  guint64 filtered; /* ops dropped by collection filters */
  guint64 errors;   /* frames rejected whole, plus ops skipped for bad records */
} AtkFileRunSummary;

/* Runs the whole file. FALSE when the file cannot be read or ends inside a record; the
 * summary then still counts what was done before. */
gboolean atk_file_runner_run (const AtkConfig *config, FILE *out, AtkFileRunSummary *summary,
                              GError **error);

G_END_DECLS
