// search/search_opts.c — nao-search's options: one table gives each option's
// name, type, default (the reference's values), whether a resumed run may
// change it, and its help line.
//
// Values are merged as strings in three layers, then converted once:
// defaults, then (with --resume) OUT/config, then the command line. A resumed
// run keeps its saved options: giving one of them again with a different value
// is an error, except for the few that only say how long or how fast to go
// (rounds, budget, jobs, timeout, threads, top-k). OUT/config is written by the
// run (search_loop.c) from config_text.
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compiler/util.h"
#include "search/search.h"

typedef enum { OPT_STR, OPT_INT, OPT_LONG, OPT_U64, OPT_DBL, OPT_FLAG, OPT_BACKBONE } OptType;

typedef struct {
  const char *name;
  OptType type;
  size_t off;         // into SearchOptions (OPT_BACKBONE: unused)
  const char *def;    // default, as text
  int saved;          // recorded in OUT/config
  int changeable;     // a resumed run may give another value
  double lo, hi;      // numeric range
  const char *help;
} OptSpec;

#define OFF(f) offsetof(SearchOptions, f)
static const OptSpec opts[] = {
    {"space", OPT_STR, OFF(space), "nao-small", 1, 0, 0, 0, "search space: nao-small, nao-large, nb201"},
    {"evaluator", OPT_STR, OFF(evaluator), "", 1, 0, 0, 0, "ws (weight-sharing supernet), full (each trained), table or command"},
    {"table", OPT_STR, OFF(table), "", 1, 0, 0, 0, "CSV file `arch,accuracy` for --evaluator table"},
    {"command", OPT_STR, OFF(command), "", 1, 0, 0, 0, "command for --evaluator command; `{}` = arch file path, else appended"},
    {"jobs", OPT_INT, OFF(jobs), "1", 1, 1, 1, 64, "commands (full: nao-train processes if > 1) run at once"},
    {"timeout", OPT_DBL, OFF(timeout), "0", 1, 1, 0, 1e9, "seconds a command may run, 0 = no limit"},
    {"full-epochs", OPT_INT, OFF(full_epochs), "10", 1, 0, 1, 100000, "full: epochs each architecture is trained"},
    {"full-data", OPT_STR, OFF(full_data), "", 1, 1, 0, 0, "full: nao-train --data DIR|synthetic (default: --data)"},
    {"full-recipe", OPT_STR, OFF(full_recipe), "", 1, 0, 0, 0, "full: recipe overrides 'name=value,...' (nao-train's options)"},
    {"full-synthetic-size", OPT_STR, OFF(full_synthetic), "", 1, 0, 0, 0, "full: images of --full-data synthetic, T,E"},
    {"nao-train", OPT_STR, OFF(nao_train), "", 1, 1, 0, 0, "full: the nao-train program (default: next to nao-search)"},
    {"job-list", OPT_FLAG, OFF(job_list), "0", 1, 1, 0, 1, "full: write OUT/round-NNN/jobs.txt, exit 3; then `collect`"},
    {"out", OPT_STR, OFF(out), "", 0, 0, 0, 0, "run folder (created; required)"},
    {"resume", OPT_FLAG, OFF(resume), "0", 0, 0, 0, 1, "continue the run in --out from its last completed step"},
    {"seed-archs", OPT_INT, OFF(seed_archs), "600", 1, 0, 2, 1e6, "random architectures in the seed pool (= pool size)"},
    {"new-archs", OPT_INT, OFF(new_archs), "300", 1, 0, 1, 1e6, "architectures generated per round"},
    {"rounds", OPT_INT, OFF(rounds), "4", 1, 1, 0, 1e6, "controller rounds (the reference: 4, i.e. 5 evaluations)"},
    {"controller-epochs", OPT_INT, OFF(controller_epochs), "1000", 1, 0, 0, 1e7, "controller training epochs per round"},
    {"budget", OPT_LONG, OFF(budget), "0", 1, 1, 0, 1e15, "stop after this many evaluations, 0 = no limit"},
    {"seed", OPT_U64, OFF(seed), "0", 1, 0, 0, 1.8e19, "random seed"},
    {"top-k", OPT_INT, OFF(top_k), "5", 1, 1, 1, 1e6, "best architectures written to top/rank-N"},
    {"infer-top", OPT_INT, OFF(infer_top), "100", 1, 0, 1, 1e6, "the inference step starts from the pool's best N"},
    {"max-step", OPT_INT, OFF(max_step), "50", 1, 0, 1, 1e6, "largest inference step size lambda"},
    {"controller-batch", OPT_INT, OFF(ctl.batch), "100", 1, 0, 1, 1e5, "controller batch"},
    {"controller-lr", OPT_DBL, OFF(ctl.lr), "0.001", 1, 0, 1e-12, 1e3, "controller Adam learning rate"},
    {"controller-l2", OPT_DBL, OFF(ctl.l2), "0.0001", 1, 0, 0, 1e3, "controller weight decay"},
    {"controller-grad-bound", OPT_DBL, OFF(ctl.grad_bound), "5", 1, 0, 1e-12, 1e12, "gradient clipping norm"},
    {"controller-trade-off", OPT_DBL, OFF(ctl.trade_off), "0.8", 1, 0, 0, 1, "weight of the predictor's MSE (NLL: 1 - it)"},
    {"controller-hidden", OPT_INT, OFF(ctl.hidden), "96", 1, 0, 2, 4096, "LSTM width (= 2 x embedding)"},
    {"controller-emb", OPT_INT, OFF(ctl.emb), "48", 1, 0, 1, 2048, "encoder token embedding width"},
    {"controller-mlp-layers", OPT_INT, OFF(ctl.mlp_layers), "3", 1, 0, 0, 8, "predictor hidden layers"},
    {"controller-mlp-hidden", OPT_INT, OFF(ctl.mlp_hidden), "200", 1, 0, 1, 65536, "predictor width"},
    {"controller-dropout", OPT_DBL, OFF(ctl.mlp_dropout), "0.1", 1, 0, 0, 0.99, "predictor dropout"},
    {"threads", OPT_INT, OFF(ctl.threads), "auto", 1, 1, 1, 64, "threads of the controller and the ws supernet (auto: CPUs, at most 4)"},
    {"dataset", OPT_BACKBONE, 0, "cifar10", 1, 0, 0, 0, "backbone in the written files: cifar10, imagenet, fashion-mnist"},
    {"channels", OPT_BACKBONE, 0, "36", 1, 0, 2, 8192, "backbone channels F"},
    {"layers", OPT_BACKBONE, 0, "6", 1, 0, 1, 64, "backbone normal cells per stage N"},
    {"data", OPT_STR, OFF(data), "", 1, 0, 0, 0, "ws: data folder (default: the dataset's, as nao-train), or synthetic"},
    {"backend", OPT_STR, OFF(backend), "cpu", 1, 0, 0, 0, "ws: cpu or cuda"},
    {"ws-epochs", OPT_INT, OFF(ws_epochs), "30", 1, 0, 1, 1e6, "ws: supernet epochs per round"},
    {"ws-batch", OPT_INT, OFF(ws_batch), "64", 1, 0, 1, 1e5, "ws: supernet batch"},
    {"ws-lr", OPT_DBL, OFF(ws_lr), "0.025", 1, 0, 0, 1e3, "ws: learning rate, cosine over all rounds' epochs"},
    {"ws-lr-min", OPT_DBL, OFF(ws_lr_min), "0.001", 1, 0, 0, 1e3, "ws: the cosine's floor"},
    {"ws-momentum", OPT_DBL, OFF(ws_momentum), "0.9", 1, 0, 0, 1, "ws: SGD momentum"},
    {"ws-weight-decay", OPT_DBL, OFF(ws_weight_decay), "3e-4", 1, 0, 0, 1, "ws: SGD weight decay"},
    {"ws-grad-clip", OPT_DBL, OFF(ws_grad_clip), "5", 1, 0, 0, 1e9, "ws: gradient clipping norm, 0 = off"},
    {"ws-drop-path-keep", OPT_DBL, OFF(ws_drop_path_keep), "0.9", 1, 0, 1e-6, 1, "ws: drop-path keep at the end (T = all steps)"},
    {"ws-eval-images", OPT_INT, OFF(ws_eval_images), "500", 1, 0, 1, 1e7, "ws: held-out images each architecture is scored on"},
    {"ws-heldout", OPT_INT, OFF(ws_heldout), "5000", 1, 0, 1, 1e7, "ws: training images held out for scoring"},
    {"ws-train-images", OPT_INT, OFF(ws_train_images), "0", 1, 0, 0, 1e9, "ws: training images per supernet epoch, 0 = all"},
    {"progress", OPT_FLAG, OFF(progress), "auto", 0, 1, 0, 1, "progress line on stderr (auto: when a terminal)"},
    {"quiet", OPT_FLAG, OFF(quiet), "0", 0, 1, 0, 1, "no per-step lines on stdout"},
};
#undef OFF
enum { N_OPTS = sizeof opts / sizeof opts[0] };

void search_usage(FILE *f) {
  fprintf(f, "usage: nao-search --evaluator ws|full|table|command --out DIR [options]\n"
             "       nao-search --resume --out DIR [options that may change]\n"
             "       nao-search collect --out DIR [options that may change]\n"
             "                  (--job-list: read the listed trainings' results, continue)\n\n"
             "NAO (Luo et al. 2018): seed pool, then rounds of evaluate / train the controller /\n"
             "generate / replace the bottom of the pool. Defaults are the reference's.\n\n");
  for (int i = 0; i < N_OPTS; i++) {
    char left[64];
    snprintf(left, sizeof left, "--%s%s", opts[i].name, opts[i].type == OPT_FLAG ? "" : " X");
    fprintf(f, "  %-26s %s", left, opts[i].help);
    if (opts[i].def[0] && strcmp(opts[i].def, "0") && opts[i].type != OPT_FLAG) fprintf(f, " [%s]", opts[i].def);
    fprintf(f, "%s\n", opts[i].changeable ? " (may change on --resume)" : "");
  }
  fprintf(f, "  %-26s %s\n  %-26s %s\n", "--no-progress", "no progress line", "--help", "this text");
}

static const OptSpec *find_opt(const char *name, size_t len) {
  for (int i = 0; i < N_OPTS; i++)
    if (strlen(opts[i].name) == len && !strncmp(opts[i].name, name, len)) return &opts[i];
  return NULL;
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "nao-search: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n(nao-search --help lists the options)\n");
  va_end(ap);
  return NAO_EXIT_USAGE;
}

// Value of option k as a number within its range.
static int to_number(const OptSpec *s, const char *v, double *out) {
  char *end;
  errno = 0;
  double d = strtod(v, &end);
  if (errno || *end || end == v || !isfinite(d) || d < s->lo || d > s->hi) return -1;
  if ((s->type == OPT_INT || s->type == OPT_LONG || s->type == OPT_U64) && d != floor(d)) return -1;
  *out = d;
  return 0;
}

static int convert(const char *vals[N_OPTS], SearchOptions *o) {
  char *base = (char *)o;
  for (int i = 0; i < N_OPTS; i++) {
    const OptSpec *s = &opts[i];
    const char *v = vals[i];
    double d = 0;
    if (s->type == OPT_STR) {
      *(const char **)(base + s->off) = v;
      continue;
    }
    if (s->type == OPT_BACKBONE) continue;  // set_backbone
    if (!strcmp(v, "auto")) continue;  // resolved by the caller
    if (to_number(s, v, &d) != 0)
      return usage_error("--%s: '%s' is not a valid value", s->name, v);
    switch (s->type) {
      case OPT_INT: *(int *)(base + s->off) = (int)d; break;
      case OPT_LONG: *(long *)(base + s->off) = (long)d; break;
      case OPT_U64: *(uint64_t *)(base + s->off) = strtoull(v, NULL, 10); break;
      case OPT_DBL: *(double *)(base + s->off) = d; break;
      case OPT_FLAG: *(int *)(base + s->off) = (int)d; break;
      default: break;
    }
  }
  return 0;
}

static int set_backbone(const char *vals[N_OPTS], SearchOptions *o) {
  const DatasetInfo *d = NULL;
  netspec_init(&o->backbone);
  for (int i = 0; i < N_OPTS; i++) {
    if (opts[i].type != OPT_BACKBONE) continue;
    double x;
    if (!strcmp(opts[i].name, "dataset")) {
      if (!(d = dataset_by_name(vals[i])))
        return usage_error("--dataset: unknown dataset '%s' (cifar10, imagenet, fashion-mnist)", vals[i]);
      netspec_apply_dataset(&o->backbone, d->id);
    } else if (to_number(&opts[i], vals[i], &x) != 0) {
      return usage_error("--%s: '%s' is not a valid value", opts[i].name, vals[i]);
    } else if (!strcmp(opts[i].name, "channels")) {
      o->backbone.channels = (int)x;
    } else {
      o->backbone.layers = (int)x;
    }
  }
  return 0;
}

// OUT/config: "name value" lines. Returns 0 and fills vals (strings kept in *keep).
static int read_config(const char *out, const char *vals[N_OPTS], char **keep) {
  StrBuf path = {0};
  sb_printf(&path, "%s/config", out);
  size_t len;
  const char *why;
  char *buf = nao_read_file(path.data, &len, &why);
  if (!buf) {
    fprintf(stderr, "nao-search: --resume: %s holds no run to resume (%s: %s)\n", out, path.data, why);
    sb_free(&path);
    return NAO_EXIT_USAGE;
  }
  *keep = buf;
  int line = 0;
  for (char *p = buf; *p;) {
    char *nl = strchr(p, '\n');
    if (nl) *nl = '\0';
    line++;
    char *sp = strchr(p, ' ');
    const OptSpec *s = sp ? find_opt(p, (size_t)(sp - p)) : NULL;
    if (*p && (!s || !s->saved)) {
      fprintf(stderr, "nao-search: %s:%d: unknown option line '%.60s'\n", path.data, line, p);
      sb_free(&path);
      return NAO_EXIT_INPUT;
    }
    if (*p) vals[s - opts] = sp + 1;
    p = nl ? nl + 1 : p + strlen(p);
  }
  sb_free(&path);
  return 0;
}

static char *config_text(const char *vals[N_OPTS]) {
  StrBuf sb = {0};
  for (int i = 0; i < N_OPTS; i++)
    if (opts[i].saved) sb_printf(&sb, "%s %s\n", opts[i].name, vals[i]);
  return sb_steal(&sb);
}

// The command line into cl[] (NULL = not given). Returns 0, -1 (--help) or 2.
static int scan_args(int argc, char **argv, const char *cl[N_OPTS]) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) return search_usage(stdout), -1;
    if (!strcmp(a, "--no-progress")) {
      cl[find_opt("progress", 8) - opts] = "0";
      continue;
    }
    if (!strcmp(a, "-q")) a = "--quiet";
    if (strncmp(a, "--", 2)) return usage_error("unexpected argument '%s'", a);
    const char *eq = strchr(a + 2, '=');
    const OptSpec *s = find_opt(a + 2, eq ? (size_t)(eq - a - 2) : strlen(a + 2));
    if (!s) return usage_error("unknown option '%s'", a);
    if (s->type == OPT_FLAG) {
      if (eq) return usage_error("%s takes no value", a);
      cl[s - opts] = "1";
    } else if (eq) {
      cl[s - opts] = eq + 1;
    } else if (i + 1 < argc) {
      cl[s - opts] = argv[++i];
    } else {
      return usage_error("%s needs a value", a);
    }
  }
  return 0;
}

static int check_required(const SearchOptions *o) {
  if (!o->out || !*o->out) return usage_error("--out DIR is required");
  if (!o->evaluator || !*o->evaluator) return usage_error("--evaluator is required (ws, full, table or command)");
  const char *one_line[][2] = {{"command", o->command}, {"full-data", o->full_data}, {"full-recipe", o->full_recipe},
                               {"full-synthetic-size", o->full_synthetic}, {"nao-train", o->nao_train}};
  for (int i = 0; i < 5; i++)
    if (strchr(one_line[i][1], '\n')) return usage_error("--%s must be one line", one_line[i][0]);
  if (o->collect && (strcmp(o->evaluator, "full") || !o->job_list))
    return usage_error("collect: the run in %s does not write job lists (--evaluator full --job-list)", o->out);
  if (o->new_archs > o->seed_archs)
    return usage_error("--new-archs must not exceed --seed-archs (the pool size)");
  char err[256];
  if (ctl_config_check(&o->ctl, err, sizeof err) != 0) return usage_error("controller: %s", err);
  return 0;
}

int search_options_parse(int argc, char **argv, SearchOptions *o) {
  const char *vals[N_OPTS], *cl[N_OPTS] = {0};
  char *keep = NULL;
  memset(o, 0, sizeof *o);
  for (int i = 0; i < N_OPTS; i++) vals[i] = opts[i].def;
  int collect = argc > 1 && !strcmp(argv[1], "collect");  // = --resume, reading a job list's results
  if (collect) argc--, argv++;
  int rc = scan_args(argc, argv, cl);
  if (rc) return rc;
  if (collect) {
    if (!cl[find_opt("out", 3) - opts]) return usage_error("collect needs --out DIR (the search's run folder)");
    cl[find_opt("resume", 6) - opts] = "1";
  }
  int resume = cl[find_opt("resume", 6) - opts] != NULL;
  const char *out = cl[find_opt("out", 3) - opts];
  if (resume && out && (rc = read_config(out, vals, &keep)) != 0) return rc;
  for (int i = 0; i < N_OPTS; i++) {
    if (!cl[i]) continue;
    if (resume && opts[i].saved && !opts[i].changeable && strcmp(cl[i], vals[i])) {
      StrBuf may = {0};
      for (int k = 0; k < N_OPTS; k++)
        if (opts[k].saved && opts[k].changeable) sb_printf(&may, "%s--%s", may.len ? ", " : "", opts[k].name);
      fprintf(stderr, "nao-search: --resume: --%s %s differs from the run's %s (%s/config); only %s may change\n",
              opts[i].name, cl[i], vals[i], out, may.data);
      sb_free(&may);
      free(keep);
      return NAO_EXIT_USAGE;
    }
    vals[i] = cl[i];
  }
  int threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
  char tbuf[16];
  snprintf(tbuf, sizeof tbuf, "%d", threads < 1 ? 1 : threads > 4 ? 4 : threads);
  if (!strcmp(vals[find_opt("threads", 7) - opts], "auto")) vals[find_opt("threads", 7) - opts] = tbuf;
  o->progress = -1;
  SearchSpace sp;
  char err[200];
  if (space_init(&sp, vals[0], err, sizeof err) != 0) return free(keep), usage_error("--space: %s", err);
  ctl_config_default(&o->ctl, sp.vocab, sp.length);
  o->collect = collect;
  if ((rc = convert(vals, o)) != 0 || (rc = set_backbone(vals, o)) != 0 || (rc = check_required(o)) != 0) {
    free(keep);
    return rc;
  }
  // Strings point into argv or keep: copy them so the caller owns o.
  o->space = xstrdup(o->space), o->evaluator = xstrdup(o->evaluator), o->table = xstrdup(o->table);
  o->command = xstrdup(o->command), o->out = xstrdup(o->out);
  o->full_data = xstrdup(o->full_data), o->full_recipe = xstrdup(o->full_recipe);
  o->full_synthetic = xstrdup(o->full_synthetic), o->nao_train = xstrdup(o->nao_train);
  o->data = xstrdup(o->data), o->backend = xstrdup(o->backend);
  o->config_text = config_text(vals);
  free(keep);
  return 0;
}

void search_options_free(SearchOptions *o) {
  free((char *)o->space), free((char *)o->evaluator), free((char *)o->table), free((char *)o->command);
  free((char *)o->out), free(o->config_text);
  free((char *)o->full_data), free((char *)o->full_recipe), free((char *)o->full_synthetic), free((char *)o->nao_train);
  free((char *)o->data), free((char *)o->backend);
  memset(o, 0, sizeof *o);
}
