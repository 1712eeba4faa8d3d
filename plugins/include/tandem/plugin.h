/* tandem notification plugins: the C ABI between tandemd and a notification plugin.
 *
 * A plugin is a shared library that tandemd loads with dlopen(path, RTLD_NOW | RTLD_LOCAL) from
 * its configured plugins directory. It exports one symbol, tandem_plugin_entry, returning a table
 * of functions. tandemd reads the table's abi_version before anything else and refuses a plugin
 * built for another version. A configured plugin instance (a "channel instance": the plugin plus
 * its own configuration) delivers notifications, one at a time, to an address given per
 * delivery (a URL, a mailbox, a topic), and says whether each was delivered, should be retried,
 * or failed for good. tandemd records a delivery only after the plugin said it was delivered, so
 * delivery is at least once: a plugin may see the same notification_id again (after a crash, a
 * retry, or an operator's re-queue), and receivers deduplicate by it.
 *
 * This is the only installed header of tandem. Plain C; no C++ exceptions or types cross it.
 *
 * Versioning: TANDEM_PLUGIN_ABI_VERSION changes whenever any type or function of this header
 * changes meaning or layout. abi_version is the first member of every version of the table, so
 * the host can read it from a plugin of any version.
 *
 * Threading: create and destroy are called from the daemon's main thread. deliver is called from
 * a thread of the daemon's outbox, one call at a time per instance; different instances (of the
 * same plugin or not) may deliver at the same time on different threads, so a plugin keeps its
 * state in its instance, not in globals, or locks what it shares. destroy is called only after
 * the instance's last deliver returned. A plugin must not call exit(), install signal handlers,
 * or change the process's working directory or environment.
 *
 * Memory: every string the host passes is NUL-terminated, owned by the host and valid only for
 * the duration of the call; a plugin copies what it keeps. Error buffers are owned by the host:
 * a plugin writes at most error_size bytes, NUL-terminated, truncating if need be.
 *
 * Content: the notification JSON carries case references, deadlines, roles and the subject and
 * body the workflow's templates rendered, never other fact values. Error messages and log lines
 * a plugin produces name the destination and the failure, and must not quote the notification's
 * subject or body.
 */
#ifndef TANDEM_PLUGIN_H_
#define TANDEM_PLUGIN_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TANDEM_PLUGIN_ABI_VERSION 1u

/* The name of the one symbol a plugin exports. */
#define TANDEM_PLUGIN_ENTRY_SYMBOL "tandem_plugin_entry"

/* The outcome of one delivery attempt. */
typedef enum tandem_plugin_result {
  /* The destination has it (for a file: durably). tandemd records the delivery. */
  TANDEM_PLUGIN_DELIVERED = 0,
  /* Not delivered, may work later (timeout, connection refused, 5xx, 408, 429, ...). tandemd
   * retries with exponential back-off and jitter, then parks it in dead_letter after the
   * configured attempts. */
  TANDEM_PLUGIN_RETRY = 1,
  /* Not delivered and retrying will not help (a 4xx answer, a refused redirect, a mailbox the
   * server refused). tandemd parks it in dead_letter at once; an operator may re-queue it
   * (tandemctl outbox retry). */
  TANDEM_PLUGIN_PERMANENT_FAILURE = 2
} tandem_plugin_result;

/* Log levels for tandem_plugin_host.log. */
typedef enum tandem_plugin_log_level {
  TANDEM_PLUGIN_LOG_DEBUG = 0,
  TANDEM_PLUGIN_LOG_INFO = 1,
  TANDEM_PLUGIN_LOG_WARN = 2,
  TANDEM_PLUGIN_LOG_ERROR = 3
} tandem_plugin_log_level;

/* What the host lends an instance at create; valid until the instance is destroyed. */
typedef struct tandem_plugin_host {
  /* Pass back as log's first argument. */
  void* context;
  /* Writes one line to the daemon's log at `level`, prefixed with the instance's name. Thread
   * safe. `message` is copied. Never pass fact values, subjects or bodies. */
  void (*log)(void* context, int level, const char* message);
  /* The daemon's data directory, absolute. Plugins resolve relative paths in their
   * configuration against it. */
  const char* data_dir;
} tandem_plugin_host;

/* One delivery attempt of one notification to one channel. */
typedef struct tandem_plugin_delivery {
  /* The notification's stable id: the same on every attempt and every channel. Receivers
   * deduplicate by it. */
  const char* notification_id;
  /* This delivery's id (the outbox sequence), distinct per channel: the number `tandemctl
   * outbox` shows. The same on every attempt of this delivery. */
  uint64_t delivery_id;
  /* The attempt, from 1. */
  uint32_t attempt;
  /* The channel's address, as the routing configuration gives it: a URL for webhook, a mailbox
   * for email, a topic for zmq_pub; may be "" for plugins that need none (log, jsonl, exec). */
  const char* address;
  /* The notification as one JSON object (UTF-8, no trailing newline), json_size bytes plus a
   * terminating NUL. Its fields: plugins/README.md, "The notification JSON". */
  const char* json;
  size_t json_size;
  /* The rendered subject and body (also inside `json`), for plugins that format a message. */
  const char* subject;
  const char* body;
} tandem_plugin_delivery;

/* The function table a plugin exports through tandem_plugin_entry. Every pointer is non-NULL. */
typedef struct tandem_plugin {
  /* TANDEM_PLUGIN_ABI_VERSION as the plugin was compiled. Always the first member. */
  uint32_t abi_version;
  /* The plugin's name, the one configuration refers to (e.g. "webhook"): lowercase letters,
   * digits and '_'. Unique among the loaded plugins. Static storage. */
  const char* name;
  /* The plugin's own version (e.g. "1.0.0"), logged at load. Static storage. */
  const char* version;

  /* Creates an instance named `instance_name` from `config_json`, a JSON object (the instance's
   * `config` in tandemd's configuration; "{}" when it has none). On success sets *instance and
   * returns 0. On failure returns non-zero, leaves *instance NULL and writes why into `error`,
   * naming the offending key (an unknown key is an error). Keeps `host`, not the strings. */
  int (*create)(const char* instance_name, const char* config_json,
                const tandem_plugin_host* host, void** instance, char* error, size_t error_size);

  /* Checks that `address` is one this instance can deliver to (a well-formed URL of an allowed
   * scheme, a mailbox, ...), so a configuration error shows at start-up rather than at the first
   * notification. Returns 0 if it is, else non-zero with why in `error`. Never does I/O. */
  int (*check_address)(void* instance, const char* address, char* error, size_t error_size);

  /* Delivers one notification. Returns what happened; for RETRY and PERMANENT_FAILURE writes
   * why into `error`, naming the destination and the failure. Must return within a bounded time
   * (each plugin has a configurable timeout). */
  tandem_plugin_result (*deliver)(void* instance, const tandem_plugin_delivery* delivery,
                                  char* error, size_t error_size);

  /* Releases the instance and sets *instance to NULL. Accepts a NULL *instance. */
  void (*destroy)(void** instance);
} tandem_plugin;

/* The one exported symbol: returns the plugin's function table (static storage, never NULL). */
typedef const tandem_plugin* (*tandem_plugin_entry_fn)(void);

#if defined(__GNUC__)
#define TANDEM_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define TANDEM_PLUGIN_EXPORT
#endif

/* Every plugin defines this, with C linkage. */
TANDEM_PLUGIN_EXPORT const tandem_plugin* tandem_plugin_entry(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* TANDEM_PLUGIN_H_ */
