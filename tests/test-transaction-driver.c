/* Unit tests for AtkTransactionDriver (src/kafka/atk-transaction-driver.c) with the fake
 * sink (atk-fake-sink.c): set-up with retries, periodic commits carrying the cursor record,
 * commits that time out or abort, fatal errors, shutdown. The committed cursor is what the
 * daemon persists, so a wrong one here is a lost or doubled event there.
 * SPDX-License-Identifier: MIT */
#include "atk-fake-sink.h"
#include "atk-test-util.h"
#include "atk-transaction-driver.h"

typedef struct
{
  AtkKafkaSink *sink;
  AtkTransactionDriver *txn;
  /* the owner's side */
  gboolean resume_ok;
  gboolean has_start;
  gint64 start;
  gboolean has_last;
  gint64 last;
  guint resumes, changes, commits, aborts, fatals;
  char *fatal_reason;
} Fixture;

static gboolean
hook_resume (gpointer data, gboolean *has_cursor, gint64 *cursor)
{
  Fixture *f = data;

  f->resumes++;
  if (!f->resume_ok)
    return FALSE;
  *has_cursor = f->has_start;
  *cursor = f->start;
  return TRUE;
}

static gboolean
hook_last_handed (gpointer data, gint64 *seq)
{
  Fixture *f = data;

  *seq = f->last;
  return f->has_last;
}

static void
hook_changed (gpointer data)
{
  ((Fixture *)data)->changes++;
}

static void
hook_committed (gpointer data)
{
  ((Fixture *)data)->commits++;
}

static void
hook_aborted (gpointer data)
{
  ((Fixture *)data)->aborts++;
}

static void
hook_fatal (gpointer data, const char *reason)
{
  Fixture *f = data;

  f->fatals++;
  g_free (f->fatal_reason);
  f->fatal_reason = g_strdup (reason);
}

static const AtkTransactionHooks hooks = {
  .resume = hook_resume,
  .last_handed = hook_last_handed,
  .changed = hook_changed,
  .committed = hook_committed,
  .aborted = hook_aborted,
  .fatal = hook_fatal,
};

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  AtkKafkaSinkOptions options = {
    .bootstrap_servers = "127.0.0.1:9",
    .topic = "events",
    .transactional_id = "txn-test",
  };

  f->sink = atk_kafka_sink_new (&options, NULL);
  f->resume_ok = TRUE;
  f->txn = atk_transaction_driver_new (f->sink, "txn-test", "events", &hooks, f);
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  atk_transaction_driver_free (f->txn);
  g_object_unref (f->sink);
  g_free (f->fatal_reason);
}

static gboolean
commits_at_least (gpointer data)
{
  Fixture *f = data;
  return atk_fake_sink_get_txn_calls (f->sink, "commit") >= 1;
}

static gboolean
is_open (gpointer data)
{
  Fixture *f = data;
  return atk_transaction_driver_is_open (f->txn);
}

/* Messages produced in the open transaction: they are in flight until the commit. */
static void
produce (Fixture *f, gint64 seq, guint n)
{
  for (guint i = 0; i < n; i++)
    {
      AtkMessage *message = atk_message_new ();
      message->key = g_strdup ("did:plc:a");
      g_string_assign (message->value, "{}");
      message->has_seq = TRUE;
      message->seq = seq;
      g_assert_true (atk_kafka_sink_produce (f->sink, message, NULL));
      atk_transaction_driver_count_message (f->txn);
    }
  f->has_last = TRUE;
  f->last = seq;
}

static void
test_setup_resumes_and_begins (Fixture *f, gconstpointer data)
{
  gint64 committed = -1;

  f->has_start = TRUE;
  f->start = 41;
  g_assert_false (atk_transaction_driver_is_open (f->txn));
  atk_transaction_driver_setup (f->txn);
  g_assert_cmpuint (atk_fake_sink_get_txn_calls (f->sink, "init"), ==, 1);
  g_assert_cmpuint (f->resumes, ==, 1);
  g_assert_cmpuint (atk_fake_sink_get_txn_calls (f->sink, "begin"), ==, 1);
  g_assert_true (atk_transaction_driver_is_open (f->txn));
  g_assert_cmpuint (f->changes, ==, 1);
  /* the resumed cursor is the committed one until a commit moves it */
  g_assert_true (atk_transaction_driver_get_committed (f->txn, &committed));
  g_assert_cmpint (committed, ==, 41);
}

static void
test_setup_without_cursor (Fixture *f, gconstpointer data)
{
  gint64 committed;

  atk_transaction_driver_setup (f->txn);
  g_assert_true (atk_transaction_driver_is_open (f->txn));
  g_assert_false (atk_transaction_driver_get_committed (f->txn, &committed));
}

/* init times out (broker away): nothing opens, and it is tried again on its own. */
static void
test_init_retried (Fixture *f, gconstpointer data)
{
  atk_fake_sink_script_txn (f->sink, "init", ATK_TXN_RETRY);
  atk_transaction_driver_setup (f->txn);
  g_assert_false (atk_transaction_driver_is_open (f->txn));
  g_assert_cmpuint (f->resumes, ==, 0);
  g_assert_true (atk_test_wait_until (NULL, is_open, f, 10000));
  g_assert_cmpuint (atk_fake_sink_get_txn_calls (f->sink, "init"), ==, 2);
  g_assert_cmpuint (f->resumes, ==, 1);
}

/* The owner cannot read the committed cursor yet: init is not repeated, resume is. */
static void
test_resume_retried (Fixture *f, gconstpointer data)
{
  f->resume_ok = FALSE;
  atk_transaction_driver_setup (f->txn);
  g_assert_false (atk_transaction_driver_is_open (f->txn));
  f->resume_ok = TRUE;
  g_assert_true (atk_test_wait_until (NULL, is_open, f, 10000));
  g_assert_cmpuint (atk_fake_sink_get_txn_calls (f->sink, "init"), ==, 1);
  g_assert_cmpuint (f->resumes, ==, 2);
}

/* Each tick commits what the transaction holds with the cursor record of the last seq
 * handed over, moves the committed cursor there and begins the next transaction. */
static void
test_commit_carries_cursor (Fixture *f, gconstpointer data)
{
  GPtrArray *records = atk_fake_sink_get_cursor_records (f->sink);
  gint64 committed = -1;

  atk_transaction_driver_setup (f->txn);
  atk_transaction_driver_start (f->txn);
  produce (f, 100, 3);
  g_assert_true (atk_test_wait_until (NULL, commits_at_least, f, 10000));
  g_assert_cmpuint (records->len, ==, 1);
  g_assert_cmpstr (records->pdata[0], ==, "events=100");
  g_assert_cmpuint (f->commits, ==, 1);
  g_assert_true (atk_transaction_driver_get_committed (f->txn, &committed));
  g_assert_cmpint (committed, ==, 100);
  g_assert_cmpuint (atk_kafka_sink_get_in_flight (f->sink), ==, 0);
  g_assert_cmpuint (atk_fake_sink_get_txn_calls (f->sink, "begin"), ==, 2);
  g_assert_true (atk_transaction_driver_is_open (f->txn));
}

/* Nothing new since the last commit: no empty transaction is committed. */
static void
test_no_empty_commit (Fixture *f, gconstpointer data)
{
  f->has_start = TRUE;
  f->start = 7;
  f->has_last = TRUE;
  f->last = 7;
  atk_transaction_driver_setup (f->txn);
  atk_transaction_driver_start (f->txn);
  atk_test_run_for (NULL, 3 * ATK_TXN_INTERVAL_MS);
  g_assert_cmpuint (atk_fake_sink_get_txn_calls (f->sink, "commit"), ==, 0);
  g_assert_cmpuint (atk_fake_sink_get_cursor_records (f->sink)->len, ==, 0);
  /* …but a newer seq handed over with no messages (all filtered) is news */
  f->last = 9;
  g_assert_true (atk_test_wait_until (NULL, commits_at_least, f, 10000));
  g_assert_cmpstr (atk_fake_sink_get_cursor_records (f->sink)->pdata[0], ==, "events=9");
}

static void
count_undelivered (AtkKafkaSink *sink, gint64 seq, gboolean has_seq, const char *why, guint *n)
{
  (*n)++;
}

/* An aborted commit: the committed cursor stays, the owner rewinds, a new one begins. */
static void
test_commit_aborted (Fixture *f, gconstpointer data)
{
  gint64 committed = -1;
  guint undelivered = 0;

  f->has_start = TRUE;
  f->start = 50;
  atk_transaction_driver_setup (f->txn);
  atk_transaction_driver_start (f->txn);
  g_signal_connect (f->sink, "undelivered", G_CALLBACK (count_undelivered), &undelivered);
  atk_fake_sink_script_txn (f->sink, "commit", ATK_TXN_ABORTED);
  produce (f, 60, 2);
  g_assert_true (atk_test_wait_until (NULL, commits_at_least, f, 10000));
  g_assert_cmpuint (f->aborts, ==, 1);
  g_assert_cmpuint (f->commits, ==, 0);
  g_assert_cmpuint (undelivered, ==, 2);
  g_assert_true (atk_transaction_driver_get_committed (f->txn, &committed));
  g_assert_cmpint (committed, ==, 50);
  g_assert_true (atk_transaction_driver_is_open (f->txn));
  g_assert_cmpuint (atk_fake_sink_get_txn_calls (f->sink, "begin"), ==, 2);
}

static gboolean
two_commits (gpointer data)
{
  Fixture *f = data;
  return atk_fake_sink_get_txn_calls (f->sink, "commit") >= 2;
}

/* A commit that times out stays pending: no transaction is open (the input must stop),
 * the next tick commits the same transaction (no second cursor record), and only then is
 * the cursor committed. */
static void
test_commit_retried (Fixture *f, gconstpointer data)
{
  gint64 committed = -1;
  guint changes_before;

  atk_transaction_driver_setup (f->txn);
  atk_transaction_driver_start (f->txn);
  atk_fake_sink_script_txn (f->sink, "commit", ATK_TXN_RETRY);
  produce (f, 70, 1);
  changes_before = f->changes;
  g_assert_true (atk_test_wait_until (NULL, commits_at_least, f, 10000));
  g_assert_false (atk_transaction_driver_is_open (f->txn));
  g_assert_cmpuint (f->changes, >, changes_before);
  g_assert_false (atk_transaction_driver_get_committed (f->txn, &committed));
  g_assert_true (atk_test_wait_until (NULL, two_commits, f, 10000));
  g_assert_cmpuint (atk_fake_sink_get_cursor_records (f->sink)->len, ==, 1);
  g_assert_true (atk_transaction_driver_get_committed (f->txn, &committed));
  g_assert_cmpint (committed, ==, 70);
  g_assert_true (atk_transaction_driver_is_open (f->txn));
}

static void
test_begin_fatal (Fixture *f, gconstpointer data)
{
  atk_fake_sink_script_txn (f->sink, "begin", ATK_TXN_FATAL);
  atk_transaction_driver_setup (f->txn);
  g_assert_cmpuint (f->fatals, ==, 1);
  g_assert_nonnull (f->fatal_reason);
  g_assert_false (atk_transaction_driver_is_open (f->txn));
}

/* After stop (the producer failed for good), the timer commits nothing. */
static void
test_stopped (Fixture *f, gconstpointer data)
{
  atk_transaction_driver_setup (f->txn);
  atk_transaction_driver_start (f->txn);
  produce (f, 5, 1);
  atk_transaction_driver_stop (f->txn);
  g_assert_false (atk_transaction_driver_is_open (f->txn));
  atk_test_run_for (NULL, 3 * ATK_TXN_INTERVAL_MS);
  g_assert_cmpuint (atk_fake_sink_get_txn_calls (f->sink, "commit"), ==, 0);
  atk_transaction_driver_finish (f->txn);
  g_assert_cmpuint (atk_fake_sink_get_txn_calls (f->sink, "commit"), ==, 0);
}

/* Shutdown commits the open transaction; nothing new is begun. */
static void
test_finish_commits (Fixture *f, gconstpointer data)
{
  gint64 committed = -1;

  atk_transaction_driver_setup (f->txn);
  produce (f, 80, 2);
  atk_transaction_driver_finish (f->txn);
  g_assert_cmpuint (atk_fake_sink_get_txn_calls (f->sink, "commit"), ==, 1);
  g_assert_cmpuint (atk_fake_sink_get_txn_calls (f->sink, "begin"), ==, 1);
  g_assert_true (atk_transaction_driver_get_committed (f->txn, &committed));
  g_assert_cmpint (committed, ==, 80);
  g_assert_false (atk_transaction_driver_is_open (f->txn));
  g_assert_cmpuint (atk_fake_sink_get_txn_calls (f->sink, "abort"), ==, 0);
}

/* Shutdown while the commit cannot complete: the transaction is aborted, not left open,
 * and the committed cursor does not move. */
static void
test_finish_aborts_when_commit_fails (Fixture *f, gconstpointer data)
{
  gint64 committed = -1;

  f->has_start = TRUE;
  f->start = 10;
  atk_transaction_driver_setup (f->txn);
  produce (f, 90, 1);
  atk_fake_sink_script_txn (f->sink, "commit", ATK_TXN_RETRY);
  atk_transaction_driver_finish (f->txn);
  g_assert_cmpuint (atk_fake_sink_get_txn_calls (f->sink, "abort"), ==, 1);
  g_assert_true (atk_transaction_driver_get_committed (f->txn, &committed));
  g_assert_cmpint (committed, ==, 10);
  g_assert_false (atk_transaction_driver_is_open (f->txn));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func)                                                                            \
  g_test_add ("/transaction-driver/" path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
  ADD ("setup-resumes-and-begins", test_setup_resumes_and_begins);
  ADD ("setup-without-cursor", test_setup_without_cursor);
  ADD ("init-retried", test_init_retried);
  ADD ("resume-retried", test_resume_retried);
  ADD ("commit-carries-cursor", test_commit_carries_cursor);
  ADD ("no-empty-commit", test_no_empty_commit);
  ADD ("commit-aborted", test_commit_aborted);
  ADD ("commit-retried", test_commit_retried);
  ADD ("begin-fatal", test_begin_fatal);
  ADD ("stopped", test_stopped);
  ADD ("finish-commits", test_finish_commits);
  ADD ("finish-aborts-when-commit-fails", test_finish_aborts_when_commit_fails);
  return g_test_run ();
}
