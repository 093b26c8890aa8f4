/* libFuzzer target: one input = one WebSocket message, through the whole transformer in
 * both output modes (and with a collection filter, and skipping unrenderable records), as
 * the daemon would run it. No op of a commit is lost: each is produced, filtered out, or
 * (only when skipping) counted as an op error.
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "atk-event-transformer.h"
#include "atk-fuzz-json.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static AtkEventTransformer *transformers[4];

static void
setup (void)
{
  const char *const watched[] = { "app.bsky.feed.*", NULL };

  for (guint i = 0; i < G_N_ELEMENTS (transformers); i++)
    transformers[i] = atk_event_transformer_new ();
  atk_event_transformer_set_osprey_compatible (transformers[1], TRUE);
  if (!atk_event_transformer_set_collection_filter (transformers[2], watched, NULL, NULL))
    abort ();
  atk_event_transformer_set_skip_unrenderable_records (transformers[3], TRUE);
}

static void
check_ops (const AtkTransformResult *result, gboolean skip)
{
  guint by_kind = 0;

  for (guint k = 0; k < result->n_op_error_kinds; k++)
    by_kind += result->op_error_kinds[k].count;
  if (by_kind != result->n_op_errors || (result->n_op_errors > 0) != (result->op_error != NULL)
      || result->ops_skipped != (skip && result->n_op_errors > 0))
    abort ();
  if (result->frame->kind == ATK_EVENT_COMMIT
      && result->n_messages + result->n_filtered + (skip ? result->n_op_errors : 0)
             != result->frame->n_ops)
    abort ();
}

/* Every value is one JSON object, checked by a strict checker of our own (not by the
 * writer's assumptions): grammar, escapes, UTF-8, no NUL, nothing after it. Each value
 * becomes one line of --stdout output, so it must not hold a raw newline either (the
 * checker rejects control characters inside strings; whitespace between tokens is the
 * writer's choice, and it writes none). */
static void
check_value (const GString *value)
{
  if (!atk_fuzz_json_object_valid (value->str, value->len) || memchr (value->str, '\n', value->len))
    abort ();
}

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  if (transformers[0] == NULL)
    setup ();

  for (guint i = 0; i < G_N_ELEMENTS (transformers); i++)
    {
      g_autoptr (GPtrArray) messages
          = g_ptr_array_new_with_free_func ((GDestroyNotify)atk_message_free);
      AtkTransformResult result = { 0 };
      g_autoptr (GError) error = NULL;
      gboolean ok = atk_event_transformer_transform (transformers[i], data, size,
                                                     G_GINT64_CONSTANT (1704110400000000), messages,
                                                     &result, &error);

      if (ok != (error == NULL) || (ok && result.frame == NULL)
          || result.n_messages != messages->len || (!ok && messages->len != 0))
        abort ();
      if (ok)
        check_ops (&result, i == 3);
      for (guint j = 0; j < messages->len; j++)
        check_value (((AtkMessage *)messages->pdata[j])->value);
      atk_transform_result_clear (&result);
    }
  return 0;
}
