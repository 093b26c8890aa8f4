/* SPDX-License-Identifier: MIT */
#include "atk-message.h"

AtkMessage *
atk_message_new (void)
{
  AtkMessage *message = g_new0 (AtkMessage, 1);
  message->value = g_string_sized_new (512);
  return message;
}

void
atk_message_free (AtkMessage *message)
{
  if (message == NULL)
    return;
  g_free (message->key);
  g_string_free (message->value, TRUE);
  g_free (message->collection);
  g_free (message);
}
