/* dk_tokenizer_int: the loaded tokenizer's layout, shared by dk_tokenizer.c (encode and
 * decode) and dk_tokenizer_load.c (tokenizer.json). Not a public header.
 *
 * Invariants: everything here is written once by the loader and only read afterwards, so
 * encodes on many threads share it without locks. Byte strings live in `arena`;
 * offsets into it are stable once loading is done (the arena is never moved afterwards).
 */
#ifndef DK_TOKENIZER_INT_H
#define DK_TOKENIZER_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdint.h>
#include <stddef.h>
#include "dk_tokenizer.h"

#define TOK_NONE UINT32_MAX

enum { TOKID_VOCAB = 1, TOKID_ADDED = 2, TOKID_SPECIAL = 4 };

/* One id's strings: the file's spelling and the bytes the ByteLevel decoder makes of it. */
typedef struct tok_entry {
    uint32_t spell_off, spell_len; /* spell_len == TOK_NONE: the id has no token */
    uint32_t dec_off, dec_len;
    uint8_t  flags;
} tok_entry;

/* Added tokens, in one of the two matching sets (raw text, or normalized text). */
typedef struct tok_added {
    uint32_t id;
    uint32_t off, len;             /* the pattern (content, normalized for the second set) */
    uint8_t  single_word, lstrip, rstrip;
} tok_added;

/* A byte trie over one matching set, for leftmost-longest matching. */
typedef struct tok_trie_node {
    int32_t first_child, next_sibling;
    int32_t added;                 /* index into the set's tok_added, -1 when no pattern ends here */
    uint8_t byte;
} tok_trie_node;

typedef struct tok_match_set {
    tok_added     *tokens;
    size_t         n;
    tok_trie_node *nodes;          /* node 0 is the root */
    size_t         n_nodes;
    uint8_t        first[256];     /* 1 when some pattern starts with that byte */
} tok_match_set;

enum { PT_SPLIT, PT_BYTELEVEL };
enum { SPLIT_REMOVED, SPLIT_ISOLATED, SPLIT_MERGED_PREV, SPLIT_MERGED_NEXT, SPLIT_CONTIGUOUS };

typedef struct tok_pretok {
    int          kind;
    pcre2_code  *re;               /* PT_SPLIT, and PT_BYTELEVEL with use_regex */
    int          behavior;
    int          invert;
    int          add_prefix_space; /* PT_BYTELEVEL */
} tok_pretok;

#define TOK_MAX_NORM   8
#define TOK_MAX_PRETOK 16

/* A string table slot: the first 8 bytes of the string inline, so most lookups touch
 * one cache line; id1 == 0 is an empty slot. */
typedef struct tok_str_slot {
    uint64_t prefix;
    uint32_t id1;                  /* id + 1 */
    uint32_t len;
} tok_str_slot;

typedef struct tok_merge_slot {
    uint64_t key;                  /* left << 32 | right; UINT64_MAX = empty */
    uint32_t rank, new_id;
} tok_merge_slot;

struct dk_tokenizer {
    char       *arena;
    size_t      arena_len, arena_cap;

    tok_entry  *ids;               /* n_ids entries */
    uint32_t    n_ids;

    tok_str_slot *vocab_hash;      /* model vocabulary by spelling */
    uint32_t    vocab_mask, vocab_count;
    tok_str_slot *added_hash;      /* added tokens by content */
    uint32_t    added_mask;

    uint32_t    byte_id[256];      /* vocabulary id of each byte's ByteLevel character */

    tok_merge_slot *merges;
    uint64_t    merge_mask;
    size_t      n_merges;
    int         ignore_merges;

    int          n_norm;
    int          norm[TOK_MAX_NORM];  /* dk_norm_form values */
    const void  *norm_icu[TOK_MAX_NORM]; /* const UNormalizer2 * */

    tok_match_set raw_set, norm_set;

    tok_pretok  pretok[TOK_MAX_PRETOK];
    int         n_pretok;

    uint32_t   *post_before, *post_after; /* ids the post-processor adds around a sequence */
    size_t      n_post_before, n_post_after;

    char        name[256];
};

/* Hash of a byte string (shared by the loader's tables and the encoder's cache). */
uint64_t dk_tok_hash(const void *p, size_t n);
/* The model vocabulary id of a spelling, TOK_NONE when absent. */
uint32_t dk_tok_vocab_lookup(const dk_tokenizer *t, const char *s, size_t n);
/* The BPE merge of (left, right): its slot, or NULL. */
const tok_merge_slot *dk_tok_merge_lookup(const dk_tokenizer *t, uint32_t left, uint32_t right);

#endif
