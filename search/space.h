// search/space.h — search spaces as data: a sequence of token positions, each
// with the set of tokens it may take (which may depend on the position, as a
// node's input index does), and the conversions arch text <-> tokens.
//
// Token 0 is SOS in every space (never part of an architecture). The spaces:
//
// nao-small   NAO-WS / NAONet-B cells, ops 0-4 (NAO-SPEC §1b). 40 tokens: per
//             cell (normal, then reduction), per node b = 0..4:
//             x_in+1, x_op+7, y_in+1, y_op+7. Vocabulary 12: 1..6 = inputs
//             0..5 (node b may use 1..b+2), 7..11 = ops 0..4. Exactly the
//             reference's parse_arch_to_seq.
// nao-large   NAONet-A cells, the 11 ops 5-15. Same layout; op token = op + 2,
//             so 7..17 = ops 5..15; vocabulary 18. (The reference's PyTorch
//             controller cannot encode this space; its TF code searched it.)
// nb201       NAS-Bench-201 cell: 4 nodes, 6 edges j<-i (1<-0, 2<-0, 2<-1,
//             3<-0, 3<-1, 3<-2), 5 ops. 12 tokens: per edge src+1, op+4, the
//             source slot fixed (one allowed token) so the encoder sees
//             (input, op) pairs as in the NAO spaces. Vocabulary 9: 1..3 =
//             sources 0..2, 4..8 = none, skip_connect, nor_conv_1x1,
//             nor_conv_3x3, avg_pool_3x3.
//
// Text forms (the `arch` column of a table, the files the search writes):
// NAO spaces: the reference's arch string, 40 integers "x_in x_op y_in y_op
// ..." (normal cell first); nb201: the benchmark's
// "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|".
#ifndef NAO_SPACE_H
#define NAO_SPACE_H

#include <stddef.h>
#include <stdint.h>

#include "compiler/netspec.h"
#include "runtime/rng.h"

enum { SPACE_MAX_LEN = 64, SPACE_TEXT_MAX = 512 };

typedef enum { SPACE_NAO_SMALL, SPACE_NAO_LARGE, SPACE_NB201 } SpaceKind;

typedef struct {
  SpaceKind kind;
  const char *name;                 // "nao-small", "nao-large", "nb201"
  int length;                       // tokens per architecture
  int vocab;                        // controller vocabulary, SOS included
  int nodes;                        // NAO: B = 5 per cell; nb201: 4
  int n_ops, op_base;               // NAO: op ids op_base .. op_base + n_ops - 1
  int op_token;                     // token of the first op
  uint64_t allowed[SPACE_MAX_LEN];  // bit k: position may hold token k
} SearchSpace;

// Fills sp for "nao-small", "nao-large" or "nb201". Returns 0, or -1 with a
// message listing the names.
int space_init(SearchSpace *sp, const char *name, char *err, size_t errlen);
const char *space_names(void);  // "nao-small, nao-large, nb201"

// 0 when every token is allowed at its position, else -1 naming the first
// position that is not.
int space_check(const SearchSpace *sp, const int *tok, char *err, size_t errlen);

// A uniformly random architecture. NAO spaces: the reference's seed-pool rule
// (utils.generate_arch): per cell, per node b, x_in ~ U{0..b+1}, x_op ~ U(ops),
// y_in, y_op the same, drawn in that order. nb201: each edge's op ~ U(5).
void space_random(const SearchSpace *sp, Rng *rng, int *tok);

// The controller's training augmentation (NAO spaces): in each cell, swap the
// (input, op) pairs of one uniformly chosen node: the same architecture, as a
// node sums its two branches. nb201: nothing to swap. Signature of
// CtlAugmentFn with ctx = the space.
void space_augment(void *space, int *tok, Rng *rng);

// Text form -> tokens. Returns 0, or -1 with a message saying what is wrong.
int space_parse(const SearchSpace *sp, const char *text, int *tok, char *err, size_t errlen);
// Tokens -> text form (at most SPACE_TEXT_MAX bytes with the NUL).
void space_format(const SearchSpace *sp, const int *tok, char *out, size_t outlen);

// NAO spaces: the two cells of tok into ns (ns->nodes and ns->cell[]); the
// other settings of ns are left as they are. Returns -1 for nb201.
int space_to_netspec(const SearchSpace *sp, const int *tok, NetSpec *ns);

#endif
