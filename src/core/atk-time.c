/* at-kafka: the few calendar computations the output needs, without GDateTime on the hot
 * path (a hand-written RFC 3339 parser is about three times faster). Pure.
 * SPDX-License-Identifier: MIT */
#include "atk-time.h"

/* Snowflake layout (Osprey's): ms since 2015-01-01 above bit 22. */
#define SNOWFLAKE_EPOCH_MS G_GINT64_CONSTANT (1420070400000)
#define SNOWFLAKE_MS_MASK ((G_GUINT64_CONSTANT (1) << 41) - 1)

/* Days since 1970-01-01 of a proleptic Gregorian date, by the era arithmetic of H. Hinnant's
 * published "days_from_civil" algorithm. */
static gint64
days_from_civil (gint64 y, guint m, guint d)
{
  y -= m <= 2;
  gint64 era = (y >= 0 ? y : y - 399) / 400;
  guint yoe = (guint)(y - era * 400);
  guint doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  guint doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (gint64)doe - 719468;
}

static void
civil_from_days (gint64 z, gint64 *year, guint *month, guint *day)
{
  z += 719468;
  gint64 era = (z >= 0 ? z : z - 146096) / 146097;
  guint doe = (guint)(z - era * 146097);
  guint yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  guint doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  guint mp = (5 * doy + 2) / 153;

  *day = doy - (153 * mp + 2) / 5 + 1;
  *month = mp < 10 ? mp + 3 : mp - 9;
  *year = (gint64)yoe + era * 400 + (*month <= 2);
}

static gboolean
is_leap_year (guint year)
{
  return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static guint
days_in_month (guint year, guint month)
{
  static const guint8 days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
  return month == 2 && is_leap_year (year) ? 29 : days[month - 1];
}

/* Reads exactly n digits at *p. */
static gboolean
read_digits (const char **p, const char *end, guint n, guint *out)
{
  guint value = 0;

  if ((gsize)(end - *p) < n)
    return FALSE;
  for (guint i = 0; i < n; i++)
    {
      char c = (*p)[i];
      if (c < '0' || c > '9')
        return FALSE;
      value = value * 10 + (guint)(c - '0');
    }
  *p += n;
  *out = value;
  return TRUE;
}

static gboolean
expect_char (const char **p, const char *end, char c)
{
  if (*p >= end || **p != c)
    return FALSE;
  (*p)++;
  return TRUE;
}

/* Parses "±hh:mm" or "Z" into an offset in minutes east of UTC. */
static gboolean
parse_offset (const char **p, const char *end, gint *minutes)
{
  guint hh, mm;
  char sign;

  if (*p < end && (**p == 'Z' || **p == 'z'))
    {
      (*p)++;
      *minutes = 0;
      return TRUE;
    }
  if (*p >= end || (**p != '+' && **p != '-'))
    return FALSE;
  sign = *(*p)++;
  if (!read_digits (p, end, 2, &hh) || !expect_char (p, end, ':') || !read_digits (p, end, 2, &mm)
      || hh > 23 || mm > 59)
    return FALSE;
  *minutes = (gint)(hh * 60 + mm) * (sign == '-' ? -1 : 1);
  return TRUE;
}

/* RFC 3339 date-time, by hand: GDateTime would allocate per event on the hot path.
 * Fractions beyond milliseconds are truncated; a leap second (:60) counts as the next one. */
gboolean
atk_parse_datetime_ms (const char *text, gsize len, gint64 *out_ms)
{
  const char *p = text;
  const char *end = text + len;
  guint year, month, day, hour, minute, second, ms = 0;
  gint offset_min;
  gint64 seconds;

  if (text == NULL)
    return FALSE;
  if (!read_digits (&p, end, 4, &year) || !expect_char (&p, end, '-')
      || !read_digits (&p, end, 2, &month) || !expect_char (&p, end, '-')
      || !read_digits (&p, end, 2, &day))
    return FALSE;
  if (p >= end || (*p != 'T' && *p != 't' && *p != ' '))
    return FALSE;
  p++;
  if (!read_digits (&p, end, 2, &hour) || !expect_char (&p, end, ':')
      || !read_digits (&p, end, 2, &minute) || !expect_char (&p, end, ':')
      || !read_digits (&p, end, 2, &second))
    return FALSE;
  if (p < end && *p == '.')
    {
      guint n = 0;
      for (p++; p < end && *p >= '0' && *p <= '9'; p++, n++)
        if (n < 3)
          ms = ms * 10 + (guint)(*p - '0');
      if (n == 0)
        return FALSE;
      for (; n < 3; n++)
        ms *= 10;
    }
  if (!parse_offset (&p, end, &offset_min) || p != end)
    return FALSE;
  if (month < 1 || month > 12 || day < 1 || day > days_in_month (year, month) || hour > 23
      || minute > 59 || second > 60)
    return FALSE;

  seconds = days_from_civil (year, month, day) * 86400 + hour * 3600 + minute * 60 + second
            - (gint64)offset_min * 60;
  *out_ms = seconds * 1000 + ms;
  return TRUE;
}

gsize
atk_format_rfc3339_utc (gint64 unix_seconds, char *buf, gsize size)
{
  gint64 year;
  gint64 day_sec = unix_seconds % 86400;
  guint month, day;
  int n;

  if (day_sec < 0)
    day_sec += 86400;
  civil_from_days ((unix_seconds - day_sec) / 86400, &year, &month, &day);
  n = g_snprintf (buf, size, "%04" G_GINT64_FORMAT "-%02u-%02uT%02u:%02u:%02uZ", year, month, day,
                  (guint)(day_sec / 3600), (guint)(day_sec / 60 % 60), (guint)(day_sec % 60));
  return (gsize)CLAMP (n, 0, (int)size - 1);
}

gint64
atk_snowflake_for_event (gint64 event_time_ms, gint64 seq, guint op_index)
{
  guint64 ms
      = event_time_ms > SNOWFLAKE_EPOCH_MS ? (guint64)(event_time_ms - SNOWFLAKE_EPOCH_MS) : 0;

  return (gint64)(((ms & SNOWFLAKE_MS_MASK) << 22) | (((guint64)seq & 0x3fff) << 8)
                  | (op_index & 0xff));
}
