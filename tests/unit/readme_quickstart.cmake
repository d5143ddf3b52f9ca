# SPDX-License-Identifier: MIT
# cmake -DREADME=README.md -DSOURCE=examples/quickstart/quickstart.cpp -P readme_quickstart.cmake
# Fails unless the first ```cpp block after the README's "## Quick start" heading is SOURCE,
# byte for byte.
foreach(var README SOURCE)
  if(NOT EXISTS "${${var}}")
    message(FATAL_ERROR "${var} not found: '${${var}}'")
  endif()
endforeach()

file(READ "${README}" readme)
file(READ "${SOURCE}" source)

string(FIND "${readme}" "\n## Quick start\n" heading)
if(heading EQUAL -1)
  message(FATAL_ERROR "${README} has no '## Quick start' heading")
endif()
string(SUBSTRING "${readme}" ${heading} -1 readme)

set(fence_open "\n```cpp\n")
string(FIND "${readme}" "${fence_open}" open)
if(open EQUAL -1)
  message(FATAL_ERROR "no ```cpp block after '## Quick start' in ${README}")
endif()
string(LENGTH "${fence_open}" open_length)
math(EXPR start "${open} + ${open_length}")
string(SUBSTRING "${readme}" ${start} -1 readme)

string(FIND "${readme}" "\n```\n" close)
if(close EQUAL -1)
  message(FATAL_ERROR "the quick start ```cpp block in ${README} is not closed")
endif()
math(EXPR length "${close} + 1")  # keep the last line's newline
string(SUBSTRING "${readme}" 0 ${length} block)

if(NOT block STREQUAL source)
  file(WRITE "${CMAKE_CURRENT_BINARY_DIR}/readme_quickstart.cpp" "${block}")
  message(FATAL_ERROR "The README's quick start differs from ${SOURCE}.\n"
                      "Compare: diff -u ${SOURCE} ${CMAKE_CURRENT_BINARY_DIR}/readme_quickstart.cpp\n"
                      "Copy the file into the README (or the README into the file); they must match.")
endif()
message(STATUS "README quick start matches ${SOURCE}")
