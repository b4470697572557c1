// tests/unit/test_search_eval.c — the table and command evaluators: a good
// table (CRLF, blank lines, quotes) and every kind of bad one, with PATH:LINE
// messages; unknown architectures; commands with `{}` and with the path
// appended, their environment, parallel jobs (checked by a rendezvous, not by
// timing), failures (status, signal, no number, timeout) with messages naming
// the arch and the command's stderr; and the factory's messages.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compiler/util.h"
#include "search/eval.h"
#include "search/space.h"
#include "tests/unit/ctl_testutil.h"

static char dir[] = "/tmp/naoc-eval-XXXXXX";
static SearchSpace sp;

static const char *archs[] = {
    "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    "|skip_connect~0|+|nor_conv_1x1~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|avg_pool_3x3~1|avg_pool_3x3~2|",
};
enum { N_ARCHS = 4 };

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
    perror(path);
    exit(1);
  }
}

static char *in_dir(const char *name) {
  StrBuf sb = {0};
  sb_printf(&sb, "%s/%s", dir, name);
  return sb_steal(&sb);
}

typedef struct {
  int tok[N_ARCHS][SPACE_MAX_LEN];
  char *path[N_ARCHS];
  EvalItem items[N_ARCHS];
} Items;

static void make_items(Items *it) {
  char err[200];
  for (int i = 0; i < N_ARCHS; i++) {
    CHECK(space_parse(&sp, archs[i], it->tok[i], err, sizeof err) == 0, "%s", err);
    char name[32];
    snprintf(name, sizeof name, "arch-%d.arch", i);
    it->path[i] = in_dir(name);
    StrBuf t = {0};
    sb_printf(&t, "%s\n", archs[i]);
    write_file(it->path[i], t.data);
    sb_free(&t);
    it->items[i] = (EvalItem){it->tok[i], archs[i], it->path[i]};
  }
}

static int n_done;
static void count_done(void *ctx, int i, double acc) {
  (void)ctx, (void)i, (void)acc;
  n_done++;
}

// ---------------------------------------------------------------- table
static void check_table(Items *it) {
  char *path = in_dir("t.csv"), err[512];
  StrBuf good = {0};
  sb_printf(&good, "arch,accuracy\r\n%s,91.5\r\n\r\n\"%s\", 10\n%s,88.25\n%s,88.25\n", archs[0], archs[1], archs[2],
            archs[2]);
  write_file(path, good.data);
  EvalOptions o = {.space = &sp, .table = path, .jobs = 1};
  Evaluator ev;
  CHECK(eval_create(&ev, "table", &o, err, sizeof err) == 0, "good table: %s", err);
  double acc[N_ARCHS] = {0};
  n_done = 0;
  CHECK(ev.score(&ev, it->items, 3, acc, count_done, NULL, err, sizeof err) == 0, "score: %s", err);
  CHECK(acc[0] == 91.5 && acc[1] == 10 && acc[2] == 88.25 && n_done == 3, "scores %g %g %g (%d done)", acc[0], acc[1],
        acc[2], n_done);
  CHECK(ev.score(&ev, it->items, 4, acc, NULL, NULL, err, sizeof err) != 0 && strstr(err, "has no row for arch") &&
            strstr(err, archs[3]) && strstr(err, path),
        "missing arch: %s", err);
  eval_destroy(&ev);
  sb_free(&good);
  struct {
    const char *text, *msg;
  } bad[] = {
      {"", ":1: empty file"},
      {"arch,acc\n", ":1: the header must be 'arch,accuracy'"},
      {"arch,accuracy\n", "the table has no rows"},
      {"arch,accuracy\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|\n", ":2: expected 'arch,accuracy' (no comma)"},
      {"arch,accuracy\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,1,2\n", ":2: expected 2 fields"},
      {"arch,accuracy\n\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,abc\n", ":3: accuracy is not a number: 'abc'"},
      {"arch,accuracy\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,nan\n", ":2: accuracy is not a number"},
      {"arch,accuracy\n|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|,1\n", ":2: arch '|conv~0|"},
      {"arch,accuracy\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,1\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,2\n",
       ":3: arch '|none~0|+|none~0|none~1|+|none~0|none~1|none~2|' appears again with accuracy 2 (first 1)"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    write_file(path, bad[i].text);
    int rc = eval_create(&ev, "table", &o, err, sizeof err);
    CHECK(rc != 0 && strstr(err, bad[i].msg) && !strncmp(err, path, strlen(path)), "bad table %zu: want '%s', got '%s'",
          i, bad[i].msg, rc ? err : "accepted");
  }
  o.table = in_dir("missing.csv");
  CHECK(eval_create(&ev, "table", &o, err, sizeof err) != 0 && strstr(err, "missing.csv: cannot read"), "%s", err);
  free((char *)o.table);
  free(path);
}

// ---------------------------------------------------------------- command
static int run_cmd(Items *it, const char *cmd, int jobs, double timeout, int n, double *acc, char *err, size_t errlen) {
  EvalOptions o = {.space = &sp, .command = cmd, .jobs = jobs, .timeout_s = timeout};
  Evaluator ev;
  CHECK(eval_create(&ev, "command", &o, err, errlen) == 0, "create: %s", err);
  n_done = 0;
  int rc = ev.score(&ev, it->items, n, acc, count_done, NULL, err, errlen);
  eval_destroy(&ev);
  return rc;
}

static void check_command(Items *it) {
  char err[1024], cmd[512];
  double acc[N_ARCHS];
  // The path is appended; the last non-blank line is the accuracy.
  CHECK(run_cmd(it, "printf 'epoch 1\\n  0.625  \\n\\n' #", 1, 0, 2, acc, err, sizeof err) == 0, "%s", err);
  CHECK(acc[0] == 0.625 && acc[1] == 0.625 && n_done == 2, "appended path: %g %g", acc[0], acc[1]);
  // {} is the file; the environment has the arch's text.
  CHECK(run_cmd(it, "wc -c < {}", 2, 0, N_ARCHS, acc, err, sizeof err) == 0, "%s", err);
  for (int i = 0; i < N_ARCHS; i++) CHECK(acc[i] == (double)strlen(archs[i]) + 1, "{}: arch %d: %g", i, acc[i]);
  CHECK(run_cmd(it, "test \"$NAO_ARCH\" = \"$(cat {})\" && test \"$NAO_ARCH_FILE\" = {} && test \"$NAO_SPACE\" = nb201 "
                    "&& echo 1 || echo 0", 2, 0, N_ARCHS, acc, err, sizeof err) == 0, "%s", err);
  for (int i = 0; i < N_ARCHS; i++) CHECK(acc[i] == 1, "environment of arch %d", i);
  // Three jobs at once: each waits until all three have started (or gives up after 10 s).
  snprintf(cmd, sizeof cmd,
           "touch %s/go.$$; i=0; while [ $(ls %s | grep -c '^go') -lt 3 ] && [ $i -lt 200 ]; do sleep 0.05; "
           "i=$((i+1)); done; [ $i -lt 200 ] && echo 1 || echo 0 #", dir, dir);
  CHECK(run_cmd(it, cmd, 3, 0, 3, acc, err, sizeof err) == 0, "%s", err);
  CHECK(acc[0] == 1 && acc[1] == 1 && acc[2] == 1, "jobs did not run at once: %g %g %g", acc[0], acc[1], acc[2]);
  // Failures name the arch, the command and the end of its stderr.
  CHECK(run_cmd(it, "grep -q avg_pool {} && { echo boom >&2; exit 3; }; echo 0.5", 2, 0, N_ARCHS, acc, err,
                sizeof err) != 0, "a failing command passed");
  CHECK(strstr(err, "exited with status 3") && strstr(err, "boom") && strstr(err, archs[0]) && strstr(err, "grep -q"),
        "status message: %s", err);
  CHECK(run_cmd(it, "echo 'accuracy: 12' #", 1, 0, 1, acc, err, sizeof err) != 0 &&
            strstr(err, "printed 'accuracy: 12' as its last line"), "not a number: %s", err);
  CHECK(run_cmd(it, "true", 1, 0, 1, acc, err, sizeof err) != 0 && strstr(err, "printed nothing"), "no output: %s", err);
  CHECK(run_cmd(it, "kill -9 $$ #", 1, 0, 1, acc, err, sizeof err) != 0 && strstr(err, "killed by signal 9"),
        "signal: %s", err);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  CHECK(run_cmd(it, "sleep 20; echo 1 #", 2, 0.3, 2, acc, err, sizeof err) != 0 && strstr(err, "did not finish in time"),
        "timeout: %s", err);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double el = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  CHECK(el < 10, "the timeout took %.1f s", el);
  // The factory.
  Evaluator ev;
  EvalOptions o = {.space = &sp, .jobs = 1};
  CHECK(eval_create(&ev, "command", &o, err, sizeof err) != 0 && strstr(err, "--command"), "%s", err);
  CHECK(eval_create(&ev, "ws", &o, err, sizeof err) != 0 && strstr(err, "backbone"), "%s", err);
  CHECK(eval_create(&ev, "full", &o, err, sizeof err) != 0 && strstr(err, "--full-epochs"), "%s", err);
  CHECK(eval_create(&ev, "tabel", &o, err, sizeof err) != 0 && strstr(err, "unknown evaluator 'tabel'"), "%s", err);
}

static void check_parse_accuracy(void) {
  double v;
  CHECK(eval_parse_accuracy(" 93.5\t", 6, &v) == 0 && v == 93.5, "blanks around a number");
  CHECK(eval_parse_accuracy("1e-2", 4, &v) == 0 && v == 0.01, "exponent");
  CHECK(eval_parse_accuracy("93.5%", 5, &v) != 0, "a percent sign is not a number");
  CHECK(eval_parse_accuracy("inf", 3, &v) != 0, "inf");
  CHECK(eval_parse_accuracy("", 0, &v) != 0, "empty");
}

int main(void) {
  char err[200];
  if (!mkdtemp(dir)) return perror("mkdtemp"), 1;
  if (space_init(&sp, "nb201", err, sizeof err) != 0) return 1;
  Items it;
  make_items(&it);
  check_table(&it);
  check_command(&it);
  check_parse_accuracy();
  for (int i = 0; i < N_ARCHS; i++) free(it.path[i]);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  if (t_failures) fprintf(stderr, "%d checks failed\n", t_failures);
  return t_failures ? 1 : 0;
}
