// tandemctl: the operator's and integrator's command-line tool.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "daemon/tandemctl/simulate.h"

int main(int argc, char** argv) {
  CLI::App app{"tandemctl: operate and check tandem"};
  app.require_subcommand(1);

  tandem::tandemctl::SimulateOptions sim;
  CLI::App* simulate = app.add_subcommand(
      "simulate", "Run a file of events through the workflows on a virtual clock and print the timeline");
  simulate->add_option("--events", sim.events, "Events as JSON lines (tandem.v1.Event); - for stdin")
      ->required();
  simulate->add_option("--until", sim.until,
                       "Fire timers up to the end of this day (YYYY-MM-DD); default: until none is left");
  simulate->add_flag("--json", sim.json, "One JSON object per line");
  simulate->add_option("--workflows", sim.workflows, "Workflows directory (default: the shipped ones)");
  simulate->add_option("--calendar", sim.calendar,
                       "Bank holidays, GOV.UK bank-holidays.json shape (default: the shipped one)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 prints the message or the help; our contract is 0 for help, 1 for a bad command line.
    const int code = app.exit(e);
    return code == 0 ? 0 : 1;
  }
  if (simulate->parsed()) return tandem::tandemctl::RunSimulate(sim, stdout, stderr);
  return 1;
}
