/* The vector widths and register tiles of the tables that an emulation copies (kernels.h):
 * kern_avx512.c and kern_avx512emu.c, kern_neon.c and kern_neonemu.c read them from here so
 * that each emulation runs the arithmetic of the table it stands for. VL: float lanes of one
 * vector; MR x NV: the panel kernel's tile, rows x vectors (kern_body.h). */
#ifndef NAS_EVAL_KERN_TILES_H
#define NAS_EVAL_KERN_TILES_H

/* AVX-512: 32 zmm registers; an 8 x 32 tile is 16 accumulators + 2 B vectors + 1 broadcast */
#define AVX512_VL 16
#ifndef AVX512_MR
#define AVX512_MR 8
#endif
#define AVX512_NV 2

/* NEON: 32 q registers of 4 floats; a 6 x 16 tile is 24 accumulators + 4 B vectors + 1-2
 * for A. Chosen from the register count, not measured: no aarch64 machine was available. */
#define NEON_VL 4
#define NEON_MR 6
#define NEON_NV 4

#endif
