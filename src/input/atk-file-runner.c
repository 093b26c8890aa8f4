/* SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-input"

#include "atk-file-runner.h"

#include <glib/gi18n.h>

#include "atk-error.h"
#include "atk-event-transformer.h"

static void
write_messages (GPtrArray *messages, FILE *out, AtkFileRunSummary *summary)
{
  for (guint i = 0; i < messages->len; i++)
    {
      const AtkMessage *message = g_ptr_array_index (messages, i);
      fwrite (message->value->str, 1, message->value->len, out);
      fputc ('\n', out);
    }
  summary->messages += messages->len;
  g_ptr_array_set_size (messages, 0);
}

static void
count_frame (const AtkTransformResult *result, gboolean ok, const GError *error,
             AtkFileRunSummary *summary)
{
  summary->frames++;
  if (!ok)
    {
      g_debug ("frame %" G_GUINT64_FORMAT " rejected: %s", summary->frames, error->message);
      summary->errors++;
      return;
    }
  if (result->frame->kind == ATK_EVENT_UNKNOWN || result->frame->kind == ATK_EVENT_ERROR)
    summary->skipped++;
  summary->filtered += result->n_filtered;
  summary->errors += result->n_op_errors;
  if (result->op_error != NULL)
    g_debug ("seq %" G_GINT64_FORMAT ": %u record(s) not rendered%s: %s", result->frame->seq,
             result->n_op_errors, result->ops_skipped ? ", op(s) skipped" : "",
             result->op_error->message);
}

gboolean
atk_file_runner_run (const AtkConfig *config, FILE *out, AtkFileRunSummary *summary, GError **error)
{
  g_autoptr (GMappedFile) file = NULL;
  g_autoptr (AtkEventTransformer) transformer = atk_event_transformer_new ();
  g_autoptr (GPtrArray) messages
      = g_ptr_array_new_with_free_func ((GDestroyNotify)atk_message_free);
  AtkFrameFileReader reader;
  const guint8 *frame;
  gsize frame_len;
  g_autoptr (GError) read_error = NULL;

  memset (summary, 0, sizeof *summary);
  file = g_mapped_file_new (config->input_file, FALSE, error);
  if (file == NULL)
    return FALSE;

  atk_event_transformer_set_osprey_compatible (transformer, config->osprey_compatible);
  atk_event_transformer_set_skip_unrenderable_records (transformer,
                                                       config->skip_unrenderable_records);
  atk_event_transformer_set_payload_format (transformer, config->payload_format);
  if (!atk_event_transformer_set_collection_filter (
          transformer, (const char *const *)config->watched_collections,
          (const char *const *)config->ignored_collections, error))
    return FALSE;

  atk_frame_file_reader_init (&reader, (const guint8 *)g_mapped_file_get_contents (file),
                              g_mapped_file_get_length (file));
  while (atk_frame_file_reader_next (&reader, &frame, &frame_len, &read_error))
    {
      AtkTransformResult result = { 0 };
      g_autoptr (GError) frame_error = NULL;
      gboolean ok = atk_event_transformer_transform (
          transformer, frame, frame_len, g_get_real_time (), messages, &result, &frame_error);
      count_frame (&result, ok, frame_error, summary);
      write_messages (messages, out, summary);
      atk_transform_result_clear (&result);
    }
  fflush (out);
  if (read_error != NULL)
    {
      g_propagate_prefixed_error (error, g_steal_pointer (&read_error), _ ("%s: "),
                                  config->input_file);
      return FALSE;
    }
  return TRUE;
}
