// SPDX-License-Identifier: MIT
#pragma once
/// How doctest prints midas values when a check fails.

#include <doctest/doctest.h>

#include <chrono>
#include <midas/error_classifier.hpp>
#include <midas/task.hpp>
#include <string>

namespace doctest {

template <>
struct StringMaker<std::chrono::milliseconds> {
  static String convert(const std::chrono::milliseconds& d) {
    return (std::to_string(d.count()) + "ms").c_str();
  }
};

template <>
struct StringMaker<midas::Decision> {
  static String convert(const midas::Decision& d) {
    std::string s{midas::to_string(d.kind())};
    if (d.kind() == midas::Decision::Kind::retry_after ||
        d.kind() == midas::Decision::Kind::snooze) {
      s += "(" + std::to_string(d.delay().count()) + "ms)";
    }
    return s.c_str();
  }
};

template <>
struct StringMaker<midas::TaskStatus> {
  static String convert(const midas::TaskStatus& s) {
    return std::string{midas::to_string(s)}.c_str();
  }
};

template <>
struct StringMaker<midas::TimePoint> {
  static String convert(const midas::TimePoint& t) { return midas::format_time(t).c_str(); }
};

}  // namespace doctest
