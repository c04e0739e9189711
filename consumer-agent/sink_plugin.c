/*
 * sink_plugin.c - the plugin sink: a shared object (sink.path) speaking
 * the C ABI of <herald/sink.h>, loaded at start and driven like any sink.
 *
 * It owns the loading and the refusals (a missing file, a missing symbol,
 * another ABI version, an incomplete table: each a config error, so the
 * agent does not start), the copy of sink.options handed to init, and the
 * mapping of the plugin's status codes onto the agent's: HERALD_SINK_FENCED
 * becomes HD_ESINK_FENCED, any other failure a retryable -EIO with the
 * plugin's own message. The generic layer (sink.c) adds the order check
 * and the broken state, so the plugin sees only the calls the contract
 * allows.
 */
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "hd_err.h"
#include "hd_mem.h"
#include "herald/sink.h"
#include "sink_int.h"

typedef struct {
  sink_t base;
  void *dl;
  const herald_sink_plugin_t *pl;
  void *state;
  char *path;
} plugin_sink_t;

typedef struct {
  sink_part_t base;
  void *h; /* the plugin's handle */
} plugin_part_t;

/* One line of the plugin's err, made safe for a log line whatever the
 * plugin left in it (no terminator, a newline). */
static void tidy(char *msg, size_t len) {
  msg[len - 1] = '\0';
  for (char *c = msg; *c; c++)
    if (*c == '\n' || *c == '\r')
      *c = ' ';
}

/* The plugin's status as the agent's code, with err naming the plugin,
 * the call and the partition. */
static int mapped(const plugin_sink_t *ps, const char *call, int64_t p, int rc,
                  const char *msg, char *err, size_t errlen) {
  if (rc >= 0)
    return 0;
  char where[32] = "";
  if (p >= 0)
    snprintf(where, sizeof(where), " partition %" PRId64, p);
  const char *m = *msg ? msg : "(no message)";
  if (rc == HERALD_SINK_FENCED)
    return hd_errorf(err, errlen, HD_ESINK_FENCED,
                     "plugin sink %s:%s %s: fenced: %s", ps->pl->name, where,
                     call, m);
  return hd_errorf(err, errlen, -EIO, "plugin sink %s:%s %s failed (%d): %s",
                   ps->pl->name, where, call, rc, m);
}

int sink_plugin_check(const herald_sink_plugin_t *pl, const char *path,
                      char *err, size_t errlen) {
  if (pl == NULL)
    return hd_errorf(err, errlen, HD_ECONFIG,
                     "plugin sink: %s: " HERALD_SINK_SYMBOL "() returned NULL",
                     path);
  if (pl->abi_version != HERALD_SINK_ABI_VERSION)
    return hd_errorf(err, errlen, HD_ECONFIG,
                     "plugin sink: %s: built for ABI version %" PRIu32
                     ", this agent speaks %d (rebuild it against this "
                     "agent's <herald/sink.h>)",
                     path, pl->abi_version, HERALD_SINK_ABI_VERSION);
  const char *missing = pl->name == NULL              ? "name"
                        : pl->init == NULL            ? "init"
                        : pl->open_partition == NULL  ? "open_partition"
                        : pl->write == NULL           ? "write"
                        : pl->flush == NULL           ? "flush"
                        : pl->close_partition == NULL ? "close_partition"
                        : pl->destroy == NULL         ? "destroy"
                                                      : NULL;
  if (missing != NULL)
    return hd_errorf(err, errlen, HD_ECONFIG,
                     "plugin sink: %s: the plugin's table has no %s", path,
                     missing);
  return 0;
}

static int plugin_create(const hd_agent_conf_t *conf, sink_t **out, char *err,
                         size_t errlen) {
  const char *path = conf->sink.path;
  if (path == NULL)
    return hd_errorf(err, errlen, HD_ECONFIG,
                     "plugin sink: sink.path is not set");
  /* RTLD_NOW: an unresolved symbol is a refusal now, not a crash at the
   * first window; RTLD_LOCAL: two plugins' symbols never mix. */
  void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (dl == NULL) {
    const char *why = dlerror();
    return hd_errorf(err, errlen, HD_ECONFIG, "plugin sink: cannot load %s: %s",
                     path, why ? why : "unknown error");
  }
  dlerror();
  void *sym = dlsym(dl, HERALD_SINK_SYMBOL);
  const char *why = dlerror();
  if (sym == NULL || why != NULL) {
    int rc = hd_errorf(err, errlen, HD_ECONFIG,
                       "plugin sink: %s does not export " HERALD_SINK_SYMBOL
                       "() (is it a herald sink plugin?): %s",
                       path, why ? why : "NULL symbol");
    dlclose(dl);
    return rc;
  }
  herald_sink_plugin_fn fn;
  /* dlsym() returns an object pointer; POSIX guarantees it converts. */
  memcpy(&fn, &sym, sizeof(fn));
  const herald_sink_plugin_t *pl = fn();
  int rc = sink_plugin_check(pl, path, err, errlen);
  if (rc < 0) {
    dlclose(dl);
    return rc;
  }

  size_t n = conf->sink.options.n / 2;
  const char **keys = hd_calloc(n + 1, sizeof(*keys));
  const char **values = hd_calloc(n + 1, sizeof(*values));
  for (size_t i = 0; i < n; i++) {
    keys[i] = conf->sink.options.v[2 * i];
    values[i] = conf->sink.options.v[2 * i + 1];
  }
  herald_sink_config_t pc = {
      .agent_id = conf->agent.id ? conf->agent.id : "",
      .partitions = (uint32_t)conf->agent.partitions,
      .n_options = n,
      .keys = keys,
      .values = values,
  };
  plugin_sink_t *ps = hd_calloc(1, sizeof(*ps));
  ps->dl = dl;
  ps->pl = pl;
  ps->path = hd_strdup(path);
  char msg[400] = "";
  int prc = pl->init(&pc, &ps->state, msg, sizeof(msg));
  tidy(msg, sizeof(msg));
  free(keys);
  free(values);
  if (prc < 0) {
    /* A plugin that refuses its options is a config error too. */
    rc = hd_errorf(err, errlen, HD_ECONFIG,
                   "plugin sink %s (%s): init refused the options: %s",
                   pl->name, path, *msg ? msg : "(no message)");
    free(ps->path);
    free(ps);
    dlclose(dl);
    return rc;
  }
  *out = &ps->base;
  return 0;
}

static int plugin_open(sink_t *s, uint32_t p, uint64_t epoch, sink_part_t **out,
                       uint64_t *position, char *err, size_t errlen) {
  plugin_sink_t *ps = (plugin_sink_t *)s;
  void *h = NULL;
  uint64_t pos = 0;
  char msg[400] = "";
  int rc =
      ps->pl->open_partition(ps->state, p, epoch, &h, &pos, msg, sizeof(msg));
  tidy(msg, sizeof(msg));
  if (rc < 0)
    return mapped(ps, "open_partition", p, rc, msg, err, errlen);
  plugin_part_t *pp = hd_calloc(1, sizeof(*pp));
  pp->h = h;
  *out = &pp->base;
  *position = pos;
  return 0;
}

static int plugin_write(sink_part_t *part, const sink_window_t *w, char *err,
                        size_t errlen) {
  plugin_sink_t *ps = (plugin_sink_t *)part->sink;
  plugin_part_t *pp = (plugin_part_t *)part;
  herald_sink_window_t hw = {
      .scn = w->scn,
      .ts_ms = w->ts_ms,
      .chunk = w->chunk,
      .last = w->last,
      .snapshot = w->snapshot,
      .json = w->json ? w->json : "",
      .json_len = w->json_len,
      .rows = w->rows,
      .window = w->hw,
  };
  char msg[400] = "";
  int rc = ps->pl->write(pp->h, &hw, msg, sizeof(msg));
  tidy(msg, sizeof(msg));
  return mapped(ps, "write", part->partition, rc, msg, err, errlen);
}

static int plugin_flush(sink_part_t *part, char *err, size_t errlen) {
  plugin_sink_t *ps = (plugin_sink_t *)part->sink;
  char msg[400] = "";
  int rc = ps->pl->flush(((plugin_part_t *)part)->h, msg, sizeof(msg));
  tidy(msg, sizeof(msg));
  return mapped(ps, "flush", part->partition, rc, msg, err, errlen);
}

static int plugin_idle(sink_part_t *part, char *err, size_t errlen) {
  plugin_sink_t *ps = (plugin_sink_t *)part->sink;
  if (ps->pl->idle == NULL)
    return 0;
  char msg[400] = "";
  int rc = ps->pl->idle(((plugin_part_t *)part)->h, msg, sizeof(msg));
  tidy(msg, sizeof(msg));
  return mapped(ps, "idle", part->partition, rc, msg, err, errlen);
}

static int plugin_close(sink_part_t *part, char *err, size_t errlen) {
  plugin_sink_t *ps = (plugin_sink_t *)part->sink;
  plugin_part_t *pp = (plugin_part_t *)part;
  uint32_t p = part->partition;
  char msg[400] = "";
  int rc = ps->pl->close_partition(pp->h, msg, sizeof(msg));
  tidy(msg, sizeof(msg));
  free(pp);
  return mapped(ps, "close_partition", p, rc, msg, err, errlen);
}

static void plugin_destroy(sink_t *s) {
  plugin_sink_t *ps = (plugin_sink_t *)s;
  ps->pl->destroy(ps->state);
  dlclose(ps->dl);
  free(ps->path);
  free(ps);
}

const sink_ops_t sink__plugin_ops = {
    .name = "plugin",
    .typed_only = 0,
    .create = plugin_create,
    .open_partition = plugin_open,
    .write = plugin_write,
    .flush = plugin_flush,
    .idle = plugin_idle,
    .close_partition = plugin_close,
    .destroy = plugin_destroy,
};
