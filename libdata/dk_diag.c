/* dk_diag: diagnostic lists and their text / JSON Lines forms (see dk_diag.h).
 * Invariant: the text form of one diagnostic is exactly one line, whatever bytes the
 * dialog id or message hold (control characters are written as \xHH there). */
#include "dk_diag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

int dk_diag_add(dk_diag_list *l, dk_severity sev, const char *code, long line,
                const char *dialog_id, int turn, const char *pointer, const char *fmt, ...)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        dk_diag *items = realloc(l->items, cap * sizeof *items);
        if (!items)
            return DK_ENOMEM;
        l->items = items;
        l->cap = cap;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    dk_diag *d = &l->items[l->n];
    d->sev = sev;
    d->code = code;
    d->line = line;
    d->turn = turn;
    d->dialog_id = dup_or_null(dialog_id);
    d->pointer = strdup(pointer ? pointer : "");
    d->message = strdup(msg);
    if ((dialog_id && !d->dialog_id) || !d->pointer || !d->message) {
        free(d->dialog_id);
        free(d->pointer);
        free(d->message);
        return DK_ENOMEM;
    }
    l->n++;
    switch (sev) {
    case DK_SEV_ERROR:   l->n_errors++; break;
    case DK_SEV_WARNING: l->n_warnings++; break;
    case DK_SEV_INFO:    l->n_infos++; break;
    }
    return 0;
}

int dk_diag_list_move(dk_diag_list *dst, dk_diag_list *src)
{
    if (src->n == 0)
        return 0;
    if (dst->n + src->n > dst->cap) {
        size_t cap = dst->cap ? dst->cap : 8;
        while (cap < dst->n + src->n)
            cap *= 2;
        dk_diag *items = realloc(dst->items, cap * sizeof *items);
        if (!items)
            return DK_ENOMEM;
        dst->items = items;
        dst->cap = cap;
    }
    memcpy(dst->items + dst->n, src->items, src->n * sizeof *src->items);
    dst->n += src->n;
    dst->n_errors += src->n_errors;
    dst->n_warnings += src->n_warnings;
    dst->n_infos += src->n_infos;
    src->n = src->n_errors = src->n_warnings = src->n_infos = 0;
    return 0;
}

void dk_diag_list_clear(dk_diag_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].dialog_id);
        free(l->items[i].pointer);
        free(l->items[i].message);
    }
    l->n = l->n_errors = l->n_warnings = l->n_infos = 0;
}

void dk_diag_list_free(dk_diag_list *l)
{
    if (!l)
        return;
    dk_diag_list_clear(l);
    free(l->items);
    l->items = NULL;
    l->cap = 0;
}

const char *dk_severity_name(dk_severity sev)
{
    switch (sev) {
    case DK_SEV_ERROR:   return "error";
    case DK_SEV_WARNING: return "warning";
    default:             return "info";
    }
}

/* A growable string for the formatters; on allocation failure ok drops to 0 and the
 * formatter returns NULL. */
typedef struct { char *s; size_t n, cap; int ok; } sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (!b->ok)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 128;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->ok = 0;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

/* Control characters (and DEL) as \xHH so one diagnostic stays one line. */
static void sb_safe(sbuf *b, const char *s)
{
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f) {
            sb_put(b, run, (size_t)(s - run));
            char esc[5];
            snprintf(esc, sizeof esc, "\\x%02x", c);
            sb_put(b, esc, 4);
            run = s + 1;
        }
    }
    sb_put(b, run, (size_t)(s - run));
}

static char *sb_done(sbuf *b)
{
    if (!b->ok) {
        free(b->s);
        return NULL;
    }
    return b->s;
}

char *dk_diag_format_text(const dk_diag *d, const char *file)
{
    sbuf b = { .ok = 1 };
    char num[64];
    sb_safe(&b, file ? file : "<stdin>");
    if (d->line > 0) {
        snprintf(num, sizeof num, ":%ld", d->line);
        sb_str(&b, num);
    }
    sb_str(&b, ": ");
    sb_str(&b, dk_severity_name(d->sev));
    sb_str(&b, ": [");
    sb_str(&b, d->code);
    sb_str(&b, "] ");
    if (d->dialog_id || (d->pointer && *d->pointer)) {
        if (d->dialog_id)
            sb_safe(&b, d->dialog_id);
        sb_str(&b, ":");
        sb_safe(&b, d->pointer && *d->pointer ? d->pointer : "/");
        sb_str(&b, ": ");
    }
    sb_safe(&b, d->message);
    sb_str(&b, "\n");
    return sb_done(&b);
}

char *dk_diag_format_json(const dk_diag *d, const char *file)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "file", file ? file : "<stdin>");
    if (d->line > 0)
        cJSON_AddNumberToObject(o, "line", (double)d->line);
    else
        cJSON_AddNullToObject(o, "line");
    cJSON_AddStringToObject(o, "severity", dk_severity_name(d->sev));
    cJSON_AddStringToObject(o, "code", d->code);
    if (d->dialog_id)
        cJSON_AddStringToObject(o, "dialog_id", d->dialog_id);
    else
        cJSON_AddNullToObject(o, "dialog_id");
    if (d->turn >= 0)
        cJSON_AddNumberToObject(o, "turn", d->turn);
    else
        cJSON_AddNullToObject(o, "turn");
    cJSON_AddStringToObject(o, "pointer", d->pointer ? d->pointer : "");
    cJSON_AddStringToObject(o, "message", d->message);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *line = realloc(s, n + 2);
    if (!line) {
        free(s);
        return NULL;
    }
    line[n] = '\n';
    line[n + 1] = '\0';
    return line;
}

int dk_json_pointer_append(char *buf, size_t cap, const char *key)
{
    size_t n = strlen(buf);
    if (n + 1 >= cap)
        return DK_ELIMIT;
    buf[n++] = '/';
    for (; *key; key++) {
        const char *esc = *key == '~' ? "~0" : *key == '/' ? "~1" : NULL;
        size_t k = esc ? 2 : 1;
        if (n + k >= cap) {
            buf[n] = '\0';
            return DK_ELIMIT;
        }
        if (esc) {
            buf[n++] = esc[0];
            buf[n++] = esc[1];
        } else {
            buf[n++] = *key;
        }
    }
    buf[n] = '\0';
    return 0;
}
