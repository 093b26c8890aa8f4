/* Unit tests for AtkAckTable (src/core/atk-ack-table.c): Tap mode acks an event id only
 * once every message it produced is in Kafka, never after a failure, and at once when it
 * produced none. An ack too early loses the event (Tap will not send it again); an ack
 * never sent makes Tap redeliver it forever.
 * SPDX-License-Identifier: MIT */
#include "atk-ack-table.h"

static void
test_no_messages_acks_at_once (void)
{
  g_autoptr (AtkAckTable) table = atk_ack_table_new ();

  g_assert_true (atk_ack_table_add (table, 1, 0));
  g_assert_cmpuint (atk_ack_table_get_pending (table), ==, 0);
  /* nothing to settle for it afterwards */
  g_assert_false (atk_ack_table_settle (table, 1, TRUE));
}

static void
test_ack_after_last_message (void)
{
  g_autoptr (AtkAckTable) table = atk_ack_table_new ();

  g_assert_false (atk_ack_table_add (table, 7, 3));
  g_assert_cmpuint (atk_ack_table_get_pending (table), ==, 1);
  g_assert_false (atk_ack_table_settle (table, 7, TRUE));
  g_assert_false (atk_ack_table_settle (table, 7, TRUE));
  g_assert_cmpuint (atk_ack_table_get_pending (table), ==, 1);
  g_assert_true (atk_ack_table_settle (table, 7, TRUE));
  g_assert_cmpuint (atk_ack_table_get_pending (table), ==, 0);
  /* settled once: a stray report for it acks nothing more */
  g_assert_false (atk_ack_table_settle (table, 7, TRUE));
}

/* One failed message (first, middle or last) and the id is never acked; it is forgotten
 * once all its messages are settled. */
static void
test_failure_never_acked (void)
{
  for (guint failed = 0; failed < 3; failed++)
    {
      g_autoptr (AtkAckTable) table = atk_ack_table_new ();
      gboolean acked = FALSE;

      g_assert_false (atk_ack_table_add (table, 9, 3));
      for (guint i = 0; i < 3; i++)
        acked |= atk_ack_table_settle (table, 9, i != failed);
      g_assert_false (acked);
      g_assert_cmpuint (atk_ack_table_get_pending (table), ==, 0);
    }
}

/* Ids are independent, in any order of settling. */
static void
test_interleaved_ids (void)
{
  g_autoptr (AtkAckTable) table = atk_ack_table_new ();

  g_assert_false (atk_ack_table_add (table, 1, 2));
  g_assert_false (atk_ack_table_add (table, 2, 1));
  g_assert_true (atk_ack_table_add (table, 3, 0));
  g_assert_false (atk_ack_table_add (table, G_MAXUINT64, 1));
  g_assert_cmpuint (atk_ack_table_get_pending (table), ==, 3);
  g_assert_true (atk_ack_table_settle (table, 2, TRUE));
  g_assert_false (atk_ack_table_settle (table, 1, FALSE));
  g_assert_true (atk_ack_table_settle (table, G_MAXUINT64, TRUE));
  g_assert_false (atk_ack_table_settle (table, 1, TRUE));
  g_assert_cmpuint (atk_ack_table_get_pending (table), ==, 0);
}

/* A redelivered id while its first delivery is still on its way: its messages add up, and
 * the ack waits for all of them. */
static void
test_redelivered_id_adds_up (void)
{
  g_autoptr (AtkAckTable) table = atk_ack_table_new ();

  g_assert_false (atk_ack_table_add (table, 5, 2));
  g_assert_false (atk_ack_table_add (table, 5, 2));
  /* a redelivery that produced nothing does not ack what is still pending */
  g_assert_false (atk_ack_table_add (table, 5, 0));
  for (guint i = 0; i < 3; i++)
    g_assert_false (atk_ack_table_settle (table, 5, TRUE));
  g_assert_true (atk_ack_table_settle (table, 5, TRUE));
}

static void
test_unknown_id (void)
{
  g_autoptr (AtkAckTable) table = atk_ack_table_new ();

  g_assert_false (atk_ack_table_settle (table, 42, TRUE));
  g_assert_false (atk_ack_table_settle (table, 42, FALSE));
  g_assert_cmpuint (atk_ack_table_get_pending (table), ==, 0);
}

/* Many ids: the table empties exactly when everything is settled. */
static void
test_many (void)
{
  g_autoptr (AtkAckTable) table = atk_ack_table_new ();
  guint acks = 0;

  for (guint64 id = 0; id < 10000; id++)
    g_assert_false (atk_ack_table_add (table, id * 7919, (guint)(id % 4) + 1));
  g_assert_cmpuint (atk_ack_table_get_pending (table), ==, 10000);
  for (guint round = 0; round < 4; round++)
    for (guint64 id = 0; id < 10000; id++)
      if (round <= id % 4)
        acks += atk_ack_table_settle (table, id * 7919, id % 10 != 3 || round != 0);
  g_assert_cmpuint (acks, ==, 9000);
  g_assert_cmpuint (atk_ack_table_get_pending (table), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/ack-table/no-messages-acks-at-once", test_no_messages_acks_at_once);
  g_test_add_func ("/ack-table/ack-after-last-message", test_ack_after_last_message);
  g_test_add_func ("/ack-table/failure-never-acked", test_failure_never_acked);
  g_test_add_func ("/ack-table/interleaved-ids", test_interleaved_ids);
  g_test_add_func ("/ack-table/redelivered-id-adds-up", test_redelivered_id_adds_up);
  g_test_add_func ("/ack-table/unknown-id", test_unknown_id);
  g_test_add_func ("/ack-table/many", test_many);
  return g_test_run ();
}
