/*
 * sink_command.c - the command sink: JSON lines on a command's stdin.
 *
 * Each partition gets a process of its own: `/bin/sh -c "$sink.command"`,
 * started when the partition opens, with its stdin a pipe from the agent
 * and its stdout and stderr the agent's, in a process group of its own
 * (a terminal's ^C reaches the agent, which then closes the command's
 * stdin in good order; the agent's own threads' signal masks and ignored
 * signals do not reach it). Its environment is the agent's with
 * HERALD_AGENT=<agent.id> and HERALD_PARTITION=<p>. One process per
 * partition keeps each partition's order trivially (one reader of one
 * pipe) and isolates the partitions: one command that dies or stalls
 * stops only its own partition.
 *
 * "Acknowledged" (what a flush waits for): the command has read every
 * byte written to its pipe, and was still running when the pipe was found
 * empty. What it does with them is its own business: a command that
 * needs more than at-least-once into its own buffers must make each line
 * durable before reading the next.
 *
 * A command that exits (any status, even 0) while its partition is open,
 * or closes its stdin, fails the write or flush that notices it with
 * HD_ESINK_EXITED, naming the command and its exit status or signal; the
 * status is logged. The partition then reopens from its checkpoint (the
 * caller's part of the contract), and the open that starts the command
 * again waits out a backoff first: exponential with jitter from 100 ms to
 * sink.retry_max (agent_retry.h), kept per partition across closes, and
 * started afresh when a command that ran for CMD_HEALTHY_MS (10 s) exits:
 * a command that fails at once backs off, one that fails once a day does
 * not wait long for it. Every child is reaped: by the write
 * or flush that finds it gone, or when its partition closes: stdin is
 * closed, the command gets the stop timeout (5 s) to exit, then SIGTERM
 * for its group, the timeout again, then SIGKILL. SIGPIPE never reaches
 * the process (agent__write_all()).
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent_retry.h"
#include "hd_err.h"
#include "hd_log.h"
#include "hd_mem.h"
#include "sink_int.h"

#define CMD_STOP_TIMEOUT_MS 5000
#define CMD_EPIPE_WAIT_MS 1000 /* for a command that closed its stdin */
#define CMD_HEALTHY_MS 10000   /* a run this long resets the backoff */

/* What survives a partition's close: its restart backoff. */
typedef struct {
  agent_retry_t retry;
  uint64_t not_before_ms; /* no restart before (agent__mono_ms()) */
} cmd_slot_t;

typedef struct {
  sink_t base;
  char *command; /* sink.command */
  char *agent;   /* agent.id */
  uint64_t retry_max_ms;
  uint64_t stop_timeout_ms;
  pthread_mutex_t lock; /* slots[] */
  cmd_slot_t **slots;   /* agent.partitions entries, made on first open */
} cmd_sink_t;

typedef struct {
  sink_part_t base;
  cmd_slot_t *slot;
  pid_t pid;
  uint64_t started_ms; /* agent__mono_ms() at the spawn */
  int fd;              /* write end of the command's stdin; -1 once closed */
  int reaped;          /* 1 once waitpid() has the status */
  int status;          /* waitpid()'s status; -1: reaped by someone else */
  int reported;        /* its exit failed a write or flush already */
} cmd_part_t;

static int cmd_create(const hd_agent_conf_t *conf, sink_t **out, char *err,
                      size_t errlen) {
  if (conf->sink.command == NULL || conf->sink.command[0] == '\0')
    return hd_errorf(err, errlen, -EINVAL,
                     "command sink: sink.command is not set");
  cmd_sink_t *cs = hd_calloc(1, sizeof(*cs));
  cs->command = hd_strdup(conf->sink.command);
  cs->agent = conf->agent.id ? hd_strdup(conf->agent.id) : NULL;
  cs->retry_max_ms = conf->sink.retry_max_ms;
  cs->stop_timeout_ms = CMD_STOP_TIMEOUT_MS;
  pthread_mutex_init(&cs->lock, NULL);
  cs->slots = hd_calloc((size_t)conf->agent.partitions, sizeof(*cs->slots));
  *out = &cs->base;
  return 0;
}

void sink_command_set_stop_timeout(sink_t *s, uint64_t ms) {
  if (s->ops == &sink__command_ops)
    ((cmd_sink_t *)s)->stop_timeout_ms = ms;
}

static void describe_status(int status, char *buf, size_t n) {
  if (status == -1) {
    snprintf(buf, n, "exited (status unknown: reaped elsewhere)");
  } else if (WIFEXITED(status)) {
    int code = WEXITSTATUS(status);
    snprintf(buf, n, "exited with status %d%s", code,
             code == 127   ? " (command not found)"
             : code == 126 ? " (command not executable)"
                           : "");
  } else if (WIFSIGNALED(status)) {
    const char *sig = sigabbrev_np(WTERMSIG(status));
    snprintf(buf, n, "was killed by signal %d (SIG%s)", WTERMSIG(status),
             sig ? sig : "?");
  } else {
    snprintf(buf, n, "ended with wait status %d", status);
  }
}

/* Whether the command has exited, waiting up to wait_ms (-1: as long as
 * it takes) for it to; reaps it. */
static int reap(cmd_part_t *cp, int64_t wait_ms) {
  uint64_t deadline = agent__mono_ms() + (wait_ms > 0 ? (uint64_t)wait_ms : 0);
  uint64_t step = 1;
  while (!cp->reaped) {
    int st;
    pid_t r = waitpid(cp->pid, &st, wait_ms < 0 ? 0 : WNOHANG);
    if (r == cp->pid) {
      cp->reaped = 1;
      cp->status = st;
    } else if (r < 0 && errno != EINTR) {
      /* ECHILD: SIGCHLD ignored, or a waitpid(-1) elsewhere took it. */
      cp->reaped = 1;
      cp->status = -1;
    } else if (r == 0) {
      if (agent__mono_ms() >= deadline)
        return 0;
      agent__sleep_ms(step);
      step = step < 32 ? step * 2 : step;
    }
  }
  return 1;
}

/* Stops a command that will not exit by itself: SIGTERM to its group, the
 * stop timeout, SIGKILL; reaped afterwards. */
static void stop_child(cmd_sink_t *cs, cmd_part_t *cp) {
  hd_log(HD_LL_WARN, "sink", "stopping sink command",
         "partition=%" PRIu32 " pid=%d signal=TERM", cp->base.partition,
         (int)cp->pid);
  kill(-cp->pid, SIGTERM);
  if (reap(cp, (int64_t)cs->stop_timeout_ms))
    return;
  hd_log(HD_LL_WARN, "sink", "stopping sink command",
         "partition=%" PRIu32 " pid=%d signal=KILL", cp->base.partition,
         (int)cp->pid);
  kill(-cp->pid, SIGKILL);
  reap(cp, -1);
}

/* The environment of a command: the agent's, with HERALD_AGENT and
 * HERALD_PARTITION set. Freed with free_env(). */
static char **make_env(const char *agent, uint32_t p) {
  size_t n = 0;
  for (char **e = environ; *e; e++)
    n++;
  char **env = hd_calloc(n + 3, sizeof(*env));
  size_t k = 0;
  for (char **e = environ; *e; e++)
    if (strncmp(*e, "HERALD_AGENT=", 13) != 0 &&
        strncmp(*e, "HERALD_PARTITION=", 17) != 0)
      env[k++] = hd_strdup(*e);
  char buf[64];
  if (agent) {
    size_t len = strlen(agent) + 14;
    env[k] = hd_malloc(len);
    snprintf(env[k++], len, "HERALD_AGENT=%s", agent);
  }
  snprintf(buf, sizeof(buf), "HERALD_PARTITION=%" PRIu32, p);
  env[k++] = hd_strdup(buf);
  env[k] = NULL;
  return env;
}

static void free_env(char **env) {
  for (char **e = env; *e; e++)
    free(*e);
  free(env);
}

/* A close-on-exec descriptor above 2, so that the dup2() onto 0 in the
 * child cannot be a no-op that leaves it close-on-exec (an agent started
 * with stdin closed gets 0 from pipe2()). */
static int above_stdio(int fd) {
  if (fd > 2)
    return fd;
  int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  close(fd);
  return nfd;
}

static int spawn(cmd_sink_t *cs, cmd_part_t *cp, uint32_t p, char *err,
                 size_t errlen) {
  int pfd[2];
  if (pipe2(pfd, O_CLOEXEC) < 0)
    return hd_errorf(err, errlen, -errno,
                     "command sink: partition %" PRIu32 ": pipe: %s", p,
                     hd_strerror(-errno));
  pfd[0] = above_stdio(pfd[0]);
  pfd[1] = above_stdio(pfd[1]);
  if (pfd[0] < 0 || pfd[1] < 0) {
    int e = errno;
    if (pfd[0] >= 0)
      close(pfd[0]);
    if (pfd[1] >= 0)
      close(pfd[1]);
    return hd_errorf(err, errlen, -e,
                     "command sink: partition %" PRIu32 ": pipe: %s", p,
                     hd_strerror(-e));
  }
  /* Both ends are close-on-exec: the command gets the read end as fd 0
   * only, and no other partition's command inherits this pipe (it would
   * then never see EOF when this partition closes). */
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, pfd[0], 0);
  posix_spawnattr_t at;
  posix_spawnattr_init(&at);
  sigset_t none, dflt;
  sigemptyset(&none);
  sigemptyset(&dflt);
  const int reset[] = {SIGPIPE, SIGINT,  SIGQUIT, SIGTERM, SIGHUP,
                       SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM};
  for (size_t i = 0; i < sizeof(reset) / sizeof(reset[0]); i++)
    sigaddset(&dflt, reset[i]);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setsigdefault(&at, &dflt);
  posix_spawnattr_setpgroup(&at, 0);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                    POSIX_SPAWN_SETPGROUP);
  char *argv[] = {"sh", "-c", cs->command, NULL};
  char **env = make_env(cs->agent, p);
  pid_t pid;
  int rc = posix_spawn(&pid, "/bin/sh", &fa, &at, argv, env);
  free_env(env);
  posix_spawnattr_destroy(&at);
  posix_spawn_file_actions_destroy(&fa);
  close(pfd[0]);
  if (rc != 0) {
    close(pfd[1]);
    return hd_errorf(err, errlen, -rc,
                     "command sink: partition %" PRIu32
                     ": cannot start /bin/sh -c '%s': %s",
                     p, cs->command, hd_strerror(-rc));
  }
  cp->pid = pid;
  cp->started_ms = agent__mono_ms();
  cp->fd = pfd[1];
  hd_log(HD_LL_INFO, "sink", "sink command started",
         "partition=%" PRIu32 " pid=%d command=\"%s\"", p, (int)pid,
         cs->command);
  return 0;
}

static cmd_slot_t *slot_of(cmd_sink_t *cs, uint32_t p) {
  pthread_mutex_lock(&cs->lock);
  cmd_slot_t *slot = cs->slots[p];
  if (slot == NULL) {
    slot = cs->slots[p] = hd_calloc(1, sizeof(*slot));
    agent_retry_init(&slot->retry, cs->retry_max_ms, p);
  }
  pthread_mutex_unlock(&cs->lock);
  return slot;
}

static int cmd_open(sink_t *s, uint32_t p, uint64_t epoch, sink_part_t **out,
                    uint64_t *position, char *err, size_t errlen) {
  (void)epoch; /* no position of its own, so nothing to fence */
  cmd_sink_t *cs = (cmd_sink_t *)s;
  (void)position; /* a command keeps no position the agent can read */
  cmd_slot_t *slot = slot_of(cs, p);
  uint64_t now = agent__mono_ms();
  if (slot->not_before_ms > now) {
    hd_log(HD_LL_INFO, "sink", "sink command restart delayed",
           "partition=%" PRIu32 " delay_ms=%" PRIu64, p,
           slot->not_before_ms - now);
    agent__sleep_ms(slot->not_before_ms - now);
  }
  cmd_part_t *cp = hd_calloc(1, sizeof(*cp));
  cp->slot = slot;
  cp->fd = -1;
  int rc = spawn(cs, cp, p, err, errlen);
  if (rc < 0) {
    free(cp);
    slot->not_before_ms = agent__mono_ms() + agent_retry_next(&slot->retry);
    return rc;
  }
  *out = &cp->base;
  return 0;
}

/* The command is gone (reaped): log it, schedule the restart, and fail
 * the call that noticed. */
static int child_gone(cmd_sink_t *cs, cmd_part_t *cp, const char *how,
                      char *err, size_t errlen) {
  char st[96];
  describe_status(cp->status, st, sizeof(st));
  uint64_t now = agent__mono_ms();
  if (now - cp->started_ms >= CMD_HEALTHY_MS)
    agent_retry_reset(&cp->slot->retry);
  uint64_t delay = agent_retry_next(&cp->slot->retry);
  cp->slot->not_before_ms = now + delay;
  cp->reported = 1;
  if (cp->fd >= 0) {
    close(cp->fd);
    cp->fd = -1;
  }
  hd_log(HD_LL_WARN, "sink", "sink command exited",
         "partition=%" PRIu32 " pid=%d status=\"%s\" restart_ms=%" PRIu64
         " command=\"%s\"",
         cp->base.partition, (int)cp->pid, st, delay, cs->command);
  return hd_errorf(err, errlen, HD_ESINK_EXITED,
                   "command sink: partition %" PRIu32 ": command '%s' %s%s; "
                   "it restarts when the partition reopens, in %" PRIu64
                   " ms at the earliest",
                   cp->base.partition, cs->command, how, st, delay);
}

/* No reader left on the pipe: the command is exiting, or closed its
 * stdin and goes on without it, which makes it no sink. */
static int readers_gone(cmd_sink_t *cs, cmd_part_t *cp, char *err,
                        size_t errlen) {
  if (reap(cp, CMD_EPIPE_WAIT_MS))
    return child_gone(cs, cp, "", err, errlen);
  stop_child(cs, cp);
  return child_gone(cs, cp, "closed its stdin and ", err, errlen);
}

static int cmd_write(sink_part_t *part, const sink_window_t *w, char *err,
                     size_t errlen) {
  cmd_sink_t *cs = (cmd_sink_t *)part->sink;
  cmd_part_t *cp = (cmd_part_t *)part;
  if (reap(cp, 0))
    return child_gone(cs, cp, "", err, errlen);
  if (w->json_len == 0)
    return 0;
  int rc = agent__write_all(cp->fd, w->json, w->json_len, NULL);
  if (rc == -EPIPE)
    return readers_gone(cs, cp, err, errlen);
  if (rc < 0)
    return hd_errorf(err, errlen, rc,
                     "command sink: partition %" PRIu32
                     ": write to command '%s': %s",
                     part->partition, cs->command, hd_strerror(rc));
  return 0;
}

static int cmd_flush(sink_part_t *part, char *err, size_t errlen) {
  cmd_sink_t *cs = (cmd_sink_t *)part->sink;
  cmd_part_t *cp = (cmd_part_t *)part;
  uint64_t step = 1;
  for (;;) {
    if (reap(cp, 0))
      return child_gone(cs, cp, "", err, errlen);
    /* POLLERR on a pipe's write end: its last reader closed it. What it
     * left unread would never drain. */
    struct pollfd pfd = {cp->fd, POLLOUT, 0};
    if (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLERR))
      return readers_gone(cs, cp, err, errlen);
    /* FIONREAD on either end of a Linux pipe: the bytes in it, that is
     * written and not read yet. */
    int queued = 0;
    if (ioctl(cp->fd, FIONREAD, &queued) < 0)
      return hd_errorf(err, errlen, -errno,
                       "command sink: partition %" PRIu32
                       ": FIONREAD on the pipe of '%s': %s",
                       part->partition, cs->command, hd_strerror(-errno));
    if (queued == 0)
      return 0;
    agent__sleep_ms(step);
    step = step < 32 ? step * 2 : step;
  }
}

static int cmd_close(sink_part_t *part, char *err, size_t errlen) {
  cmd_sink_t *cs = (cmd_sink_t *)part->sink;
  cmd_part_t *cp = (cmd_part_t *)part;
  int rc = 0;
  if (cp->fd >= 0) {
    close(cp->fd); /* EOF: the command's cue to finish */
    cp->fd = -1;
  }
  if (!reap(cp, (int64_t)cs->stop_timeout_ms)) {
    hd_log(HD_LL_WARN, "sink", "sink command did not exit",
           "partition=%" PRIu32 " pid=%d timeout_ms=%" PRIu64, part->partition,
           (int)cp->pid, cs->stop_timeout_ms);
    stop_child(cs, cp);
  }
  if (!cp->reported) {
    char st[96];
    describe_status(cp->status, st, sizeof(st));
    int clean = cp->status != -1 && WIFEXITED(cp->status) &&
                WEXITSTATUS(cp->status) == 0;
    hd_log(clean ? HD_LL_INFO : HD_LL_WARN, "sink", "sink command exited",
           "partition=%" PRIu32 " pid=%d status=\"%s\" command=\"%s\"",
           part->partition, (int)cp->pid, st, cs->command);
    if (!clean && cp->status != -1)
      rc = hd_errorf(err, errlen, HD_ESINK_EXITED,
                     "command sink: partition %" PRIu32
                     ": command '%s' %s at close",
                     part->partition, cs->command, st);
  }
  free(cp);
  return rc;
}

static void cmd_destroy(sink_t *s) {
  cmd_sink_t *cs = (cmd_sink_t *)s;
  for (uint32_t p = 0; p < s->partitions; p++)
    free(cs->slots[p]);
  free(cs->slots);
  pthread_mutex_destroy(&cs->lock);
  free(cs->command);
  free(cs->agent);
  free(cs);
}

const sink_ops_t sink__command_ops = {
    .name = "command",
    .create = cmd_create,
    .open_partition = cmd_open,
    .write = cmd_write,
    .flush = cmd_flush,
    .close_partition = cmd_close,
    .destroy = cmd_destroy,
};
