/* at-kafka: leadership of a group of instances (--group-id), decided by Kafka's group
 * coordinator. Each instance joins the consumer group NAME on the one-partition cursor
 * topic "<topic>.cursor"; the member that is assigned its partition 0 is the leader. The
 * cooperative-sticky assignor keeps the partition where it is when members come and go, so
 * a standby that (re)joins never interrupts the leader.
 *
 * The consumer is served on the thread-default main context: librdkafka's queue wakes a
 * GSource through a pipe when a rebalance (or an error, or a log line) is waiting, and a
 * one-second tick at high priority keeps max.poll.interval.ms satisfied and notices when
 * the process itself was frozen (SIGSTOP, a paused VM) for longer than the session
 * timeout: the group has most likely elected someone else meanwhile, so the instance
 * deposes itself before anything else on the loop runs, and leaves and rejoins the group.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* The defaults at-kafka gives the group consumer (-X session.timeout.ms=… and
 * -X heartbeat.interval.ms=… override them). 6 s is the broker's smallest allowed session
 * timeout by default (group.min.session.timeout.ms). */
#define ATK_LEADER_SESSION_TIMEOUT_MS 6000
#define ATK_LEADER_HEARTBEAT_MS 1000

#define ATK_TYPE_LEADER_ELECTION (atk_leader_election_get_type ())
G_DECLARE_FINAL_TYPE (AtkLeaderElection, atk_leader_election, ATK, LEADER_ELECTION, GObject)

/* topic: the group's one-partition topic (the cursor topic); properties: "key=value"
 * librdkafka properties (the user's -X; producer-only ones are ignored), may be NULL.
 * ATK_ERROR_BAD_CONFIG for a configuration librdkafka refuses. */
AtkLeaderElection *atk_leader_election_new (const char *bootstrap_servers,
                                            const char *const *properties, const char *group_id,
                                            const char *topic, GError **error);

/* Joins the group (the topic must exist, or the group waits until it does). */
void atk_leader_election_start (AtkLeaderElection *self);

gboolean atk_leader_election_is_leader (AtkLeaderElection *self);
/* How often this instance was elected or deposed. */
guint64 atk_leader_election_get_changes (AtkLeaderElection *self);
/* The session timeout in effect: how long a dead leader holds on to the leadership. */
guint atk_leader_election_get_session_timeout (AtkLeaderElection *self);

/* Leaves the group ("deposed" follows if leading) and joins it again after hold_ms, so
 * that another member takes over meanwhile. */
void atk_leader_election_resign (AtkLeaderElection *self, guint hold_ms);

/* Leaves the group now, for good (at shutdown, once the last cursor is out): the next
 * leader is elected at once instead of after the session timeout. No signal follows. */
void atk_leader_election_leave (AtkLeaderElection *self);

/* Signals:
 *  "joined" ()             the first assignment: the instance is a member (leader or not)
 *  "elected" ()            partition 0 was assigned to this instance
 *  "deposed" (const char *why)  it is not the leader any more: stop at once
 */

G_END_DECLS
