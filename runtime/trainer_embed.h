// runtime/trainer_embed.h — what a generated trainer carries (make trainer
// NET=net.cu; docs/cuda-runtime.md): its network's .nao text, net.cu's plan
// and text. tools/trainer_embed.c defines nao_trainer_embedded() in the
// trainer; nao-train's main (runtime/nao_train_main.c) declares it weak and
// uses it when present, so a trainer takes nao-train's options with the
// network built in.
#ifndef NAO_TRAINER_EMBED_H
#define NAO_TRAINER_EMBED_H

typedef struct {
  const char *nao_name;     // the .nao file's name as given to the build (messages, run folder)
  const char *nao_text;     // its text
  const void *cuda_net;     // net.cu's plan: const CudaNet * (compiler/cuda_plan.h)
  const char *cuda_source;  // net.cu's text: NVRTC input (its device section)
} NaoTrainerEmbed;

const NaoTrainerEmbed *nao_trainer_embedded(void);

#endif
