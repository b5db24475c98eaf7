/* dk_cli: the option values every dlgkit tool shares (DESIGN.md section 3), parsed
 * one way so that "-j", "--shard I/N", "--shard-by" and "--on-error" accept and refuse
 * the same strings in every tool. The messages stay in the tools (they name the tool).
 * Pure functions of their arguments; nothing is allocated.
 */
#ifndef DK_CLI_H
#define DK_CLI_H

typedef enum {
    DK_ON_ERROR_SKIP,   /* a bad line is dropped (and counted) */
    DK_ON_ERROR_KEEP,   /* written unchanged */
    DK_ON_ERROR_FAIL,   /* the run stops at it */
} dk_on_error;

/* Each returns 0 and fills the value, or -1 when s is not a valid value. */
int dk_cli_parse_jobs(const char *s, int *jobs);                 /* 1..1024 */
int dk_cli_parse_shard(const char *s, long *i, long *n);         /* "I/N", 0 <= I < N */
int dk_cli_parse_shard_by(const char *s, int *by_id);            /* "line" | "id" */
int dk_cli_parse_on_error(const char *s, dk_on_error *policy);   /* skip | keep | fail */

#endif
