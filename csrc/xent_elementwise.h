/* The fused cross-entropy's loops over one logit tile (fused_xent.h), compiled once per
 * instruction set like elementwise.h (included after it by kern_body.h: same 16-lane
 * vectors and exp, so a row's sums have the same operation order on every level). */
#ifndef NAS_EVAL_XENT_ELEMENTWISE_H
#define NAS_EVAL_XENT_ELEMENTWISE_H

/* vsoft_exp for x <= 0 (the shifted logits here): the upper clamp can go */
static inline vsoft vsoft_exp_neg(vsoft x) {
    vsoft lo = vsoft_splat(-87.0f);
    x = vsoft_select(x > lo, x, lo);
    vsoft n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    vsoft r = x - n * 0.693145751953125f;
    r = r - n * 1.428606765330187045e-06f;
    vsoft p = vsoft_splat(1.0f / 720.0f);
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    vsoft_i bits = (__builtin_convertvector(n, vsoft_i) + 127) << 23;
    return p * (vsoft)bits;
}

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
        vsoft m[SOFTMAX_VECS], s[SOFTMAX_VECS];
        for (int q = 0; q < SOFTMAX_VECS; q++) m[q] = vsoft_splat(-INFINITY);
        int v = 0;
        for (; v + SOFTMAX_LANES <= vt; v += SOFTMAX_LANES) {
            for (int q = 0; q < SOFTMAX_VECS; q++) {
                vsoft y = vsoft_load(x + v + q * VL) + vsoft_load(bias + v + q * VL);
                vsoft_store(x + v + q * VL, y);
                m[q] = vsoft_select(y > m[q], y, m[q]);
            }
        }
        float lanes[SOFTMAX_LANES];
        for (int q = 0; q < SOFTMAX_VECS; q++) vsoft_store(lanes + q * VL, m[q]);
        float tmax = lanes[0];
        for (int j = 1; j < SOFTMAX_LANES; j++) tmax = lanes[j] > tmax ? lanes[j] : tmax;
        for (; v < vt; v++) {
            x[v] += bias[v];
            tmax = x[v] > tmax ? x[v] : tmax;
        }
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
        vsoft vmx = vsoft_splat(mx[r]);
        for (int q = 0; q < SOFTMAX_VECS; q++) s[q] = vsoft_splat(0.0f);
        for (v = 0; v + SOFTMAX_LANES <= vt; v += SOFTMAX_LANES) {
            for (int q = 0; q < SOFTMAX_VECS; q++) {
                vsoft e = vsoft_exp_neg(vsoft_load(x + v + q * VL) - vmx);
                vsoft_store(x + v + q * VL, e);
                s[q] += e;
            }
        }
        for (int q = 0; q < SOFTMAX_VECS; q++) vsoft_store(lanes + q * VL, s[q]);
        float sum = 0.0f;
        for (int j = 0; j < SOFTMAX_LANES; j++) sum += lanes[j];
        for (; v < vt; v++) {
            float e = fast_expf(x[v] - mx[r]);
            x[v] = e;
            sum += e;
        }
        sm[r] += sum;
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
        float lanes[SOFTMAX_LANES];
        for (int q = 0; q < SOFTMAX_VECS; q++) vsoft_store(lanes + q * VL, s[q]);
        float sum = 0.0f;
        for (int j = 0; j < SOFTMAX_LANES; j++) sum += lanes[j];
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
