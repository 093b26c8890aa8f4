/* at-kafka: the daemon in a group of instances (--group-id). Kafka's group coordinator
 * elects one (AtkLeaderElection); until then the input stays stopped, nothing is produced
 * and no cursor is written. Elected, the instance resumes after the group's cursor (the
 * higher of "<topic>.cursor" and what this instance itself got acknowledged earlier: both
 * only hold acknowledged watermarks); with transactions it sets them up only now, which
 * fences the previous leader's producer. A leader that finds no cursor at all anchors one
 * before it produces anything: the seq before the first frame it gets (on_anchor). Deposed, it
 * stops the input at once, purges what librdkafka still holds (those messages are not covered by
 * any cursor: the next leader produces them again) and stands by. A deposed transactional instance
 * cannot go on with its fenced producer: it stops ("fatal", exit status 1) and its supervisor
 * starts it again as a standby. SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka"

#include "atk-daemon-private.h"

#include <glib/gi18n.h>

#include "atk-error.h"

#define ELECT_RETRY_MS 1000
#define RESIGN_FLUSH_MS 5000
#define CURSOR_FLUSH_MS 2000
#define ANCHOR_MS 1500 /* each blocking step of an anchor: flush, read back, commit */

gboolean
atk_daemon_leader_may_lead (AtkDaemon *self)
{
  return self->election == NULL || self->leading;
}

/* At-least-once: place the input after the group's cursor, then run it. */
static gboolean
take_lead (gpointer user_data)
{
  AtkDaemon *self = user_data;
  g_autoptr (GError) error = NULL;
  gboolean has_cursor;
  gint64 cursor = 0;

  self->elect_retry_id = 0;
  if (!atk_leader_election_is_leader (self->election) || self->fatal)
    return G_SOURCE_REMOVE;
  has_cursor = atk_pipeline_get_acked_cursor (self->pipeline, &cursor);
  switch (atk_cursor_keeper_merge_kafka (self->keeper, &has_cursor, &cursor, &error))
    {
    case ATK_CURSOR_MERGE_UNREACHABLE:
      self->elect_retry_id = g_timeout_add (ELECT_RETRY_MS, take_lead, self);
      return G_SOURCE_REMOVE;
    case ATK_CURSOR_MERGE_REFUSED:
      atk_daemon_on_sink_fatal (self->sink, error->message, self);
      return G_SOURCE_REMOVE;
    case ATK_CURSOR_MERGE_OK:
    default:
      break;
    }
  g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, "ATK_LEADER", "1", "MESSAGE",
                    has_cursor ? "Leading: resuming after group seq %" G_GINT64_FORMAT
                               : "Leading: no cursor yet, starting at the live tip",
                    cursor);
  atk_pipeline_reset_cursor (self->pipeline, has_cursor, cursor);
  self->leading = TRUE;
  atk_daemon_update_input_allowed (self);
  return G_SOURCE_REMOVE;
}

static gboolean
on_anchor_failed (gpointer user_data)
{
  atk_daemon_update_input_allowed (user_data);
  return G_SOURCE_REMOVE;
}

/* A leader that found no cursor got its first seq from the relay: before anything is
 * produced, the seq before it becomes the group's cursor (at-least-once: acknowledged and
 * read back; transactional: committed), so that a successor resumes there even if this
 * instance dies before its first own cursor. Without it the successor would start at the
 * live tip, and what the relay sent in between would be lost. A plain start without a group
 * does not anchor. FALSE: not durable; the pipeline drops the payload and starts over. */
static gboolean
on_anchor (AtkPipeline *pipeline, gint64 cursor, AtkDaemon *self)
{
  g_autoptr (GError) error = NULL;
  gboolean found = FALSE;
  gint64 stored = 0;
  gboolean ok;

  if (!self->leading || self->fatal)
    return FALSE;
  if (self->txn != NULL)
    ok = atk_transaction_driver_anchor (self->txn, cursor, ANCHOR_MS);
  else
    {
      atk_cursor_keeper_save (self->keeper, self->sink, cursor);
      atk_kafka_sink_flush (self->sink, ANCHOR_MS);
      ok = atk_cursor_keeper_load_kafka (self->keeper, ANCHOR_MS, &found, &stored, &error) && found
           && stored >= cursor;
    }
  if (!ok)
    {
      g_warning ("Could not anchor the group's cursor at seq %" G_GINT64_FORMAT
                 "%s%s; nothing produced, starting over",
                 cursor, error != NULL ? ": " : "", error != NULL ? error->message : "");
      g_idle_add_full (G_PRIORITY_DEFAULT, on_anchor_failed, g_object_ref (self), g_object_unref);
      return FALSE;
    }
  g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, "ATK_LEADER", "1", "MESSAGE",
                    "Anchored the group's cursor at seq %" G_GINT64_FORMAT " before producing (%s)",
                    cursor, self->txn != NULL ? "committed" : "acknowledged");
  return TRUE;
}

static void
on_elected (AtkLeaderElection *election, AtkDaemon *self)
{
  g_clear_handle_id (&self->elect_retry_id, g_source_remove);
  if (self->txn == NULL)
    {
      take_lead (self);
      return;
    }
  /* The driver reads the committed cursor once init has fenced the previous leader. */
  g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, "ATK_LEADER", "1", "MESSAGE",
                    "Leading: setting up transactions (this fences the previous leader)");
  self->leading = TRUE;
  if (atk_kafka_sink_is_ready (self->sink))
    atk_transaction_driver_setup (self->txn);
  atk_daemon_update_input_allowed (self);
}

static void
on_deposed (AtkLeaderElection *election, const char *why, AtkDaemon *self)
{
  gboolean was_leading = self->leading;
  gboolean has_cursor;
  gint64 cursor = 0;

  g_clear_handle_id (&self->elect_retry_id, g_source_remove);
  self->leading = FALSE;
  atk_daemon_update_input_allowed (self); /* the input stops here */
  if (!was_leading || self->fatal)
    return;
  if (self->txn != NULL)
    {
      g_autofree char *reason = g_strdup_printf (
          "lost the leadership (%s); the next leader's producer fences this one", why);
      atk_daemon_on_sink_fatal (self->sink, reason, self);
      return;
    }
  if (atk_kafka_sink_get_in_flight (self->sink) == 0)
    return;
  /* Forget, then purge: the purged messages' reports settle nothing, and the cursor stays
   * at what Kafka acknowledged. */
  has_cursor = atk_pipeline_get_acked_cursor (self->pipeline, &cursor);
  atk_pipeline_rewind (self->pipeline, has_cursor, cursor, "Deposed; once elected again");
  atk_kafka_sink_purge (self->sink);
}

static void
on_joined (AtkLeaderElection *election, AtkDaemon *self)
{
  /* A standby is up and doing its job: tell systemd (READY=1) now, not at a first
   * delivery that may never come. */
  if (!self->ready_emitted)
    {
      self->ready_emitted = TRUE;
      g_signal_emit_by_name (self, "ready");
    }
}

gboolean
atk_daemon_leader_build (AtkDaemon *self, GError **error)
{
  const char *const *properties;

  if (self->config->group_id == NULL)
    return TRUE;
  if (!atk_pipeline_uses_cursor (self->pipeline))
    {
      g_set_error_literal (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                           _ ("--group-id cannot be used with --tap-host (a group hands the "
                              "relay cursor from one instance to the next)"));
      return FALSE;
    }
  g_ptr_array_add (self->config->kafka_properties, NULL);
  properties = (const char *const *)self->config->kafka_properties->pdata;
  self->election = atk_leader_election_new (self->config->bootstrap_servers, properties,
                                            self->config->group_id,
                                            atk_cursor_keeper_get_topic (self->keeper), error);
  g_ptr_array_remove_index (self->config->kafka_properties,
                            self->config->kafka_properties->len - 1);
  if (self->election == NULL)
    return FALSE;
  g_signal_connect (self->election, "joined", G_CALLBACK (on_joined), self);
  g_signal_connect (self->pipeline, "anchor", G_CALLBACK (on_anchor), self);
  g_signal_connect (self->election, "elected", G_CALLBACK (on_elected), self);
  g_signal_connect (self->election, "deposed", G_CALLBACK (on_deposed), self);
  return TRUE;
}

void
atk_daemon_leader_start (AtkDaemon *self)
{
  if (self->election == NULL)
    return;
  g_message ("Group %s: joining on %s (session timeout %u ms); standing by until elected",
             self->config->group_id, atk_cursor_keeper_get_topic (self->keeper),
             atk_leader_election_get_session_timeout (self->election));
  atk_leader_election_start (self->election);
}

void
atk_daemon_leader_leave (AtkDaemon *self)
{
  self->leading = FALSE;
  if (self->election != NULL)
    atk_leader_election_leave (self->election);
}

void
atk_daemon_leader_clear (AtkDaemon *self)
{
  g_clear_handle_id (&self->elect_retry_id, g_source_remove);
  if (self->election != NULL)
    {
      g_signal_handlers_disconnect_by_data (self->election, self);
      if (self->pipeline != NULL)
        g_signal_handlers_disconnect_by_func (self->pipeline, on_anchor, self);
    }
  g_clear_object (&self->election);
}

void
atk_daemon_leader_render_prometheus (AtkDaemon *self, GString *out)
{
  if (self->election == NULL)
    return;
  g_string_append_printf (
      out,
      "# HELP atkafka_leader 1 while this instance leads its group (reads the relay), 0 on "
      "standby\n"
      "# TYPE atkafka_leader gauge\n"
      "atkafka_leader %d\n"
      "# HELP atkafka_leader_changes_total Times this instance was elected or deposed\n"
      "# TYPE atkafka_leader_changes_total counter\n"
      "atkafka_leader_changes_total %" G_GUINT64_FORMAT "\n",
      self->leading ? 1 : 0, atk_leader_election_get_changes (self->election));
}

gboolean
atk_daemon_resign (AtkDaemon *self, GError **error)
{
  g_return_val_if_fail (ATK_IS_DAEMON (self), FALSE);

  if (self->election == NULL)
    {
      g_set_error_literal (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                           "Not in a group (no --group-id)");
      return FALSE;
    }
  if (!self->leading)
    {
      g_set_error_literal (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG, "Not the leader");
      return FALSE;
    }
  g_message ("Resigning the leadership");
  atk_pipeline_set_allowed (self->pipeline, FALSE);
  if (self->txn != NULL)
    {
      /* The last commit happens at shutdown; closing the group consumer then hands the
       * leadership over at once. */
      g_message ("With transactions, resigning stops this instance after its last commit");
      g_signal_emit_by_name (self, "quit");
      return TRUE;
    }
  /* Everything handed over reaches Kafka and the cursor covers it before the next leader
   * reads it: nothing is produced twice. */
  if (!atk_kafka_sink_flush (self->sink, RESIGN_FLUSH_MS))
    g_warning ("%u message(s) not delivered before resigning; the next leader produces them",
               atk_kafka_sink_get_in_flight (self->sink));
  atk_daemon_save_cursor (self);
  atk_kafka_sink_flush (self->sink, CURSOR_FLUSH_MS);
  atk_leader_election_resign (self->election,
                              atk_leader_election_get_session_timeout (self->election));
  return TRUE;
}
