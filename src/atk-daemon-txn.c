/* at-kafka: the daemon with --transactional-id: how it answers its transaction driver
 * (atk-transaction-driver.c). Messages and the cursor record are committed together; the
 * driver asks here where to resume (the committed cursor), what was last handed to the sink,
 * and tells when a transaction opened or closed (the input may run only while one is open),
 * committed (the cursor is saved), aborted (the pipeline rewinds to the committed cursor) or
 * broke for good (the daemon stops: "fatal").
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka"

#include "atk-daemon-private.h"

/* The committed cursor becomes the start: the higher of the state file's and Kafka's. */
static gboolean
txn_resume (gpointer user_data, gboolean *has_cursor, gint64 *cursor)
{
  AtkDaemon *self = user_data;

  *has_cursor = atk_pipeline_get_acked_cursor (self->pipeline, cursor);
  if (self->config->cursor_mode == ATK_CURSOR_STORED)
    {
      g_autoptr (GError) error = NULL;

      switch (atk_cursor_keeper_merge_kafka (self->keeper, has_cursor, cursor, &error))
        {
        case ATK_CURSOR_MERGE_UNREACHABLE:
          return FALSE;
        case ATK_CURSOR_MERGE_REFUSED:
          g_warning ("%s", error->message);
          atk_daemon_on_sink_fatal (self->sink, error->message, self);
          return FALSE;
        case ATK_CURSOR_MERGE_OK:
        default:
          break;
        }
      g_message (*has_cursor ? "Resuming after committed seq %" G_GINT64_FORMAT
                             : "No committed cursor: starting at the live tip",
                 *cursor);
    }
  atk_pipeline_reset_cursor (self->pipeline, *has_cursor, *cursor);
  return TRUE;
}

static gboolean
txn_last_handed (gpointer user_data, gint64 *seq)
{
  AtkDaemon *self = user_data;
  return atk_pipeline_get_last_handed (self->pipeline, seq);
}

static void
txn_changed (gpointer user_data)
{
  atk_daemon_update_input_allowed (user_data);
}

static void
txn_committed (gpointer user_data)
{
  atk_daemon_save_cursor (user_data);
}

static void
txn_aborted (gpointer user_data)
{
  atk_daemon_rewind_to_durable (user_data, "Kafka transaction aborted");
}

static void
txn_fatal (gpointer user_data, const char *reason)
{
  AtkDaemon *self = user_data;
  atk_daemon_on_sink_fatal (self->sink, reason, self);
}

static const AtkTransactionHooks txn_hooks = {
  .resume = txn_resume,
  .last_handed = txn_last_handed,
  .changed = txn_changed,
  .committed = txn_committed,
  .aborted = txn_aborted,
  .fatal = txn_fatal,
};

void
atk_daemon_txn_build (AtkDaemon *self)
{
  if (self->config->transactional_id != NULL)
    self->txn = atk_transaction_driver_new (self->sink, self->config->transactional_id,
                                            self->config->output_topic, &txn_hooks, self);
}
