/* Unit tests of dk_dialog: every diagnostic code with its JSON pointer and turn index,
 * the three outcomes of dk_dialog_parse (0, DK_ESCHEMA, DK_EPARSE), the dialog view,
 * --schema-only, entity matching after NFKC + case folding, code-point offsets,
 * serialization, dk_json_set_member, the id set and the FNV-1a id hash.
 * Expected values are worked out by hand from DESIGN.md section 1, schemas/README.md
 * and dk_dialog.h (the FNV-1a values from the algorithm's published test vectors). */
#include "dk_dialog.h"
#include "dk_test.h"

#include <stdio.h>
#include <stdlib.h>

/* Parses a NUL-terminated line as line 5. */
static int parse(const char *s, unsigned flags, dk_dialog **d, dk_diag_list *l)
{
    return dk_dialog_parse(s, strlen(s), 5, flags, d, l);
}

/* The line gives status want_rc and exactly one diagnostic: code at pointer, turn. */
static void one(const char *line, int want_rc, const char *code, const char *ptr, int turn, int lineno)
{
    dk_dialog *d = NULL;
    dk_diag_list l = { 0 };
    int failed_before = dk_test_failed;
    int rc = parse(line, 0, &d, &l);
    DK_CHECK_INT(rc, want_rc);
    DK_CHECK_INT(l.n, 1);
    if (l.n >= 1) {
        DK_CHECK_STR(l.items[0].code, code);
        DK_CHECK_STR(l.items[0].pointer, ptr);
        DK_CHECK_INT(l.items[0].turn, turn);
        DK_CHECK_INT(l.items[0].line, 5);
        DK_CHECK_INT(l.items[0].sev, code[0] == 'W' ? DK_SEV_WARNING : DK_SEV_ERROR);
    }
    /* DK_EPARSE gives no dialog; DK_ESCHEMA and 0 give one */
    DK_CHECK(want_rc == DK_EPARSE ? d == NULL : d != NULL);
    if (dk_test_failed != failed_before) {
        fprintf(stderr, "  (case at line %d: %s)\n", lineno, line);
        for (size_t i = 0; i < l.n; i++)
            fprintf(stderr, "    got [%s] %s turn %d: %s\n", l.items[i].code, l.items[i].pointer,
                    l.items[i].turn, l.items[i].message);
    }
    dk_dialog_free(d);
    dk_diag_list_free(&l);
}
#define ONE(line, rc, code, ptr, turn) one(line, rc, code, ptr, turn, __LINE__)

static void test_valid_view(void)
{
    const char *line =
        "{\"dialog_id\":\"trip-1\",\"meta\":{\"src\":\"x\"},\"turns\":["
        "{\"role\":\"system\",\"content\":\"You book trains.\"},"
        "{\"role\":\"user\",\"content\":\"我想去北京\",\"entities\":[\"北京\","
        "{\"text\":\"北京\",\"type\":\"city\",\"start\":3,\"end\":5}],\"intent\":\"book\",\"train\":false},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"name\":\"search\"}],"
        "\"reasoning_content\":\"think\",\"action\":[\"search\",\"confirm\"],\"train\":true},"
        "{\"role\":\"tool\",\"content\":\"{}\"},"
        "{\"role\":\"assistant\",\"content\":\"Done.\",\"x-extra\":1}]}";
    dk_dialog *d = NULL;
    dk_diag_list l = { 0 };
    DK_CHECK_INT(parse(line, 0, &d, &l), 0);
    DK_CHECK_INT(l.n, 0);
    DK_CHECK(d != NULL);
    if (!d)
        return;
    DK_CHECK_STR(d->id, "trip-1");
    DK_CHECK_INT(d->line, 5);
    DK_CHECK_INT(d->n_turns, 5);
    DK_CHECK_INT(d->turns[0].role, DK_ROLE_SYSTEM);
    DK_CHECK_INT(d->turns[1].role, DK_ROLE_USER);
    DK_CHECK_INT(d->turns[2].role, DK_ROLE_ASSISTANT);
    DK_CHECK_INT(d->turns[3].role, DK_ROLE_TOOL);
    DK_CHECK_INT(d->turns[4].role, DK_ROLE_ASSISTANT);
    DK_CHECK_STR(dk_role_name(d->turns[3].role), "tool");
    DK_CHECK_STR(dk_role_name(DK_ROLE_INVALID), "invalid");
    DK_CHECK_STR(d->turns[0].content, "You book trains.");
    DK_CHECK_INT(d->turns[0].content_len, 16);
    DK_CHECK_STR(d->turns[1].content, "我想去北京");
    DK_CHECK_INT(d->turns[1].content_len, 15); /* five 3-byte characters */
    DK_CHECK(d->turns[2].content == NULL);
    DK_CHECK_INT(d->turns[2].has_tool_calls, 1);
    DK_CHECK_INT(d->turns[4].has_tool_calls, 0);
    /* entities: a string (no type, no offsets) and an object */
    DK_CHECK_INT(d->turns[1].n_entities, 2);
    DK_CHECK_STR(d->turns[1].entities[0].text, "北京");
    DK_CHECK(d->turns[1].entities[0].type == NULL);
    DK_CHECK_INT(d->turns[1].entities[0].start, -1);
    DK_CHECK_INT(d->turns[1].entities[0].end, -1);
    DK_CHECK_INT(d->turns[1].entities[0].index, 0);
    DK_CHECK_STR(d->turns[1].entities[1].type, "city");
    DK_CHECK_INT(d->turns[1].entities[1].start, 3);
    DK_CHECK_INT(d->turns[1].entities[1].end, 5);
    DK_CHECK_INT(d->turns[1].entities[1].index, 1);
    DK_CHECK_INT(d->turns[0].n_entities, 0);
    /* intent "book" is a list of one; action a list of two */
    DK_CHECK_INT(d->turns[1].n_intents, 1);
    DK_CHECK_STR(d->turns[1].intents[0], "book");
    DK_CHECK_INT(d->turns[2].n_actions, 2);
    DK_CHECK_STR(d->turns[2].actions[0], "search");
    DK_CHECK_STR(d->turns[2].actions[1], "confirm");
    DK_CHECK_INT(d->turns[0].n_intents, 0);
    DK_CHECK_INT(d->turns[0].train, -1);
    DK_CHECK_INT(d->turns[1].train, 0);
    DK_CHECK_INT(d->turns[2].train, 1);
    /* fields dlgkit does not model stay reachable through the turn's JSON */
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(d->turns[4].json, "x-extra");
    DK_CHECK(cJSON_IsNumber(x) && x->valueint == 1);
    dk_dialog_free(d);
    dk_diag_list_free(&l);
    dk_dialog_free(NULL);
}

/* Layer 1 and 2: no dialog, DK_EPARSE, no dialog id, the whole line (or the object
 * holding the duplicate key) as the place. */
static void test_parse_errors(void)
{
    ONE("\xff{}", DK_EPARSE, "E_UTF8", "", -1);
    ONE("{\"dialog_id\":\"a\xc0\xaf\"}", DK_EPARSE, "E_UTF8", "", -1);
    ONE("{\"dialog_id\":\"d\",\"turns\":[", DK_EPARSE, "E_JSON", "", -1);
    ONE("{} {}", DK_EPARSE, "E_JSON", "", -1);
    ONE("{\"dialog_id\":\"a\tb\"}", DK_EPARSE, "E_JSON", "", -1); /* raw tab inside a string */
    ONE("", DK_EPARSE, "E_JSON", "", -1);
    ONE("[{\"dialog_id\":\"d\"}]", DK_EPARSE, "E_NOT_OBJECT", "", -1);
    ONE("\"text\"", DK_EPARSE, "E_NOT_OBJECT", "", -1);
    ONE("null", DK_EPARSE, "E_NOT_OBJECT", "", -1);
    ONE("{\"dialog_id\":\"a\\u0000b\",\"turns\":[]}", DK_EPARSE, "E_NUL", "", -1);
    ONE("{\"dialog_id\":\"a\\ud800\",\"turns\":[]}", DK_EPARSE, "E_SURROGATE", "", -1);
    ONE("{\"dialog_id\":\"a\\udc00\\ud800\",\"turns\":[]}", DK_EPARSE, "E_SURROGATE", "", -1);
    ONE("{\"dialog_id\":\"d\",\"dialog_id\":\"e\",\"turns\":[]}", DK_EPARSE, "E_DUPLICATE_KEY", "", -1);
    ONE("{\"dialog_id\":\"d\",\"turns\":[{\"role\":\"user\",\"content\":\"a\"},"
        "{\"role\":\"user\",\"role\":\"user\",\"content\":\"b\"}]}",
        DK_EPARSE, "E_DUPLICATE_KEY", "/turns/1", -1);
    ONE("{\"dialog_id\":\"d\",\"meta\":{\"a/b\":{\"k\":1,\"k\":2}},\"turns\":[]}",
        DK_EPARSE, "E_DUPLICATE_KEY", "/meta/a~1b", -1);
    /* an escaped backslash before u0000 is not a NUL: the line is fine */
    dk_dialog *d = NULL;
    dk_diag_list l = { 0 };
    DK_CHECK_INT(parse("{\"dialog_id\":\"a\\\\u0000\",\"turns\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                       0, &d, &l), 0);
    DK_CHECK_INT(l.n, 0);
    DK_CHECK_STR(d ? d->id : NULL, "a\\u0000");
    dk_dialog_free(d);
    /* a valid surrogate pair is one character */
    d = NULL;
    DK_CHECK_INT(parse("{\"dialog_id\":\"\\ud83d\\ude42\",\"turns\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                       0, &d, &l), 0);
    DK_CHECK_STR(d ? d->id : NULL, "\xf0\x9f\x99\x82");
    dk_dialog_free(d);
    dk_diag_list_free(&l);
}

#define U(c) "{\"role\":\"user\",\"content\":\"" c "\"}"
#define A(c) "{\"role\":\"assistant\",\"content\":\"" c "\"}"
#define DLG(turns) "{\"dialog_id\":\"d\",\"turns\":[" turns "]}"

/* Layer 3: DK_ESCHEMA, the dialog is still returned, pointer and turn name the field. */
static void test_schema_errors(void)
{
    ONE("{\"turns\":[" U("a") "]}", DK_ESCHEMA, "E_DIALOG_ID", "", -1);
    ONE("{\"dialog_id\":\"\",\"turns\":[" U("a") "]}", DK_ESCHEMA, "E_DIALOG_ID", "/dialog_id", -1);
    ONE("{\"dialog_id\":7,\"turns\":[" U("a") "]}", DK_ESCHEMA, "E_DIALOG_ID", "/dialog_id", -1);
    ONE("{\"dialog_id\":\"d\"}", DK_ESCHEMA, "E_TURNS", "", -1);
    ONE("{\"dialog_id\":\"d\",\"turns\":{}}", DK_ESCHEMA, "E_TURNS", "/turns", -1);
    ONE("{\"dialog_id\":\"d\",\"turns\":[]}", DK_ESCHEMA, "E_TURNS", "/turns", -1);
    ONE(DLG(U("a") ",3"), DK_ESCHEMA, "E_TURN", "/turns/1", 1);
    ONE(DLG(U("a") "," A("b") ",{\"role\":\"bot\",\"content\":\"c\"}"), DK_ESCHEMA, "E_ROLE", "/turns/2/role", 2);
    ONE(DLG("{\"role\":1,\"content\":\"c\"}"), DK_ESCHEMA, "E_ROLE", "/turns/0/role", 0);
    ONE(DLG("{\"content\":\"c\"}"), DK_ESCHEMA, "E_ROLE", "/turns/0", 0);
    ONE(DLG(U("a") ",{\"role\":\"system\",\"content\":\"s\"}"), DK_ESCHEMA, "E_SYSTEM_POSITION", "/turns/1/role", 1);
    ONE(DLG("{\"role\":\"user\"}"), DK_ESCHEMA, "E_CONTENT", "/turns/0", 0);
    ONE(DLG("{\"role\":\"user\",\"content\":5}"), DK_ESCHEMA, "E_CONTENT", "/turns/0/content", 0);
    ONE(DLG("{\"role\":\"user\",\"content\":null}"), DK_ESCHEMA, "E_CONTENT", "/turns/0/content", 0);
    ONE(DLG(U("a") ",{\"role\":\"assistant\",\"content\":null}"), DK_ESCHEMA, "E_CONTENT", "/turns/1/content", 1);
    ONE(DLG(U("a") ",{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[]}"),
        DK_ESCHEMA, "E_CONTENT", "/turns/1/content", 1);
    ONE(DLG("{\"role\":\"user\",\"content\":\"a\",\"reasoning_content\":\"r\"}"),
        DK_ESCHEMA, "E_REASONING", "/turns/0/reasoning_content", 0);
    ONE(DLG(U("a") ",{\"role\":\"assistant\",\"content\":\"b\",\"reasoning_content\":[]}"),
        DK_ESCHEMA, "E_REASONING", "/turns/1/reasoning_content", 1);
    ONE(DLG("{\"role\":\"user\",\"content\":\"a\",\"tool_calls\":[{}]}"),
        DK_ESCHEMA, "E_TOOL_CALLS", "/turns/0/tool_calls", 0);
    ONE(DLG(U("a") ",{\"role\":\"assistant\",\"content\":\"b\",\"tool_calls\":[1]}"),
        DK_ESCHEMA, "E_TOOL_CALLS", "/turns/1/tool_calls", 1);
    ONE(DLG("{\"role\":\"user\",\"content\":\"a\",\"entities\":\"a\"}"),
        DK_ESCHEMA, "E_ENTITIES", "/turns/0/entities", 0);
    ONE(DLG("{\"role\":\"user\",\"content\":\"a\",\"entities\":[\"a\",\"\"]}"),
        DK_ESCHEMA, "E_ENTITY", "/turns/0/entities/1", 0);
    ONE(DLG("{\"role\":\"user\",\"content\":\"a\",\"entities\":[3]}"),
        DK_ESCHEMA, "E_ENTITY", "/turns/0/entities/0", 0);
    ONE(DLG("{\"role\":\"user\",\"content\":\"a\",\"entities\":[{\"type\":\"t\"}]}"),
        DK_ESCHEMA, "E_ENTITY", "/turns/0/entities/0", 0);
    ONE(DLG("{\"role\":\"user\",\"content\":\"a\",\"entities\":[{\"text\":\"\"}]}"),
        DK_ESCHEMA, "E_ENTITY", "/turns/0/entities/0/text", 0);
    ONE(DLG("{\"role\":\"user\",\"content\":\"a\",\"entities\":[{\"text\":\"a\",\"type\":1}]}"),
        DK_ESCHEMA, "E_ENTITY", "/turns/0/entities/0/type", 0);
    ONE(DLG("{\"role\":\"user\",\"content\":\"a\",\"entities\":[{\"text\":\"a\",\"start\":-1,\"end\":1}]}"),
        DK_ESCHEMA, "E_ENTITY", "/turns/0/entities/0/start", 0);
    ONE(DLG("{\"role\":\"user\",\"content\":\"a\",\"entities\":[{\"text\":\"a\",\"start\":0,\"end\":0.5}]}"),
        DK_ESCHEMA, "E_ENTITY", "/turns/0/entities/0/end", 0);
    ONE(DLG("{\"role\":\"user\",\"content\":\"a\",\"entities\":[{\"text\":\"a\",\"start\":0}]}"),
        DK_ESCHEMA, "E_ENTITY", "/turns/0/entities/0", 0);
    ONE(DLG("{\"role\":\"user\",\"content\":\"a\",\"intent\":\"\"}"), DK_ESCHEMA, "E_INTENT", "/turns/0/intent", 0);
    ONE(DLG("{\"role\":\"user\",\"content\":\"a\",\"intent\":[\"x\",\"\"]}"),
        DK_ESCHEMA, "E_INTENT", "/turns/0/intent/1", 0);
    ONE(DLG("{\"role\":\"user\",\"content\":\"a\",\"intent\":{}}"), DK_ESCHEMA, "E_INTENT", "/turns/0/intent", 0);
    ONE(DLG(U("a") ",{\"role\":\"assistant\",\"content\":\"b\",\"action\":[7]}"),
        DK_ESCHEMA, "E_ACTION", "/turns/1/action/0", 1);
    ONE(DLG(U("a") ",{\"role\":\"assistant\",\"content\":\"b\",\"action\":true}"),
        DK_ESCHEMA, "E_ACTION", "/turns/1/action", 1);
    ONE(DLG("{\"role\":\"user\",\"content\":\"a\",\"train\":\"yes\"}"), DK_ESCHEMA, "E_TRAIN", "/turns/0/train", 0);
    ONE("{\"dialog_id\":\"d\",\"tools\":{},\"turns\":[" U("a") "]}", DK_ESCHEMA, "E_TOOLS", "/tools", -1);
    ONE("{\"dialog_id\":\"d\",\"tools\":[{},1],\"turns\":[" U("a") "]}", DK_ESCHEMA, "E_TOOLS", "/tools/1", -1);
    ONE("{\"dialog_id\":\"d\",\"meta\":[],\"turns\":[" U("a") "]}", DK_ESCHEMA, "E_META", "/meta", -1);

    /* several errors on one line: all of them, in the order of the line */
    dk_dialog *d = NULL;
    dk_diag_list l = { 0 };
    DK_CHECK_INT(parse("{\"dialog_id\":\"\",\"turns\":[{\"role\":\"x\",\"content\":1}," U("ok") "]}", 0, &d, &l),
                 DK_ESCHEMA);
    DK_CHECK_INT(l.n, 3);
    DK_CHECK_INT(l.n_errors, 3);
    if (l.n == 3) {
        DK_CHECK_STR(l.items[0].code, "E_DIALOG_ID");
        DK_CHECK_STR(l.items[1].code, "E_ROLE");
        DK_CHECK_STR(l.items[2].code, "E_CONTENT");
        DK_CHECK_STR(l.items[2].pointer, "/turns/0/content");
        DK_CHECK(l.items[1].dialog_id == NULL); /* the id is invalid */
    }
    /* the partial view: invalid fields are NULL / invalid, valid ones are filled */
    DK_CHECK(d != NULL);
    if (d) {
        DK_CHECK(d->id == NULL);
        DK_CHECK_INT(d->n_turns, 2);
        DK_CHECK_INT(d->turns[0].role, DK_ROLE_INVALID);
        DK_CHECK(d->turns[0].content == NULL);
        DK_CHECK_INT(d->turns[1].role, DK_ROLE_USER);
        DK_CHECK_STR(d->turns[1].content, "ok");
    }
    dk_dialog_free(d);
    dk_diag_list_free(&l);

    /* diagnostics carry the dialog id when it is valid */
    d = NULL;
    DK_CHECK_INT(parse("{\"dialog_id\":\"conv_12\",\"turns\":[" U("a") "," A("b") "," U("c")
                       ",{\"role\":\"bot\",\"content\":\"x\"}]}", 0, &d, &l), DK_ESCHEMA);
    DK_CHECK_INT(l.n, 1);
    if (l.n) {
        DK_CHECK_STR(l.items[0].dialog_id, "conv_12");
        DK_CHECK_STR(l.items[0].pointer, "/turns/3/role");
        DK_CHECK_INT(l.items[0].turn, 3);
    }
    DK_CHECK_STR(d ? d->id : NULL, "conv_12");
    dk_dialog_free(d);
    dk_diag_list_free(&l);
}

/* The rules a schema cannot say, and the warnings (status 0 with warnings only). */
static void test_semantics(void)
{
    ONE(DLG("{\"role\":\"user\",\"content\":\"to Paris\",\"entities\":[\"Paris\",\"Rome\"]}"),
        DK_ESCHEMA, "E_ENTITY_NOT_IN_TEXT", "/turns/0/entities/1", 0);
    ONE(DLG(U("a") ",{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{}],\"entities\":[\"a\"]}"),
        DK_ESCHEMA, "E_ENTITY_NOT_IN_TEXT", "/turns/1/entities/0", 1);
    /* offsets: [3,8) of "to Paris" is "Paris"? no: "to Paris" = t0 o1 _2 P3 a4 r5 i6 s7 */
    ONE(DLG("{\"role\":\"user\",\"content\":\"to Paris\",\"entities\":[{\"text\":\"Paris\",\"start\":2,\"end\":7}]}"),
        DK_ESCHEMA, "E_ENTITY_OFFSET", "/turns/0/entities/0", 0);
    ONE(DLG("{\"role\":\"user\",\"content\":\"to Paris\",\"entities\":[{\"text\":\"Paris\",\"start\":4,\"end\":3}]}"),
        DK_ESCHEMA, "E_ENTITY_OFFSET", "/turns/0/entities/0", 0);
    ONE(DLG("{\"role\":\"user\",\"content\":\"to Paris\",\"entities\":[{\"text\":\"Paris\",\"start\":3,\"end\":9}]}"),
        DK_ESCHEMA, "E_ENTITY_OFFSET", "/turns/0/entities/0", 0);
    /* the offsets must hold the text exactly, not just after folding */
    ONE(DLG("{\"role\":\"user\",\"content\":\"to PARIS\",\"entities\":[{\"text\":\"Paris\",\"start\":3,\"end\":8}]}"),
        DK_ESCHEMA, "E_ENTITY_OFFSET", "/turns/0/entities/0", 0);
    ONE(DLG(U("a") ",{\"role\":\"tool\",\"content\":\"r\"}"), DK_ESCHEMA, "E_TOOL_POSITION", "/turns/1/role", 1);
    ONE(DLG("{\"role\":\"tool\",\"content\":\"r\"}"), DK_ESCHEMA, "E_TOOL_POSITION", "/turns/0/role", 0);

    ONE(DLG(U("") "," A("b")), 0, "W_EMPTY_CONTENT", "/turns/0/content", 0);
    ONE(DLG(U("a") "," A("b") "," A("c")), 0, "W_SAME_ROLE", "/turns/2/role", 2);
    ONE(DLG(U("a") "," A("b") "," A("b")), 0, "W_REPEATED_TURN", "/turns/2/content", 2);
    ONE(DLG(U("a") ",{\"role\":\"assistant\",\"content\":\"b\",\"intent\":\"x\"}"),
        0, "W_INTENT_ROLE", "/turns/1/intent", 1);
    ONE(DLG("{\"role\":\"user\",\"content\":\"a\",\"action\":\"x\"}"), 0, "W_ACTION_ROLE", "/turns/0/action", 0);

    /* valid tool sequences: assistant with tool_calls, tool, tool */
    dk_dialog *d = NULL;
    dk_diag_list l = { 0 };
    DK_CHECK_INT(parse(DLG(U("a") ",{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{}]},"
                           "{\"role\":\"tool\",\"content\":\"1\"},{\"role\":\"tool\",\"content\":\"2\"}," A("b")),
                       0, &d, &l), 0);
    DK_CHECK_INT(l.n, 0); /* empty content with tool calls is no warning */
    dk_dialog_free(d);
    dk_diag_list_free(&l);

    /* schema-only: no entity, offset, tool-position check and no warning */
    const char *lines[] = {
        DLG("{\"role\":\"user\",\"content\":\"to Paris\",\"entities\":[\"Rome\"]}"),
        DLG("{\"role\":\"user\",\"content\":\"to Paris\",\"entities\":[{\"text\":\"Paris\",\"start\":0,\"end\":99}]}"),
        DLG("{\"role\":\"tool\",\"content\":\"r\"}"),
        DLG(U("") "," U("") "," A("b") "," A("b") ",{\"role\":\"user\",\"content\":\"c\",\"action\":\"x\"}"),
    };
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) {
        d = NULL;
        DK_CHECK_INT(parse(lines[i], DK_DIALOG_SCHEMA_ONLY, &d, &l), 0);
        DK_CHECK_INT(l.n, 0);
        DK_CHECK(d != NULL);
        dk_dialog_free(d);
        dk_diag_list_clear(&l);
        /* and the same lines are caught in full mode */
        DK_CHECK_INT(parse(lines[i], 0, &d, &l), i < 3 ? DK_ESCHEMA : 0);
        DK_CHECK(l.n > 0);
        dk_dialog_free(d);
        dk_diag_list_clear(&l);
    }
    /* schema-only still reports the schema's own rules */
    d = NULL;
    DK_CHECK_INT(parse(DLG("{\"role\":\"bot\",\"content\":\"a\"}"), DK_DIALOG_SCHEMA_ONLY, &d, &l), DK_ESCHEMA);
    DK_CHECK_INT(l.n, 1);
    dk_dialog_free(d);
    dk_diag_list_free(&l);
}

/* NFKC + case folding: fullwidth letters, ß -> ss, the ﬁ ligature, Greek sigma. */
static void test_entity_folding(void)
{
    const char *ok[] = {
        DLG("{\"role\":\"user\",\"content\":\"to beijing\",\"entities\":[\"ＢＥＩＪＩＮＧ\"]}"),
        DLG("{\"role\":\"user\",\"content\":\"ＢＥＩＪＩＮＧ station\",\"entities\":[\"Beijing\"]}"),
        DLG("{\"role\":\"user\",\"content\":\"Große Straße 5\",\"entities\":[\"GROSSE STRASSE\"]}"),
        DLG("{\"role\":\"user\",\"content\":\"the \xef\xac\x81le\",\"entities\":[\"FILE\"]}"),
        DLG("{\"role\":\"user\",\"content\":\"ΟΔΟΣ\",\"entities\":[\"οδος\"]}"),
        /* offsets that hold the text exactly, on text where the case differs elsewhere */
        DLG("{\"role\":\"user\",\"content\":\"BEIJING or Beijing\",\"entities\":"
            "[{\"text\":\"Beijing\",\"start\":11,\"end\":18}]}"),
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        dk_dialog *d = NULL;
        dk_diag_list l = { 0 };
        DK_CHECK_INT(parse(ok[i], 0, &d, &l), 0);
        DK_CHECK_INT(l.n, 0);
        if (l.n)
            fprintf(stderr, "  (folding case %zu: %s)\n", i, l.items[0].message);
        dk_dialog_free(d);
        dk_diag_list_free(&l);
    }
    /* folding is not fuzzy matching */
    ONE(DLG("{\"role\":\"user\",\"content\":\"to Peking\",\"entities\":[\"Beijing\"]}"),
        DK_ESCHEMA, "E_ENTITY_NOT_IN_TEXT", "/turns/0/entities/0", 0);
}

/* start/end count code points: a CJK character and an emoji are one each. */
static void test_offsets_code_points(void)
{
    /* 我0 🙂1 去2 北3 京4 。5 : length 6 */
    const char *good = DLG("{\"role\":\"user\",\"content\":\"我🙂去北京。\",\"entities\":"
                           "[{\"text\":\"北京\",\"start\":3,\"end\":5},{\"text\":\"🙂\",\"start\":1,\"end\":2},"
                           "{\"text\":\"。\",\"start\":5,\"end\":6}]}");
    dk_dialog *d = NULL;
    dk_diag_list l = { 0 };
    DK_CHECK_INT(parse(good, 0, &d, &l), 0);
    DK_CHECK_INT(l.n, 0);
    dk_dialog_free(d);
    dk_diag_list_free(&l);
    /* byte offsets instead of code points: 北 is at byte 10 */
    ONE(DLG("{\"role\":\"user\",\"content\":\"我🙂去北京。\",\"entities\":[{\"text\":\"北京\",\"start\":10,\"end\":16}]}"),
        DK_ESCHEMA, "E_ENTITY_OFFSET", "/turns/0/entities/0", 0);
    /* UTF-16 units (the emoji counts 2): one too far right */
    ONE(DLG("{\"role\":\"user\",\"content\":\"我🙂去北京。\",\"entities\":[{\"text\":\"北京\",\"start\":4,\"end\":6}]}"),
        DK_ESCHEMA, "E_ENTITY_OFFSET", "/turns/0/entities/0", 0);
    /* end == length is fine, end == length + 1 is not */
    ONE(DLG("{\"role\":\"user\",\"content\":\"我🙂去北京。\",\"entities\":[{\"text\":\"。\",\"start\":6,\"end\":7}]}"),
        DK_ESCHEMA, "E_ENTITY_OFFSET", "/turns/0/entities/0", 0);
    /* an invalid entity item is skipped, so index keeps the array position */
    d = NULL;
    DK_CHECK_INT(parse(DLG("{\"role\":\"user\",\"content\":\"北京\",\"entities\":[5,{\"text\":\"北京\",\"start\":0,\"end\":2}]}"),
                       0, &d, &l), DK_ESCHEMA);
    DK_CHECK(d && d->turns[0].n_entities == 1);
    if (d && d->turns[0].n_entities == 1) {
        DK_CHECK_INT(d->turns[0].entities[0].index, 1);
        DK_CHECK_INT(d->turns[0].entities[0].start, 0);
        DK_CHECK_INT(d->turns[0].entities[0].end, 2);
    }
    DK_CHECK_INT(l.n, 1);
    dk_dialog_free(d);
    dk_diag_list_free(&l);
}

static void test_serialize(void)
{
    /* key order (not alphabetical), unknown fields on the line and on turns, nested */
    const char *line = "{\"z\":1,\"dialog_id\":\"d\",\"turns\":[{\"content\":\"hi 你好\",\"x-extra\":[1,2.5,null],"
                       "\"role\":\"user\"}],\"a\":{\"b\":true,\"a\":\"q\\\"\"}}";
    dk_dialog *d = NULL;
    dk_diag_list l = { 0 };
    DK_CHECK_INT(parse(line, 0, &d, &l), 0);
    char *s = d ? dk_dialog_serialize(d) : NULL;
    DK_CHECK_STR(s, line);
    free(s);
    dk_dialog_free(d);
    /* spacing is not kept (compact output), everything else is */
    d = NULL;
    DK_CHECK_INT(parse("{ \"dialog_id\" : \"d\",\n \"turns\" : [ {\"role\":\"user\", \"content\":\"a\"} ] , \"k\": [ ] }"
                       + 0, 0, &d, &l), DK_EPARSE); /* a raw newline is not allowed on a line */
    dk_diag_list_clear(&l);
    DK_CHECK_INT(parse("{ \"dialog_id\" : \"d\", \"turns\" : [ {\"role\":\"user\", \"content\":\"a\"} ] , \"k\": [ ] }",
                       0, &d, &l), 0);
    s = d ? dk_dialog_serialize(d) : NULL;
    DK_CHECK_STR(s, "{\"dialog_id\":\"d\",\"turns\":[{\"role\":\"user\",\"content\":\"a\"}],\"k\":[]}");
    free(s);
    dk_dialog_free(d);
    dk_diag_list_free(&l);
}

static void set_member(const char *in, const char *key, const char *val, const char *want)
{
    size_t n = 12345;
    char *s = dk_json_set_member(in, strlen(in), key, val, &n);
    if (want) {
        DK_CHECK_STR(s, want);
        if (s)
            DK_CHECK_INT(n, strlen(want));
    } else {
        DK_CHECK(s == NULL);
    }
    free(s);
}

static void test_set_member(void)
{
    /* appended after the last member, every original byte kept */
    set_member("{\"a\":1.50,\"b\":\"\\u00e9\"}", "checks", "{\"errors\":0}",
               "{\"a\":1.50,\"b\":\"\\u00e9\",\"checks\":{\"errors\":0}}");
    set_member("{}", "checks", "[]", "{\"checks\":[]}");
    set_member("{ }", "k", "1", "{ \"k\":1}");
    set_member("{\"a\": 1 }", "k", "1", "{\"a\": 1 ,\"k\":1}");
    /* trailing blanks after the object (and a CR) are not part of it */
    set_member("{\"a\":1}  ", "k", "true", "{\"a\":1,\"k\":true}");
    set_member("{\"a\":1}\r", "k", "true", "{\"a\":1,\"k\":true}");
    /* a key that needs escaping is written as a JSON string */
    set_member("{\"a\":1}", "q\"k", "2", "{\"a\":1,\"q\\\"k\":2}");
    /* an existing key is replaced (that line is re-serialized), its position kept */
    set_member("{\"checks\":{\"old\":1},\"a\":2}", "checks", "{\"new\":2}", "{\"checks\":{\"new\":2},\"a\":2}");
    /* the key only in a nested object: the top level does not have it, so append */
    set_member("{\"meta\":{\"checks\":1}}", "checks", "2", "{\"meta\":{\"checks\":1},\"checks\":2}");
    /* the key only inside a string value */
    set_member("{\"note\":\"\\\"checks\\\"\"}", "checks", "2", "{\"note\":\"\\\"checks\\\"\",\"checks\":2}");
    /* not an object: NULL */
    set_member("[1,2]", "k", "1", NULL);
    set_member("\"x\"", "k", "1", NULL);
    set_member("", "k", "1", NULL);
    set_member("   ", "k", "1", NULL);
}

static void test_idset(void)
{
    dk_dialog_idset *s = dk_dialog_idset_new();
    DK_CHECK(s != NULL);
    long first = -7;
    DK_CHECK_INT(dk_dialog_idset_add(s, "a", 1, &first), 1);
    DK_CHECK_INT(first, -7); /* left alone for a new id */
    DK_CHECK_INT(dk_dialog_idset_add(s, "b", 2, &first), 1);
    DK_CHECK_INT(dk_dialog_idset_add(s, "a", 3, &first), 0);
    DK_CHECK_INT(first, 1);
    DK_CHECK_INT(dk_dialog_idset_add(s, "a", 9, &first), 0);
    DK_CHECK_INT(first, 1); /* always the first line, not the latest duplicate */
    DK_CHECK_INT(dk_dialog_idset_add(s, "b", 4, NULL), 0);
    DK_CHECK_INT(dk_dialog_idset_add(s, "A", 5, &first), 1); /* ids are case sensitive */
    DK_CHECK_INT(dk_dialog_idset_add(s, "", 6, &first), 1);
    DK_CHECK_INT(dk_dialog_idset_add(s, "", 7, &first), 0);
    DK_CHECK_INT(first, 6);
    /* growth past 10000 ids: every id stays findable with its first line */
    char id[32];
    int news = 0, dups = 0, lines_ok = 1;
    for (int i = 0; i < 25000; i++) {
        snprintf(id, sizeof id, "conv_%d", i);
        news += dk_dialog_idset_add(s, id, 100 + i, NULL) == 1;
    }
    for (int i = 0; i < 25000; i++) {
        snprintf(id, sizeof id, "conv_%d", i);
        first = 0;
        dups += dk_dialog_idset_add(s, id, 999999, &first) == 0;
        lines_ok &= first == 100 + i;
    }
    DK_CHECK_INT(news, 25000);
    DK_CHECK_INT(dups, 25000);
    DK_CHECK(lines_ok);
    DK_CHECK_INT(dk_dialog_idset_add(s, "a", 1, &first), 0);
    DK_CHECK_INT(first, 1);
    dk_dialog_idset_free(s);
    dk_dialog_idset_free(NULL);
}

/* FNV-1a 64: offset basis 0xcbf29ce484222325, prime 0x100000001b3 (published vectors
 * for "", "a" and "foobar"; the others computed by hand-written Python from the
 * definition, one byte at a time over UTF-8). */
static void test_id_hash(void)
{
    DK_CHECK(dk_dialog_id_hash("") == 0xcbf29ce484222325ULL);
    DK_CHECK(dk_dialog_id_hash("a") == 0xaf63dc4c8601ec8cULL);
    DK_CHECK(dk_dialog_id_hash("foobar") == 0x85944171f73967e8ULL);
    DK_CHECK(dk_dialog_id_hash("conv_1") == 0x0403ce761657835bULL);
    DK_CHECK(dk_dialog_id_hash("对话") == 0xe973473f5b32b46cULL);
}

int main(void)
{
    DK_RUN(test_valid_view);
    DK_RUN(test_parse_errors);
    DK_RUN(test_schema_errors);
    DK_RUN(test_semantics);
    DK_RUN(test_entity_folding);
    DK_RUN(test_offsets_code_points);
    DK_RUN(test_serialize);
    DK_RUN(test_set_member);
    DK_RUN(test_idset);
    DK_RUN(test_id_hash);
    DK_TEST_MAIN_END("test_dialog");
}
