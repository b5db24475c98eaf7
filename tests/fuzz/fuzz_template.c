/* libFuzzer target: arbitrary bytes as a chat template, parsed and rendered twice with
 * a small fixed context (messages with tool calls and reasoning, tools, the usual
 * flags). Invariants: never a crash, hang or unbounded memory (the limits are small
 * here); a render returns text exactly when it returns 0, and a failure always
 * carries a message; rendering is deterministic. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dk_template.h"

static const char ctx_json[] =
    "{\"messages\": [{\"role\": \"system\", \"content\": \" sys \\n\"},"
    " {\"role\": \"user\", \"content\": \"你好 <think>x</think>\"},"
    " {\"role\": \"assistant\", \"content\": null, \"reasoning_content\": \"r\","
    "  \"tool_calls\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": {\"a\": [1, 2.5]}}}]},"
    " {\"role\": \"tool\", \"content\": \"{\\\"ok\\\": true}\"},"
    " {\"role\": \"assistant\", \"content\": \"done 😀\"}],"
    " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {}}}],"
    " \"add_generation_prompt\": true, \"enable_thinking\": false,"
    " \"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}";

static cJSON *ctx;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ctx && !(ctx = cJSON_Parse(ctx_json)))
        abort();
    dk_template_limits lim;
    dk_template_limits_default(&lim);
    lim.max_output = 1 << 20;
    lim.max_memory = 64 << 20;
    lim.max_steps = 200000;
    lim.max_depth = 64;
    dk_template *t = NULL;
    dk_error err = { 0 };
    int rc = dk_template_parse(&t, (const char *)data, size, "fuzz", &err);
    if ((rc == 0) != (t != NULL))
        abort();
    if (rc && err.msg[0] == '\0')
        abort();
    if (!t)
        return 0;
    char *a = NULL, *b = NULL;
    size_t an = 0, bn = 0;
    int ra = dk_template_render(t, ctx, &lim, &a, &an, &err);
    if ((ra == 0) != (a != NULL) || (ra && err.msg[0] == '\0'))
        abort();
    int rb = dk_template_render(t, ctx, &lim, &b, &bn, NULL);
    /* strftime_now reads the clock; everything else must repeat exactly */
    if (ra != rb || an != bn || (a && memcmp(a, b, an) != 0 && !memmem(data, size, "strftime", 8)))
        abort();
    free(a);
    free(b);
    dk_template_free(t);
    return 0;
}
