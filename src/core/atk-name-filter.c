/* SPDX-License-Identifier: MIT */
#include "atk-name-filter.h"

#include <string.h>

#include "atk-error.h"

typedef struct
{
  char *base; /* the name without "*." / ".*"; NULL for a lone "*" */
  gsize len;
  gboolean wildcard; /* "*.host" (hosts): subdomains too */
} Pattern;

struct _AtkNameFilter
{
  AtkNameFilterKind kind;
  GArray *patterns;  /* Pattern */
  gboolean watching; /* TRUE: patterns are the watched list; FALSE: the ignored one */
};

static void
pattern_clear (gpointer data)
{
  g_free (((Pattern *)data)->base);
}

/* Strips the kind's wildcard form and checks what is left. */
static gboolean
pattern_parse (AtkNameFilterKind kind, const char *text, Pattern *pattern, GError **error)
{
  g_autofree char *copy = g_strstrip (g_strdup (text));
  char *base = copy;
  gsize len = strlen (copy);

  if (strcmp (copy, "*") == 0)
    return TRUE;
  if (kind == ATK_NAME_FILTER_HOSTS && g_str_has_prefix (base, "*."))
    {
      pattern->wildcard = TRUE;
      base += 2;
      len -= 2;
    }
  if (kind == ATK_NAME_FILTER_NSIDS && len > 2 && g_str_has_suffix (base, ".*"))
    len -= 2;
  while (kind == ATK_NAME_FILTER_NSIDS && len > 0 && base[len - 1] == '.')
    len--;
  base[len] = '\0';
  if (len == 0 || strchr (base, '*') != NULL || strchr (base, '/') != NULL)
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   kind == ATK_NAME_FILTER_NSIDS
                       ? "Invalid collection pattern “%s”: use an NSID or an NSID prefix "
                         "followed by “.*”"
                       : "Invalid service pattern “%s”: use a host name or “*.” followed by "
                         "a domain",
                   text);
      return FALSE;
    }
  pattern->base = kind == ATK_NAME_FILTER_HOSTS ? g_ascii_strdown (base, len) : g_strdup (base);
  pattern->len = len;
  return TRUE;
}

static gboolean
patterns_parse (AtkNameFilterKind kind, const char *const *list, GArray *out, GError **error)
{
  for (gsize i = 0; list != NULL && list[i] != NULL; i++)
    {
      Pattern pattern = { 0 };

      if (*list[i] == '\0' || strspn (list[i], " \t") == strlen (list[i]))
        continue;
      if (!pattern_parse (kind, list[i], &pattern, error))
        return FALSE;
      g_array_append_val (out, pattern);
    }
  return TRUE;
}

AtkNameFilter *
atk_name_filter_new (AtkNameFilterKind kind, const char *const *watched, const char *const *ignored,
                     GError **error)
{
  g_autoptr (GArray) watch = g_array_new (FALSE, TRUE, sizeof (Pattern));
  g_autoptr (GArray) ignore = g_array_new (FALSE, TRUE, sizeof (Pattern));
  AtkNameFilter *filter;
  GArray **kept;

  g_array_set_clear_func (watch, pattern_clear);
  g_array_set_clear_func (ignore, pattern_clear);
  if (!patterns_parse (kind, watched, watch, error)
      || !patterns_parse (kind, ignored, ignore, error))
    return NULL;
  if (watch->len > 0 && ignore->len > 0)
    {
      g_set_error_literal (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                           kind == ATK_NAME_FILTER_NSIDS
                               ? "Watched and ignored collections cannot both be given"
                               : "Watched and ignored services cannot both be given");
      return NULL;
    }
  filter = g_new0 (AtkNameFilter, 1);
  filter->kind = kind;
  filter->watching = watch->len > 0;
  kept = filter->watching ? &watch : &ignore;
  filter->patterns = g_steal_pointer (kept);
  return filter;
}

void
atk_name_filter_free (AtkNameFilter *filter)
{
  if (filter == NULL)
    return;
  g_array_unref (filter->patterns);
  g_free (filter);
}

gboolean
atk_name_filter_is_active (const AtkNameFilter *filter)
{
  return filter != NULL && filter->patterns->len > 0;
}

/* NSIDs: the pattern, or the pattern then '.' and more. */
static gboolean
nsid_matches (const Pattern *p, const char *name, gsize len)
{
  return len >= p->len && memcmp (name, p->base, p->len) == 0
         && (len == p->len || name[p->len] == '.');
}

/* Hosts: the pattern exactly, or (with "*.") something then '.' then the pattern. */
static gboolean
host_matches (const Pattern *p, const char *name, gsize len)
{
  if (len == p->len)
    return g_ascii_strncasecmp (name, p->base, len) == 0;
  return p->wildcard && len > p->len && name[len - p->len - 1] == '.'
         && g_ascii_strncasecmp (name + len - p->len, p->base, p->len) == 0;
}

static gboolean
any_matches (const AtkNameFilter *filter, const char *name, gsize len)
{
  for (guint i = 0; i < filter->patterns->len; i++)
    {
      const Pattern *p = &g_array_index (filter->patterns, Pattern, i);

      if (p->base == NULL)
        return TRUE;
      if (filter->kind == ATK_NAME_FILTER_NSIDS ? nsid_matches (p, name, len)
                                                : host_matches (p, name, len))
        return TRUE;
    }
  return FALSE;
}

gboolean
atk_name_filter_allows (const AtkNameFilter *filter, const char *name, gsize len)
{
  if (!atk_name_filter_is_active (filter))
    return TRUE;
  if (name == NULL)
    return !filter->watching;
  return any_matches (filter, name, len) == filter->watching;
}
