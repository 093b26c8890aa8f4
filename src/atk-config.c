/* SPDX-License-Identifier: MIT */
#include "atk-config.h"
