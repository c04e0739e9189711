/*
 * hd_lag.c - lag and partition status from ZooKeeper's readings
 * (hd_lag.h).
 */
#include "hd_lag.h"

#include <string.h>

const char *hd_lag_status_name(hd_lag_status_t s) {
  switch (s) {
  case HD_LAG_OK:
    return "OK";
  case HD_LAG_WARN:
    return "WARN";
  case HD_LAG_STALL:
    return "STALL";
  case HD_LAG_STOP:
    return "STOP";
  case HD_LAG_UNOWNED:
    return "UNOWNED";
  }
  return "?";
}

size_t hd_lag_source(const hd_reg_t *regs, size_t n, const char *source,
                     hd_lag_source_t *out) {
  memset(out, 0, sizeof(*out));
  const hd_reg_t *latest = NULL;
  for (size_t i = 0; i < n; i++)
    if (strcmp(regs[i].source, source) == 0 && regs[i].source_server_id &&
        (latest == NULL || regs[i].updated_ms > latest->updated_ms))
      latest = &regs[i];
  if (latest == NULL)
    return 0;
  out->server_id = latest->source_server_id;
  for (size_t i = 0; i < n; i++) {
    const hd_reg_t *r = &regs[i];
    if (strcmp(r->source, source) != 0 || r->source_server_id != out->server_id)
      continue;
    out->relays++;
    if (r->newest_scn > out->newest_scn) {
      out->newest_scn = r->newest_scn;
      out->newest_ts_ms = r->newest_ts_ms;
    }
    if (r->oldest_scn &&
        (out->oldest_scn == 0 || r->oldest_scn < out->oldest_scn))
      out->oldest_scn = r->oldest_scn;
  }
  return out->relays;
}

#define SCN_FILE(s) ((s) >> 32)
#define SCN_OFF(s) ((s)&0xffffffffu)

void hd_lag_measure(const hd_lag_source_t *src, uint64_t scn, uint64_t ts_ms,
                    hd_lag_point_t *out) {
  memset(out, 0, sizeof(*out));
  if (src->relays == 0)
    return; /* nothing to be behind of: unknown */
  out->behind = scn < src->newest_scn;
  if (!out->behind) {
    out->lag_known = 1;
  } else if (scn && ts_ms && src->newest_ts_ms) {
    out->lag_known = 1;
    out->lag_s = src->newest_ts_ms > ts_ms
                     ? (double)(src->newest_ts_ms - ts_ms) / 1000.0
                     : 0.0;
  }
  if (scn == 0 || src->oldest_scn == 0)
    return;
  out->lead_known = 1;
  out->out_of_retention = scn < src->oldest_scn;
  /* Files are counted, never bytes across files: an offset means nothing
   * in another file. */
  out->lead_files = (int64_t)SCN_FILE(scn) - (int64_t)SCN_FILE(src->oldest_scn);
  if (SCN_FILE(scn) == SCN_FILE(src->oldest_scn)) {
    out->lead_bytes_known = 1;
    out->lead_bytes = (int64_t)SCN_OFF(scn) - (int64_t)SCN_OFF(src->oldest_scn);
  }
}

hd_lag_status_t hd_lag_judge(const hd_lag_sample_t *w, size_t n,
                             size_t window) {
  if (n == 0)
    return HD_LAG_OK;
  const hd_lag_sample_t *last = &w[n - 1];
  if (!last->owned)
    return HD_LAG_UNOWNED;
  size_t same = 0; /* readings of the newest one's grant */
  while (same < n && w[n - 1 - same].epoch == last->epoch)
    same++;
  if (!last->behind || window < 2 || same < window)
    return HD_LAG_OK;
  const hd_lag_sample_t *win = w + (n - window);
  int written = 0, moved = 0, all_behind = 1, lag_up = 1, fresh = 0;
  double first = 0, prev = 0;
  for (size_t i = 0; i < window; i++) {
    if (i > 0) {
      written |= win[i].zversion != win[0].zversion;
      moved |= win[i].scn != win[0].scn;
    }
    all_behind &= win[i].behind;
    /* The lag counts where the checkpoint has just moved: between two
     * writes it grows by itself, and drops at the next, whatever the
     * trend. At the moves it is what the holder achieved. */
    if (i > 0 && win[i].scn == win[i - 1].scn)
      continue;
    if (!win[i].lag_known || (fresh && win[i].lag_s < prev))
      lag_up = 0;
    if (fresh++ == 0)
      first = win[i].lag_s;
    prev = win[i].lag_s;
  }
  if (!written)
    return HD_LAG_STOP;
  if (all_behind && !moved)
    return HD_LAG_STALL;
  /* Commit times have whole seconds, and the checkpoint and the relays
   * are read a moment apart: a partition in step reads 0 or 1 s. A rise
   * of less than 2 s is that, not a trend. */
  if (all_behind && lag_up && fresh >= 3 && prev >= first + 2.0)
    return HD_LAG_WARN;
  return HD_LAG_OK;
}
