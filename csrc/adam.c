#include "adam.h"

#include <math.h>

void adam_update(size_t n, double *param, const double *grad, double *m, double *v,
                 int64_t t, AdamConfig c) {
    /* PyTorch divides sqrt(v) by sqrt(1 - beta2^t) and folds 1 - beta1^t into the step size;
     * the same order of operations keeps results within rounding of torch's. */
    double bias1 = 1.0 - pow(c.beta1, (double)t);
    double bias2_sqrt = sqrt(1.0 - pow(c.beta2, (double)t));
    double step = c.lr / bias1;
    for (size_t k = 0; k < n; k++) {
        double g = grad[k] + c.weight_decay * param[k];
        m[k] = c.beta1 * m[k] + (1.0 - c.beta1) * g;
        v[k] = c.beta2 * v[k] + (1.0 - c.beta2) * g * g;
        double denom = sqrt(v[k]) / bias2_sqrt + c.eps;
        param[k] -= step * m[k] / denom;
    }
}
