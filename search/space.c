// search/space.c — the three search spaces (space.h): allowed tokens per
// position, validity, random sampling, augmentation, text forms.
//
// Invariant: every function here treats a token sequence as exactly
// sp->length ints; space_check is the one definition of a valid architecture,
// and space_parse only returns sequences that pass it.
#include "search/space.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static const char *const nb201_ops[] = {"none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3",
                                        "avg_pool_3x3"};

enum { NAO_B = 5, NB201_EDGES = 6 };

// NAS-Bench-201 edge e's source node (edges in string order).
static const int nb201_src[NB201_EDGES] = {0, 0, 1, 0, 1, 2};

static uint64_t range_mask(int lo, int hi) {  // tokens lo..hi
  uint64_t m = 0;
  for (int k = lo; k <= hi; k++) m |= 1ULL << k;
  return m;
}

const char *space_names(void) { return "nao-small, nao-large, nb201"; }

static void init_nao(SearchSpace *sp, int n_ops, int op_base) {
  sp->length = 2 * 4 * NAO_B, sp->nodes = NAO_B;
  sp->n_ops = n_ops, sp->op_base = op_base, sp->op_token = 7;
  sp->vocab = 7 + n_ops;
  for (int t = 0; t < sp->length; t++) {
    int b = (t % (4 * NAO_B)) / 4;  // node within the cell
    sp->allowed[t] = t % 2 == 0 ? range_mask(1, b + 2) : range_mask(7, 6 + n_ops);
  }
}

int space_init(SearchSpace *sp, const char *name, char *err, size_t errlen) {
  memset(sp, 0, sizeof *sp);
  if (!strcmp(name, "nao-small")) {
    sp->kind = SPACE_NAO_SMALL, sp->name = "nao-small";
    init_nao(sp, 5, 0);
  } else if (!strcmp(name, "nao-large")) {
    sp->kind = SPACE_NAO_LARGE, sp->name = "nao-large";
    init_nao(sp, 11, 5);
  } else if (!strcmp(name, "nb201")) {
    sp->kind = SPACE_NB201, sp->name = "nb201";
    sp->length = 2 * NB201_EDGES, sp->nodes = 4, sp->n_ops = 5, sp->op_base = 0, sp->op_token = 4;
    sp->vocab = 9;
    for (int e = 0; e < NB201_EDGES; e++) {
      sp->allowed[2 * e] = 1ULL << (nb201_src[e] + 1);
      sp->allowed[2 * e + 1] = range_mask(4, 8);
    }
  } else {
    snprintf(err, errlen, "unknown search space '%s' (known: %s)", name, space_names());
    return -1;
  }
  return 0;
}

int space_check(const SearchSpace *sp, const int *tok, char *err, size_t errlen) {
  for (int t = 0; t < sp->length; t++)
    if (tok[t] < 0 || tok[t] >= sp->vocab || !(sp->allowed[t] >> tok[t] & 1)) {
      snprintf(err, errlen, "token %d at position %d is not allowed there", tok[t], t);
      return -1;
    }
  return 0;
}

void space_random(const SearchSpace *sp, Rng *rng, int *tok) {
  if (sp->kind == SPACE_NB201) {
    for (int e = 0; e < NB201_EDGES; e++) {
      tok[2 * e] = nb201_src[e] + 1;
      tok[2 * e + 1] = 4 + (int)rng_below(rng, 5);
    }
    return;
  }
  for (int c = 0; c < 2; c++)
    for (int b = 0; b < NAO_B; b++) {
      int *t = tok + c * 4 * NAO_B + 4 * b;
      for (int k = 0; k < 2; k++) {
        t[2 * k] = 1 + (int)rng_below(rng, (uint64_t)b + 2);
        t[2 * k + 1] = sp->op_token + (int)rng_below(rng, (uint64_t)sp->n_ops);
      }
    }
}

void space_augment(void *space, int *tok, Rng *rng) {
  const SearchSpace *sp = space;
  if (sp->kind == SPACE_NB201) return;
  for (int c = 0; c < 2; c++) {
    int *t = tok + c * 4 * NAO_B + 4 * (int)rng_below(rng, NAO_B);
    int in = t[0], op = t[1];
    t[0] = t[2], t[1] = t[3], t[2] = in, t[3] = op;
  }
}

// ---------------------------------------------------------------- text forms
static int parse_nao(const SearchSpace *sp, const char *text, int *tok, char *err, size_t errlen) {
  NetSpec ns;
  char sub[256];
  netspec_init(&ns);
  if (netspec_parse_arch(&ns, text, sub, sizeof sub) != 0) {
    snprintf(err, errlen, "%s", sub);
    return -1;
  }
  if (ns.nodes != NAO_B) {
    snprintf(err, errlen, "%d nodes per cell; the %s space has %d (%d integers)", ns.nodes, sp->name, NAO_B,
             8 * NAO_B);
    return -1;
  }
  for (int c = 0; c < 2; c++)
    for (int b = 0; b < NAO_B; b++) {
      const NetNode *n = &ns.cell[c].node[b];
      int ops[2] = {n->x_op, n->y_op}, ins[2] = {n->x_in, n->y_in};
      for (int k = 0; k < 2; k++) {
        if (ops[k] < sp->op_base || ops[k] >= sp->op_base + sp->n_ops) {
          snprintf(err, errlen, "%s cell, node %d: op %d is not in the %s space (ops %d to %d)",
                   c ? "reduction" : "normal", b + 2, ops[k], sp->name, sp->op_base, sp->op_base + sp->n_ops - 1);
          return -1;
        }
        int *t = tok + c * 4 * NAO_B + 4 * b + 2 * k;
        t[0] = ins[k] + 1;
        t[1] = ops[k] - sp->op_base + sp->op_token;
      }
    }
  return space_check(sp, tok, err, errlen);
}

// "|op~i|" at *p for edge e: the op name, '~', the source index, '|'.
static int parse_nb201_edge(const char **p, int e, int *op, char *err, size_t errlen) {
  const char *s = *p;
  size_t n = strcspn(s, "~|+");
  *op = -1;
  for (int k = 0; k < 5; k++)
    if (strlen(nb201_ops[k]) == n && !strncmp(s, nb201_ops[k], n)) *op = k;
  if (*op < 0) {
    snprintf(err, errlen, "edge %d: unknown op '%.*s' (ops: none, skip_connect, nor_conv_1x1, nor_conv_3x3, "
             "avg_pool_3x3)", e + 1, (int)(n > 40 ? 40 : n), s);
    return -1;
  }
  s += n;
  if (*s != '~' || !isdigit((unsigned char)s[1]) || s[2] != '|') {
    snprintf(err, errlen, "edge %d: expected '~SOURCE|' after '%s'", e + 1, nb201_ops[*op]);
    return -1;
  }
  if (s[1] - '0' != nb201_src[e]) {
    snprintf(err, errlen, "edge %d: source %c where the cell has %d", e + 1, s[1], nb201_src[e]);
    return -1;
  }
  *p = s + 3;
  return 0;
}

static int parse_nb201(const SearchSpace *sp, const char *text, int *tok, char *err, size_t errlen) {
  const char *p = text;
  while (isspace((unsigned char)*p)) p++;
  int e = 0;
  for (int node = 1; node <= 3; node++) {
    if (node > 1 && *p++ != '+') {
      snprintf(err, errlen, "expected '+' before node %d's edges", node);
      return -1;
    }
    if (*p++ != '|') {
      snprintf(err, errlen, "expected '|' to open node %d's edges", node);
      return -1;
    }
    for (int k = 0; k < node; k++, e++) {
      int op;
      if (parse_nb201_edge(&p, e, &op, err, errlen) != 0) return -1;
      tok[2 * e] = nb201_src[e] + 1;
      tok[2 * e + 1] = 4 + op;
    }
  }
  while (isspace((unsigned char)*p)) p++;
  if (*p) {
    snprintf(err, errlen, "unexpected text after the third node: '%.20s'", p);
    return -1;
  }
  return space_check(sp, tok, err, errlen);
}

int space_parse(const SearchSpace *sp, const char *text, int *tok, char *err, size_t errlen) {
  return sp->kind == SPACE_NB201 ? parse_nb201(sp, text, tok, err, errlen) : parse_nao(sp, text, tok, err, errlen);
}

void space_format(const SearchSpace *sp, const int *tok, char *out, size_t outlen) {
  size_t len = 0;
  out[0] = '\0';
#define PUT(...)                                                                 \
  do {                                                                           \
    int w_ = snprintf(out + len, len < outlen ? outlen - len : 0, __VA_ARGS__);  \
    if (w_ > 0) len += (size_t)w_;                                               \
  } while (0)
  if (sp->kind == SPACE_NB201) {
    for (int e = 0; e < NB201_EDGES; e++) {
      int op = tok[2 * e + 1] - 4;
      PUT("%s|%s~%d|", e == 1 || e == 3 ? "+" : "", op >= 0 && op < 5 ? nb201_ops[op] : "?", nb201_src[e]);
    }
    // "|a~0|" + "+|b~0|" + "|c~1|" -> adjacent edges of a node share the bar
    char *w = out, *r = out;
    for (; *r; r++)
      if (!(r[0] == '|' && r[1] == '|')) *w++ = *r;
    *w = '\0';
    return;
  }
  for (int t = 0; t < sp->length; t++)
    PUT("%s%d", t ? " " : "", t % 2 == 0 ? tok[t] - 1 : tok[t] - sp->op_token + sp->op_base);
#undef PUT
}

int space_to_netspec(const SearchSpace *sp, const int *tok, NetSpec *ns) {
  if (sp->kind == SPACE_NB201) return -1;
  ns->nodes = NAO_B;
  for (int c = 0; c < 2; c++) {
    ns->cell[c].n_nodes = NAO_B;
    for (int b = 0; b < NAO_B; b++) {
      const int *t = tok + c * 4 * NAO_B + 4 * b;
      NetNode *n = &ns->cell[c].node[b];
      n->x_in = t[0] - 1, n->x_op = t[1] - sp->op_token + sp->op_base;
      n->y_in = t[2] - 1, n->y_op = t[3] - sp->op_token + sp->op_base;
    }
  }
  return 0;
}
