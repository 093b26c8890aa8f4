/* at-kafka: leadership through Kafka's group coordinator (see atk-leader-election.h).
 *
 * What bounds two leaders at once: the group coordinator gives partition 0 to another
 * member only after the old leader left (it revoked the partition: LeaveGroup, a clean
 * rebalance) or after the coordinator heard nothing from it for session.timeout.ms. The old
 * leader, for its part, gives up the leadership
 *  - when librdkafka reports the partition revoked or the assignment lost: its heartbeats
 *    failed for session.timeout.ms (librdkafka's own session check), or the coordinator
 *    said it is no longer a member;
 *  - when its main loop did not run for longer than the session timeout (it was frozen):
 *    the tick below runs first after such a pause;
 *  - when the group coordinator did not answer it for longer than the session timeout
 *    (librdkafka's statistics: the coordinator connection's rxidle). librdkafka's own
 *    session check can come late when the connection stays open but silent (a network
 *    partition), and the coordinator has handed the partition on by then.
 * So a leader cut off from Kafka stops within the session timeout (plus one poll), before
 * or as the coordinator hands the partition on. What a frozen leader's librdkafka threads
 * had already queued may still be sent as it wakes up (with transactions the new leader's
 * producer has fenced it by then, so none of it commits).
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-leader"

#include "atk-leader-election.h"

#include <glib-unix.h>
#include <json-glib/json-glib.h>
#include <librdkafka/rdkafka.h>
#include <string.h>
#include <unistd.h>

#include "atk-error.h"

#define TICK_MS 1000

struct _AtkLeaderElection
{
  GObject parent_instance;

  rd_kafka_t *rk;
  rd_kafka_queue_t *queue; /* the consumer queue (the main queue is forwarded to it) */
  char *topic;
  guint session_timeout_ms;
  int wake_fds[2];
  guint wake_id;
  guint tick_id;
  guint rejoin_id;
  gint64 last_tick_us;
  gint64 coordinator_heard_us; /* the group coordinator's last answer (statistics) */

  gboolean subscribed;
  gboolean joined;
  gboolean leader;
  gboolean closing;
  guint64 changes;
};

G_DEFINE_FINAL_TYPE (AtkLeaderElection, atk_leader_election, G_TYPE_OBJECT)

enum
{
  SIGNAL_JOINED,
  SIGNAL_ELECTED,
  SIGNAL_DEPOSED,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

static void
set_leader (AtkLeaderElection *self, gboolean leader, const char *why)
{
  if (self->leader == leader || self->closing)
    return;
  self->leader = leader;
  self->changes++;
  if (leader)
    {
      self->coordinator_heard_us = g_get_monotonic_time ();
      g_message ("Elected leader of the group (partition 0 of %s)", self->topic);
      g_signal_emit (self, signals[SIGNAL_ELECTED], 0);
    }
  else
    {
      g_message ("Not the leader any more (%s): standing by", why);
      g_signal_emit (self, signals[SIGNAL_DEPOSED], 0, why);
    }
}

/* ---- librdkafka callbacks (served inside rd_kafka_consumer_poll) -------------------- */

static gboolean
holds_partition_0 (AtkLeaderElection *self, const rd_kafka_topic_partition_list_t *partitions)
{
  for (int i = 0; partitions != NULL && i < partitions->cnt; i++)
    if (partitions->elems[i].partition == 0
        && g_strcmp0 (partitions->elems[i].topic, self->topic) == 0)
      return TRUE;
  return FALSE;
}

static void
log_assign_error (const char *what, rd_kafka_error_t *error)
{
  if (error == NULL)
    return;
  g_warning ("Group %s failed: %s", what, rd_kafka_error_string (error));
  rd_kafka_error_destroy (error);
}

static void
on_rebalance (rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *partitions,
              void *opaque)
{
  AtkLeaderElection *self = opaque;
  gboolean cooperative = g_strcmp0 (rd_kafka_rebalance_protocol (rk), "COOPERATIVE") == 0;
  gboolean ours = holds_partition_0 (self, partitions);

  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
    {
      if (cooperative)
        log_assign_error ("assign", rd_kafka_incremental_assign (rk, partitions));
      else
        rd_kafka_assign (rk, partitions);
      /* The partition only stands for the leadership: nothing is read from it. */
      if (partitions->cnt > 0)
        rd_kafka_pause_partitions (rk, partitions);
      if (!self->joined && !self->closing)
        {
          self->joined = TRUE;
          g_message ("Joined the group on %s", self->topic);
          g_signal_emit (self, signals[SIGNAL_JOINED], 0);
        }
      if (ours)
        set_leader (self, TRUE, NULL);
      return;
    }
  if (ours || !cooperative)
    set_leader (self, FALSE,
                rd_kafka_assignment_lost (rk)
                    ? "the group coordinator gave the leadership away: no contact for longer "
                      "than the session timeout"
                    : "the leadership was revoked");
  if (cooperative)
    log_assign_error ("unassign", rd_kafka_incremental_unassign (rk, partitions));
  else
    rd_kafka_assign (rk, NULL);
}

static void
on_error (rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
  g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, "ATK_KAFKA_ERROR", rd_kafka_err2name (err),
                    "MESSAGE", "Kafka group error: %s", reason);
}

static void
on_log (const rd_kafka_t *rk, int level, const char *facility, const char *buf)
{
  /* The user's producer properties make a consumer complain; none of that is actionable. */
  g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_DEBUG, "ATK_KAFKA_FACILITY", facility, "MESSAGE",
                    "librdkafka group %s: %s", facility, buf);
}

/* The statistics say when the group coordinator last answered: "rxidle" (µs) of the
 * "GroupCoordinator" broker handle, while it is up. */
static int
on_stats (rd_kafka_t *rk, char *json, size_t json_len, void *opaque)
{
  AtkLeaderElection *self = opaque;
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonNode *root;
  JsonObject *brokers;
  g_autoptr (GList) names = NULL;

  if (!json_parser_load_from_data (parser, json, (gssize)json_len, NULL)
      || (root = json_parser_get_root (parser)) == NULL || !JSON_NODE_HOLDS_OBJECT (root)
      || (brokers = json_object_get_object_member (json_node_get_object (root), "brokers")) == NULL)
    return 0;
  names = json_object_get_members (brokers);
  for (GList *l = names; l != NULL; l = l->next)
    {
      JsonObject *broker = json_object_get_object_member (brokers, l->data);
      gint64 rxidle;

      if (!g_str_has_prefix (l->data, "GroupCoordinator") || broker == NULL
          || g_strcmp0 (json_object_get_string_member_with_default (broker, "state", ""), "UP")
                 != 0)
        continue;
      rxidle = json_object_get_int_member_with_default (broker, "rxidle", -1);
      if (rxidle >= 0)
        self->coordinator_heard_us
            = MAX (self->coordinator_heard_us, g_get_monotonic_time () - rxidle);
    }
  return 0; /* librdkafka frees json */
}

/* ---- serving the consumer ------------------------------------------------------------ */

static void
serve (AtkLeaderElection *self)
{
  rd_kafka_message_t *message;

  /* Rebalances, errors and logs run in here; messages are not expected (the partition is
   * paused) and are dropped. */
  while ((message = rd_kafka_consumer_poll (self->rk, 0)) != NULL)
    {
      if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR
          && message->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
        g_debug ("group consumer: %s", rd_kafka_message_errstr (message));
      rd_kafka_message_destroy (message);
    }
}

static gboolean
on_wake (int fd, GIOCondition condition, gpointer user_data)
{
  g_autoptr (AtkLeaderElection) self = g_object_ref (user_data);
  char buf[64];

  while (read (fd, buf, sizeof buf) > 0)
    ;
  serve (self);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_rejoin (gpointer user_data)
{
  AtkLeaderElection *self = user_data;
  rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new (1);
  rd_kafka_resp_err_t err;

  self->rejoin_id = 0;
  rd_kafka_topic_partition_list_add (topics, self->topic, RD_KAFKA_PARTITION_UA);
  err = rd_kafka_subscribe (self->rk, topics);
  rd_kafka_topic_partition_list_destroy (topics);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    {
      g_warning ("Cannot join the group on %s: %s; trying again", self->topic,
                 rd_kafka_err2str (err));
      self->rejoin_id = g_timeout_add (TICK_MS, on_rejoin, self);
      return G_SOURCE_REMOVE;
    }
  self->subscribed = TRUE;
  return G_SOURCE_REMOVE;
}

static gboolean
on_tick (gpointer user_data)
{
  AtkLeaderElection *self = user_data;
  gint64 now = g_get_monotonic_time ();
  gint64 gap_ms = self->last_tick_us > 0 ? (now - self->last_tick_us) / 1000 : 0;
  gint64 silent_ms;

  self->last_tick_us = now;
  if (self->leader && gap_ms > self->session_timeout_ms)
    {
      g_autofree char *why = g_strdup_printf ("this process did not run for %" G_GINT64_FORMAT
                                              " ms, longer than the %u ms "
                                              "session timeout: another instance may lead by now",
                                              gap_ms, self->session_timeout_ms);
      set_leader (self, FALSE, why);
      atk_leader_election_resign (self, self->session_timeout_ms);
    }
  serve (self);
  silent_ms = (now - self->coordinator_heard_us) / 1000;
  if (self->leader && silent_ms > self->session_timeout_ms)
    {
      g_autofree char *why = g_strdup_printf (
          "no answer from the group coordinator for %" G_GINT64_FORMAT " ms, longer than the "
          "%u ms session timeout: it has handed the leadership on",
          silent_ms, self->session_timeout_ms);
      set_leader (self, FALSE, why);
      atk_leader_election_resign (self, self->session_timeout_ms);
    }
  return G_SOURCE_CONTINUE;
}

/* ---- public ------------------------------------------------------------------------- */

void
atk_leader_election_start (AtkLeaderElection *self)
{
  g_return_if_fail (ATK_IS_LEADER_ELECTION (self));
  if (self->rk == NULL)
    return;
  if (self->tick_id == 0)
    {
      self->tick_id = g_timeout_add_full (G_PRIORITY_HIGH, TICK_MS, on_tick, self, NULL);
      self->last_tick_us = g_get_monotonic_time ();
    }
  if (!self->subscribed && self->rejoin_id == 0)
    on_rejoin (self);
}

void
atk_leader_election_resign (AtkLeaderElection *self, guint hold_ms)
{
  rd_kafka_resp_err_t err;

  g_return_if_fail (ATK_IS_LEADER_ELECTION (self));
  if (!self->subscribed || self->rk == NULL)
    return;
  g_message ("Leaving the group on %s for %u ms", self->topic, hold_ms);
  set_leader (self, FALSE, "resigned");
  err = rd_kafka_unsubscribe (self->rk);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    g_warning ("Cannot leave the group on %s: %s", self->topic, rd_kafka_err2str (err));
  self->subscribed = FALSE;
  serve (self);
  g_clear_handle_id (&self->rejoin_id, g_source_remove);
  self->rejoin_id = g_timeout_add (hold_ms, on_rejoin, self);
}

gboolean
atk_leader_election_is_leader (AtkLeaderElection *self)
{
  g_return_val_if_fail (ATK_IS_LEADER_ELECTION (self), FALSE);
  return self->leader;
}

guint64
atk_leader_election_get_changes (AtkLeaderElection *self)
{
  g_return_val_if_fail (ATK_IS_LEADER_ELECTION (self), 0);
  return self->changes;
}

guint
atk_leader_election_get_session_timeout (AtkLeaderElection *self)
{
  g_return_val_if_fail (ATK_IS_LEADER_ELECTION (self), 0);
  return self->session_timeout_ms;
}

/* ---- construction ------------------------------------------------------------------- */

static gboolean
conf_set (rd_kafka_conf_t *conf, const char *key, const char *value, GError **error)
{
  char errstr[512];

  if (rd_kafka_conf_set (conf, key, value, errstr, sizeof errstr) == RD_KAFKA_CONF_OK)
    return TRUE;
  g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG, "Group consumer property %s=%s: %s", key,
               value, errstr);
  return FALSE;
}

static rd_kafka_conf_t *
build_conf (AtkLeaderElection *self, const char *bootstrap_servers, const char *const *properties,
            const char *group_id, GError **error)
{
  rd_kafka_conf_t *conf = rd_kafka_conf_new ();
  const char *const defaults[][2] = {
    { "session.timeout.ms", G_STRINGIFY (ATK_LEADER_SESSION_TIMEOUT_MS) },
    { "heartbeat.interval.ms", G_STRINGIFY (ATK_LEADER_HEARTBEAT_MS) },
  };
  const char *const fixed[][2] = {
    { "bootstrap.servers", bootstrap_servers },
    { "group.id", group_id },
    { "client.id", "at-kafka-group" },
    { "partition.assignment.strategy", "cooperative-sticky" },
    { "enable.auto.commit", "false" },
    { "enable.auto.offset.store", "false" },
    { "enable.partition.eof", "false" },
    { "log.queue", "true" },
    { "statistics.interval.ms", G_STRINGIFY (TICK_MS) },
  };
  char errstr[512];

  for (gsize i = 0; i < G_N_ELEMENTS (defaults); i++)
    if (!conf_set (conf, defaults[i][0], defaults[i][1], error))
      goto fail;
  /* The user's properties: security settings apply; producer-only ones do not matter. */
  for (gsize i = 0; properties != NULL && properties[i] != NULL; i++)
    {
      g_auto (GStrv) kv = g_strsplit (properties[i], "=", 2);
      if (kv[0] != NULL && kv[1] != NULL)
        rd_kafka_conf_set (conf, g_strstrip (kv[0]), kv[1], errstr, sizeof errstr);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (fixed); i++)
    if (!conf_set (conf, fixed[i][0], fixed[i][1], error))
      goto fail;
  {
    char value[32];
    size_t size = sizeof value;
    guint64 ms = ATK_LEADER_SESSION_TIMEOUT_MS;

    if (rd_kafka_conf_get (conf, "session.timeout.ms", value, &size) == RD_KAFKA_CONF_OK)
      g_ascii_string_to_unsigned (value, 10, 1, G_MAXUINT, &ms, NULL);
    self->session_timeout_ms = (guint)ms;
  }
  rd_kafka_conf_set_opaque (conf, self);
  rd_kafka_conf_set_rebalance_cb (conf, on_rebalance);
  rd_kafka_conf_set_error_cb (conf, on_error);
  rd_kafka_conf_set_log_cb (conf, on_log);
  rd_kafka_conf_set_stats_cb (conf, on_stats);
  return conf;

fail:
  rd_kafka_conf_destroy (conf);
  return NULL;
}

AtkLeaderElection *
atk_leader_election_new (const char *bootstrap_servers, const char *const *properties,
                         const char *group_id, const char *topic, GError **error)
{
  g_autoptr (AtkLeaderElection) self = g_object_new (ATK_TYPE_LEADER_ELECTION, NULL);
  static const char payload = 1;
  rd_kafka_conf_t *conf;
  char errstr[512];

  g_return_val_if_fail (group_id != NULL && topic != NULL, NULL);

  self->topic = g_strdup (topic);
  conf = build_conf (self, bootstrap_servers, properties, group_id, error);
  if (conf == NULL)
    return NULL;
  self->rk = rd_kafka_new (RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (self->rk == NULL)
    {
      rd_kafka_conf_destroy (conf);
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG, "Group consumer: %s", errstr);
      return NULL;
    }
  rd_kafka_set_log_queue (self->rk, NULL);
  rd_kafka_poll_set_consumer (self->rk);
  self->queue = rd_kafka_queue_get_consumer (self->rk);
  if (!g_unix_open_pipe (self->wake_fds, FD_CLOEXEC, error)
      || !g_unix_set_fd_nonblocking (self->wake_fds[0], TRUE, error)
      || !g_unix_set_fd_nonblocking (self->wake_fds[1], TRUE, error))
    return NULL;
  rd_kafka_queue_io_event_enable (self->queue, self->wake_fds[1], &payload, 1);
  /* Before the relay's payloads: a lost leadership stops the input before its next frame. */
  self->wake_id
      = g_unix_fd_add_full (G_PRIORITY_HIGH, self->wake_fds[0], G_IO_IN, on_wake, self, NULL);
  return g_steal_pointer (&self);
}

void
atk_leader_election_leave (AtkLeaderElection *self)
{
  g_return_if_fail (ATK_IS_LEADER_ELECTION (self));

  self->leader = FALSE;
  self->closing = TRUE;
  g_clear_handle_id (&self->tick_id, g_source_remove);
  g_clear_handle_id (&self->rejoin_id, g_source_remove);
  g_clear_handle_id (&self->wake_id, g_source_remove);
  if (self->rk == NULL)
    return;
  /* Leaves the group at once (the next leader need not wait for the session timeout); the
   * revoke runs on_rebalance in here. */
  rd_kafka_queue_io_event_enable (self->queue, -1, NULL, 0);
  rd_kafka_consumer_close (self->rk);
  g_clear_pointer (&self->queue, rd_kafka_queue_destroy);
  g_clear_pointer (&self->rk, rd_kafka_destroy);
  g_message ("Left the group on %s", self->topic);
}

static void
atk_leader_election_dispose (GObject *object)
{
  AtkLeaderElection *self = ATK_LEADER_ELECTION (object);

  atk_leader_election_leave (self);
  for (int i = 0; i < 2; i++)
    if (self->wake_fds[i] >= 0)
      {
        close (self->wake_fds[i]);
        self->wake_fds[i] = -1;
      }
  G_OBJECT_CLASS (atk_leader_election_parent_class)->dispose (object);
}

static void
atk_leader_election_finalize (GObject *object)
{
  AtkLeaderElection *self = ATK_LEADER_ELECTION (object);

  g_free (self->topic);
  G_OBJECT_CLASS (atk_leader_election_parent_class)->finalize (object);
}

static void
atk_leader_election_class_init (AtkLeaderElectionClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = atk_leader_election_dispose;
  object_class->finalize = atk_leader_election_finalize;
  signals[SIGNAL_JOINED] = g_signal_new ("joined", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                         NULL, NULL, NULL, G_TYPE_NONE, 0);
  signals[SIGNAL_ELECTED] = g_signal_new ("elected", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                          0, NULL, NULL, NULL, G_TYPE_NONE, 0);
  signals[SIGNAL_DEPOSED] = g_signal_new ("deposed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                          0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
}

static void
atk_leader_election_init (AtkLeaderElection *self)
{
  self->wake_fds[0] = self->wake_fds[1] = -1;
  self->session_timeout_ms = ATK_LEADER_SESSION_TIMEOUT_MS;
}
