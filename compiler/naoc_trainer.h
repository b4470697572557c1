// compiler/naoc_trainer.h — naoc --trainer: a standalone trainer from a .nao
// file, built by the source tree's `make trainer` (tools/trainer.sh).
#ifndef NAO_NAOC_TRAINER_H
#define NAO_NAOC_TRAINER_H

#include "compiler/util.h"

// Writes net_cu to OUT.cu and runs `make -C ROOT BUILD=B trainer NET=OUT.cu
// NAO=nao_file TRAINER=OUT`, ROOT and B being where this program was built
// (it must run from its build folder: ROOT/B/naoc). Returns an exit status
// after saying what failed.
int naoc_build_trainer(const char *nao_file, const char *out, const StrBuf *net_cu);

#endif
