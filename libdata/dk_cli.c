/* dk_cli: shared option values (see dk_cli.h). */
#include "dk_cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int dk_cli_parse_jobs(const char *s, int *jobs)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > 1024)
        return -1;
    *jobs = (int)v;
    return 0;
}

int dk_cli_parse_shard(const char *s, long *i, long *n)
{
    char *end;
    errno = 0;
    *i = strtol(s, &end, 10);
    if (errno || end == s || *end != '/')
        return -1;
    const char *p = end + 1;
    *n = strtol(p, &end, 10);
    if (errno || end == p || *end || *n < 1 || *i < 0 || *i >= *n)
        return -1;
    return 0;
}

int dk_cli_parse_shard_by(const char *s, int *by_id)
{
    if (strcmp(s, "id") == 0)
        *by_id = 1;
    else if (strcmp(s, "line") == 0)
        *by_id = 0;
    else
        return -1;
    return 0;
}

int dk_cli_parse_on_error(const char *s, dk_on_error *policy)
{
    if (strcmp(s, "skip") == 0)
        *policy = DK_ON_ERROR_SKIP;
    else if (strcmp(s, "keep") == 0)
        *policy = DK_ON_ERROR_KEEP;
    else if (strcmp(s, "fail") == 0)
        *policy = DK_ON_ERROR_FAIL;
    else
        return -1;
    return 0;
}
