/* Unit tests of dk_metrics: the gazetteer (add, merge, size, write order, load errors),
 * the matching rules (leftmost-longest, ASCII word boundaries, folding, CJK inside
 * running text) and entity consistency on small dialogs whose |h|, |h n s|, |g|,
 * |h n g|, prec_s, prec_t, recall_t and F1 are worked out by hand in the comments,
 * from the definitions in DESIGN.md section 7 and dk_metrics.h. */
#include "dk_metrics.h"
#include "dk_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static dk_dialog *dialog(const char *line)
{
    dk_dialog *d = NULL;
    dk_diag_list l = { 0 };
    int rc = dk_dialog_parse(line, strlen(line), 1, 0, &d, &l);
    DK_CHECK_INT(rc, 0);
    if (rc)
        for (size_t i = 0; i < l.n; i++)
            fprintf(stderr, "  test dialog: [%s] %s: %s\n", l.items[i].code, l.items[i].pointer, l.items[i].message);
    dk_diag_list_free(&l);
    return d;
}

static char *tmp_write(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/dk_metrics_XXXXXX");
    int fd = mkstemp(path);
    DK_CHECK(fd >= 0);
    if (fd >= 0) {
        DK_CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
        close(fd);
    }
    return path;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *s = calloc(1, 1 << 16);
    size_t n = fread(s, 1, (1 << 16) - 1, f);
    s[n] = '\0';
    fclose(f);
    return s;
}

static char *written(const dk_gazetteer *g)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/dk_metrics_w_XXXXXX");
    int fd = mkstemp(path);
    DK_CHECK(fd >= 0);
    close(fd);
    dk_jsonl_writer *w = NULL;
    dk_error err;
    DK_CHECK_INT(dk_jsonl_writer_open(&w, path, &err), 0);
    DK_CHECK_INT(dk_gazetteer_write(g, w, &err), 0);
    DK_CHECK_INT(dk_jsonl_writer_close(w, &err), 0);
    char *s = slurp(path);
    unlink(path);
    return s;
}

static void test_gazetteer_build(void)
{
    dk_gazetteer *g = dk_gazetteer_new();
    DK_CHECK_INT(dk_gazetteer_size(g), 0);
    DK_CHECK_INT(dk_gazetteer_add(g, "Beijing", "city", 3), 0);
    DK_CHECK_INT(dk_gazetteer_add(g, "BEIJING", "city", 1), 0);   /* same folded text and type */
    DK_CHECK_INT(dk_gazetteer_add(g, "Shanghai", "city", 2), 0);
    DK_CHECK_INT(dk_gazetteer_add(g, "Hilton", "brand", 2), 0);
    DK_CHECK_INT(dk_gazetteer_add(g, "Hilton", "hotel", 1), 0);   /* same text, other type */
    DK_CHECK_INT(dk_gazetteer_add(g, "Paris", "person", 1), 0);
    DK_CHECK_INT(dk_gazetteer_add(g, "Paris", "city", 1), 0);
    DK_CHECK_INT(dk_gazetteer_add(g, "East", "area", 1), 0);
    DK_CHECK_INT(dk_gazetteer_add(g, "4", "people", 1), 0);
    DK_CHECK_INT(dk_gazetteer_add(g, "北京", "city", 1), 0);
    /* (beijing,city) (shanghai,city) (hilton,brand) (hilton,hotel) (paris,person)
     * (paris,city) (east,area) (4,people) (北京,city) */
    DK_CHECK_INT(dk_gazetteer_size(g), 9);
    /* count desc; then text; then type. Texts chosen so that the byte order of the
     * spelling and of the folded text agree. */
    char *s = written(g);
    DK_CHECK_STR(s,
        "{\"text\":\"Beijing\",\"type\":\"city\",\"count\":4}\n"
        "{\"text\":\"Hilton\",\"type\":\"brand\",\"count\":2}\n"
        "{\"text\":\"Shanghai\",\"type\":\"city\",\"count\":2}\n"
        "{\"text\":\"4\",\"type\":\"people\",\"count\":1}\n"
        "{\"text\":\"East\",\"type\":\"area\",\"count\":1}\n"
        "{\"text\":\"Hilton\",\"type\":\"hotel\",\"count\":1}\n"
        "{\"text\":\"Paris\",\"type\":\"city\",\"count\":1}\n"
        "{\"text\":\"Paris\",\"type\":\"person\",\"count\":1}\n"
        "{\"text\":\"北京\",\"type\":\"city\",\"count\":1}\n");
    free(s);

    /* merge: counts add up per (folded text, type); the first spelling stays */
    dk_gazetteer *a = dk_gazetteer_new(), *b = dk_gazetteer_new();
    dk_gazetteer_add(a, "Rome", "city", 1);
    dk_gazetteer_add(b, "ROME", "city", 2);
    dk_gazetteer_add(b, "Milan", "city", 1);
    dk_gazetteer_add(b, "Milan", NULL, 1);
    DK_CHECK_INT(dk_gazetteer_merge(a, b), 0);
    DK_CHECK_INT(dk_gazetteer_size(a), 3);
    DK_CHECK_INT(dk_gazetteer_size(b), 3); /* src unchanged: (rome,city) (milan,city) (milan,-) */
    s = written(a);
    /* Rome 3, then the two Milan entries (count 1) in some type order */
    DK_CHECK(s && strncmp(s, "{\"text\":\"Rome\",\"type\":\"city\",\"count\":3}\n", 40) == 0);
    DK_CHECK(s && strstr(s, "{\"text\":\"Milan\",\"type\":\"city\",\"count\":1}\n") != NULL);
    int lines = 0;
    for (const char *p = s; p && *p; p++)
        lines += *p == '\n';
    DK_CHECK_INT(lines, 3);
    free(s);
    dk_gazetteer_free(a);
    dk_gazetteer_free(b);

    /* add_dialog: once per annotation, strings untyped */
    dk_gazetteer *c = dk_gazetteer_new();
    dk_dialog *d = dialog("{\"dialog_id\":\"x\",\"turns\":[{\"role\":\"user\",\"content\":\"Rome or rome\","
                          "\"entities\":[{\"text\":\"Rome\",\"type\":\"city\"},{\"text\":\"rome\",\"type\":\"city\"},\"Rome\"]}]}");
    DK_CHECK_INT(d ? dk_gazetteer_add_dialog(c, d) : -1, 0);
    DK_CHECK_INT(dk_gazetteer_size(c), 2); /* (rome,city) x2 and (rome,-) x1 */
    s = written(c);
    DK_CHECK(s && strncmp(s, "{\"text\":\"Rome\",\"type\":\"city\",\"count\":2}\n", 40) == 0);
    free(s);
    dk_dialog_free(d);
    dk_gazetteer_free(c);
    dk_gazetteer_free(g);
    dk_gazetteer_free(NULL);
}

/* |h| of the single assistant turn replying `reply`, with the gazetteer g. */
static long mentions(const dk_gazetteer *g, const char *reply)
{
    char line[1024];
    snprintf(line, sizeof line, "{\"dialog_id\":\"m\",\"turns\":[{\"role\":\"user\",\"content\":\"?\"},"
                                "{\"role\":\"assistant\",\"content\":\"%s\"}]}", reply);
    dk_dialog *d = dialog(line);
    dk_consistency c;
    long n = -1;
    if (d && dk_entity_consistency(d, g, &c) == 0) {
        if (c.n_turns == 1)
            n = (long)c.turns[0].n_mentions;
        dk_consistency_free(&c);
    }
    dk_dialog_free(d);
    return n;
}

static void test_matching(void)
{
    dk_gazetteer *g = dk_gazetteer_new();
    const char *texts[] = { "4", "east", "北京", "New York", "New York City", "York", "B&B", "上海" };
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++)
        dk_gazetteer_add(g, texts[i], "t", 1);
    DK_CHECK_INT(mentions(g, "a table for 14 at the feast"), 0);   /* "4" in "14", "east" in "feast" */
    DK_CHECK_INT(mentions(g, "4th floor, Easter menu"), 0);        /* followed by a letter */
    DK_CHECK_INT(mentions(g, "4 people, east side"), 2);
    DK_CHECK_INT(mentions(g, "(4) east-west"), 2);                 /* punctuation is a boundary */
    DK_CHECK_INT(mentions(g, "我想去北京玩"), 1);                    /* CJK inside running text */
    DK_CHECK_INT(mentions(g, "北京到上海"), 2);
    DK_CHECK_INT(mentions(g, "from 北京, 4 nights"), 2);
    /* leftmost-longest, non-overlapping: one mention, not three */
    DK_CHECK_INT(mentions(g, "New York City hall"), 1);
    DK_CHECK_INT(mentions(g, "New York state"), 1);
    DK_CHECK_INT(mentions(g, "York"), 1);
    DK_CHECK_INT(mentions(g, "a New Yorker"), 0);
    /* over folded text: case and fullwidth forms */
    DK_CHECK_INT(mentions(g, "NEW YORK"), 1);
    DK_CHECK_INT(mentions(g, "ＮＥＷ ＹＯＲＫ"), 1);
    DK_CHECK_INT(mentions(g, "ＥＡＳＴ"), 1);
    /* an entry that starts and ends with a non-word character needs no boundary */
    DK_CHECK_INT(mentions(g, "the Alexander B&B."), 1);
    /* distinct mentions: the same text twice is one */
    DK_CHECK_INT(mentions(g, "east, east and 4"), 2);
    dk_gazetteer_free(g);
}

static void check_turn(const dk_consistency_turn *t, int turn, size_t h, size_t hs, size_t gold, size_t hg,
                       double ps, double pt, double rt, double f1)
{
    DK_CHECK_INT(t->turn, turn);
    DK_CHECK_INT(t->n_mentions, h);
    DK_CHECK_INT(t->n_grounded, hs);
    DK_CHECK_INT(t->n_gold, gold);
    DK_CHECK_INT(t->n_hit, hg);
    const double got[4] = { t->prec_s, t->prec_t, t->recall_t, t->f1 }, want[4] = { ps, pt, rt, f1 };
    for (int i = 0; i < 4; i++) {
        if (isnan(want[i]))
            DK_CHECK(isnan(got[i]));
        else
            DK_CHECK_NEAR(got[i], want[i], 1e-12);
    }
}

static const dk_consistency_finding *finding(const dk_consistency *c, const char *text)
{
    for (size_t i = 0; i < c->n_findings; i++)
        if (strcmp(c->findings[i].text, text) == 0)
            return &c->findings[i];
    return NULL;
}

static void test_consistency(void)
{
    dk_gazetteer *g = dk_gazetteer_new();
    dk_gazetteer_add(g, "Beijing", "city", 5);
    dk_gazetteer_add(g, "Shanghai", "city", 3);
    dk_gazetteer_add(g, "Hilton", "hotel", 2);
    dk_gazetteer_add(g, "Marriott", "hotel", 1);
    dk_gazetteer_add(g, "4", "people", 1);

    /* Dialog 1.
     * t0 user "I need a hotel in Beijing for 4" (annotated Beijing/city, 4/people):
     *    mentions {beijing, 4}; a user turn, so no score.
     * t1 assistant "The Hilton in Beijing has rooms for 4." annotated Hilton/hotel:
     *    h = {hilton, beijing, 4} (3); s = {beijing, 4}; h n s = {beijing, 4} (2);
     *    g = {hilton} (1); h n g = {hilton} (1);
     *    prec_s = 2/3, prec_t = 1/3, recall_t = 1/1, f1 = 2(1/3)(1)/(1/3 + 1) = 1/2.
     *    hilton: ungrounded, type hotel, no earlier hotel -> not a conflict.
     * t2 user "Great, book the Hilton." (annotated "Hilton").
     * t3 assistant "Booked the Marriott in Shanghai." no annotation:
     *    h = {marriott, shanghai} (2); s = {beijing, 4, hilton}; h n s = {} (0);
     *    g = {} (0); prec_s = 0/2 = 0, prec_t = 0/2 = 0, recall_t = 0/0 = NAN, f1 NAN.
     *    marriott: gazetteer type hotel, hilton (hotel) fixed in t1 -> conflict;
     *    shanghai: type city, beijing (city) fixed in t0 -> conflict. */
    dk_dialog *d = dialog(
        "{\"dialog_id\":\"c1\",\"turns\":["
        "{\"role\":\"user\",\"content\":\"I need a hotel in Beijing for 4\",\"entities\":"
        "[{\"text\":\"Beijing\",\"type\":\"city\"},{\"text\":\"4\",\"type\":\"people\"}]},"
        "{\"role\":\"assistant\",\"content\":\"The Hilton in Beijing has rooms for 4.\",\"entities\":"
        "[{\"text\":\"Hilton\",\"type\":\"hotel\"}]},"
        "{\"role\":\"user\",\"content\":\"Great, book the Hilton.\",\"entities\":[\"Hilton\"]},"
        "{\"role\":\"assistant\",\"content\":\"Booked the Marriott in Shanghai.\"}]}");
    dk_consistency c;
    DK_CHECK_INT(d ? dk_entity_consistency(d, g, &c) : -1, 0);
    DK_CHECK_INT(c.n_turns, 2);
    if (c.n_turns == 2) {
        check_turn(&c.turns[0], 1, 3, 2, 1, 1, 2.0 / 3, 1.0 / 3, 1.0, 0.5);
        check_turn(&c.turns[1], 3, 2, 0, 0, 0, 0.0, 0.0, NAN, NAN);
    }
    DK_CHECK_INT(c.n_findings, 3);
    const dk_consistency_finding *f = finding(&c, "hilton");
    DK_CHECK(f && f->turn == 1 && f->conflict == 0 && f->fixed == NULL);
    DK_CHECK_STR(f ? f->type : NULL, "hotel");
    f = finding(&c, "marriott");
    DK_CHECK(f && f->turn == 3 && f->conflict == 1 && f->fixed_turn == 1);
    DK_CHECK_STR(f ? f->type : NULL, "hotel");
    DK_CHECK_STR(f ? f->fixed : NULL, "hilton");
    f = finding(&c, "shanghai");
    DK_CHECK(f && f->turn == 3 && f->conflict == 1 && f->fixed_turn == 0);
    DK_CHECK_STR(f ? f->type : NULL, "city");
    DK_CHECK_STR(f ? f->fixed : NULL, "beijing");
    DK_CHECK(finding(&c, "beijing") == NULL && finding(&c, "4") == NULL);
    dk_consistency_free(&c);
    dk_consistency_free(&c); /* freed contents are zeroed */
    dk_dialog_free(d);

    /* Dialog 2: grounding through earlier mentions (no annotation anywhere), and the
     * NAN cases.
     * t0 user "From Shanghai to Beijing." mentions {shanghai, beijing}.
     * t1 assistant "Shanghai to Beijing, done. Beijing!" h = {shanghai, beijing} (2);
     *    h n s = 2; g = {} ; prec_s 1, prec_t 0, recall NAN, f1 NAN; no finding.
     * t2 assistant "Sure." h = {}, g = {}: every ratio NAN.
     * t3 assistant "Try Kyoto." annotated Kyoto (not in the gazetteer): h = {}, g = 1,
     *    h n g = 0: prec_s NAN, prec_t NAN, recall_t 0/1 = 0, f1 NAN.
     * t4 assistant null content with a tool call: no score.
     * t5 tool "{}"; t6 assistant "Shanghai, 4." annotated "4":
     *    h = {shanghai, 4} (2); s = {shanghai, beijing, kyoto}; h n s = {shanghai} (1);
     *    g = {4}; h n g = {4} (1): prec_s 1/2, prec_t 1/2, recall 1, f1 2/3.
     *    4: type people (annotation untyped, gazetteer people), no earlier people -> ungrounded. */
    d = dialog(
        "{\"dialog_id\":\"c2\",\"turns\":["
        "{\"role\":\"user\",\"content\":\"From Shanghai to Beijing.\"},"
        "{\"role\":\"assistant\",\"content\":\"Shanghai to Beijing, done. Beijing!\"},"
        "{\"role\":\"assistant\",\"content\":\"Sure.\"},"
        "{\"role\":\"assistant\",\"content\":\"Try Kyoto.\",\"entities\":[\"Kyoto\"]},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"name\":\"f\"}]},"
        "{\"role\":\"tool\",\"content\":\"{}\"},"
        "{\"role\":\"assistant\",\"content\":\"Shanghai, 4.\",\"entities\":[\"4\"]}]}");
    DK_CHECK_INT(d ? dk_entity_consistency(d, g, &c) : -1, 0);
    DK_CHECK_INT(c.n_turns, 4);
    if (c.n_turns == 4) {
        check_turn(&c.turns[0], 1, 2, 2, 0, 0, 1.0, 0.0, NAN, NAN);
        check_turn(&c.turns[1], 2, 0, 0, 0, 0, NAN, NAN, NAN, NAN);
        check_turn(&c.turns[2], 3, 0, 0, 1, 0, NAN, NAN, 0.0, NAN);
        check_turn(&c.turns[3], 6, 2, 1, 1, 1, 0.5, 0.5, 1.0, 2.0 / 3);
    }
    DK_CHECK_INT(c.n_findings, 1);
    f = finding(&c, "4");
    DK_CHECK(f && f->turn == 6 && f->conflict == 0);
    DK_CHECK_STR(f ? f->type : NULL, "people");
    dk_consistency_free(&c);
    dk_dialog_free(d);

    /* Dialog 3: prec_t = recall_t = 0 with both defined gives f1 = 0.
     * t1 assistant "Beijing or Kyoto." annotated Kyoto (not in the gazetteer):
     * h = {beijing}; s = {}; g = {kyoto}; h n g = 0: prec_s 0/1, prec_t 0/1, recall 0/1, f1 0.
     * beijing: no earlier turn at all -> ungrounded, type city, no conflict. */
    d = dialog("{\"dialog_id\":\"c3\",\"turns\":[{\"role\":\"user\",\"content\":\"Hi\"},"
               "{\"role\":\"assistant\",\"content\":\"Beijing or Kyoto.\",\"entities\":[\"Kyoto\"]}]}");
    DK_CHECK_INT(d ? dk_entity_consistency(d, g, &c) : -1, 0);
    DK_CHECK_INT(c.n_turns, 1);
    if (c.n_turns == 1)
        check_turn(&c.turns[0], 1, 1, 0, 1, 0, 0.0, 0.0, 0.0, 0.0);
    DK_CHECK_INT(c.n_findings, 1);
    f = finding(&c, "beijing");
    DK_CHECK(f && f->conflict == 0);
    dk_consistency_free(&c);
    dk_dialog_free(d);
    dk_gazetteer_free(g);
}

/* The type of a mention: the reply's own annotation type wins over the gazetteer's
 * most frequent type for that text. */
static void test_mention_type(void)
{
    dk_gazetteer *g = dk_gazetteer_new();
    dk_gazetteer_add(g, "Hilton", "hotel", 1);
    dk_gazetteer_add(g, "Hilton", "brand", 3);   /* majority type: brand */
    dk_gazetteer_add(g, "Marriott", "hotel", 1);
    /* annotated hotel in the reply: a hotel was fixed earlier (marriott) -> conflict */
    dk_dialog *d = dialog("{\"dialog_id\":\"t1\",\"turns\":["
                          "{\"role\":\"user\",\"content\":\"The Marriott?\",\"entities\":[{\"text\":\"Marriott\",\"type\":\"hotel\"}]},"
                          "{\"role\":\"assistant\",\"content\":\"No, the Hilton.\",\"entities\":[{\"text\":\"Hilton\",\"type\":\"hotel\"}]}]}");
    dk_consistency c;
    DK_CHECK_INT(d ? dk_entity_consistency(d, g, &c) : -1, 0);
    DK_CHECK_INT(c.n_findings, 1);
    const dk_consistency_finding *f = finding(&c, "hilton");
    DK_CHECK(f && f->conflict == 1 && f->fixed_turn == 0);
    DK_CHECK_STR(f ? f->type : NULL, "hotel");
    DK_CHECK_STR(f ? f->fixed : NULL, "marriott");
    dk_consistency_free(&c);
    dk_dialog_free(d);
    /* not annotated: the gazetteer's majority type (brand); no brand fixed earlier */
    d = dialog("{\"dialog_id\":\"t2\",\"turns\":["
               "{\"role\":\"user\",\"content\":\"The Marriott?\",\"entities\":[{\"text\":\"Marriott\",\"type\":\"hotel\"}]},"
               "{\"role\":\"assistant\",\"content\":\"No, the Hilton.\"}]}");
    DK_CHECK_INT(d ? dk_entity_consistency(d, g, &c) : -1, 0);
    DK_CHECK_INT(c.n_findings, 1);
    f = finding(&c, "hilton");
    DK_CHECK(f && f->conflict == 0);
    DK_CHECK_STR(f ? f->type : NULL, "brand");
    dk_consistency_free(&c);
    dk_dialog_free(d);
    dk_gazetteer_free(g);
}

static void expect_load_error(const char *text, long line)
{
    char *path = tmp_write(text);
    dk_gazetteer *g = (dk_gazetteer *)1;
    dk_error err;
    dk_error_clear(&err);
    DK_CHECK_INT(dk_gazetteer_load(&g, path, &err), DK_EPARSE);
    DK_CHECK(g == NULL);
    DK_CHECK_INT(err.code, DK_EPARSE);
    DK_CHECK_INT(err.line, line);
    DK_CHECK_STR(err.file, path);
    DK_CHECK(err.msg[0] != '\0');
    unlink(path);
}

static void test_load(void)
{
    /* a good file: type optional (or null), count optional (1), a blank line skipped */
    char *path = tmp_write("{\"text\":\"Beijing\",\"type\":\"city\",\"count\":3}\n\n"
                           "{\"text\":\"Rome\"}\n{\"text\":\"Oslo\",\"type\":null,\"count\":2}\r\n"
                           "{\"text\":\"Beijing\",\"type\":\"city\"}");
    dk_gazetteer *g = NULL;
    dk_error err;
    DK_CHECK_INT(dk_gazetteer_load(&g, path, &err), 0);
    DK_CHECK(g != NULL);
    DK_CHECK_INT(g ? dk_gazetteer_size(g) : 0, 3);
    char *s = g ? written(g) : NULL;
    DK_CHECK(s && strncmp(s, "{\"text\":\"Beijing\",\"type\":\"city\",\"count\":4}\n", 41) == 0);
    DK_CHECK(s && strstr(s, "\"text\":\"Oslo\"") && strstr(s, "\"count\":2}"));
    free(s);
    DK_CHECK_INT(g ? mentions(g, "Rome, then Oslo and Beijing") : -1, 3);
    dk_gazetteer_free(g);
    unlink(path);

    /* bad lines: DK_EPARSE with the file and the physical line number */
    expect_load_error("{\"text\":\"a\"}\nnot json\n", 2);
    expect_load_error("{\"text\":\"a\"}\n\n{\"type\":\"city\"}\n", 3);
    expect_load_error("{\"text\":\"\"}\n", 1);
    expect_load_error("{\"text\":5}\n", 1);
    expect_load_error("{\"text\":\"a\"}\n{\"text\":\"b\",\"type\":5}\n", 2);
    expect_load_error("{\"text\":\"a\",\"count\":0}\n", 1);
    expect_load_error("{\"text\":\"a\",\"count\":\"3\"}\n", 1);
    expect_load_error("[{\"text\":\"a\"}]\n", 1);

    /* a missing file is an error, not an empty gazetteer */
    g = (dk_gazetteer *)1;
    DK_CHECK(dk_gazetteer_load(&g, "/nonexistent/dir/gaz.jsonl", &err) < 0);
    DK_CHECK(g == NULL);
}

int main(void)
{
    DK_RUN(test_gazetteer_build);
    DK_RUN(test_matching);
    DK_RUN(test_consistency);
    DK_RUN(test_mention_type);
    DK_RUN(test_load);
    DK_TEST_MAIN_END("test_metrics");
}
