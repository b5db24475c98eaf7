/* dk_unicode: the Unicode services dlgkit needs, on ICU: strict UTF-8 validation,
 * normalization (NFC/NFKC/NFD/NFKD), full case folding, the "fold" used to compare
 * entities (NFKC + case folding), and code point <-> byte offsets.
 *
 * Strict UTF-8 means: no overlong forms, no surrogates (U+D800..U+DFFF), nothing
 * above U+10FFFF, no truncated sequences. NUL bytes are valid UTF-8.
 *
 * Ownership: functions that produce text return a new malloc'ed, NUL-terminated
 * UTF-8 string in *out (length in *out_len when out_len is non-NULL) that the caller
 * frees with free(). Inputs are borrowed and need not be NUL-terminated.
 * All functions are thread-safe (ICU's normalizer singletons are immutable).
 */
#ifndef DK_UNICODE_H
#define DK_UNICODE_H

#include <stddef.h>
#include <stdint.h>
#include "dk_error.h"

typedef enum {
    DK_NORM_NFC,
    DK_NORM_NFD,
    DK_NORM_NFKC,
    DK_NORM_NFKD,
} dk_norm_form;

/* 0 when s[0..len) is strict UTF-8; else DK_EUTF8 with *bad_offset (if non-NULL) the
 * byte offset of the lead byte of the first ill-formed sequence (a stray continuation
 * byte is its own lead), so "E4 BD 41" reports 0. */
int dk_utf8_validate(const char *s, size_t len, size_t *bad_offset);

int dk_utf8_normalize(const char *s, size_t len, dk_norm_form form,
                      char **out, size_t *out_len, dk_error *err);

/* Full Unicode case folding (u_strFoldCase, default options). */
int dk_utf8_casefold(const char *s, size_t len, char **out, size_t *out_len, dk_error *err);

/* The comparison form of entity texts and contents: NFKC, then case folding, then NFKC
 * again (folding can denormalize). Pure ASCII input takes a fast path with the same
 * result (ASCII lower-casing). */
int dk_utf8_fold(const char *s, size_t len, char **out, size_t *out_len, dk_error *err);

/* Number of code points of valid UTF-8 s. */
size_t dk_utf8_cp_count(const char *s, size_t len);

/* Byte offset of code point index cp (cp == count gives len). DK_ERANGE if cp > count. */
int dk_utf8_cp_to_byte(const char *s, size_t len, size_t cp, size_t *byte);

/* Code point index of byte offset byte. DK_ERANGE if byte > len or not on a boundary. */
int dk_utf8_byte_to_cp(const char *s, size_t len, size_t byte, size_t *cp);

/* Decodes one code point at s[0..len) of valid UTF-8; returns its byte length (>= 1),
 * or 0 when len == 0. */
size_t dk_utf8_decode(const char *s, size_t len, uint32_t *cp);

#endif
