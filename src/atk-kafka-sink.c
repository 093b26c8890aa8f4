/* SPDX-License-Identifier: MIT */
#include "atk-kafka-sink.h"
