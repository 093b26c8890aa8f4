/* SPDX-License-Identifier: MIT */
#include "atk-cbor-json.h"
