/* SPDX-License-Identifier: MIT */
#include "atk-cid.h"
