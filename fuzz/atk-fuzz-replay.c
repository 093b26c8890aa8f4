/* Runs a fuzz target's LLVMFuzzerTestOneInput over every file of the directories given, in
 * builds without libFuzzer: the regression corpus (fuzz/regressions/<target>/, inputs that
 * once crashed or broke an invariant) and the seed corpus are replayed by every build,
 * under the sanitizers when the build has them. A target aborts on a broken invariant;
 * this program fails when a directory is missing or holds no input. Prints TAP.
 * SPDX-License-Identifier: MIT */
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static gint
compare_names (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const char *const *)a, *(const char *const *)b);
}

static guint
replay_dir (const char *path, guint *test)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GDir) dir = g_dir_open (path, 0, &error);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  if (dir == NULL)
    {
      printf ("not ok %u - %s\n", ++*test, error->message);
      return 1;
    }
  while ((name = g_dir_read_name (dir)) != NULL)
    if (name[0] != '.' && g_strcmp0 (name, "README.md") != 0)
      g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_names);
  if (names->len == 0)
    {
      printf ("not ok %u - %s holds no input\n", ++*test, path);
      return 1;
    }
  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *file = g_build_filename (path, names->pdata[i], NULL);
      g_autofree char *contents = NULL;
      gsize len = 0;

      if (!g_file_get_contents (file, &contents, &len, &error))
        {
          printf ("not ok %u - %s\n", ++*test, error->message);
          return 1;
        }
      /* An exact-size copy: a read past the end is a sanitizer report, not luck. libFuzzer
       * never passes NULL, even for an empty input; neither do we. */
      {
        static const guint8 empty[1];
        guint8 *data = len > 0 ? g_memdup2 (contents, len) : NULL;
        LLVMFuzzerTestOneInput (data != NULL ? data : empty, len);
        g_free (data);
      }
    }
  printf ("ok %u - %u input(s) of %s\n", ++*test, names->len, path);
  return 0;
}

int
main (int argc, char **argv)
{
  guint failed = 0;
  guint test = 0;

  if (argc < 2)
    {
      fprintf (stderr, "usage: %s DIR...\n", argv[0]);
      return 2;
    }
  printf ("1..%d\n", argc - 1);
  for (int i = 1; i < argc; i++)
    failed += replay_dir (argv[i], &test);
  return failed == 0 ? 0 : 1;
}
