/*
 * hd_cli.h - the command-line conventions every herald program shares.
 *
 * --help prints usage on stdout and exits 0; --version prints
 * "PROGRAM (herald) VERSION" and exits 0; an unknown option or a missing
 * argument prints one line on stderr and exits 2.
 */
#ifndef HD_CLI_H
#define HD_CLI_H

#define HD_EXIT_OK 0
#define HD_EXIT_FAIL 1
#define HD_EXIT_USAGE 2

/** @brief Print "PROG (herald) VERSION" on stdout. */
void hd_cli_version(const char *prog);

/**
 * @brief Report a getopt_long() failure (return '?' or ':') on one line.
 * @param optstring_c  the value getopt_long returned
 * @returns HD_EXIT_USAGE, for `return hd_cli_bad_option(...)`.
 */
int hd_cli_bad_option(const char *prog, int c, char **argv);

/** @brief Report a usage problem on one line; returns HD_EXIT_USAGE. */
int hd_cli_usage(const char *prog, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif

#ifndef HD_CLI_DAEMON
#define HD_CLI_DAEMON
#include "hd_config.h"

/* What the three long-running programs take on their command line. */
typedef struct {
  const char *config; /* --config FILE (required) */
  int check_config;   /* --check-config: validate and exit */
} hd_daemon_opts_t;

/**
 * @brief Parse the options shared by herald-relay, herald-agent and
 *        herald-coordinator: -c/--config, --check-config, -v/--verbose,
 *        --log-level, -h/--help, -V/--version.
 * @param usage  the --help text
 * @returns -1 to go on, or the exit code to return from main().
 */
int hd_daemon_cli(int argc, char **argv, const char *prog, const char *usage,
                  hd_daemon_opts_t *o);

/**
 * @brief Load the config named by o (after hd_daemon_cli) against schema.
 *        Prints "FILE:LINE:COL: ..." and returns HD_EXIT_USAGE on error;
 *        with --check-config prints "FILE: ok" and returns HD_EXIT_OK;
 *        returns -1 when the program should go on with conf filled.
 *        conf must be freed with hd_config_free() in every case.
 */
int hd_daemon_load(const char *prog, const hd_daemon_opts_t *o,
                   const hd_conf_schema_t *schema, void *conf);
#endif
