/* at-kafka: appending to a GString without a library call per piece.
 *
 * The decoder writes every message as many small pieces (literals, strings, numbers);
 * through g_string_append_len() each is a call into GLib. These grow the buffer only when
 * needed and otherwise write in place. atk_out_reserve() guarantees room for n bytes plus
 * the NUL terminator; atk_out_commit() sets the new end without terminating (the writers
 * of atk-cbor-json.c terminate once, at the end); atk_out_append() terminates.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>
#include <string.h>

G_BEGIN_DECLS

/* Makes room for n more bytes (and a NUL after them) and returns where they go. */
static inline char *
atk_out_reserve (GString *out, gsize n)
{
  if (G_UNLIKELY (out->len + n >= out->allocated_len))
    {
      gsize len = out->len;
      g_string_set_size (out, len + n);
      out->len = len;
    }
  return out->str + out->len;
}

static inline void
atk_out_commit (GString *out, char *end)
{
  out->len = (gsize)(end - out->str);
}

static inline void
atk_out_terminate (GString *out)
{
  out->str[out->len] = '\0';
}

/* g_string_append_len() for a known length, terminated. */
static inline void
atk_out_append (GString *out, const char *s, gsize n)
{
  char *w = atk_out_reserve (out, n);
  memcpy (w, s, n);
  w[n] = '\0';
  out->len += n;
}

static inline void
atk_out_append_c (GString *out, char c)
{
  char *w = atk_out_reserve (out, 1);
  w[0] = c;
  w[1] = '\0';
  out->len++;
}

/* Room for any gint64 in decimal (no terminator). */
#define ATK_OUT_INT_BYTES 20

/* value in decimal, written backwards so that it ends at end (ATK_OUT_INT_BYTES before it
 * are room enough); returns where it starts. No printf: this runs per message. */
static inline char *
atk_out_format_int (gint64 value, char *end)
{
  char *p = end;
  guint64 v = value < 0 ? -(guint64)value : (guint64)value;

  do
    *--p = (char)('0' + v % 10);
  while ((v /= 10) != 0);
  if (value < 0)
    *--p = '-';
  return p;
}

/* A JSON integer. */
static inline void
atk_out_append_int (GString *out, gint64 value)
{
  char buf[ATK_OUT_INT_BYTES];
  char *end = buf + sizeof buf;
  char *p = atk_out_format_int (value, end);

  atk_out_append (out, p, (gsize)(end - p));
}

/* For string literals only. */
#define ATK_OUT_LITERAL(out, lit) atk_out_append ((out), (lit), sizeof (lit) - 1)

G_END_DECLS
