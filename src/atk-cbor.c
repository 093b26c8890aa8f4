/* SPDX-License-Identifier: MIT */
#include "atk-cbor.h"
