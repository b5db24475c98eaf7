/* Unit tests of dk_diag: the text form of DESIGN.md section 3 byte for byte, the JSON
 * form read back with cJSON field by field, the counters, moving lists, and RFC 6901
 * escaping of pointer segments. Every expected string is written by hand from the
 * header's documented form, never copied from the formatter's output. */
#include "dk_diag.h"
#include "dk_test.h"

#include <stdlib.h>

#include <cjson/cJSON.h>

static void test_text_form(void)
{
    dk_diag_list l = { 0 };
    DK_CHECK_INT(dk_diag_add(&l, DK_SEV_ERROR, "E_ROLE", 3, "conv_12", 2, "/turns/2/role",
                             "role must be one of %s (got \"%s\")", "system, user, assistant, tool", "bot"), 0);
    DK_CHECK_INT(dk_diag_add(&l, DK_SEV_WARNING, "W_EMPTY_CONTENT", 7, "d1", 0, "/turns/0/content",
                             "content is empty"), 0);
    /* no line number: the ":LINE" part is left out */
    DK_CHECK_INT(dk_diag_add(&l, DK_SEV_ERROR, "E_X", 0, "d2", -1, "/dialog_id", "m"), 0);
    /* no dialog id and no pointer: nothing between the code and the message */
    DK_CHECK_INT(dk_diag_add(&l, DK_SEV_ERROR, "E_JSON", 4, NULL, -1, NULL, "malformed json"), 0);
    DK_CHECK_INT(dk_diag_add(&l, DK_SEV_INFO, "I_UNGROUNDED", 9, "d3", 1, "/turns/1/content", "x"), 0);
    DK_CHECK_INT(l.n, 5);

    char *s = dk_diag_format_text(&l.items[0], "data/in.jsonl");
    DK_CHECK_STR(s, "data/in.jsonl:3: error: [E_ROLE] conv_12:/turns/2/role: role must be one of "
                    "system, user, assistant, tool (got \"bot\")\n");
    free(s);
    s = dk_diag_format_text(&l.items[1], "a.jsonl");
    DK_CHECK_STR(s, "a.jsonl:7: warning: [W_EMPTY_CONTENT] d1:/turns/0/content: content is empty\n");
    free(s);
    s = dk_diag_format_text(&l.items[2], "a.jsonl");
    DK_CHECK_STR(s, "a.jsonl: error: [E_X] d2:/dialog_id: m\n");
    free(s);
    s = dk_diag_format_text(&l.items[3], "a.jsonl");
    DK_CHECK_STR(s, "a.jsonl:4: error: [E_JSON] malformed json\n");
    free(s);
    s = dk_diag_format_text(&l.items[4], NULL);
    DK_CHECK_STR(s, "<stdin>:9: info: [I_UNGROUNDED] d3:/turns/1/content: x\n");
    free(s);
    dk_diag_list_free(&l);
}

/* Control characters in the id, message and file name never break the one-line form. */
static void test_text_escapes(void)
{
    dk_diag_list l = { 0 };
    DK_CHECK_INT(dk_diag_add(&l, DK_SEV_ERROR, "E_ROLE", 1, "a\nb", 0, "/turns/0/role",
                             "got \"x\ty\x1b\x7f\"\r"), 0);
    char *s = dk_diag_format_text(&l.items[0], "f\n.jsonl");
    DK_CHECK_STR(s, "f\\x0a.jsonl:1: error: [E_ROLE] a\\x0ab:/turns/0/role: got \"x\\x09y\\x1b\\x7f\"\\x0d\n");
    free(s);
    /* UTF-8 is not a control character and stays as it is */
    dk_diag_list_clear(&l);
    DK_CHECK_INT(l.n, 0);
    DK_CHECK_INT(l.n_errors, 0);
    DK_CHECK_INT(dk_diag_add(&l, DK_SEV_WARNING, "W_SAME_ROLE", 2, "对话_1", 1, "/turns/1/role",
                             "两个 user 回合"), 0);
    s = dk_diag_format_text(&l.items[0], "中文.jsonl");
    DK_CHECK_STR(s, "中文.jsonl:2: warning: [W_SAME_ROLE] 对话_1:/turns/1/role: 两个 user 回合\n");
    free(s);
    dk_diag_list_free(&l);
}

static void check_json_field_str(const cJSON *o, const char *key, const char *want)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    DK_CHECK(cJSON_IsString(v));
    DK_CHECK_STR(cJSON_IsString(v) ? v->valuestring : NULL, want);
}

static void test_json_form(void)
{
    dk_diag_list l = { 0 };
    DK_CHECK_INT(dk_diag_add(&l, DK_SEV_ERROR, "E_ROLE", 3, "conv\"12\n", 2, "/turns/2/role",
                             "bad \"role\"\t"), 0);
    DK_CHECK_INT(dk_diag_add(&l, DK_SEV_WARNING, "E_JSON", 0, NULL, -1, NULL, "m"), 0);

    char *s = dk_diag_format_json(&l.items[0], "in.jsonl");
    DK_CHECK(s != NULL);
    size_t n = s ? strlen(s) : 0;
    DK_CHECK(n > 0 && s[n - 1] == '\n' && memchr(s, '\n', n - 1) == NULL);
    cJSON *o = cJSON_Parse(s);
    DK_CHECK(cJSON_IsObject(o));
    DK_CHECK_INT(cJSON_GetArraySize(o), 8);
    check_json_field_str(o, "file", "in.jsonl");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "line");
    DK_CHECK(cJSON_IsNumber(v) && v->valuedouble == 3);
    check_json_field_str(o, "severity", "error");
    check_json_field_str(o, "code", "E_ROLE");
    check_json_field_str(o, "dialog_id", "conv\"12\n");
    v = cJSON_GetObjectItemCaseSensitive(o, "turn");
    DK_CHECK(cJSON_IsNumber(v) && v->valuedouble == 2);
    check_json_field_str(o, "pointer", "/turns/2/role");
    check_json_field_str(o, "message", "bad \"role\"\t");
    cJSON_Delete(o);
    free(s);

    s = dk_diag_format_json(&l.items[1], NULL);
    o = cJSON_Parse(s);
    DK_CHECK(cJSON_IsObject(o));
    check_json_field_str(o, "file", "<stdin>");
    DK_CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "line")));
    check_json_field_str(o, "severity", "warning");
    DK_CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "dialog_id")));
    DK_CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "turn")));
    check_json_field_str(o, "pointer", "");
    check_json_field_str(o, "message", "m");
    cJSON_Delete(o);
    free(s);
    dk_diag_list_free(&l);
}

static void test_counters_and_move(void)
{
    dk_diag_list a = { 0 }, b = { 0 };
    DK_CHECK_STR(dk_severity_name(DK_SEV_ERROR), "error");
    DK_CHECK_STR(dk_severity_name(DK_SEV_WARNING), "warning");
    DK_CHECK_STR(dk_severity_name(DK_SEV_INFO), "info");
    dk_diag_add(&a, DK_SEV_ERROR, "E_A", 1, "x", 0, "/a", "a1");
    dk_diag_add(&a, DK_SEV_WARNING, "W_A", 1, "x", 0, "/a", "a2");
    /* 20 items in b: past the first allocation, so the move has to grow a */
    for (int i = 0; i < 20; i++)
        dk_diag_add(&b, i % 3 == 0 ? DK_SEV_ERROR : i % 3 == 1 ? DK_SEV_WARNING : DK_SEV_INFO,
                    "E_B", 2 + i, "y", i, "/b", "b%d", i);
    DK_CHECK_INT(a.n, 2);
    DK_CHECK_INT(a.n_errors, 1);
    DK_CHECK_INT(a.n_warnings, 1);
    DK_CHECK_INT(a.n_infos, 0);
    DK_CHECK_INT(b.n, 20);
    DK_CHECK_INT(b.n_errors, 7);   /* i = 0,3,...,18 */
    DK_CHECK_INT(b.n_warnings, 7); /* i = 1,4,...,19 */
    DK_CHECK_INT(b.n_infos, 6);    /* i = 2,5,...,17 */
    DK_CHECK_INT(b.items[19].line, 21);
    DK_CHECK_STR(b.items[19].message, "b19");

    DK_CHECK_INT(dk_diag_list_move(&a, &b), 0);
    DK_CHECK_INT(a.n, 22);
    DK_CHECK_INT(a.n_errors, 8);
    DK_CHECK_INT(a.n_warnings, 8);
    DK_CHECK_INT(a.n_infos, 6);
    DK_CHECK_INT(b.n, 0);
    DK_CHECK_INT(b.n_errors + b.n_warnings + b.n_infos, 0);
    DK_CHECK_STR(a.items[0].message, "a1");
    DK_CHECK_STR(a.items[1].message, "a2");
    DK_CHECK_STR(a.items[2].message, "b0");
    DK_CHECK_STR(a.items[21].message, "b19");
    DK_CHECK_STR(a.items[21].dialog_id, "y");
    DK_CHECK_INT(a.items[21].turn, 19);
    /* moving an empty list changes nothing; b is still usable */
    DK_CHECK_INT(dk_diag_list_move(&a, &b), 0);
    DK_CHECK_INT(a.n, 22);
    dk_diag_add(&b, DK_SEV_INFO, "I_C", 5, NULL, -1, "", "c");
    DK_CHECK_INT(b.n, 1);
    DK_CHECK(b.items[0].dialog_id == NULL);
    DK_CHECK_STR(b.items[0].pointer, "");
    /* into an empty, zeroed list */
    dk_diag_list c = { 0 };
    DK_CHECK_INT(dk_diag_list_move(&c, &b), 0);
    DK_CHECK_INT(c.n, 1);
    DK_CHECK_INT(c.n_infos, 1);
    DK_CHECK_STR(c.items[0].message, "c");
    dk_diag_list_free(&a);
    dk_diag_list_free(&b);
    dk_diag_list_free(&c);
    dk_diag_list_free(&c); /* a freed list may be freed again */
    dk_diag_list_free(NULL);
}

/* RFC 6901 section 3: "~" is written "~0" and "/" is written "~1". */
static void test_pointer_append(void)
{
    char buf[64] = "";
    DK_CHECK_INT(dk_json_pointer_append(buf, sizeof buf, "a/b"), 0);
    DK_CHECK_STR(buf, "/a~1b");
    buf[0] = '\0';
    DK_CHECK_INT(dk_json_pointer_append(buf, sizeof buf, "m~n"), 0);
    DK_CHECK_STR(buf, "/m~0n");
    buf[0] = '\0';
    DK_CHECK_INT(dk_json_pointer_append(buf, sizeof buf, "turns"), 0);
    DK_CHECK_INT(dk_json_pointer_append(buf, sizeof buf, "3"), 0);
    DK_CHECK_INT(dk_json_pointer_append(buf, sizeof buf, "~/~1"), 0);
    DK_CHECK_STR(buf, "/turns/3/~0~1~01");
    /* the empty key is a valid segment: the pointer "/" */
    buf[0] = '\0';
    DK_CHECK_INT(dk_json_pointer_append(buf, sizeof buf, ""), 0);
    DK_CHECK_STR(buf, "/");
    /* too long for the buffer: an error, never an overflow */
    char small[6] = "";
    DK_CHECK(dk_json_pointer_append(small, sizeof small, "abcdefgh") < 0);
    DK_CHECK(strlen(small) < sizeof small);
}

int main(void)
{
    DK_RUN(test_text_form);
    DK_RUN(test_text_escapes);
    DK_RUN(test_json_form);
    DK_RUN(test_counters_and_move);
    DK_RUN(test_pointer_append);
    DK_TEST_MAIN_END("test_diag");
}
