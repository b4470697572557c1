// tools/trainer_embed.c — the network a generated trainer carries
// (runtime/trainer_embed.h): the .nao text and net.cu's text, included whole
// with the assembler's .incbin, and net.cu's plan (nao_net_get, from net.cu
// compiled as C). Compiled by tools/trainer.sh (make trainer) with
//   -DNAO_TRAINER_NAO_FILE='"/abs/net.nao"' -DNAO_TRAINER_CU_FILE='"/abs/net.cu"' (C string
//   literals of the paths) -DNAO_TRAINER_NAME='"net.nao"'
// Never part of a library: only trainers link it.
#include "compiler/cuda_plan.h"
#include "runtime/trainer_embed.h"

#if !defined(NAO_TRAINER_NAO_FILE) || !defined(NAO_TRAINER_CU_FILE) || !defined(NAO_TRAINER_NAME)
#error "build generated trainers with make trainer NET=net.cu (tools/trainer.sh)"
#endif

const CudaNet *nao_net_get(void);  // net.cu's plan section

// Each text is followed by a NUL so that it is a C string.
__asm__(".section .rodata\n"
        ".balign 64\n"
        ".globl nao_trainer_nao_text\n"
        "nao_trainer_nao_text:\n"
        ".incbin \"" NAO_TRAINER_NAO_FILE "\"\n"
        ".byte 0\n"
        ".balign 64\n"
        ".globl nao_trainer_cu_text\n"
        "nao_trainer_cu_text:\n"
        ".incbin \"" NAO_TRAINER_CU_FILE "\"\n"
        ".byte 0\n"
        ".previous\n");
extern const char nao_trainer_nao_text[];
extern const char nao_trainer_cu_text[];

const NaoTrainerEmbed *nao_trainer_embedded(void) {
  static const NaoTrainerEmbed e = {NAO_TRAINER_NAME, nao_trainer_nao_text, NULL, nao_trainer_cu_text};
  static NaoTrainerEmbed out;  // the plan's address is not a constant expression
  out = e;
  out.cuda_net = nao_net_get();
  return &out;
}
