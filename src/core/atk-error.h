/* at-kafka: the error domain shared by every part of the daemon.
 * SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define ATK_ERROR (atk_error_quark ())

typedef enum
{
  ATK_ERROR_FAILED,
  ATK_ERROR_BAD_CONFIG,     /* an option or environment variable is invalid */
  ATK_ERROR_BAD_FRAME,      /* subscribeRepos framing: header/body shape, missing fields */
  ATK_ERROR_BAD_CBOR,       /* not valid DAG-CBOR */
  ATK_ERROR_BAD_DATA_MODEL, /* valid CBOR, but breaks the atproto data model ($type, blob, $link…)
                             */
  ATK_ERROR_BAD_CAR,        /* CAR v1 structure */
  ATK_ERROR_BAD_CID,        /* CID bytes or string */
  ATK_ERROR_CID_MISMATCH,   /* block bytes do not hash to their CID */
  ATK_ERROR_MISSING_BLOCK,  /* an op's CID is not in the commit's CAR */
  ATK_ERROR_TOO_LARGE,      /* over a configured or protocol limit */
  ATK_ERROR_TRUNCATED,      /* input ended inside a length or a value */
  ATK_ERROR_KAFKA,          /* librdkafka configuration or produce failure */
  ATK_ERROR_UNSUPPORTED,
} AtkError;

GQuark atk_error_quark (void);

/* A short, stable, metric-friendly name for an error code ("bad_cbor", …). */
const char *atk_error_kind_name (const GError *error);

G_END_DECLS
