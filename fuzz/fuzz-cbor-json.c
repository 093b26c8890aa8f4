/* libFuzzer target: one input = one record's DAG-CBOR, through the JSON writer.
 * Invariants: failure leaves the output as it was; success means the strict reader accepts
 * the same bytes whole, and the output is UTF-8 with no raw control characters or NULs.
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "atk-car.h"
#include "atk-cbor-json.h"
#include "atk-frame.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

/* The meson test passes a corpus directory that may not exist yet: seed it from the
 * captured frames under ATK_VECTORS_DIR (make-corpus.py does the same for manual runs). */
static void
write_seed (const char *dir, const guint8 *data, gsize len)
{
  g_autofree char *sum = g_compute_checksum_for_data (G_CHECKSUM_SHA256, data, len);
  g_autofree char *path = NULL;

  sum[16] = '\0';
  path = g_build_filename (dir, sum, NULL);
  if (!g_file_set_contents (path, (const char *)data, (gssize)len, NULL))
    abort ();
}

/* Record seeds are the DAG-CBOR blocks of each commit's CAR (records, MST nodes, commits). */
static void
seed_from_blocks (const char *dir, const AtkFrame *frame, AtkCarIndex *index)
{
  if (!atk_car_index_build (index, frame->blocks, frame->blocks_len, NULL))
    return;
  for (guint i = 0; i < index->n_blocks; i++)
    if (index->blocks[i].cid.codec == ATK_CID_CODEC_DAG_CBOR && index->blocks[i].len > 0)
      write_seed (dir, index->blocks[i].data, index->blocks[i].len);
}

static void
seed_corpus (const char *vectors, const char *dir)
{
  static const char *const captures[] = { "relay-capture/frames.bin", "pds-capture/frames.bin" };
  g_autofree AtkFrame *frame = g_new0 (AtkFrame, 1);
  g_autofree AtkCarIndex *index = g_new0 (AtkCarIndex, 1);

  if (g_mkdir_with_parents (dir, 0755) != 0)
    abort ();
  for (gsize i = 0; i < G_N_ELEMENTS (captures); i++)
    {
      g_autofree char *path = g_build_filename (vectors, captures[i], NULL);
      g_autofree char *contents = NULL;
      gsize len;
      AtkFrameFileReader reader;
      const guint8 *data;
      gsize data_len;

      if (!g_file_get_contents (path, &contents, &len, NULL))
        continue;
      atk_frame_file_reader_init (&reader, (const guint8 *)contents, len);
      while (atk_frame_file_reader_next (&reader, &data, &data_len, NULL))
        {
          if (!atk_frame_decode (data, data_len, frame, NULL) || frame->blocks_len == 0)
            continue;
          seed_from_blocks (dir, frame, index);
        }
    }
}

int LLVMFuzzerInitialize (int *argc, char ***argv);

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  const char *vectors = g_getenv ("ATK_VECTORS_DIR");
  const char *dir = NULL;

  for (int i = 1; i < *argc; i++)
    if ((*argv)[i][0] != '-')
      dir = (*argv)[i];
  if (vectors != NULL && dir != NULL && !g_file_test (dir, G_FILE_TEST_EXISTS))
    seed_corpus (vectors, dir);
  return 0;
}

static void
check_output (const GString *out, gsize start)
{
  const char *json = out->str + start;
  gsize len = out->len - start;

  if (strlen (out->str) != out->len || !g_utf8_validate (json, (gssize)len, NULL))
    abort ();
  if (len < 2 || json[0] != '{' || json[len - 1] != '}')
    abort ();
  for (gsize i = 0; i < len; i++)
    if ((guchar)json[i] < 0x20)
      abort ();
}

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  static GString *out;
  GError *error = NULL;
  AtkCborReader reader;

  if (out == NULL)
    out = g_string_new (NULL);
  g_string_assign (out, "x");

  if (atk_cbor_json_write_record (data, size, out, &error))
    {
      check_output (out, 1);
      atk_cbor_reader_init (&reader, data, size);
      if (!atk_cbor_skip (&reader, NULL) || atk_cbor_reader_remaining (&reader) != 0)
        abort ();
    }
  else
    {
      if (error == NULL || out->len != 1 || strcmp (out->str, "x") != 0)
        abort ();
      g_error_free (error);
    }
  return 0;
}
