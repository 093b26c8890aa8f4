/* A scripted stand-in for AtkKafkaSink (src/kafka/atk-kafka-sink.h), for unit tests of the
 * delivery core without a broker: atk-fake-sink.c implements that header's whole API, and a
 * test program links it instead of the real sink (see tests/meson.build: the units under
 * test are compiled into the program, so the linker never pulls the real sink out of the
 * daemon library; a duplicate symbol at link time means the fake lacks a new function).
 *
 * What the code under test produces is recorded; nothing is delivered until the test says
 * so, in order, with the outcome it chooses. Transactions answer with scripted statuses.
 * SPDX-License-Identifier: MIT */
#pragma once

#include "atk-kafka-sink.h"

G_BEGIN_DECLS

/* A message the code under test produced. */
typedef struct
{
  char *key;
  char *value;
  gboolean has_seq;
  gint64 seq;
  char *action_name;
} AtkFakeProduced;

/* The last sink made by atk_kafka_sink_new(), or NULL. */
AtkKafkaSink *atk_fake_sink_get_last (void);
/* The options it was made with (strings copied); properties joined by '\n'. */
const char *atk_fake_sink_get_option (AtkKafkaSink *self, const char *name);

/* atk_kafka_sink_ensure_topic() makes the sink ready at once (default) or waits for
 * atk_fake_sink_set_ready(). */
void atk_fake_sink_set_auto_ready (AtkKafkaSink *self, gboolean auto_ready);
void atk_fake_sink_set_ready (AtkKafkaSink *self);

/* Every message produced so far (AtkFakeProduced*), delivered or not, in order. */
GPtrArray *atk_fake_sink_get_produced (AtkKafkaSink *self);
/* Every cursor record: "key=seq" strings, in order. */
GPtrArray *atk_fake_sink_get_cursor_records (AtkKafkaSink *self);

/* Settles the n oldest messages in flight: "delivered" with ok (error_message when
 * !ok). Returns how many there were. */
guint atk_fake_sink_deliver (AtkKafkaSink *self, guint n, gboolean ok, const char *error_message);
/* The n oldest messages in flight did not make it: "undelivered". */
guint atk_fake_sink_undeliver (AtkKafkaSink *self, guint n);

/* The next produce() fails at once with this error (ATK_ERROR_TOO_LARGE, ATK_ERROR_KAFKA). */
void atk_fake_sink_refuse_next (AtkKafkaSink *self, gint code);
/* Cursor records fail to produce while refuse is TRUE. */
void atk_fake_sink_refuse_cursor (AtkKafkaSink *self, gboolean refuse);

/* flush(): with deliver_on_flush (default FALSE) everything in flight is delivered (Kafka
 * up); without, nothing is (Kafka down) and flush returns FALSE. Counts the calls and the
 * timeouts asked for. */
void atk_fake_sink_set_deliver_on_flush (AtkKafkaSink *self, gboolean deliver);
guint atk_fake_sink_get_flush_calls (AtkKafkaSink *self);
guint atk_fake_sink_get_last_flush_timeout (AtkKafkaSink *self);

/* Transactions: each call takes the next scripted status for its kind ("init", "begin",
 * "commit", "abort"), ATK_TXN_OK when the script is empty; calls are counted. A commit
 * that returns OK delivers everything in flight first, as a real commit flushes; one that
 * returns ABORTED reports everything in flight as undelivered (purged). */
void atk_fake_sink_script_txn (AtkKafkaSink *self, const char *kind, AtkTxnStatus status);
guint atk_fake_sink_get_txn_calls (AtkKafkaSink *self, const char *kind);

/* Emits "fatal" (and is_fatal() becomes TRUE). */
void atk_fake_sink_fail (AtkKafkaSink *self, const char *reason);

G_END_DECLS
