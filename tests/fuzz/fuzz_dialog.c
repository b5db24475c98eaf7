/* libFuzzer target: one line -> dialog (every check, both modes), then the same
 * outputs a tool would make of it: diagnostics in both forms, serialization and the
 * --annotate splice. Invariants: parse never crashes; a dialog comes back exactly when
 * the status is 0 or DK_ESCHEMA; DK_ESCHEMA always comes with at least one error. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dk_dialog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (unsigned flags = 0; flags <= DK_DIALOG_SCHEMA_ONLY; flags += DK_DIALOG_SCHEMA_ONLY) {
        dk_diag_list diags = { 0 };
        dk_dialog *d = NULL;
        int rc = dk_dialog_parse((const char *)data, size, 1, flags, &d, &diags);
        if ((rc == 0 || rc == DK_ESCHEMA) != (d != NULL))
            abort();
        if (rc == DK_ESCHEMA && diags.n_errors == 0)
            abort();
        if (rc == DK_EPARSE && diags.n_errors != 1)
            abort();
        for (size_t i = 0; i < diags.n; i++) {
            free(dk_diag_format_text(&diags.items[i], "fuzz"));
            free(dk_diag_format_json(&diags.items[i], "fuzz"));
        }
        if (d) {
            free(dk_dialog_serialize(d));
            size_t n;
            free(dk_json_set_member((const char *)data, size, "checks", "{\"a\":1}", &n));
        }
        dk_dialog_free(d);
        dk_diag_list_free(&diags);
    }
    return 0;
}
