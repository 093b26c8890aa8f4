/* Helpers shared by the GTest programs. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Path of a file under the test vectors (ATK_VECTORS_DIR). */
char *atk_test_vector_path (const char *relative);

/* Loads a vector file whole; aborts the test if missing (vectors are always present in CI). */
GBytes *atk_test_load_vector (const char *relative);

G_END_DECLS
