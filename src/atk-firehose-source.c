/* SPDX-License-Identifier: MIT */
#include "atk-firehose-source.h"
