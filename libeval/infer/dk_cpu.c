/* dk_cpu: the CPU backend. A forward pass over a chunk of tokens whose keys and
 * values go to a KV cache; each token carries its position and the first cache slot
 * it may see (the start of its sequence), so packed sequences never attend to each
 * other and a chunk of one long sequence sees the chunks before it.
 *
 * Invariant (batch invariance): every per-token quantity is computed from that
 * token's row alone, in an order that does not depend on which other tokens share
 * the chunk: matrix rows by dk_matmul's fixed summation order, attention per
 * (token, head), MoE experts summed per token in expert-id order.
 * Activations are f32; reductions of norms and softmax sums use double.
 */
#include "dk_infer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define CHUNK 256        /* tokens per forward pass: bounds activation memory */
#define VOCAB_CHUNK 8192 /* output rows per pass: the logits of a chunk's tokens over a slice of
                            the vocabulary are combined as they go, so the output matrix is
                            read once per chunk and no n x vocabulary array exists */

typedef struct kvcache {
    float *k, *v;        /* [n_layer][cap][kv_dim] */
    size_t cap, kv_dim;
} kvcache;

typedef struct scratch {
    float *x, *xn, *q, *att, *kt, *vt, *g, *u, *moe_out, *router, *xs, *ys, *scores;
    int   *rid, *sel;
    float *rw, *selw;
    size_t scores_per_thread;
    dk_mm_ws mm;
} scratch;

static void scratch_free(scratch *s)
{
    free(s->x); free(s->xn); free(s->q); free(s->att); free(s->kt); free(s->vt);
    free(s->g); free(s->u); free(s->moe_out); free(s->router); free(s->xs); free(s->ys);
    free(s->scores); free(s->rid); free(s->sel); free(s->rw); free(s->selw);
    dk_mm_ws_free(&s->mm);
    memset(s, 0, sizeof *s);
}

static int scratch_alloc(const dk_model *m, scratch *s, int n, size_t cap)
{
    const dk_hparams *hp = &m->hp;
    size_t d = (size_t)hp->n_embd, qd = (size_t)hp->n_head * hp->head_dim, kvd = (size_t)hp->n_head_kv * hp->head_dim;
    size_t ff = (size_t)hp->n_ff;
    size_t fs = (size_t)hp->n_ff_exp * (size_t)(hp->n_expert_shared > 1 ? hp->n_expert_shared : 1);
    if (fs > ff) ff = fs;
    size_t ne = hp->n_expert > 0 ? (size_t)hp->n_expert : 1, ku = hp->n_expert_used > 0 ? (size_t)hp->n_expert_used : 1;
    size_t nn = (size_t)n;
    memset(s, 0, sizeof *s);
    s->scores_per_thread = cap;
    s->x = malloc(nn * d * 4);
    s->xn = malloc(nn * d * 4);
    s->q = malloc(nn * qd * 4);
    s->att = malloc(nn * qd * 4);
    s->kt = malloc(nn * kvd * 4);
    s->vt = malloc(nn * kvd * 4);
    s->g = malloc(nn * ff * 4);
    s->u = malloc(nn * ff * 4);
    s->moe_out = malloc(nn * d * 4);
    s->router = malloc(nn * ne * 4);
    s->xs = malloc(nn * d * 4);
    s->ys = malloc(nn * d * 4);
    s->scores = malloc((size_t)dk_threads_max() * cap * 4);
    s->rid = malloc(nn * ku * sizeof(int));
    s->rw = malloc(nn * ku * 4);
    s->sel = malloc(nn * sizeof(int));
    s->selw = malloc(nn * 4);
    size_t kmax = d > qd ? d : qd;
    if (ff > kmax) kmax = ff;
    if (!s->x || !s->xn || !s->q || !s->att || !s->kt || !s->vt || !s->g || !s->u || !s->moe_out || !s->router ||
        !s->xs || !s->ys || !s->scores || !s->rid || !s->rw || !s->sel || !s->selw ||
        dk_mm_ws_init(&s->mm, n > 0 ? n : 1, (int64_t)kmax)) {
        scratch_free(s);
        return DK_ENOMEM;
    }
    return 0;
}

static int kv_alloc(const dk_model *m, kvcache *c, size_t cap)
{
    c->kv_dim = (size_t)m->hp.n_head_kv * m->hp.head_dim;
    c->cap = cap;
    size_t n = (size_t)m->hp.n_layer * cap * c->kv_dim;
    c->k = malloc(n * 4 + 4);
    c->v = malloc(n * 4 + 4);
    if (!c->k || !c->v) {
        free(c->k);
        free(c->v);
        c->k = c->v = NULL;
        return DK_ENOMEM;
    }
    return 0;
}

static void kv_free(kvcache *c)
{
    free(c->k);
    free(c->v);
    c->k = c->v = NULL;
}

static void rmsnorm(const float *x, const float *w, int n, float eps, float *out)
{
    double ss = 0;
    for (int i = 0; i < n; i++)
        ss += (double)x[i] * x[i];
    float r = (float)(1.0 / sqrt(ss / n + eps));
    for (int i = 0; i < n; i++)
        out[i] = x[i] * r * w[i];
}

static void rope(const dk_model *m, float *v, int n_heads, int pos)
{
    int hd = m->hp.head_dim, half = hd / 2;
    for (int i = 0; i < half; i++) {
        double a = (double)pos * m->rope_inv_freq[i];
        float c = (float)cos(a) * m->rope_mscale, s = (float)sin(a) * m->rope_mscale;
        for (int h = 0; h < n_heads; h++) {
            float *p = v + (size_t)h * hd;
            int i0 = m->hp.rope_interleaved ? 2 * i : i, i1 = m->hp.rope_interleaved ? 2 * i + 1 : i + half;
            float x0 = p[i0], x1 = p[i1];
            p[i0] = x0 * c - x1 * s;
            p[i1] = x0 * s + x1 * c;
        }
    }
}

static void add_bias(float *y, const float *b, int n, int dim)
{
    if (!b)
        return;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < dim; j++)
            y[(size_t)i * dim + j] += b[j];
}

/* y = down(silu(gate(x)) * up(x)) for n rows of x. */
static void swiglu_ffn(const dk_tensor *wg, const dk_tensor *wu, const dk_tensor *wd, const float *x, int n,
                       float *g, float *u, float *y, const dk_mm_ws *ws)
{
    int64_t ff = wg->rows;
    dk_matmul(x, n, wg, g, ws);
    dk_matmul(x, n, wu, u, ws);
    dk_swiglu(g, u, (size_t)n * (size_t)ff);
    dk_matmul(g, n, wd, y, ws);
}

static void moe_ffn(const dk_model *m, const dk_layer *L, const float *xn, int n, scratch *s, float *out)
{
    const dk_hparams *hp = &m->hp;
    int d = hp->n_embd, ne = hp->n_expert, ku = hp->n_expert_used;
    dk_matmul(xn, n, &L->gate_inp, s->router, &s->mm);
    for (int t = 0; t < n; t++)
        dk_moe_route(s->router + (size_t)t * ne, ne, ku, hp->norm_topk, hp->routed_scale, s->rid + (size_t)t * ku,
                     s->rw + (size_t)t * ku);
    memset(out, 0, (size_t)n * d * 4);
    for (int e = 0; e < ne; e++) {
        int cnt = 0;
        for (int t = 0; t < n; t++)
            for (int j = 0; j < ku; j++)
                if (s->rid[(size_t)t * ku + j] == e) {
                    s->sel[cnt] = t;
                    s->selw[cnt] = s->rw[(size_t)t * ku + j];
                    memcpy(s->xs + (size_t)cnt * d, xn + (size_t)t * d, (size_t)d * 4);
                    cnt++;
                }
        if (!cnt)
            continue;
        swiglu_ffn(&L->exp_gate[e], &L->exp_up[e], &L->exp_down[e], s->xs, cnt, s->g, s->u, s->ys, &s->mm);
        for (int c = 0; c < cnt; c++) {
            float *o = out + (size_t)s->sel[c] * d;
            const float *y = s->ys + (size_t)c * d;
            for (int i = 0; i < d; i++)
                o[i] += s->selw[c] * y[i];
        }
    }
    if (L->has_shared) {
        swiglu_ffn(&L->sh_gate, &L->sh_up, &L->sh_down, xn, n, s->g, s->u, s->ys, &s->mm);
        for (size_t i = 0; i < (size_t)n * d; i++)
            out[i] += s->ys[i];
    }
}

/* Forward n tokens stored at cache slots base..base+n-1; lo[i] is the first slot token
 * i may attend to. Writes the final-normed hidden states to h (n x n_embd). */
static void forward(const dk_model *m, kvcache *c, scratch *s, int n, const int32_t *tok, const int *pos,
                    const size_t *lo, size_t base, float *h)
{
    const dk_hparams *hp = &m->hp;
    int d = hp->n_embd, hd = hp->head_dim, nh = hp->n_head, nkv = hp->n_head_kv;
    size_t qd = (size_t)nh * hd, kvd = c->kv_dim;
    float scale = 1.0f / sqrtf((float)hd);
    for (int t = 0; t < n; t++)
        dk_tensor_row_f32(&m->tok_embd, tok[t], s->x + (size_t)t * d);
    for (int l = 0; l < hp->n_layer; l++) {
        const dk_layer *L = &m->layers[l];
        float *kc = c->k + (size_t)l * c->cap * kvd, *vc = c->v + (size_t)l * c->cap * kvd;
        for (int t = 0; t < n; t++)
            rmsnorm(s->x + (size_t)t * d, L->attn_norm, d, hp->rms_eps, s->xn + (size_t)t * d);
        dk_matmul(s->xn, n, &L->wq, s->q, &s->mm);
        dk_matmul(s->xn, n, &L->wk, s->kt, &s->mm);
        dk_matmul(s->xn, n, &L->wv, s->vt, &s->mm);
        add_bias(s->q, L->bq, n, (int)qd);
        add_bias(s->kt, L->bk, n, (int)kvd);
        add_bias(s->vt, L->bv, n, (int)kvd);
        for (int t = 0; t < n; t++) {
            float *q = s->q + (size_t)t * qd, *k = s->kt + (size_t)t * kvd;
            if (L->q_norm) {
                for (int hh = 0; hh < nh; hh++)
                    rmsnorm(q + (size_t)hh * hd, L->q_norm, hd, hp->rms_eps, q + (size_t)hh * hd);
                for (int hh = 0; hh < nkv; hh++)
                    rmsnorm(k + (size_t)hh * hd, L->k_norm, hd, hp->rms_eps, k + (size_t)hh * hd);
            }
            rope(m, q, nh, pos[t]);
            rope(m, k, nkv, pos[t]);
            memcpy(kc + (base + t) * kvd, k, kvd * 4);
            memcpy(vc + (base + t) * kvd, s->vt + (size_t)t * kvd, kvd * 4);
        }
        int group = nh / nkv;
#pragma omp parallel for schedule(dynamic, 4)
        for (int th = 0; th < n * nh; th++) {
            int t = th / nh, hh = th % nh, kh = hh / group;
            const float *q = s->q + (size_t)t * qd + (size_t)hh * hd;
            size_t j0 = lo[t];
            dk_attend(q, kc + j0 * kvd + (size_t)kh * hd, vc + j0 * kvd + (size_t)kh * hd, kvd, (int)(base + t + 1 - j0),
                      hd, scale, s->scores + (size_t)dk_thread_num() * s->scores_per_thread,
                      s->att + (size_t)t * qd + (size_t)hh * hd);
        }
        dk_matmul(s->att, n, &L->wo, s->xs, &s->mm);
        for (size_t i = 0; i < (size_t)n * d; i++)
            s->x[i] += s->xs[i];
        for (int t = 0; t < n; t++)
            rmsnorm(s->x + (size_t)t * d, L->ffn_norm, d, hp->rms_eps, s->xn + (size_t)t * d);
        if (L->is_moe) {
            moe_ffn(m, L, s->xn, n, s, s->moe_out);
        } else {
            swiglu_ffn(&L->ffn_gate, &L->ffn_up, &L->ffn_down, s->xn, n, s->g, s->u, s->moe_out, &s->mm);
        }
        for (size_t i = 0; i < (size_t)n * d; i++)
            s->x[i] += s->moe_out[i];
    }
    for (int t = 0; t < n; t++)
        rmsnorm(s->x + (size_t)t * d, m->output_norm, d, hp->rms_eps, h + (size_t)t * d);
}

/* Merges row[0..n) (ids id0..) into the k largest seen so far (*have of them, highest
 * first). Slices come in increasing id order and only a strictly larger value moves
 * an entry, so ties go to the lower id. */
static void top_k_merge(const float *row, int64_t n, int64_t id0, int k, int32_t *ids, float *vals, int *have)
{
    for (int64_t i = 0; i < n; i++) {
        float x = row[i];
        if (*have == k && !(x > vals[k - 1]))
            continue;
        int p = *have < k ? (*have)++ : k - 1;
        while (p > 0 && x > vals[p - 1]) {
            vals[p] = vals[p - 1];
            ids[p] = ids[p - 1];
            p--;
        }
        vals[p] = x;
        ids[p] = (int32_t)(id0 + i);
    }
}

/* log(e^a + e^b) without overflow. */
static double log_add_exp(double a, double b)
{
    if (a < b) {
        double t = a;
        a = b;
        b = t;
    }
    return isinf(a) ? a : a + log1p(exp(b - a));
}

static void set_threads(const dk_model *m)
{
#ifdef _OPENMP
    if (m->n_threads > 0)
        omp_set_num_threads(m->n_threads);
#else
    (void)m;
#endif
}

static int cpu_score(dk_model *m, const dk_score_batch *b, const dk_score_opts *o, dk_score_out *out, dk_error *err)
{
    const dk_hparams *hp = &m->hp;
    size_t n = b->n_seq ? b->seq_start[b->n_seq] : 0;
    int d = hp->n_embd, k = o->top_k;
    int64_t nv = hp->n_vocab;
    kvcache c = {0};
    scratch s = {0};
    float *h = NULL, *logits = NULL, *target = NULL;
    double *lse = NULL;
    int *pos = NULL, *seq = NULL, *lrow = NULL, *have = NULL;
    size_t *lo = NULL;
    int rc = 0;
    set_threads(m);
    if (out->pooled)
        memset(out->pooled, 0, (size_t)b->n_seq * d * 4);
    if (out->logprob)
        memset(out->logprob, 0, n * 4);
    if (n == 0)
        return 0;
    int chunk = n < CHUNK ? (int)n : CHUNK;
    if (kv_alloc(m, &c, n) || scratch_alloc(m, &s, chunk, n) || !(h = malloc((size_t)chunk * d * 4)) ||
        !(logits = malloc((size_t)chunk * (nv < VOCAB_CHUNK ? nv : VOCAB_CHUNK) * 4)) ||
        !(target = malloc((size_t)chunk * sizeof *target)) || !(lse = malloc((size_t)chunk * sizeof *lse)) ||
        !(have = malloc((size_t)chunk * sizeof *have)) || !(pos = malloc(n * sizeof *pos)) ||
        !(seq = malloc(n * sizeof *seq)) || !(lo = malloc(n * sizeof *lo)) ||
        !(lrow = malloc((size_t)chunk * sizeof *lrow))) {
        rc = dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory for a batch of %zu tokens", n);
        goto out;
    }
    for (int q = 0; q < b->n_seq; q++)
        for (size_t j = b->seq_start[q]; j < b->seq_start[q + 1]; j++) {
            pos[j] = (int)(j - b->seq_start[q]);
            seq[j] = q;
            lo[j] = b->seq_start[q];
        }
    for (size_t base = 0; base < n; base += (size_t)chunk) {
        int nc = n - base < (size_t)chunk ? (int)(n - base) : chunk;
        forward(m, &c, &s, nc, b->tokens + base, pos + base, lo + base, base, h);
        if (out->pooled && o->pool != DK_POOL_NONE)
            for (int t = 0; t < nc; t++) {
                size_t j = base + t;
                int q = seq[j];
                size_t len = b->seq_start[q + 1] - b->seq_start[q];
                float *pd = out->pooled + (size_t)q * d;
                const float *ht = h + (size_t)t * d;
                if (o->pool == DK_POOL_MEAN)
                    for (int i = 0; i < d; i++)
                        pd[i] += ht[i] / (float)len;
                else if (j + 1 == b->seq_start[q + 1])
                    memcpy(pd, ht, (size_t)d * 4);
            }
        /* Rows that need logits: a next token to score, or a top-k to report. */
        int nl = 0;
        for (int t = 0; t < nc; t++) {
            size_t j = base + t;
            int has_next = j + 1 < b->seq_start[seq[j] + 1];
            if ((has_next && out->logprob) || (k > 0 && out->top_id))
                lrow[nl++] = t;
        }
        for (int r = 0; r < nl; r++) {
            memcpy(s.xn + (size_t)r * d, h + (size_t)lrow[r] * d, (size_t)d * 4);
            have[r] = 0;
        }
        for (int64_t v0 = 0; nl > 0 && v0 < nv; v0 += VOCAB_CHUNK) {
            dk_tensor slice = m->output;
            slice.rows = nv - v0 < VOCAB_CHUNK ? nv - v0 : VOCAB_CHUNK;
            slice.data += (size_t)v0 * slice.row_bytes;
            dk_matmul(s.xn, nl, &slice, logits, &s.mm);
#pragma omp parallel for schedule(static)
            for (int r = 0; r < nl; r++) {
                size_t j = base + (size_t)lrow[r];
                const float *row = logits + (size_t)r * slice.rows;
                double l = dk_logsumexp(row, slice.rows);
                lse[r] = v0 == 0 ? l : log_add_exp(lse[r], l);
                if (j + 1 < b->seq_start[seq[j] + 1] && b->tokens[j + 1] >= v0 && b->tokens[j + 1] - v0 < slice.rows)
                    target[r] = row[b->tokens[j + 1] - v0];
                if (k > 0 && out->top_id)
                    top_k_merge(row, slice.rows, v0, k, out->top_id + j * k, out->top_logit + j * k, &have[r]);
            }
        }
        for (int r = 0; r < nl; r++) {
            size_t j = base + (size_t)lrow[r];
            if (out->logprob && j + 1 < b->seq_start[seq[j] + 1])
                out->logprob[j + 1] = (float)(target[r] - lse[r]);
        }
    }
out:
    kv_free(&c);
    scratch_free(&s);
    free(h);
    free(logits);
    free(target);
    free(lse);
    free(have);
    free(pos);
    free(seq);
    free(lo);
    free(lrow);
    return rc;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int32_t argmax(const float *row, int64_t nv)
{
    int64_t best = 0;
    for (int64_t i = 1; i < nv; i++)
        if (row[i] > row[best])
            best = i;
    return (int32_t)best;
}

static int cpu_generate(dk_model *m, const int32_t *prompt, size_t n_prompt, const dk_gen_opts *o, int32_t *new_ids,
                        dk_gen_result *res, dk_error *err)
{
    const dk_hparams *hp = &m->hp;
    double t0 = now_s();
    size_t cap = n_prompt + (size_t)o->max_new;
    int d = hp->n_embd;
    int64_t nv = hp->n_vocab;
    kvcache c = {0};
    scratch s = {0};
    float *h = NULL, *logits = NULL;
    int *pos = NULL;
    size_t *lo = NULL;
    int rc = 0;
    set_threads(m);
    int chunk = n_prompt < CHUNK ? (int)n_prompt : CHUNK;
    if (kv_alloc(m, &c, cap) || scratch_alloc(m, &s, chunk, cap) || !(h = malloc((size_t)chunk * d * 4)) ||
        !(logits = malloc((size_t)nv * 4)) || !(pos = malloc(cap * sizeof *pos)) || !(lo = calloc(cap, sizeof *lo))) {
        rc = dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory for a prompt of %zu tokens", n_prompt);
        goto out;
    }
    for (size_t j = 0; j < cap; j++)
        pos[j] = (int)j;
    int last = 0;
    for (size_t base = 0; base < n_prompt; base += (size_t)chunk) {
        int nc = n_prompt - base < (size_t)chunk ? (int)(n_prompt - base) : chunk;
        forward(m, &c, &s, nc, prompt + base, pos + base, lo + base, base, h);
        last = nc - 1;
    }
    size_t at = n_prompt;
    for (;;) {
        dk_matmul(h + (size_t)last * d, 1, &m->output, logits, &s.mm);
        int32_t next = argmax(logits, nv);
        if (res->n_new == 0)
            res->ttft_s = now_s() - t0;
        new_ids[res->n_new++] = next;
        int stop = 0;
        for (int i = 0; i < o->n_stop; i++)
            stop |= o->stop_ids[i] == next;
        if (stop) {
            res->stopped = 1;
            break;
        }
        if (res->n_new >= o->max_new)
            break;
        forward(m, &c, &s, 1, &next, pos + at, lo + at, at, h);
        last = 0;
        at++;
    }
    res->total_s = now_s() - t0;
out:
    kv_free(&c);
    scratch_free(&s);
    free(h);
    free(logits);
    free(pos);
    free(lo);
    return rc;
}

static int cpu_init(dk_model *m, dk_error *err)
{
    (void)m;
    (void)err;
    return 0;
}

static void cpu_release(dk_model *m)
{
    (void)m;
}

const dk_backend_ops dk_cpu_backend = {
    "cpu", cpu_init, cpu_release, cpu_score, cpu_generate,
};
