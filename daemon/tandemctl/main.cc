// tandemctl: the operator's and integrator's command-line tool.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "daemon/tandemctl/remote.h"
#include "daemon/tandemctl/simulate.h"

namespace {

// --endpoint and --timeout, shared by the commands that talk to tandemd.
void AddRemoteOptions(CLI::App* command, tandem::tandemctl::RemoteOptions* remote) {
  command->add_option("--endpoint", remote->endpoint, "tandemd's ingest endpoint")
      ->default_str(remote->endpoint);
  command
      ->add_option("--timeout", remote->timeout_seconds,
                   "Seconds one request may take, retries included")
      ->default_str("10");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tandemctl: operate and check tandem"};
  app.require_subcommand(1);

  tandem::tandemctl::SimulateOptions sim;
  CLI::App* simulate = app.add_subcommand(
      "simulate",
      "Run a file of events through the workflows on a virtual clock and print the timeline");
  simulate
      ->add_option("--events", sim.events, "Events as JSON lines (tandem.v1.Event); - for stdin")
      ->required();
  simulate->add_option(
      "--until", sim.until,
      "Fire timers up to the end of this day (YYYY-MM-DD); default: until none is left");
  simulate->add_flag("--json", sim.json, "One JSON object per line");
  simulate->add_option("--workflows", sim.workflows,
                       "Workflows directory (default: the shipped ones)");
  simulate->add_option("--partnerships", sim.partnerships,
                       "Partnerships' own settings for the workflows (a directory of *.yaml)");
  simulate->add_option("--calendar", sim.calendar,
                       "Bank holidays, GOV.UK bank-holidays.json shape (default: the shipped one)");

  tandem::tandemctl::PublishOptions pub;
  CLI::App* publish = app.add_subcommand(
      "publish", "Publish events (JSON lines of tandem.v1.Event) to tandemd, one ack line each");
  publish->add_option("events", pub.events, "Events file; - for stdin")->required();
  AddRemoteOptions(publish, &pub.remote);

  tandem::tandemctl::CaseShowOptions show;
  CLI::App* case_cmd = app.add_subcommand("case", "Look at cases held by tandemd");
  case_cmd->require_subcommand(1);
  CLI::App* case_show = case_cmd->add_subcommand(
      "show", "A case: state, facts, deadlines and their explanations, events, timeline");
  case_show->add_option("case_id", show.case_id, "The case's reference")->required();
  case_show->add_flag("--json", show.json, "One JSON object");
  AddRemoteOptions(case_show, &show.remote);

  tandem::tandemctl::DeadlinesOptions dl;
  CLI::App* deadlines = app.add_subcommand(
      "deadlines", "Open and breached deadlines of open cases, earliest due first");
  deadlines
      ->add_option("--within", dl.within,
                   "Only those due within N working days from today (and the breached)")
      ->check(CLI::NonNegativeNumber);
  deadlines->add_flag("--overdue", dl.overdue, "Only overdue deadlines");
  deadlines->add_option("--partnership", dl.partnership, "Only this partnership's cases");
  deadlines->add_flag("--json", dl.json, "One JSON object per line");
  AddRemoteOptions(deadlines, &dl.remote);

  tandem::tandemctl::OutboxOptions ob;
  CLI::App* outbox = app.add_subcommand(
      "outbox", "Notification deliveries pending or parked; 'outbox retry ID' re-queues one");
  outbox->add_flag("--parked", ob.parked_only, "Only parked (dead-lettered) deliveries");
  outbox->add_flag("--json", ob.json, "One JSON object per line");
  AddRemoteOptions(outbox, &ob.remote);
  tandem::tandemctl::OutboxRetryOptions retry;
  CLI::App* outbox_retry = outbox->add_subcommand(
      "retry", "Put a parked delivery back in the outbox, to be delivered again from attempt 1");
  outbox_retry->add_option("id", retry.delivery_id, "The delivery's id, as 'outbox' lists it")
      ->required();
  AddRemoteOptions(outbox_retry, &retry.remote);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 prints the message or the help; our contract is 0 for help, 1 for a bad command line.
    const int code = app.exit(e);
    return code == 0 ? 0 : 1;
  }
  if (simulate->parsed()) return tandem::tandemctl::RunSimulate(sim, stdout, stderr);
  if (publish->parsed()) return tandem::tandemctl::RunPublish(pub, stdout, stderr);
  if (case_show->parsed()) return tandem::tandemctl::RunCaseShow(show, stdout, stderr);
  if (deadlines->parsed()) return tandem::tandemctl::RunDeadlines(dl, stdout, stderr);
  if (outbox_retry->parsed()) return tandem::tandemctl::RunOutboxRetry(retry, stdout, stderr);
  if (outbox->parsed()) return tandem::tandemctl::RunOutbox(ob, stdout, stderr);
  return 1;
}
