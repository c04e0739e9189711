/*
 * hd_time.h - clocks and deadlines, the same way everywhere.
 */
#ifndef HD_TIME_H
#define HD_TIME_H

#include <stdint.h>
#include <time.h>

/** @brief Wall-clock milliseconds since the epoch (for timestamps). */
static inline uint64_t hd_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/**
 * @brief The CLOCK_REALTIME deadline ms from now, as
 *        pthread_cond_timedwait() wants it.
 */
static inline struct timespec hd_deadline_ms(uint64_t ms) {
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += (time_t)(ms / 1000);
  dl.tv_nsec += (long)(ms % 1000) * 1000000;
  if (dl.tv_nsec >= 1000000000) {
    dl.tv_sec++;
    dl.tv_nsec -= 1000000000;
  }
  return dl;
}

#endif
