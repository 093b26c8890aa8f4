/* at-kafka: Kafka transactions (see the header).
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-sink"

#include "atk-transaction-driver.h"

#include "atk-error.h"

/* Bounds on the blocking transaction calls. A commit that times out (Kafka is away) is
 * simply retried on the next tick, so the loop is never held for long; at shutdown the
 * commit may take longer. */
#define TXN_TIMEOUT_MS 5000
#define TXN_COMMIT_TIMEOUT_MS 1000
#define TXN_RETRY_MS 1000

struct _AtkTransactionDriver
{
  AtkKafkaSink *sink;
  const char *transactional_id;
  char *cursor_key;
  AtkTransactionHooks hooks;
  gpointer user_data;

  gboolean stopped; /* the producer failed for good */
  gboolean initialized;
  gboolean open;
  gboolean commit_pending; /* a commit timed out: it must be retried before anything else */
  guint messages;          /* produced in the open transaction */
  gboolean has_committed;
  gint64 committed;
  gint64 pending;
  guint timer_id;
  guint retry_id;
  guint64 commits;
  gdouble commit_ms_total;
  gdouble commit_ms_max;
};

AtkTransactionDriver *
atk_transaction_driver_new (AtkKafkaSink *sink, const char *transactional_id,
                            const char *cursor_key, const AtkTransactionHooks *hooks,
                            gpointer user_data)
{
  AtkTransactionDriver *self = g_new0 (AtkTransactionDriver, 1);

  self->sink = sink;
  self->transactional_id = transactional_id;
  self->cursor_key = g_strdup (cursor_key);
  self->hooks = *hooks;
  self->user_data = user_data;
  return self;
}

void
atk_transaction_driver_free (AtkTransactionDriver *self)
{
  if (self == NULL)
    return;
  g_clear_handle_id (&self->timer_id, g_source_remove);
  g_clear_handle_id (&self->retry_id, g_source_remove);
  g_free (self->cursor_key);
  g_free (self);
}

static void txn_setup (AtkTransactionDriver *self);

static gboolean
on_retry (gpointer user_data)
{
  AtkTransactionDriver *self = user_data;

  self->retry_id = 0;
  txn_setup (self);
  return G_SOURCE_REMOVE;
}

static void
retry_later (AtkTransactionDriver *self, const char *what, const GError *error)
{
  g_message ("%s: %s; retrying in %u ms", what, error->message, TXN_RETRY_MS);
  g_clear_handle_id (&self->retry_id, g_source_remove);
  self->retry_id = g_timeout_add (TXN_RETRY_MS, on_retry, self);
}

static void
txn_begin (AtkTransactionDriver *self)
{
  g_autoptr (GError) error = NULL;

  if (atk_kafka_sink_begin_transaction (self->sink, &error) != ATK_TXN_OK)
    {
      self->hooks.fatal (self->user_data, error->message);
      return;
    }
  self->open = TRUE;
  self->messages = 0;
  self->hooks.changed (self->user_data);
}

/* init_transactions once: FALSE when it has to be retried (or the producer is done). */
static gboolean
txn_init (AtkTransactionDriver *self)
{
  g_autoptr (GError) error = NULL;
  gint64 t0 = g_get_monotonic_time ();

  if (self->initialized)
    return TRUE;
  switch (atk_kafka_sink_init_transactions (self->sink, TXN_TIMEOUT_MS, &error))
    {
    case ATK_TXN_OK:
      self->initialized = TRUE;
      g_message ("Kafka transactions ready (transactional.id %s) in %" G_GINT64_FORMAT " ms",
                 self->transactional_id, (g_get_monotonic_time () - t0) / 1000);
      return TRUE;
    case ATK_TXN_FATAL:
      return FALSE; /* the sink's "fatal" was emitted */
    default:
      retry_later (self, "Cannot initialise Kafka transactions", error);
      return FALSE;
    }
}

/* Once the topics exist: fence older instances, read the committed cursor, begin. */
static void
txn_setup (AtkTransactionDriver *self)
{
  g_autoptr (GError) error = NULL;
  gboolean has_cursor = FALSE;
  gint64 cursor = 0;

  if (!txn_init (self))
    return;
  if (!self->hooks.resume (self->user_data, &has_cursor, &cursor))
    {
      g_set_error_literal (&error, ATK_ERROR, ATK_ERROR_KAFKA, "cannot read it");
      retry_later (self, "No committed cursor from Kafka", error);
      return;
    }
  self->has_committed = has_cursor;
  self->committed = cursor;
  txn_begin (self);
}

void
atk_transaction_driver_setup (AtkTransactionDriver *self)
{
  txn_setup (self);
}

static void
note_commit_time (AtkTransactionDriver *self, gint64 t0)
{
  gdouble ms = (g_get_monotonic_time () - t0) / 1000.0;

  self->commits++;
  self->commit_ms_total += ms;
  self->commit_ms_max = MAX (self->commit_ms_max, ms);
  g_debug ("transaction committed in %.1f ms", ms);
}

static AtkTxnStatus
commit_now (AtkTransactionDriver *self, guint timeout_ms)
{
  g_autoptr (GError) error = NULL;
  gint64 t0 = g_get_monotonic_time ();
  AtkTxnStatus status = atk_kafka_sink_commit_transaction (self->sink, timeout_ms, &error);

  self->open = FALSE;
  self->commit_pending = status == ATK_TXN_RETRY;
  if (status == ATK_TXN_OK)
    {
      note_commit_time (self, t0);
      self->has_committed = TRUE;
      self->committed = self->pending;
      self->hooks.committed (self->user_data);
    }
  else if (status != ATK_TXN_FATAL)
    g_message ("%s", error->message);
  return status;
}

/* Whether the open transaction holds anything new: messages, or a newer seq to record. */
static gboolean
has_news (AtkTransactionDriver *self, gint64 *last)
{
  if (!self->hooks.last_handed (self->user_data, last))
    return FALSE;
  return self->messages > 0 || !self->has_committed || *last != self->committed;
}

/* Commits the open transaction with its cursor record: the last seq handed to the sink,
 * whose messages are all in this transaction or an earlier one. */
static void
txn_commit (AtkTransactionDriver *self, gboolean begin_next, guint timeout_ms)
{
  g_autoptr (GError) error = NULL;
  AtkTxnStatus status;

  if (!self->commit_pending)
    {
      if (!self->open || !has_news (self, &self->pending))
        return;
      if (!atk_kafka_sink_produce_cursor (self->sink, self->cursor_key, self->pending, &error))
        g_message ("%s", error->message); /* commit then fails, and aborts */
    }
  status = commit_now (self, timeout_ms);
  if (status == ATK_TXN_ABORTED)
    self->hooks.aborted (self->user_data);
  if (begin_next && (status == ATK_TXN_OK || status == ATK_TXN_ABORTED))
    txn_begin (self);
  self->hooks.changed (self->user_data);
}

gboolean
atk_transaction_driver_anchor (AtkTransactionDriver *self, gint64 cursor, guint timeout_ms)
{
  g_autoptr (GError) error = NULL;
  AtkTxnStatus status;

  if (self->stopped || !self->open || self->commit_pending || self->messages > 0)
    return FALSE;
  if (!atk_kafka_sink_produce_cursor (self->sink, self->cursor_key, cursor, &error))
    {
      g_message ("%s", error->message);
      return FALSE;
    }
  self->pending = cursor;
  status = commit_now (self, timeout_ms);
  /* Aborted: nothing was in it but the record; the caller starts over. */
  if (status == ATK_TXN_OK || status == ATK_TXN_ABORTED)
    txn_begin (self);
  return status == ATK_TXN_OK;
}

static gboolean
on_timer (gpointer user_data)
{
  AtkTransactionDriver *self = user_data;

  if (!self->stopped)
    txn_commit (self, TRUE, TXN_COMMIT_TIMEOUT_MS);
  return G_SOURCE_CONTINUE;
}

void
atk_transaction_driver_start (AtkTransactionDriver *self)
{
  if (self->timer_id == 0)
    self->timer_id = g_timeout_add (ATK_TXN_INTERVAL_MS, on_timer, self);
}

void
atk_transaction_driver_count_message (AtkTransactionDriver *self)
{
  self->messages++;
}

gboolean
atk_transaction_driver_is_open (AtkTransactionDriver *self)
{
  return self->open;
}

gboolean
atk_transaction_driver_get_committed (AtkTransactionDriver *self, gint64 *cursor)
{
  *cursor = self->committed;
  return self->has_committed;
}

void
atk_transaction_driver_stop (AtkTransactionDriver *self)
{
  self->stopped = TRUE;
  self->open = FALSE;
}

void
atk_transaction_driver_finish (AtkTransactionDriver *self)
{
  if (self->stopped || !(self->open || self->commit_pending))
    return;
  txn_commit (self, FALSE, TXN_TIMEOUT_MS);
  if (self->commit_pending)
    atk_kafka_sink_abort_transaction (self->sink, TXN_TIMEOUT_MS, NULL);
  self->open = self->commit_pending = FALSE;
  if (self->commits > 0)
    g_message ("%" G_GUINT64_FORMAT " transactions committed, %.1f ms on average, %.1f ms at most",
               self->commits, self->commit_ms_total / self->commits, self->commit_ms_max);
}
