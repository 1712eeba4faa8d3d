// tandemd: the tandem daemon. Parses the command line and runs the daemon (daemon.h).
#include <CLI/CLI.hpp>

#include "daemon/tandemd/daemon.h"

int main(int argc, char** argv) {
  tandem::tandemd::DaemonOptions options;
  CLI::App app{"tandemd: durable statutory safeguarding timelines"};
  app.add_option("--config", options.config_file,
                 "YAML configuration (keys of proto/tandem/v1/config.proto); default: embedded");
  app.add_option("--data", options.data_dir, "Data directory (default ./var/tandem)");
  app.add_option("--ingest", options.ingest_endpoint,
                 "ZeroMQ endpoint to bind (default tcp://127.0.0.1:7450)");
  app.add_option("--workflows", options.workflows_dir,
                 "Workflows directory (default: the shipped workflows)");
  app.add_option("--calendar", options.calendar_file,
                 "Bank holidays, GOV.UK bank-holidays.json shape (default: the shipped one)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : tandem::tandemd::kExitStartupFailed;
  }
  return tandem::tandemd::RunDaemon(options);
}
