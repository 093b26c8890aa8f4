/* SPDX-License-Identifier: MIT */
#include "atk-message.h"

AtkMessage *
atk_message_new_sized (gsize size)
{
  AtkMessage *message = g_new0 (AtkMessage, 1);
  message->value = g_string_sized_new (size);
  return message;
}

AtkMessage *
atk_message_new (void)
{
  return atk_message_new_sized (512);
}

void
atk_message_free (AtkMessage *message)
{
  if (message == NULL)
    return;
  g_free (message->key);
  if (message->value != NULL) /* NULL once a sink took it */
    g_string_free (message->value, TRUE);
  g_free (message->collection);
  g_free (message);
}
