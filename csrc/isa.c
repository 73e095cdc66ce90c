#include "kernels.h"

#include <stdio.h>
#include <string.h>

extern const Kernels kernels_generic;
#if defined(__x86_64__) || defined(__i386__)
extern const Kernels kernels_avx2, kernels_avx512, kernels_avx512emu, kernels_neonemu;
#endif
#if defined(__aarch64__)
extern const Kernels kernels_neon;
#endif

const Kernels *kern = &kernels_generic;

static const char *const NAMES[N_ISA] = {"generic", "neon", "avx2", "avx512", "avx512-emu", "neon-emu"};

static const Kernels *table(int isa) {
    switch (isa) {
    case ISA_GENERIC: return &kernels_generic;
#if defined(__x86_64__) || defined(__i386__)
    case ISA_AVX2: return &kernels_avx2;
    case ISA_AVX512: return &kernels_avx512;
    case ISA_AVX512_EMU: return &kernels_avx512emu;
    case ISA_NEON_EMU: return &kernels_neonemu;
#endif
#if defined(__aarch64__)
    case ISA_NEON: return &kernels_neon;
#endif
    default: return NULL;
    }
}

const char *isa_name(int isa) { return isa >= 0 && isa < N_ISA ? NAMES[isa] : NULL; }

int isa_from_name(const char *name) {
    for (int i = 0; i < N_ISA; i++)
        if (!strcmp(name, NAMES[i])) return i;
    return -1;
}

int isa_compiled(int isa) { return table(isa) != NULL; }

/* what the CPU and the OS (saved register state) allow; the compiler's runtime checks both */
static int cpu_runs(int isa) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    switch (isa) {
    case ISA_AVX2:
    case ISA_AVX512_EMU:
    case ISA_NEON_EMU: return avx2;
    case ISA_AVX512:
        return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512cd");
    default: return isa == ISA_GENERIC;
    }
#else
    return isa == ISA_GENERIC || isa == ISA_NEON; /* aarch64: NEON is architectural */
#endif
}

int isa_supported(int isa) { return isa_compiled(isa) && cpu_runs(isa); }

int isa_emulated(int isa) { return isa >= N_ISA_NATIVE && isa < N_ISA; }

int isa_listed(int i) { return i < N_ISA_NATIVE ? N_ISA_NATIVE - 1 - i : i; }

int isa_best(void) {
    for (int isa = N_ISA_NATIVE - 1; isa > 0; isa--)
        if (isa_supported(isa)) return isa;
    return ISA_GENERIC;
}

int isa_current(void) { return kern->isa; }

int isa_select(int isa) {
    if (!isa_supported(isa)) return -1;
    kern = table(isa);
    return 0;
}

const char *isa_init(const char *env_value) {
    static char msg[256];
    int best = isa_best();
    isa_select(best);
    if (!env_value || !*env_value) return NULL;
    int want = isa_from_name(env_value);
    if (want >= 0 && isa_select(want) == 0) return NULL;
    char levels[96] = "";
    for (int i = 0; i < N_ISA; i++)
        if (isa_supported(isa_listed(i))) {
            if (*levels) strcat(levels, ", ");
            strcat(levels, NAMES[isa_listed(i)]);
        }
    snprintf(msg, sizeof msg, "NAS_EVAL_ISA=%.32s is %s; this machine runs: %s", env_value,
             want < 0 ? "not a known instruction-set level" : "not supported by this CPU", levels);
    return msg;
}

const char *isa_compiler(void) {
#if defined(__clang__)
    return "clang " __clang_version__;
#elif defined(__GNUC__)
    return "gcc " __VERSION__;
#else
    return "unknown";
#endif
}
