#include "panel.h"

#include <string.h>


void panel_pack(int k, int n, const float *src, int ld, int trans, int p0, int p1, float *dst) {
    for (int p = p0; p < p1; p++) {
        float *out = dst + (size_t)p * k * PANEL;
        int j0 = p * PANEL, w = n - j0 < PANEL ? n - j0 : PANEL;
        for (int i = 0; i < k; i++) {
            float *row = out + (size_t)i * PANEL;
            if (trans)
                for (int j = 0; j < w; j++) row[j] = src[(size_t)(j0 + j) * ld + i];
            else
                memcpy(row, src + (size_t)i * ld + j0, (size_t)w * sizeof(float));
            for (int j = w; j < PANEL; j++) row[j] = 0.0f;
        }
    }
}
