# SPDX-License-Identifier: MIT
# cmake -DPREFIX=<install prefix> -P check-headers.cmake
# The public headers must never include a backend's C headers (hiredis, libpq): consumers would
# need them to compile, and midas links those libraries PRIVATE.
cmake_minimum_required(VERSION 3.21)
file(GLOB_RECURSE headers "${PREFIX}/include/midas/*")
list(LENGTH headers count)
if(count EQUAL 0)
  message(FATAL_ERROR "no header installed under ${PREFIX}/include/midas")
endif()

set(offending "")
foreach(h IN LISTS headers)
  file(STRINGS "${h}" lines
       REGEX "^[ \t]*#[ \t]*include[ \t]*[<\"][^>\"]*(hiredis|libpq-fe|libpq/|postgresql/)")
  foreach(line IN LISTS lines)
    file(RELATIVE_PATH rel "${PREFIX}" "${h}")
    list(APPEND offending "${rel}: ${line}")
  endforeach()
endforeach()
if(offending)
  list(JOIN offending "\n  " text)
  message(FATAL_ERROR "installed public headers include backend C headers:\n  ${text}")
endif()
message(STATUS "${count} installed headers, none includes hiredis or libpq")
