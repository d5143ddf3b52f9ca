// SPDX-License-Identifier: MIT
#include "metrics.hpp"

#include <charconv>
#include <sstream>

namespace midas_api {
namespace {

// Shortest text that reads back as `v` ("0.005", "3", "1e+30").
std::string format_number(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  if (ec != std::errc{}) return "NaN";
  return std::string(buf, end);
}

std::string label_set(const std::vector<std::string>& names, const std::vector<std::string>& values,
                      std::string_view extra_name = {}, std::string_view extra_value = {}) {
  std::string out;
  for (std::size_t i = 0; i < names.size() && i < values.size(); ++i) {
    out += out.empty() ? "{" : ",";
    out += names[i] + "=\"" + escape_label_value(values[i]) + "\"";
  }
  if (!extra_name.empty()) {
    out += out.empty() ? "{" : ",";
    out += std::string(extra_name) + "=\"" + escape_label_value(extra_value) + "\"";
  }
  if (!out.empty()) out += "}";
  return out;
}

}  // namespace

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void Metrics::add(CounterFamily& family, Labels labels, double v) {
  const std::lock_guard lock(mutex_);
  family.series[std::move(labels)] += v;
}

void Metrics::observe_request(std::string_view slug, std::string_view endpoint, int status,
                              double seconds) {
  Labels labels{std::string(slug), std::string(endpoint), std::to_string(status)};
  const std::lock_guard lock(mutex_);
  requests_.series[labels] += 1;
  Histogram& h = latency_[labels];
  for (std::size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) ++h.buckets[i];
  }
  ++h.count;
  h.sum += seconds;
}

void Metrics::login(std::string_view slug, bool success, int code) {
  if (success) {
    add(login_success_, {std::string(slug)});
  } else {
    add(login_failure_, {std::string(slug), std::to_string(code)});
  }
}

void Metrics::join(std::string_view slug, std::string_view outcome) {
  add(join_, {std::string(slug), std::string(outcome)});
}

void Metrics::task(std::string_view type, std::string_view outcome) {
  add(tasks_, {std::string(type), std::string(outcome)});
}

void Metrics::publish(std::string_view target, std::string_view outcome) {
  add(publish_, {std::string(target), std::string(outcome)});
}

double Metrics::counter_value(std::string_view name, const std::vector<std::string>& labels) const {
  const std::lock_guard lock(mutex_);
  for (const CounterFamily* f :
       {&requests_, &login_success_, &login_failure_, &join_, &tasks_, &publish_}) {
    if (f->name == name) {
      auto it = f->series.find(labels);
      return it == f->series.end() ? 0 : it->second;
    }
  }
  return 0;
}

std::string Metrics::render(const std::vector<Gauge>& gauges) const {
  std::ostringstream os;
  {
    const std::lock_guard lock(mutex_);
    for (const CounterFamily* f :
         {&requests_, &login_success_, &login_failure_, &join_, &tasks_, &publish_}) {
      os << "# HELP " << f->name << ' ' << f->help << '\n';
      os << "# TYPE " << f->name << " counter\n";
      for (const auto& [labels, value] : f->series) {
        os << f->name << label_set(f->label_names, labels) << ' ' << format_number(value) << '\n';
      }
    }
    const std::string h = "midas_api_request_duration_seconds";
    const std::vector<std::string> names{"slug", "endpoint", "status"};
    os << "# HELP " << h << " HTTP request latency in seconds.\n";
    os << "# TYPE " << h << " histogram\n";
    for (const auto& [labels, hist] : latency_) {
      for (std::size_t i = 0; i < kBuckets.size(); ++i) {
        os << h << "_bucket" << label_set(names, labels, "le", format_number(kBuckets[i])) << ' '
           << hist.buckets[i] << '\n';
      }
      os << h << "_bucket" << label_set(names, labels, "le", "+Inf") << ' ' << hist.count << '\n';
      os << h << "_sum" << label_set(names, labels) << ' ' << format_number(hist.sum) << '\n';
      os << h << "_count" << label_set(names, labels) << ' ' << hist.count << '\n';
    }
  }
  for (const Gauge& g : gauges) {
    os << "# HELP " << g.name << ' ' << g.help << '\n';
    os << "# TYPE " << g.name << " gauge\n";
    for (const auto& [labels, value] : g.samples) {
      std::vector<std::string> names, values;
      for (const auto& [k, v] : labels) {
        names.push_back(k);
        values.push_back(v);
      }
      os << g.name << label_set(names, values) << ' ' << format_number(value) << '\n';
    }
  }
  return os.str();
}

}  // namespace midas_api
