/* entity-checker: validate dialog JSON Lines and pass the good ones through.
 *
 * Reads batches of lines, checks them in parallel (-j), then emits in input order:
 * diagnostics to stderr, passing lines to the output, failing lines to --reject-file.
 * Output is the same bytes whatever -j is. Memory is bounded by one batch: a parsed
 * dialog is freed in the parallel phase unless --build-gazetteer still needs it.
 * Lines that pass are written byte for byte as read (only the line end is normalized
 * to \n), so a pass-through loses nothing.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "dk_cli.h"
#include "dk_dialog.h"
#include "dk_diag.h"
#include "dk_jsonl.h"
#include "dk_metrics.h"
#include "dk_report.h"
#include "dk_version.h"

#define TOOL "entity-checker"
#define BATCH_LINES 4096
#define BATCH_BYTES (16u << 20)

static const char usage_text[] =
    "usage: entity-checker [OPTIONS] [FILE...]\n"
    "Checks dialog JSON Lines (schemas/dialog.schema.json, DESIGN.md section 1) and writes\n"
    "the dialogs that pass to standard output; diagnostics go to standard error as\n"
    "FILE:LINE: error|warning|info: [CODE] DIALOG:/json/pointer: message\n"
    "No FILE, or -, reads standard input; .gz input is decompressed.\n"
    "\n"
    "  -o, --output FILE       write passing dialogs to FILE (.gz compresses)\n"
    "      --schema-only       only the JSON Schema's rules (no entity, offset, id checks)\n"
    "      --on-error=POLICY   a line with errors is: skip (dropped, the default),\n"
    "                          keep (written anyway) or fail (stop at the first)\n"
    "      --reject-file FILE  write the failing lines there, verbatim\n"
    "      --errors-json       diagnostics and the summary as JSON Lines on stderr\n"
    "      --annotate          add a \"checks\" object with the findings to each line\n"
    "      --consistency       entity consistency of assistant replies (needs --gazetteer)\n"
    "      --gazetteer FILE    entity gazetteer, JSON Lines {\"text\",\"type\",\"count\"}\n"
    "      --build-gazetteer   write the gazetteer of the input's annotations instead\n"
    "      --report FILE.xlsx  spreadsheet with a Summary and a Findings sheet\n"
    "  -j, --jobs N            check with N threads (output order is input order)\n"
    "      --shard I/N         keep only lines whose index mod N is I\n"
    "      --shard-by line|id  shard by line index (default) or by a hash of dialog_id\n"
    "  -h, --help              this text\n"
    "      --version           print the version\n"
    "\n"
    "example:\n"
    "  entity-checker --reject-file bad.jsonl raw.jsonl > clean.jsonl\n"
    "  zcat raw.jsonl.gz | entity-checker --shard-by id --shard 0/4 -j 2 | gzip > part0.jsonl.gz\n"
    "  entity-checker --build-gazetteer train.jsonl > gaz.jsonl\n"
    "  entity-checker --consistency --gazetteer gaz.jsonl --report reports/check.xlsx eval.jsonl\n"
    "\n"
    "exit status: 0 no errors, 1 the data had errors, 2 usage, I/O or configuration error\n";


typedef struct options {
    const char   *output, *reject_file, *gazetteer, *report;
    int           schema_only, errors_json, annotate, consistency, build_gazetteer;
    dk_on_error   on_error;
    int           jobs;
    long          shard_i, shard_n;
    int           shard_by_id;
} options;

/* What the parallel phase learns about one line. */
typedef struct result {
    int            in_shard;
    int            parsed;       /* the line became a dialog (maybe with errors) */
    size_t         n_turns;
    char          *id;           /* copy of dialog_id, NULL when invalid */
    dk_diag_list   diags;
    char         **texts;        /* --report: per diagnostic, its turn's content or NULL */
    dk_dialog     *dialog;       /* kept only for --build-gazetteer */
    dk_consistency cons;
} result;

typedef struct totals {
    long dialogs, turns, errors, warnings, infos, dropped, blank;
    long mentions, grounded, gold, hit, conflicts, assistant_turns;
} totals;

typedef struct state {
    const options    *opt;
    dk_gazetteer     *gaz;       /* --consistency (read) or --build-gazetteer (written) */
    dk_jsonl_writer  *out, *reject;
    dk_report        *report;
    dk_dialog_idset  *ids;
    totals            t;
    long              index;     /* data lines seen, for --shard */
    long              stop;      /* --on-error=fail: the line that stopped the run */
} state;

static int fail_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, TOOL ": error: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry '" TOOL " --help' for more information.\n");
    return 2;
}

static int parse_options(int argc, char **argv, options *o)
{
    enum { O_SCHEMA = 256, O_ON_ERROR, O_REJECT, O_JSON, O_ANNOTATE, O_CONS, O_GAZ, O_BUILD,
           O_REPORT, O_SHARD, O_SHARD_BY, O_VERSION };
    static const struct option longopts[] = {
        { "output", required_argument, 0, 'o' },      { "schema-only", no_argument, 0, O_SCHEMA },
        { "on-error", required_argument, 0, O_ON_ERROR }, { "reject-file", required_argument, 0, O_REJECT },
        { "errors-json", no_argument, 0, O_JSON },    { "annotate", no_argument, 0, O_ANNOTATE },
        { "consistency", no_argument, 0, O_CONS },    { "gazetteer", required_argument, 0, O_GAZ },
        { "build-gazetteer", no_argument, 0, O_BUILD }, { "report", required_argument, 0, O_REPORT },
        { "jobs", required_argument, 0, 'j' },        { "shard", required_argument, 0, O_SHARD },
        { "shard-by", required_argument, 0, O_SHARD_BY }, { "help", no_argument, 0, 'h' },
        { "version", no_argument, 0, O_VERSION },     { 0, 0, 0, 0 },
    };
    *o = (options){ .jobs = 1, .shard_n = 1 };
    int c;
    opterr = 0; /* getopt's own messages name the full path; ours follow the house form */
    while ((c = getopt_long(argc, argv, ":o:j:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o':        o->output = optarg; break;
        case O_SCHEMA:   o->schema_only = 1; break;
        case O_REJECT:   o->reject_file = optarg; break;
        case O_JSON:     o->errors_json = 1; break;
        case O_ANNOTATE: o->annotate = 1; break;
        case O_CONS:     o->consistency = 1; break;
        case O_GAZ:      o->gazetteer = optarg; break;
        case O_BUILD:    o->build_gazetteer = 1; break;
        case O_REPORT:   o->report = optarg; break;
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
    if (o->consistency && !o->gazetteer)
        return fail_usage("%s", "--consistency needs --gazetteer FILE (make one with --build-gazetteer)");
    if (o->consistency && o->schema_only)
        return fail_usage("%s", "--consistency and --schema-only do not go together");
    if (o->build_gazetteer && (o->consistency || o->annotate))
        return fail_usage("%s", "--build-gazetteer writes a gazetteer, not dialogs: drop --consistency/--annotate");
    if (o->report) {
        size_t n = strlen(o->report);
        if (n < 5 || strcmp(o->report + n - 5, ".xlsx") != 0)
            return fail_usage("--report needs a file name ending in .xlsx (got '%s')", o->report);
    }
    return 0;
}

/* ---------- the parallel phase ---------- */

static char *fmt_type(const char *type, char *buf, size_t cap)
{
    if (type)
        snprintf(buf, cap, " (%s)", type);
    else
        buf[0] = '\0';
    return buf;
}

static void consistency_diags(result *res, const dk_dialog *d)
{
    for (size_t i = 0; i < res->cons.n_findings; i++) {
        const dk_consistency_finding *f = &res->cons.findings[i];
        char ptr[64], tb[160];
        snprintf(ptr, sizeof ptr, "/turns/%d/content", f->turn);
        if (f->conflict)
            dk_diag_add(&res->diags, DK_SEV_INFO, "I_CONFLICT", d->line, d->id, f->turn, ptr,
                        "mention \"%s\"%s conflicts with \"%s\" fixed in turn %d", f->text,
                        fmt_type(f->type, tb, sizeof tb), f->fixed, f->fixed_turn);
        else
            dk_diag_add(&res->diags, DK_SEV_INFO, "I_UNGROUNDED", d->line, d->id, f->turn, ptr,
                        "mention \"%s\"%s is not grounded in earlier turns", f->text,
                        fmt_type(f->type, tb, sizeof tb));
    }
}

static void check_line(state *st, const dk_jsonl_line *ln, long index, result *res)
{
    const options *o = st->opt;
    memset(res, 0, sizeof *res);
    res->in_shard = o->shard_by_id || index % o->shard_n == o->shard_i;
    if (!res->in_shard)
        return;
    dk_dialog *d = NULL;
    int rc = dk_dialog_parse(ln->text, ln->len, ln->lineno, o->schema_only ? DK_DIALOG_SCHEMA_ONLY : 0,
                             &d, &res->diags);
    if (o->shard_by_id) {
        /* A line without a usable id falls back to its index, so it lands somewhere. */
        uint64_t h = d && d->id ? dk_dialog_id_hash(d->id) : (uint64_t)index;
        res->in_shard = h % (uint64_t)o->shard_n == (uint64_t)o->shard_i;
        if (!res->in_shard) {
            dk_dialog_free(d);
            dk_diag_list_free(&res->diags);
            return;
        }
    }
    (void)rc;
    if (d) {
        res->parsed = 1;
        res->n_turns = d->n_turns;
        res->id = d->id ? strdup(d->id) : NULL;
        if (o->consistency && d->n_turns && dk_entity_consistency(d, st->gaz, &res->cons) == 0)
            consistency_diags(res, d);
        if (o->report && res->diags.n) {
            res->texts = calloc(res->diags.n, sizeof *res->texts);
            for (size_t i = 0; res->texts && i < res->diags.n; i++) {
                int t = res->diags.items[i].turn;
                if (t >= 0 && (size_t)t < d->n_turns && d->turns[t].content)
                    res->texts[i] = strdup(d->turns[t].content);
            }
        }
    }
    if (o->build_gazetteer && d && !res->diags.n_errors)
        res->dialog = d;
    else
        dk_dialog_free(d);
}

static void result_free(result *r)
{
    for (size_t i = 0; r->texts && i < r->diags.n; i++)
        free(r->texts[i]);
    free(r->texts);
    dk_diag_list_free(&r->diags);
    dk_consistency_free(&r->cons);
    dk_dialog_free(r->dialog);
    free(r->id);
}

/* ---------- the ordered phase ---------- */

static void add_num(cJSON *o, const char *key, double v)
{
    if (isnan(v))
        cJSON_AddNullToObject(o, key);
    else
        cJSON_AddNumberToObject(o, key, v);
}

/* The "checks" object --annotate adds: findings, and entity consistency when run. */
static char *annotation(const state *st, const result *r)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "errors", (double)r->diags.n_errors);
    cJSON_AddNumberToObject(c, "warnings", (double)r->diags.n_warnings);
    cJSON *fs = cJSON_AddArrayToObject(c, "findings");
    for (size_t i = 0; i < r->diags.n; i++) {
        const dk_diag *d = &r->diags.items[i];
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "severity", dk_severity_name(d->sev));
        cJSON_AddStringToObject(f, "code", d->code);
        if (d->turn >= 0)
            cJSON_AddNumberToObject(f, "turn", d->turn);
        else
            cJSON_AddNullToObject(f, "turn");
        cJSON_AddStringToObject(f, "pointer", d->pointer);
        cJSON_AddStringToObject(f, "message", d->message);
        cJSON_AddItemToArray(fs, f);
    }
    if (st->opt->consistency) {
        cJSON *e = cJSON_AddObjectToObject(c, "entity_consistency");
        size_t m = 0, g = 0, gold = 0, hit = 0;
        cJSON *turns = cJSON_CreateArray();
        for (size_t i = 0; i < r->cons.n_turns; i++) {
            const dk_consistency_turn *t = &r->cons.turns[i];
            m += t->n_mentions, g += t->n_grounded, gold += t->n_gold, hit += t->n_hit;
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "turn", t->turn);
            cJSON_AddNumberToObject(o, "mentions", (double)t->n_mentions);
            cJSON_AddNumberToObject(o, "grounded", (double)t->n_grounded);
            cJSON_AddNumberToObject(o, "gold", (double)t->n_gold);
            add_num(o, "prec_s", t->prec_s);
            add_num(o, "prec_t", t->prec_t);
            add_num(o, "recall_t", t->recall_t);
            add_num(o, "f1", t->f1);
            cJSON_AddItemToArray(turns, o);
        }
        double ps = m ? (double)g / m : NAN, pt = m ? (double)hit / m : NAN;
        double rt = gold ? (double)hit / gold : NAN;
        cJSON_AddNumberToObject(e, "mentions", (double)m);
        cJSON_AddNumberToObject(e, "grounded", (double)g);
        add_num(e, "prec_s", ps);
        add_num(e, "prec_t", pt);
        add_num(e, "recall_t", rt);
        add_num(e, "f1", isnan(pt) || isnan(rt) ? NAN : pt + rt > 0 ? 2 * pt * rt / (pt + rt) : 0);
        cJSON_AddItemToObject(e, "turns", turns);
    }
    char *s = cJSON_PrintUnformatted(c);
    cJSON_Delete(c);
    return s;
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

static int report_line(state *st, const result *r)
{
    for (size_t i = 0; i < r->diags.n; i++) {
        const dk_diag *d = &r->diags.items[i];
        dk_report_finding f = { d->line, d->dialog_id, d->turn, d->pointer, d->code,
                                dk_severity_name(d->sev), d->message, r->texts ? r->texts[i] : NULL };
        int rc = dk_report_add_finding(st->report, &f);
        if (rc)
            return rc;
        if ((rc = dk_report_count(st->report, d->code, dk_severity_name(d->sev), 1)) != 0)
            return rc;
    }
    return 0;
}

/* Emits one line's outcome in input order; returns 0 or a negative DK_E... (I/O). */
static int emit(state *st, const char *file, const dk_jsonl_line *ln, result *r, dk_error *err)
{
    const options *o = st->opt;
    if (!r->in_shard)
        return 0;
    st->t.dialogs++;
    st->t.turns += (long)r->n_turns;
    if (r->id && !o->schema_only) {
        long first = 0;
        int added = dk_dialog_idset_add(st->ids, r->id, ln->lineno, &first);
        if (added < 0)
            return dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
        if (added == 0)
            dk_diag_add(&r->diags, DK_SEV_ERROR, "E_DUPLICATE_ID", ln->lineno, r->id, -1, "/dialog_id",
                        "dialog_id \"%s\" already used on line %ld", r->id, first);
    }
    st->t.errors += (long)r->diags.n_errors;
    st->t.warnings += (long)r->diags.n_warnings;
    st->t.infos += (long)r->diags.n_infos;
    for (size_t i = 0; i < r->cons.n_turns; i++) {
        st->t.assistant_turns++;
        st->t.mentions += (long)r->cons.turns[i].n_mentions;
        st->t.grounded += (long)r->cons.turns[i].n_grounded;
    }
    for (size_t i = 0; i < r->cons.n_findings; i++)
        st->t.conflicts += r->cons.findings[i].conflict;
    if (write_diags(st, file, r) != 0)
        return dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
    if (st->report && report_line(st, r) != 0)
        return dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");

    int bad = r->diags.n_errors > 0;
    int rc = 0;
    if (bad && st->reject && (rc = dk_jsonl_writer_line(st->reject, ln->text, ln->len, err)) != 0)
        return rc;
    if (bad && o->on_error == DK_ON_ERROR_FAIL) {
        st->stop = ln->lineno;
        st->t.dropped++;
        return 0;
    }
    if (bad && o->on_error == DK_ON_ERROR_SKIP) {
        st->t.dropped++;
        return 0;
    }
    if (o->build_gazetteer) {
        if (r->dialog && !bad && dk_gazetteer_add_dialog(st->gaz, r->dialog) != 0)
            return dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
        return 0;
    }
    if (o->annotate && r->parsed) {
        char *checks = annotation(st, r);
        size_t n = 0;
        char *line = checks ? dk_json_set_member(ln->text, ln->len, "checks", checks, &n) : NULL;
        free(checks);
        if (!line)
            return dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
        rc = dk_jsonl_writer_line(st->out, line, n, err);
        free(line);
        return rc;
    }
    return dk_jsonl_writer_line(st->out, ln->text, ln->len, err);
}

static int check_file(state *st, const char *path, dk_error *err)
{
    dk_jsonl_reader *rd = NULL;
    dk_jsonl_batch batch = { 0 };
    result *res = NULL;
    int rc = dk_jsonl_reader_open(&rd, path, err);
    if (rc)
        goto out;
    if ((res = calloc(BATCH_LINES, sizeof *res)) == NULL) {
        rc = dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
        goto out;
    }
    const char *file = dk_jsonl_reader_name(rd);
    /* Duplicate ids are a rule within one file (DESIGN.md section 1). */
    dk_dialog_idset_free(st->ids);
    if ((st->ids = dk_dialog_idset_new()) == NULL) {
        rc = dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
        goto out;
    }
    int n = 0;
    while (!st->stop && (n = dk_jsonl_reader_fill(rd, &batch, BATCH_LINES, BATCH_BYTES, err)) > 0) {
        long base = st->index;
        #pragma omp parallel for schedule(dynamic, 8) num_threads(st->opt->jobs)
        for (int i = 0; i < n; i++)
            check_line(st, &batch.lines[i], base + i, &res[i]);
        st->index += n;
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
    st->t.blank += dk_jsonl_reader_blank_lines(rd);
out:
    free(res);
    dk_jsonl_batch_free(&batch);
    dk_jsonl_reader_free(rd);
    return rc;
}

static void print_summary(const state *st)
{
    const totals *t = &st->t;
    if (st->opt->errors_json) {
        cJSON *o = cJSON_CreateObject(), *s = cJSON_AddObjectToObject(o, "summary");
        cJSON_AddNumberToObject(s, "dialogs", (double)t->dialogs);
        cJSON_AddNumberToObject(s, "turns", (double)t->turns);
        cJSON_AddNumberToObject(s, "errors", (double)t->errors);
        cJSON_AddNumberToObject(s, "warnings", (double)t->warnings);
        cJSON_AddNumberToObject(s, "infos", (double)t->infos);
        cJSON_AddNumberToObject(s, "dropped", (double)t->dropped);
        cJSON_AddNumberToObject(s, "blank_lines", (double)t->blank);
        if (st->stop)
            cJSON_AddNumberToObject(s, "stopped_at_line", (double)st->stop);
        if (st->opt->consistency) {
            cJSON_AddNumberToObject(s, "mentions", (double)t->mentions);
            cJSON_AddNumberToObject(s, "grounded", (double)t->grounded);
            cJSON_AddNumberToObject(s, "conflicts", (double)t->conflicts);
        }
        char *txt = cJSON_PrintUnformatted(o);
        if (txt)
            fprintf(stderr, "%s\n", txt);
        free(txt);
        cJSON_Delete(o);
        return;
    }
    fprintf(stderr, TOOL ": checked %ld dialogs, %ld turns: %ld errors, %ld warnings, %ld lines dropped",
            t->dialogs, t->turns, t->errors, t->warnings, t->dropped);
    if (st->stop)
        fprintf(stderr, "; stopped at line %ld (--on-error=fail)", st->stop);
    fputc('\n', stderr);
    if (st->opt->consistency)
        fprintf(stderr, TOOL ": consistency: %ld mentions in %ld assistant turns, %ld grounded (%.1f%%), "
                "%ld ungrounded, %ld conflicting\n", t->mentions, t->assistant_turns, t->grounded,
                t->mentions ? 100.0 * (double)t->grounded / (double)t->mentions : 0.0,
                t->mentions - t->grounded - t->conflicts, t->conflicts);
}

static int open_report(state *st, int argc, char **argv, dk_error *err)
{
    const options *o = st->opt;
    int rc = dk_report_new(&st->report, o->report, "entity-checker findings", err);
    if (rc)
        return rc;
    char inputs[1024] = "";
    for (int i = 0; i < argc; i++)
        snprintf(inputs + strlen(inputs), sizeof inputs - strlen(inputs), "%s%s", i ? " " : "", argv[i]);
    static const char *const policies[] = { "skip", "keep", "fail" };
    char shard[64];
    snprintf(shard, sizeof shard, "%ld/%ld by %s", o->shard_i, o->shard_n, o->shard_by_id ? "id" : "line");
    dk_report_setting(st->report, "tool", TOOL " " DK_VERSION);
    dk_report_setting(st->report, "input", argc ? inputs : "<stdin>");
    dk_report_setting(st->report, "mode", o->schema_only ? "schema only" : "full validation");
    dk_report_setting(st->report, "on error", policies[o->on_error]);
    dk_report_setting(st->report, "consistency", o->consistency ? o->gazetteer : "off");
    dk_report_setting(st->report, "shard", shard);
    return 0;
}

static int finish_report(state *st, dk_error *err)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%ld", st->t.dialogs);
    dk_report_setting(st->report, "dialogs checked", buf);
    snprintf(buf, sizeof buf, "%ld", st->t.turns);
    dk_report_setting(st->report, "turns", buf);
    snprintf(buf, sizeof buf, "%ld", st->t.dropped);
    dk_report_setting(st->report, "lines dropped", buf);
    int rc = dk_report_close(st->report, err);
    st->report = NULL;
    return rc;
}

int main(int argc, char **argv)
{
    options opt;
    int rc = parse_options(argc, argv, &opt);
    if (rc)
        return rc < 0 ? 0 : rc;
    state st = { .opt = &opt };
    dk_error err = { 0 };
    int status = 2;
    char *const *files = argv + optind;
    int n_files = argc - optind;

    setvbuf(stderr, NULL, _IOFBF, 1 << 16);
    if (opt.consistency && (rc = dk_gazetteer_load(&st.gaz, opt.gazetteer, &err)) != 0)
        goto out;
    if (opt.build_gazetteer && (st.gaz = dk_gazetteer_new()) == NULL) {
        rc = dk_error_set(&err, DK_ENOMEM, NULL, 0, "out of memory");
        goto out;
    }
    if ((rc = dk_jsonl_writer_open(&st.out, opt.output, &err)) != 0)
        goto out;
    if (opt.reject_file && (rc = dk_jsonl_writer_open(&st.reject, opt.reject_file, &err)) != 0)
        goto out;
    if (opt.report && (rc = open_report(&st, n_files, argv + optind, &err)) != 0)
        goto out;

    for (int i = 0; i < (n_files ? n_files : 1) && !st.stop && rc == 0; i++)
        rc = check_file(&st, n_files ? files[i] : NULL, &err);
    if (rc == 0 && opt.build_gazetteer)
        rc = dk_gazetteer_write(st.gaz, st.out, &err);
    if (rc == 0 && st.report)
        rc = finish_report(&st, &err);
    if (rc == 0) {
        print_summary(&st);
        status = st.t.errors ? 1 : 0;
    }
out:
    if (rc == 0) {
        rc = dk_jsonl_writer_close(st.out, &err);
        st.out = NULL;
    }
    if (rc == 0) {
        rc = dk_jsonl_writer_close(st.reject, &err);
        st.reject = NULL;
    }
    if (rc) {
        fprintf(stderr, TOOL ": error: %s\n", err.msg[0] ? err.msg : dk_strerror(rc));
        status = 2;
    }
    dk_jsonl_writer_close(st.out, NULL);
    dk_jsonl_writer_close(st.reject, NULL);
    dk_report_free(st.report);
    dk_gazetteer_free(st.gaz);
    dk_dialog_idset_free(st.ids);
    if (fclose(stdout) != 0 && status != 2) {
        fprintf(stderr, TOOL ": error: standard output: %s\n", strerror(errno));
        status = 2;
    }
    return status;
}
