/* at-kafka: the glue between an AtkWsClient and the AtkInput that owns it.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-input"

#include "atk-ws-input.h"

typedef struct
{
  AtkInput *input; /* not owned: the input owns the client */
  AtkWsInputLogFunc log;
} Forward;

static void
on_message (gpointer user_data, GBytes *message)
{
  atk_input_emit_payload (user_data, message);
}

static void
on_connection_error (AtkWsClient *client, const char *message, gpointer user_data)
{
  Forward *forward = user_data;

  forward->log (forward->input, G_LOG_LEVEL_MESSAGE, message);
  atk_input_emit_connection_error (forward->input, message);
}

void
atk_ws_input_forward (AtkWsClient *client, AtkInput *input, AtkWsInputLogFunc log)
{
  Forward *forward = g_new0 (Forward, 1);

  forward->input = input;
  forward->log = log;
  atk_ws_client_set_message_func (client, on_message, input);
  g_signal_connect_data (client, "connection-error", G_CALLBACK (on_connection_error), forward,
                         (GClosureNotify)(void (*) (void))g_free, 0);
}

void
atk_ws_input_reconnect (AtkWsClient *client, AtkInput *input, AtkWsInputLogFunc log)
{
  if (atk_ws_client_get_state (client) == ATK_SOURCE_STOPPED)
    return;
  log (input, G_LOG_LEVEL_MESSAGE, "reconnecting on request");
  atk_ws_client_reconnect (client);
}

void
atk_ws_input_release (AtkWsClient **client, AtkInput *input)
{
  /* Quietly: no signal of the input's after its owner let go. */
  if (*client == NULL)
    return;
  atk_ws_client_set_message_func (*client, NULL, NULL);
  g_signal_handlers_disconnect_by_data (*client, input);
  g_signal_handlers_disconnect_matched (*client, G_SIGNAL_MATCH_FUNC, 0, 0, NULL,
                                        G_CALLBACK (on_connection_error), NULL);
  atk_ws_client_stop (*client);
  g_clear_object (client);
}
