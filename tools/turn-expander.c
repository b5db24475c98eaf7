/* turn-expander: cut multi-turn dialogs into training samples, rendered with the
 * model's own chat template, with exact token counts and loss masks (libdata/dk_expand.h).
 *
 * Reads batches of dialog lines, expands them in parallel (-j, one dk_expand_ctx per
 * thread), then writes each line's samples and diagnostics in input order, so the
 * output is the same bytes whatever -j is. A line that is not a valid dialog, or that
 * the template refuses, is a diagnostic and no samples (exit 1); a sample that cannot
 * fit --max-tokens is a warning and is skipped, counted in the summary.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include <cjson/cJSON.h>

#include "dk_chat.h"
#include "dk_cli.h"
#include "dk_dialog.h"
#include "dk_diag.h"
#include "dk_expand.h"
#include "dk_jsonl.h"
#include "dk_tokenizer.h"
#include "dk_version.h"

#define TOOL "turn-expander"
/* a prefix-mode line writes about turns/2 times its own tokens: keep batches small */
#define BATCH_LINES 256
#define BATCH_BYTES (4u << 20)

static const char usage_text[] =
    "usage: turn-expander -t PATH [OPTIONS] [FILE...]\n"
    "Cuts dialog JSON Lines into training samples rendered with the model's chat template\n"
    "(tokenizer_config.json), with exact token counts. No FILE, or -, reads standard input;\n"
    ".gz input is decompressed. Diagnostics go to standard error.\n"
    "\n"
    "  -t, --tokenizer PATH     model folder (tokenizer.json + tokenizer_config.json), or\n"
    "                           its tokenizer.json (required)\n"
    "      --mode MODE          prefix (default): one sample per assistant turn, the turns\n"
    "                           before it as history; whole: one sample per dialog, ending\n"
    "                           at its last assistant turn, every chosen assistant turn trained\n"
    "      --max-tokens N       token budget of a sample (the rendered text)\n"
    "      --truncate POLICY    over budget: drop-oldest (default) drops the oldest\n"
    "                           user/assistant pairs after the system turn until it fits;\n"
    "                           'window K' keeps only the last K pairs (then drops more if\n"
    "                           still over); skip drops the sample. The system turn, the\n"
    "                           last user turn and the target are always kept; a sample\n"
    "                           that cannot fit is reported and skipped\n"
    "      --train-turns WHICH  all (default), last, or a list of turn indices (1,3,5): the\n"
    "                           assistant turns that carry loss; a turn with \"train\": false\n"
    "                           never does. In prefix mode, the turns that become targets\n"
    "      --format FORMAT      ids (input_ids + labels, -100 where not trained), messages,\n"
    "                           sharegpt, or text (prompt + completion; prefix mode only).\n"
    "                           Default: messages\n"
    "      --kwarg NAME=VALUE   template variable, VALUE as JSON or else a string\n"
    "                           (e.g. enable_thinking=false); repeatable\n"
    "  -o, --output FILE        write to FILE instead of standard output (.gz compresses)\n"
    "      --errors-json        diagnostics and the summary as JSON Lines on stderr\n"
    "  -j, --jobs N             expand with N threads (output order is input order)\n"
    "      --shard I/N          keep only lines whose index mod N is I\n"
    "      --shard-by line|id   shard by line index (default) or by a hash of dialog_id\n"
    "  -h, --help               this text\n"
    "      --version            print the version\n"
    "\n"
    "Every sample carries dialog_id, turn_index (its last turn), line (in the input),\n"
    "n_tokens, dropped_turns and the dialog's meta.\n"
    "\n"
    "example:\n"
    "  entity-checker raw.jsonl | turn-expander -t MODEL_DIR --format ids \\\n"
    "      --max-tokens 4096 -j 2 > samples.jsonl\n"
    "  turn-expander -t MODEL_DIR --mode whole --train-turns last --kwarg enable_thinking=false \\\n"
    "      --format messages clean.jsonl > sft.jsonl\n"
    "\n"
    "exit status: 0 no errors, 1 the data had errors, 2 usage, I/O, tokenizer or template error\n";

typedef struct options {
    const char    *tokenizer, *output;
    dk_expand_opts x;
    long          *train_list;
    cJSON         *kwargs;
    int            truncate_set, errors_json, jobs, shard_by_id;
    long           shard_i, shard_n;
} options;

typedef struct result {
    int              in_shard;
    dk_expand_result x;
    dk_diag_list     diags;
} result;

typedef struct state {
    const options   *opt;
    const dk_expander *ex;
    dk_expand_ctx  **ctx;        /* one per thread */
    dk_jsonl_writer *out;
    long             index, dialogs, samples, skipped, dropped, tokens, errors, warnings;
    int              oom;
} state;

/* ---------- options ---------- */

static int fail_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, TOOL ": error: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry '" TOOL " --help' for more information.\n");
    return 2;
}

static int parse_long(const char *s, long lo, long *v)
{
    char *end;
    errno = 0;
    *v = strtol(s, &end, 10);
    return errno || end == s || *end || *v < lo ? -1 : 0;
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

static int parse_train_list(const char *s, options *o)
{
    size_t n = 1;
    for (const char *p = s; *p; p++)
        n += *p == ',';
    if ((o->train_list = calloc(n, sizeof *o->train_list)) == NULL)
        return -1;
    size_t k = 0;
    const char *p = s;
    for (;;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno || end == p || v < 0 || (*end && *end != ','))
            return -1;
        o->train_list[k++] = v;
        if (!*end)
            break;
        p = end + 1;
    }
    qsort(o->train_list, k, sizeof *o->train_list, cmp_long);
    o->x.train = DK_EXPAND_TRAIN_LIST;
    o->x.n_train_list = k;
    o->x.train_list = o->train_list;
    return 0;
}

static int parse_options(int argc, char **argv, options *o)
{
    enum { O_MODE = 256, O_MAX, O_TRUNC, O_TRAIN, O_FORMAT, O_KWARG, O_JSON, O_SHARD, O_SHARD_BY, O_VERSION };
    static const struct option longopts[] = {
        { "tokenizer", required_argument, 0, 't' },   { "mode", required_argument, 0, O_MODE },
        { "max-tokens", required_argument, 0, O_MAX }, { "truncate", required_argument, 0, O_TRUNC },
        { "train-turns", required_argument, 0, O_TRAIN }, { "format", required_argument, 0, O_FORMAT },
        { "kwarg", required_argument, 0, O_KWARG },   { "output", required_argument, 0, 'o' },
        { "errors-json", no_argument, 0, O_JSON },    { "jobs", required_argument, 0, 'j' },
        { "shard", required_argument, 0, O_SHARD },   { "shard-by", required_argument, 0, O_SHARD_BY },
        { "help", no_argument, 0, 'h' },              { "version", no_argument, 0, O_VERSION },
        { 0, 0, 0, 0 },
    };
    o->x.format = DK_EXPAND_MESSAGES;
    o->jobs = 1;
    o->shard_n = 1;
    if ((o->kwargs = cJSON_CreateObject()) == NULL)
        return fail_usage("%s", "out of memory");
    o->x.kwargs = o->kwargs;
    int c;
    long v;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":t:o:j:h", longopts, NULL)) != -1) {
        switch (c) {
        case 't': o->tokenizer = optarg; break;
        case 'o': o->output = optarg; break;
        case O_JSON: o->errors_json = 1; break;
        case O_MODE:
            if (strcmp(optarg, "prefix") == 0)     o->x.mode = DK_EXPAND_PREFIX;
            else if (strcmp(optarg, "whole") == 0) o->x.mode = DK_EXPAND_WHOLE;
            else return fail_usage("--mode must be prefix or whole (got '%s')", optarg);
            break;
        case O_MAX:
            if (parse_long(optarg, 1, &o->x.max_tokens) != 0)
                return fail_usage("--max-tokens needs a positive token count (got '%s')", optarg);
            break;
        case O_TRUNC:
            o->truncate_set = 1;
            if (strcmp(optarg, "drop-oldest") == 0)
                o->x.truncate = DK_EXPAND_DROP_OLDEST;
            else if (strcmp(optarg, "skip") == 0)
                o->x.truncate = DK_EXPAND_SKIP;
            else if (strcmp(optarg, "window") == 0 || strncmp(optarg, "window=", 7) == 0) {
                /* "window K" as two words, or window=K */
                const char *k = optarg[6] == '=' ? optarg + 7 : optind < argc ? argv[optind++] : "";
                if (parse_long(k, 0, &v) != 0)
                    return fail_usage("--truncate window needs a pair count K >= 0 (got '%s')", k);
                o->x.truncate = DK_EXPAND_WINDOW;
                o->x.window = v;
            } else
                return fail_usage("--truncate must be drop-oldest, 'window K' or skip (got '%s')", optarg);
            break;
        case O_TRAIN:
            free(o->train_list);
            o->train_list = NULL;
            o->x.train_list = NULL;
            o->x.n_train_list = 0;
            if (strcmp(optarg, "all") == 0)       o->x.train = DK_EXPAND_TRAIN_ALL;
            else if (strcmp(optarg, "last") == 0) o->x.train = DK_EXPAND_TRAIN_LAST;
            else if (parse_train_list(optarg, o) != 0)
                return fail_usage("--train-turns must be all, last or turn indices like 1,3,5 (got '%s')", optarg);
            break;
        case O_FORMAT:
            if (strcmp(optarg, "messages") == 0)      o->x.format = DK_EXPAND_MESSAGES;
            else if (strcmp(optarg, "sharegpt") == 0) o->x.format = DK_EXPAND_SHAREGPT;
            else if (strcmp(optarg, "text") == 0)     o->x.format = DK_EXPAND_TEXT;
            else if (strcmp(optarg, "ids") == 0)      o->x.format = DK_EXPAND_IDS;
            else return fail_usage("--format must be messages, sharegpt, text or ids (got '%s')", optarg);
            break;
        case O_KWARG: {
            dk_error e = { 0 };
            if (dk_chat_kwarg_add(o->kwargs, optarg, &e) != 0)
                return fail_usage("--kwarg needs NAME=VALUE (got '%s')", optarg);
            break;
        }
        case 'j':
            if (dk_cli_parse_jobs(optarg, &o->jobs) != 0)
                return fail_usage("-j needs a thread count from 1 to 1024 (got '%s')", optarg);
            break;
        case O_SHARD:
            if (dk_cli_parse_shard(optarg, &o->shard_i, &o->shard_n) != 0)
                return fail_usage("--shard needs I/N with 0 <= I < N (got '%s')", optarg);
            break;
        case O_SHARD_BY:
            if (dk_cli_parse_shard_by(optarg, &o->shard_by_id) != 0)
                return fail_usage("--shard-by must be line or id (got '%s')", optarg);
            break;
        case 'h':
            fputs(usage_text, stdout);
            return -1;
        case O_VERSION:
            printf(TOOL " (dlgkit) %s\n", DK_VERSION);
            return -1;
        case ':':
            return fail_usage("option '%s' needs an argument", argv[optind - 1]);
        default:
            if (optopt) {
                char opt[3] = { '-', (char)optopt, 0 };
                return fail_usage("unrecognized option '%s'", opt);
            }
            return fail_usage("unrecognized option '%s'", argv[optind - 1]);
        }
    }
    if (!o->tokenizer)
        return fail_usage("%s", "-t PATH is needed (a model folder or its tokenizer.json)");
    if (o->x.format == DK_EXPAND_TEXT && o->x.mode == DK_EXPAND_WHOLE)
        return fail_usage("%s", "--format text is prompt + completion of one target: use it with --mode prefix");
    if (o->truncate_set && o->x.truncate != DK_EXPAND_WINDOW && !o->x.max_tokens)
        return fail_usage("%s", "--truncate drop-oldest and skip need --max-tokens N");
    return 0;
}

/* ---------- the parallel phase ---------- */

static void expand_line(state *st, const dk_jsonl_line *ln, long index, result *r)
{
    const options *o = st->opt;
    int tid = 0;
#ifdef _OPENMP
    tid = omp_get_thread_num();
#endif
    r->in_shard = o->shard_by_id || index % o->shard_n == o->shard_i;
    r->x.len = 0;
    r->x.samples = r->x.skipped = r->x.turns_dropped = r->x.tokens = 0;
    if (!r->in_shard)
        return;
    dk_dialog *d = NULL;
    dk_diag_list diags = { 0 };
    int rc = dk_dialog_parse(ln->text, ln->len, ln->lineno, DK_DIALOG_SCHEMA_ONLY, &d, &diags);
    if (o->shard_by_id) {
        uint64_t h = d && d->id ? dk_dialog_id_hash(d->id) : (uint64_t)index;
        r->in_shard = h % (uint64_t)o->shard_n == (uint64_t)o->shard_i;
    }
    if (r->in_shard)
        dk_diag_list_move(&r->diags, &diags);
    dk_diag_list_free(&diags);
    if (r->in_shard && rc == 0 && dk_expand_dialog(st->ctx[tid], d, &r->x, &r->diags) != 0)
        st->oom = 1;
    dk_dialog_free(d);
}

/* ---------- the ordered phase ---------- */

static int emit(state *st, const char *file, result *r, dk_error *err)
{
    if (!r->in_shard)
        return 0;
    st->dialogs++;
    for (size_t i = 0; i < r->diags.n; i++) {
        char *s = st->opt->errors_json ? dk_diag_format_json(&r->diags.items[i], file)
                                        : dk_diag_format_text(&r->diags.items[i], file);
        if (!s)
            return dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
        fputs(s, stderr);
        free(s);
    }
    st->errors += (long)r->diags.n_errors;
    st->warnings += (long)r->diags.n_warnings;
    st->samples += r->x.samples;
    st->skipped += r->x.skipped;
    st->dropped += r->x.turns_dropped;
    st->tokens += r->x.tokens;
    return r->x.len ? dk_jsonl_writer_write(st->out, r->x.out, r->x.len, err) : 0;
}

static int run_file(state *st, result *res, const char *path, dk_error *err)
{
    dk_jsonl_reader *rd = NULL;
    dk_jsonl_batch batch = { 0 };
    int rc = dk_jsonl_reader_open(&rd, path, err), n = 0;
    if (rc)
        return rc;
    const char *file = dk_jsonl_reader_name(rd);
    while ((n = dk_jsonl_reader_fill(rd, &batch, BATCH_LINES, BATCH_BYTES, err)) > 0) {
        long base = st->index;
        #pragma omp parallel for schedule(dynamic, 1) num_threads(st->opt->jobs)
        for (int i = 0; i < n; i++)
            expand_line(st, &batch.lines[i], base + i, &res[i]);
        st->index += n;
        if (st->oom)
            rc = dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
        for (int i = 0; i < n; i++) {
            if (rc == 0)
                rc = emit(st, file, &res[i], err);
            dk_diag_list_clear(&res[i].diags);
        }
        fflush(stderr);
        if (rc)
            goto out;
    }
    if (n < 0)
        rc = n;
out:
    dk_jsonl_batch_free(&batch);
    dk_jsonl_reader_free(rd);
    return rc;
}

static void print_summary(const state *st)
{
    if (st->opt->errors_json) {
        cJSON *o = cJSON_CreateObject(), *s = cJSON_AddObjectToObject(o, "summary");
        cJSON_AddNumberToObject(s, "dialogs", (double)st->dialogs);
        cJSON_AddNumberToObject(s, "samples", (double)st->samples);
        cJSON_AddNumberToObject(s, "tokens", (double)st->tokens);
        cJSON_AddNumberToObject(s, "skipped", (double)st->skipped);
        cJSON_AddNumberToObject(s, "turns_dropped", (double)st->dropped);
        cJSON_AddNumberToObject(s, "errors", (double)st->errors);
        cJSON_AddNumberToObject(s, "warnings", (double)st->warnings);
        char *txt = cJSON_PrintUnformatted(o);
        if (txt)
            fprintf(stderr, "%s\n", txt);
        free(txt);
        cJSON_Delete(o);
        return;
    }
    fprintf(stderr, TOOL ": %ld dialogs: %ld samples written (%ld tokens), %ld skipped, %ld turns dropped; "
            "%ld errors, %ld warnings\n", st->dialogs, st->samples, st->tokens, st->skipped, st->dropped,
            st->errors, st->warnings);
}

int main(int argc, char **argv)
{
    options opt = { 0 };
    dk_tokenizer *tok = NULL;
    dk_chat_template *ct = NULL;
    dk_expander *ex = NULL;
    result *res = NULL;
    state st = { .opt = &opt };
    dk_error err = { 0 };
    int status = 2;
    int rc = parse_options(argc, argv, &opt);
    if (rc) {
        status = rc < 0 ? 0 : rc;
        rc = 0;
        goto done;
    }
    char *const *files = argv + optind;
    int n_files = argc - optind;

    setvbuf(stderr, NULL, _IOFBF, 1 << 16);
    if ((rc = dk_tokenizer_load(&tok, opt.tokenizer, &err)) != 0 ||
        (rc = dk_chat_template_open(&ct, opt.tokenizer, &err)) != 0 ||
        (rc = dk_expander_new(&ex, tok, ct, &opt.x, &err)) != 0)
        goto out;
    st.ex = ex;
    if ((st.ctx = calloc((size_t)opt.jobs, sizeof *st.ctx)) == NULL ||
        (res = calloc(BATCH_LINES, sizeof *res)) == NULL) {
        rc = dk_error_set(&err, DK_ENOMEM, NULL, 0, "out of memory");
        goto out;
    }
    for (int i = 0; i < opt.jobs; i++)
        if ((rc = dk_expand_ctx_new(&st.ctx[i], ex, &err)) != 0)
            goto out;
    if ((rc = dk_jsonl_writer_open(&st.out, opt.output, &err)) != 0)
        goto out;
    for (int i = 0; i < (n_files ? n_files : 1) && rc == 0; i++)
        rc = run_file(&st, res, n_files ? files[i] : NULL, &err);
    if (rc == 0) {
        print_summary(&st);
        status = st.errors ? 1 : 0;
    }
out:
    if (rc == 0) {
        rc = dk_jsonl_writer_close(st.out, &err);
        st.out = NULL;
    }
    if (rc) {
        if (err.file[0] && err.line)
            fprintf(stderr, TOOL ": error: %s:%ld: %s\n", err.file, err.line, err.msg);
        else if (err.file[0] && !strstr(err.msg, err.file))
            fprintf(stderr, TOOL ": error: %s: %s\n", err.file, err.msg[0] ? err.msg : dk_strerror(rc));
        else
            fprintf(stderr, TOOL ": error: %s\n", err.msg[0] ? err.msg : dk_strerror(rc));
        status = 2;
    }
    dk_jsonl_writer_close(st.out, NULL);
    for (int i = 0; res && i < BATCH_LINES; i++) {
        dk_expand_result_free(&res[i].x);
        dk_diag_list_free(&res[i].diags);
    }
    free(res);
    for (int i = 0; st.ctx && i < opt.jobs; i++)
        dk_expand_ctx_free(st.ctx[i]);
    free(st.ctx);
    dk_expander_free(ex);
    dk_chat_template_free(ct);
    dk_tokenizer_free(tok);
done:
    cJSON_Delete(opt.kwargs);
    free(opt.train_list);
    if (fclose(stdout) != 0 && status != 2) {
        fprintf(stderr, TOOL ": error: standard output: %s\n", strerror(errno));
        status = 2;
    }
    return status;
}
