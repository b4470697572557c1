// tests/unit/spec_eq.c — see spec_eq.h.
#include "tests/unit/spec_eq.h"

#include <stdio.h>
#include <string.h>

int spec_equal(const NetSpec *a, const NetSpec *b, char *why, size_t cap) {
#define FIELD(f, fmt)                                                       \
  if (a->f != b->f) {                                                       \
    snprintf(why, cap, #f ": " fmt " vs " fmt, a->f, b->f);                \
    return 0;                                                               \
  }
  if (strcmp(a->name, b->name)) {
    snprintf(why, cap, "name: '%s' vs '%s'", a->name, b->name);
    return 0;
  }
  FIELD(dataset, "%d") FIELD(in_channels, "%d") FIELD(in_height, "%d") FIELD(in_width, "%d")
  FIELD(classes, "%d") FIELD(stem, "%d") FIELD(channels, "%d") FIELD(layers, "%d") FIELD(nodes, "%d")
  FIELD(aux_weight, "%.17g") FIELD(drop_path_keep, "%.17g") FIELD(dropout_keep, "%.17g")
#undef FIELD
  for (int c = 0; c < 2; c++) {
    if (a->cell[c].n_nodes != b->cell[c].n_nodes) {
      snprintf(why, cap, "cell %d: %d vs %d nodes", c, a->cell[c].n_nodes, b->cell[c].n_nodes);
      return 0;
    }
    for (int i = 0; i < a->cell[c].n_nodes; i++) {
      const NetNode *x = &a->cell[c].node[i], *y = &b->cell[c].node[i];
      if (x->x_in != y->x_in || x->x_op != y->x_op || x->y_in != y->y_in || x->y_op != y->y_op) {
        snprintf(why, cap, "cell %d node %d differs", c, i + 2);
        return 0;
      }
    }
  }
  return 1;
}
