/* Unit tests of dk_template: small templates worked out by hand for every construct
 * the chat templates use (and the reference's documented quirks), whitespace control,
 * errors with their template line, limits, tokenizer_config loading and the dialog
 * context.
 *
 * With arguments, `test_template --render FILE` is the C side of
 * tests/scripts/t_template_render.sh: each input line is
 *   {"template_path", "dialog", "add_generation_prompt", "kwargs"}
 * and each output line {"text": ...} or {"error": ...}, as tests/ref/jinja-render.js
 * writes them with @huggingface/jinja. `--bench N FILE` renders the file N times and
 * prints renders per second. `--render-src FILE` renders {"src", "ctx"} lines (the
 * random-template differential test). */
#include "dk_template.h"
#include "dk_test.h"

#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* A check whose result the test also branches on. */
#define DK_CHECK_RET(cond) (dk_test_checks++, (cond) ? 1 : (dk_test_failed++, \
    fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond), 0))

/* --- helpers --------------------------------------------------------------------- */

/* With --dump-cases FILE, every EXPECT/EXPECT_ERR case is also written there as
 * {"src", "ctx", "want"} or {"src", "ctx", "error": true}, so that the hand-worked
 * expectations can be checked against the reference renderer (tests/ref). */
static FILE *dump;

static void dump_case(const char *src, const char *ctx, const char *want)
{
    if (!dump)
        return;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "src", src);
    if (ctx)
        cJSON_AddItemToObject(o, "ctx", cJSON_Parse(ctx));
    if (want)
        cJSON_AddStringToObject(o, "want", want);
    else
        cJSON_AddTrueToObject(o, "error");
    char *s = cJSON_PrintUnformatted(o);
    fprintf(dump, "%s\n", s);
    free(s);
    cJSON_Delete(o);
}

static char *render(const char *src, const char *ctx_json, int *rc, dk_error *err)
{
    dk_template *t = NULL;
    char *out = NULL;
    *rc = dk_template_parse(&t, src, strlen(src), "t.jinja", err);
    if (*rc)
        return NULL;
    cJSON *ctx = ctx_json ? cJSON_Parse(ctx_json) : NULL;
    if (ctx_json && !ctx) {
        fprintf(stderr, "bad test context: %s\n", ctx_json);
        abort();
    }
    *rc = dk_template_render(t, ctx, NULL, &out, NULL, err);
    cJSON_Delete(ctx);
    dk_template_free(t);
    return out;
}

#define EXPECT(src, ctx, want) do { dump_case((src), (ctx), (want)); int rc_; dk_error e_ = { 0 }; char *o_ = render((src), (ctx), &rc_, &e_); \
    if (rc_) { fprintf(stderr, "%s:%d: render failed: %s (line %ld)\n", __FILE__, __LINE__, e_.msg, e_.line); } \
    DK_CHECK_STR(o_, (want)); free(o_); } while (0)

#define EXPECT_ERR(src, ctx, code, line_) do { if ((code) != DK_EUNSUPPORTED && (code) != DK_ELIMIT) { \
    dump_case((src), (ctx), NULL); } int rc_; dk_error e_ = { 0 }; \
    char *o_ = render((src), (ctx), &rc_, &e_); DK_CHECK_INT(rc_, (code)); DK_CHECK(o_ == NULL); \
    if ((line_) >= 0) { DK_CHECK_INT(e_.line, (line_)); } free(o_); } while (0)

/* --- the constructs ----------------------------------------------------------------- */

static void test_text_and_expressions(void)
{
    EXPECT("hello", NULL, "hello");
    EXPECT("", NULL, "");
    EXPECT("a\n", NULL, "a");             /* one final newline is dropped */
    EXPECT("a\n\n", NULL, "a\n");
    EXPECT("{{ 'x' }}{{ \"y\" }}", NULL, "xy");
    EXPECT("{{ 'a' 'b' }}", NULL, "ab"); /* adjacent literals concatenate */
    EXPECT("{{ x }}", "{\"x\": \"v\"}", "v");
    EXPECT("[{{ missing }}][{{ none }}]", NULL, "[][]");
    EXPECT("{{ true }} {{ false }} {{ True }}", NULL, "true false true");
    EXPECT("{{ 1 + 2 }} {{ 7 // 2 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ -7 % 3 }}", NULL, "3 3 3.5 1024 -1");
    EXPECT("{{ 1.0 }} {{ 2.50 }} {{ 1.0 ~ '' }} {{ 10 / 5 }} {{ -0.0 }}", NULL, "1.0 2.5 1 2.0 -0.0");
    EXPECT("{{ 0.1 + 0.2 }}", NULL, "0.30000000000000004");
    EXPECT("{{ 'a' ~ 1 ~ true ~ 2.5 }}", NULL, "a1true2.5");
    EXPECT("{{ 'n=' + 3 }}", NULL, "n=3");
    EXPECT("{{ [1, 'a', none, true] }}", NULL, "[1, \"a\", null, true]");
    EXPECT("{{ {'k': [1, {'z': 2}]} }}", NULL, "{\"k\": [1, {\"z\": 2}]}");
    EXPECT("{{ x }}", "{\"x\": 3.0}", "3");     /* JSON 3.0 is an integer to JavaScript */
    EXPECT("{{ x }}", "{\"x\": 12345678901234567890}", "12345678901234567000");
    EXPECT("{{ x }}", "{\"x\": 1e21}", "1e+21");
    EXPECT("{{ x }} {{ y }}", "{\"x\": 1.5e-7, \"y\": 0.000001}", "1.5e-7 0.000001");
    EXPECT("{{ 'a' if x else 'b' }}{{ 'c' if not x }}", "{\"x\": 0}", "bc");
    EXPECT("{{ 'q' if 1 > 2 }}", NULL, "");
    EXPECT("{{ a and b }}|{{ a or b }}|{{ c or 'd' }}", "{\"a\": \"A\", \"b\": \"B\", \"c\": []}", "B|A|d");
    EXPECT("{{ not 1 == 2 }}", NULL, "true");
}

static void test_comparisons(void)
{
    EXPECT("{{ 1 == 1.0 }} {{ '1' == 1 }} {{ true == 1 }} {{ none == x }}", NULL, "true true true true");
    EXPECT("{{ 'a' != 'a' }} {{ [1] == [1] }} {{ 2 >= 2 }} {{ 1 < 0.5 }}", NULL, "false false true false");
    EXPECT("{{ 'b' in 'abc' }} {{ 'x' not in 'abc' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }}", NULL,
           "true true true true");
    EXPECT("{{ 1 in [1.0] }} {{ '1' in [1] }} {{ 'a' in u }} {{ 'a' not in u }}", NULL, "true false false true");
    EXPECT_ERR("{{ 'a' < 'b' }}", NULL, DK_EINVAL, 1);
    EXPECT_ERR("\n{{ x + 1 }}", NULL, DK_EINVAL, 2);
    EXPECT_ERR("{{ none + 1 }}", NULL, DK_EINVAL, 1);
    /* an object against a scalar compares as JavaScript's primitive of it */
    EXPECT("{{ [1] == 1 }} {{ [1, 2.0] == '1,2.0' }} {{ {} == '[object Map]' }} {{ {} == 0 }} {{ [] == 0 }} "
           "{{ [] == false }} {{ [none] == 'undefined' }}", NULL, "true true true false true true true");
    EXPECT("{{ [none, x, 1] | unique | length }}", NULL, "2");
    EXPECT_ERR("{{ none in [x] }}", NULL, DK_EINVAL, 1);
    EXPECT_ERR("{{ 'a' ~ {} }}", NULL, DK_EUNSUPPORTED, 1);
    EXPECT_ERR("{{ 'a' + [1] }}", NULL, DK_EUNSUPPORTED, 1);
}

static void test_if_for(void)
{
    const char *t = "{% if x == 1 %}one{% elif x == 2 %}two{% else %}many{% endif %}";
    EXPECT(t, "{\"x\": 1}", "one");
    EXPECT(t, "{\"x\": 2}", "two");
    EXPECT(t, "{\"x\": 5}", "many");
    EXPECT("{% for m in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}"
           "{{ 'F' if loop.first }}{{ 'L' if loop.last }}{{ loop.length }};{% endfor %}",
           "{\"xs\": [\"a\", \"b\"]}", "1021F2;2110L2;");
    EXPECT("{% for x in xs %}{{ loop.previtem }}>{{ x }}>{{ loop.nextitem }} {% endfor %}", "{\"xs\": [1, 2, 3]}",
           ">1>2 1>2>3 2>3> ");
    EXPECT("{% for x in xs %}{{ x }}{% else %}empty{% endfor %}", "{\"xs\": []}", "empty");
    EXPECT("{% for x in xs if x > 1 %}{{ x }}{{ loop.index }}{% endfor %}", "{\"xs\": [1, 2, 3]}", "2132");
    EXPECT("{% for k in d %}{{ k }}{% endfor %}", "{\"d\": {\"b\": 1, \"a\": 2}}", "ba");
    EXPECT("{% for k, v in d.items() %}{{ k }}={{ v }},{% endfor %}", "{\"d\": {\"b\": 1, \"a\": 2}}", "b=1,a=2,");
    EXPECT("{% for x in xs[::-1] %}{{ x }}{% endfor %}", "{\"xs\": [1, 2, 3]}", "321");
    EXPECT("{% for x in range(3) %}{{ x }}{% endfor %}|{% for x in range(5, 1, -2) %}{{ x }}{% endfor %}", NULL,
           "012|53");
    /* break and continue drop the output of the interrupted iteration, as the
     * reference's exceptions do, and `continue` does not count for the else block */
    EXPECT("{% for x in [1, 2, 3] %}<{{ x }}{% if x == 2 %}{% break %}{% endif %}>{% endfor %}", NULL, "<1>");
    EXPECT("{% for x in [1, 2, 3] %}<{{ x }}{% if x == 2 %}{% continue %}{% endif %}>{% endfor %}", NULL, "<1><3>");
    EXPECT("{% for x in [1] %}{% continue %}{% else %}E{% endfor %}", NULL, "E");
    /* the loop variable and sets inside a loop do not leak out */
    EXPECT("{% set x = 'o' %}{% for x in [1] %}{% set y = 2 %}{% endfor %}{{ x }}{{ y }}", NULL, "o");
    EXPECT("{% for a in [1, 2] %}{% for b in [3, 4] %}{{ loop.index }}{% endfor %}{{ loop.index }}{% endfor %}", NULL,
           "121122");
    EXPECT_ERR("{% for x in 'abc' %}{% endfor %}", NULL, DK_EINVAL, 1);
    EXPECT_ERR("\n\n{% break %}", NULL, DK_EINVAL, 3);
}

static void test_set_namespace_macro(void)
{
    EXPECT("{% set x = 1 %}{% set y = x + 1 %}{{ y }}", NULL, "2");
    EXPECT("{% set a, b = [1, 2] %}{{ b }}{{ a }}", NULL, "21");
    EXPECT("{% set t = 1, 2 %}{{ t | length }}", NULL, "2");
    EXPECT("{% set s %}in{{ 1 }}side{% endset %}[{{ s }}]", NULL, "[in1side]");
    EXPECT("{% set ns = namespace(n=0, s='') %}{% for i in [1, 2, 3] %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}",
           NULL, "6");
    EXPECT("{% set ns = namespace({'a': 1}, b=2) %}{{ ns.a }}{{ ns.b }}{{ ns }}", NULL, "12{\"a\": 1, \"b\": 2}");
    EXPECT("{% if true %}{% set g = 'set in if' %}{% endif %}{{ g }}", NULL, "set in if");
    EXPECT("{% macro m(a, b='B') %}{{ a }}-{{ b }}{% endmacro %}{{ m(1) }} {{ m(1, 2) }} {{ m(b=3, a=4) }}", NULL,
           "1-B 1-2 4-3");
    EXPECT("{% macro m(a, b=a ~ '!') %}{{ b }}{% endmacro %}{{ m('x') }}", NULL, "x!");
    EXPECT("{% macro outer() %}{{ v }}{% endmacro %}{% set v = 'dyn' %}{{ outer() }}", NULL, "dyn");
    EXPECT_ERR("{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}", NULL, DK_EINVAL, 1);
    EXPECT_ERR("{% macro m(a) %}{% endmacro %}{{ m(c=2) }}", NULL, DK_EINVAL, 1);
    /* extra arguments land in kwargs / varargs only when the body reads them */
    EXPECT("{% macro m(a) %}{{ a }}{{ kwargs }}{{ varargs }}{% endmacro %}{{ m(1, 2, 3, k=4) }}|{{ m(a=5) }}", NULL,
           "1{\"k\": 4}[2, 3]|5{}[]");
    EXPECT_ERR("{% macro m() %}{% set kwargs = 1 %}{{ kwargs }}{% endmacro %}{{ m(x=1) }}", NULL, DK_EINVAL, 1);
    EXPECT_ERR("{% macro m() %}{{ varargs }}{% endmacro %}{{ m(x=1) }}", NULL, DK_EINVAL, 1);
    /* call blocks */
    EXPECT("{% macro ul(items) %}<ul>{% for i in items %}{{ caller(i) }}{% endfor %}</ul>{% endmacro %}"
           "{% call(x) ul([1, 2]) %}<li>{{ x }}</li>{% endcall %}", NULL, "<ul><li>1</li><li>2</li></ul>");
    EXPECT("{% macro w(t='-') %}{{ t }}{{ caller() }}{{ t }}{% endmacro %}{% set v = 'in' %}{% call w('|') %}{{ v }}{% endcall %}",
           NULL, "|in|");
    EXPECT_ERR("{% set x.y = 1 %}", "{\"x\": {}}", DK_EINVAL, 1);
    EXPECT("{% filter upper %}ab{{ 'c' }}{% endfilter %}", NULL, "ABC");
}

static void test_members_and_slices(void)
{
    const char *ctx = "{\"m\": {\"role\": \"user\", \"content\": \"hi\"}, \"l\": [10, 20, 30, 40], \"s\": \"h\\u00e9llo\"}";
    EXPECT("{{ m.role }} {{ m['content'] }} {{ m.nope }}|{{ m.get('role') }} {{ m.get('x', 'dflt') }}", ctx,
           "user hi |user dflt");
    EXPECT("{{ l[0] }} {{ l[-1] }} {{ l[9] }}|{{ l.length }} {{ l | length }} {{ s | length }} {{ s.length }}", ctx,
           "10 40 |4 4 5 5");
    EXPECT("{{ l[1:3] }} {{ l[:2] }} {{ l[2:] }} {{ l[::2] }} {{ l[::-1] }} {{ l[-2:] }} {{ l[3:1:-1] }}", ctx,
           "[20, 30] [10, 20] [30, 40] [10, 30] [40, 30, 20, 10] [30, 40] [40, 30]");
    EXPECT("{{ s[1] }} {{ s[1:3] }} {{ s[::-1] }} {{ s[-1] }}", ctx, "\xc3\xa9 \xc3\xa9l oll\xc3\xa9h o");
    EXPECT("{{ '\xf0\x9f\x98\x80x' | length }} {{ '\xf0\x9f\x98\x80x'[1:] }}", NULL, "3 x");
    EXPECT("{{ m.items() | length }} {{ m.keys() }} {{ m.values() }}", ctx, "2 [\"role\", \"content\"] [\"user\", \"hi\"]");
    EXPECT("{{ d }}", "{\"d\": {\"b\": 1, \"2\": 2, \"a\": 3, \"1\": 4}}", "{\"1\": 4, \"2\": 2, \"b\": 1, \"a\": 3}");
    EXPECT("{{ x.y.z }}|{{ none.a }}", "{\"x\": {}}", "|");
    EXPECT_ERR("{{ m[0] }}", ctx, DK_EINVAL, 1);
    EXPECT_ERR("{{ x.y.z() }}", NULL, DK_EINVAL, 1);
}

static void test_string_methods(void)
{
    EXPECT("{{ ' \\n a b \\t'.strip() }}|{{ '  a '.lstrip() }}|{{ '  a '.rstrip() }}", NULL, "a b|a |  a");
    /* the reference ignores the characters argument of strip/lstrip/rstrip */
    EXPECT("[{{ ' \\nx\\n '.strip('\\n') }}][{{ '\\n  x'.lstrip('\\n') }}]", NULL, "[x][x]");
    EXPECT("{{ '\xe3\x80\x80x\xc2\xa0'.strip() }}", NULL, "x"); /* U+3000 and U+00A0 are white space */
    EXPECT("{{ 'Hi'.upper() }} {{ 'Hi'.lower() }} {{ 'stra\xc3\x9f' | upper }} {{ 'hello wORLD-x' | title }}", NULL,
           "HI hi STRASS Hello WORLD-X");
    EXPECT("{{ 'abc'.capitalize() }} {{ '\xc3\xa9t\xc3\xa9' | capitalize }}", NULL, "Abc \xc3\x89t\xc3\xa9");
    EXPECT("{{ 'abc'.startswith('ab') }} {{ 'abc'.endswith(('x', 'bc')) }} {{ 'abc'.startswith('b') }}", NULL,
           "true true false");
    EXPECT("{{ 'a,b,,c'.split(',') }} {{ 'a,b,c'.split(',', 1) }} {{ '  a  b '.split() }} {{ 'a b c'.split(none, 1) }}",
           NULL, "[\"a\", \"b\", \"\", \"c\"] [\"a\", \"b,c\"] [\"a\", \"b\"] [\"a\", \"b c\"]");
    EXPECT("{{ 'x</think>y'.split('</think>')[-1] }} {{ 'q'.split('</think>')[0] }}", NULL, "y q");
    EXPECT("{{ 'aaa'.replace('a', 'b') }} {{ 'aaa'.replace('a', 'b', 2) }} {{ 'ab'.replace('', '-') }}", NULL,
           "bbb bba -a-b-");
    EXPECT("{{ 'aaa' | replace('a', 'c', count=1) }}", NULL, "caa");
    EXPECT_ERR("{{ 'a'.split('') }}", NULL, DK_EINVAL, 1);
    EXPECT_ERR("{{ 'a'.startswith() }}", NULL, DK_EINVAL, 1);
}

static void test_filters(void)
{
    EXPECT("{{ '  x  ' | trim }}|{{ [3, 1, 2] | sort }}|{{ ['b', 'A', 'a'] | sort }}|{{ [1, 2] | reverse }}", NULL,
           "x|[1, 2, 3]|[\"A\", \"a\", \"b\"]|[2, 1]");
    EXPECT("{{ [1, 2, 3] | first }}{{ [1, 2, 3] | last }} {{ ['a', 1, none] | join }} {{ ['a', 'b'] | join(', ') }}",
           NULL, "13 a1 a, b");
    EXPECT("{{ 'abc' | join('-') }} {{ [1, 1, '1', 2] | unique }}", NULL, "a-b-c [1, \"1\", 2]");
    EXPECT("{{ '12px' | int }} {{ 'x' | int }} {{ 'x' | int(7) }} {{ '2.5e1' | float }} {{ 3.7 | int }} {{ -3.5 | abs }}",
           NULL, "12 0 7 25.0 3 3.5");
    EXPECT("{{ 3 | string }} {{ 3.0 | string }} {{ true | string }} {{ [1] | string }}", NULL, "3 3.0 true [1]");
    EXPECT("{{ x | default('d') }} {{ '' | default('d') }} {{ '' | default('d', true) }} {{ 0 | default(1, boolean=true) }}",
           NULL, "d  d 1");
    EXPECT("{{ 'a\\nb\\n\\nc' | indent }}|{{ 'a\\nb' | indent(2, true) }}", NULL, "a\n    b\n\n    c|  a\n  b");
    EXPECT("{{ d | items | list | length }} {{ d | length }}", "{\"d\": {\"a\": 1}}", "1 1");
    EXPECT("{{ xs | selectattr('on') | length }} {{ xs | rejectattr('on') | length }} "
           "{{ xs | selectattr('k', 'equalto', 'b') | map(attribute='n') | list }} {{ xs | map(attribute='z', default=0) }}",
           "{\"xs\": [{\"n\": 1, \"on\": true}, {\"n\": 2, \"k\": \"b\"}, {\"n\": 3, \"on\": false}]}",
           "1 2 [2] [0, 0, 0]");
    EXPECT("{{ xs | sort(attribute='n', reverse=true) | map(attribute='n') }}",
           "{\"xs\": [{\"n\": 1}, {\"n\": 3}, {\"n\": 2}]}", "[3, 2, 1]");
    EXPECT("{{ d | dictsort }}", "{\"d\": {\"b\": 1, \"A\": 2}}", "[[\"A\", 2], [\"b\", 1]]");
    EXPECT_ERR("{{ [] | first }}", NULL, DK_EUNSUPPORTED, 1);
    EXPECT_ERR("{{ x | default }}", NULL, DK_EINVAL, 1);
    EXPECT_ERR("\n{{ 'a' | nosuchfilter }}", NULL, DK_EINVAL, 2);
}

static void test_tojson(void)
{
    const char *ctx = "{\"t\": {\"name\": \"f\", \"d\": \"\\u00e9\\\"\\n\\u0001\\ud83d\\ude00\", \"n\": [1, 2.5, true, null], "
                      "\"e\": {}, \"l\": []}}";
    EXPECT("{{ t | tojson }}", ctx,
           "{\"name\": \"f\", \"d\": \"\xc3\xa9\\\"\\n\\u0001\xf0\x9f\x98\x80\", \"n\": [1, 2.5, true, null], \"e\": {}, \"l\": []}");
    EXPECT("{{ t | tojson(ensure_ascii=true) }}", ctx,
           "{\"name\": \"f\", \"d\": \"\\u00e9\\\"\\n\\u0001\\ud83d\\ude00\", \"n\": [1, 2.5, true, null], \"e\": {}, \"l\": []}");
    EXPECT("{{ t.n | tojson(indent=2) }}", ctx, "[\n  1,\n  2.5,\n  true,\n  null\n]");
    EXPECT("{{ {'a': [1], 'b': {}} | tojson(indent=2) }}", NULL, "{\n  \"a\": [\n    1\n  ],\n  \"b\": {}\n}");
    EXPECT("{{ {'a': 1, 'b': 2} | tojson(separators=(',', ':')) }}", NULL, "{\"a\":1,\"b\":2}");
    EXPECT("{{ x | tojson }} {{ 'a\\u2028' | tojson }}", NULL, "null \"a\xe2\x80\xa8\"");
    EXPECT_ERR("{{ (1, 2) | tojson }}", NULL, DK_EINVAL, 1);
    EXPECT("{{ 'a' | tojson(indent=-1) }} {{ [] | tojson(indent=3) }}", NULL, "\"a\" []");
    EXPECT_ERR("{{ [] | tojson(indent=-1) }}", NULL, DK_EINVAL, 1);
    EXPECT_ERR("{{ {} | tojson(sort_keys=true) }}", NULL, DK_EUNSUPPORTED, 1);
}

static void test_tests(void)
{
    EXPECT("{{ x is defined }} {{ x is undefined }} {{ none is none }} {{ x is none }} {{ 'a' is string }}", NULL,
           "false true true false true");
    EXPECT("{{ 1 is number }} {{ 1.5 is integer }} {{ true is boolean }} {{ {} is mapping }} {{ [] is iterable }} "
           "{{ 's' is iterable }} {{ (1, 2) is iterable }} {{ {} is sequence }}", NULL,
           "true false true true true true false true");
    EXPECT("{{ 3 is odd }} {{ 3 is even }} {{ 'ab' is lower }} {{ 'aB' is upper }} {{ x is not defined }} "
           "{{ false is false }} {{ 0 is false }} {{ range is callable }}", NULL,
           "true false true false true true false true");
    EXPECT_ERR("{{ 1 is nosuchtest }}", NULL, DK_EINVAL, 1);
    EXPECT_ERR("{{ 1.5 is odd }}", NULL, DK_EINVAL, 1);
}

/* Idioms of other published chat templates (Mistral, Qwen3-Coder, DeepSeek-V3.1,
 * GPT-OSS): identity of dicts picked by selectattr, split with maxsplit, a macro over
 * mappings with a filtered loop, previtem/nextitem, namespaces updated in loops. */
static void test_template_idioms(void)
{
    const char *ctx = "{\"msgs\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"b\"},"
                      " {\"role\": \"user\", \"content\": \"c\"}, {\"role\": \"assistant\", \"content\": \"x</think>y</think>z\"}]}";
    EXPECT("{% set us = msgs | selectattr('role', 'equalto', 'user') | list %}"
           "{% for m in msgs %}{{ 'L' if m == us[-1] else '.' }}{% endfor %}", ctx, "..L.");
    EXPECT("{{ msgs[-1].content.split('</think>', 1)[1] }}|{{ msgs[-1].get('tool_calls') }}|{{ msgs[0].get('role') }}",
           ctx, "y</think>z||user");
    EXPECT("{% macro r(d, h) %}{% if d is mapping %}{% for k in d if k not in h %}<{{ k }}>"
           "{{ d[k] | tojson | safe if d[k] is mapping or (d[k] is sequence and d[k] is not string) else d[k] | string }}"
           "{% endfor %}{% endif %}{% endmacro %}{{ r({'a': 1, 'b': {'x': true}, 'c': 'z', 'e': [1]}, ['c']) }}",
           NULL, "<a>1<b>{\"x\": true}<e>[1]");
    EXPECT("{% for m in msgs %}{% if loop.previtem and loop.previtem.role != 'user' %}P{% endif %}"
           "{% if not loop.last and loop.nextitem.role == 'assistant' %}N{% endif %}{% endfor %}", ctx, "NPN");
    EXPECT("{% set f = namespace(found=false) %}{% for m in msgs[2:] %}{% if m.role == 'assistant' %}"
           "{% set f.found = true %}{% endif %}{% endfor %}{{ f.found }}", ctx, "true");
    EXPECT("{% for k, v in {'p': 1, 'q': 'w'} | items %}{{ k }}={{ v | string }};{% endfor %}", NULL, "p=1;q=w;");
}

static void test_whitespace(void)
{
    /* explicit control */
    EXPECT("a  {{- 'b' -}}  \n c", NULL, "abc");
    EXPECT("a \n{%- if true -%}\n b {%- endif %} c", NULL, "ab c");
    EXPECT("x {#- comment -#} y", NULL, "xy");
    EXPECT("x {# comment #} y", NULL, "x  y");
    /* trim_blocks: the newline after a block tag goes; lstrip_blocks: the indentation
     * before one; an expression tag keeps both */
    EXPECT("{% if true %}\n  yes\n{% endif %}\n", NULL, "  yes\n");
    EXPECT("<\n    {% if true %}\n    a\n    {% endif %}\n>", NULL, "<\n    a\n>");
    EXPECT("<\n  {{ 'a' }}\n>", NULL, "<\n  a\n>");
    EXPECT("a {% if true %}b{% endif %}", NULL, "a b");  /* not at a line start: kept */
    EXPECT("{# c #}\nx", NULL, "x");
    /* JavaScript white space counts for {%- and -%} */
    EXPECT("a\xe3\x80\x80{{- 'b' }}", NULL, "ab");
    /* the transformers {% generation %} tag is removed */
    EXPECT("a {% generation %}b{% endgeneration %} c", NULL, "a b c");
    EXPECT("a {%- generation -%} b", NULL, "ab");
}

static void test_errors(void)
{
    EXPECT_ERR("{% if x %}\nno end", NULL, DK_EPARSE, 1);
    EXPECT_ERR("ok\n{{ 'a' ", NULL, DK_EPARSE, 2);
    EXPECT_ERR("a\nb\n{% frobnicate %}", NULL, DK_EPARSE, 3);
    EXPECT_ERR("a\n{% include 'x' %}", NULL, DK_EUNSUPPORTED, 2);
    EXPECT_ERR("a\n\n{% call m() %}{% endcall %}", NULL, DK_EINVAL, 3);
    EXPECT_ERR("{{ 'unterminated }}", NULL, DK_EPARSE, 1);
    EXPECT_ERR("{{ x ! y }}", NULL, DK_EPARSE, 1);
    EXPECT_ERR("{{ '\\q' }}", NULL, DK_EPARSE, 1);
    EXPECT_ERR("{{ '\\ud800' }}", NULL, DK_EUNSUPPORTED, 1);
    EXPECT_ERR("{# open", NULL, DK_EPARSE, 1);
    EXPECT_ERR("{{ }}", NULL, DK_EPARSE, 1);
    EXPECT_ERR("{{ 1e3 }}", NULL, DK_EPARSE, 1);
    EXPECT_ERR("{{ (1,) }}", NULL, DK_EPARSE, 1);
    EXPECT_ERR("{{ [1] | selectattr(1) }}", NULL, DK_EINVAL, 1);
    EXPECT_ERR("\n\n{{ raise_exception('bad ' ~ 'turn') }}", NULL, DK_EINVAL, 3);
    {
        int rc;
        dk_error e = { 0 };
        char *o = render("{{ raise_exception('Only user and assistant') }}", NULL, &rc, &e);
        DK_CHECK(o == NULL);
        DK_CHECK_STR(e.msg, "raise_exception: Only user and assistant");
        DK_CHECK_STR(e.file, "t.jinja");
    }
    EXPECT_ERR("{{ x }}", "{\"true\": 1, \"x\": 2}", DK_EINVAL, -1);
    {
        int rc;
        dk_error e = { 0 };
        DK_CHECK(render("\xff", NULL, &rc, &e) == NULL);
        DK_CHECK_INT(rc, DK_EUTF8);
    }
}

static void test_limits(void)
{
    dk_template *t = NULL;
    dk_error e = { 0 };
    char *out = NULL;
    dk_template_limits lim;
    dk_template_limits_default(&lim);
    lim.max_output = 100;
    lim.max_steps = 100000;
    const char *big = "{% for i in range(1000) %}xxxxxxxxxx{% endfor %}";
    DK_CHECK_INT(dk_template_parse(&t, big, strlen(big), "big", &e), 0);
    DK_CHECK_INT(dk_template_render(t, NULL, &lim, &out, NULL, &e), DK_ELIMIT);
    DK_CHECK(out == NULL);
    dk_template_free(t);

    const char *loop = "{% for i in range(10000000) %}{% endfor %}";
    DK_CHECK_INT(dk_template_parse(&t, loop, strlen(loop), "loop", &e), 0);
    DK_CHECK_INT(dk_template_render(t, NULL, &lim, &out, NULL, &e), DK_ELIMIT);
    dk_template_free(t);

    const char *rec = "{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}";
    DK_CHECK_INT(dk_template_parse(&t, rec, strlen(rec), "rec", &e), 0);
    DK_CHECK_INT(dk_template_render(t, NULL, NULL, &out, NULL, &e), DK_ELIMIT);
    dk_template_free(t);

    const char *grow = "{% set ns = namespace(s='x') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}";
    lim.max_output = (size_t)1 << 30;
    lim.max_memory = (size_t)16 << 20;
    DK_CHECK_INT(dk_template_parse(&t, grow, strlen(grow), "grow", &e), 0);
    DK_CHECK_INT(dk_template_render(t, NULL, &lim, &out, NULL, &e), DK_ELIMIT);
    dk_template_free(t);

    char deep[4000];
    size_t n = 0;
    n += (size_t)sprintf(deep + n, "{{ ");
    for (int i = 0; i < 1000; i++)
        deep[n++] = '(';
    deep[n++] = '1';
    for (int i = 0; i < 1000; i++)
        deep[n++] = ')';
    n += (size_t)sprintf(deep + n, " }}");
    DK_CHECK_INT(dk_template_parse(&t, deep, n, "deep", &e), DK_ELIMIT);
    DK_CHECK(t == NULL);
    dk_template_free(NULL);
}

static void test_chat_config(void)
{
    const char *cfg = "{\"chat_template\": [{\"name\": \"default\", \"template\": \"D{{ bos_token }}{{ eos_token }}\"},"
                      " {\"name\": \"tool_use\", \"template\": \"T{{ tools | length }}\"}],"
                      " \"bos_token\": {\"content\": \"<s>\", \"lstrip\": false}, \"eos_token\": \"</s>\"}";
    cJSON *j = cJSON_Parse(cfg);
    dk_chat_template *ct = NULL;
    dk_error e = { 0 };
    DK_CHECK_INT(dk_chat_template_from_json(&ct, j, "cfg", &e), 0);
    DK_CHECK_STR(dk_chat_template_bos(ct), "<s>");
    DK_CHECK_STR(dk_chat_template_eos(ct), "</s>");
    DK_CHECK(dk_chat_template_pick(ct, 0) != dk_chat_template_pick(ct, 1));
    cJSON *d1 = cJSON_Parse("{\"dialog_id\": \"a\", \"turns\": [{\"role\": \"user\", \"content\": \"x\"}]}");
    cJSON *d2 = cJSON_Parse("{\"dialog_id\": \"b\", \"turns\": [], \"tools\": [{}, {}]}");
    char *out = NULL;
    DK_CHECK_INT(dk_chat_template_render_dialog(ct, d1, 0, NULL, NULL, &out, NULL, &e), 0);
    DK_CHECK_STR(out, "D<s></s>");
    free(out);
    DK_CHECK_INT(dk_chat_template_render_dialog(ct, d2, 0, NULL, NULL, &out, NULL, &e), 0);
    DK_CHECK_STR(out, "T2");
    free(out);
    dk_chat_template_free(ct);
    cJSON_Delete(j);

    /* the context carries every turn field, tools, the flag and the kwargs */
    j = cJSON_Parse("{\"chat_template\": \"{{ messages[0].reasoning_content }}|{{ messages[0].extra.k }}|"
                    "{{ add_generation_prompt }}|{{ tools }}|{{ enable_thinking }}|{{ bos_token is defined }}|"
                    "{{ documents is none }}|{{ pad_token }}|{{ additional_special_tokens }}|{{ unk_token is defined }}\","
                    " \"bos_token\": null, \"pad_token\": {\"content\": \"<p>\"}, \"unk_token\": null,"
                    " \"additional_special_tokens\": [\"<a>\", {\"content\": \"<b>\"}]}");
    DK_CHECK_INT(dk_chat_template_from_json(&ct, j, "cfg2", &e), 0);
    DK_CHECK(dk_chat_template_bos(ct) == NULL);
    cJSON *d3 = cJSON_Parse("{\"dialog_id\": \"c\", \"turns\": [{\"role\": \"assistant\", \"content\": \"x\","
                            " \"reasoning_content\": \"why\", \"extra\": {\"k\": 5}}]}");
    cJSON *kw = cJSON_Parse("{\"enable_thinking\": false}");
    DK_CHECK_INT(dk_chat_template_render_dialog(ct, d3, 1, kw, NULL, &out, NULL, &e), 0);
    DK_CHECK_STR(out, "why|5|true||false|false|true|<p>|[\"<a>\", \"<b>\"]|false");
    free(out);
    dk_chat_template_free(ct);
    cJSON_Delete(j);
    cJSON_Delete(kw);
    cJSON_Delete(d1);
    cJSON_Delete(d2);
    cJSON_Delete(d3);

    j = cJSON_Parse("{\"chat_template\": [{\"name\": \"rag\", \"template\": \"x\"}]}");
    DK_CHECK_INT(dk_chat_template_from_json(&ct, j, "cfg3", &e), DK_ENOTFOUND);
    cJSON_Delete(j);
    j = cJSON_Parse("{\"eos_token\": \"x\"}");
    DK_CHECK_INT(dk_chat_template_from_json(&ct, j, "cfg4", &e), DK_ENOTFOUND);
    cJSON_Delete(j);
    j = cJSON_Parse("{\"chat_template\": \"{% if %}\"}");
    DK_CHECK_INT(dk_chat_template_from_json(&ct, j, "cfg5", &e), DK_EPARSE);
    DK_CHECK_STR(e.file, "cfg5:chat_template");
    cJSON_Delete(j);
    DK_CHECK_INT(dk_chat_template_load(&ct, "/nonexistent/dir", &e), DK_ENOTFOUND);
    dk_chat_template_free(NULL);

    /* a model folder: its tokenizer_config.json is read */
    char dir[] = "/tmp/dk_template_test_XXXXXX";
    if (DK_CHECK_RET(mkdtemp(dir) != NULL)) {
        char path[256];
        snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
        FILE *f = fopen(path, "w");
        fputs("{\"chat_template\": \"{{ eos_token }}!\", \"eos_token\": {\"content\": \"<e>\"}}", f);
        fclose(f);
        DK_CHECK_INT(dk_chat_template_load(&ct, dir, &e), 0);
        DK_CHECK_STR(dk_chat_template_eos(ct), "<e>");
        cJSON *d = cJSON_Parse("{\"turns\": []}");
        DK_CHECK_INT(dk_chat_template_render_dialog(ct, d, 0, NULL, NULL, &out, NULL, &e), 0);
        DK_CHECK_STR(out, "<e>!");
        free(out);
        cJSON_Delete(d);
        dk_chat_template_free(ct);
        d = cJSON_Parse("{\"dialog_id\": \"x\"}");
        cJSON *c = NULL;
        DK_CHECK_INT(dk_chat_template_context(&c, NULL, d, 0, NULL, &e), DK_EINVAL);
        cJSON_Delete(d);
        remove(path);
        f = fopen(path, "w");
        fputs("{not json", f);
        fclose(f);
        DK_CHECK_INT(dk_chat_template_load(&ct, path, &e), DK_EPARSE);
        remove(path);
        rmdir(dir);
    }
}

/* --- --render / --bench ----------------------------------------------------------------- */

typedef struct cache_ent {
    char             *path;
    dk_chat_template *ct;
} cache_ent;

static dk_chat_template *cached(cache_ent *c, size_t *n, const char *path, dk_error *e, int *rc)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(c[i].path, path) == 0)
            return c[i].ct;
    if (*n == 64) {
        *rc = DK_ELIMIT;
        return NULL;
    }
    *rc = dk_chat_template_load(&c[*n].ct, path, e);
    if (*rc)
        return NULL;
    c[*n].path = strdup(path);
    return c[(*n)++].ct;
}

/* --render-src: lines {"src", "ctx"} -> {"text"} or {"error", "code"} */
static int render_src_file(const char *file)
{
    FILE *f = fopen(file, "rb");
    if (!f) {
        perror(file);
        return 2;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        cJSON *q = cJSON_ParseWithLength(line, (size_t)len);
        const cJSON *src = cJSON_GetObjectItemCaseSensitive(q, "src");
        if (!cJSON_IsString(src)) {
            fprintf(stderr, "%s: bad request line\n", file);
            return 2;
        }
        dk_template *t = NULL;
        dk_error e = { 0 };
        char *out = NULL;
        int rc = dk_template_parse(&t, src->valuestring, strlen(src->valuestring), "t", &e);
        if (!rc)
            rc = dk_template_render(t, cJSON_GetObjectItemCaseSensitive(q, "ctx"), NULL, &out, NULL, &e);
        cJSON *o = cJSON_CreateObject();
        if (rc) {
            cJSON_AddStringToObject(o, "error", e.msg);
            cJSON_AddStringToObject(o, "code", dk_strerror(rc));
        } else {
            cJSON_AddStringToObject(o, "text", out);
        }
        char *s = cJSON_PrintUnformatted(o);
        puts(s);
        free(s);
        cJSON_Delete(o);
        free(out);
        dk_template_free(t);
        cJSON_Delete(q);
    }
    free(line);
    fclose(f);
    return fflush(stdout) == 0 ? 0 : 2;
}

/* Renders one request line; writes its JSON line when out is non-NULL. Returns the
 * rendered length (0 on a render error). */
static size_t render_request(const cJSON *q, cache_ent *cache, size_t *ncache, FILE *out)
{
    const cJSON *tp = cJSON_GetObjectItemCaseSensitive(q, "template_path");
    const cJSON *dialog = cJSON_GetObjectItemCaseSensitive(q, "dialog");
    const cJSON *agp = cJSON_GetObjectItemCaseSensitive(q, "add_generation_prompt");
    const cJSON *kw = cJSON_GetObjectItemCaseSensitive(q, "kwargs");
    dk_error e = { 0 };
    int rc = 0;
    char *text = NULL;
    size_t n = 0;
    dk_chat_template *ct = cJSON_IsString(tp) ? cached(cache, ncache, tp->valuestring, &e, &rc) : NULL;
    if (!ct && !rc)
        rc = dk_error_set(&e, DK_EINVAL, NULL, 0, "request without template_path");
    if (!rc)
        rc = dk_chat_template_render_dialog(ct, dialog, cJSON_IsTrue(agp), kw, NULL, &text, &n, &e);
    if (out) {
        cJSON *o = cJSON_CreateObject();
        if (rc)
            cJSON_AddStringToObject(o, "error", e.msg);
        else
            cJSON_AddStringToObject(o, "text", text);
        char *s = cJSON_PrintUnformatted(o);
        fputs(s, out);
        fputc('\n', out);
        free(s);
        cJSON_Delete(o);
    }
    free(text);
    return n;
}

/* --render (repeat 0): streams the requests, one output line each. --bench: loads
 * them, then times `repeat` passes of rendering alone. */
static int render_file(const char *file, int repeat)
{
    FILE *f = fopen(file, "rb");
    if (!f) {
        perror(file);
        return 2;
    }
    cache_ent cache[64];
    size_t ncache = 0;
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t len;
    cJSON **reqs = NULL;
    size_t nreq = 0, capreq = 0;
    int status = 0;
    while ((len = getline(&line, &cap, f)) > 0) {
        lineno++;
        cJSON *q = cJSON_ParseWithLength(line, (size_t)len);
        if (!q) {
            fprintf(stderr, "%s:%zu: bad JSON line\n", file, lineno);
            status = 2;
            break;
        }
        if (repeat == 0) {
            render_request(q, cache, &ncache, stdout);
            cJSON_Delete(q);
            continue;
        }
        if (nreq == capreq) {
            capreq = capreq ? capreq * 2 : 256;
            cJSON **nr = realloc(reqs, capreq * sizeof *nr);
            if (!nr) {
                cJSON_Delete(q);
                status = 2;
                break;
            }
            reqs = nr;
        }
        reqs[nreq++] = q;
    }
    free(line);
    fclose(f);
    if (repeat > 0 && status == 0) {
        struct timespec t0, t1;
        size_t bytes = 0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int r = 0; r < repeat; r++)
            for (size_t i = 0; i < nreq; i++)
                bytes += render_request(reqs[i], cache, &ncache, NULL);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double sec = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        printf("%zu renders in %.3f s: %.0f renders/s, %.1f MB/s of text\n", nreq * (size_t)repeat, sec,
               (double)(nreq * (size_t)repeat) / sec, (double)bytes / sec / 1e6);
    }
    for (size_t i = 0; i < nreq; i++)
        cJSON_Delete(reqs[i]);
    free(reqs);
    for (size_t i = 0; i < ncache; i++) {
        free(cache[i].path);
        dk_chat_template_free(cache[i].ct);
    }
    if (fflush(stdout) != 0)
        status = 2;
    return status;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--render") == 0)
        return render_file(argv[2], 0);
    if (argc == 3 && strcmp(argv[1], "--render-src") == 0)
        return render_src_file(argv[2]);
    if (argc == 4 && strcmp(argv[1], "--bench") == 0)
        return render_file(argv[3], atoi(argv[2]) > 0 ? atoi(argv[2]) : 1);
    if (argc == 3 && strcmp(argv[1], "--dump-cases") == 0) {
        dump = fopen(argv[2], "w");
        if (!dump) {
            perror(argv[2]);
            return 2;
        }
    } else if (argc != 1) {
        fprintf(stderr, "usage: test_template [--render FILE | --render-src FILE | --bench N FILE | --dump-cases FILE]\n");
        return 2;
    }
    DK_RUN(test_text_and_expressions);
    DK_RUN(test_comparisons);
    DK_RUN(test_if_for);
    DK_RUN(test_set_namespace_macro);
    DK_RUN(test_members_and_slices);
    DK_RUN(test_string_methods);
    DK_RUN(test_filters);
    DK_RUN(test_tojson);
    DK_RUN(test_tests);
    DK_RUN(test_template_idioms);
    DK_RUN(test_whitespace);
    DK_RUN(test_errors);
    DK_RUN(test_limits);
    DK_RUN(test_chat_config);
    if (dump && fclose(dump) != 0)
        return 2;
    DK_TEST_MAIN_END("test_template");
}
