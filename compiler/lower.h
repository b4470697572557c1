// compiler/lower.h — lowering a NetSpec to the network IR (ir.h).
//
// lower_network() turns a checked NetSpec into the forward IrGraph of the
// reference network (NAO-SPEC.md §1a: NASNetworkCIFAR / NASNetworkImageNet):
// input, stem(s), 3N+2 cells, the auxiliary head (training only), global
// pooling, dropout, classifier and, when asked, the loss. Shapes come from
// netspec_layout(); nothing here recomputes them.
//
// Parameters and BN buffers are registered in the ParamTable under the
// reference state_dict names and in the reference state_dict order (stem,
// cells with their nodes before their calibration, auxiliary head, classifier),
// with their init rule and fan-in. The auxiliary head's parameters are
// registered whenever the network has one (aux_weight > 0), in both modes, so a
// train graph and an eval graph of one network share one table and every
// checkpoint holds the same names. A table that already holds the names (a
// second graph of the same network) is reused; a name with another shape is an
// internal error.
//
// docs/ir.md describes every lowering rule, the names, and the statistics.
#ifndef NAO_LOWER_H
#define NAO_LOWER_H

#include <stddef.h>

#include "compiler/ir.h"
#include "compiler/netspec.h"
#include "compiler/params.h"

typedef struct {
  IrMode mode;              // TRAIN: batch-statistics BN, aux head (aux_weight > 0),
                            //   dropout (keep < 1), drop-path (keep < 1); EVAL: none of them
  int with_loss;            // labels input and IR_XENT nodes summed into g->loss
  float label_smoothing;    // epsilon of the cross-entropy (0: plain)
  int bn_update_running;    // TRAIN: BN nodes update the running statistics
  int bn_batch_stats;       // EVAL: BN normalises with batch statistics all the same
                            //   (without updating the running ones): the NAO-WS
                            //   scoring pass (decision O7)
} LowerOptions;

// Defaults for a mode: loss on, no label smoothing, running statistics updated
// in TRAIN.
void lower_options_init(LowerOptions *opt, IrMode mode);

// Lowers ns into g, which must be freshly ir_init()ed with `params`.
// Returns 0, or -1 with a message in err when the spec has no valid layout
// (netspec_layout's message). Internal inconsistencies exit 70.
int lower_network(const NetSpec *ns, const LowerOptions *opt, ParamTable *params, IrGraph *g,
                  char *err, size_t errlen);

// Registers the network's parameters and buffers in `params` in state_dict
// order without building a graph (what lower_network does first).
int lower_declare_params(const NetSpec *ns, ParamTable *params, char *err, size_t errlen);

// ---------------------------------------------------------------- weight sharing
// The NAO-WS supernet (NAO-SPEC.md §1c, NASWSNetworkCIFAR): the same backbone
// settings, every cell outputs c channels, and each node holds the weights of
// every op of the 5-op space for every possible input id. lower_ws_network()
// lowers the architecture in ns->cell on that supernet: the ParamTable gets
// every supernet weight (same names and order as the reference's state_dict,
// whatever the architecture), the graph uses the ones the architecture picks,
// so the graphs of all architectures share one table. Only the CIFAR stem and
// ops 0-4 (-1 with a message otherwise). For the scoring pass of decision O7
// use EVAL with bn_batch_stats = 1.
int lower_ws_network(const NetSpec *ns, const LowerOptions *opt, ParamTable *params, IrGraph *g,
                     char *err, size_t errlen);
int lower_ws_declare_params(const NetSpec *ns, ParamTable *params, char *err, size_t errlen);

#endif
