#include "atk-test-util.h"

char *
atk_test_vector_path (const char *relative)
{
  const char *dir = g_getenv ("ATK_VECTORS_DIR");
  g_assert_nonnull (dir);
  return g_build_filename (dir, relative, NULL);
}

GBytes *
atk_test_load_vector (const char *relative)
{
  g_autofree char *path = atk_test_vector_path (relative);
  g_autoptr (GError) error = NULL;
  char *contents = NULL;
  gsize len = 0;

  if (!g_file_get_contents (path, &contents, &len, &error))
    g_error ("cannot read test vector %s: %s", path, error->message);
  return g_bytes_new_take (contents, len);
}
