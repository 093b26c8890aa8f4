/* at-kafka: the sink's Kafka transactions (with --transactional-id).
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-sink"

#include "atk-kafka-sink.h"
#include "atk-kafka-sink-private.h"

#include "atk-error.h"

/* Turns a librdkafka transaction error into a status and a GError; takes txn_error. */
static AtkTxnStatus
txn_status (AtkKafkaSink *self, rd_kafka_error_t *txn_error, const char *what, GError **error)
{
  AtkTxnStatus status;

  if (txn_error == NULL)
    return ATK_TXN_OK;
  if (rd_kafka_error_is_fatal (txn_error))
    status = ATK_TXN_FATAL;
  else if (rd_kafka_error_txn_requires_abort (txn_error))
    status = ATK_TXN_ABORTED;
  else
    status = ATK_TXN_RETRY;
  g_set_error (error, ATK_ERROR, ATK_ERROR_KAFKA, "Kafka transaction %s: %s", what,
               rd_kafka_error_string (txn_error));
  if (status == ATK_TXN_FATAL)
    atk_kafka_sink_mark_fatal (self, rd_kafka_error_string (txn_error));
  rd_kafka_error_destroy (txn_error);
  return status;
}

AtkTxnStatus
atk_kafka_sink_init_transactions (AtkKafkaSink *self, guint timeout_ms, GError **error)
{
  g_return_val_if_fail (ATK_IS_KAFKA_SINK (self) && self->transactional, ATK_TXN_FATAL);
  return txn_status (self, rd_kafka_init_transactions (self->rk, (int)timeout_ms), "init", error);
}

AtkTxnStatus
atk_kafka_sink_begin_transaction (AtkKafkaSink *self, GError **error)
{
  g_return_val_if_fail (ATK_IS_KAFKA_SINK (self) && self->transactional, ATK_TXN_FATAL);
  AtkTxnStatus status = txn_status (self, rd_kafka_begin_transaction (self->rk), "begin", error);

  if (status == ATK_TXN_OK)
    atk_kafka_sink_hold_pump (self); /* what waited outside a transaction */
  return status;
}

AtkTxnStatus
atk_kafka_sink_abort_transaction (AtkKafkaSink *self, guint timeout_ms, GError **error)
{
  AtkTxnStatus status;

  g_return_val_if_fail (ATK_IS_KAFKA_SINK (self) && self->transactional, ATK_TXN_FATAL);
  atk_kafka_sink_hold_drop (self, TRUE); /* they were in this transaction */
  status
      = txn_status (self, rd_kafka_abort_transaction (self->rk, (int)timeout_ms), "abort", error);
  atk_kafka_sink_drain_queues (self); /* the purged messages' reports */
  return status == ATK_TXN_OK ? ATK_TXN_ABORTED : status;
}

AtkTxnStatus
atk_kafka_sink_commit_transaction (AtkKafkaSink *self, guint timeout_ms, GError **error)
{
  AtkTxnStatus status;

  g_return_val_if_fail (ATK_IS_KAFKA_SINK (self) && self->transactional, ATK_TXN_FATAL);
  /* Held messages (atk-kafka-sink-hold.c) belong to this transaction: in first. If they
   * cannot be, the transaction is aborted and produced again. */
  if (!atk_kafka_sink_hold_flush (self, timeout_ms))
    {
      g_set_error_literal (error, ATK_ERROR, ATK_ERROR_KAFKA,
                           "Kafka transaction commit: librdkafka's queue stayed full");
      return atk_kafka_sink_abort_transaction (self, timeout_ms, NULL) == ATK_TXN_FATAL
                 ? ATK_TXN_FATAL
                 : ATK_TXN_ABORTED;
    }
  /* commit flushes, and serves delivery reports while it waits: they run in here. */
  status
      = txn_status (self, rd_kafka_commit_transaction (self->rk, (int)timeout_ms), "commit", error);
  atk_kafka_sink_drain_queues (self);
  if (status != ATK_TXN_ABORTED)
    return status;
  g_debug ("aborting: %s", (*error)->message);
  return atk_kafka_sink_abort_transaction (self, timeout_ms, NULL) == ATK_TXN_FATAL
             ? ATK_TXN_FATAL
             : ATK_TXN_ABORTED;
}
