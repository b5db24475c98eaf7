/* dk_chat: chat-template helpers shared by `tokenizer render` and turn-expander.
 * A failed render is data's fault as far as a tool can tell (raise_exception on a
 * message order the template refuses), so it becomes a diagnostic, not a fatal error.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dk_chat.h"
#include "dk_dialog.h"

int dk_chat_template_open(dk_chat_template **out, const char *path, dk_error *err)
{
    struct stat st;
    size_t n = strlen(path);
    static const char tj[] = "tokenizer.json";
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && n >= sizeof tj - 1 &&
        strcmp(path + n - (sizeof tj - 1), tj) == 0 &&
        (n == sizeof tj - 1 || path[n - sizeof tj] == '/')) {
        /* a tokenizer.json: its config is the sibling file */
        size_t dir = n - (sizeof tj - 1);
        char *cfg = malloc(dir + sizeof "tokenizer_config.json");
        if (!cfg)
            return dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
        memcpy(cfg, path, dir);
        strcpy(cfg + dir, "tokenizer_config.json");
        int rc = dk_chat_template_load(out, cfg, err);
        free(cfg);
        return rc;
    }
    return dk_chat_template_load(out, path, err);
}

int dk_chat_kwarg_add(cJSON *kwargs, const char *arg, dk_error *err)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg)
        return dk_error_set(err, DK_EINVAL, NULL, 0, "--kwarg needs name=value (got '%s')", arg);
    char *name = strndup(arg, (size_t)(eq - arg));
    if (!name)
        return dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
    const char *v = eq + 1, *end = NULL;
    cJSON *val = cJSON_ParseWithOpts(v, &end, 1);
    if (!val)
        val = cJSON_CreateString(v);
    if (!val) {
        free(name);
        return dk_error_set(err, DK_ENOMEM, NULL, 0, "out of memory");
    }
    cJSON_DeleteItemFromObjectCaseSensitive(kwargs, name);
    cJSON_AddItemToObject(kwargs, name, val);
    free(name);
    return 0;
}

int dk_chat_render_line(const dk_chat_template *ct, const char *text, size_t len, long lineno,
                        int add_generation_prompt, const cJSON *kwargs, char **out,
                        size_t *out_len, dk_diag_list *diags)
{
    dk_dialog *d = NULL;
    char *rendered = NULL;
    cJSON *o = NULL;
    size_t n = 0;
    *out = NULL;
    int rc = dk_dialog_parse(text, len, lineno, DK_DIALOG_SCHEMA_ONLY, &d, diags);
    if (rc)
        goto out;
    dk_error e = { 0 };
    rc = dk_chat_template_render_dialog(ct, d->json, add_generation_prompt, kwargs, NULL, &rendered, &n, &e);
    if (rc == DK_ENOMEM)
        goto out;
    if (rc) {
        rc = DK_EINVAL;
        if (dk_diag_add(diags, DK_SEV_ERROR, "E_TEMPLATE", lineno, d->id, -1, "", "chat template: %s",
                        e.msg[0] ? e.msg : dk_strerror(rc)) != 0)
            rc = DK_ENOMEM;
        goto out;
    }
    rc = DK_ENOMEM;
    if (!(o = cJSON_CreateObject()) || !cJSON_AddStringToObject(o, "dialog_id", d->id) ||
        !cJSON_AddStringToObject(o, "text", rendered))
        goto out;
    if (!(*out = cJSON_PrintUnformatted(o)))
        goto out;
    *out_len = strlen(*out);
    rc = 0;
out:
    cJSON_Delete(o);
    free(rendered);
    dk_dialog_free(d);
    return rc;
}
