// End-to-end ingest benchmark of the real daemon (run by hand, never by ctest; README records
// the figures and the command). It starts the `tandemd` binary of this build on a fresh data
// directory on the workspace's disk and drives it over real ZeroMQ with several DEALER
// publishers (one thread and one socket each), and reports:
//
//   1. sustained acked events/s, the daemon durable (every ack after a synced commit): each
//      publisher keeps a window of requests in flight, matched to their acks by request id;
//   2. ack latency p50/p99 at fixed offered rates (open loop: a request is due at a fixed time
//      and its latency is counted from then, so a stalled daemon cannot hide its stall);
//   3. the raw RocksDB reference on the same disk: synced WriteBatches of as many ~1 KB values
//      as the daemon's average loop turn held events, and the daemon / RocksDB ratio;
//   4. with 1,000,000 open cases (about three pending timers each): the daemon's RSS (VmRSS,
//      VmHWM from /proc/<pid>/status), the pending timers, and restart-to-ready time.
//
// The events are the shipped serious_incident workflow's, applied for real by the engine: each
// case gets incident.reported (opens it: two deadlines, three timers, an assessment), then
// partners.informed (meets one deadline), then notification.submitted (meets another, moves the
// state, starts the rapid review). The cases stay open. The daemon's clock is set (with
// clock_offset_seconds) to 2026-12-01 and the incidents to 2027-06-01, so no timer falls due
// during the run: the figures time ingest, not timer firing.
//
// Usage:
//   ingest_bench [--dir DIR] [--publishers N] [--window N] [--seconds S] [--cases N]
//                [--rates 1000,5000,20000] [--rate-seconds S] [--max-per-turn N]
//   --dir: where the temporary data directories go (default: the build tree, i.e. the
//          workspace's disk); removed at the end.
//   --cases 0 skips part 4.

#include <google/protobuf/struct.pb.h>
#include <poll.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>
#include <unistd.h>
#include <zmq.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>
#include <zmq.hpp>

#include "proto/tandem/v1/envelope.pb.h"
#include "tests/integration/tandemd_process.h"

namespace {

namespace fs = std::filesystem;
namespace v1 = tandem::v1;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr char kTandemd[] = TANDEM_BINARY_DIR "/daemon/tandemd/tandemd";
constexpr int64_t kDaemonEpoch = 1796126400;  // 2026-12-01T12:00:00Z
constexpr int64_t kAwareDay = 20970;          // 2027-06-01

struct Options {
  fs::path dir = TANDEM_BINARY_DIR;
  int publishers = 4;
  // Requests each publisher keeps in flight. 4 x 256 left the daemon waiting for requests in
  // transit between its commits (it used 1.1 of the 2 cores); 4 x 1024 keeps its pipeline full.
  std::size_t window = 1024;
  double seconds = 10;
  uint64_t cases = 1000000;
  std::vector<double> rates = {1000, 5000, 20000};
  double rate_seconds = 5;
  int max_per_turn = 0;  // 0: the daemon's default
};

[[noreturn]] void Die(const std::string& why) {
  std::fprintf(stderr, "ingest_bench: %s\n", why.c_str());
  std::exit(1);
}

Options ParseOptions(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Die("missing value for " + a);
      return argv[++i];
    };
    if (a == "--dir") {
      o.dir = value();
    } else if (a == "--publishers") {
      o.publishers = std::stoi(value());
    } else if (a == "--window") {
      o.window = std::stoul(value());
    } else if (a == "--seconds") {
      o.seconds = std::stod(value());
    } else if (a == "--cases") {
      o.cases = std::stoull(value());
    } else if (a == "--rate-seconds") {
      o.rate_seconds = std::stod(value());
    } else if (a == "--max-per-turn") {
      o.max_per_turn = std::stoi(value());
    } else if (a == "--rates") {
      o.rates.clear();
      std::stringstream in(value());
      for (std::string r; std::getline(in, r, ',');) o.rates.push_back(std::stod(r));
    } else {
      Die("unknown option " + a + " (see the comment at the top of ingest_bench.cc)");
    }
  }
  return o;
}

std::string Day(int64_t days) {
  const std::chrono::year_month_day ymd{std::chrono::sys_days{std::chrono::days{days}}};
  char text[16];
  std::snprintf(text, sizeof text, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
  return text;
}

// The k-th event of case `c` (k = 0, 1, 2), as a serialized publish Request with request id
// `request_id`. Event ids are unique per (c, k) and `run` (a prefix per daemon data set).
std::string EventRequest(const std::string& run, uint64_t c, int k, const std::string& request_id) {
  static const std::string kAware = Day(kAwareDay);
  v1::Request request;
  request.set_request_id(request_id);
  v1::Event& e = *request.mutable_publish()->mutable_event();
  const std::string case_id = run + "-" + std::to_string(c);
  e.set_case_id(case_id);
  e.set_event_id(case_id + "-" + std::to_string(k));
  e.set_partnership("staffordshire");
  e.set_actor("la");
  auto& facts = *e.mutable_facts()->mutable_fields();
  int64_t day = kAwareDay;
  switch (k) {
    case 0:
      e.set_type("incident.reported");
      e.set_source("lcs");
      facts["became_aware_on"].set_string_value(kAware);
      facts["incident_on"].set_string_value(Day(kAwareDay - 1));
      facts["child_dob"].set_string_value("2012-05-03");
      facts["outcome"].set_string_value("seriously_harmed");
      facts["abuse_or_neglect"].set_string_value("suspected");
      facts["location"].set_string_value("in_area");
      break;
    case 1:
      day += 1;
      e.set_type("partners.informed");
      facts["informed_on"].set_string_value(Day(day));
      break;
    default:
      day += 2;
      e.set_type("notification.submitted");
      facts["submitted_on"].set_string_value(Day(day));
      break;
  }
  e.mutable_occurred_at()->set_seconds(day * 86400 + 36000);
  return request.SerializeAsString();
}

// Hands out (case, event) pairs to publishers: each publisher takes a block of 64 cases and sends
// their first events, then their second, then their third, so one case's events go in order on
// one connection. `events_per_case` is 3, or 1 to only open cases.
class Work {
 public:
  Work(std::string run, uint64_t first_case, int events_per_case)
      : run_(std::move(run)), next_block_(first_case), events_per_case_(events_per_case) {}

  // A block of requests for one publisher: 64 cases x events_per_case.
  std::vector<std::pair<std::string, std::string>> NextBlock(int publisher, uint64_t* counter) {
    const uint64_t first = next_block_.fetch_add(64);
    std::vector<std::pair<std::string, std::string>> out;
    for (int k = 0; k < events_per_case_; ++k) {
      for (uint64_t c = first; c < first + 64; ++c) {
        // Appended piecewise: g++ 12 -O3 warns falsely (-Wrestrict) on "p" + std::string&&.
        std::string rid(1, 'p');
        rid += std::to_string(publisher);
        rid += '-';
        rid += std::to_string((*counter)++);
        out.emplace_back(rid, EventRequest(run_, c, k, rid));
      }
    }
    return out;
  }
  uint64_t cases_started() const { return next_block_.load(); }

 private:
  std::string run_;
  std::atomic<uint64_t> next_block_;
  int events_per_case_;
};

struct PublisherResult {
  uint64_t acked = 0;
  uint64_t not_accepted = 0;
  std::vector<double> latencies_us;
};

bool CheckAck(const zmq::message_t& frame, v1::Reply* reply) {
  if (!reply->ParseFromArray(frame.data(), static_cast<int>(frame.size()))) return false;
  return reply->has_ack();
}

// Closed loop: keeps `window` requests in flight until `stop`, or until `target_cases` have been
// started (0: no limit). Returns the acks it got.
PublisherResult RunWindowed(const std::string& endpoint, int index, Work& work, std::size_t window,
                            const std::atomic<bool>& stop, uint64_t target_cases) {
  zmq::context_t context(1);
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::sndhwm, 0);
  socket.set(zmq::sockopt::rcvhwm, 0);
  socket.connect(endpoint);
  PublisherResult result;
  uint64_t counter = 0;
  std::vector<std::pair<std::string, std::string>> block;
  std::size_t next = 0;
  std::size_t inflight = 0;
  bool draining = false;
  while (true) {
    if (!draining && (stop.load() || (target_cases > 0 && work.cases_started() >= target_cases &&
                                      next == block.size()))) {
      draining = true;
    }
    if (draining && inflight == 0) break;
    while (!draining && inflight < window) {
      if (next == block.size()) {
        if (target_cases > 0 && work.cases_started() >= target_cases) break;
        block = work.NextBlock(index, &counter);
        next = 0;
      }
      socket.send(zmq::buffer(block[next].second), zmq::send_flags::none);
      ++next;
      ++inflight;
    }
    zmq::pollitem_t item = {socket.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, milliseconds(draining ? 5000 : 100)) == 0 && draining) {
      std::fprintf(stderr, "ingest_bench: publisher %d: %zu requests unanswered\n", index,
                   inflight);
      break;
    }
    while (true) {
      zmq::message_t frame;
      if (!socket.recv(frame, zmq::recv_flags::dontwait)) break;
      v1::Reply reply;
      if (!CheckAck(frame, &reply)) Die("a reply that is not an ack");
      --inflight;
      ++result.acked;
      if (reply.ack().status() != v1::ACK_STATUS_ACCEPTED) {
        if (++result.not_accepted <= 3) {
          std::fprintf(stderr, "ingest_bench: not accepted: %s\n",
                       reply.ShortDebugString().c_str());
        }
      }
    }
  }
  return result;
}

// Open loop at `rate` events/s for `seconds`: request i is due at start + i / rate; its latency
// is from that instant to its ack.
// Returns when `socket` may have a message to receive, or at `until`. zmq_poll's timeout is in
// milliseconds, too coarse for a send schedule of one request every 200 us and for latencies
// under a millisecond (it made acks wait up to the next 250 us check, and the figures carried
// that wait); this waits on the socket's ZMQ_FD with ppoll, to the microsecond. ZMQ_FD only
// signals changes, so ZMQ_EVENTS is read first (which also re-arms it): the caller receives
// until nothing is left before calling again.
void WaitReadable(zmq::socket_t& socket, Clock::time_point until) {
  if ((socket.get(zmq::sockopt::events) & ZMQ_POLLIN) != 0) return;
  const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(until - Clock::now());
  if (left.count() <= 0) return;
  pollfd fd = {socket.get(zmq::sockopt::fd), POLLIN, 0};
  const timespec timeout = {static_cast<time_t>(left.count() / 1'000'000'000),
                            static_cast<long>(left.count() % 1'000'000'000)};
  (void)ppoll(&fd, 1, &timeout, nullptr);
}

PublisherResult RunPaced(const std::string& endpoint, int index, Work& work, double rate,
                         double seconds) {
  zmq::context_t context(1);
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::sndhwm, 0);
  socket.set(zmq::sockopt::rcvhwm, 0);
  socket.connect(endpoint);
  std::this_thread::sleep_for(milliseconds(100));  // connected before the clock starts
  PublisherResult result;
  uint64_t counter = 0;
  std::vector<std::pair<std::string, std::string>> block;
  std::size_t next = 0;
  const uint64_t total = static_cast<uint64_t>(rate * seconds);
  std::map<std::string, Clock::time_point> due;  // request id -> due instant
  const auto start = Clock::now();
  const auto period = std::chrono::duration<double>(1.0 / rate);
  uint64_t sent = 0;
  const auto give_up = start + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(seconds + 10));
  while ((sent < total || !due.empty()) && Clock::now() < give_up) {
    const auto now = Clock::now();
    while (sent < total) {
      const auto at = start + std::chrono::duration_cast<Clock::duration>(period * sent);
      if (at > now) break;
      if (next == block.size()) {
        block = work.NextBlock(index, &counter);
        next = 0;
      }
      socket.send(zmq::buffer(block[next].second), zmq::send_flags::none);
      due[block[next].first] = at;
      ++next;
      ++sent;
    }
    // Block (never spin: the publishers share the daemon's two cores) until an ack arrives or
    // the next send is due.
    WaitReadable(socket, sent < total
                             ? start + std::chrono::duration_cast<Clock::duration>(period * sent)
                             : Clock::now() + milliseconds(50));
    while (true) {
      zmq::message_t frame;
      if (!socket.recv(frame, zmq::recv_flags::dontwait)) break;
      const auto got = Clock::now();
      v1::Reply reply;
      if (!CheckAck(frame, &reply)) Die("a reply that is not an ack");
      auto it = due.find(reply.request_id());
      if (it == due.end()) Die("an ack to a request not in flight");
      result.latencies_us.push_back(
          std::chrono::duration<double, std::micro>(got - it->second).count());
      due.erase(it);
      ++result.acked;
      if (reply.ack().status() != v1::ACK_STATUS_ACCEPTED) ++result.not_accepted;
    }
  }
  if (!due.empty())
    std::fprintf(stderr, "ingest_bench: %zu paced requests unanswered\n", due.size());
  return result;
}

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return NAN;
  const std::size_t i = std::min(v.size() - 1, static_cast<std::size_t>(p * v.size()));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v.end());
  return v[i];
}

// VmRSS and VmHWM of `pid`, in MB.
std::pair<double, double> Rss(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  double rss = 0, hwm = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) rss = std::stod(line.substr(6)) / 1024;
    if (line.rfind("VmHWM:", 0) == 0) hwm = std::stod(line.substr(6)) / 1024;
  }
  return {rss, hwm};
}

// write_bytes of `pid` (/proc/<pid>/io): bytes it caused to be written to the disk.
uint64_t WriteBytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/io");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("write_bytes:", 0) == 0) return std::stoull(line.substr(12));
  }
  return 0;
}

// CPU seconds (user + system) used so far by each thread of `pid`, by thread name and id.
std::map<std::string, double> ThreadCpu(pid_t pid) {
  std::map<std::string, double> cpu;
  const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
  std::error_code ec;
  for (const auto& task : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream in(task.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // "tid (comm) state ..." : comm may hold spaces, so fields are counted after its ')'.
    const auto open = stat.find('(');
    const auto close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    std::istringstream fields(stat.substr(close + 2));
    std::string field;
    double ticks = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i) {
      if (i == 14 || i == 15) ticks += std::stod(field);  // utime, stime
    }
    cpu[stat.substr(open + 1, close - open - 1) + "/" + task.path().filename().string()] =
        ticks / tick;
  }
  return cpu;
}

// Prints the daemon's CPU between two ThreadCpu readings, per acked event: all threads, and the
// threads that used at least 5% of it (the writer, the writing thread, RocksDB's).
void PrintCpu(const std::map<std::string, double>& before,
              const std::map<std::string, double>& after, double seconds, uint64_t acked) {
  double total = 0;
  std::vector<std::pair<double, std::string>> threads;
  for (const auto& [name, cpu] : after) {
    const auto it = before.find(name);
    const double used = cpu - (it == before.end() ? 0 : it->second);
    total += used;
    threads.emplace_back(used, name);
  }
  std::sort(threads.rbegin(), threads.rend());
  const double per_event_us = 1e6 / static_cast<double>(std::max<uint64_t>(1, acked));
  std::printf("tandemd CPU during the sustained phase: %.2f cores, %.1f us per acked event (",
              total / seconds, total * per_event_us);
  const char* sep = "";
  for (const auto& [used, name] : threads) {
    if (used < 0.05 * total) break;
    std::printf("%s%s %.1f", sep, name.c_str(), used * per_event_us);
    sep = ", ";
  }
  std::printf(")\n");
}

// The daemon under test: started on `data`, its clock at kDaemonEpoch.
class Daemon {
 public:
  Daemon(const fs::path& dir, const fs::path& data, int max_per_turn)
      : dir_(dir), data_(data), max_per_turn_(max_per_turn), process_(kTandemd, dir, "tandemd") {}

  // Starts it and returns the seconds from spawn to its "ready" line.
  double Start() {
    const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    const fs::path config = dir_ / "bench.yaml";
    {
      std::ofstream out(config);
      out << "clock_offset_seconds: " << (kDaemonEpoch - now) << "\n";
      if (max_per_turn_ > 0) out << "ingest:\n  max_messages_per_turn: " << max_per_turn_ << "\n";
    }
    const auto t0 = Clock::now();
    if (!process_.Start({"--data", data_.string(), "--ingest", "tcp://127.0.0.1:*", "--config",
                         config.string()})) {
      Die("cannot start " + std::string(kTandemd));
    }
    auto endpoint = process_.WaitReady(milliseconds(600000), milliseconds(1));
    if (!endpoint.has_value()) Die("tandemd did not become ready:\n" + process_.Log());
    endpoint_ = *endpoint;
    return std::chrono::duration<double>(Clock::now() - t0).count();
  }

  // Stops it with SIGTERM; returns the requests and turns it reports in its "stopped" line.
  std::pair<uint64_t, uint64_t> Stop() {
    auto status = process_.Terminate(std::chrono::seconds(120));
    if (!status.has_value() || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
      Die("tandemd did not stop cleanly:\n" + process_.Log());
    }
    static const std::regex kStats(R"(stopped .*requests=(\d+) turns=(\d+))");
    std::smatch m;
    const std::string log = process_.Log();
    if (!std::regex_search(log, m, kStats)) return {0, 0};
    return {std::stoull(m[1].str()), std::stoull(m[2].str())};
  }

  const std::string& endpoint() const { return endpoint_; }
  pid_t pid() const { return process_.pid(); }

 private:
  fs::path dir_;
  fs::path data_;
  int max_per_turn_;
  tandem::test::TandemdProcess process_;
  std::string endpoint_;
};

// Synced WriteBatches of `batch` incompressible values of `value_bytes` each on a fresh RocksDB
// (default options, as rocksbench in shared/platform-notes.md) in `dir`, for `seconds`.
// Returns records/s and the p50 and p99 commit latencies in microseconds.
std::tuple<double, double, double> RocksReference(const fs::path& dir, int batch, int value_bytes,
                                                  double seconds) {
  rocksdb::Options options;
  options.create_if_missing = true;
  rocksdb::DestroyDB(dir.string(), options).PermitUncheckedError();
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, dir.string(), &raw);
  if (!s.ok()) Die("rocksdb: " + s.ToString());
  std::unique_ptr<rocksdb::DB> db(raw);
  std::mt19937_64 rng(42);
  std::string pool(1 << 20, '\0');
  for (auto& c : pool) c = static_cast<char>(rng());
  rocksdb::WriteOptions write;
  write.sync = true;
  uint64_t n = 0;
  std::vector<double> lat;
  const auto t0 = Clock::now();
  const auto until =
      t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  rocksdb::WriteBatch wb;
  char key[32];
  while (Clock::now() < until) {
    wb.Clear();
    for (int i = 0; i < batch; ++i, ++n) {
      std::snprintf(key, sizeof key, "k%015llu", static_cast<unsigned long long>(n));
      wb.Put(rocksdb::Slice(key, 16),
             rocksdb::Slice(pool.data() + (n * 131) % (pool.size() - value_bytes), value_bytes));
    }
    const auto a = Clock::now();
    s = db->Write(write, &wb);
    if (!s.ok()) Die("rocksdb: " + s.ToString());
    lat.push_back(std::chrono::duration<double, std::micro>(Clock::now() - a).count());
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  db->Close().PermitUncheckedError();
  db.reset();
  rocksdb::DestroyDB(dir.string(), options).PermitUncheckedError();
  const double p50 = Percentile(lat, 0.5);
  return {n / elapsed, p50, Percentile(lat, 0.99)};
}

// The number of pending timers in a CLOSED data directory (keys of its `timers` family).
uint64_t CountTimers(const fs::path& data) {
  rocksdb::Options options;
  std::vector<std::string> names;
  rocksdb::Status s = rocksdb::DB::ListColumnFamilies(options, data.string(), &names);
  if (!s.ok()) Die("rocksdb: " + s.ToString());
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& name : names) descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  s = rocksdb::DB::OpenForReadOnly(options, data.string(), descriptors, &handles, &raw);
  if (!s.ok()) Die("rocksdb: " + s.ToString());
  uint64_t count = 0;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i] != "timers") continue;
    std::unique_ptr<rocksdb::Iterator> it(raw->NewIterator(rocksdb::ReadOptions(), handles[i]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++count;
  }
  for (auto* h : handles) raw->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  delete raw;
  return count;
}

struct Phase {
  uint64_t acked = 0;
  uint64_t not_accepted = 0;
  double seconds = 0;
  std::vector<double> latencies_us;
};

Phase Windowed(const std::string& endpoint, Work& work, const Options& o, double seconds,
               uint64_t target_cases) {
  std::atomic<bool> stop{false};
  std::vector<PublisherResult> results(o.publishers);
  std::vector<std::thread> threads;
  const auto t0 = Clock::now();
  for (int p = 0; p < o.publishers; ++p) {
    threads.emplace_back(
        [&, p] { results[p] = RunWindowed(endpoint, p, work, o.window, stop, target_cases); });
  }
  if (seconds > 0) {
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop = true;
  }
  for (auto& t : threads) t.join();
  Phase phase;
  phase.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  for (auto& r : results) {
    phase.acked += r.acked;
    phase.not_accepted += r.not_accepted;
  }
  return phase;
}

Phase Paced(const std::string& endpoint, Work& work, const Options& o, double rate) {
  std::vector<PublisherResult> results(o.publishers);
  std::vector<std::thread> threads;
  const auto t0 = Clock::now();
  for (int p = 0; p < o.publishers; ++p) {
    threads.emplace_back(
        [&, p] { results[p] = RunPaced(endpoint, p, work, rate / o.publishers, o.rate_seconds); });
  }
  for (auto& t : threads) t.join();
  Phase phase;
  phase.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  for (auto& r : results) {
    phase.acked += r.acked;
    phase.not_accepted += r.not_accepted;
    phase.latencies_us.insert(phase.latencies_us.end(), r.latencies_us.begin(),
                              r.latencies_us.end());
  }
  return phase;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress shows when piped to a file
  const Options o = ParseOptions(argc, argv);
  std::string tmpl = (o.dir / "ingest_bench.XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) Die("cannot create a directory under " + o.dir.string());
  const fs::path dir = tmpl;
  const fs::path data = dir / "data";
  std::printf("ingest_bench: tandemd=%s dir=%s publishers=%d window=%zu\n", kTandemd, dir.c_str(),
              o.publishers, o.window);

  Daemon daemon(dir, data, o.max_per_turn);
  const double first_ready = daemon.Start();
  std::printf("start-to-ready (empty store): %.3f s\n", first_ready);
  Work work("c", 0, 3);

  // 1. Sustained throughput, closed loop.
  Windowed(daemon.endpoint(), work, o, 1.0, 0);  // warm-up
  const uint64_t written_before = WriteBytes(daemon.pid());
  const auto cpu_before = ThreadCpu(daemon.pid());
  const Phase sustained = Windowed(daemon.endpoint(), work, o, o.seconds, 0);
  const auto cpu_after = ThreadCpu(daemon.pid());
  const double acked_per_s = sustained.acked / sustained.seconds;
  const double written = static_cast<double>(WriteBytes(daemon.pid()) - written_before);
  std::printf("sustained: %llu acks in %.2f s = %.0f acked events/s (not ACCEPTED: %llu)\n",
              static_cast<unsigned long long>(sustained.acked), sustained.seconds, acked_per_s,
              static_cast<unsigned long long>(sustained.not_accepted));
  std::printf(
      "disk writes during the sustained phase: %.1f MB/s, %.0f bytes per acked event "
      "(WAL, flushes and compactions)\n",
      written / sustained.seconds / 1e6, written / std::max<uint64_t>(1, sustained.acked));
  PrintCpu(cpu_before, cpu_after, sustained.seconds, sustained.acked);
  const auto [rss_after_load, hwm_after_load] = Rss(daemon.pid());
  std::printf("tandemd RSS after the sustained phase: VmRSS=%.0f MB VmHWM=%.0f MB\n",
              rss_after_load, hwm_after_load);

  // Turn size of the sustained phase (requests per loop turn, i.e. per synced commit).
  const auto [sustained_requests, sustained_turns] = daemon.Stop();
  const double per_turn =
      sustained_turns > 0 ? static_cast<double>(sustained_requests) / sustained_turns : 0;
  std::printf(
      "loop turns (warm-up and sustained): %llu requests in %llu turns = %.1f events per "
      "synced commit\n",
      static_cast<unsigned long long>(sustained_requests),
      static_cast<unsigned long long>(sustained_turns), per_turn);

  // 2. Latency at fixed offered rates, with the flush latency of the disk at the time.
  const auto [one_per_s, one_p50, one_p99] = RocksReference(dir / "rocks1", 1, 1024, 2);
  std::printf("disk now: rocksdb synced Put of one 1 KB value: p50=%.2f ms p99=%.2f ms (%.0f/s)\n",
              one_p50 / 1000, one_p99 / 1000, one_per_s);
  daemon.Start();
  for (double rate : o.rates) {
    Phase p = Paced(daemon.endpoint(), work, o, rate);
    std::vector<double>& l = p.latencies_us;
    const double n = static_cast<double>(l.size());
    const double p50 = Percentile(l, 0.50), p99 = Percentile(l, 0.99), p999 = Percentile(l, 0.999),
                 max = l.empty() ? NAN : *std::max_element(l.begin(), l.end());
    std::printf(
        "offered %.0f events/s: acked %.0f/s, ack latency p50=%.2f ms p99=%.2f ms "
        "p99.9=%.2f ms max=%.2f ms (n=%.0f, not ACCEPTED %llu)\n",
        rate, p.acked / o.rate_seconds, p50 / 1000, p99 / 1000, p999 / 1000, max / 1000, n,
        static_cast<unsigned long long>(p.not_accepted));
  }

  {
    const auto [requests, turns] = daemon.Stop();
    std::printf("loop turns (paced phases): %.1f events per synced commit\n",
                turns > 0 ? static_cast<double>(requests) / turns : 0);
  }

  // 3. The RocksDB reference on the same disk, batches as large as the daemon's turns.
  const int batch = std::max(1, static_cast<int>(std::lround(per_turn)));
  const auto [rocks_per_s, rocks_p50, rocks_p99] = RocksReference(dir / "rocks", batch, 1024, 5);
  std::printf(
      "rocksdb reference: synced WriteBatch of %d x 1 KB values: %.0f records/s "
      "(commit p50 %.2f ms p99 %.2f ms); daemon/rocksdb = %.2f\n",
      batch, rocks_per_s, rocks_p50 / 1000, rocks_p99 / 1000, acked_per_s / rocks_per_s);

  // 4. A million open cases: RSS, pending timers, restart-to-ready.
  if (o.cases > 0) {
    daemon.Start();
    const uint64_t have = work.cases_started();
    // Only incident.reported: opens the case.
    Work fill("c", have, 1);
    if (have < o.cases) {
      const Phase f = Windowed(daemon.endpoint(), fill, o, 0, o.cases);
      std::printf("fill: %llu more cases opened in %.1f s (%.0f acked events/s)\n",
                  static_cast<unsigned long long>(f.acked), f.seconds, f.acked / f.seconds);
    }
    const auto [rss_full, hwm_full] = Rss(daemon.pid());
    std::printf("tandemd with %llu open cases: VmRSS=%.0f MB VmHWM=%.0f MB\n",
                static_cast<unsigned long long>(std::max(have, o.cases)), rss_full, hwm_full);
    daemon.Stop();
    const uint64_t timers = CountTimers(data);
    std::printf("pending timers: %llu\n", static_cast<unsigned long long>(timers));
    const double ready = daemon.Start();
    const auto [rss_idle, hwm_idle] = Rss(daemon.pid());
    std::printf(
        "restart-to-ready with %llu open cases and %llu pending timers: %.3f s; "
        "VmRSS after ready=%.0f MB VmHWM=%.0f MB\n",
        static_cast<unsigned long long>(std::max(have, o.cases)),
        static_cast<unsigned long long>(timers), ready, rss_idle, hwm_idle);
    // Ingest goes on at the same rate with a million cases in the store.
    Work more("c", fill.cases_started(), 3);
    Phase after = Windowed(daemon.endpoint(), more, o, std::min(o.seconds, 5.0), 0);
    std::printf("sustained after restart (1M cases stored): %.0f acked events/s\n",
                after.acked / after.seconds);
    const auto [rss_end, hwm_end] = Rss(daemon.pid());
    std::printf("tandemd at the end: VmRSS=%.0f MB VmHWM=%.0f MB\n", rss_end, hwm_end);
    daemon.Stop();
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  return 0;
}
