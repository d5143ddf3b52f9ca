# SPDX-License-Identifier: MIT
# midas_set_warnings(target): the project's warnings, PRIVATE so consumers never inherit them.
function(midas_set_warnings target)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE
      -Wall -Wextra -Wpedantic -Wconversion -Wsign-conversion -Wshadow -Wnon-virtual-dtor
      -Wold-style-cast -Woverloaded-virtual)
    if(MIDAS_WARNINGS_AS_ERRORS)
      target_compile_options(${target} PRIVATE -Werror)
    endif()
  endif()
endfunction()
