# SPDX-License-Identifier: MIT
# cmake -DARGS_FILE=<file> -P run-consumer.cmake
# Configures, builds (-j2) and runs one consumer project of tests/package. ARGS_FILE (written by
# tests/package/CMakeLists.txt) sets CONSUMER_SOURCE_DIR, CONSUMER_BINARY_DIR, CONSUMER_GENERATOR and
# CONSUMER_OPTIONS. Every consumer builds an executable named `consumer` at the top of its build dir,
# which must exit 0.
cmake_minimum_required(VERSION 3.21)
if(NOT ARGS_FILE OR NOT EXISTS "${ARGS_FILE}")
  message(FATAL_ERROR "run-consumer.cmake: pass -DARGS_FILE=<existing file> (got '${ARGS_FILE}')")
endif()
include("${ARGS_FILE}")

function(step what)
  list(JOIN ARGN " " command)
  message(STATUS "[${what}] ${command}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc STREQUAL "0")
    message(FATAL_ERROR "consumer ${CONSUMER_SOURCE_DIR}: ${what} failed (${rc})")
  endif()
endfunction()

# Configure afresh each time, so a cached result (say midas_DIR) cannot hide a broken package;
# the object files stay, so running the test again without changes is quick.
file(REMOVE "${CONSUMER_BINARY_DIR}/CMakeCache.txt")
file(REMOVE "${CONSUMER_BINARY_DIR}/consumer")
step(configure "${CMAKE_COMMAND}" -S "${CONSUMER_SOURCE_DIR}" -B "${CONSUMER_BINARY_DIR}"
     -G "${CONSUMER_GENERATOR}" --no-warn-unused-cli ${CONSUMER_OPTIONS})
step(build "${CMAKE_COMMAND}" --build "${CONSUMER_BINARY_DIR}" --parallel 2)
if(NOT EXISTS "${CONSUMER_BINARY_DIR}/consumer")
  message(FATAL_ERROR "consumer ${CONSUMER_SOURCE_DIR}: built, but ${CONSUMER_BINARY_DIR}/consumer is missing")
endif()
step(run "${CONSUMER_BINARY_DIR}/consumer")
message(STATUS "consumer ${CONSUMER_SOURCE_DIR}: configured, built and ran")
