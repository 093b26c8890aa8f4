/* bench-decode: how fast the transformer turns firehose frames into messages.
 *
 * Loads a frame file ([u32 LE length][frame]…), transforms every frame in a loop on one
 * core for a time or a number of passes, and prints frames/s, messages/s, MB/s and the
 * CPU time per million events. A benchmark, not a test: run it by hand.
 * SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

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

int
main (int argc, char **argv)
{
  gdouble seconds = 5.0;
  gint64 iterations = 0;
  gboolean osprey = FALSE;
  const GOptionEntry entries[] = {
    { "seconds", 's', 0, G_OPTION_ARG_DOUBLE, &seconds, "Run for this long (default 5)", "S" },
    { "iterations", 'n', 0, G_OPTION_ARG_INT64, &iterations,
      "Passes over the file instead of a duration", "N" },
    { "osprey", 'o', 0, G_OPTION_ARG_NONE, &osprey, "Osprey-shaped output", NULL },
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
  atk_event_transformer_set_osprey_compatible (transformer, osprey);

  start = g_get_monotonic_time ();
  deadline = start + (gint64)(seconds * G_USEC_PER_SEC);
  cpu_start = cpu_seconds ();
  do
    {
      for (guint i = 0; i < frames->len; i++)
        {
          const Frame *frame = &g_array_index (frames, Frame, i);
          AtkTransformResult result = { 0 };

          /* A fixed "now", as the live loop would take once per frame. */
          if (!atk_event_transformer_transform (transformer, frame->data, frame->len,
                                                G_GINT64_CONSTANT (1704110400000000), messages,
                                                &result, NULL))
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

  g_print ("file:        %s (%u frames, %s mode)\n", path, frames->len,
           osprey ? "osprey" : "standard");
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
