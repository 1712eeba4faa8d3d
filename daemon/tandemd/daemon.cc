#include "daemon/tandemd/daemon.h"

#include <google/protobuf/util/json_util.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/signal_set.hpp>
#include <asio/thread_pool.hpp>
#include <chrono>
#include <csignal>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>
#include <zmq.hpp>

#include "daemon/config/loader.h"
#include "daemon/ingest/envelope.h"
#include "daemon/ingest/router.h"
#include "daemon/outbox/outbox.h"
#include "daemon/outbox/plugin.h"
#include "daemon/outbox/routes.h"
#include "daemon/outbox/sink.h"
#include "daemon/store/store.h"
#include "daemon/tandemd/engines.h"
#include "daemon/tandemd/queries.h"
#include "daemon/tandemd/writer.h"
#include "daemon/timers/timer_service.h"

namespace tandem::tandemd {
namespace {

std::shared_ptr<spdlog::logger> SetUpLogging() {
  auto logger = spdlog::get("tandemd");
  if (logger == nullptr) logger = spdlog::stderr_logger_mt("tandemd");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %v", spdlog::pattern_time_type::utc);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  return logger;
}

// Everything the daemon runs, in start order; members are destroyed in the reverse order, so
// the store outlives everything that reads it and the io_context everything registered on it.
class Daemon {
 public:
  Daemon(v1::DaemonConfig config, std::shared_ptr<spdlog::logger> logger)
      : config_(std::move(config)), logger_(std::move(logger)), signals_(io_) {}

  ~Daemon() {
    // Threads that read the store stop before it closes, whatever path led here.
    readers_.join();
    for (auto& dispatcher : dispatchers_) dispatcher->RequestStop();
    for (auto& dispatcher : dispatchers_) dispatcher->Stop();
  }

  // The start-up steps, each logging one line or returning why it failed.
  Status Start() {
    TANDEM_RETURN_IF_ERROR(OpenStore());
    TANDEM_RETURN_IF_ERROR(LoadWorkflowsAndCalendar());
    TANDEM_RETURN_IF_ERROR(LoadPlugins());
    TANDEM_RETURN_IF_ERROR(WarnAboutUnconfiguredChannels());
    StartWriterAndTimers();
    StartOutbox();
    TANDEM_RETURN_IF_ERROR(BindIngest());
    signals_.add(SIGINT);
    signals_.add(SIGTERM);
    signals_.add(SIGHUP);
    WaitForSignal();
    // Recovery: every timer that fell due while the daemon was down fires now, in due order,
    // in bounded turns between which ingest is served.
    timers_->Start();
    for (auto& dispatcher : dispatchers_) dispatcher->Start();
    logger_->info("ready endpoint={} data_dir={} workflows={} pid={}", router_->endpoint(),
                  config_.data_dir(), WorkflowsLabel(), ::getpid());
    return OkStatus();
  }

  // Runs the loop until it runs out of work after Shutdown; returns the exit status.
  int Run() {
    io_.run();
    // The ingest totals: requests per turn is the average group commit (README, "Performance").
    const ingest::RouterStats& ingest = router_->stats();
    logger_->info("stopped exit_status={} requests={} turns={} replies_failed={}", exit_code_,
                  ingest.messages_received, ingest.turns, ingest.replies_failed);
    logger_->flush();
    return exit_code_;
  }

 private:
  calendar::Instant Now() const {
    return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()) +
           std::chrono::seconds(config_.clock_offset_seconds());
  }

  std::string WorkflowsLabel() const {
    return config_.workflows_dir().empty() ? std::string("shipped") : config_.workflows_dir();
  }

  Status OpenStore() {
    auto store = store::Store::Open(config_.data_dir());
    if (!store.ok()) return store.status().WithPrefix("cannot open the data directory");
    store_ = std::move(store).value();
    logger_->info("store opened data_dir={} audit_records={} outbox_last_sequence={}",
                  config_.data_dir(), store_->last_audit_sequence(),
                  store_->last_outbox_sequence());
    return OkStatus();
  }

  // The workflows, with the partnerships' own settings when a directory of them is configured.
  Result<std::unique_ptr<engine::WorkflowSet>> LoadWorkflowSet() const {
    auto workflows = config::LoadWorkflows(config_.workflows_dir());
    if (!workflows.ok()) return workflows.status();
    TANDEM_RETURN_IF_ERROR(config::LoadPartnerships(config_.partnerships_dir(), workflows->get()));
    return workflows;
  }

  Status LoadWorkflowsAndCalendar() {
    auto calendar = config::LoadCalendar(config_.calendar_file());
    if (!calendar.ok()) return calendar.status().WithPrefix("cannot load the calendar");
    auto workflows = LoadWorkflowSet();
    if (!workflows.ok()) return workflows.status().WithPrefix("cannot load the workflows");
    const std::size_t count = (*workflows)->workflows().size();
    engines_ = std::make_unique<Engines>(std::move(calendar).value(), std::move(workflows).value());
    logger_->info("workflows loaded source={} count={} calendar={}", WorkflowsLabel(), count,
                  engines_->calendar().origin());
    return OkStatus();
  }

  void StartWriterAndTimers() {
    WriterHooks hooks;
    hooks.now = [this] { return Now(); };
    hooks.on_committed = [this](bool timers_changed,
                                std::optional<calendar::Instant> earliest_timer_set,
                                bool notifications_added) {
      // Re-arming is a seek for the next due timer, and that seek steps over the row of every
      // timer deleted (fired or cancelled) since RocksDB last flushed or compacted them away:
      // after 100,000 cases it cost ~16 ms per ingest turn (README, "Performance"). So re-arm
      // only when the commit may have changed what the service waits for: it is not waiting
      // (idle, or firing: Rearm then does nothing), or it set a timer due before the armed one.
      // A cancelled armed timer needs no re-arm: the service wakes at its due instant, finds
      // nothing due and re-arms for the next one.
      const std::optional<calendar::Instant> armed = timers_->armed_for();
      if (timers_changed && (!armed.has_value() ||
                             (earliest_timer_set.has_value() && *earliest_timer_set < *armed))) {
        timers_->Rearm();
      }
      if (notifications_added) {
        for (auto& dispatcher : dispatchers_) dispatcher->Wake();
      }
    };
    hooks.send = [this](const ingest::Peer& peer, std::string bytes) {
      const Status sent = router_ == nullptr ? FailedPreconditionError("no ingest socket")
                                             : router_->Send(peer, std::move(bytes));
      // A peer that went away retries and gets DUPLICATE with the same answer.
      if (!sent.ok()) logger_->debug("reply not sent: {}", sent.ToString());
    };
    hooks.on_fatal = [this](const Status& status) {
      logger_->critical("storage failed, acknowledging nothing more: {}", status.ToString());
      Shutdown(kExitStorageFailed, "storage failure");
    };
    hooks.pause_input = [this] {
      if (router_ != nullptr) router_->Pause();
    };
    hooks.resume_input = [this] {
      if (router_ != nullptr) router_->Resume();
    };
    writer_ = std::make_unique<Writer>(*store_, *engines_, std::move(hooks), io_.get_executor(),
                                       config_.ingest().max_messages_per_turn());

    timers::TimerServiceHooks timer_hooks;
    timer_hooks.now = [this] { return Now(); };
    timer_hooks.engine_for = [this](const v1::CaseState& state) -> const engine::Engine& {
      return engines_->For(state);
    };
    timer_hooks.commit = [this](store::Batch&& batch) {
      return writer_->Commit(std::move(batch), /*timers_changed=*/true);
    };
    timer_hooks.when_writer_idle = [this](std::function<void()> turn) {
      writer_->WhenIdle(std::move(turn));
    };
    timer_hooks.on_failure = [this](const Status& status) {
      logger_->critical("timer service failed: {}", status.ToString());
      Shutdown(kExitStorageFailed, "timer failure");
    };
    timers_ =
        std::make_unique<timers::TimerService>(io_.get_executor(), *store_, std::move(timer_hooks));
  }

  // Loads the plugin of each channel instance (each plugin once, logging its name, version and
  // path), creates the instances, checks every route's address with its channel's plugin, and
  // gives the store the routes, so each notification is written once per channel.
  Status LoadPlugins() {
    const std::filesystem::path dir = config_.plugins_dir();
    std::map<std::string, std::shared_ptr<const outbox::PluginLibrary>, std::less<>> libraries;
    for (const v1::ChannelInstance& channel : config_.channels()) {
      auto& library = libraries[channel.plugin()];
      if (library == nullptr) {
        auto loaded = outbox::PluginLibrary::Load(outbox::PluginPath(dir, channel.plugin()));
        if (!loaded.ok()) {
          return loaded.status().WithPrefix("cannot load plugin '" + channel.plugin() +
                                            "' of channel '" + channel.name() + "'");
        }
        library = std::move(loaded).value();
        if (library->name() != channel.plugin()) {
          return InvalidArgumentError("plugin " + library->path().string() + " calls itself '" +
                                      library->name() + "', not '" + channel.plugin() + "'");
        }
        logger_->info("plugin loaded name={} version={} path={}", library->name(),
                      library->version(), library->path().string());
      }
      std::string settings;
      google::protobuf::util::JsonPrintOptions json_options;
      json_options.preserve_proto_field_names = true;
      if (!google::protobuf::util::MessageToJsonString(channel.config(), &settings, json_options)
               .ok()) {
        return InvalidArgumentError("channel '" + channel.name() +
                                    "': its config cannot be written as JSON");
      }
      auto sink = outbox::PluginSink::Create(library, channel.name(), settings, config_.data_dir(),
                                             logger_);
      if (!sink.ok()) return sink.status().WithPrefix("cannot configure a channel");
      logger_->info("channel ready name={} plugin={}", channel.name(), channel.plugin());
      sinks_.emplace(channel.name(), std::move(sink).value());
    }
    for (const v1::Route& route : config_.routes()) {
      for (const v1::ChannelRef& ref : route.channels()) {
        const Status ok = sinks_.at(ref.channel())->CheckAddress(ref.address());
        if (!ok.ok()) {
          return ok.WithPrefix("the route for partnership '" + route.partnership() +
                               "' and role '" + route.role() + "' (empty: every one)");
        }
      }
    }
    // The routes are fixed for the daemon's life (a SIGHUP reloads workflows, not channels).
    store_->SetNotificationRouter(
        [routes = std::make_shared<const outbox::Routes>(config_.routes())](
            const v1::Notification& notification) { return routes->For(notification); });
    return OkStatus();
  }

  // Logs, per channel, the deliveries waiting in the outbox for a channel this configuration
  // does not have (it was renamed or removed): they wait, undelivered, until it is back, and
  // `tandemctl outbox` lists them. One read of the outbox at start-up.
  Status WarnAboutUnconfiguredChannels() {
    std::map<std::string, uint64_t, std::less<>> waiting;
    uint64_t after = 0;
    while (true) {
      TANDEM_ASSIGN_OR_RETURN(const std::vector<v1::OutboxRecord> page,
                              store_->Outbox(4096, after));
      for (const v1::OutboxRecord& record : page) {
        after = record.sequence();
        if (!sinks_.contains(record.channel())) ++waiting[record.channel()];
      }
      if (page.size() < 4096) break;
    }
    for (const auto& [channel, count] : waiting) {
      logger_->warn("outbox: {} deliveries wait for channel '{}', which is not configured", count,
                    channel);
    }
    return OkStatus();
  }

  // One dispatcher per channel instance, each on a thread of its own, so a slow or unreachable
  // receiver holds back only its own channel's deliveries.
  void StartOutbox() {
    outbox::DispatcherOptions options;
    options.max_attempts = config_.outbox().max_attempts();
    options.initial_backoff = std::chrono::seconds(config_.outbox().initial_backoff_seconds());
    options.max_backoff = std::chrono::seconds(config_.outbox().max_backoff_seconds());
    options.logger = logger_;
    for (auto& [name, sink] : sinks_) {
      std::vector<std::unique_ptr<outbox::Sink>> sinks;
      sinks.push_back(std::move(sink));
      // The dispatcher reports from its own thread; outcomes are recorded on the writer thread,
      // gathered so that a burst of deliveries shares one commit.
      dispatchers_.push_back(std::make_unique<outbox::Dispatcher>(
          *store_, std::move(sinks), options, [this] { return Now(); },
          [this](outbox::DeliveryResult result) {
            asio::post(io_, [this, result = std::move(result)]() mutable {
              deliveries_.push_back(std::move(result));
              if (deliveries_flush_posted_) return;
              deliveries_flush_posted_ = true;
              asio::post(io_, [this] { FlushDeliveries(); });
            });
          }));
    }
    sinks_.clear();
    logger_->info("outbox channels={} max_attempts={}", dispatchers_.size(), options.max_attempts);
  }

  void FlushDeliveries() {
    deliveries_flush_posted_ = false;
    std::vector<outbox::DeliveryResult> results = std::move(deliveries_);
    deliveries_.clear();
    writer_->RecordDeliveries(std::move(results), [this](const outbox::DeliveryResult& r) {
      // Each dispatcher ignores the outcomes of other channels' records.
      for (auto& dispatcher : dispatchers_) dispatcher->Recorded(r);
    });
  }

  Status BindIngest() {
    ingest::RouterOptions options;
    options.max_message_bytes = config_.ingest().max_message_bytes();
    options.max_messages_per_turn = static_cast<int>(config_.ingest().max_messages_per_turn());
    // A commit answers at most max_messages_per_turn requests (the writer pauses the input at
    // that many while one is in progress), and the replies of two commits may wait in libzmq
    // at once: a peer that sent all of them must not have replies dropped for its queue.
    options.send_high_water_mark = 3 * options.max_messages_per_turn;
    auto router =
        ingest::Router::Bind(zmq_, io_.get_executor(), config_.ingest().endpoint(), options);
    if (!router.ok()) return router.status().WithPrefix("cannot bind the ingest socket");
    router_ = std::move(router).value();
    ingest::RouterHandlers handlers;
    handlers.on_request = [this](const ingest::Peer& peer, std::string_view body) {
      OnRequest(peer, body);
    };
    handlers.on_turn_end = [this] { writer_->EndTurn(); };
    handlers.on_failure = [this](const Status& status) {
      logger_->critical("ingest socket failed: {}", status.ToString());
      Shutdown(kExitStartupFailed, "ingest failure");
    };
    router_->Start(std::move(handlers));
    return OkStatus();
  }

  // One request of a router turn. Publishes go to the writer (answered after the turn's
  // commit); queries go to the reader thread (answered from committed state, without waiting).
  void OnRequest(const ingest::Peer& peer, std::string_view body) {
    if (stopping_) return;
    // On the writer's open batch, so that a published event's facts go into the case without
    // a copy; freed with the batch. On the heap once the writer takes no more (it failed).
    v1::Request on_heap;
    v1::Request* request = writer_->NewRequest();
    if (request == nullptr) request = &on_heap;
    const Status parsed = ingest::ParseRequest(body, request);
    if (!parsed.ok()) {
      writer_->QueueReply(peer, ingest::RejectedReply("", "", parsed));
      return;
    }
    switch (request->kind_case()) {
      case v1::Request::kPublish:
        writer_->Publish(peer, request, ingest::PublishedEventBytes(body));
        return;
      case v1::Request::kRetryDelivery:
        writer_->RetryDelivery(peer, *request);
        return;
      case v1::Request::kQueryCase:
      case v1::Request::kListDeadlines:
      case v1::Request::kListOutbox:
        PostQuery(peer, *request);
        return;
      case v1::Request::KIND_NOT_SET:
        break;
    }
    writer_->QueueReply(
        peer, ingest::RejectedReply(request->request_id(), "",
                                    InvalidArgumentError("request carries no kind this daemon "
                                                         "knows (publish, query_case, "
                                                         "list_deadlines, list_outbox, "
                                                         "retry_delivery)")));
  }

  void PostQuery(const ingest::Peer& peer, v1::Request request) {
    asio::post(readers_, [this, peer, request = std::move(request), now = Now(),
                          &calendar = engines_->calendar()] {
      v1::Reply reply;
      Status failed;
      if (request.has_query_case()) {
        auto view = QueryCase(*store_, request.query_case());
        if (view.ok()) {
          reply.set_request_id(request.request_id());
          *reply.mutable_case_view() = std::move(view).value();
        } else {
          failed = view.status();
        }
      } else if (request.has_list_outbox()) {
        auto list = ListOutbox(*store_, request.list_outbox());
        if (list.ok()) {
          reply.set_request_id(request.request_id());
          *reply.mutable_outbox() = std::move(list).value();
        } else {
          failed = list.status();
        }
      } else {
        auto list = ListDeadlines(*store_, calendar, request.list_deadlines(), now);
        if (list.ok()) {
          reply.set_request_id(request.request_id());
          *reply.mutable_deadlines() = std::move(list).value();
        } else {
          failed = list.status();
        }
      }
      if (!failed.ok()) {
        if (failed.code() == StatusCode::kDataLoss || failed.code() == StatusCode::kInternal) {
          logger_->error("query failed: {}", failed.ToString());
        }
        reply = ingest::ErrorReply(request.request_id(), failed);
      }
      asio::post(io_, [this, peer, bytes = reply.SerializeAsString()]() mutable {
        if (stopping_ || router_ == nullptr) return;
        const Status sent = router_->Send(peer, std::move(bytes));
        if (!sent.ok()) logger_->debug("reply not sent: {}", sent.ToString());
      });
    });
  }

  void WaitForSignal() {
    signals_.async_wait([this](const std::error_code& ec, int signal) {
      if (ec) return;
      if (signal == SIGHUP) {
        Reload();
        WaitForSignal();
        return;
      }
      Shutdown(kExitOk, signal == SIGTERM ? "SIGTERM" : "SIGINT");
    });
  }

  // New cases use the reloaded workflows; running cases keep the version they started with,
  // which Engines keeps loaded. A reload that fails changes nothing.
  void Reload() {
    auto workflows = LoadWorkflowSet();
    if (!workflows.ok()) {
      logger_->error("workflow reload failed, keeping the loaded workflows: {}",
                     workflows.status().ToString());
      return;
    }
    const std::size_t count = (*workflows)->workflows().size();
    engines_->Add(std::move(workflows).value());
    logger_->info("workflows reloaded source={} count={} generations={}", WorkflowsLabel(), count,
                  engines_->generations());
  }

  // Stops accepting; once the writer has committed and answered the events it already took
  // (at once when it has failed), stops what runs beside the loop. The loop then runs the
  // handlers already posted (the dispatchers' last outcomes are recorded) and returns.
  void Shutdown(int exit_code, std::string_view why) {
    if (stopping_) return;
    stopping_ = true;
    exit_code_ = exit_code;
    logger_->info("stopping reason={}", why);
    if (writer_ == nullptr) {
      StopServing();
      return;
    }
    writer_->Stop([this] { StopServing(); });
  }

  void StopServing() {
    if (router_ != nullptr) router_->Close();
    readers_.join();
    if (timers_ != nullptr) timers_->Stop();
    for (auto& dispatcher : dispatchers_) dispatcher->RequestStop();
    for (auto& dispatcher : dispatchers_) dispatcher->Stop();
    signals_.cancel();
  }

  const v1::DaemonConfig config_;
  std::shared_ptr<spdlog::logger> logger_;
  asio::io_context io_{1};
  zmq::context_t zmq_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Engines> engines_;
  std::unique_ptr<Writer> writer_;
  std::unique_ptr<timers::TimerService> timers_;
  // The channel instances, until StartOutbox hands each to its dispatcher.
  std::map<std::string, std::unique_ptr<outbox::PluginSink>, std::less<>> sinks_;
  std::vector<std::unique_ptr<outbox::Dispatcher>> dispatchers_;
  std::vector<outbox::DeliveryResult> deliveries_;
  bool deliveries_flush_posted_ = false;
  std::unique_ptr<ingest::Router> router_;
  // Answers queries from committed state, off the writer thread.
  asio::thread_pool readers_{1};
  asio::signal_set signals_;
  bool stopping_ = false;
  int exit_code_ = kExitOk;
};

}  // namespace

int RunDaemon(const DaemonOptions& options) {
  auto logger = SetUpLogging();
  auto config = LoadConfig(options);
  if (!config.ok()) {
    logger->critical("cannot start: {}", config.status().ToString());
    return kExitStartupFailed;
  }
  for (const std::string& setting : ChangedSettings(*config)) {
    logger->info("config {}", setting);
  }
  Daemon daemon(std::move(config).value(), logger);
  const Status started = daemon.Start();
  if (!started.ok()) {
    logger->critical("cannot start: {}", started.ToString());
    logger->flush();
    return kExitStartupFailed;
  }
  return daemon.Run();
}

}  // namespace tandem::tandemd
