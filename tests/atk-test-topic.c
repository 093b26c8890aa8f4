/* atk-test-topic: creates a Kafka topic with topic-level settings, for the integration
 * tests (the broker does not auto-create topics, and at-kafka creates its own with the
 * broker's defaults).
 *
 *   atk-test-topic BOOTSTRAP TOPIC PARTITIONS [KEY=VALUE…]
 *
 * Exits 0 once the topic exists (created now or before), 1 with a message otherwise.
 * SPDX-License-Identifier: MIT */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
main (int argc, char **argv)
{
  char errstr[512];
  rd_kafka_conf_t *conf;
  rd_kafka_t *rk;
  rd_kafka_NewTopic_t *topic;
  rd_kafka_queue_t *queue;
  rd_kafka_event_t *event;
  const rd_kafka_topic_result_t **results;
  size_t n = 0;
  int status = 1;

  if (argc < 4)
    {
      fprintf (stderr, "usage: %s BOOTSTRAP TOPIC PARTITIONS [KEY=VALUE...]\n", argv[0]);
      return 2;
    }
  conf = rd_kafka_conf_new ();
  if (rd_kafka_conf_set (conf, "bootstrap.servers", argv[1], errstr, sizeof errstr)
      != RD_KAFKA_CONF_OK)
    {
      fprintf (stderr, "%s\n", errstr);
      return 1;
    }
  rk = rd_kafka_new (RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (rk == NULL)
    {
      fprintf (stderr, "%s\n", errstr);
      return 1;
    }
  topic = rd_kafka_NewTopic_new (argv[2], atoi (argv[3]), 1, errstr, sizeof errstr);
  if (topic == NULL)
    {
      fprintf (stderr, "%s\n", errstr);
      return 1;
    }
  for (int i = 4; i < argc; i++)
    {
      char *eq = strchr (argv[i], '=');
      if (eq == NULL)
        {
          fprintf (stderr, "expected KEY=VALUE: %s\n", argv[i]);
          return 2;
        }
      *eq = '\0';
      rd_kafka_NewTopic_set_config (topic, argv[i], eq + 1);
    }
  queue = rd_kafka_queue_new (rk);
  rd_kafka_CreateTopics (rk, &topic, 1, NULL, queue);
  event = rd_kafka_queue_poll (queue, 30000);
  if (event == NULL)
    fprintf (stderr, "no answer from Kafka\n");
  else if (rd_kafka_event_error (event) != RD_KAFKA_RESP_ERR_NO_ERROR)
    fprintf (stderr, "CreateTopics: %s\n", rd_kafka_event_error_string (event));
  else
    {
      results
          = rd_kafka_CreateTopics_result_topics (rd_kafka_event_CreateTopics_result (event), &n);
      if (n == 1
          && (rd_kafka_topic_result_error (results[0]) == RD_KAFKA_RESP_ERR_NO_ERROR
              || rd_kafka_topic_result_error (results[0])
                     == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS))
        status = 0;
      else if (n == 1)
        fprintf (stderr, "%s: %s\n", argv[2], rd_kafka_topic_result_error_string (results[0]));
    }
  if (event != NULL)
    rd_kafka_event_destroy (event);
  rd_kafka_NewTopic_destroy (topic);
  rd_kafka_queue_destroy (queue);
  rd_kafka_destroy (rk);
  return status;
}
