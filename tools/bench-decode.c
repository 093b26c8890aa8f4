/* bench-decode: how fast the transformer turns firehose frames into messages.
 *
 * Loads a frame file ([u32 LE length][frame]…), transforms every frame in a loop on one
 * core for a time or a number of passes, and prints frames/s, messages/s, MB/s and the
 * CPU time per million events. A benchmark, not a test: run it by hand.
 *
 * With --dump it instead transforms every frame of the given files once, with a fixed
 * clock, and prints each message (key, collection, action id, metadata offset, value) and
 * each error: the golden output tests/decode-golden.py pins, so that no optimisation of
 * the decoder changes a byte of what it renders.
 * SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "atk-error.h"

#include "atk-event-transformer.h"

typedef struct
{
  const guint8 *data;
  gsize len;
} Frame;

static gdouble
cpu_seconds (void)
{
  struct rusage usage;

  getrusage (RUSAGE_SELF, &usage);
  return (gdouble)usage.ru_utime.tv_sec + (gdouble)usage.ru_utime.tv_usec / 1e6
         + (gdouble)usage.ru_stime.tv_sec + (gdouble)usage.ru_stime.tv_usec / 1e6;
}

static GArray *
split_frames (GBytes *bytes, GError **error)
{
  g_autoptr (GArray) frames = g_array_new (FALSE, FALSE, sizeof (Frame));
  AtkFrameFileReader reader;
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  Frame frame;

  atk_frame_file_reader_init (&reader, data, len);
  while (atk_frame_file_reader_next (&reader, &frame.data, &frame.len, error))
    g_array_append_val (frames, frame);
  if (error != NULL && *error != NULL)
    return NULL;
  return g_steal_pointer (&frames);
}

/* A fixed "now", as the live loop would take once per frame. */
#define BENCH_NOW_US G_GINT64_CONSTANT (1704110400000000)

static void
dump_one (AtkEventTransformer *transformer, const guint8 *data, gsize len, GPtrArray *messages,
          GString *out)
{
  g_autoptr (GError) error = NULL;
  AtkTransformResult result = { 0 };

  if (!atk_event_transformer_transform (transformer, data, len, BENCH_NOW_US, messages, &result,
                                        &error))
    g_string_append_printf (out, "! frame %s %d: %s\n", g_quark_to_string (error->domain),
                            error->code, error->message);
  for (guint i = 0; i < messages->len; i++)
    {
      const AtkMessage *m = g_ptr_array_index (messages, i);
      g_string_append_printf (out, "%s\t%s\t%" G_GINT64_FORMAT "\t%" G_GSIZE_FORMAT "\t%s\n",
                              m->key, m->collection ? m->collection : "-", m->action_id,
                              m->metadata_offset, m->value->str);
    }
  if (result.n_op_errors > 0)
    {
      g_string_append_printf (out, "! ops %u filtered %u skipped %d:", result.n_op_errors,
                              result.n_filtered, result.ops_skipped);
      for (guint i = 0; i < result.n_op_error_kinds; i++)
        g_string_append_printf (out, " %s=%u", result.op_error_kinds[i].kind,
                                result.op_error_kinds[i].count);
      g_string_append_printf (out, " (%s)\n",
                              result.op_error ? result.op_error->message : "no message");
    }
  g_ptr_array_set_size (messages, 0);
  atk_transform_result_clear (&result);
}

/* --dump: files of [u32 LE length][frame] records, or with --raw one frame per file. */
static int
dump (AtkEventTransformer *transformer, gboolean raw, char **paths)
{
  g_autoptr (GPtrArray) messages
      = g_ptr_array_new_with_free_func ((GDestroyNotify)atk_message_free);
  g_autoptr (GString) out = g_string_new (NULL);

  for (char **p = paths; *p != NULL; p++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GMappedFile) file = g_mapped_file_new (*p, FALSE, &error);
      AtkFrameFileReader reader;
      const guint8 *data;
      gsize len;

      if (file == NULL)
        {
          g_printerr ("bench-decode: %s\n", error->message);
          return 1;
        }
      data = (const guint8 *)g_mapped_file_get_contents (file);
      len = g_mapped_file_get_length (file);
      if (raw)
        {
          dump_one (transformer, data, len, messages, out);
          continue;
        }
      atk_frame_file_reader_init (&reader, data, len);
      while (atk_frame_file_reader_next (&reader, &data, &len, &error))
        dump_one (transformer, data, len, messages, out);
      if (error != NULL)
        g_string_append_printf (out, "! file: %s\n", error->message);
    }
  fwrite (out->str, 1, out->len, stdout);
  return fflush (stdout) == 0 ? 0 : 1;
}

int
main (int argc, char **argv)
{
  gdouble seconds = 5.0;
  gint64 iterations = 0;
  gboolean osprey = FALSE, do_dump = FALSE, raw = FALSE;
  g_autofree char *payload = NULL;
  const GOptionEntry entries[] = {
    { "seconds", 's', 0, G_OPTION_ARG_DOUBLE, &seconds, "Run for this long (default 5)", "S" },
    { "iterations", 'n', 0, G_OPTION_ARG_INT64, &iterations,
      "Passes over the file instead of a duration", "N" },
    { "osprey", 'o', 0, G_OPTION_ARG_NONE, &osprey, "Osprey-shaped output", NULL },
    { "payload-format", 'p', 0, G_OPTION_ARG_STRING, &payload, "standard or jetstream", "FORMAT" },
    { "dump", 'd', 0, G_OPTION_ARG_NONE, &do_dump,
      "Print every message of FILE… once (fixed clock) instead of timing", NULL },
    { "raw", 'r', 0, G_OPTION_ARG_NONE, &raw, "With --dump: each FILE is one frame", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("[FRAMES.bin]");
  g_autoptr (GError) error = NULL;
  g_autoptr (AtkEventTransformer) transformer = atk_event_transformer_new ();
  g_autoptr (GPtrArray) messages
      = g_ptr_array_new_with_free_func ((GDestroyNotify)atk_message_free);
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (GArray) frames = NULL;
  g_autoptr (GMappedFile) file = NULL;
  g_autofree char *path = NULL;
  guint64 n_frames = 0, n_messages = 0, n_bytes = 0, n_failed = 0, n_op_errors = 0;
  gint64 passes = 0, start, deadline, elapsed_us;
  gdouble cpu_start, cpu;

  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_set_summary (context, "Default file: relay-capture/frames.bin under "
                                         "$ATK_VECTORS_DIR, else the tree's tests/vectors");
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("bench-decode: %s\n", error->message);
      return 2;
    }
  atk_event_transformer_set_osprey_compatible (transformer, osprey);
  if (g_strcmp0 (payload, "jetstream") == 0)
    atk_event_transformer_set_payload_format (transformer, ATK_PAYLOAD_JETSTREAM);
  else if (payload != NULL && g_strcmp0 (payload, "standard") != 0)
    {
      g_printerr ("bench-decode: unknown payload format %s\n", payload);
      return 2;
    }
  if (do_dump)
    {
      if (argc < 2)
        {
          g_printerr ("bench-decode: --dump needs FILE…\n");
          return 2;
        }
      return dump (transformer, raw, argv + 1);
    }
  if (argc > 1)
    path = g_strdup (argv[1]);
  else if (g_getenv ("ATK_VECTORS_DIR") != NULL)
    path = g_build_filename (g_getenv ("ATK_VECTORS_DIR"), "relay-capture", "frames.bin", NULL);
  else
    path = g_build_filename (ATK_DEFAULT_VECTORS_DIR, "relay-capture", "frames.bin", NULL);

  file = g_mapped_file_new (path, FALSE, &error);
  if (file == NULL)
    {
      g_printerr ("bench-decode: %s\n", error->message);
      return 1;
    }
  bytes = g_mapped_file_get_bytes (file);
  frames = split_frames (bytes, &error);
  if (frames == NULL || frames->len == 0)
    {
      g_printerr ("bench-decode: %s: %s\n", path, error ? error->message : "no frames");
      return 1;
    }
  start = g_get_monotonic_time ();
  deadline = start + (gint64)(seconds * G_USEC_PER_SEC);
  cpu_start = cpu_seconds ();
  do
    {
      for (guint i = 0; i < frames->len; i++)
        {
          const Frame *frame = &g_array_index (frames, Frame, i);
          AtkTransformResult result = { 0 };

          if (!atk_event_transformer_transform (transformer, frame->data, frame->len, BENCH_NOW_US,
                                                messages, &result, NULL))
            n_failed++;
          n_op_errors += result.n_op_errors;
          n_messages += messages->len;
          n_bytes += frame->len;
          g_ptr_array_set_size (messages, 0);
          atk_transform_result_clear (&result);
        }
      n_frames += frames->len;
      passes++;
    }
  while (iterations > 0 ? passes < iterations : g_get_monotonic_time () < deadline);
  elapsed_us = MAX (g_get_monotonic_time () - start, 1);
  cpu = cpu_seconds () - cpu_start;

  g_print ("file:        %s (%u frames, %s%s)\n", path, frames->len, osprey ? "osprey, " : "",
           payload ? payload : "standard");
  g_print ("passes:      %" G_GINT64_FORMAT " in %.2f s wall, %.2f s CPU\n", passes,
           elapsed_us / 1e6, cpu);
  g_print ("frames/s:    %.0f\n", n_frames / (elapsed_us / 1e6));
  g_print ("messages/s:  %.0f\n", n_messages / (elapsed_us / 1e6));
  g_print ("MB/s:        %.1f (frame bytes in)\n", n_bytes / (elapsed_us / 1e6) / 1e6);
  g_print ("CPU-s per million events: %.2f (frames), %.2f (messages)\n", cpu / (n_frames / 1e6),
           n_messages > 0 ? cpu / (n_messages / 1e6) : 0.0);
  if (n_failed > 0 || n_op_errors > 0)
    g_print ("failed frames: %" G_GUINT64_FORMAT ", op errors: %" G_GUINT64_FORMAT "\n",
             n_failed / passes, n_op_errors / passes);
  return 0;
}
