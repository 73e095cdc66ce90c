/* The fused cross-entropy's loops over one logit tile (fused_xent.h), compiled once per
 * instruction set like elementwise.h (included after it by kern_body.h: its 16-lane
 * vectors, exp and row passes, so a row's sums have the same operation order on every
 * level). */
#ifndef NAS_EVAL_XENT_ELEMENTWISE_H
#define NAS_EVAL_XENT_ELEMENTWISE_H

/* Pass A on a tile of rows x vt logits (row stride ld), vocabulary v0..v0+vt: adds the
 * bias, raises each row's running max mx[r] to the tile's (rescaling its running sum sm[r]
 * and, when acc != NULL, the row r of acc (stride d) by exp(old - new); not on the first
 * tile, where there is nothing yet), turns the tile into exp(logit - mx[r]), adds its sum
 * into sm[r] and records the target's logit in tl[r] when the target lies in the tile. */
FP_CONTRACT_FAST static void xent_online(int rows, int vt, float *l, int ld, const float *restrict bias,
                        const int32_t *tgt, int v0, float *mx, float *sm, float *tl, float *acc,
                        int d, int first) {
#if defined(__clang__)
#pragma clang fp contract(fast)
#endif
    for (int r = 0; r < rows; r++) {
        float *restrict x = l + (size_t)r * ld;
        float tmax = row_add_max(vt, x, bias);
        int t = tgt[r] - v0;
        if (t >= 0 && t < vt) tl[r] = x[t];
        float mo = mx[r];
        if (first) {
            mx[r] = tmax;
            sm[r] = 0.0f;
        } else if (tmax > mo) {
            float f = fast_expf(mo - tmax);
            mx[r] = tmax;
            sm[r] *= f;
            if (acc) {
                float *restrict a = acc + (size_t)r * d;
                for (int k = 0; k < d; k++) a[k] *= f;
            }
        }
        sm[r] += row_exp_sum(vt, x, mx[r]);
    }
}

/* Pass B on a transposed tile: vt vocabulary rows x rows logits (row stride ld, without the
 * bias). Each becomes g = scale * (exp(logit + bias[v] - lse[r]) - [tgt[r] == v0 + v]);
 * dbias[v] receives the row's sum (added to it unless first). */
FP_CONTRACT_FAST static void xent_grad(int vt, int rows, float *l, int ld, const float *restrict bias,
                      const float *restrict lse, const int32_t *tgt, int v0, float scale,
                      float *restrict dbias, int first) {
#if defined(__clang__)
#pragma clang fp contract(fast)
#endif
    vsoft vs = vsoft_splat(scale);
    for (int v = 0; v < vt; v++) {
        float *restrict x = l + (size_t)v * ld;
        vsoft vb = vsoft_splat(bias[v]), s[SOFTMAX_VECS];
        for (int q = 0; q < SOFTMAX_VECS; q++) s[q] = vsoft_splat(0.0f);
        int r = 0;
        for (; r + SOFTMAX_LANES <= rows; r += SOFTMAX_LANES) {
            for (int q = 0; q < SOFTMAX_VECS; q++) {
                vsoft y = vsoft_load(x + r + q * VL) + vb - vsoft_load(lse + r + q * VL);
                vsoft g = vs * vsoft_exp_neg(y);
                vsoft_store(x + r + q * VL, g);
                s[q] += g;
            }
        }
        float sum = lanes_sum(s);
        for (; r < rows; r++) {
            float g = scale * fast_expf(x[r] + bias[v] - lse[r]);
            x[r] = g;
            sum += g;
        }
        dbias[v] = first ? sum : dbias[v] + sum;
    }
    for (int r = 0; r < rows; r++) {
        int t = tgt[r] - v0;
        if (t < 0 || t >= vt) continue;
        l[(size_t)t * ld + r] -= scale;
        dbias[t] -= scale;
    }
}

#endif
