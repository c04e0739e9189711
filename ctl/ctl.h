/*
 * ctl.h - heraldctl subcommands. Each takes the argv that follows the
 * subcommand name (argv[0] is the subcommand) and returns the exit status:
 * 0 ok, 1 failure, 2 bad usage or invalid input.
 */
#ifndef CTL_H
#define CTL_H

typedef struct {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} ctl_cmd_t;

int ctl_validate_config(int argc, char **argv);
int ctl_config_doc(int argc, char **argv);
int ctl_decode(int argc, char **argv);
int ctl_tail(int argc, char **argv);
int ctl_status(int argc, char **argv);
int ctl_lag(int argc, char **argv);
int ctl_checkpoint(int argc, char **argv);
int ctl_drain(int argc, char **argv);
int ctl_zk_secure(int argc, char **argv);
int ctl_snapshot(int argc, char **argv);

#endif
