/* libFuzzer target: one input = one Tap event (the JSON text of one /channel message),
 * through the Tap event parser in both output shapes and with a collection filter, as the
 * daemon runs it. Invariants: success and error agree; a failure appends nothing; every
 * message is one valid JSON object (strict checker, not the parser's own code) carrying the
 * event's id as its seq; the id peek agrees with the full parse.
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "atk-fuzz-json.h"
#include "atk-tap-event.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static gboolean
only_feed (const char *collection, gpointer user_data)
{
  return g_str_has_prefix (collection, "app.bsky.feed.");
}

static void
run (const char *text, gsize len, const AtkTapEventOptions *options)
{
  g_autoptr (GPtrArray) messages
      = g_ptr_array_new_with_free_func ((GDestroyNotify)atk_message_free);
  AtkTapEventResult result = { 0 };
  g_autoptr (GError) error = NULL;
  gboolean ok = atk_tap_event_transform (text, len, options, G_GINT64_CONSTANT (1704110400000000),
                                         messages, &result, &error);
  guint64 peeked = 0;

  if (ok != (error == NULL))
    abort ();
  if (!ok)
    {
      if (messages->len != 0)
        abort ();
      return;
    }
  if (result.n_messages != messages->len || (result.filtered && messages->len != 0))
    abort ();
  if (!atk_tap_event_peek_id (text, len, &peeked) || peeked != result.id)
    abort ();
  for (guint i = 0; i < messages->len; i++)
    {
      const AtkMessage *message = messages->pdata[i];
      if (!message->has_seq || (guint64)message->seq != result.id)
        abort ();
      if (!atk_fuzz_json_object_valid (message->value->str, message->value->len))
        abort ();
    }
}

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  /* An exact-size copy, so that a read past the end is caught. */
  char *text = g_memdup2 (data, size);
  const AtkTapEventOptions options[] = {
    { FALSE, NULL, NULL },
    { TRUE, NULL, NULL },
    { FALSE, only_feed, NULL },
  };

  for (guint i = 0; i < G_N_ELEMENTS (options); i++)
    run (text, size, &options[i]);
  g_free (text);
  return 0;
}
