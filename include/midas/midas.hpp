// SPDX-License-Identifier: MIT
#pragma once

/// Everything a midas user needs: include this one header.
#include "midas/clock.hpp"
#include "midas/error.hpp"
#include "midas/error_classifier.hpp"
#include "midas/log.hpp"
#include "midas/queue.hpp"
#include "midas/registry.hpp"
#include "midas/result.hpp"
#include "midas/retry_policy.hpp"
#include "midas/task.hpp"
#include "midas/task_context.hpp"
#include "midas/version.hpp"
#include "midas/worker.hpp"
