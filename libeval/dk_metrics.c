/* dk_metrics: gazetteer and entity consistency (see dk_metrics.h for the definitions).
 *
 * The gazetteer keeps two views: entries, one per (folded text, type) with a count and
 * the first spelling seen (what --build-gazetteer writes), and a byte trie over the
 * distinct folded texts, each trie terminal naming the text's most frequent type (what
 * matching reads). Both are updated on every add, so a gazetteer is always ready to
 * match and matching never writes.
 */
#include "dk_metrics.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "dk_unicode.h"

typedef struct entry {
    char *text;     /* first spelling seen */
    char *folded;
    char *type;     /* NULL when untyped */
    long  count;
} entry;

typedef struct text_rec {
    char  *folded;
    size_t best;    /* entry index of the most frequent type */
} text_rec;

/* Open addressing from a 64-bit key to a size_t value; key 0 is never used. */
typedef struct u64map {
    uint64_t *keys;
    size_t   *vals;
    size_t    n, cap;
} u64map;

struct dk_gazetteer {
    entry    *entries;
    size_t    n_entries, cap_entries;
    text_rec *texts;
    size_t    n_texts, cap_texts;
    u64map    entry_index;  /* hash(folded, type) -> entry, chained by linear probe */
    u64map    edges;        /* node * 257 + byte + 1 -> child node */
    long     *node_text;    /* node -> text_rec index, -1 if not terminal */
    size_t    n_nodes, cap_nodes;
};

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static int u64map_grow(u64map *m)
{
    size_t cap = m->cap ? m->cap * 2 : 256;
    uint64_t *keys = calloc(cap, sizeof *keys);
    size_t *vals = calloc(cap, sizeof *vals);
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return DK_ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i])
            continue;
        size_t j = mix(m->keys[i]) & (cap - 1);
        while (keys[j])
            j = (j + 1) & (cap - 1);
        keys[j] = m->keys[i];
        vals[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
    return 0;
}

static const size_t *u64map_get(const u64map *m, uint64_t key)
{
    if (!m->cap)
        return NULL;
    for (size_t j = mix(key) & (m->cap - 1); m->keys[j]; j = (j + 1) & (m->cap - 1))
        if (m->keys[j] == key)
            return &m->vals[j];
    return NULL;
}

static int u64map_put(u64map *m, uint64_t key, size_t val)
{
    if ((m->n + 1) * 2 > m->cap && u64map_grow(m) != 0)
        return DK_ENOMEM;
    size_t j = mix(key) & (m->cap - 1);
    while (m->keys[j] && m->keys[j] != key)
        j = (j + 1) & (m->cap - 1);
    if (!m->keys[j])
        m->n++;
    m->keys[j] = key;
    m->vals[j] = val;
    return 0;
}

static void u64map_free(u64map *m)
{
    free(m->keys);
    free(m->vals);
}

static uint64_t str_hash(const char *a, const char *b)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char *p = (const unsigned char *)a; *p; p++)
        h = (h ^ *p) * 0x100000001b3ULL;
    h = (h ^ 0xff) * 0x100000001b3ULL;
    if (b)
        for (const unsigned char *p = (const unsigned char *)b; *p; p++)
            h = (h ^ *p) * 0x100000001b3ULL;
    return h | 1; /* never 0, the empty key */
}

dk_gazetteer *dk_gazetteer_new(void)
{
    dk_gazetteer *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->node_text = malloc(64 * sizeof *g->node_text);
    if (!g->node_text) {
        free(g);
        return NULL;
    }
    g->cap_nodes = 64;
    g->n_nodes = 1;
    g->node_text[0] = -1;
    return g;
}

void dk_gazetteer_free(dk_gazetteer *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n_entries; i++) {
        free(g->entries[i].text);
        free(g->entries[i].folded);
        free(g->entries[i].type);
    }
    for (size_t i = 0; i < g->n_texts; i++)
        free(g->texts[i].folded);
    free(g->entries);
    free(g->texts);
    free(g->node_text);
    u64map_free(&g->entry_index);
    u64map_free(&g->edges);
    free(g);
}

size_t dk_gazetteer_size(const dk_gazetteer *g)
{
    return g->n_entries;
}

static int same_type(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Inserts folded into the trie; returns its text record index or a negative status. */
static long trie_insert(dk_gazetteer *g, const char *folded)
{
    size_t node = 0;
    for (const unsigned char *p = (const unsigned char *)folded; *p; p++) {
        uint64_t key = (uint64_t)node * 257 + *p + 1;
        const size_t *child = u64map_get(&g->edges, key);
        if (child) {
            node = *child;
            continue;
        }
        if (g->n_nodes == g->cap_nodes) {
            long *nt = realloc(g->node_text, 2 * g->cap_nodes * sizeof *nt);
            if (!nt)
                return DK_ENOMEM;
            g->node_text = nt;
            g->cap_nodes *= 2;
        }
        g->node_text[g->n_nodes] = -1;
        if (u64map_put(&g->edges, key, g->n_nodes) != 0)
            return DK_ENOMEM;
        node = g->n_nodes++;
    }
    if (g->node_text[node] >= 0)
        return g->node_text[node];
    if (g->n_texts == g->cap_texts) {
        size_t cap = g->cap_texts ? g->cap_texts * 2 : 64;
        text_rec *t = realloc(g->texts, cap * sizeof *t);
        if (!t)
            return DK_ENOMEM;
        g->texts = t;
        g->cap_texts = cap;
    }
    char *copy = strdup(folded);
    if (!copy)
        return DK_ENOMEM;
    g->texts[g->n_texts] = (text_rec){ copy, (size_t)-1 };
    g->node_text[node] = (long)g->n_texts;
    return (long)g->n_texts++;
}

static int add_folded(dk_gazetteer *g, const char *text, char *folded, const char *type, long count)
{
    if (!*folded) {
        free(folded);
        return 0;
    }
    uint64_t key = str_hash(folded, type);
    size_t idx = (size_t)-1;
    /* Different (text, type) pairs with the same 64-bit key probe key+1, key+2 ... */
    for (;;) {
        const size_t *v = u64map_get(&g->entry_index, key);
        if (!v)
            break;
        if (strcmp(g->entries[*v].folded, folded) == 0 && same_type(g->entries[*v].type, type)) {
            idx = *v;
            break;
        }
        if (++key == 0)
            key = 1;
    }
    if (idx == (size_t)-1) {
        if (g->n_entries == g->cap_entries) {
            size_t cap = g->cap_entries ? g->cap_entries * 2 : 64;
            entry *e = realloc(g->entries, cap * sizeof *e);
            if (!e)
                goto oom;
            g->entries = e;
            g->cap_entries = cap;
        }
        entry *e = &g->entries[g->n_entries];
        e->text = strdup(text);
        e->type = type ? strdup(type) : NULL;
        e->folded = folded;
        e->count = 0;
        folded = NULL;
        if (!e->text || (type && !e->type) || u64map_put(&g->entry_index, key, g->n_entries) != 0) {
            free(e->text);
            free(e->type);
            free(e->folded);
            return DK_ENOMEM;
        }
        idx = g->n_entries++;
    }
    free(folded);
    entry *e = &g->entries[idx];
    e->count += count;
    long t = trie_insert(g, e->folded);
    if (t < 0)
        return (int)t;
    text_rec *r = &g->texts[t];
    if (r->best == (size_t)-1 || g->entries[r->best].count < e->count ||
        (g->entries[r->best].count == e->count && !g->entries[r->best].type && e->type))
        r->best = idx;
    return 0;
oom:
    free(folded);
    return DK_ENOMEM;
}

int dk_gazetteer_add(dk_gazetteer *g, const char *text, const char *type, long count)
{
    char *folded = NULL;
    int rc = dk_utf8_fold(text, strlen(text), &folded, NULL, NULL);
    if (rc)
        return rc;
    return add_folded(g, text, folded, type, count);
}

int dk_gazetteer_add_dialog(dk_gazetteer *g, const dk_dialog *d)
{
    for (size_t i = 0; i < d->n_turns; i++)
        for (size_t k = 0; k < d->turns[i].n_entities; k++) {
            const dk_entity *e = &d->turns[i].entities[k];
            int rc = dk_gazetteer_add(g, e->text, e->type, 1);
            if (rc)
                return rc;
        }
    return 0;
}

int dk_gazetteer_merge(dk_gazetteer *dst, const dk_gazetteer *src)
{
    for (size_t i = 0; i < src->n_entries; i++) {
        const entry *e = &src->entries[i];
        char *folded = strdup(e->folded);
        if (!folded)
            return DK_ENOMEM;
        int rc = add_folded(dst, e->text, folded, e->type, e->count);
        if (rc)
            return rc;
    }
    return 0;
}

int dk_gazetteer_load(dk_gazetteer **out, const char *path, dk_error *err)
{
    *out = NULL;
    dk_jsonl_reader *r = NULL;
    dk_gazetteer *g = dk_gazetteer_new();
    int rc = g ? dk_jsonl_reader_open(&r, path, err) : DK_ENOMEM;
    dk_jsonl_line line;
    while (rc == 0 && (rc = dk_jsonl_reader_next(r, &line, err)) == 1) {
        rc = 0;
        cJSON *o = cJSON_ParseWithLength(line.text, line.len);
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(o, "text");
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(o, "type");
        const cJSON *count = cJSON_GetObjectItemCaseSensitive(o, "count");
        if (!cJSON_IsObject(o) || !cJSON_IsString(text) || !text->valuestring[0] ||
            (type && !cJSON_IsString(type) && !cJSON_IsNull(type)) ||
            (count && (!cJSON_IsNumber(count) || count->valuedouble < 1))) {
            rc = dk_error_set(err, DK_EPARSE, dk_jsonl_reader_name(r), line.lineno,
                              "a gazetteer line must be {\"text\": non-empty string, \"type\": "
                              "string, \"count\": number >= 1}");
        } else if (dk_utf8_validate(text->valuestring, strlen(text->valuestring), NULL) != 0) {
            rc = dk_error_set(err, DK_EUTF8, dk_jsonl_reader_name(r), line.lineno,
                              "gazetteer text is not valid utf-8");
        } else {
            rc = dk_gazetteer_add(g, text->valuestring, cJSON_IsString(type) ? type->valuestring : NULL,
                                  count ? (long)count->valuedouble : 1);
            if (rc)
                dk_error_set(err, rc, dk_jsonl_reader_name(r), line.lineno, "%s", dk_strerror(rc));
        }
        cJSON_Delete(o);
    }
    dk_jsonl_reader_free(r);
    if (rc < 0) {
        if (rc == DK_ENOMEM && err && err->code == DK_OK)
            dk_error_set(err, rc, path, 0, "out of memory");
        dk_gazetteer_free(g);
        return rc;
    }
    *out = g;
    return 0;
}

static const dk_gazetteer *sort_g;

static int cmp_entries(const void *pa, const void *pb)
{
    const entry *a = &sort_g->entries[*(const size_t *)pa], *b = &sort_g->entries[*(const size_t *)pb];
    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    int c = strcmp(a->folded, b->folded);
    if (c)
        return c;
    if (!a->type || !b->type)
        return !a->type - !b->type;
    return strcmp(a->type, b->type);
}

int dk_gazetteer_write(const dk_gazetteer *g, dk_jsonl_writer *w, dk_error *err)
{
    size_t *order = malloc((g->n_entries + 1) * sizeof *order);
    if (!order)
        return dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
    for (size_t i = 0; i < g->n_entries; i++)
        order[i] = i;
    sort_g = g; /* qsort has no context argument; writing is single-threaded */
    qsort(order, g->n_entries, sizeof *order, cmp_entries);
    int rc = 0;
    for (size_t i = 0; i < g->n_entries && rc == 0; i++) {
        const entry *e = &g->entries[order[i]];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "text", e->text);
        if (e->type)
            cJSON_AddStringToObject(o, "type", e->type);
        else
            cJSON_AddNullToObject(o, "type");
        cJSON_AddNumberToObject(o, "count", (double)e->count);
        char *s = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        rc = s ? dk_jsonl_writer_line(w, s, strlen(s), err)
               : dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
        free(s);
    }
    free(order);
    return rc;
}

/* ---------- matching ---------- */

static int is_word(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

typedef struct mention {
    const text_rec *rec;
} mention;

/* Leftmost-longest, non-overlapping matches of s (folded) into a growing array. */
static int find_mentions(const dk_gazetteer *g, const char *s, size_t n, mention **out, size_t *n_out)
{
    size_t cap = 0;
    *out = NULL;
    *n_out = 0;
    for (size_t pos = 0; pos < n;) {
        unsigned char c0 = (unsigned char)s[pos];
        if ((c0 & 0xC0) == 0x80 || (is_word(c0) && pos > 0 && is_word((unsigned char)s[pos - 1]))) {
            pos++;
            continue;
        }
        size_t node = 0, best_end = 0;
        long best = -1;
        for (size_t i = pos; i < n; i++) {
            const size_t *child = u64map_get(&g->edges, (uint64_t)node * 257 + (unsigned char)s[i] + 1);
            if (!child)
                break;
            node = *child;
            long t = g->node_text[node];
            if (t >= 0 && !(is_word((unsigned char)s[i]) && i + 1 < n && is_word((unsigned char)s[i + 1]))) {
                best = t;
                best_end = i + 1;
            }
        }
        if (best < 0) {
            pos++;
            continue;
        }
        if (*n_out == cap) {
            cap = cap ? cap * 2 : 8;
            mention *m = realloc(*out, cap * sizeof *m);
            if (!m)
                return DK_ENOMEM;
            *out = m;
        }
        (*out)[(*n_out)++] = (mention){ &g->texts[best] };
        pos = best_end;
    }
    return 0;
}

/* A small set of (folded text, type, turn) for one dialog. Dialogs hold few entities,
 * so linear search beats hashing here. */
typedef struct item {
    const char *text;   /* borrowed: the gazetteer's or the dialog's folded copy */
    const char *type;
    int         turn;
} item;

typedef struct itemset {
    item  *v;
    size_t n, cap;
} itemset;

static int set_find(const itemset *s, const char *text)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].text, text) == 0)
            return (int)i;
    return -1;
}

static int set_add(itemset *s, const char *text, const char *type, int turn)
{
    if (set_find(s, text) >= 0)
        return 0;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        item *v = realloc(s->v, cap * sizeof *v);
        if (!v)
            return DK_ENOMEM;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = (item){ text, type, turn };
    return 0;
}

static int add_finding(dk_consistency *c, size_t *cap, int turn, int conflict, const item *m,
                       const item *fixed)
{
    if (c->n_findings == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        dk_consistency_finding *f = realloc(c->findings, *cap * sizeof *f);
        if (!f)
            return DK_ENOMEM;
        c->findings = f;
    }
    dk_consistency_finding *f = &c->findings[c->n_findings];
    f->turn = turn;
    f->conflict = conflict;
    f->text = strdup(m->text);
    f->type = m->type ? strdup(m->type) : NULL;
    f->fixed = fixed ? strdup(fixed->text) : NULL;
    f->fixed_turn = fixed ? fixed->turn : -1;
    c->n_findings++;
    if (!f->text || (m->type && !f->type) || (fixed && !f->fixed))
        return DK_ENOMEM;
    return 0;
}

static double ratio(size_t a, size_t b)
{
    return b ? (double)a / (double)b : NAN;
}

int dk_entity_consistency(const dk_dialog *d, const dk_gazetteer *g, dk_consistency *out)
{
    memset(out, 0, sizeof *out);
    itemset seen = { 0 }, h = { 0 }, gold = { 0 };
    char **folds = calloc(d->n_turns ? d->n_turns : 1, sizeof *folds);
    char **afolds = NULL; /* folded annotated texts, freed at the end */
    size_t n_afolds = 0, cap_afolds = 0, cap_findings = 0;
    mention *ms = NULL;
    size_t n_ms = 0;
    int rc = folds ? 0 : DK_ENOMEM;

    for (size_t ti = 0; ti < d->n_turns && rc == 0; ti++) {
        const dk_turn *t = &d->turns[ti];
        size_t flen = 0;
        if (t->content && (rc = dk_utf8_fold(t->content, t->content_len, &folds[ti], &flen, NULL)) != 0)
            break;
        if (t->content && (rc = find_mentions(g, folds[ti], flen, &ms, &n_ms)) != 0)
            break;
        h.n = gold.n = 0;
        for (size_t k = 0; k < t->n_entities && rc == 0; k++) {
            if (n_afolds == cap_afolds) {
                cap_afolds = cap_afolds ? cap_afolds * 2 : 32;
                char **a = realloc(afolds, cap_afolds * sizeof *a);
                if (!a) {
                    rc = DK_ENOMEM;
                    break;
                }
                afolds = a;
            }
            char *f = NULL;
            if ((rc = dk_utf8_fold(t->entities[k].text, strlen(t->entities[k].text), &f, NULL, NULL)) != 0)
                break;
            afolds[n_afolds++] = f;
            rc = set_add(&gold, f, t->entities[k].type, (int)ti);
        }
        for (size_t k = 0; k < n_ms && rc == 0; k++) {
            const text_rec *r = ms[k].rec;
            int gi = set_find(&gold, r->folded);
            const char *type = gi >= 0 && gold.v[gi].type ? gold.v[gi].type : g->entries[r->best].type;
            rc = set_add(&h, r->folded, type, (int)ti);
        }
        if (rc)
            break;

        if (t->role == DK_ROLE_ASSISTANT && t->content) {
            dk_consistency_turn ct = { .turn = (int)ti, .n_mentions = h.n, .n_gold = gold.n };
            for (size_t k = 0; k < h.n && rc == 0; k++) {
                int grounded = set_find(&seen, h.v[k].text) >= 0;
                ct.n_grounded += grounded;
                ct.n_hit += set_find(&gold, h.v[k].text) >= 0;
                if (grounded)
                    continue;
                const item *fixed = NULL;
                for (size_t s = 0; s < seen.n && h.v[k].type; s++)
                    if (seen.v[s].type && strcmp(seen.v[s].type, h.v[k].type) == 0)
                        fixed = &seen.v[s]; /* the latest value of that type */
                rc = add_finding(out, &cap_findings, (int)ti, fixed != NULL, &h.v[k], fixed);
            }
            ct.prec_s = ratio(ct.n_grounded, ct.n_mentions);
            ct.prec_t = ratio(ct.n_hit, ct.n_mentions);
            ct.recall_t = ratio(ct.n_hit, ct.n_gold);
            ct.f1 = (isnan(ct.prec_t) || isnan(ct.recall_t)) ? NAN
                  : ct.prec_t + ct.recall_t > 0 ? 2 * ct.prec_t * ct.recall_t / (ct.prec_t + ct.recall_t) : 0;
            dk_consistency_turn *v = realloc(out->turns, (out->n_turns + 1) * sizeof *v);
            if (!v) {
                rc = DK_ENOMEM;
                break;
            }
            out->turns = v;
            out->turns[out->n_turns++] = ct;
        }
        for (size_t k = 0; k < gold.n && rc == 0; k++)
            rc = set_add(&seen, gold.v[k].text, gold.v[k].type, (int)ti);
        for (size_t k = 0; k < h.n && rc == 0; k++)
            rc = set_add(&seen, h.v[k].text, h.v[k].type, (int)ti);
    }
    /* seen borrows from afolds and the gazetteer, so findings were copied above. */
    for (size_t i = 0; i < n_afolds; i++)
        free(afolds[i]);
    for (size_t i = 0; folds && i < d->n_turns; i++)
        free(folds[i]);
    free(afolds);
    free(folds);
    free(ms);
    free(seen.v);
    free(h.v);
    free(gold.v);
    if (rc)
        dk_consistency_free(out);
    return rc;
}

void dk_consistency_free(dk_consistency *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_findings; i++) {
        free(c->findings[i].text);
        free(c->findings[i].type);
        free(c->findings[i].fixed);
    }
    free(c->findings);
    free(c->turns);
    memset(c, 0, sizeof *c);
}
