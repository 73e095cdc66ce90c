/* Runtime dispatch for hot elementwise loops: gcc compiles each marked function for
 * AVX-512, AVX2 and baseline x86-64 and picks one at load time, so a portable wheel
 * still uses the machine's vector width (no -march=native). */
#ifndef NAS_EVAL_SIMD_H
#define NAS_EVAL_SIMD_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(NAS_EVAL_NO_CLONES)
#define SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SIMD_CLONES
#endif

#endif
