/* dk_expand: dialogs into training samples; see dk_expand.h for the rules and why the
 * token counts and labels are exact. This file: selecting turns (truncation), rendering,
 * locating trained spans, tokenizing through the per-dialog piece cache, writing lines.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dk_expand.h"

struct dk_expander {
    const dk_tokenizer     *tok;
    const dk_chat_template *ct;
    dk_expand_opts          o;
    const char             *eot;     /* the end-of-turn token's text (borrowed from ct) */
    size_t                  eot_len;
};

/* ---------- growing buffers ---------- */

typedef struct buf { char *s; size_t n, cap; int oom; } buf;

static void put(buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *x = realloc(b->s, cap);
        if (!x) {
            b->oom = 1;
            return;
        }
        b->s = x;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

static void puts_(buf *b, const char *s) { put(b, s, strlen(s)); }

static void put_long(buf *b, long v)
{
    char num[24], *e = num + sizeof num, *p = e;
    unsigned long u = v < 0 ? 0UL - (unsigned long)v : (unsigned long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    put(b, p, (size_t)(e - p));
}

static void put_json_string(buf *b, const char *s, size_t n)
{
    put(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put(b, s + run, i - run);
        run = i + 1;
        char esc[8];
        switch (c) {
        case '"':  put(b, "\\\"", 2); break;
        case '\\': put(b, "\\\\", 2); break;
        case '\n': put(b, "\\n", 2); break;
        case '\r': put(b, "\\r", 2); break;
        case '\t': put(b, "\\t", 2); break;
        default:
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(b, esc, 6);
        }
    }
    put(b, s + run, n - run);
    put(b, "\"", 1);
}

/* ---------- the per-dialog piece cache ---------- */

typedef struct piece {
    uint64_t hash;
    size_t   text_off, text_len, cut;  /* cut: byte offset of the label start, text_len if none */
    size_t   ids_off, n_ids, k;        /* k: ids before the label start */
    int      misaligned;
    int      used;
} piece;

struct dk_expand_ctx {
    const dk_expander *ex;
    dk_tok_scratch    *sc;
    dk_tok_ids         tmp, tmp2;
    piece             *slots;
    size_t             n_slots, n_used;
    buf                texts;        /* the cached pieces' bytes */
    uint32_t          *ids;          /* the cached pieces' ids */
    size_t             ids_n, ids_cap;
    /* the sample being built */
    uint32_t          *sample_ids;
    unsigned char     *sample_lab;
    size_t             sample_n, sample_cap;
    int                misaligned;
    buf                line;
};

static uint64_t fnv(const char *s, size_t n, size_t cut)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)cut;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static void cache_clear(dk_expand_ctx *c)
{
    if (c->n_used)
        memset(c->slots, 0, c->n_slots * sizeof *c->slots);
    c->n_used = 0;
    c->texts.n = 0;
    c->ids_n = 0;
}

static int cache_grow(dk_expand_ctx *c)
{
    size_t n = c->n_slots ? c->n_slots * 2 : 256;
    piece *s = calloc(n, sizeof *s);
    if (!s)
        return DK_ENOMEM;
    for (size_t i = 0; i < c->n_slots; i++) {
        if (!c->slots[i].used)
            continue;
        size_t j = c->slots[i].hash & (n - 1);
        while (s[j].used)
            j = (j + 1) & (n - 1);
        s[j] = c->slots[i];
    }
    free(c->slots);
    c->slots = s;
    c->n_slots = n;
    return 0;
}

static int ids_append(uint32_t **v, size_t *n, size_t *cap, const uint32_t *src, size_t k)
{
    if (*n + k > *cap) {
        size_t nc = *cap ? *cap : 4096;
        while (nc < *n + k)
            nc *= 2;
        uint32_t *x = realloc(*v, nc * sizeof *x);
        if (!x)
            return DK_ENOMEM;
        *v = x;
        *cap = nc;
    }
    memcpy(*v + *n, src, k * sizeof *src);
    *n += k;
    return 0;
}

/* The cached tokenization of s[0..n) with a label start at byte cut (n: none). */
static int piece_get(dk_expand_ctx *c, const char *s, size_t n, size_t cut, const piece **out, dk_error *err)
{
    uint64_t h = fnv(s, n, cut);
    if (c->n_slots) {
        for (size_t j = h & (c->n_slots - 1); c->slots[j].used; j = (j + 1) & (c->n_slots - 1)) {
            piece *p = &c->slots[j];
            if (p->hash == h && p->text_len == n && p->cut == cut && memcmp(c->texts.s + p->text_off, s, n) == 0) {
                *out = p;
                return 0;
            }
        }
    }
    if ((c->n_used + 1) * 2 > c->n_slots && cache_grow(c) != 0)
        return dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
    const dk_tokenizer *tok = c->ex->tok;
    int rc = dk_tokenizer_encode(tok, c->sc, s, n, 0, &c->tmp, err);
    if (rc)
        return rc;
    piece p = { .hash = h, .text_len = n, .cut = cut, .n_ids = c->tmp.n, .k = c->tmp.n, .used = 1 };
    if (cut < n) {
        /* the ids of the text before the cut, if they begin the piece's ids, end on the cut */
        if ((rc = dk_tokenizer_encode(tok, c->sc, s, cut, 0, &c->tmp2, err)) != 0)
            return rc;
        size_t k = 0;
        while (k < c->tmp2.n && k < c->tmp.n && c->tmp2.ids[k] == c->tmp.ids[k])
            k++;
        p.k = k;
        p.misaligned = k != c->tmp2.n;
    }
    p.text_off = c->texts.n;
    put(&c->texts, s, n);
    p.ids_off = c->ids_n;
    if (c->texts.oom || ids_append(&c->ids, &c->ids_n, &c->ids_cap, c->tmp.ids, c->tmp.n) != 0)
        return dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
    size_t j = h & (c->n_slots - 1);
    while (c->slots[j].used)
        j = (j + 1) & (c->n_slots - 1);
    c->slots[j] = p;
    c->n_used++;
    *out = &c->slots[j];
    return 0;
}

/* ---------- expander and context ---------- */

int dk_expander_new(dk_expander **out, const dk_tokenizer *tok, const dk_chat_template *ct,
                    const dk_expand_opts *opts, dk_error *err)
{
    *out = NULL;
    dk_tok_ids a = { 0 }, b = { 0 };
    char *probe = NULL;
    int rc = 0;
    const char *eot = dk_chat_template_eos(ct);
    if (!dk_chat_template_pick(ct, 0))
        return dk_error_set(err, DK_ENOTFOUND, NULL, 0, "the tokenizer config has no chat template");
    if (!eot || !*eot)
        return dk_error_set(err, DK_EINVAL, NULL, 0,
                            "the tokenizer config has no eos_token: the end of an assistant turn is unknown");
    size_t n = strlen(eot);
    int64_t id = dk_tokenizer_token_to_id(tok, eot, n);
    /* Cutting after the end-of-turn token is exact only if the tokenizer splits it out as
     * an added token: one id, and no effect on the text around it. */
    if ((probe = malloc(n + 8)) == NULL) {
        rc = dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
        goto out;
    }
    memcpy(probe, "a ", 2);
    memcpy(probe + 2, eot, n);
    memcpy(probe + 2 + n, " \nb", 3);
    if ((rc = dk_tokenizer_encode(tok, NULL, probe, n + 5, 0, &a, err)) != 0)
        goto out;
    if ((rc = dk_tokenizer_encode(tok, NULL, "a ", 2, 0, &b, err)) != 0)
        goto out;
    size_t nb = b.n;
    int ok = id >= 0 && a.n > nb + 1 && memcmp(a.ids, b.ids, nb * sizeof *b.ids) == 0 && a.ids[nb] == (uint32_t)id;
    if (ok) {
        if ((rc = dk_tokenizer_encode(tok, NULL, " \nb", 3, 0, &b, err)) != 0)
            goto out;
        ok = a.n == nb + 1 + b.n && memcmp(a.ids + nb + 1, b.ids, b.n * sizeof *b.ids) == 0;
    }
    if (!ok) {
        rc = dk_error_set(err, DK_EINVAL, NULL, 0,
                          "the end-of-turn token %s is not an added token that the tokenizer splits out", eot);
        goto out;
    }
    dk_expander *ex = calloc(1, sizeof *ex);
    if (!ex) {
        rc = dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
        goto out;
    }
    ex->tok = tok;
    ex->ct = ct;
    ex->o = *opts;
    ex->eot = eot;
    ex->eot_len = n;
    *out = ex;
out:
    free(probe);
    dk_tok_ids_free(&a);
    dk_tok_ids_free(&b);
    return rc;
}

void dk_expander_free(dk_expander *ex)
{
    free(ex);
}

int dk_expand_ctx_new(dk_expand_ctx **out, const dk_expander *ex, dk_error *err)
{
    dk_expand_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
    c->ex = ex;
    int rc = dk_tok_scratch_new(&c->sc, ex->tok, err);
    if (rc) {
        free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void dk_expand_ctx_free(dk_expand_ctx *c)
{
    if (!c)
        return;
    dk_tok_scratch_free(c->sc);
    dk_tok_ids_free(&c->tmp);
    dk_tok_ids_free(&c->tmp2);
    free(c->slots);
    free(c->texts.s);
    free(c->ids);
    free(c->sample_ids);
    free(c->sample_lab);
    free(c->line.s);
    free(c);
}

void dk_expand_result_free(dk_expand_result *r)
{
    free(r->out);
    memset(r, 0, sizeof *r);
}

/* ---------- one sample ---------- */

typedef struct span { size_t start, end; } span;

typedef struct sample {
    size_t *sel;        /* turn indices in the sample */
    size_t  n_sel;
    int    *trained;    /* per position in sel */
    char   *text;       /* rendered, add_generation_prompt off */
    size_t  len;
    span   *spans;      /* per trained position, in order */
    size_t  n_spans;
    size_t  prompt_len; /* --format text: where the completion starts */
    long    n_tokens;
} sample;

static void sample_reset(sample *s)
{
    free(s->text);
    s->text = NULL;
    s->n_spans = 0;
}

/* Renders the turns sel[0..n) of d. */
static int render(const dk_expander *ex, const dk_dialog *d, const size_t *sel, size_t n, int agp,
                  char **out, size_t *len, dk_error *err)
{
    cJSON *obj = cJSON_CreateObject(), *turns = cJSON_CreateArray();
    int rc = DK_ENOMEM;
    if (!obj || !turns) {
        cJSON_Delete(turns);
        goto out;
    }
    cJSON_AddItemToObject(obj, "turns", turns);
    for (size_t i = 0; i < n; i++)
        if (!cJSON_AddItemReferenceToArray(turns, (cJSON *)d->turns[sel[i]].json))
            goto out;
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(d->json, "tools");
    if (tools && !cJSON_AddItemReferenceToObject(obj, "tools", (cJSON *)tools))
        goto out;
    rc = dk_chat_template_render_dialog(ex->ct, obj, agp, ex->o.kwargs, NULL, out, len, err);
out:
    if (rc == DK_ENOMEM)
        dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
    cJSON_Delete(obj);
    return rc;
}

static int has_text(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return v && !cJSON_IsNull(v) && !(cJSON_IsString(v) && !*v->valuestring) &&
           !(cJSON_IsArray(v) && !v->child);
}

static int ends_with(const char *s, size_t n, size_t from, const char *a, size_t na, const char *b, size_t nb)
{
    return n >= from + na + nb && memcmp(s + n - nb, b, nb) == 0 && memcmp(s + n - nb - na, a, na) == 0;
}

/* Finds the span of the trained turn at position pos of s->sel in s->text. Returns 0, 1
 * when the template does not render the turns before it as a prefix (the reason in err),
 * or a negative DK_E.... */
static int locate(const dk_expander *ex, const dk_dialog *d, sample *s, size_t pos, int need_prompt,
                  span *sp, dk_error *err)
{
    char *p = NULL, *g = NULL;
    size_t np = 0, ng = 0;
    int rc = 0;
    const dk_turn *t = &d->turns[s->sel[pos]];
    int plain = t->content && !has_text(t->json, "reasoning_content") && !has_text(t->json, "tool_calls") &&
                !strstr(t->content, "</think>");
    if (pos > 0 && (rc = render(ex, d, s->sel, pos, 0, &p, &np, err)) != 0)
        goto out;
    if (np > s->len || (np && memcmp(p, s->text, np) != 0)) {
        rc = dk_error_set(err, DK_EINVAL, NULL, 0,
                          "the template renders the turns before turn %zu differently once turn %zu follows",
                          s->sel[pos], s->sel[pos]);
        rc = 1;
        goto out;
    }
    size_t base = np;
    if (!plain || need_prompt) {
        if ((rc = render(ex, d, s->sel, pos, 1, &g, &ng, err)) != 0)
            goto out;
        if (ng <= s->len && memcmp(g, s->text, ng) == 0)
            base = ng;
    }
    const char *e = memmem(s->text + base, s->len - base, ex->eot, ex->eot_len);
    if (!e) {
        dk_error_set(err, DK_EINVAL, NULL, 0, "no %s closes assistant turn %zu in the rendered text", ex->eot, s->sel[pos]);
        rc = 1;
        goto out;
    }
    size_t end = (size_t)(e - s->text) + ex->eot_len, start = base;
    if (plain) {
        const char *ct = t->content;
        size_t nc = t->content_len;
        if (ends_with(s->text, end, base, ct, nc, ex->eot, ex->eot_len))
            start = end - nc - ex->eot_len;
        else {
            while (nc && *ct == '\n')
                ct++, nc--;
            if (ends_with(s->text, end, base, ct, nc, ex->eot, ex->eot_len))
                start = end - nc - ex->eot_len;
        }
    }
    sp->start = start;
    sp->end = end;
    if (need_prompt)
        s->prompt_len = base;
out:
    free(p);
    free(g);
    return rc;
}

/* Tokenizes s->text through the piece cache into c->sample_ids/lab; with spans, the
 * tokens inside a span are labelled. */
static int tokenize(dk_expand_ctx *c, sample *s, int with_spans, dk_error *err)
{
    const dk_expander *ex = c->ex;
    c->sample_n = 0;
    c->misaligned = 0;
    size_t a = 0, si = 0;
    while (a < s->len) {
        const char *e = memmem(s->text + a, s->len - a, ex->eot, ex->eot_len);
        size_t b = e ? (size_t)(e - s->text) + ex->eot_len : s->len;
        size_t cut = b - a;
        int in_span = 0;
        if (with_spans && si < s->n_spans && s->spans[si].start < b) {
            /* spans end at an end-of-turn token, so a span lies inside one piece */
            cut = s->spans[si].start > a ? s->spans[si].start - a : 0;
            in_span = 1;
            si++;
        }
        const piece *p = NULL;
        int rc = piece_get(c, s->text + a, b - a, in_span ? cut : b - a, &p, err);
        if (rc)
            return rc;
        if (c->sample_n + p->n_ids > c->sample_cap) {
            size_t nc = c->sample_cap ? c->sample_cap : 4096;
            while (nc < c->sample_n + p->n_ids)
                nc *= 2;
            uint32_t *x = realloc(c->sample_ids, nc * sizeof *x);
            if (x)
                c->sample_ids = x;
            unsigned char *l = realloc(c->sample_lab, nc);
            if (l)
                c->sample_lab = l;
            if (!x || !l)
                return dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
            c->sample_cap = nc;
        }
        memcpy(c->sample_ids + c->sample_n, c->ids + p->ids_off, p->n_ids * sizeof *c->ids);
        memset(c->sample_lab + c->sample_n, 0, p->k);
        memset(c->sample_lab + c->sample_n + p->k, 1, p->n_ids - p->k);
        c->sample_n += p->n_ids;
        c->misaligned |= p->misaligned;
        a = b;
    }
    s->n_tokens = (long)c->sample_n;
    return 0;
}

/* Renders and tokenizes the sample; spans too when the format needs them. Returns 0, 1
 * when the template refuses it, 2 when a trained turn cannot be found in the rendered
 * text (err says why), or a negative DK_E.... */
static int build(dk_expand_ctx *c, const dk_dialog *d, sample *s, dk_error *err)
{
    const dk_expander *ex = c->ex;
    sample_reset(s);
    int rc = render(ex, d, s->sel, s->n_sel, 0, &s->text, &s->len, err);
    if (rc == DK_ENOMEM)
        return rc;
    if (rc)
        return 1;
    int labels = ex->o.format == DK_EXPAND_IDS, text = ex->o.format == DK_EXPAND_TEXT;
    if (labels || text) {
        for (size_t i = 0; i < s->n_sel; i++) {
            if (!s->trained[i])
                continue;
            if ((rc = locate(ex, d, s, i, text, &s->spans[s->n_spans], err)) != 0)
                return rc < 0 ? rc : 2;
            if (s->n_spans && s->spans[s->n_spans].start < s->spans[s->n_spans - 1].end) {
                dk_error_set(err, DK_EINVAL, NULL, 0, "the spans of turns %zu and %zu overlap", s->sel[i - 1], s->sel[i]);
                return 2;
            }
            s->n_spans++;
        }
    }
    return tokenize(c, s, labels, err);
}

/* ---------- output ---------- */

static const char *sharegpt_from(dk_role r, int tool_calls)
{
    switch (r) {
    case DK_ROLE_SYSTEM:    return "system";
    case DK_ROLE_USER:      return "human";
    case DK_ROLE_ASSISTANT: return tool_calls ? "function_call" : "gpt";
    default:                return "observation";
    }
}

static void put_raw(buf *b, const cJSON *v)
{
    char *s = cJSON_PrintUnformatted(v);
    if (!s) {
        b->oom = 1;
        return;
    }
    puts_(b, s);
    free(s);
}

static void put_turns(buf *b, const dk_dialog *d, const sample *s, int sharegpt, int whole)
{
    puts_(b, sharegpt ? "\"conversations\":[" : "\"messages\":[");
    for (size_t i = 0; i < s->n_sel; i++) {
        const dk_turn *t = &d->turns[s->sel[i]];
        if (i)
            put(b, ",", 1);
        const cJSON *tc = cJSON_GetObjectItemCaseSensitive(t->json, "tool_calls");
        if (sharegpt) {
            puts_(b, "{\"from\":\"");
            puts_(b, sharegpt_from(t->role, t->has_tool_calls && !t->content));
            puts_(b, "\",\"value\":");
            if (t->content)
                put_json_string(b, t->content, t->content_len);
            else if (tc)
                put_raw(b, tc);
            else
                puts_(b, "\"\"");
        } else {
            puts_(b, "{\"role\":\"");
            puts_(b, dk_role_name(t->role));
            puts_(b, "\",\"content\":");
            if (t->content)
                put_json_string(b, t->content, t->content_len);
            else
                puts_(b, "null");
            const cJSON *rc = cJSON_GetObjectItemCaseSensitive(t->json, "reasoning_content");
            if (rc) {
                puts_(b, ",\"reasoning_content\":");
                put_raw(b, rc);
            }
            if (tc) {
                puts_(b, ",\"tool_calls\":");
                put_raw(b, tc);
            }
            if (whole && t->role == DK_ROLE_ASSISTANT && !s->trained[i])
                puts_(b, ",\"train\":false");
        }
        put(b, "}", 1);
    }
    put(b, "]", 1);
}

static void put_ids(buf *b, const uint32_t *ids, const unsigned char *lab, size_t n, int labels)
{
    char num[16];
    put(b, "[", 1);
    for (size_t i = 0; i < n; i++) {
        char *e = num + sizeof num, *p = e;
        if (labels && !lab[i]) {
            p -= 4;
            memcpy(p, "-100", 4);
        } else {
            uint32_t v = ids[i];
            do {
                *--p = (char)('0' + v % 10);
                v /= 10;
            } while (v);
        }
        if (i)
            *--p = ',';
        put(b, p, (size_t)(e - p));
    }
    put(b, "]", 1);
}

static int write_sample(dk_expand_ctx *c, const dk_dialog *d, const sample *s, const size_t *dropped,
                        size_t n_dropped, const char *meta, dk_expand_result *r)
{
    const dk_expander *ex = c->ex;
    buf *b = &c->line;
    b->n = 0;
    int whole = ex->o.mode == DK_EXPAND_WHOLE;
    puts_(b, "{\"dialog_id\":");
    put_json_string(b, d->id, strlen(d->id));
    puts_(b, ",\"turn_index\":");
    put_long(b, (long)s->sel[s->n_sel - 1]);
    put(b, ",", 1);
    switch (ex->o.format) {
    case DK_EXPAND_MESSAGES: put_turns(b, d, s, 0, whole); break;
    case DK_EXPAND_SHAREGPT: put_turns(b, d, s, 1, whole); break;
    case DK_EXPAND_TEXT:
        puts_(b, "\"prompt\":");
        put_json_string(b, s->text, s->prompt_len);
        puts_(b, ",\"completion\":");
        put_json_string(b, s->text + s->prompt_len, s->len - s->prompt_len);
        break;
    case DK_EXPAND_IDS:
        puts_(b, "\"input_ids\":");
        put_ids(b, c->sample_ids, c->sample_lab, c->sample_n, 0);
        puts_(b, ",\"labels\":");
        put_ids(b, c->sample_ids, c->sample_lab, c->sample_n, 1);
        break;
    }
    if (whole) {
        puts_(b, ",\"train_turns\":[");
        int first = 1;
        for (size_t i = 0; i < s->n_sel; i++) {
            if (!s->trained[i])
                continue;
            if (!first)
                put(b, ",", 1);
            first = 0;
            put_long(b, (long)s->sel[i]);
        }
        put(b, "]", 1);
    }
    puts_(b, ",\"line\":");
    put_long(b, d->line);
    puts_(b, ",\"n_tokens\":");
    put_long(b, s->n_tokens);
    puts_(b, ",\"dropped_turns\":[");
    for (size_t i = 0; i < n_dropped; i++) {
        if (i)
            put(b, ",", 1);
        put_long(b, (long)dropped[i]);
    }
    put(b, "]", 1);
    if (meta) {
        puts_(b, ",\"meta\":");
        puts_(b, meta);
    }
    puts_(b, "}\n");
    if (b->oom)
        return DK_ENOMEM;
    buf out = { r->out, r->len, r->cap, 0 };
    put(&out, b->s, b->n);
    r->out = out.s;
    r->len = out.n;
    r->cap = out.cap;
    if (out.oom)
        return DK_ENOMEM;
    r->samples++;
    r->tokens += s->n_tokens;
    r->turns_dropped += (long)n_dropped;
    return 0;
}

/* ---------- turn selection ---------- */

static int trainable(const dk_expander *ex, const dk_dialog *d, size_t t, size_t last_assistant)
{
    if (d->turns[t].role != DK_ROLE_ASSISTANT || d->turns[t].train == 0)
        return 0;
    switch (ex->o.train) {
    case DK_EXPAND_TRAIN_ALL:  return 1;
    case DK_EXPAND_TRAIN_LAST: return t == last_assistant;
    case DK_EXPAND_TRAIN_LIST:
        for (size_t i = 0; i < ex->o.n_train_list; i++)
            if (ex->o.train_list[i] == (long)t)
                return 1;
        return 0;
    }
    return 0;
}

/* The turns of the sample that ends at turn `last` with k oldest units dropped. */
static void select_turns(sample *s, size_t sys, const size_t *unit, size_t n_units,
                         size_t keep_from, size_t k, size_t last, const int *train_mask)
{
    s->n_sel = 0;
    if (sys)
        s->trained[s->n_sel] = 0, s->sel[s->n_sel++] = 0;
    size_t from = k < n_units ? unit[k] : keep_from;
    for (size_t i = from; i <= last; i++) {
        s->trained[s->n_sel] = train_mask[i];
        s->sel[s->n_sel++] = i;
    }
}

typedef struct plan {
    size_t  sys, *unit, n_units, keep_from;
} plan;

/* Units of droppable history before the unit of the last user turn before `target`. */
static void make_plan(const dk_dialog *d, size_t target, plan *p)
{
    p->sys = d->n_turns && d->turns[0].role == DK_ROLE_SYSTEM ? 1 : 0;
    p->n_units = 0;
    size_t u = target;
    for (size_t i = target; i-- > p->sys;)
        if (d->turns[i].role == DK_ROLE_USER) {
            u = i;
            break;
        }
    p->keep_from = u < target ? u : p->sys;
    if (u >= target)
        return;
    for (size_t i = p->sys; i < u; i++)
        if (i == p->sys || d->turns[i].role == DK_ROLE_USER)
            p->unit[p->n_units++] = i;
}

/* why: 1 the template refused the sample, 2 a trained turn's span is not in its text */
static int diag_build(dk_diag_list *diags, const dk_dialog *d, size_t t, int why, const dk_error *e)
{
    char ptr[40];
    snprintf(ptr, sizeof ptr, "/turns/%zu", t);
    return dk_diag_add(diags, DK_SEV_ERROR, why == 1 ? "E_TEMPLATE" : "E_TRAIN_SPAN", d->line, d->id, (int)t, ptr,
                       "sample of turn %zu: %s%s; skipped", t, why == 1 ? "chat template: " : "",
                       e->msg[0] ? e->msg : "failed");
}

/* One sample ending at turn `last`; drops history per the options. */
static int one_sample(dk_expand_ctx *c, const dk_dialog *d, size_t last, const int *train_mask,
                      sample *s, plan *p, const char *meta, dk_expand_result *r, dk_diag_list *diags)
{
    const dk_expander *ex = c->ex;
    const dk_expand_opts *o = &ex->o;
    dk_error e = { 0 };
    char ptr[40];
    snprintf(ptr, sizeof ptr, "/turns/%zu", last);
    make_plan(d, last, p);
    size_t k = 0;
    if (o->truncate == DK_EXPAND_WINDOW && o->window >= 0 && p->n_units > (size_t)o->window)
        k = p->n_units - (size_t)o->window;
#define BUILD(kk)                                                                                   \
    do {                                                                                            \
        select_turns(s, p->sys, p->unit, p->n_units, p->keep_from, (kk), last, train_mask);     \
        int brc_ = build(c, d, s, &e);                                                              \
        if (brc_ < 0)                                                                               \
            return brc_;                                                                            \
        if (brc_ > 0) {                                                                             \
            r->skipped++;                                                                           \
            return diag_build(diags, d, last, brc_, &e);                                            \
        }                                                                                           \
    } while (0)
    BUILD(k);
    long max = o->max_tokens;
    if (max > 0 && s->n_tokens > max) {
        long first = s->n_tokens;
        if (o->truncate == DK_EXPAND_SKIP) {
            r->skipped++;
            return dk_diag_add(diags, DK_SEV_WARNING, "W_TOO_LONG", d->line, d->id, (int)last, ptr,
                               "sample of turn %zu has %ld tokens, %ld over --max-tokens %ld; skipped (--truncate skip)",
                               last, first, first - max, max);
        }
        size_t lo = k + 1, hi = p->n_units;
        if (lo > hi) {
            r->skipped++;
            return dk_diag_add(diags, DK_SEV_WARNING, "W_TOO_LONG", d->line, d->id, (int)last, ptr,
                               "sample of turn %zu has %ld tokens, %ld over --max-tokens %ld with no earlier pair left to drop; skipped",
                               last, first, first - max, max);
        }
        BUILD(hi);
        if (s->n_tokens > max) {
            r->skipped++;
            return dk_diag_add(diags, DK_SEV_WARNING, "W_TOO_LONG", d->line, d->id, (int)last, ptr,
                               "sample of turn %zu has %ld tokens, %ld over --max-tokens %ld even with every earlier pair dropped; skipped",
                               last, s->n_tokens, s->n_tokens - max, max);
        }
        /* the fewest units dropped that fit: counts fall as units go */
        size_t best = hi;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            BUILD(mid);
            if (s->n_tokens <= max)
                hi = best = mid;
            else
                lo = mid + 1;
        }
        if (best != k || s->n_tokens > max) {
            k = best;
            BUILD(k);
        }
    }
#undef BUILD
    if (c->misaligned) {
        int rc = dk_diag_add(diags, DK_SEV_WARNING, "W_LABEL_BOUNDARY", d->line, d->id, (int)last, ptr,
                             "sample of turn %zu: a token spans the start of an assistant reply; its labels start at that token",
                             last);
        if (rc)
            return rc;
    }
    size_t from = k < p->n_units ? p->unit[k] : p->keep_from;
    size_t n_dropped = from > p->sys ? from - p->sys : 0;
    size_t *dropped = p->unit + p->n_units; /* spare room after the units */
    for (size_t i = 0; i < n_dropped; i++)
        dropped[i] = p->sys + i;
    return write_sample(c, d, s, dropped, n_dropped, meta, r);
}

int dk_expand_dialog(dk_expand_ctx *c, const dk_dialog *d, dk_expand_result *r, dk_diag_list *diags)
{
    const dk_expander *ex = c->ex;
    size_t n = d->n_turns;
    r->len = 0;
    r->samples = r->skipped = r->turns_dropped = r->tokens = 0;
    cache_clear(c);
    sample s = { 0 };
    plan p = { 0 };
    char *meta = NULL;
    int rc = DK_ENOMEM;
    int *mask = calloc(2 * n + 2, sizeof *mask);
    s.sel = calloc(n + 1, sizeof *s.sel);
    s.trained = calloc(n + 1, sizeof *s.trained);
    s.spans = calloc(n + 1, sizeof *s.spans);
    p.unit = calloc(2 * n + 2, sizeof *p.unit);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(d->json, "meta");
    if (!mask || !s.sel || !s.trained || !s.spans || !p.unit || (m && !(meta = cJSON_PrintUnformatted(m))))
        goto out;
    size_t last_a = n;
    for (size_t i = 0; i < n; i++)
        if (d->turns[i].role == DK_ROLE_ASSISTANT)
            last_a = i;
    for (size_t i = 0; i < n; i++)
        mask[i] = trainable(ex, d, i, last_a);
    rc = 0;
    if (ex->o.mode == DK_EXPAND_PREFIX) {
        /* only the target carries loss in a prefix sample */
        int *one = mask + n + 1;
        for (size_t t = 0; t < n && rc == 0; t++) {
            if (!mask[t])
                continue;
            memset(one, 0, n * sizeof *one);
            one[t] = 1;
            rc = one_sample(c, d, t, one, &s, &p, meta, r, diags);
        }
    } else {
        int any = 0;
        for (size_t i = 0; i < n; i++)
            any |= mask[i];
        if (last_a == n || !any) {
            r->skipped++;
            rc = dk_diag_add(diags, DK_SEV_WARNING, "W_NO_TARGET", d->line, d->id, -1, "",
                             "no assistant turn to train on; no sample");
        } else {
            rc = one_sample(c, d, last_a, mask, &s, &p, meta, r, diags);
        }
    }
out:
    sample_reset(&s);
    free(s.sel);
    free(s.trained);
    free(s.spans);
    free(p.unit);
    free(mask);
    free(meta);
    return rc;
}
