/* SPDX-License-Identifier: MIT */
#include "atk-test-resolver.h"

#include "atk-test-util.h"

static void
on_resolved (GObject *source, GAsyncResult *res, gpointer user_data)
{
  AtkTestResolved *result = user_data;

  result->info = atk_did_resolver_resolve_finish (ATK_DID_RESOLVER (source), res, &result->error);
  result->done = TRUE;
}

void
atk_test_resolve_start (AtkDidResolver *resolver, const char *did, AtkTestResolved *result)
{
  atk_did_resolver_resolve_async (resolver, did, NULL, on_resolved, result);
}

void
atk_test_resolve_wait (AtkTestResolved *result)
{
  g_assert_true (atk_test_wait_for_flag (NULL, &result->done, 20000));
}

void
atk_test_resolve (AtkDidResolver *resolver, const char *did, AtkTestResolved *result)
{
  atk_test_resolve_start (resolver, did, result);
  atk_test_resolve_wait (result);
}

void
atk_test_resolved_clear (AtkTestResolved *result)
{
  g_clear_pointer (&result->info, atk_did_info_unref);
  g_clear_error (&result->error);
  result->done = FALSE;
}

AtkDidResolver *
atk_test_resolver_new (const char *plc_url, const char *api_url)
{
  g_autoptr (GError) error = NULL;
  AtkDidResolver *resolver = atk_did_resolver_new (plc_url, api_url, &error);

  g_assert_no_error (error);
  return resolver;
}

guint64
atk_test_doc_requests (AtkDidResolver *resolver, const char *status)
{
  return atk_did_resolver_get_request_count (resolver, "plc", "did_doc", status, "false");
}

guint64
atk_test_handle_requests (AtkDidResolver *resolver, const char *kind, const char *status)
{
  return atk_handle_resolver_get_request_count (atk_did_resolver_get_handle_resolver (resolver),
                                                kind, status);
}

void
atk_test_set_dns_zone (const char *json)
{
  g_autoptr (GError) error = NULL;
  const char *path = g_getenv ("ATK_TEST_DNS_ZONE");

  g_assert_nonnull (path);
  g_file_set_contents (path, json, -1, &error);
  g_assert_no_error (error);
}
