/* SPDX-License-Identifier: MIT */
#include "atk-cursor-store.h"
