/* evaluator: run a model over token sequences (the inference core, DESIGN.md section 6).
 *
 *   evaluator logprobs --model PATH   lines {"id", "ids"} in; {"id", "logprobs", "top"} out
 *   evaluator generate --model PATH   lines {"id", "ids"} in; {"id", "new_ids", timings} out
 *
 * A line may give "text" instead of "ids" when the model is a folder holding a
 * tokenizer.json: it is encoded as `tokenizer encode` does by default (the
 * post-processor applied), and the output line then carries the "ids" it scored, so the
 * log-probs can be aligned to tokens. The tokenizer is loaded at the first "text" line,
 * so "ids" input never pays for it (nor fails on a tokenizer.json we cannot run).
 *
 * Lines are read in batches; the sequences of a batch go to the model in calls of at
 * most --batch-tokens tokens (packed, no padding) and results are written in input
 * order. Scores do not depend on -j or on the batching (the core is batch-invariant),
 * so logprobs output is the same bytes whatever -j is. A line that cannot be used is a
 * diagnostic (exit 1 at the end, the other lines still run); a model that cannot be
 * loaded is one line on stderr and exit 2.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "dk_cli.h"
#include "dk_diag.h"
#include "dk_jsonl.h"
#include "dk_model.h"
#include "dk_tokenizer.h"
#include "dk_version.h"

#define TOOL "evaluator"
#define BATCH_LINES 256
#define BATCH_BYTES (8u << 20)

static const char usage_text[] =
    "usage: evaluator logprobs --model PATH [OPTIONS] [FILE...]\n"
    "       evaluator generate --model PATH [OPTIONS] [FILE...]\n"
    "Runs a Qwen2/Qwen3/Llama/DeepSeek(-MoE)/Qwen3-MoE model (a Hugging Face folder with\n"
    "config.json and safetensors, or a GGUF file) over JSON Lines {\"id\": ..., \"ids\": [...]}.\n"
    "A line may give {\"id\": ..., \"text\": \"...\"} instead when the model folder holds a\n"
    "tokenizer.json: the text is encoded as `tokenizer encode` does by default (the\n"
    "post-processor's special tokens added: none for Qwen and DeepSeek; tokenizer_config.json's\n"
    "add_bos_token is not applied, as Hugging Face tokenizers does not), and the output line\n"
    "also carries those \"ids\" (after \"id\"). GGUF files take \"ids\" only.\n"
    "  logprobs: writes {\"id\", \"logprobs\": [log p(ids[i] | ids[<i]) for i >= 1]} (natural log),\n"
    "            with --top K also \"top\": [[[id, logit], ...] after every position]\n"
    "  generate: greedy continuation, writes {\"id\", \"new_ids\", \"stopped\", \"ttft_ms\",\n"
    "            \"total_ms\", \"tokens_per_s\"}\n"
    "No FILE, or -, reads standard input; .gz input is decompressed.\n"
    "\n"
    "  -m, --model PATH        model folder or .gguf file (required)\n"
    "      --device D          cpu, cuda or auto (default auto: the best one built)\n"
    "  -j, --jobs N            threads of the model (results do not depend on N)\n"
    "      --top K             logprobs: also the K most likely next tokens (K <= 64)\n"
    "      --batch-tokens N    logprobs: tokens per forward pass (default 2048)\n"
    "      --max-new N         generate: at most N new tokens (default 64)\n"
    "      --stop ID[,ID...]   generate: stop after producing one of these token ids\n"
    "  -o, --output FILE       write to FILE (.gz compresses)\n"
    "      --errors-json       diagnostics as JSON Lines on stderr\n"
    "  -h, --help              this text\n"
    "      --version           print the version\n"
    "\n"
    "example:\n"
    "  echo '{\"id\":1,\"ids\":[9707,11,1879,0]}' | evaluator logprobs --model Qwen3-0.6B --top 5\n"
    "  echo '{\"id\":2,\"text\":\"Hello, world!\"}' | evaluator logprobs --model Qwen3-0.6B\n"
    "\n"
    "exit status: 0 all good, 1 some lines had errors, 2 usage, I/O or model error\n";

enum mode { MODE_LOGPROBS, MODE_GENERATE };

typedef struct options {
    enum mode   mode;
    const char *model, *output;
    dk_backend  device;
    int         jobs, top, max_new, errors_json;
    long        batch_tokens;
    int32_t    *stop;
    int         n_stop;
} options;

static int fail_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, TOOL ": error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry '" TOOL " --help' for more information.\n");
    va_end(ap);
    return 2;
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_stop(const char *s, options *o)
{
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno || end == p || v < 0 || v > INT32_MAX || (*end && *end != ','))
            return -1;
        int32_t *n = realloc(o->stop, (size_t)(o->n_stop + 1) * sizeof *n);
        if (!n)
            return -1;
        o->stop = n;
        o->stop[o->n_stop++] = (int32_t)v;
        p = *end ? end + 1 : end;
    }
    return o->n_stop ? 0 : -1;
}

static int parse_options(int argc, char **argv, options *o)
{
    enum { O_DEVICE = 256, O_TOP, O_BATCH, O_MAXNEW, O_STOP, O_JSON, O_VERSION };
    static const struct option longopts[] = {
        { "model", required_argument, 0, 'm' },   { "device", required_argument, 0, O_DEVICE },
        { "jobs", required_argument, 0, 'j' },    { "top", required_argument, 0, O_TOP },
        { "batch-tokens", required_argument, 0, O_BATCH }, { "max-new", required_argument, 0, O_MAXNEW },
        { "stop", required_argument, 0, O_STOP }, { "output", required_argument, 0, 'o' },
        { "errors-json", no_argument, 0, O_JSON }, { "help", no_argument, 0, 'h' },
        { "version", no_argument, 0, O_VERSION }, { 0, 0, 0, 0 },
    };
    *o = (options){ .device = DK_BACKEND_AUTO, .max_new = 64, .batch_tokens = 2048 };
    if (argc >= 2 && !strcmp(argv[1], "--help")) {
        fputs(usage_text, stdout);
        return -1;
    }
    if (argc >= 2 && !strcmp(argv[1], "--version")) {
        printf(TOOL " (dlgkit) %s\n", DK_VERSION);
        return -1;
    }
    if (argc < 2 || argv[1][0] == '-')
        return fail_usage("a command is needed: logprobs or generate");
    if (!strcmp(argv[1], "logprobs"))
        o->mode = MODE_LOGPROBS;
    else if (!strcmp(argv[1], "generate"))
        o->mode = MODE_GENERATE;
    else
        return fail_usage("unknown command '%s' (logprobs or generate)", argv[1]);
    argc--;
    argv++;
    int c;
    long v;
    while ((c = getopt_long(argc, argv, "m:j:o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': o->model = optarg; break;
        case 'o': o->output = optarg; break;
        case O_JSON: o->errors_json = 1; break;
        case O_DEVICE:
            if (dk_backend_parse(optarg, &o->device) != 0)
                return fail_usage("--device must be cpu, cuda or auto (got '%s')", optarg);
            break;
        case 'j':
            if (dk_cli_parse_jobs(optarg, &o->jobs) != 0)
                return fail_usage("-j needs a thread count from 1 to 1024 (got '%s')", optarg);
            break;
        case O_TOP:
            if (parse_int(optarg, 0, 64, &v))
                return fail_usage("--top needs a count from 0 to 64 (got '%s')", optarg);
            o->top = (int)v;
            break;
        case O_BATCH:
            if (parse_int(optarg, 1, 1 << 20, &v))
                return fail_usage("--batch-tokens needs a count from 1 to 1048576 (got '%s')", optarg);
            o->batch_tokens = v;
            break;
        case O_MAXNEW:
            if (parse_int(optarg, 1, 1 << 20, &v))
                return fail_usage("--max-new needs a count from 1 to 1048576 (got '%s')", optarg);
            o->max_new = (int)v;
            break;
        case O_STOP:
            if (parse_stop(optarg, o))
                return fail_usage("--stop needs token ids separated by commas (got '%s')", optarg);
            break;
        case 'h':
            fputs(usage_text, stdout);
            return -1;
        case O_VERSION:
            printf(TOOL " (dlgkit) %s\n", DK_VERSION);
            return -1;
        default:
            fprintf(stderr, "Try '" TOOL " --help' for more information.\n");
            return 2;
        }
    }
    if (!o->model)
        return fail_usage("--model PATH is required");
    if (o->mode == MODE_GENERATE && o->top)
        return fail_usage("--top belongs to logprobs");
    if (o->mode == MODE_LOGPROBS && (o->n_stop || o->max_new != 64))
        return fail_usage("--stop and --max-new belong to generate");
    return 0;
}

/* ---------- input lines ---------- */

typedef struct state {
    const options   *opt;
    dk_model        *model;
    dk_jsonl_writer *out;
    long             errors;
    char            *tok_path;  /* the folder's tokenizer.json, NULL when there is none */
    dk_tokenizer    *tok;       /* loaded at the first "text" line */
    dk_tok_scratch  *tok_sc;
    dk_tok_ids       tok_ids;
} state;

typedef struct seq {
    char    *id_json;    /* the "id" value as JSON */
    int32_t *ids;
    size_t   n;
    int      ok;
    int      from_text;  /* the ids were encoded here: write them out */
} seq;

static void seq_free(seq *s)
{
    free(s->id_json);
    free(s->ids);
    memset(s, 0, sizeof *s);
}

/* A model folder's tokenizer.json, if it has one (a GGUF file never does here). */
static int find_tokenizer(state *st, dk_error *err)
{
    struct stat sb;
    if (stat(st->opt->model, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return 0;
    size_t n = strlen(st->opt->model) + sizeof "/tokenizer.json";
    if (!(st->tok_path = malloc(n)))
        return dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
    snprintf(st->tok_path, n, "%s/tokenizer.json", st->opt->model);
    if (access(st->tok_path, F_OK) != 0) {
        free(st->tok_path);
        st->tok_path = NULL;
    }
    return 0;
}

static int tokenizer_ready(state *st, dk_error *err)
{
    if (st->tok_sc)
        return 0;
    int rc = dk_tokenizer_load(&st->tok, st->tok_path, err);
    return rc ? rc : dk_tok_scratch_new(&st->tok_sc, st->tok, err);
}

/* Fills s->ids from "text" (ids_from_text) or "ids" (ids_from_array). Both return 0 with
 * a diagnostic added for a bad line, or a negative code for a fatal error. */
static int ids_from_text(state *st, const dk_jsonl_line *ln, const cJSON *text, seq *s, dk_diag_list *dl,
                         dk_error *err)
{
    if (!cJSON_IsString(text))
        return dk_diag_add(dl, DK_SEV_ERROR, "E_TEXT", ln->lineno, NULL, -1, "/text", "\"text\" is not a string");
    if (!st->tok_path) {
        struct stat sb;
        int dir = stat(st->opt->model, &sb) == 0 && S_ISDIR(sb.st_mode);
        return dk_diag_add(dl, DK_SEV_ERROR, "E_NO_TOKENIZER", ln->lineno, NULL, -1, "/text",
                           "\"text\" needs a tokenizer but the model has none (%s%s): give \"ids\"",
                           st->opt->model, dir ? " holds no tokenizer.json" : " is a GGUF file");
    }
    int rc = tokenizer_ready(st, err);
    if (rc)
        return rc;
    dk_error e = { 0 };
    rc = dk_tokenizer_encode(st->tok, st->tok_sc, text->valuestring, strlen(text->valuestring),
                             DK_TOK_ADD_SPECIAL, &st->tok_ids, &e);
    if (rc == DK_ENOMEM)
        return dk_error_set(err, rc, NULL, 0, "out of memory");
    if (rc)
        return dk_diag_add(dl, DK_SEV_ERROR, rc == DK_EUTF8 ? "E_UTF8" : "E_TOKENIZE", ln->lineno, NULL, -1,
                           "/text", "cannot tokenize: %s", e.msg);
    int n_vocab = dk_model_get_info(st->model)->n_vocab;
    for (size_t i = 0; i < st->tok_ids.n; i++)
        if (st->tok_ids.ids[i] >= (uint32_t)n_vocab)
            return dk_diag_add(dl, DK_SEV_ERROR, "E_TOKEN_RANGE", ln->lineno, NULL, -1, "/text",
                               "the text encodes to token %u, outside the model's vocabulary (%d)",
                               st->tok_ids.ids[i], n_vocab);
    if (!(s->ids = malloc((st->tok_ids.n ? st->tok_ids.n : 1) * sizeof *s->ids)))
        return dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
    for (size_t i = 0; i < st->tok_ids.n; i++)
        s->ids[i] = (int32_t)st->tok_ids.ids[i];
    s->n = st->tok_ids.n;
    s->from_text = 1;
    return 0;
}

static int ids_from_array(state *st, const dk_jsonl_line *ln, const cJSON *ids, seq *s, dk_diag_list *dl,
                          dk_error *err)
{
    int n_vocab = dk_model_get_info(st->model)->n_vocab;
    if (!cJSON_IsArray(ids))
        return dk_diag_add(dl, DK_SEV_ERROR, "E_IDS", ln->lineno, NULL, -1, "/ids", "\"ids\" is not an array of token ids");
    int n = cJSON_GetArraySize(ids);
    if (!(s->ids = malloc((size_t)(n ? n : 1) * sizeof *s->ids)))
        return dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
    int i = 0;
    for (const cJSON *x = ids->child; x; x = x->next, i++) {
        double v = x->valuedouble;
        if (!cJSON_IsNumber(x) || !(v >= 0 && v < n_vocab) || v != (double)(int32_t)v) {
            char ptr[32];
            snprintf(ptr, sizeof ptr, "/ids/%d", i);
            return dk_diag_add(dl, DK_SEV_ERROR, "E_TOKEN_RANGE", ln->lineno, NULL, -1, ptr,
                               "token id must be an integer from 0 to %d", n_vocab - 1);
        }
        s->ids[i] = (int32_t)v;
    }
    s->n = (size_t)n;
    return 0;
}

/* 0 with s->ok set for a usable line, 0 with a diagnostic for a bad one, or a negative
 * code for a fatal error (out of memory, a tokenizer.json that cannot be loaded). */
static int parse_line(state *st, const dk_jsonl_line *ln, seq *s, dk_diag_list *dl, dk_error *err)
{
    memset(s, 0, sizeof *s);
    cJSON *j = cJSON_ParseWithLength(ln->text, ln->len);
    int rc = 0;
    size_t errors = dl->n_errors;
    if (!j) {
        rc = dk_diag_add(dl, DK_SEV_ERROR, "E_JSON", ln->lineno, NULL, -1, "", "line is not valid JSON");
        goto out;
    }
    if (!cJSON_IsObject(j)) {
        rc = dk_diag_add(dl, DK_SEV_ERROR, "E_NOT_OBJECT", ln->lineno, NULL, -1, "", "line is not a JSON object");
        goto out;
    }
    /* Without an id a skipped line would shift every later result unnoticed. */
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
    if (!id) {
        rc = dk_diag_add(dl, DK_SEV_ERROR, "E_ID", ln->lineno, NULL, -1, "", "line has no \"id\"");
        goto out;
    }
    s->id_json = cJSON_PrintUnformatted(id);
    if (!s->id_json) {
        rc = dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
        goto out;
    }
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(j, "ids");
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(j, "text");
    if (ids && text)
        rc = dk_diag_add(dl, DK_SEV_ERROR, "E_INPUT", ln->lineno, NULL, -1, "",
                         "line has both \"ids\" and \"text\": give one");
    else if (!ids && !text)
        rc = dk_diag_add(dl, DK_SEV_ERROR, "E_INPUT", ln->lineno, NULL, -1, "",
                         "line has neither \"ids\" (token ids) nor \"text\"");
    else
        rc = text ? ids_from_text(st, ln, text, s, dl, err) : ids_from_array(st, ln, ids, s, dl, err);
    if (rc || dl->n_errors > errors)
        goto out;
    if (st->opt->mode == MODE_GENERATE && s->n == 0) {
        rc = dk_diag_add(dl, DK_SEV_ERROR, "E_IDS", ln->lineno, NULL, -1, text ? "/text" : "/ids",
                         "generate needs at least one token");
        goto out;
    }
    s->ok = 1;
out:
    cJSON_Delete(j);
    if (rc == DK_ENOMEM && !err->msg[0])
        dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
    return rc;
}

/* ---------- output ---------- */

typedef struct sbuf {
    char  *p;
    size_t n, cap;
    int    oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->oom = 1;
            return;
        }
        if (b->p && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return;
        }
        size_t nc = (b->cap ? b->cap * 2 : 4096) + (size_t)k;
        char *np = realloc(b->p, nc);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
}

/* "ids":[...], for lines given as text. */
static void sb_ids(sbuf *b, const int32_t *ids, size_t n)
{
    sb_printf(b, "\"ids\":[");
    for (size_t i = 0; i < n; i++)
        sb_printf(b, "%s%d", i ? "," : "", ids[i]);
    sb_printf(b, "],");
}

static int write_diags(const state *st, const char *file, dk_diag_list *dl)
{
    for (size_t i = 0; i < dl->n; i++) {
        char *s = st->opt->errors_json ? dk_diag_format_json(&dl->items[i], file)
                                        : dk_diag_format_text(&dl->items[i], file);
        if (!s)
            return DK_ENOMEM;
        fputs(s, stderr);
        free(s);
    }
    return 0;
}

/* Scores seqs[lo..hi) (all ok) in one call and writes their lines. */
static int score_group(state *st, seq *seqs, int lo, int hi, dk_error *err)
{
    int ns = hi - lo, k = st->opt->top;
    size_t n = 0;
    for (int i = lo; i < hi; i++)
        n += seqs[i].n;
    int32_t *tok = malloc((n ? n : 1) * sizeof *tok), *top_id = NULL;
    size_t *start = malloc((size_t)(ns + 1) * sizeof *start);
    float *lp = malloc((n ? n : 1) * sizeof *lp), *top_logit = NULL;
    sbuf b = { 0 };
    int rc = 0;
    if (k) {
        top_id = malloc((n ? n : 1) * (size_t)k * sizeof *top_id);
        top_logit = malloc((n ? n : 1) * (size_t)k * sizeof *top_logit);
    }
    if (!tok || !start || !lp || (k && (!top_id || !top_logit))) {
        rc = dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
        goto out;
    }
    start[0] = 0;
    for (int i = lo; i < hi; i++) {
        memcpy(tok + start[i - lo], seqs[i].ids, seqs[i].n * sizeof *tok);
        start[i - lo + 1] = start[i - lo] + seqs[i].n;
    }
    dk_score_batch batch = { tok, start, ns };
    dk_score_opts so = { k, DK_POOL_NONE };
    dk_score_out out = { lp, top_id, top_logit, NULL };
    if ((rc = dk_model_score(st->model, &batch, &so, &out, err)))
        goto out;
    for (int i = lo; i < hi; i++) {
        size_t s0 = start[i - lo], len = seqs[i].n;
        b.n = 0;
        sb_printf(&b, "{\"id\":%s,", seqs[i].id_json);
        if (seqs[i].from_text)
            sb_ids(&b, seqs[i].ids, len);
        sb_printf(&b, "\"logprobs\":[");
        for (size_t j = 1; j < len; j++)
            sb_printf(&b, "%s%.8g", j > 1 ? "," : "", (double)lp[s0 + j]);
        sb_printf(&b, "]");
        if (k) {
            sb_printf(&b, ",\"top\":[");
            for (size_t j = 0; j < len; j++) {
                sb_printf(&b, "%s[", j ? "," : "");
                for (int q = 0; q < k; q++)
                    sb_printf(&b, "%s[%d,%.8g]", q ? "," : "", top_id[(s0 + j) * k + q],
                              (double)top_logit[(s0 + j) * k + q]);
                sb_printf(&b, "]");
            }
            sb_printf(&b, "]");
        }
        sb_printf(&b, "}");
        if (b.oom) {
            rc = dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
            goto out;
        }
        if ((rc = dk_jsonl_writer_line(st->out, b.p, b.n, err)))
            goto out;
    }
out:
    free(b.p);
    free(tok);
    free(start);
    free(lp);
    free(top_id);
    free(top_logit);
    return rc;
}

static int generate_one(state *st, const seq *s, dk_error *err)
{
    const options *o = st->opt;
    int32_t *ids = malloc((size_t)o->max_new * sizeof *ids);
    sbuf b = { 0 };
    dk_gen_result res;
    dk_gen_opts go = { o->max_new, o->stop, o->n_stop };
    int rc = 0;
    if (!ids) {
        rc = dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
        goto out;
    }
    if ((rc = dk_model_generate(st->model, s->ids, s->n, &go, ids, &res, err)))
        goto out;
    sb_printf(&b, "{\"id\":%s,", s->id_json);
    if (s->from_text)
        sb_ids(&b, s->ids, s->n);
    sb_printf(&b, "\"new_ids\":[");
    for (int i = 0; i < res.n_new; i++)
        sb_printf(&b, "%s%d", i ? "," : "", ids[i]);
    sb_printf(&b, "],\"stopped\":%s,\"ttft_ms\":%.3f,\"total_ms\":%.3f,\"tokens_per_s\":%.2f}",
              res.stopped ? "true" : "false", res.ttft_s * 1e3, res.total_s * 1e3,
              res.total_s > 0 ? res.n_new / res.total_s : 0.0);
    if (b.oom) {
        rc = dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
        goto out;
    }
    rc = dk_jsonl_writer_line(st->out, b.p, b.n, err);
out:
    free(b.p);
    free(ids);
    return rc;
}

static int run_file(state *st, const char *path, dk_error *err)
{
    const options *o = st->opt;
    dk_jsonl_reader *rd = NULL;
    dk_jsonl_batch batch = { 0 };
    seq *seqs = calloc(BATCH_LINES, sizeof *seqs);
    dk_diag_list dl = { 0 };
    int rc = seqs ? dk_jsonl_reader_open(&rd, path, err) : dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
    if (rc)
        goto out;
    const char *file = dk_jsonl_reader_name(rd);
    int n;
    while ((n = dk_jsonl_reader_fill(rd, &batch, BATCH_LINES, BATCH_BYTES, err)) > 0) {
        for (int i = 0; i < n && rc == 0; i++)
            rc = parse_line(st, &batch.lines[i], &seqs[i], &dl, err);
        st->errors += (long)dl.n_errors;
        if (rc == 0 && write_diags(st, file, &dl))
            rc = dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
        dk_diag_list_clear(&dl);
        dl.n_errors = dl.n_warnings = dl.n_infos = 0;
        /* Groups of consecutive good lines up to --batch-tokens, in input order. */
        for (int i = 0; i < n && rc == 0;) {
            if (!seqs[i].ok) {
                i++;
                continue;
            }
            if (o->mode == MODE_GENERATE) {
                rc = generate_one(st, &seqs[i], err);
                i++;
                continue;
            }
            int j = i;
            long tokens = 0;
            while (j < n && seqs[j].ok && (j == i || tokens + (long)seqs[j].n <= o->batch_tokens))
                tokens += (long)seqs[j++].n;
            rc = score_group(st, seqs, i, j, err);
            i = j;
        }
        for (int i = 0; i < n; i++)
            seq_free(&seqs[i]);
        fflush(stderr);
        if (rc)
            goto out;
    }
    if (n < 0)
        rc = n;
out:
    dk_diag_list_free(&dl);
    free(seqs);
    dk_jsonl_batch_free(&batch);
    dk_jsonl_reader_free(rd);
    return rc;
}

int main(int argc, char **argv)
{
    options opt;
    int rc = parse_options(argc, argv, &opt);
    if (rc) {
        free(opt.stop);
        return rc < 0 ? 0 : rc;
    }
    state st = { .opt = &opt };
    dk_error err = { 0 };
    int status = 2;
    char *const *files = argv + 1 + optind;
    int n_files = argc - 1 - optind;
    dk_model_opts mo = { opt.device, opt.jobs };

    if ((rc = dk_model_load(&st.model, opt.model, &mo, &err)) != 0 || (rc = find_tokenizer(&st, &err)) != 0)
        goto out;
    if ((rc = dk_jsonl_writer_open(&st.out, opt.output, &err)) != 0)
        goto out;
    for (int i = 0; i < (n_files ? n_files : 1) && rc == 0; i++)
        rc = run_file(&st, n_files ? files[i] : NULL, &err);
    if (rc == 0) {
        if (st.errors)
            fprintf(stderr, TOOL ": %ld %s skipped\n", st.errors,
                    st.errors == 1 ? "line had errors and was" : "lines had errors and were");
        status = st.errors ? 1 : 0;
        rc = dk_jsonl_writer_close(st.out, &err);
        st.out = NULL;
    }
out:
    if (rc) {
        if (err.file[0] && err.line)
            fprintf(stderr, TOOL ": error: %s:%ld: %s\n", err.file, err.line, err.msg);
        else if (err.file[0])
            fprintf(stderr, TOOL ": error: %s: %s\n", err.file, err.msg);
        else
            fprintf(stderr, TOOL ": error: %s\n", err.msg[0] ? err.msg : dk_strerror(rc));
        status = 2;
    }
    dk_jsonl_writer_close(st.out, NULL);
    dk_model_free(st.model);
    dk_tok_ids_free(&st.tok_ids);
    dk_tok_scratch_free(st.tok_sc);
    dk_tokenizer_free(st.tok);
    free(st.tok_path);
    free(opt.stop);
    if (fclose(stdout) != 0 && status != 2) {
        fprintf(stderr, TOOL ": error: standard output: %s\n", strerror(errno));
        status = 2;
    }
    return status;
}
