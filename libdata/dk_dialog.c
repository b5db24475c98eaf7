/* dk_dialog: parse and check one dialog line (see dk_dialog.h for the contract).
 *
 * The checks run in three layers, each only on what the previous layer accepted:
 *   1. bytes: strict UTF-8, no raw control characters inside strings (cJSON would
 *      accept them, JSON and every other reader do not), one JSON value and nothing
 *      after it, no \u0000 (C strings would silently cut the text), no lone surrogate;
 *   2. tree: no duplicate keys (readers disagree on which value wins), an object;
 *   3. schema rules, then (unless schema-only) the rules a schema cannot say and the
 *      warnings.
 * Layer 1 and 2 failures are terminal (DK_EPARSE, no dialog); layer 3 reports every
 * violation it finds and still returns the dialog.
 */
#include "dk_dialog.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dk_unicode.h"

#define PTR_MAX 256

/* The status of a line that cannot become a dialog: the diagnostic's own failure
 * (out of memory) if any, else DK_EPARSE. */
static int terminal(int add_rc)
{
    return add_rc ? add_rc : DK_EPARSE;
}

const char *dk_role_name(dk_role role)
{
    switch (role) {
    case DK_ROLE_SYSTEM:    return "system";
    case DK_ROLE_USER:      return "user";
    case DK_ROLE_ASSISTANT: return "assistant";
    case DK_ROLE_TOOL:      return "tool";
    default:                return "invalid";
    }
}

/* ---------- layer 1: bytes ---------- */

/* Offset of the first byte < 0x20 at or after from, or n. Eight bytes at a time: the
 * classic "has a byte less than 0x20" test, exact for bytes < 0x80 and never true for
 * bytes >= 0x80 (their high bit is clear in ~w). */
static size_t find_ctrl(const char *s, size_t n, size_t from)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    size_t i = from;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if ((w - ones * 0x20) & ~w & highs)
            break;
    }
    for (; i < n; i++)
        if ((unsigned char)s[i] < 0x20)
            return i;
    return n;
}

/* Whether byte offset pos lies inside a JSON string (scanning from the line start). */
static int inside_string(const char *s, size_t pos)
{
    int in = 0;
    for (size_t i = 0; i < pos; i++) {
        if (in && s[i] == '\\')
            i++;
        else if (s[i] == '"')
            in = !in;
    }
    return in;
}

/* Offset of the first real \u0000 escape (not an escaped backslash followed by
 * "u0000"), or -1. */
static long find_nul_escape(const char *s, size_t n)
{
    const char *p = s, *end = s + n;
    while ((p = memmem(p, (size_t)(end - p), "\\u0000", 6)) != NULL) {
        size_t bs = 0;
        for (const char *q = p; q > s && q[-1] == '\\'; q--)
            bs++;
        if (bs % 2 == 0)
            return (long)(p - s);
        p += 6;
    }
    return -1;
}

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* cJSON reports a failed string at the backslash of the escape it could not decode. */
static int is_surrogate_escape(const char *s, size_t n, size_t pos)
{
    if (pos + 6 > n || s[pos] != '\\' || s[pos + 1] != 'u')
        return 0;
    for (int k = 2; k < 6; k++)
        if (!is_hex(s[pos + k]))
            return 0;
    char c = s[pos + 2], d = s[pos + 3];
    return (c == 'd' || c == 'D') && strchr("89abcdefABCDEF", d) != NULL;
}

/* Depth of [ and { open at pos, outside strings: tells "nested too deep" apart. */
static int depth_at(const char *s, size_t pos)
{
    int depth = 0, in = 0;
    for (size_t i = 0; i < pos; i++) {
        if (in) {
            if (s[i] == '\\')
                i++;
            else if (s[i] == '"')
                in = 0;
        } else if (s[i] == '"') {
            in = 1;
        } else if (s[i] == '[' || s[i] == '{') {
            depth++;
        } else if (s[i] == ']' || s[i] == '}') {
            depth--;
        }
    }
    return depth;
}

/* A short printable view of the text at pos for messages: "'x'" or "end of line". */
static void describe_at(const char *s, size_t n, size_t pos, char *buf, size_t cap)
{
    if (pos >= n) {
        snprintf(buf, cap, "end of line");
        return;
    }
    unsigned char c = (unsigned char)s[pos];
    if (c >= 0x20 && c < 0x7f)
        snprintf(buf, cap, "'%c'", c);
    else
        snprintf(buf, cap, "byte 0x%02x", c);
}

static int check_bytes(const char *s, size_t n, long line, dk_diag_list *diags)
{
    size_t bad;
    if (dk_utf8_validate(s, n, &bad) != 0)
        return terminal(dk_diag_add(diags, DK_SEV_ERROR, "E_UTF8", line, NULL, -1, "",
                           "invalid utf-8 at byte offset %zu", bad));
    for (size_t i = find_ctrl(s, n, 0); i < n; i = find_ctrl(s, n, i + 1)) {
        unsigned char c = (unsigned char)s[i];
        /* Tab and CR are whitespace between tokens, but never raw inside a string. */
        if ((c == '\t' || c == '\r') && !inside_string(s, i))
            continue;
        return terminal(dk_diag_add(diags, DK_SEV_ERROR, "E_JSON", line, NULL, -1, "",
                           "malformed json: raw control character 0x%02x at byte offset %zu "
                           "(inside a string it must be escaped)", c, i));
    }
    long nul = find_nul_escape(s, n);
    if (nul >= 0)
        return terminal(dk_diag_add(diags, DK_SEV_ERROR, "E_NUL", line, NULL, -1, "",
                           "a string holds U+0000 (\\u0000 at byte offset %ld)", nul));
    return 0;
}

static int parse_json(const char *s, size_t n, long line, cJSON **out, dk_diag_list *diags)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(s, n, &end, 0);
    char what[32];
    if (!root) {
        size_t pos = end && end >= s ? (size_t)(end - s) : 0;
        if (is_surrogate_escape(s, n, pos))
            return terminal(dk_diag_add(diags, DK_SEV_ERROR, "E_SURROGATE", line, NULL, -1, "",
                               "lone or reversed surrogate escape \\u%.4s at byte offset %zu "
                               "(not a unicode character)", s + pos + 2, pos));
        if (depth_at(s, pos < n ? pos : n) >= CJSON_NESTING_LIMIT)
            return terminal(dk_diag_add(diags, DK_SEV_ERROR, "E_JSON", line, NULL, -1, "",
                               "malformed json: nested deeper than %d levels at byte offset %zu",
                               CJSON_NESTING_LIMIT, pos));
        describe_at(s, n, pos, what, sizeof what);
        return terminal(dk_diag_add(diags, DK_SEV_ERROR, "E_JSON", line, NULL, -1, "",
                           "malformed json at byte offset %zu (%s)", pos, what));
    }
    size_t pos = (size_t)(end - s);
    while (pos < n && (s[pos] == ' ' || s[pos] == '\t' || s[pos] == '\r'))
        pos++;
    if (pos < n) {
        cJSON_Delete(root);
        describe_at(s, n, pos, what, sizeof what);
        return terminal(dk_diag_add(diags, DK_SEV_ERROR, "E_JSON", line, NULL, -1, "",
                           "malformed json: %s after the value at byte offset %zu "
                           "(one JSON object per line)", what, pos));
    }
    *out = root;
    return 0;
}

/* JSON pointers are built for every field checked, so without printf: it showed in
 * profiles of clean data. Results are cut at cap like snprintf's. */
static void ptr_join(char *buf, size_t cap, const char *base, const char *key)
{
    size_t b = strlen(base), k = strlen(key);
    if (b + 1 + k + 1 > cap) { /* never for the pointers built here; cut, don't overflow */
        if (b >= cap)
            b = cap - 1;
        k = b + 1 < cap ? cap - b - 2 : 0;
    }
    memmove(buf, base, b);
    if (b + 1 < cap) {
        buf[b] = '/';
        memmove(buf + b + 1, key, k);
        buf[b + 1 + k] = '\0';
    } else {
        buf[b] = '\0';
    }
}

static void ptr_index(char *buf, size_t cap, const char *base, long idx)
{
    char num[24];
    int n = 0;
    char tmp[24];
    do {
        tmp[n++] = (char)('0' + idx % 10);
        idx /= 10;
    } while (idx > 0 && n < 20);
    for (int k = 0; k < n; k++)
        num[k] = tmp[n - 1 - k];
    num[n] = '\0';
    ptr_join(buf, cap, base, num);
}

static void ptr_turn(char *buf, size_t cap, long turn, const char *key)
{
    ptr_index(buf, cap, "/turns", turn);
    if (key)
        ptr_join(buf, cap, buf, key);
}

/* ---------- layer 2: tree ---------- */

static int cmp_keys(const void *a, const void *b)
{
    return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

/* Reports the first duplicate key anywhere in the tree; 1 if one was found. */
static int find_duplicate_key(const cJSON *node, char *ptr, long line, dk_diag_list *diags, int *rc)
{
    if (!cJSON_IsObject(node) && !cJSON_IsArray(node))
        return 0;
    size_t len = strlen(ptr), n = 0;
    for (const cJSON *c = node->child; c; c = c->next)
        n++;
    if (cJSON_IsObject(node) && n > 1) {
        const char *dup = NULL;
        if (n <= 16) {
            for (const cJSON *a = node->child; a && !dup; a = a->next)
                for (const cJSON *b = a->next; b; b = b->next)
                    if (strcmp(a->string, b->string) == 0) {
                        dup = a->string;
                        break;
                    }
        } else {
            const cJSON **v = malloc(n * sizeof *v);
            if (!v) {
                *rc = DK_ENOMEM;
                return 1;
            }
            size_t k = 0;
            for (const cJSON *c = node->child; c; c = c->next)
                v[k++] = c;
            qsort(v, n, sizeof *v, cmp_keys);
            for (k = 1; k < n && !dup; k++)
                if (strcmp(v[k - 1]->string, v[k]->string) == 0)
                    dup = v[k]->string;
            free(v);
        }
        if (dup) {
            *rc = terminal(dk_diag_add(diags, DK_SEV_ERROR, "E_DUPLICATE_KEY", line, NULL, -1,
                              ptr, "key \"%s\" appears twice in %s (readers disagree on "
                              "which value wins)", dup, *ptr ? "this object" : "the line"));
            return 1;
        }
    }
    size_t idx = 0;
    for (const cJSON *c = node->child; c; c = c->next, idx++) {
        if (!cJSON_IsObject(c) && !cJSON_IsArray(c))
            continue;
        if (cJSON_IsArray(node))
            ptr_index(ptr, PTR_MAX, ptr, (long)idx);
        else if (dk_json_pointer_append(ptr, PTR_MAX, c->string) != 0)
            ptr[len] = '\0'; /* too deep to name: report at the parent */
        if (find_duplicate_key(c, ptr, line, diags, rc))
            return 1;
        ptr[len] = '\0';
    }
    return 0;
}

/* ---------- layer 3: schema and semantics ---------- */

typedef struct checker {
    dk_dialog    *d;
    dk_diag_list *diags;
    unsigned      flags;
    int           errors;
    int           rc;       /* first allocation failure */
} checker;

static const char *type_name(const cJSON *v)
{
    if (cJSON_IsString(v)) return "string";
    if (cJSON_IsNumber(v)) return "number";
    if (cJSON_IsBool(v))   return "boolean";
    if (cJSON_IsNull(v))   return "null";
    if (cJSON_IsArray(v))  return "array";
    return "object";
}

/* Copies s (at most max bytes, cut on a UTF-8 boundary, "..." appended) for messages. */
static const char *clip(const char *s, char *buf, size_t cap)
{
    size_t n = strlen(s);
    if (n < cap) {
        memcpy(buf, s, n + 1);
        return buf;
    }
    size_t k = cap - 4;
    while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
        k--;
    memcpy(buf, s, k);
    memcpy(buf + k, "...", 4);
    return buf;
}

static void report(checker *c, dk_severity sev, const char *code, int turn, const char *ptr,
                   const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void report(checker *c, dk_severity sev, const char *code, int turn, const char *ptr,
                   const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (sev == DK_SEV_ERROR)
        c->errors++;
    int rc = dk_diag_add(c->diags, sev, code, c->d->line, c->d->id, turn, ptr, "%s", msg);
    if (rc && !c->rc)
        c->rc = rc;
}

static int is_nonempty_string(const cJSON *v)
{
    return cJSON_IsString(v) && v->valuestring[0] != '\0';
}

/* JSON Schema "integer": any number with a zero fractional part. */
static int is_nonneg_integer(const cJSON *v)
{
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble >= 0 &&
           floor(v->valuedouble) == v->valuedouble;
}

/* intent / action: a non-empty string or an array of them; fills the list view. */
static void check_labels(checker *c, const cJSON *v, const char *name, const char *code,
                         int turn, const char *tptr, const char ***out, size_t *n_out)
{
    char ptr[PTR_MAX];
    ptr_join(ptr, sizeof ptr, tptr, name);
    if (cJSON_IsString(v)) {
        if (!v->valuestring[0]) {
            report(c, DK_SEV_ERROR, code, turn, ptr, "%s must not be an empty string", name);
            return;
        }
        if ((*out = malloc(sizeof **out)) == NULL) {
            c->rc = DK_ENOMEM;
            return;
        }
        (*out)[0] = v->valuestring;
        *n_out = 1;
        return;
    }
    if (!cJSON_IsArray(v)) {
        report(c, DK_SEV_ERROR, code, turn, ptr,
               "%s must be a string or an array of strings (got %s)", name, type_name(v));
        return;
    }
    int n = cJSON_GetArraySize(v), i = 0, bad = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, v) {
        if (!is_nonempty_string(it)) {
            char iptr[PTR_MAX];
            ptr_index(iptr, sizeof iptr, ptr, i);
            report(c, DK_SEV_ERROR, code, turn, iptr, "%s items must be non-empty strings (got %s)",
                   name, cJSON_IsString(it) ? "an empty string" : type_name(it));
            bad = 1;
        }
        i++;
    }
    if (bad || n == 0)
        return;
    if ((*out = malloc((size_t)n * sizeof **out)) == NULL) {
        c->rc = DK_ENOMEM;
        return;
    }
    i = 0;
    cJSON_ArrayForEach(it, v)
        (*out)[i++] = it->valuestring;
    *n_out = (size_t)n;
}

static void check_entities(checker *c, dk_turn *t, const cJSON *v, int turn, const char *tptr)
{
    char ptr[PTR_MAX];
    ptr_join(ptr, sizeof ptr, tptr, "entities");
    if (!cJSON_IsArray(v)) {
        report(c, DK_SEV_ERROR, "E_ENTITIES", turn, ptr, "entities must be an array (got %s)",
               type_name(v));
        return;
    }
    int n = cJSON_GetArraySize(v);
    if (n == 0)
        return;
    if ((t->entities = calloc((size_t)n, sizeof *t->entities)) == NULL) {
        c->rc = DK_ENOMEM;
        return;
    }
    int i = -1;
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        char eptr[PTR_MAX];
        i++;
        ptr_index(eptr, sizeof eptr, ptr, i);
        if (cJSON_IsString(e)) {
            if (!e->valuestring[0]) {
                report(c, DK_SEV_ERROR, "E_ENTITY", turn, eptr, "an entity must not be an empty string");
                continue;
            }
            t->entities[t->n_entities++] = (dk_entity){ e->valuestring, NULL, -1, -1, i };
            continue;
        }
        if (!cJSON_IsObject(e)) {
            report(c, DK_SEV_ERROR, "E_ENTITY", turn, eptr,
                   "an entity must be a string or an object with \"text\" (got %s)", type_name(e));
            continue;
        }
        int ok = 1;
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(e, "text");
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(e, "type");
        const cJSON *start = cJSON_GetObjectItemCaseSensitive(e, "start");
        const cJSON *end = cJSON_GetObjectItemCaseSensitive(e, "end");
        char fptr[PTR_MAX];
        if (!text) {
            report(c, DK_SEV_ERROR, "E_ENTITY", turn, eptr, "entity \"text\" is missing");
            ok = 0;
        } else if (!is_nonempty_string(text)) {
            ptr_join(fptr, sizeof fptr, eptr, "text");
            report(c, DK_SEV_ERROR, "E_ENTITY", turn, fptr, "entity text must be a non-empty string (got %s)",
                   cJSON_IsString(text) ? "an empty string" : type_name(text));
            ok = 0;
        }
        if (type && !cJSON_IsString(type)) {
            ptr_join(fptr, sizeof fptr, eptr, "type");
            report(c, DK_SEV_ERROR, "E_ENTITY", turn, fptr, "entity type must be a string (got %s)",
                   type_name(type));
            ok = 0;
        }
        static const char *const names[2] = { "start", "end" };
        const cJSON *offs[2] = { start, end };
        for (int k = 0; k < 2; k++) {
            if (offs[k] && !is_nonneg_integer(offs[k])) {
                ptr_join(fptr, sizeof fptr, eptr, names[k]);
                report(c, DK_SEV_ERROR, "E_ENTITY", turn, fptr,
                       "entity %s must be an integer >= 0 (got %s)", names[k],
                       cJSON_IsNumber(offs[k]) ? "a negative or fractional number" : type_name(offs[k]));
                ok = 0;
            }
        }
        if (!start != !end) {
            report(c, DK_SEV_ERROR, "E_ENTITY", turn, eptr,
                   "entity has \"%s\" without \"%s\" (give both offsets or neither)",
                   start ? "start" : "end", start ? "end" : "start");
            ok = 0;
        }
        if (!ok)
            continue;
        t->entities[t->n_entities++] = (dk_entity){
            text->valuestring, type ? type->valuestring : NULL,
            start ? (long)start->valuedouble : -1, end ? (long)end->valuedouble : -1, i };
    }
}

static dk_role role_of(const char *s)
{
    if (strcmp(s, "user") == 0)      return DK_ROLE_USER;
    if (strcmp(s, "assistant") == 0) return DK_ROLE_ASSISTANT;
    if (strcmp(s, "system") == 0)    return DK_ROLE_SYSTEM;
    if (strcmp(s, "tool") == 0)      return DK_ROLE_TOOL;
    return DK_ROLE_INVALID;
}

static void check_turn(checker *c, int i, const cJSON *tj)
{
    dk_turn *t = &c->d->turns[i];
    char tptr[PTR_MAX], ptr[PTR_MAX], clipbuf[64];
    ptr_turn(tptr, sizeof tptr, i, NULL);
    t->role = DK_ROLE_INVALID;
    t->train = -1;
    t->json = tj;
    if (!cJSON_IsObject(tj)) {
        report(c, DK_SEV_ERROR, "E_TURN", i, tptr, "a turn must be an object (got %s)", type_name(tj));
        return;
    }
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(tj, "role");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(tj, "content");
    const cJSON *reasoning = cJSON_GetObjectItemCaseSensitive(tj, "reasoning_content");
    const cJSON *tool_calls = cJSON_GetObjectItemCaseSensitive(tj, "tool_calls");
    const cJSON *entities = cJSON_GetObjectItemCaseSensitive(tj, "entities");
    const cJSON *intent = cJSON_GetObjectItemCaseSensitive(tj, "intent");
    const cJSON *action = cJSON_GetObjectItemCaseSensitive(tj, "action");
    const cJSON *train = cJSON_GetObjectItemCaseSensitive(tj, "train");

    ptr_join(ptr, sizeof ptr, tptr, "role");
    if (!role)
        report(c, DK_SEV_ERROR, "E_ROLE", i, tptr, "role is missing");
    else if (!cJSON_IsString(role))
        report(c, DK_SEV_ERROR, "E_ROLE", i, ptr, "role must be a string (got %s)", type_name(role));
    else if ((t->role = role_of(role->valuestring)) == DK_ROLE_INVALID)
        report(c, DK_SEV_ERROR, "E_ROLE", i, ptr,
               "role must be one of system, user, assistant, tool (got \"%s\")",
               clip(role->valuestring, clipbuf, sizeof clipbuf));
    else if (t->role == DK_ROLE_SYSTEM && i > 0)
        report(c, DK_SEV_ERROR, "E_SYSTEM_POSITION", i, ptr,
               "a system turn may only be the first turn");

    int is_assistant = t->role == DK_ROLE_ASSISTANT;
    ptr_join(ptr, sizeof ptr, tptr, "tool_calls");
    if (tool_calls) {
        int ok = cJSON_IsArray(tool_calls);
        const cJSON *it;
        if (ok)
            cJSON_ArrayForEach(it, tool_calls)
                ok &= cJSON_IsObject(it);
        if (!ok)
            report(c, DK_SEV_ERROR, "E_TOOL_CALLS", i, ptr, "tool_calls must be an array of objects");
        else if (t->role != DK_ROLE_INVALID && !is_assistant)
            report(c, DK_SEV_ERROR, "E_TOOL_CALLS", i, ptr, "tool_calls only belong on assistant turns");
        else
            t->has_tool_calls = cJSON_GetArraySize(tool_calls) > 0;
    }

    ptr_join(ptr, sizeof ptr, tptr, "content");
    if (!content)
        report(c, DK_SEV_ERROR, "E_CONTENT", i, tptr, "content is missing");
    else if (cJSON_IsNull(content)) {
        if (!(is_assistant && cJSON_IsArray(tool_calls) && cJSON_GetArraySize(tool_calls) > 0))
            report(c, DK_SEV_ERROR, "E_CONTENT", i, ptr,
                   "content is null (allowed only on an assistant turn with at least one tool call)");
    } else if (!cJSON_IsString(content))
        report(c, DK_SEV_ERROR, "E_CONTENT", i, ptr, "content must be a string (got %s)",
               type_name(content));
    else {
        t->content = content->valuestring;
        t->content_len = strlen(content->valuestring);
    }

    ptr_join(ptr, sizeof ptr, tptr, "reasoning_content");
    if (reasoning && !cJSON_IsString(reasoning))
        report(c, DK_SEV_ERROR, "E_REASONING", i, ptr, "reasoning_content must be a string (got %s)",
               type_name(reasoning));
    else if (reasoning && t->role != DK_ROLE_INVALID && !is_assistant)
        report(c, DK_SEV_ERROR, "E_REASONING", i, ptr,
               "reasoning_content only belongs on assistant turns");

    if (entities)
        check_entities(c, t, entities, i, tptr);
    if (intent)
        check_labels(c, intent, "intent", "E_INTENT", i, tptr, &t->intents, &t->n_intents);
    if (action)
        check_labels(c, action, "action", "E_ACTION", i, tptr, &t->actions, &t->n_actions);
    if (train) {
        ptr_join(ptr, sizeof ptr, tptr, "train");
        if (!cJSON_IsBool(train))
            report(c, DK_SEV_ERROR, "E_TRAIN", i, ptr, "train must be true or false (got %s)",
                   type_name(train));
        else
            t->train = cJSON_IsTrue(train);
    }
}

/* Entity text found in the content after NFKC + case folding, and offsets pointing at
 * exactly the entity's text. folded is the turn's folded content, made on first use. */
static void check_entity_text(checker *c, int i, size_t k, char **folded, size_t *folded_len)
{
    dk_turn *t = &c->d->turns[i];
    const dk_entity *e = &t->entities[k];
    char ptr[PTR_MAX], buf1[96], buf2[96];
    ptr_turn(ptr, sizeof ptr, i, "entities");
    ptr_index(ptr, sizeof ptr, ptr, e->index);

    if (e->start >= 0) {
        size_t ncp = dk_utf8_cp_count(t->content, t->content_len);
        if (e->start > e->end) {
            report(c, DK_SEV_ERROR, "E_ENTITY_OFFSET", i, ptr, "start %ld is after end %ld",
                   e->start, e->end);
            return;
        }
        if ((size_t)e->end > ncp) {
            report(c, DK_SEV_ERROR, "E_ENTITY_OFFSET", i, ptr,
                   "end %ld is beyond the content's %zu code points", e->end, ncp);
            return;
        }
    }
    if (!*folded) {
        if (dk_utf8_fold(t->content, t->content_len, folded, folded_len, NULL) != 0) {
            c->rc = DK_ENOMEM;
            return;
        }
    }
    char *fe = NULL;
    size_t fe_len = 0;
    if (dk_utf8_fold(e->text, strlen(e->text), &fe, &fe_len, NULL) != 0) {
        c->rc = DK_ENOMEM;
        return;
    }
    int found = fe_len > 0 && memmem(*folded, *folded_len, fe, fe_len) != NULL;
    free(fe);
    if (!found) {
        report(c, DK_SEV_ERROR, "E_ENTITY_NOT_IN_TEXT", i, ptr,
               "entity \"%s\" does not occur in the turn's content", clip(e->text, buf1, 64));
        return;
    }
    if (e->start >= 0) {
        size_t b0 = 0, b1 = 0;
        dk_utf8_cp_to_byte(t->content, t->content_len, (size_t)e->start, &b0);
        dk_utf8_cp_to_byte(t->content, t->content_len, (size_t)e->end, &b1);
        size_t n = strlen(e->text);
        if (b1 - b0 != n || memcmp(t->content + b0, e->text, n) != 0) {
            char *span = strndup(t->content + b0, b1 - b0);
            if (!span) {
                c->rc = DK_ENOMEM;
                return;
            }
            report(c, DK_SEV_ERROR, "E_ENTITY_OFFSET", i, ptr,
                   "offsets [%ld,%ld) hold \"%s\", not the entity text \"%s\"", e->start, e->end,
                   clip(span, buf1, 64), clip(e->text, buf2, 64));
            free(span);
        }
    }
}

static int has_label(const cJSON *tj, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(tj, name) != NULL;
}

static void check_semantics(checker *c)
{
    dk_dialog *d = c->d;
    for (size_t i = 0; i < d->n_turns && !c->rc; i++) {
        dk_turn *t = &d->turns[i];
        const dk_turn *prev = i > 0 ? &d->turns[i - 1] : NULL;
        char ptr[PTR_MAX];
        if (!cJSON_IsObject(t->json))
            continue;
        ptr_turn(ptr, sizeof ptr, (long)i, "role");
        if (t->role == DK_ROLE_TOOL &&
            !(prev && ((prev->role == DK_ROLE_ASSISTANT && prev->has_tool_calls) ||
                       prev->role == DK_ROLE_TOOL)))
            report(c, DK_SEV_ERROR, "E_TOOL_POSITION", (int)i, ptr,
                   "a tool turn must follow an assistant turn with tool_calls (or another tool turn)");

        if (t->content) {
            char *folded = NULL;
            size_t folded_len = 0;
            for (size_t k = 0; k < t->n_entities && !c->rc; k++)
                check_entity_text(c, (int)i, k, &folded, &folded_len);
            free(folded);
        } else {
            for (size_t k = 0; k < t->n_entities; k++) {
                char buf[96];
                ptr_turn(ptr, sizeof ptr, (long)i, "entities");
                ptr_index(ptr, sizeof ptr, ptr, t->entities[k].index);
                report(c, DK_SEV_ERROR, "E_ENTITY_NOT_IN_TEXT", (int)i, ptr,
                       "entity \"%s\" on a turn without content", clip(t->entities[k].text, buf, 64));
            }
        }

        ptr_turn(ptr, sizeof ptr, (long)i, "content");
        if (t->content && !t->content[0] && !t->has_tool_calls)
            report(c, DK_SEV_WARNING, "W_EMPTY_CONTENT", (int)i, ptr, "content is empty");
        if (prev && t->role == prev->role && t->content && prev->content && t->content[0] &&
            strcmp(t->content, prev->content) == 0)
            report(c, DK_SEV_WARNING, "W_REPEATED_TURN", (int)i, ptr,
                   "turn repeats the previous turn (same role and content)");
        else if (prev && t->role == prev->role &&
                 (t->role == DK_ROLE_USER || t->role == DK_ROLE_ASSISTANT)) {
            ptr_turn(ptr, sizeof ptr, (long)i, "role");
            report(c, DK_SEV_WARNING, "W_SAME_ROLE", (int)i, ptr,
                   "two %s turns in a row", dk_role_name(t->role));
        }
        if (has_label(t->json, "intent") && t->role != DK_ROLE_USER && t->role != DK_ROLE_INVALID) {
            ptr_turn(ptr, sizeof ptr, (long)i, "intent");
            report(c, DK_SEV_WARNING, "W_INTENT_ROLE", (int)i, ptr,
                   "intent on %s %s turn (intents label user turns)",
                   t->role == DK_ROLE_ASSISTANT ? "an" : "a", dk_role_name(t->role));
        }
        if (has_label(t->json, "action") && t->role != DK_ROLE_ASSISTANT && t->role != DK_ROLE_INVALID) {
            ptr_turn(ptr, sizeof ptr, (long)i, "action");
            report(c, DK_SEV_WARNING, "W_ACTION_ROLE", (int)i, ptr,
                   "action on %s %s turn (actions label assistant turns)",
                   t->role == DK_ROLE_ASSISTANT ? "an" : "a", dk_role_name(t->role));
        }
    }
}

static void check_dialog(checker *c)
{
    dk_dialog *d = c->d;
    const cJSON *root = d->json;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "dialog_id");
    const cJSON *turns = cJSON_GetObjectItemCaseSensitive(root, "turns");
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(root, "tools");
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "meta");

    if (is_nonempty_string(id))
        d->id = id->valuestring;
    else if (!id)
        report(c, DK_SEV_ERROR, "E_DIALOG_ID", -1, "", "dialog_id is missing");
    else
        report(c, DK_SEV_ERROR, "E_DIALOG_ID", -1, "/dialog_id", "dialog_id must be a non-empty string (got %s)",
               cJSON_IsString(id) ? "an empty string" : type_name(id));

    if (tools) {
        int ok = cJSON_IsArray(tools), i = 0;
        const cJSON *it;
        if (!ok)
            report(c, DK_SEV_ERROR, "E_TOOLS", -1, "/tools", "tools must be an array of objects (got %s)",
                   type_name(tools));
        else
            cJSON_ArrayForEach(it, tools) {
                if (!cJSON_IsObject(it)) {
                    char ptr[PTR_MAX];
                    ptr_index(ptr, sizeof ptr, "/tools", i);
                    report(c, DK_SEV_ERROR, "E_TOOLS", -1, ptr, "a tool definition must be an object (got %s)",
                           type_name(it));
                }
                i++;
            }
    }
    if (meta && !cJSON_IsObject(meta))
        report(c, DK_SEV_ERROR, "E_META", -1, "/meta", "meta must be an object (got %s)", type_name(meta));

    if (!turns) {
        report(c, DK_SEV_ERROR, "E_TURNS", -1, "", "turns is missing");
        return;
    }
    if (!cJSON_IsArray(turns)) {
        report(c, DK_SEV_ERROR, "E_TURNS", -1, "/turns", "turns must be an array (got %s)", type_name(turns));
        return;
    }
    int n = cJSON_GetArraySize(turns);
    if (n == 0) {
        report(c, DK_SEV_ERROR, "E_TURNS", -1, "/turns", "turns must hold at least one turn");
        return;
    }
    if ((d->turns = calloc((size_t)n, sizeof *d->turns)) == NULL) {
        c->rc = DK_ENOMEM;
        return;
    }
    d->n_turns = (size_t)n;
    int i = 0;
    const cJSON *tj;
    cJSON_ArrayForEach(tj, turns)
        check_turn(c, i++, tj);
    if (!(c->flags & DK_DIALOG_SCHEMA_ONLY))
        check_semantics(c);
}

int dk_dialog_parse(const char *text, size_t len, long line, unsigned flags,
                    dk_dialog **out, dk_diag_list *diags)
{
    *out = NULL;
    int rc = check_bytes(text, len, line, diags);
    if (rc)
        return rc;
    cJSON *root = NULL;
    if ((rc = parse_json(text, len, line, &root, diags)) != 0)
        return rc;
    char ptr[PTR_MAX] = "";
    if (find_duplicate_key(root, ptr, line, diags, &rc)) {
        cJSON_Delete(root);
        return rc;
    }
    if (!cJSON_IsObject(root)) {
        rc = terminal(dk_diag_add(diags, DK_SEV_ERROR, "E_NOT_OBJECT", line, NULL, -1, "",
                         "a dialog line must be a JSON object (got %s)", type_name(root)));
        cJSON_Delete(root);
        return rc;
    }
    dk_dialog *d = calloc(1, sizeof *d);
    if (!d) {
        cJSON_Delete(root);
        return DK_ENOMEM;
    }
    d->json = root;
    d->line = line;
    checker c = { .d = d, .diags = diags, .flags = flags };
    check_dialog(&c);
    if (c.rc) {
        dk_dialog_free(d);
        return c.rc;
    }
    *out = d;
    return c.errors ? DK_ESCHEMA : 0;
}

void dk_dialog_free(dk_dialog *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n_turns; i++) {
        free(d->turns[i].entities);
        free(d->turns[i].intents);
        free(d->turns[i].actions);
    }
    free(d->turns);
    cJSON_Delete(d->json);
    free(d);
}

char *dk_dialog_serialize(const dk_dialog *d)
{
    return cJSON_PrintUnformatted(d->json);
}

char *dk_json_set_member(const char *text, size_t len, const char *key,
                         const char *value_json, size_t *out_len)
{
    cJSON *key_json = cJSON_CreateString(key);
    char *key_text = key_json ? cJSON_PrintUnformatted(key_json) : NULL;
    cJSON_Delete(key_json);
    char *res = NULL;
    if (!key_text)
        return NULL;

    /* Only a line that already has the key pays for a parse and re-serialization. */
    size_t kl = strlen(key_text);
    if (memmem(text, len, key_text, kl)) {
        cJSON *root = cJSON_ParseWithLength(text, len);
        cJSON *val = cJSON_Parse(value_json);
        if (cJSON_IsObject(root) && val && cJSON_GetObjectItemCaseSensitive(root, key)) {
            cJSON_ReplaceItemInObjectCaseSensitive(root, key, val);
            val = NULL;
            res = cJSON_PrintUnformatted(root);
            if (res && out_len)
                *out_len = strlen(res);
            cJSON_Delete(root);
            goto out;
        }
        cJSON_Delete(root);
        cJSON_Delete(val);
    }

    size_t end = len;
    while (end > 0 && (text[end - 1] == ' ' || text[end - 1] == '\t' || text[end - 1] == '\r'))
        end--;
    if (end == 0 || text[end - 1] != '}')
        goto out;
    size_t close = end - 1, j = close;
    while (j > 0 && (text[j - 1] == ' ' || text[j - 1] == '\t' || text[j - 1] == '\r'))
        j--;
    int empty = j > 0 && text[j - 1] == '{';
    size_t vl = strlen(value_json);
    size_t n = close + (empty ? 0 : 1) + kl + 1 + vl + 1;
    if ((res = malloc(n + 1)) == NULL)
        goto out;
    size_t o = 0;
    memcpy(res, text, close);
    o = close;
    if (!empty)
        res[o++] = ',';
    memcpy(res + o, key_text, kl);
    o += kl;
    res[o++] = ':';
    memcpy(res + o, value_json, vl);
    o += vl;
    res[o++] = '}';
    res[o] = '\0';
    if (out_len)
        *out_len = o;
out:
    free(key_text);
    return res;
}

/* ---------- id set: open addressing over FNV-1a hashes ---------- */

struct dk_dialog_idset {
    char   **ids;
    long    *lines;
    uint64_t *hashes;
    size_t   n, cap;   /* cap is a power of two */
};

uint64_t dk_dialog_id_hash(const char *id)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ULL;
    }
    return h;
}

dk_dialog_idset *dk_dialog_idset_new(void)
{
    return calloc(1, sizeof(dk_dialog_idset));
}

static int idset_grow(dk_dialog_idset *s)
{
    size_t cap = s->cap ? s->cap * 2 : 1024;
    char **ids = calloc(cap, sizeof *ids);
    long *lines = calloc(cap, sizeof *lines);
    uint64_t *hashes = calloc(cap, sizeof *hashes);
    if (!ids || !lines || !hashes) {
        free(ids);
        free(lines);
        free(hashes);
        return DK_ENOMEM;
    }
    for (size_t i = 0; i < s->cap; i++) {
        if (!s->ids[i])
            continue;
        size_t j = s->hashes[i] & (cap - 1);
        while (ids[j])
            j = (j + 1) & (cap - 1);
        ids[j] = s->ids[i];
        lines[j] = s->lines[i];
        hashes[j] = s->hashes[i];
    }
    free(s->ids);
    free(s->lines);
    free(s->hashes);
    s->ids = ids;
    s->lines = lines;
    s->hashes = hashes;
    s->cap = cap;
    return 0;
}

int dk_dialog_idset_add(dk_dialog_idset *s, const char *id, long line, long *first_line)
{
    if ((s->n + 1) * 2 > s->cap && idset_grow(s) != 0)
        return DK_ENOMEM;
    uint64_t h = dk_dialog_id_hash(id);
    size_t j = h & (s->cap - 1);
    for (; s->ids[j]; j = (j + 1) & (s->cap - 1)) {
        if (s->hashes[j] == h && strcmp(s->ids[j], id) == 0) {
            if (first_line)
                *first_line = s->lines[j];
            return 0;
        }
    }
    if ((s->ids[j] = strdup(id)) == NULL)
        return DK_ENOMEM;
    s->lines[j] = line;
    s->hashes[j] = h;
    s->n++;
    return 1;
}

void dk_dialog_idset_free(dk_dialog_idset *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->cap; i++)
        free(s->ids[i]);
    free(s->ids);
    free(s->lines);
    free(s->hashes);
    free(s);
}
