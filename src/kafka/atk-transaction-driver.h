/* at-kafka: Kafka transactions for --transactional-id. Messages and the cursor record are
 * committed together every ATK_TXN_INTERVAL_MS; the durable cursor is the last committed
 * one. The driver owns the transaction's life cycle (init once the topics exist, fencing
 * older instances; begin; periodic commit with a short timeout, retried on the next tick;
 * the last commit at shutdown) and tells its owner what happened through hooks.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

#include "atk-kafka-sink.h"

G_BEGIN_DECLS

#define ATK_TXN_INTERVAL_MS 500

typedef struct
{
  /* Transactions are initialised: the committed cursor to resume from (the owner reads the
   * Kafka store and repositions its input). FALSE: Kafka could not be asked, retry. */
  gboolean (*resume) (gpointer user_data, gboolean *has_cursor, gint64 *cursor);
  /* The last seq whose messages were all handed to the sink; FALSE if none. */
  gboolean (*last_handed) (gpointer user_data, gint64 *seq);
  /* A transaction opened or closed: the input may run only while one is open. */
  void (*changed) (gpointer user_data);
  /* The committed cursor moved: persist it. */
  void (*committed) (gpointer user_data);
  /* The transaction was aborted: produce again from the committed cursor. */
  void (*aborted) (gpointer user_data);
  /* The producer cannot go on (begin failed). */
  void (*fatal) (gpointer user_data, const char *reason);
} AtkTransactionHooks;

typedef struct _AtkTransactionDriver AtkTransactionDriver;

/* Borrows sink and transactional_id; cursor_key is the cursor record's key. */
AtkTransactionDriver *atk_transaction_driver_new (AtkKafkaSink *sink, const char *transactional_id,
                                                  const char *cursor_key,
                                                  const AtkTransactionHooks *hooks,
                                                  gpointer user_data);
void atk_transaction_driver_free (AtkTransactionDriver *self);

/* Starts the commit timer. */
void atk_transaction_driver_start (AtkTransactionDriver *self);
/* The topics exist: init (fencing older instances), resume, begin. Retries on its own. */
void atk_transaction_driver_setup (AtkTransactionDriver *self);
/* One message was produced in the open transaction. */
void atk_transaction_driver_count_message (AtkTransactionDriver *self);
gboolean atk_transaction_driver_is_open (AtkTransactionDriver *self);
/* Commits the open, still empty transaction with cursor as its record (a group's first
 * leader anchors its start before producing), waiting up to timeout_ms, and begins the
 * next. FALSE if it was not committed (a failed commit is retried by the timer; the owner
 * hears of a closed transaction through "changed" then, not from here). */
gboolean atk_transaction_driver_anchor (AtkTransactionDriver *self, gint64 cursor,
                                        guint timeout_ms);
/* The last committed cursor; FALSE if none. */
gboolean atk_transaction_driver_get_committed (AtkTransactionDriver *self, gint64 *cursor);
/* The producer failed for good: nothing more is begun or committed. */
void atk_transaction_driver_stop (AtkTransactionDriver *self);
/* Shutdown: commits the open transaction if it can, else aborts it. */
void atk_transaction_driver_finish (AtkTransactionDriver *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AtkTransactionDriver, atk_transaction_driver_free)

G_END_DECLS
