// runtime/nao_train_main.c — nao-train: train, resume or evaluate a network
// described by a .nao file (docs/training.md).
//
// Exit status: 0 done (every epoch, or --max-steps); 1 bad input (network,
// data, checkpoint, run folder) or a diverged run; 2 bad usage; 70 internal
// error; 128 + N when signal N (SIGINT 130, SIGTERM 143) stopped the run after
// its checkpoint was written (continue it with --resume). A second signal
// kills the process at once; the last checkpoint stays valid (atomic writes).
//
// Several processes (docs/distributed.md): under mpirun / srun each process
// is a rank; with --gpus N (cuda) and no launcher, this process starts N
// copies of itself and supervises them (runtime/launch.h), exiting with the
// status of the first that failed. A rank that fails aborts the whole job.
//
// The signal flag is the only file-scope mutable state: a handler can reach
// nothing else. It holds the signal's number.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"
#include "runtime/recipe.h"
#include "runtime/train_dist.h"
#include "runtime/train_result.h"
#include "runtime/trainer.h"
#include "runtime/trainer_embed.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) { stop_requested = sig; }

static int install_handlers(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND | SA_RESTART;  // a second signal takes the default action
  if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0) {
    perror("nao-train: internal error: sigaction");
    return -1;
  }
  return 0;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: nao-train NET.nao [--data DIR|synthetic] [--dataset NAME] [--recipe NAME]\n"
          "                 [recipe options] [--out RUNDIR] [--resume] [--threads N]\n"
          "                 [--backend cpu|cuda] [--gpus N] [--init-weights W.safetensors]\n"
          "                 [--eval-only --weights W.safetensors]\n"
          "Trains the network (or resumes / evaluates it) and writes RUNDIR/log.jsonl,\n"
          "RUNDIR/checkpoint.safetensors, RUNDIR/best.safetensors (best validation top-1)\n"
          "and, once training has ended, RUNDIR/result.json (final scores).\n"
          "\n"
          "  --data DIR|synthetic  the dataset's folder (fashion-mnist: default\n"
          "                        " DATA_FASHION_MNIST_DIR "); synthetic: random images\n"
          "                        of the network's input shape\n"
          "  --dataset NAME        fashion-mnist, cifar10 or imagenet (default: the network's)\n"
          "  --recipe NAME         cifar10, imagenet or fashion-mnist (default: the network's dataset)\n"
          "  --out RUNDIR          run folder (default runs/NAME)\n"
          "  --resume              continue the run in RUNDIR from its checkpoint (its recipe;\n"
          "                        options given now override it)\n"
          "  --threads N           compute threads (default $NAO_THREADS, else the CPUs)\n"
          "  --workers N           data loader threads (default 1; imagenet: the CPUs)\n"
          "  --backend cpu|cuda    where to train (default cpu)\n"
          "  --gpus N              cuda: train on N GPUs of this machine, one process each\n"
          "                        (several machines: mpirun -np N / srun, one process per GPU)\n"
          "  --dist-timeout S      several processes: a rank that does not reach a collective\n"
          "                        within S seconds stops the run, named (default 600)\n"
          "  --bn-eval             test mode: train with BN running statistics (no batch\n"
          "                        statistics, aux head, dropout, drop-path)\n"
          "  --init-weights W      start from these weights (state_dict names)\n"
          "  --eval-only           score --weights W on the validation and test splits\n"
          "  --checkpoint-steps N  also write the checkpoint every N steps\n"
          "  --kernel-cache DIR|off  cuda: compiled kernels and cuDNN choices (default\n"
          "                        $NAOC_KERNEL_CACHE, else $XDG_CACHE_HOME/naoc or ~/.cache/naoc)\n"
          "  --synthetic-size T,E  images of --data synthetic (default 2560,512)\n"
          "  --progress on|off     the progress line (default: on when stderr is a terminal)\n"
          "  --quiet               no per-epoch lines on stderr\n"
          "\nrecipe options (default: the recipe's preset):\n");
  recipe_print_help(f);
}

static int bad(const char *msg, const char *what) {
  fprintf(stderr, "nao-train: %s%s\n(nao-train --help lists the options)\n", msg, what);
  return NAO_EXIT_USAGE;
}

static int parse_int(const char *opt, const char *v, int lo, int hi, int *out) {
  char *end;
  long x = v ? strtol(v, &end, 10) : 0;
  if (!v || end == v || *end || x < lo || x > hi) {
    fprintf(stderr, "nao-train: %s: '%s' is not an integer in [%d, %d]\n", opt, v ? v : "(missing)", lo, hi);
    return -1;
  }
  *out = (int)x;
  return 0;
}

// One option with a value; returns 1 when taken, 0 when not ours, -1 on error.
static int value_option(TrainerConfig *c, const char *o, const char *v) {
  const char **str[] = {&c->data, &c->dataset, &c->recipe, &c->out, &c->init_weights, &c->weights,
                        &c->kernel_cache};
  static const char *const names[] = {"--data", "--dataset", "--recipe", "--out", "--init-weights", "--weights",
                                      "--kernel-cache"};
  for (int k = 0; k < 7; k++)
    if (!strcmp(o, names[k])) return *str[k] = v, 1;
  int n;
  if (!strcmp(o, "--threads")) return parse_int(o, v, 1, 1024, &c->threads) ? -1 : 1;
  if (!strcmp(o, "--workers")) return parse_int(o, v, 0, 256, &c->workers) ? -1 : 1;
  if (!strcmp(o, "--gpus")) return parse_int(o, v, 1, 1024, &c->gpus) ? -1 : 1;
  if (!strcmp(o, "--dist-timeout")) {
    char *end;
    double s = strtod(v, &end);
    if (end == v || *end || !(s > 0 && s < 1e7))
      return bad("--dist-timeout: a number of seconds > 0, not ", v), -1;
    c->dist_timeout = s;
    return 1;
  }
  if (!strcmp(o, "--checkpoint-steps")) {
    if (parse_int(o, v, 0, 1 << 30, &n)) return -1;
    c->checkpoint_steps = n;
    return 1;
  }
  if (!strcmp(o, "--backend")) {
    int k = backend_kind_parse(v);
    if (k < 0) return bad("--backend: accepted values are cpu and cuda, not ", v), -1;
    c->backend = (BackendKind)k;
    return 1;
  }
  if (!strcmp(o, "--progress")) {
    if (strcmp(v, "on") && strcmp(v, "off")) return bad("--progress: on or off, not ", v), -1;
    c->progress = !strcmp(v, "on");
    return 1;
  }
  if (!strcmp(o, "--synthetic-size")) {
    if (sscanf(v, "%d,%d", &c->synthetic_train, &c->synthetic_test) != 2 || c->synthetic_train < 1 ||
        c->synthetic_test < 1)
      return bad("--synthetic-size: TRAIN,TEST image counts (e.g. 2560,512), not ", v), -1;
    c->synthetic_given = 1;
    return 1;
  }
  return 0;
}

// A generated trainer (make trainer NET=net.cu, docs/cuda-runtime.md) links
// this file with its network: the .nao text and net.cu (plan and text). In
// nao-train itself the symbol is absent.
const NaoTrainerEmbed *nao_trainer_embedded(void) __attribute__((weak));

static int parse_args(int argc, char **argv, TrainerConfig *c) {
  trainer_config_default(c);
  const NaoTrainerEmbed *emb = nao_trainer_embedded ? nao_trainer_embedded() : NULL;
  if (emb) {
    c->net_path = emb->nao_name;
    c->net_text = emb->nao_text;
    c->cuda_net = emb->cuda_net;
    c->cuda_source = emb->cuda_source;
  }
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(o, "--help") || !strcmp(o, "-h")) return usage(stdout), NAO_EXIT_OK;
    if (!strcmp(o, "--resume")) { c->resume = 1; continue; }
    if (!strcmp(o, "--eval-only")) { c->eval_only = 1; continue; }
    if (!strcmp(o, "--quiet")) { c->quiet = 1; continue; }
    if (!strcmp(o, "--bn-eval")) { c->bn_eval = 1; continue; }
    if (o[0] != '-') {
      if (emb) return bad("this trainer has its network built in; no network file: ", o);
      if (c->net_path) return bad("more than one network file: ", o);
      c->net_path = o;
      continue;
    }
    if (strncmp(o, "--", 2) != 0 || !o[2]) return bad("unknown option ", o);
    if (!v) return bad("missing value of ", o);
    int got = value_option(c, o, v);
    if (got < 0) return NAO_EXIT_USAGE;
    if (got == 0) {  // a recipe option: checked once the preset is known
      if (c->n_opts == TRAINER_MAX_RECIPE_OPTS) return bad("too many options at ", o);
      c->opt_name[c->n_opts] = o + 2;
      c->opt_value[c->n_opts++] = v;
    }
    i++;
  }
  if (!c->net_path) return bad("no network file given", "");
  if (c->resume && c->eval_only) return bad("--resume and --eval-only exclude each other", "");
  if (c->resume && c->init_weights) return bad("--resume and --init-weights exclude each other", "");
  if (c->weights && !c->eval_only) return bad("--weights goes with --eval-only (to start from weights: --init-weights)", "");
  return -1;
}

int main(int argc, char **argv) {
  TrainerConfig cfg;
  int rc = parse_args(argc, argv, &cfg);
  if (rc >= 0) return rc;
  if (install_handlers() != 0) return NAO_EXIT_INTERNAL;
  Dist *dist;
  rc = train_dist_start(argv, &cfg, &stop_requested, &dist);
  if (rc >= 0) return rc;  // this process was the local launcher, or could not start
  cfg.dist = dist;
  Trainer t;
  rc = trainer_setup(&t, &cfg, &stop_requested);
  TrainEnd end = TRAIN_DONE;
  double t0 = progress_now();
  if (rc == 0) rc = cfg.eval_only ? trainer_eval_only(&t) : trainer_train(&t, &end);
  // A finished training (not --eval-only, not interrupted): RUN/result.json.
  if (rc == 0 && !cfg.eval_only && end != TRAIN_INTERRUPTED && train_dist_writer(&t)) {
    char err[600];
    if (train_result_write(&t, end, progress_now() - t0, err, sizeof err) != 0) {
      fprintf(stderr, "nao-train: %s\n", err);
      rc = NAO_EXIT_INPUT;
    }
  }
  int sig = t.stop_signal ? t.stop_signal : (int)stop_requested;
  trainer_free(&t);
  if (rc == 0 && end == TRAIN_INTERRUPTED) rc = 128 + sig;
  return train_dist_finish(dist, rc, end == TRAIN_INTERRUPTED);
}
