/* Adam in double precision with PyTorch's semantics (torch.optim.Adam, amsgrad off):
 * L2 weight decay is added to the gradient (not decoupled as in AdamW), and both moments are
 * bias-corrected with the step count t. Shared by the ENAS, DARTS and NAO controllers. */
#ifndef NAS_EVAL_ADAM_H
#define NAS_EVAL_ADAM_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    double lr, beta1, beta2, eps, weight_decay;
} AdamConfig;

/* One step over n parameters. m and v are the first and second moments (zero before the first
 * step); t is the 1-based step count after incrementing it for this step. */
void adam_update(size_t n, double *param, const double *grad, double *m, double *v,
                 int64_t t, AdamConfig c);

#endif
