/* dk_error: status strings and the error-record helpers (see dk_error.h). */
#include "dk_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *dk_strerror(int code)
{
    switch (code) {
    case DK_OK:           return "success";
    case DK_ENOMEM:       return "out of memory";
    case DK_EIO:          return "input/output error";
    case DK_EPARSE:       return "parse error";
    case DK_EINVAL:       return "invalid argument";
    case DK_EUTF8:        return "invalid utf-8";
    case DK_EUNSUPPORTED: return "unsupported feature";
    case DK_ERANGE:       return "value out of range";
    case DK_ENOTFOUND:    return "not found";
    case DK_ELIMIT:       return "limit exceeded";
    case DK_ESCHEMA:      return "schema violation";
    case DK_EICU:         return "icu error";
    default:              return "unknown error";
    }
}

int dk_error_set(dk_error *err, int code, const char *file, long line, const char *fmt, ...)
{
    if (!err)
        return code;
    err->code = code;
    snprintf(err->file, sizeof err->file, "%s", file ? file : "");
    err->line = line;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

void dk_error_clear(dk_error *err)
{
    if (err)
        memset(err, 0, sizeof *err);
}
