/* SPDX-License-Identifier: MIT */
#include "atk-log-text.h"

#include <string.h>

char *
atk_log_text (const char *text, gssize len)
{
  gsize total;
  gsize keep;

  if (text == NULL)
    return g_strdup ("");
  total = len < 0 ? strlen (text) : (gsize)len;
  /* what g_strndup would keep: the string ends at its first NUL */
  total = strnlen (text, total);
  if (total <= ATK_LOG_TEXT_MAX)
    return g_strndup (text, total);
  keep = ATK_LOG_TEXT_MAX;
  /* back off to the start of a UTF-8 character (continuation bytes are 10xxxxxx) */
  while (keep > 0 && ((guchar)text[keep] & 0xC0) == 0x80)
    keep--;
  return g_strdup_printf ("%.*s… (%" G_GSIZE_FORMAT " bytes)", (int)keep, text, total);
}
