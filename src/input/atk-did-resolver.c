/* at-kafka: DID resolution with a bounded, expiring cache.
 *
 * A "job" is one lookup of one DID: the document, then (with details) the audit log and the
 * profile side by side. Callers asking for a DID whose job is running join it. A job that
 * invalidate() overtook is detached: it still answers its callers, but fills no cache and
 * takes no new callers, so an #identity event is always followed by a fresh lookup.
 * SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "at-kafka-did"

#include "atk-did-resolver.h"

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <string.h>

#include "atk-error.h"
#include "atk-tap-json.h"
#include "atk-time.h"

#define USER_AGENT "at-kafka/" ATK_VERSION
#define MAX_DID_LEN 2048
#define MAX_BODY_BYTES (1024 * 1024) /* a DID document or profile is a few kB */

typedef struct
{
  char *did;
  AtkDidInfo *info; /* NULL for a negative entry */
  GError *error;    /* set for a negative entry */
  gint64 expires_us;
  GList link; /* in self->lru, most recent first; link.data = the entry */
} CacheEntry;

typedef struct
{
  AtkDidResolver *self;
  char *did;
  GPtrArray *tasks; /* GTask*, the callers */
  AtkDidInfo *info;
  GError *error;
  guint requests_left;
  gboolean detached; /* invalidated while running: answer, but do not cache */
  gboolean started;
  GCancellable *cancellable;
} Job;

typedef void (*ResponseHandler) (Job *job, guint status, GBytes *body, const GError *error);

typedef struct
{
  Job *job;
  SoupMessage *msg;
  const char *service; /* static */
  const char *kind;    /* static */
  ResponseHandler handler;
} Request;

struct _AtkDidResolver
{
  GObject parent_instance;

  char *plc_url; /* without a trailing '/' */
  char *api_url; /* or NULL */
  char *did_web_scheme;
  gboolean fetch_details;
  guint max_entries;
  gint64 ttl_us;
  gint64 negative_ttl_us;
  guint max_concurrency;
  AtkDidResolverClock clock;
  gpointer clock_data;

  SoupSession *session;
  GHashTable *cache; /* did → CacheEntry* (owned) */
  GQueue lru;        /* of CacheEntry, through entry->link */
  GHashTable *jobs;  /* did → Job* (not owned): running or queued, not detached */
  GQueue queued;     /* Job* waiting for a free slot */
  guint running;

  GHashTable *counts; /* "service\nkind\nstatus\ncached" → guint64* */
  guint64 network_requests;
};

G_DEFINE_FINAL_TYPE (AtkDidResolver, atk_did_resolver, G_TYPE_OBJECT)

static void start_job (Job *job);

/* ---- AtkDidInfo ---- */

static void
did_info_clear (gpointer data)
{
  AtkDidInfo *info = data;

  g_free (info->did);
  g_free (info->handle);
  g_free (info->pds_endpoint);
  g_free (info->pds_host);
  g_free (info->document);
  g_free (info->created_at);
  g_free (info->profile);
}

AtkDidInfo *
atk_did_info_ref (AtkDidInfo *info)
{
  return g_atomic_rc_box_acquire (info);
}

void
atk_did_info_unref (AtkDidInfo *info)
{
  g_atomic_rc_box_release_full (info, did_info_clear);
}

#define DID_JSON_MAX_DEPTH 64

static JsonNode *
parse_json (const char *json, gssize len, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autoptr (GError) local_error = NULL;
  gsize n = len < 0 ? strlen (json) : (gsize)len;

  /* json-glib takes raw control characters inside strings and writes them back raw: what
   * we re-serialize into Kafka messages would not be JSON. RFC 8259 forbids them. */
  for (gsize i = 0; i < n; i++)
    if ((guchar)json[i] < 0x20 && json[i] != '\t' && json[i] != '\n' && json[i] != '\r')
      {
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                     "Not JSON: control character 0x%02x at byte %" G_GSIZE_FORMAT, (guchar)json[i],
                     i);
        return NULL;
      }
  /* A DID document is a few levels deep; a did:web host is anyone's, and json-glib recurses
   * once per level. */
  if (!atk_json_depth_within (json, n, DID_JSON_MAX_DEPTH))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "Not a DID document: nested deeper than %u levels", DID_JSON_MAX_DEPTH);
      return NULL;
    }
  if (!json_parser_load_from_data (parser, json, len, &local_error))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "Not JSON: %s",
                   local_error->message);
      return NULL;
    }
  /* An empty body parses, to no value at all. */
  if (json_parser_get_root (parser) == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "Not JSON: empty");
      return NULL;
    }
  return json_node_ref (json_parser_get_root (parser));
}

/* A string member, or NULL when it is missing or not a string (json-glib's own getter
 * crashes callers on a number and warns on a container: the document is the peer's). */
static const char *
string_member (JsonObject *object, const char *name)
{
  JsonNode *node = json_object_get_member (object, name);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

/* "at://alice.example.com" → "alice.example.com" */
static char *
find_handle (JsonObject *doc)
{
  JsonNode *node = json_object_get_member (doc, "alsoKnownAs");
  JsonArray *names;

  if (node == NULL || !JSON_NODE_HOLDS_ARRAY (node))
    return NULL;
  names = json_node_get_array (node);
  for (guint i = 0; i < json_array_get_length (names); i++)
    {
      JsonNode *name = json_array_get_element (names, i);
      const char *text = JSON_NODE_HOLDS_VALUE (name) ? json_node_get_string (name) : NULL;

      if (text != NULL && g_str_has_prefix (text, "at://") && text[5] != '\0')
        return g_strdup (text + 5);
    }
  return NULL;
}

static gboolean
is_pds_service (JsonObject *service, const char *did)
{
  const char *id = string_member (service, "id");

  if (id == NULL)
    return FALSE;

  return strcmp (id, "#atproto_pds") == 0
         || (g_str_has_prefix (id, did) && strcmp (id + strlen (did), "#atproto_pds") == 0);
}

static void
find_pds (JsonObject *doc, AtkDidInfo *info)
{
  JsonNode *node = json_object_get_member (doc, "service");
  JsonArray *services;

  if (node == NULL || !JSON_NODE_HOLDS_ARRAY (node))
    return;
  services = json_node_get_array (node);
  for (guint i = 0; i < json_array_get_length (services); i++)
    {
      JsonNode *element = json_array_get_element (services, i);
      JsonObject *service
          = JSON_NODE_HOLDS_OBJECT (element) ? json_node_get_object (element) : NULL;
      const char *endpoint;
      g_autoptr (GUri) uri = NULL;

      if (service == NULL || !is_pds_service (service, info->did))
        continue;
      endpoint = string_member (service, "serviceEndpoint");
      if (endpoint == NULL)
        continue;
      uri = g_uri_parse (endpoint, G_URI_FLAGS_NONE, NULL);
      info->pds_endpoint = g_strdup (endpoint);
      if (uri != NULL && g_uri_get_host (uri) != NULL)
        info->pds_host = g_ascii_strdown (g_uri_get_host (uri), -1);
      return;
    }
}

AtkDidInfo *
atk_did_info_new_from_document (const char *did, const char *json, gssize len, GError **error)
{
  g_autoptr (JsonNode) root = parse_json (json, len, error);
  g_autoptr (AtkDidInfo) info = NULL;
  JsonObject *doc;

  if (root == NULL)
    return NULL;
  doc = JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : NULL;
  if (doc == NULL || g_strcmp0 (string_member (doc, "id"), did) != 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "Not a DID document for %s", did);
      return NULL;
    }
  info = g_atomic_rc_box_new0 (AtkDidInfo);
  info->did = g_strdup (did);
  info->handle = find_handle (doc);
  find_pds (doc, info);
  info->document = json_to_string (root, FALSE);
  return g_steal_pointer (&info);
}

/* ---- construction ---- */

static void
cache_entry_free (gpointer data)
{
  CacheEntry *entry = data;

  g_free (entry->did);
  g_clear_pointer (&entry->info, atk_did_info_unref);
  g_clear_error (&entry->error);
  g_free (entry);
}

static void
atk_did_resolver_finalize (GObject *object)
{
  AtkDidResolver *self = ATK_DID_RESOLVER (object);

  /* Jobs hold their callers' tasks, which hold us: none can be left here. */
  g_hash_table_destroy (self->jobs);
  g_hash_table_destroy (self->cache);
  g_hash_table_destroy (self->counts);
  g_clear_object (&self->session);
  g_free (self->plc_url);
  g_free (self->api_url);
  g_free (self->did_web_scheme);
  G_OBJECT_CLASS (atk_did_resolver_parent_class)->finalize (object);
}

static void
atk_did_resolver_class_init (AtkDidResolverClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = atk_did_resolver_finalize;
}

static void
atk_did_resolver_init (AtkDidResolver *self)
{
  self->did_web_scheme = g_strdup ("https");
  self->max_entries = 100000;
  self->ttl_us = (gint64)3600 * G_USEC_PER_SEC;
  self->negative_ttl_us = (gint64)60 * G_USEC_PER_SEC;
  self->max_concurrency = 32;
  self->cache = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, cache_entry_free);
  self->jobs = g_hash_table_new (g_str_hash, g_str_equal);
  self->counts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_queue_init (&self->lru);
  g_queue_init (&self->queued);
}

static char *
check_url (const char *url, const char *what, GError **error)
{
  g_autoptr (GUri) uri = g_uri_parse (url, G_URI_FLAGS_NONE, NULL);
  g_autofree char *text = NULL;
  const char *scheme;

  scheme = uri != NULL ? g_uri_get_scheme (uri) : NULL;
  if (uri == NULL || g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0'
      || (g_ascii_strcasecmp (scheme, "http") != 0 && g_ascii_strcasecmp (scheme, "https") != 0))
    {
      g_set_error (error, ATK_ERROR, ATK_ERROR_BAD_CONFIG,
                   "Invalid %s “%s”: expected an http or https URL", what, url);
      return NULL;
    }
  text = g_strdup (url);
  while (*text != '\0' && text[strlen (text) - 1] == '/')
    text[strlen (text) - 1] = '\0';
  return g_steal_pointer (&text);
}

AtkDidResolver *
atk_did_resolver_new (const char *plc_url, const char *api_url, GError **error)
{
  g_autoptr (AtkDidResolver) self = NULL;
  g_autofree char *plc = NULL;
  g_autofree char *api = NULL;

  g_return_val_if_fail (plc_url != NULL, NULL);

  if ((plc = check_url (plc_url, "PLC host", error)) == NULL)
    return NULL;
  if (api_url != NULL && *api_url != '\0' && (api = check_url (api_url, "API host", error)) == NULL)
    return NULL;

  self = g_object_new (ATK_TYPE_DID_RESOLVER, NULL);
  self->plc_url = g_steal_pointer (&plc);
  self->api_url = g_steal_pointer (&api);
  self->session = soup_session_new_with_options ("user-agent", USER_AGENT, "timeout", 5,
                                                 "max-conns", 64, "max-conns-per-host", 32, NULL);
  return g_steal_pointer (&self);
}

void
atk_did_resolver_set_fetch_details (AtkDidResolver *self, gboolean fetch_details)
{
  g_return_if_fail (ATK_IS_DID_RESOLVER (self));
  self->fetch_details = !!fetch_details;
}

static void
evict_to (AtkDidResolver *self, guint max)
{
  while (self->lru.length > max)
    {
      CacheEntry *entry = g_queue_peek_tail (&self->lru);

      g_queue_unlink (&self->lru, &entry->link);
      g_hash_table_remove (self->cache, entry->did);
    }
}

void
atk_did_resolver_set_cache (AtkDidResolver *self, guint max_entries, guint ttl_s,
                            guint negative_ttl_s)
{
  g_return_if_fail (ATK_IS_DID_RESOLVER (self));
  self->max_entries = max_entries;
  self->ttl_us = (gint64)ttl_s * G_USEC_PER_SEC;
  self->negative_ttl_us = (gint64)negative_ttl_s * G_USEC_PER_SEC;
  evict_to (self, max_entries);
}

void
atk_did_resolver_set_timeout (AtkDidResolver *self, guint seconds)
{
  g_return_if_fail (ATK_IS_DID_RESOLVER (self));
  g_object_set (self->session, "timeout", MAX (seconds, 1u), NULL);
}

void
atk_did_resolver_set_max_concurrency (AtkDidResolver *self, guint max)
{
  g_return_if_fail (ATK_IS_DID_RESOLVER (self));
  self->max_concurrency = MAX (max, 1u);
}

void
atk_did_resolver_set_did_web_scheme (AtkDidResolver *self, const char *scheme)
{
  g_return_if_fail (ATK_IS_DID_RESOLVER (self));
  g_return_if_fail (g_strcmp0 (scheme, "http") == 0 || g_strcmp0 (scheme, "https") == 0);
  g_free (self->did_web_scheme);
  self->did_web_scheme = g_strdup (scheme);
}

void
atk_did_resolver_set_clock (AtkDidResolver *self, AtkDidResolverClock clock, gpointer user_data)
{
  g_return_if_fail (ATK_IS_DID_RESOLVER (self));
  self->clock = clock;
  self->clock_data = user_data;
}

static gint64
now_us (AtkDidResolver *self)
{
  return self->clock != NULL ? self->clock (self->clock_data) : g_get_monotonic_time ();
}

/* ---- counters ---- */

static void
count (AtkDidResolver *self, const char *service, const char *kind, const char *status,
       gboolean cached)
{
  g_autofree char *key = g_strjoin ("\n", service, kind, status, cached ? "true" : "false", NULL);
  guint64 *value = g_hash_table_lookup (self->counts, key);

  if (value == NULL)
    {
      value = g_new0 (guint64, 1);
      g_hash_table_insert (self->counts, g_steal_pointer (&key), value);
    }
  (*value)++;
  if (!cached)
    self->network_requests++;
}

guint64
atk_did_resolver_get_request_count (AtkDidResolver *self, const char *service, const char *kind,
                                    const char *status, const char *cached)
{
  g_autofree char *key = NULL;
  guint64 *value;

  g_return_val_if_fail (ATK_IS_DID_RESOLVER (self), 0);
  key = g_strjoin ("\n", service, kind, status, cached, NULL);
  value = g_hash_table_lookup (self->counts, key);
  return value != NULL ? *value : 0;
}

guint64
atk_did_resolver_get_network_requests (AtkDidResolver *self)
{
  g_return_val_if_fail (ATK_IS_DID_RESOLVER (self), 0);
  return self->network_requests;
}

guint
atk_did_resolver_get_cache_size (AtkDidResolver *self)
{
  g_return_val_if_fail (ATK_IS_DID_RESOLVER (self), 0);
  return self->lru.length;
}

static gint
compare_keys (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *)a, *(const char *const *)b);
}

static void
render_family (AtkDidResolver *self, GString *out, const char *service, const char *name,
               const char *help)
{
  g_autoptr (GPtrArray) keys = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer key;
  g_autofree char *prefix = g_strconcat (service, "\n", NULL);

  g_hash_table_iter_init (&iter, self->counts);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    if (g_str_has_prefix (key, prefix))
      g_ptr_array_add (keys, key);
  g_ptr_array_sort (keys, compare_keys);

  g_string_append_printf (out, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
  for (guint i = 0; i < keys->len; i++)
    {
      g_auto (GStrv) parts = g_strsplit (keys->pdata[i], "\n", 4);
      const guint64 *value = g_hash_table_lookup (self->counts, keys->pdata[i]);

      g_string_append_printf (out,
                              "%s{kind=\"%s\",status=\"%s\",cached=\"%s\"} %" G_GUINT64_FORMAT "\n",
                              name, parts[1], parts[2], parts[3], *value);
    }
}

void
atk_did_resolver_render_prometheus (AtkDidResolver *self, GString *out)
{
  g_return_if_fail (ATK_IS_DID_RESOLVER (self));

  render_family (self, out, "plc", "atkafka_plc_requests",
                 "DID document and audit log lookups by kind, status and cache use.");
  render_family (self, out, "api", "atkafka_api_requests",
                 "AppView profile lookups by kind, status and cache use.");
  g_string_append_printf (out,
                          "# HELP atkafka_cache_size Entries in the identity caches.\n"
                          "# TYPE atkafka_cache_size gauge\n"
                          "atkafka_cache_size{kind=\"did_doc\"} %u\n",
                          self->lru.length);
}

/* ---- the cache ---- */

static const char *
error_status (const GError *error)
{
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
    return "not_found";
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
    return "timeout";
  return "error";
}

static CacheEntry *
cache_get (AtkDidResolver *self, const char *did)
{
  CacheEntry *entry = g_hash_table_lookup (self->cache, did);

  if (entry == NULL)
    return NULL;
  if (now_us (self) >= entry->expires_us)
    {
      g_queue_unlink (&self->lru, &entry->link);
      g_hash_table_remove (self->cache, did);
      return NULL;
    }
  g_queue_unlink (&self->lru, &entry->link);
  g_queue_push_head_link (&self->lru, &entry->link);
  return entry;
}

static void
cache_put (AtkDidResolver *self, const char *did, AtkDidInfo *info, const GError *error)
{
  CacheEntry *entry;
  gint64 ttl = info != NULL ? self->ttl_us : self->negative_ttl_us;

  if (self->max_entries == 0 || ttl <= 0)
    return;
  entry = g_hash_table_lookup (self->cache, did);
  if (entry != NULL)
    {
      g_queue_unlink (&self->lru, &entry->link);
      g_hash_table_remove (self->cache, did);
    }
  entry = g_new0 (CacheEntry, 1);
  entry->did = g_strdup (did);
  entry->info = info != NULL ? atk_did_info_ref (info) : NULL;
  entry->error = error != NULL ? g_error_copy (error) : NULL;
  entry->expires_us = now_us (self) + ttl;
  entry->link.data = entry;
  g_hash_table_insert (self->cache, entry->did, entry);
  g_queue_push_head_link (&self->lru, &entry->link);
  evict_to (self, self->max_entries);
}

void
atk_did_resolver_cache_insert (AtkDidResolver *self, const char *did, AtkDidInfo *info,
                               const GError *error)
{
  g_return_if_fail (ATK_IS_DID_RESOLVER (self));
  g_return_if_fail (did != NULL);
  g_return_if_fail ((info != NULL) != (error != NULL));
  cache_put (self, did, info, error);
}

AtkDidInfo *
atk_did_resolver_lookup_cached (AtkDidResolver *self, const char *did, GError **error)
{
  CacheEntry *entry;

  g_return_val_if_fail (ATK_IS_DID_RESOLVER (self), NULL);
  g_return_val_if_fail (did != NULL, NULL);

  entry = cache_get (self, did);
  if (entry == NULL)
    return NULL;
  count (self, "plc", "did_doc", entry->info != NULL ? "ok" : error_status (entry->error), TRUE);
  if (entry->info == NULL)
    {
      g_propagate_error (error, g_error_copy (entry->error));
      return NULL;
    }
  return atk_did_info_ref (entry->info);
}

void
atk_did_resolver_invalidate (AtkDidResolver *self, const char *did)
{
  CacheEntry *entry;
  Job *job;

  g_return_if_fail (ATK_IS_DID_RESOLVER (self));

  entry = g_hash_table_lookup (self->cache, did);
  if (entry != NULL)
    {
      g_queue_unlink (&self->lru, &entry->link);
      g_hash_table_remove (self->cache, did);
    }
  job = g_hash_table_lookup (self->jobs, did);
  if (job != NULL && job->started)
    {
      job->detached = TRUE;
      g_hash_table_remove (self->jobs, did);
    }
}

/* ---- jobs ---- */

static void
job_free (Job *job)
{
  g_ptr_array_unref (job->tasks);
  g_clear_pointer (&job->info, atk_did_info_unref);
  g_clear_error (&job->error);
  g_clear_object (&job->cancellable);
  g_free (job->did);
  g_free (job);
}

static void
finish_job (Job *job)
{
  AtkDidResolver *self = job->self;
  g_autoptr (GPtrArray) tasks = g_ptr_array_ref (job->tasks);

  if (!job->detached)
    {
      g_hash_table_remove (self->jobs, job->did);
      cache_put (self, job->did, job->info, job->error);
    }
  self->running--;
  for (guint i = 0; i < tasks->len; i++)
    {
      GTask *task = tasks->pdata[i];

      if (job->info != NULL)
        g_task_return_pointer (task, atk_did_info_ref (job->info),
                               (GDestroyNotify)atk_did_info_unref);
      else
        g_task_return_error (task, g_error_copy (job->error));
    }
  job_free (job);

  while (self->running < self->max_concurrency && self->queued.length > 0)
    start_job (g_queue_pop_head (&self->queued));
}

static void
request_done (Job *job)
{
  if (--job->requests_left == 0)
    finish_job (job);
}

static void
on_response (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Request *request = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) body
      = soup_session_send_and_read_finish (SOUP_SESSION (source), result, &error);
  guint status = soup_message_get_status (request->msg);
  Job *job = request->job;
  const char *label;

  if (error == NULL && (status == SOUP_STATUS_NOT_FOUND || status == SOUP_STATUS_GONE))
    g_set_error (&error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "%s: HTTP %u", job->did, status);
  else if (error == NULL && status != SOUP_STATUS_OK)
    g_set_error (&error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: HTTP %u %s", job->did, status,
                 soup_message_get_reason_phrase (request->msg));
  else if (error == NULL && g_bytes_get_size (body) > MAX_BODY_BYTES)
    g_set_error (&error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s: answer too large", job->did);
  label = error == NULL ? "ok" : error_status (error);
  count (job->self, request->service, request->kind, label, FALSE);
  if (error != NULL)
    g_debug ("%s lookup of %s: %s", request->kind, job->did, error->message);

  request->handler (job, status, error == NULL ? body : NULL, error);
  g_object_unref (request->msg);
  g_free (request);
  request_done (job);
}

static void
send_get (Job *job, const char *url, const char *service, const char *kind, ResponseHandler handler)
{
  Request *request = g_new0 (Request, 1);

  request->job = job;
  request->service = service;
  request->kind = kind;
  request->handler = handler;
  request->msg = soup_message_new (SOUP_METHOD_GET, url);
  job->requests_left++;
  if (request->msg == NULL)
    {
      g_autoptr (GError) error
          = g_error_new (G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "Bad URL %s", url);

      count (job->self, service, kind, "error", FALSE);
      handler (job, 0, NULL, error);
      g_free (request);
      request_done (job);
      return;
    }
  soup_message_headers_replace (soup_message_get_request_headers (request->msg), "Accept",
                                "application/json");
  soup_session_send_and_read_async (job->self->session, request->msg, G_PRIORITY_DEFAULT,
                                    job->cancellable, on_response, request);
}

static void
on_audit_log (Job *job, guint status, GBytes *body, const GError *error)
{
  g_autoptr (JsonNode) root = NULL;
  JsonNode *first;
  const char *created_at;

  if (body == NULL || job->info == NULL)
    return;
  root = parse_json (g_bytes_get_data (body, NULL), g_bytes_get_size (body), NULL);
  if (root == NULL || !JSON_NODE_HOLDS_ARRAY (root)
      || json_array_get_length (json_node_get_array (root)) == 0)
    return;
  first = json_array_get_element (json_node_get_array (root), 0);
  if (!JSON_NODE_HOLDS_OBJECT (first))
    return;
  created_at = string_member (json_node_get_object (first), "createdAt");
  if (created_at == NULL
      || !atk_parse_datetime_ms (created_at, strlen (created_at), &job->info->created_at_ms))
    return;
  job->info->created_at = g_strdup (created_at);
}

static void
on_profile (Job *job, guint status, GBytes *body, const GError *error)
{
  g_autoptr (JsonNode) root = NULL;

  if (body == NULL || job->info == NULL)
    return;
  root = parse_json (g_bytes_get_data (body, NULL), g_bytes_get_size (body), NULL);
  if (root != NULL && JSON_NODE_HOLDS_OBJECT (root))
    job->info->profile = json_to_string (root, FALSE);
}

static void
fetch_details (Job *job)
{
  AtkDidResolver *self = job->self;
  g_autofree char *escaped = g_uri_escape_string (job->did, ":", FALSE);

  if (g_str_has_prefix (job->did, "did:plc:"))
    {
      g_autofree char *url = g_strdup_printf ("%s/%s/log/audit", self->plc_url, escaped);
      send_get (job, url, "plc", "audit_log", on_audit_log);
    }
  if (self->api_url != NULL)
    {
      g_autofree char *actor = g_uri_escape_string (job->did, NULL, FALSE);
      g_autofree char *url
          = g_strdup_printf ("%s/xrpc/app.bsky.actor.getProfile?actor=%s", self->api_url, actor);
      send_get (job, url, "api", "profile", on_profile);
    }
}

static void
on_document (Job *job, guint status, GBytes *body, const GError *error)
{
  g_autoptr (GError) local_error = NULL;
  AtkDidInfo *info;

  if (body == NULL)
    {
      job->error = g_error_copy (error);
      return;
    }
  info = atk_did_info_new_from_document (job->did, g_bytes_get_data (body, NULL),
                                         (gssize)g_bytes_get_size (body), &local_error);
  if (info == NULL)
    {
      job->error = g_steal_pointer (&local_error);
      return;
    }
  job->info = info;
  if (job->self->fetch_details)
    fetch_details (job);
}

/* did:web:example.com → https://example.com/.well-known/did.json;
 * did:web:example.com%3A8080:u:alice → https://example.com:8080/u/alice/did.json */
static char *
did_web_url (AtkDidResolver *self, const char *did)
{
  g_auto (GStrv) parts = g_strsplit (did + strlen ("did:web:"), ":", -1);
  g_autofree char *host = g_uri_unescape_string (parts[0], "/?#@");
  GString *url;

  if (host == NULL || *host == '\0')
    return NULL;
  for (const char *p = host; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && strchr ("-.:[]", *p) == NULL)
      return NULL;
  url = g_string_new (self->did_web_scheme);
  g_string_append_printf (url, "://%s", host);
  if (parts[1] == NULL)
    g_string_append (url, "/.well-known");
  for (guint i = 1; parts[i] != NULL; i++)
    {
      g_autofree char *segment = g_uri_unescape_string (parts[i], "/?#");

      if (segment == NULL || *segment == '\0')
        {
          g_string_free (url, TRUE);
          return NULL;
        }
      g_string_append_c (url, '/');
      g_string_append_uri_escaped (url, segment, NULL, FALSE);
    }
  g_string_append (url, "/did.json");
  return g_string_free (url, FALSE);
}

static void
on_unsupported_idle (gpointer user_data)
{
  request_done (user_data);
}

static gboolean
did_is_plausible (const char *did)
{
  gsize len = strlen (did);

  if (len > MAX_DID_LEN)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_isalnum (did[i]) && strchr (":._-%", did[i]) == NULL)
      return FALSE;
  return TRUE;
}

static void
start_job (Job *job)
{
  AtkDidResolver *self = job->self;
  g_autofree char *url = NULL;

  job->started = TRUE;
  self->running++;
  if (g_str_has_prefix (job->did, "did:plc:"))
    url = g_strdup_printf ("%s/%s", self->plc_url, job->did);
  else if (g_str_has_prefix (job->did, "did:web:"))
    url = did_web_url (self, job->did);

  if (url == NULL)
    {
      /* Nothing was asked of anyone: answer from an idle callback like every other path. */
      job->error
          = g_error_new (G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                         "Cannot resolve “%s”: only did:plc and did:web are supported", job->did);
      job->requests_left = 1;
      g_idle_add_once (on_unsupported_idle, job);
      return;
    }
  send_get (job, url, "plc", "did_doc", on_document);
}

static Job *
job_new (AtkDidResolver *self, const char *did)
{
  Job *job = g_new0 (Job, 1);

  job->self = self;
  job->did = g_strdup (did);
  job->tasks = g_ptr_array_new_with_free_func (g_object_unref);
  job->cancellable = g_cancellable_new ();
  return job;
}

void
atk_did_resolver_resolve_async (AtkDidResolver *self, const char *did, GCancellable *cancellable,
                                GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (AtkDidInfo) info = NULL;
  Job *job;

  g_return_if_fail (ATK_IS_DID_RESOLVER (self));
  g_return_if_fail (did != NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, atk_did_resolver_resolve_async);

  if (!g_str_has_prefix (did, "did:") || !did_is_plausible (did))
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                               "Not a resolvable DID: “%.100s”", did);
      return;
    }
  info = atk_did_resolver_lookup_cached (self, did, &error);
  if (info != NULL)
    {
      g_task_return_pointer (task, g_steal_pointer (&info), (GDestroyNotify)atk_did_info_unref);
      return;
    }
  if (error != NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  job = g_hash_table_lookup (self->jobs, did);
  if (job == NULL)
    {
      job = job_new (self, did);
      g_hash_table_insert (self->jobs, job->did, job);
      g_ptr_array_add (job->tasks, g_steal_pointer (&task));
      if (self->running < self->max_concurrency)
        start_job (job);
      else
        g_queue_push_tail (&self->queued, job);
      return;
    }
  g_ptr_array_add (job->tasks, g_steal_pointer (&task));
}

AtkDidInfo *
atk_did_resolver_resolve_finish (AtkDidResolver *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
