/* SPDX-License-Identifier: MIT */
#include "atk-error.h"

GQuark
atk_error_quark (void)
{
  return g_quark_from_static_string ("atk-error-quark");
}

const char *
atk_error_kind_name (const GError *error)
{
  static const char *const names[] = {
    [ATK_ERROR_FAILED] = "failed",
    [ATK_ERROR_BAD_CONFIG] = "bad_config",
    [ATK_ERROR_BAD_FRAME] = "bad_frame",
    [ATK_ERROR_BAD_CBOR] = "bad_cbor",
    [ATK_ERROR_BAD_DATA_MODEL] = "bad_data_model",
    [ATK_ERROR_BAD_CAR] = "bad_car",
    [ATK_ERROR_BAD_CID] = "bad_cid",
    [ATK_ERROR_CID_MISMATCH] = "cid_mismatch",
    [ATK_ERROR_MISSING_BLOCK] = "missing_block",
    [ATK_ERROR_TOO_LARGE] = "too_large",
    [ATK_ERROR_TRUNCATED] = "truncated",
    [ATK_ERROR_KAFKA] = "kafka",
    [ATK_ERROR_UNSUPPORTED] = "unsupported",
  };

  if (error == NULL)
    return "none";
  if (error->domain != ATK_ERROR || error->code < 0 || (gsize)error->code >= G_N_ELEMENTS (names))
    return "other";
  return names[error->code];
}
