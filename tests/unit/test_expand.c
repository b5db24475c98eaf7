/* Unit tests of dk_chat (kwargs, config checks) and dk_expand on hand-worked cases: a
 * byte-level tokenizer whose ids are the bytes themselves (tests/fuzz/tok_fixture.h; none
 * of its few merges occurs in these texts, so every byte is one token) and a one-line
 * template, so every count and label below can be worked out by hand. */
#include <stdlib.h>
#include <string.h>

#include "dk_chat.h"
#include "dk_dialog.h"
#include "dk_expand.h"
#include "dk_test.h"
#include "../fuzz/tok_fixture.h"

static void test_kwargs(void)
{
    cJSON *k = cJSON_CreateObject();
    dk_error e = { 0 };
    DK_CHECK_INT(dk_chat_kwarg_add(k, "enable_thinking=false", &e), 0);
    DK_CHECK(cJSON_IsFalse(cJSON_GetObjectItem(k, "enable_thinking")));
    DK_CHECK_INT(dk_chat_kwarg_add(k, "n=3", &e), 0);
    DK_CHECK(cJSON_GetObjectItem(k, "n")->valuedouble == 3);
    DK_CHECK_INT(dk_chat_kwarg_add(k, "who=hello world", &e), 0);
    DK_CHECK_STR(cJSON_GetObjectItem(k, "who")->valuestring, "hello world");
    DK_CHECK_INT(dk_chat_kwarg_add(k, "q=\"true\"", &e), 0);
    DK_CHECK_STR(cJSON_GetObjectItem(k, "q")->valuestring, "true");
    DK_CHECK_INT(dk_chat_kwarg_add(k, "o={\"a\": [1]}", &e), 0);
    DK_CHECK(cJSON_IsObject(cJSON_GetObjectItem(k, "o")));
    DK_CHECK_INT(dk_chat_kwarg_add(k, "x=1 2", &e), 0); /* not one JSON value: a string */
    DK_CHECK_STR(cJSON_GetObjectItem(k, "x")->valuestring, "1 2");
    DK_CHECK_INT(dk_chat_kwarg_add(k, "n=4", &e), 0);   /* replaces */
    DK_CHECK(cJSON_GetObjectItem(k, "n")->valuedouble == 4);
    DK_CHECK_INT(cJSON_GetArraySize(k), 6);
    DK_CHECK_INT(dk_chat_kwarg_add(k, "novalue", &e), DK_EINVAL);
    DK_CHECK_INT(dk_chat_kwarg_add(k, "=x", &e), DK_EINVAL);
    cJSON_Delete(k);
}

static dk_tokenizer *fixture_tokenizer(void)
{
    char *json = tok_fixture_json("null", 1);
    dk_tokenizer *tok = NULL;
    dk_error e = { 0 };
    DK_CHECK_INT(dk_tokenizer_load_buffer(&tok, json, strlen(json), "fixture", &e), 0);
    free(json);
    return tok;
}

static dk_chat_template *config(const char *eos)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "chat_template",
                            "{% for m in messages %}{{ m.role }}:{{ m.content }}<|im_start|>{% endfor %}");
    if (eos)
        cJSON_AddStringToObject(c, "eos_token", eos);
    dk_chat_template *ct = NULL;
    dk_error e = { 0 };
    DK_CHECK_INT(dk_chat_template_from_json(&ct, c, "cfg", &e), 0);
    cJSON_Delete(c);
    return ct;
}

static void test_expander_refuses(void)
{
    dk_tokenizer *tok = fixture_tokenizer();
    dk_expand_opts o = { 0 };
    dk_expander *ex = NULL;
    dk_error e = { 0 };
    dk_chat_template *ct = config(NULL);
    DK_CHECK_INT(dk_expander_new(&ex, tok, ct, &o, &e), DK_EINVAL);   /* no eos_token */
    dk_chat_template_free(ct);
    /* the fixture's <|im_end|> strips the spaces around it: a cut after it is not exact */
    ct = config("<|im_end|>");
    DK_CHECK_INT(dk_expander_new(&ex, tok, ct, &o, &e), DK_EINVAL);
    DK_CHECK(strstr(e.msg, "<|im_end|>") != NULL);
    dk_chat_template_free(ct);
    ct = config("</s>");                                              /* not a token at all */
    DK_CHECK_INT(dk_expander_new(&ex, tok, ct, &o, &e), DK_EINVAL);
    dk_chat_template_free(ct);
    DK_CHECK(ex == NULL);
    dk_tokenizer_free(tok);
}

/* Runs the expander on one dialog line; returns the output lines as a cJSON array. */
static cJSON *expand(const dk_expand_opts *o, const char *line, dk_expand_result *r, dk_diag_list *diags)
{
    dk_tokenizer *tok = fixture_tokenizer();
    dk_chat_template *ct = config("<|im_start|>");
    dk_expander *ex = NULL;
    dk_expand_ctx *c = NULL;
    dk_dialog *d = NULL;
    dk_error e = { 0 };
    cJSON *out = cJSON_CreateArray();
    DK_CHECK_INT(dk_expander_new(&ex, tok, ct, o, &e), 0);
    DK_CHECK_INT(dk_expand_ctx_new(&c, ex, &e), 0);
    DK_CHECK_INT(dk_dialog_parse(line, strlen(line), 7, DK_DIALOG_SCHEMA_ONLY, &d, diags), 0);
    if (c && d) {
        DK_CHECK_INT(dk_expand_dialog(c, d, r, diags), 0);
        /* twice: the second run reads the piece cache of the first one's dialog afresh */
        DK_CHECK_INT(dk_expand_dialog(c, d, r, diags), 0);
        for (char *p = r->out, *end = r->out + r->len; p && p < end;) {
            char *nl = memchr(p, '\n', (size_t)(end - p));
            cJSON_AddItemToArray(out, cJSON_ParseWithLength(p, (size_t)(nl - p)));
            p = nl + 1;
        }
    }
    dk_dialog_free(d);
    dk_expand_ctx_free(c);
    dk_expander_free(ex);
    dk_chat_template_free(ct);
    dk_tokenizer_free(tok);
    return out;
}

static const char dialog[] =
    "{\"dialog_id\":\"d\",\"turns\":[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\"hi\"},"
    "{\"role\":\"assistant\",\"content\":\"yo\"},{\"role\":\"user\",\"content\":\"q\"},"
    "{\"role\":\"assistant\",\"content\":\"ok\"}],\"meta\":{\"k\":1}}";

static long num(const cJSON *o, const char *k) { return (long)cJSON_GetObjectItem(o, k)->valuedouble; }

/* labels: how many -100 first, then the trained ids must follow */
static void check_labels(const cJSON *s, int n_masked, const char *trained)
{
    const cJSON *ids = cJSON_GetObjectItem(s, "input_ids"), *lab = cJSON_GetObjectItem(s, "labels");
    int n = cJSON_GetArraySize(ids), i = 0;
    DK_CHECK_INT(cJSON_GetArraySize(lab), n);
    for (const cJSON *a = ids->child, *b = lab->child; a && b; a = a->next, b = b->next, i++) {
        if (i < n_masked)
            DK_CHECK_INT(b->valuedouble, -100);
        else if (i - n_masked < (int)strlen(trained))
            DK_CHECK_INT(b->valuedouble, (unsigned char)trained[i - n_masked]);
        else
            DK_CHECK_INT(b->valuedouble, 262); /* the end-of-turn token */
    }
}

static void test_prefix(void)
{
    dk_expand_opts o = { .format = DK_EXPAND_IDS };
    dk_expand_result r = { 0 };
    dk_diag_list diags = { 0 };
    cJSON *s = expand(&o, dialog, &r, &diags);
    DK_CHECK_INT(cJSON_GetArraySize(s), 2);
    DK_CHECK_INT(r.samples, 2);
    const cJSON *a = cJSON_GetArrayItem(s, 0), *b = cJSON_GetArrayItem(s, 1);
    /* system:S<e>user:hi<e>assistant:yo<e> = 8+1 + 7+1 + 12+1 bytes/tokens */
    DK_CHECK_INT(num(a, "n_tokens"), 30);
    DK_CHECK_INT(num(a, "turn_index"), 2);
    DK_CHECK_INT(num(a, "line"), 7);
    DK_CHECK_INT(cJSON_GetArrayItem(cJSON_GetObjectItem(a, "input_ids"), 0)->valuedouble, 's');
    check_labels(a, 27, "yo");
    /* + user:q<e>assistant:ok<e> = 7 + 13 */
    DK_CHECK_INT(num(b, "n_tokens"), 50);
    check_labels(b, 47, "ok");
    DK_CHECK_INT(num(cJSON_GetObjectItem(b, "meta"), "k"), 1);
    DK_CHECK_INT(r.tokens, 80);
    DK_CHECK_INT(diags.n, 0);
    cJSON_Delete(s);
    dk_expand_result_free(&r);
    dk_diag_list_free(&diags);
}

static void test_budget(void)
{
    /* 40 tokens: turn 4's sample (50) drops the pair 1-2: system:S<e>user:q<e>assistant:ok<e> = 29 */
    dk_expand_opts o = { .format = DK_EXPAND_IDS, .max_tokens = 40 };
    dk_expand_result r = { 0 };
    dk_diag_list diags = { 0 };
    cJSON *s = expand(&o, dialog, &r, &diags);
    DK_CHECK_INT(cJSON_GetArraySize(s), 2);
    const cJSON *b = cJSON_GetArrayItem(s, 1);
    DK_CHECK_INT(num(b, "n_tokens"), 29);
    DK_CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(b, "dropped_turns")), 2);
    DK_CHECK_INT(cJSON_GetArrayItem(cJSON_GetObjectItem(b, "dropped_turns"), 0)->valuedouble, 1);
    check_labels(b, 26, "ok");
    DK_CHECK_INT(r.turns_dropped, 2);
    cJSON_Delete(s);
    dk_expand_result_free(&r);

    /* 28: even with the pair dropped it is one over; the sample is reported and skipped */
    o.max_tokens = 28;
    s = expand(&o, dialog, &r, &diags);
    DK_CHECK_INT(cJSON_GetArraySize(s), 0);
    DK_CHECK_INT(r.skipped, 2);
    DK_CHECK_INT(diags.n, 4); /* two runs */
    DK_CHECK_STR(diags.items[1].code, "W_TOO_LONG");
    DK_CHECK(strstr(diags.items[1].message, "29 tokens, 1 over") != NULL);
    DK_CHECK_INT(diags.items[1].turn, 4);
    cJSON_Delete(s);
    dk_expand_result_free(&r);
    dk_diag_list_free(&diags);

    /* skip: the 50-token sample goes, the 30-token one stays */
    o.max_tokens = 40;
    o.truncate = DK_EXPAND_SKIP;
    s = expand(&o, dialog, &r, &diags);
    DK_CHECK_INT(cJSON_GetArraySize(s), 1);
    DK_CHECK_INT(r.skipped, 1);
    DK_CHECK(diags.n && strstr(diags.items[0].message, "50 tokens, 10 over") != NULL);
    cJSON_Delete(s);
    dk_expand_result_free(&r);
    dk_diag_list_free(&diags);

    /* window 0, no budget: only the last user turn stays before each target */
    o = (dk_expand_opts){ .format = DK_EXPAND_MESSAGES, .truncate = DK_EXPAND_WINDOW, .window = 0 };
    s = expand(&o, dialog, &r, &diags);
    DK_CHECK_INT(num(cJSON_GetArrayItem(s, 1), "n_tokens"), 29);
    DK_CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetArrayItem(s, 1), "messages")), 3);
    cJSON_Delete(s);
    dk_expand_result_free(&r);
    dk_diag_list_free(&diags);
}

static void test_whole(void)
{
    dk_expand_opts o = { .format = DK_EXPAND_IDS, .mode = DK_EXPAND_WHOLE };
    dk_expand_result r = { 0 };
    dk_diag_list diags = { 0 };
    cJSON *s = expand(&o, dialog, &r, &diags);
    DK_CHECK_INT(cJSON_GetArraySize(s), 1);
    const cJSON *a = cJSON_GetArrayItem(s, 0), *lab = cJSON_GetObjectItem(a, "labels");
    DK_CHECK_INT(num(a, "n_tokens"), 50);
    /* trained: yo<e> at 27..29 and ok<e> at 47..49 */
    int trained = 0;
    for (int i = 0; i < 50; i++) {
        int t = cJSON_GetArrayItem(lab, i)->valuedouble != -100;
        trained += t;
        DK_CHECK_INT(t, (i >= 27 && i < 30) || i >= 47);
    }
    DK_CHECK_INT(trained, 6);
    cJSON_Delete(s);
    dk_expand_result_free(&r);

    /* --train-turns last: only ok<e> */
    o.train = DK_EXPAND_TRAIN_LAST;
    s = expand(&o, dialog, &r, &diags);
    lab = cJSON_GetObjectItem(cJSON_GetArrayItem(s, 0), "labels");
    DK_CHECK_INT(cJSON_GetArrayItem(lab, 27)->valuedouble, -100);
    DK_CHECK_INT(cJSON_GetArrayItem(lab, 47)->valuedouble, 'o');
    DK_CHECK_INT(diags.n, 0);
    cJSON_Delete(s);
    dk_expand_result_free(&r);
    dk_diag_list_free(&diags);
}

int main(void)
{
    DK_RUN(test_kwargs);
    DK_RUN(test_expander_refuses);
    DK_RUN(test_prefix);
    DK_RUN(test_budget);
    DK_RUN(test_whole);
    DK_TEST_MAIN_END("test_expand");
}
