/* dk_tokenizer: encode and decode on a loaded tokenizer (dk_tokenizer_load.c loads it).
 *
 * Every step follows the reference (Hugging Face `tokenizers`) step for step, so the ids
 * are the same; what differs is only how fast each step runs:
 *   - added tokens are found with a byte trie, leftmost-longest like its Aho-Corasick;
 *   - normalization is skipped for text ICU calls inert (every ASCII and CJK run);
 *   - pre-tokenizer regexes run on PCRE2's JIT, one piece at a time, iterated the way
 *     Oniguruma's find_iter does (an empty match right after a match is skipped);
 *   - BPE merges a piece with a binary heap of (rank, position) over a linked list of
 *     symbols: O(n log n) per piece, the lowest rank first and the leftmost among equals,
 *     which is the order the reference merges in; merge ranks come from a hash table;
 *   - whole pieces are cached per scratch (direct-mapped, fixed size), so a repeated word
 *     costs one hash and one compare. Scratch buffers only grow: no allocation per token.
 * A scratch is used by one thread at a time; the tokenizer itself is never written.
 */
#include "dk_tokenizer_int.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include "dk_unicode.h"

#define CACHE_SLOTS 32768u
#define CACHE_KEY   42
#define CACHE_IDS   20

typedef struct cache_slot {
    uint32_t hash;
    uint8_t  klen, nids; /* klen 0: empty */
    uint8_t  key[CACHE_KEY];
    uint32_t ids[CACHE_IDS];
} cache_slot;

typedef struct sym {
    uint32_t id;        /* TOK_NONE once merged into its left neighbour */
    int32_t  prev, next;
} sym;

typedef struct range { size_t start, end; int match; } range;

struct dk_tok_scratch {
    const dk_tokenizer   *tok;
    pcre2_match_data     *md;
    pcre2_match_context  *mc;
    pcre2_jit_stack      *js;
    cache_slot           *cache;
    sym                  *syms;
    size_t                syms_cap;
    uint64_t             *heap;
    size_t                heap_cap;
    UChar                *u16a, *u16b;
    size_t                u16a_cap, u16b_cap;
    char                 *norm[2];
    size_t                norm_cap[2];
    char                 *pfx;      /* a piece with ByteLevel's prefix space */
    size_t                pfx_cap;
    char                 *spell;    /* a piece in ByteLevel characters (ignore_merges) */
    size_t                spell_cap;
    range                *ranges[TOK_MAX_PRETOK];
    size_t                ranges_cap[TOK_MAX_PRETOK];
    dk_tok_ids           *out;
    dk_error             *err;
};

/* ------------------------------------------------------------------ small helpers */

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *n = realloc(*p, c * elem);
    if (!n)
        return DK_ENOMEM;
    *p = n;
    *cap = c;
    return 0;
}

static int push_ids(dk_tok_scratch *s, const uint32_t *ids, size_t n)
{
    dk_tok_ids *o = s->out;
    if (o->n + n > o->cap && grow((void **)&o->ids, &o->cap, o->n + n, sizeof *o->ids) < 0)
        return dk_error_set(s->err, DK_ENOMEM, NULL, 0, "out of memory");
    memcpy(o->ids + o->n, ids, n * sizeof *ids);
    o->n += n;
    return 0;
}

static int push_id(dk_tok_scratch *s, uint32_t id)
{
    dk_tok_ids *o = s->out;
    if (o->n == o->cap && grow((void **)&o->ids, &o->cap, o->n + 1, sizeof *o->ids) < 0)
        return dk_error_set(s->err, DK_ENOMEM, NULL, 0, "out of memory");
    o->ids[o->n++] = id;
    return 0;
}

static size_t char_len(unsigned char c)
{
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

/* ------------------------------------------------------------------ scratch */

int dk_tok_scratch_new(dk_tok_scratch **out, const dk_tokenizer *tok, dk_error *err)
{
    *out = NULL;
    dk_tok_scratch *s = calloc(1, sizeof *s);
    if (!s)
        return dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
    s->tok = tok;
    s->md = pcre2_match_data_create(4, NULL);
    s->mc = pcre2_match_context_create(NULL);
    /* long runs of one class (a 1 MB line of digits) need more than the default 32 KB */
    s->js = pcre2_jit_stack_create(32 * 1024, 16 * 1024 * 1024, NULL);
    s->cache = calloc(CACHE_SLOTS, sizeof *s->cache);
    if (!s->md || !s->mc || !s->js || !s->cache) {
        dk_tok_scratch_free(s);
        return dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
    }
    pcre2_jit_stack_assign(s->mc, NULL, s->js);
    *out = s;
    return 0;
}

void dk_tok_scratch_free(dk_tok_scratch *s)
{
    if (!s)
        return;
    pcre2_match_data_free(s->md);
    pcre2_match_context_free(s->mc);
    pcre2_jit_stack_free(s->js);
    free(s->cache);
    free(s->syms);
    free(s->heap);
    free(s->u16a);
    free(s->u16b);
    free(s->norm[0]);
    free(s->norm[1]);
    free(s->pfx);
    free(s->spell);
    for (int i = 0; i < TOK_MAX_PRETOK; i++)
        free(s->ranges[i]);
    free(s);
}

/* ------------------------------------------------------------------ BPE */

static void heap_push(uint64_t *h, size_t *n, uint64_t key)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p] <= key)
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = key;
}

static uint64_t heap_pop(uint64_t *h, size_t *n)
{
    uint64_t top = h[0], last = h[--*n];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m)
            break;
        if (c + 1 < m && h[c + 1] < h[c])
            c++;
        if (last <= h[c])
            break;
        h[i] = h[c];
        i = c;
    }
    if (m)
        h[i] = last;
    return top;
}

static int bpe_try_push(const dk_tokenizer *t, uint64_t *heap, size_t *hn, const sym *sy, int32_t pos)
{
    int32_t nx = sy[pos].next;
    if (nx < 0)
        return 0;
    const tok_merge_slot *m = dk_tok_merge_lookup(t, sy[pos].id, sy[nx].id);
    if (m)
        heap_push(heap, hn, (uint64_t)m->rank << 32 | (uint32_t)pos);
    return 0;
}

/* The model on one piece of bytes. */
static int bpe(dk_tok_scratch *s, const unsigned char *p, size_t n)
{
    const dk_tokenizer *t = s->tok;
    if (n == 0)
        return 0;
    if (n == 1)
        return push_id(s, t->byte_id[p[0]]);
    uint64_t h = dk_tok_hash(p, n);
    cache_slot *slot = &s->cache[h & (CACHE_SLOTS - 1)];
    uint32_t tag = (uint32_t)(h >> 32);
    if (n <= CACHE_KEY && slot->klen == n && slot->hash == tag && memcmp(slot->key, p, n) == 0)
        return push_ids(s, slot->ids, slot->nids);
    if (t->ignore_merges) {
        /* the reference looks the whole piece up first, in its ByteLevel spelling */
        if (grow((void **)&s->spell, &s->spell_cap, 2 * n, 1) < 0)
            return dk_error_set(s->err, DK_ENOMEM, NULL, 0, "out of memory");
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            const tok_entry *e = &t->ids[t->byte_id[p[i]]];
            memcpy(s->spell + k, t->arena + e->spell_off, e->spell_len);
            k += e->spell_len;
        }
        uint32_t id = dk_tok_vocab_lookup(t, s->spell, k);
        if (id != TOK_NONE)
            return push_id(s, id);
    }
    if (grow((void **)&s->syms, &s->syms_cap, n, sizeof *s->syms) < 0 ||
        grow((void **)&s->heap, &s->heap_cap, 3 * n + 4, sizeof *s->heap) < 0)
        return dk_error_set(s->err, DK_ENOMEM, NULL, 0, "out of memory");
    sym *sy = s->syms;
    uint64_t *heap = s->heap;
    size_t hn = 0;
    for (size_t i = 0; i < n; i++) {
        sy[i].id = t->byte_id[p[i]];
        sy[i].prev = (int32_t)i - 1;
        sy[i].next = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    for (size_t i = 0; i + 1 < n; i++)
        bpe_try_push(t, heap, &hn, sy, (int32_t)i);
    while (hn) {
        uint64_t top = heap_pop(heap, &hn);
        int32_t pos = (int32_t)(uint32_t)top;
        uint32_t rank = (uint32_t)(top >> 32);
        if (sy[pos].id == TOK_NONE)
            continue;
        int32_t nx = sy[pos].next;
        if (nx < 0)
            continue;
        const tok_merge_slot *m = dk_tok_merge_lookup(t, sy[pos].id, sy[nx].id);
        if (!m || m->rank != rank)
            continue; /* stale: one side has merged since */
        sy[pos].id = m->new_id;
        sy[nx].id = TOK_NONE;
        sy[pos].next = sy[nx].next;
        if (sy[nx].next >= 0)
            sy[sy[nx].next].prev = pos;
        if (sy[pos].prev >= 0)
            bpe_try_push(t, heap, &hn, sy, sy[pos].prev);
        bpe_try_push(t, heap, &hn, sy, pos);
    }
    size_t start = s->out->n, count = 0;
    for (int32_t i = 0; i >= 0; i = sy[i].next, count++)
        if (push_id(s, sy[i].id) < 0)
            return DK_ENOMEM;
    if (n <= CACHE_KEY && count <= CACHE_IDS) {
        slot->hash = tag;
        slot->klen = (uint8_t)n;
        slot->nids = (uint8_t)count;
        memcpy(slot->key, p, n);
        memcpy(slot->ids, s->out->ids + start, count * sizeof *slot->ids);
    }
    return 0;
}

/* ------------------------------------------------------------------ pre-tokenizers */

static int pretok(dk_tok_scratch *s, int level, const char *p, size_t n);

static int regex_fail(dk_tok_scratch *s, int rc)
{
    PCRE2_UCHAR msg[128];
    pcre2_get_error_message(rc, msg, sizeof msg);
    return dk_error_set(s->err, rc == PCRE2_ERROR_NOMEMORY || rc == PCRE2_ERROR_JIT_STACKLIMIT ||
                                rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT
                                    ? DK_ELIMIT : DK_EINVAL,
                        NULL, 0, "pre-tokenizer regex: %s", (const char *)msg);
}

/* Next match at or after *last_end, as Oniguruma's find_iter yields them. Returns 1 with
 * [*ms, *me), 0 when done, or a negative DK_E.... */
static int next_match(dk_tok_scratch *s, const pcre2_code *re, const char *p, size_t n,
                      size_t *last_end, int *have_last, size_t *last_match_end, size_t *ms, size_t *me)
{
    for (;;) {
        if (*last_end > n)
            return 0;
        int rc = pcre2_match(re, (PCRE2_SPTR)p, n, *last_end, PCRE2_NO_UTF_CHECK, s->md, s->mc);
        if (rc == PCRE2_ERROR_NOMATCH)
            return 0;
        if (rc < 0)
            return regex_fail(s, rc);
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
        size_t a = ov[0], b = ov[1];
        if (a == b && *have_last && *last_match_end == b) {
            *last_end += *last_end < n ? char_len((unsigned char)p[*last_end]) : 1;
            continue;
        }
        *last_end = b;
        *have_last = 1;
        *last_match_end = b;
        *ms = a;
        *me = b;
        return 1;
    }
}

static int emit(dk_tok_scratch *s, int level, const char *p, size_t a, size_t b)
{
    return b > a ? pretok(s, level + 1, p + a, b - a) : 0;
}

static int split_general(dk_tok_scratch *s, int level, const tok_pretok *pt, const char *p, size_t n)
{
    /* the reference's find_matches: gaps and matches covering the piece */
    size_t nr = 0, prev = 0, last_end = 0, last_match_end = 0, ms, me;
    int have_last = 0, rc;
    range **rv = &s->ranges[level];
    size_t *cap = &s->ranges_cap[level];
    while ((rc = next_match(s, pt->re, p, n, &last_end, &have_last, &last_match_end, &ms, &me)) > 0) {
        if (grow((void **)rv, cap, nr + 2, sizeof **rv) < 0)
            return dk_error_set(s->err, DK_ENOMEM, NULL, 0, "out of memory");
        if (prev != ms)
            (*rv)[nr++] = (range){ prev, ms, pt->invert };
        (*rv)[nr++] = (range){ ms, me, !pt->invert };
        prev = me;
    }
    if (rc < 0)
        return rc;
    if (grow((void **)rv, cap, nr + 1, sizeof **rv) < 0)
        return dk_error_set(s->err, DK_ENOMEM, NULL, 0, "out of memory");
    if (prev != n)
        (*rv)[nr++] = (range){ prev, n, pt->invert };
    range *r = *rv;
    size_t out = 0;
    int prev_match = 0;
    switch (pt->behavior) {
    case SPLIT_REMOVED:
        for (size_t i = 0; i < nr; i++)
            if (!r[i].match)
                r[out++] = r[i];
        break;
    case SPLIT_CONTIGUOUS:
        for (size_t i = 0; i < nr; i++) {
            if (out && r[i].match == prev_match)
                r[out - 1].end = r[i].end;
            else
                r[out++] = r[i];
            prev_match = r[i].match;
        }
        break;
    case SPLIT_MERGED_PREV:
        for (size_t i = 0; i < nr; i++) {
            int m = r[i].match;
            if (m && !prev_match && out)
                r[out - 1].end = r[i].end;
            else
                r[out++] = r[i];
            prev_match = m;
        }
        break;
    case SPLIT_MERGED_NEXT: {
        /* folded from the end, as the reference does */
        size_t w = nr;
        for (size_t k = nr; k-- > 0;) {
            int m = r[k].match;
            if (m && !prev_match && w < nr)
                r[w].start = r[k].start;
            else
                r[--w] = r[k];
            prev_match = m;
        }
        memmove(r, r + w, (nr - w) * sizeof *r);
        out = nr - w;
        break;
    }
    default: /* SPLIT_ISOLATED */
        out = nr;
        break;
    }
    for (size_t i = 0; i < out; i++) {
        /* deeper levels use other range buffers, so r stays valid */
        if ((rc = emit(s, level, p, s->ranges[level][i].start, s->ranges[level][i].end)) < 0)
            return rc;
    }
    return 0;
}

static int pretok(dk_tok_scratch *s, int level, const char *p, size_t n)
{
    const dk_tokenizer *t = s->tok;
    if (level == t->n_pretok)
        return bpe(s, (const unsigned char *)p, n);
    const tok_pretok *pt = &t->pretok[level];
    if (pt->kind == PT_BYTELEVEL && pt->add_prefix_space && p[0] != ' ') {
        if (grow((void **)&s->pfx, &s->pfx_cap, n + 1, 1) < 0)
            return dk_error_set(s->err, DK_ENOMEM, NULL, 0, "out of memory");
        s->pfx[0] = ' ';
        memmove(s->pfx + 1, p, n);
        p = s->pfx;
        n++;
    }
    if (!pt->re)
        return pretok(s, level + 1, p, n);
    if (pt->behavior != SPLIT_ISOLATED)
        return split_general(s, level, pt, p, n);
    /* Isolated (every real file): gaps and matches alike are pieces, streamed */
    size_t prev = 0, last_end = 0, last_match_end = 0, ms, me;
    int have_last = 0, rc;
    while ((rc = next_match(s, pt->re, p, n, &last_end, &have_last, &last_match_end, &ms, &me)) > 0) {
        if ((rc = emit(s, level, p, prev, ms)) < 0 || (rc = emit(s, level, p, ms, me)) < 0)
            return rc;
        prev = me;
    }
    if (rc < 0)
        return rc;
    return emit(s, level, p, prev, n);
}

/* ------------------------------------------------------------------ normalizers */

/* Characters the reference's normalizer (the unicode-normalization-alignments crate in
 * Hugging Face `tokenizers`, older Unicode tables than ICU 72's) leaves alone as starters
 * (combining class 0, no composition) while ICU gives them their Unicode data, so nothing
 * reorders or composes across them. Found by running every character with a non-zero
 * class through the Qwen3 tokenizer between marks of known classes, and every canonical
 * decomposition newer than Unicode 9 (only U+11938 = U+11935 U+11930, which the reference
 * does not compose); checked by tests/scripts/t_tokenizer_reference.sh. Sorted. */
static const uint32_t ref_starters[] = {
    0x7FD, 0x898, 0x899, 0x89A, 0x89B, 0x89C, 0x89D, 0x89E, 0x89F, 0x8CA, 0x8CB, 0x8CC,
    0x8CD, 0x8CE, 0x8CF, 0x8D0, 0x8D1, 0x8D2, 0x8D3, 0x9FE, 0xC3C, 0xD3B, 0xD3C, 0xEBA,
    0x1715, 0x1ABF, 0x1AC0, 0x1AC1, 0x1AC2, 0x1AC3, 0x1AC4, 0x1AC5, 0x1AC6, 0x1AC7, 0x1AC8,
    0x1AC9, 0x1ACA, 0x1ACB, 0x1ACC, 0x1ACD, 0x1ACE, 0x1DF6, 0x1DF7, 0x1DF8, 0x1DF9, 0x1DFA,
    0xA82C, 0x10D24, 0x10D25, 0x10D26, 0x10D27, 0x10EAB, 0x10EAC, 0x10EFD, 0x10EFE,
    0x10EFF, 0x10F46, 0x10F47, 0x10F48, 0x10F49, 0x10F4A, 0x10F4B, 0x10F4C, 0x10F4D,
    0x10F4E, 0x10F4F, 0x10F50, 0x10F82, 0x10F83, 0x10F84, 0x10F85, 0x11070, 0x1133B,
    0x1145E, 0x11839, 0x1183A, 0x11930, 0x11938, 0x1193D, 0x1193E, 0x11943, 0x119E0, 0x11A34, 0x11A47,
    0x11A99, 0x11D42, 0x11D44, 0x11D45, 0x11D97, 0x11F41, 0x11F42, 0x16FF0, 0x16FF1,
    0x1E08F, 0x1E130, 0x1E131, 0x1E132, 0x1E133, 0x1E134, 0x1E135, 0x1E136, 0x1E2AE,
    0x1E2EC, 0x1E2ED, 0x1E2EE, 0x1E2EF, 0x1E4EC, 0x1E4ED, 0x1E4EE, 0x1E4EF
};

static int is_ref_starter(uint32_t c)
{
    size_t lo = 0, hi = sizeof ref_starters / sizeof ref_starters[0];
    if (c < ref_starters[0])
        return 0;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ref_starters[mid] == c)
            return 1;
        if (ref_starters[mid] < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* 1 when no character of p[0..n) can change under nz, nor change a neighbour. */
static int all_inert(const UNormalizer2 *nz, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if ((unsigned char)p[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t c;
        i += dk_utf8_decode(p + i, n - i, &c);
        if (!unorm2_isInert(nz, (UChar32)c))
            return 0;
    }
    return 1;
}

/* Appends nz(p[0..n)) to the scratch buffer `which` at *len. */
static int icu_append(dk_tok_scratch *s, const UNormalizer2 *nz, const char *p, size_t n, int which, size_t *len)
{
    UErrorCode ue = U_ZERO_ERROR;
    int32_t l16 = 0;
    if (n > INT32_MAX / 4)
        return dk_error_set(s->err, DK_ELIMIT, NULL, 0, "text too long to normalize");
    if (grow((void **)&s->u16a, &s->u16a_cap, n + 1, sizeof(UChar)) < 0)
        return dk_error_set(s->err, DK_ENOMEM, NULL, 0, "out of memory");
    u_strFromUTF8(s->u16a, (int32_t)s->u16a_cap, &l16, p, (int32_t)n, &ue);
    if (U_FAILURE(ue))
        return dk_error_set(s->err, DK_EICU, NULL, 0, "utf-16 conversion: %s", u_errorName(ue));
    int32_t ln;
    for (;;) {
        ue = U_ZERO_ERROR;
        ln = unorm2_normalize(nz, s->u16a, l16, s->u16b, (int32_t)s->u16b_cap, &ue);
        if (ue == U_BUFFER_OVERFLOW_ERROR) {
            if (grow((void **)&s->u16b, &s->u16b_cap, (size_t)ln + 1, sizeof(UChar)) < 0)
                return dk_error_set(s->err, DK_ENOMEM, NULL, 0, "out of memory");
            continue;
        }
        break;
    }
    if (U_FAILURE(ue))
        return dk_error_set(s->err, DK_EICU, NULL, 0, "normalize: %s", u_errorName(ue));
    int32_t l8 = 0;
    char **buf = &s->norm[which];
    size_t *cap = &s->norm_cap[which];
    if (grow((void **)buf, cap, *len + (size_t)ln * 3 + 1, 1) < 0)
        return dk_error_set(s->err, DK_ENOMEM, NULL, 0, "out of memory");
    ue = U_ZERO_ERROR;
    u_strToUTF8(*buf + *len, (int32_t)(*cap - *len), &l8, s->u16b, ln, &ue);
    if (U_FAILURE(ue))
        return dk_error_set(s->err, DK_EICU, NULL, 0, "utf-8 conversion: %s", u_errorName(ue));
    *len += (size_t)l8;
    return 0;
}

/* Normalizes p[0..n) through the tokenizer's normalizers; *out is p itself when nothing
 * changes (all characters inert), else a scratch buffer. The reference's starters split
 * the text into runs normalized apart, since nothing reorders or composes across them. */
static int normalize(dk_tok_scratch *s, const char *p, size_t n, const char **out, size_t *on)
{
    const dk_tokenizer *t = s->tok;
    int which = 0, rc;
    for (int k = 0; k < t->n_norm; k++) {
        const UNormalizer2 *nz = t->norm_icu[k];
        if (all_inert(nz, p, n))
            continue;
        size_t len = 0, run = 0, i = 0;
        while (i < n) {
            uint32_t c;
            size_t l = dk_utf8_decode(p + i, n - i, &c);
            if (c >= 0x7FD && is_ref_starter(c)) {
                if ((rc = icu_append(s, nz, p + run, i - run, which, &len)) < 0)
                    return rc;
                if (grow((void **)&s->norm[which], &s->norm_cap[which], len + l + 1, 1) < 0)
                    return dk_error_set(s->err, DK_ENOMEM, NULL, 0, "out of memory");
                memcpy(s->norm[which] + len, p + i, l);
                len += l;
                run = i + l;
            }
            i += l;
        }
        if ((rc = icu_append(s, nz, p + run, n - run, which, &len)) < 0)
            return rc;
        p = s->norm[which];
        n = len;
        which ^= 1;
    }
    *out = p;
    *on = n;
    return 0;
}

/* ------------------------------------------------------------------ added tokens */

/* Rust regex's \w and \s, which the reference's single_word / lstrip / rstrip use. */
static int is_word_char(UChar32 c)
{
    if (c < 0x80)
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    int8_t ty = u_charType(c);
    return u_hasBinaryProperty(c, UCHAR_ALPHABETIC) || ty == U_NON_SPACING_MARK ||
           ty == U_ENCLOSING_MARK || ty == U_COMBINING_SPACING_MARK ||
           ty == U_DECIMAL_DIGIT_NUMBER || ty == U_CONNECTOR_PUNCTUATION ||
           u_hasBinaryProperty(c, UCHAR_JOIN_CONTROL);
}

static int is_space_char(UChar32 c) { return u_hasBinaryProperty(c, UCHAR_WHITE_SPACE); }

static UChar32 last_char(const char *p, size_t n)
{
    size_t i = n - 1;
    while (i > 0 && ((unsigned char)p[i] & 0xC0) == 0x80)
        i--;
    uint32_t c;
    dk_utf8_decode(p + i, n - i, &c);
    return (UChar32)c;
}

/* Longest pattern of set starting at p[i], as an index into set->tokens; -1 if none. */
static int32_t trie_match(const tok_match_set *set, const char *p, size_t n, size_t i, size_t *end)
{
    int32_t cur = 0, best = -1;
    for (size_t k = i; k < n; k++) {
        int32_t ch = set->nodes[cur].first_child;
        while (ch >= 0 && set->nodes[ch].byte != (unsigned char)p[k])
            ch = set->nodes[ch].next_sibling;
        if (ch < 0)
            break;
        cur = ch;
        if (set->nodes[cur].added >= 0) {
            best = set->nodes[cur].added;
            *end = k + 1;
        }
    }
    return best;
}

typedef int (*piece_fn)(dk_tok_scratch *s, const char *p, size_t n);

/* The reference's find_matches + split_with_indices over one piece: text between
 * tokens goes to fn, tokens to the output. */
static int split_added(dk_tok_scratch *s, const tok_match_set *set, const char *p, size_t n, piece_fn fn)
{
    if (!set->n)
        return n ? fn(s, p, n) : 0;
    size_t start_offset = 0, i = 0;
    int rc;
    while (i < n) {
        if (!set->first[(unsigned char)p[i]]) {
            i++;
            continue;
        }
        size_t stop;
        int32_t k = trie_match(set, p, n, i, &stop);
        if (k < 0) {
            i++;
            continue;
        }
        const tok_added *a = &set->tokens[k];
        size_t start = i;
        i = stop; /* the next search starts at this match's end */
        if (a->single_word) {
            int start_space = start == 0 || !is_word_char(last_char(p, start));
            int stop_space = stop == n;
            if (!stop_space) {
                uint32_t c;
                dk_utf8_decode(p + stop, n - stop, &c);
                stop_space = !is_word_char((UChar32)c);
            }
            if (!start_space || !stop_space)
                continue;
        }
        if (a->lstrip) {
            size_t ns = start;
            while (ns > 0) {
                size_t b = ns - 1;
                while (b > 0 && ((unsigned char)p[b] & 0xC0) == 0x80)
                    b--;
                uint32_t c;
                dk_utf8_decode(p + b, ns - b, &c);
                if (!is_space_char((UChar32)c))
                    break;
                ns = b;
            }
            start = ns > start_offset ? ns : start_offset;
        }
        if (a->rstrip) {
            while (stop < n) {
                uint32_t c;
                size_t l = dk_utf8_decode(p + stop, n - stop, &c);
                if (!is_space_char((UChar32)c))
                    break;
                stop += l;
            }
        }
        if (start_offset < start && (rc = fn(s, p + start_offset, start - start_offset)) < 0)
            return rc;
        if ((rc = push_id(s, a->id)) < 0)
            return rc;
        start_offset = stop;
    }
    if (start_offset < n)
        return fn(s, p + start_offset, n - start_offset);
    return 0;
}

static int after_norm(dk_tok_scratch *s, const char *p, size_t n)
{
    return pretok(s, 0, p, n);
}

static int raw_piece(dk_tok_scratch *s, const char *p, size_t n)
{
    const char *q = p;
    size_t qn = n;
    int rc = normalize(s, p, n, &q, &qn);
    if (rc < 0)
        return rc;
    if (!qn)
        return 0;
    return split_added(s, &s->tok->norm_set, q, qn, after_norm);
}

/* ------------------------------------------------------------------ entry points */

int dk_tokenizer_encode(const dk_tokenizer *tok, dk_tok_scratch *scratch, const char *text,
                        size_t len, unsigned flags, dk_tok_ids *out, dk_error *err)
{
    dk_tok_scratch *own = NULL;
    int rc;
    out->n = 0;
    size_t bad;
    if (dk_utf8_validate(text, len, &bad) != 0)
        return dk_error_set(err, DK_EUTF8, NULL, 0, "invalid UTF-8 at byte %zu", bad);
    if (!scratch) {
        if ((rc = dk_tok_scratch_new(&own, tok, err)) < 0)
            return rc;
        scratch = own;
    }
    assert(scratch->tok == tok); /* its cache holds this tokenizer's ids */
    scratch->out = out;
    scratch->err = err;
    if ((flags & DK_TOK_ADD_SPECIAL) && tok->n_post_before)
        rc = push_ids(scratch, tok->post_before, tok->n_post_before);
    else
        rc = 0;
    if (rc == 0)
        rc = split_added(scratch, &tok->raw_set, text, len, raw_piece);
    if (rc == 0 && (flags & DK_TOK_ADD_SPECIAL) && tok->n_post_after)
        rc = push_ids(scratch, tok->post_after, tok->n_post_after);
    scratch->out = NULL;
    scratch->err = NULL;
    dk_tok_scratch_free(own);
    return rc < 0 ? rc : 0;
}

/* Length of the valid UTF-8 sequence at p, or 0 with *bad the length of its maximal
 * invalid prefix (Unicode's "maximal subpart", as Rust's from_utf8_lossy counts). */
static size_t utf8_step(const unsigned char *p, size_t n, size_t *bad)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c == 0xE0) { need = 2; lo = 0xA0; }
    else if (c >= 0xE1 && c <= 0xEC) need = 2;
    else if (c == 0xED) { need = 2; hi = 0x9F; }
    else if (c >= 0xEE && c <= 0xEF) need = 2;
    else if (c == 0xF0) { need = 3; lo = 0x90; }
    else if (c >= 0xF1 && c <= 0xF3) need = 3;
    else if (c == 0xF4) { need = 3; hi = 0x8F; }
    else {
        *bad = 1;
        return 0;
    }
    size_t i = 1;
    for (; i <= need; i++) {
        if (i >= n) {
            *bad = i;
            return 0;
        }
        unsigned char b = p[i];
        unsigned char l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
        if (b < l || b > h) {
            *bad = i;
            return 0;
        }
    }
    return need + 1;
}

int dk_tokenizer_decode(const dk_tokenizer *tok, const uint32_t *ids, size_t n, unsigned flags,
                        dk_tok_text *out, dk_error *err)
{
    size_t total = 0;
    out->len = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] >= tok->n_ids || tok->ids[ids[i]].spell_len == TOK_NONE)
            return dk_error_set(err, DK_ERANGE, NULL, 0, "token id %u (at index %zu) is not in the vocabulary",
                                ids[i], i);
        total += tok->ids[ids[i]].dec_len;
    }
    /* the joined bytes go after room for the worst case of the text (every byte an
     * invalid one, each becoming the 3 bytes of U+FFFD) */
    if (grow((void **)&out->s, &out->cap, total * 4 + 1, 1) < 0)
        return dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
    char *raw = out->s + total * 3 + 1;
    size_t rn = 0;
    for (size_t i = 0; i < n; i++) {
        const tok_entry *e = &tok->ids[ids[i]];
        if ((flags & DK_TOK_SKIP_SPECIAL) && (e->flags & TOKID_SPECIAL))
            continue;
        memcpy(raw + rn, tok->arena + e->dec_off, e->dec_len);
        rn += e->dec_len;
    }
    size_t w = 0, r = 0;
    const unsigned char *u = (const unsigned char *)raw;
    while (r < rn) {
        size_t bad = 0, k = utf8_step(u + r, rn - r, &bad);
        if (k) {
            memcpy(out->s + w, raw + r, k);
            w += k;
            r += k;
        } else {
            memcpy(out->s + w, "\xEF\xBF\xBD", 3);
            w += 3;
            r += bad;
        }
    }
    out->s[w] = '\0';
    out->len = w;
    return 0;
}

void dk_tok_ids_free(dk_tok_ids *v)
{
    if (!v)
        return;
    free(v->ids);
    v->ids = NULL;
    v->n = v->cap = 0;
}

void dk_tok_text_free(dk_tok_text *t)
{
    if (!t)
        return;
    free(t->s);
    t->s = NULL;
    t->len = t->cap = 0;
}
