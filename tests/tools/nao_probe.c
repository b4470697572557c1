// tests/tools/nao_probe.c — a NetSpec from an arch string and options, lowered;
// prints what the Python tests compare with their PyTorch model.
//
//   nao_probe [options] "ARCH"          the stats JSON (emit_stats)
//   nao_probe --params [options] "ARCH" every parameter and buffer, in order:
//                                       "name d0 d1 ..." (state_dict order)
//   nao_probe --inits [options] "ARCH"  per parameter: "name init fan_in trainable aux"
//   nao_probe --dump train|eval ...     ir_dump of that graph
//   nao_probe --verify ...              ir_verify on the train and eval graphs
//   --ws                                the weight-sharing supernet (lower_ws_*)
// Options: --dataset cifar10|imagenet|fashion-mnist, --input CxHxW,
// --classes K, --stem cifar|imagenet, --channels F, --layers N, --aux W,
// --drop-path P, --dropout P, --smoothing E, --name NAME.
// Exit: 0 ok, 1 bad network, 2 bad usage.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/emit_stats.h"
#include "compiler/ir.h"
#include "compiler/lower.h"
#include "compiler/netspec.h"
#include "compiler/params.h"

typedef enum { PROBE_STATS, PROBE_PARAMS, PROBE_INITS, PROBE_DUMP, PROBE_VERIFY } ProbeWhat;

typedef struct {
  ProbeWhat what;
  IrMode dump_mode;
  float smoothing;
  int ws;
  const char *arch;
} Probe;

static _Noreturn void usage(const char *msg, const char *arg) {
  fprintf(stderr, "nao_probe: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
  fprintf(stderr, "usage: nao_probe [--params|--inits|--dump train|eval|--verify] [--ws] [--dataset D] "
                  "[--input CxHxW] [--classes K] [--stem S] [--channels F] [--layers N] "
                  "[--aux W] [--drop-path P] [--dropout P] [--smoothing E] [--name N] \"ARCH\"\n");
  exit(2);
}

static double num(const char *opt, const char *s) {
  char *end;
  double v = strtod(s, &end);
  if (!*s || *end) usage("not a number", opt);
  return v;
}

// One option with its value; returns 1 when it took the value.
static int option(NetSpec *ns, Probe *p, const char *opt, const char *val) {
  if (!strcmp(opt, "--dataset")) {
    const DatasetInfo *di = dataset_by_name(val);
    if (!di) usage("unknown dataset", val);
    netspec_apply_dataset(ns, di->id);
  } else if (!strcmp(opt, "--input")) {
    if (sscanf(val, "%dx%dx%d", &ns->in_channels, &ns->in_height, &ns->in_width) != 3)
      usage("--input wants CxHxW", val);
    ns->dataset = DATASET_NONE;
  } else if (!strcmp(opt, "--classes")) {
    ns->classes = (int)num(opt, val);
  } else if (!strcmp(opt, "--stem")) {
    ns->stem = !strcmp(val, "imagenet") ? STEM_IMAGENET : STEM_CIFAR;
  } else if (!strcmp(opt, "--channels")) {
    ns->channels = (int)num(opt, val);
  } else if (!strcmp(opt, "--layers")) {
    ns->layers = (int)num(opt, val);
  } else if (!strcmp(opt, "--aux")) {
    ns->aux_weight = num(opt, val);
  } else if (!strcmp(opt, "--drop-path")) {
    ns->drop_path_keep = num(opt, val);
  } else if (!strcmp(opt, "--dropout")) {
    ns->dropout_keep = num(opt, val);
  } else if (!strcmp(opt, "--smoothing")) {
    p->smoothing = (float)num(opt, val);
  } else if (!strcmp(opt, "--name")) {
    snprintf(ns->name, sizeof ns->name, "%s", val);
  } else if (!strcmp(opt, "--dump")) {
    p->what = PROBE_DUMP;
    if (strcmp(val, "train") && strcmp(val, "eval")) usage("--dump wants train or eval", val);
    p->dump_mode = !strcmp(val, "train") ? IR_MODE_TRAIN : IR_MODE_EVAL;
  } else {
    usage("unknown option", opt);
  }
  return 1;
}

static void parse_args(int argc, char **argv, NetSpec *ns, Probe *p) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--params")) {
      p->what = PROBE_PARAMS;
    } else if (!strcmp(a, "--inits")) {
      p->what = PROBE_INITS;
    } else if (!strcmp(a, "--verify")) {
      p->what = PROBE_VERIFY;
    } else if (!strcmp(a, "--ws")) {
      p->ws = 1;
    } else if (!strncmp(a, "--", 2)) {
      if (i + 1 >= argc) usage("missing value", a);
      i += option(ns, p, a, argv[i + 1]);
    } else {
      if (p->arch) usage("two arch strings", a);
      p->arch = a;
    }
  }
  if (!p->arch) usage("no arch string", NULL);
}

static int lower_mode(const NetSpec *ns, const Probe *p, IrMode mode, ParamTable *pt, IrGraph *g) {
  LowerOptions opt;
  lower_options_init(&opt, mode);
  opt.label_smoothing = p->smoothing;
  ir_init(g, pt, mode);
  char err[512];
  int rc = p->ws ? lower_ws_network(ns, &opt, pt, g, err, sizeof err)
                 : lower_network(ns, &opt, pt, g, err, sizeof err);
  if (rc != 0) {
    fprintf(stderr, "nao_probe: %s\n", err);
    return 1;
  }
  return 0;
}

static const char *init_name(ParamInit i) {
  switch (i) {
    case PINIT_KAIMING_NORMAL: return "kaiming_normal";
    case PINIT_LINEAR_BIAS: return "linear_bias";
    case PINIT_ONES: return "ones";
    case PINIT_ZEROS: return "zeros";
  }
  return "?";
}

static int print_params(const NetSpec *ns, int ws, int inits) {
  ParamTable pt;
  params_init(&pt);
  char err[512];
  int rc = ws ? lower_ws_declare_params(ns, &pt, err, sizeof err)
              : lower_declare_params(ns, &pt, err, sizeof err);
  if (rc != 0) {
    fprintf(stderr, "nao_probe: %s\n", err);
    params_free(&pt);
    return 1;
  }
  for (int i = 0; i < pt.n; i++) {
    const ParamInfo *pi = &pt.items[i];
    printf("%s", pi->name);
    if (inits)
      printf(" %s %d %d %d", init_name(pi->init), pi->fan_in, pi->trainable, pi->aux);
    else
      for (int d = 0; d < pi->ndim; d++) printf(" %d", pi->dims[d]);
    printf("\n");
  }
  params_free(&pt);
  return 0;
}

static int run(const NetSpec *ns, const Probe *p) {
  char err[512];
  if (p->what == PROBE_PARAMS || p->what == PROBE_INITS)
    return print_params(ns, p->ws, p->what == PROBE_INITS);
  if (p->what == PROBE_STATS && p->ws) {  // the supernet's parameter count
    ParamTable pt;
    params_init(&pt);
    int rc = lower_ws_declare_params(ns, &pt, err, sizeof err);
    if (rc != 0) fprintf(stderr, "nao_probe: %s\n", err);
    else printf("{\"params\": %zu, \"params_no_aux\": %zu}\n", params_count(&pt, 1), params_count(&pt, 0));
    params_free(&pt);
    return rc ? 1 : 0;
  }
  if (p->what == PROBE_STATS) {
    StrBuf sb = {0};
    int rc = emit_stats(ns, &sb, err, sizeof err);
    if (rc != 0) fprintf(stderr, "nao_probe: %s\n", err);
    else fputs(sb.data, stdout);
    sb_free(&sb);
    return rc ? 1 : 0;
  }
  ParamTable pt;
  params_init(&pt);
  int rc = 0;
  for (int m = 0; m < 2 && rc == 0; m++) {
    IrMode mode = m ? IR_MODE_TRAIN : IR_MODE_EVAL;
    if (p->what == PROBE_DUMP && mode != p->dump_mode) continue;
    IrGraph g;
    rc = lower_mode(ns, p, mode, &pt, &g);
    if (rc == 0 && p->what == PROBE_DUMP) {
      StrBuf sb = {0};
      ir_dump(&g, &sb);
      fputs(sb.data, stdout);
      sb_free(&sb);
    } else if (rc == 0 && ir_verify(&g, err, sizeof err) != 0) {
      fprintf(stderr, "nao_probe: %s graph: %s\n", m ? "train" : "eval", err);
      rc = 1;
    }
    ir_free(&g);
  }
  if (rc == 0 && p->what == PROBE_VERIFY) printf("ok\n");
  params_free(&pt);
  return rc;
}

int main(int argc, char **argv) {
  NetSpec ns;
  netspec_init(&ns);
  Probe p = {PROBE_STATS, IR_MODE_EVAL, 0.0f, 0, NULL};
  parse_args(argc, argv, &ns, &p);
  char err[512];
  if (netspec_parse_arch(&ns, p.arch, err, sizeof err) != 0) {
    fprintf(stderr, "nao_probe: arch: %s\n", err);
    return 1;
  }
  return run(&ns, &p);
}
