/* syscall() and clock_gettime() are outside strict ISO C */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE
#endif

#include "parallel.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "blas.h"

#define MAX_WORKERS 64

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    pthread_t threads[MAX_WORKERS];
    int n_started;          /* helper threads alive */
    int n_workers;          /* workers per job, caller included */
    unsigned long generation;
    int pending;            /* helpers still running the current job */
    int joined;             /* helpers that started the current job */
    unsigned long finished; /* generation the caller closed before every helper joined */
    task_fn fn;
    void *ctx;
    int job_workers;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER,
           .done = PTHREAD_COND_INITIALIZER};

/* one job at a time: two Python threads driving two models take turns */
static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER;

static long long clock_ns(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* --- going solo when the helpers get no core ----------------------------------------------
 * When another process keeps a core busy, our two threads end up sharing one core (measured:
 * 1.02-1.08 cores between them) and every hand-over costs a wake-up or a migration: two
 * threads lost up to 11 % to one at d = 16. So each long job (>= SOLO_MIN_JOB_NS) measures
 * the CPU time all its workers got over its wall time; after SOLO_STRIKES long jobs in a row
 * below SOLO_MAX_CORES, jobs run on the calling thread alone for SOLO_NS, then helpers are
 * tried again. Who joins never changes what is computed: the work is cut into tickets by
 * the configured worker count, and whoever runs a ticket writes the same numbers, so
 * results stay bitwise the same for a given thread count. */
#ifdef CLOCK_THREAD_CPUTIME_ID
#define SOLO_MIN_JOB_NS 2000000LL   /* 2 ms: short jobs say nothing (a helper may wake late) */
#define SOLO_MAX_CORES 1.12         /* idle: 1.7-1.95 cores on long jobs; busy core: 1.02-1.08 at d <= 64 (a loss), 1.12-1.19 from d = 96 (a gain) */
#define SOLO_STRIKES 3
#define SOLO_NS 500000000LL         /* 0.5 s, then look again */
static struct {
    int strikes;
    long long solo_until;           /* CLOCK_MONOTONIC ns */
    long long helper_cpu_ns;        /* CPU time the helpers spent in the current job */
} adapt;
#endif

static void *helper_main(void *arg) {
    int index = (int)(long)arg; /* helper i is worker i + 1 */
    unsigned long seen = 0;
    pthread_mutex_lock(&pool.lock);
    for (;;) {
        while (pool.generation == seen) pthread_cond_wait(&pool.wake, &pool.lock);
        seen = pool.generation;
        if (index + 1 >= pool.job_workers) continue; /* not needed for this job */
        if (pool.finished == seen) continue;          /* done without us: too late to help */
        pool.joined++;
        task_fn fn = pool.fn;
        void *ctx = pool.ctx;
        int n = pool.job_workers;
        pthread_mutex_unlock(&pool.lock);
#ifdef CLOCK_THREAD_CPUTIME_ID
        long long cpu0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
        fn(ctx, index + 1, n);
        long long cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;
        pthread_mutex_lock(&pool.lock);
        adapt.helper_cpu_ns += cpu;
#else
        fn(ctx, index + 1, n);
        pthread_mutex_lock(&pool.lock);
#endif
        if (--pool.pending == 0) pthread_cond_signal(&pool.done);
    }
    return NULL;
}

/* After fork() only the forking thread exists in the child: forget the helpers. */
static void forget_helpers_in_child(void) {
    pthread_mutex_init(&run_lock, NULL);
    pthread_mutex_init(&pool.lock, NULL);
    pthread_cond_init(&pool.wake, NULL);
    pthread_cond_init(&pool.done, NULL);
    pool.n_started = 0;
    pool.pending = 0;
}

static void ensure_helpers(int n_helpers) {
    static int atfork_registered = 0;
    if (!atfork_registered) {
        pthread_atfork(NULL, NULL, forget_helpers_in_child);
        atfork_registered = 1;
    }
    while (pool.n_started < n_helpers) {
        if (pthread_create(&pool.threads[pool.n_started], NULL, helper_main, (void *)(long)pool.n_started) != 0)
            break;
        pthread_detach(pool.threads[pool.n_started]);
        pool.n_started++;
    }
}

void pool_set_threads(int n) {
    if (n < 1) n = 1;
    if (n > MAX_WORKERS) n = MAX_WORKERS;
    pthread_mutex_lock(&pool.lock);
    pool.n_workers = n;
    pthread_mutex_unlock(&pool.lock);
}

int pool_threads(void) {
    if (pool.n_workers == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        pool_set_threads(cores > 0 ? (int)cores : 1);
    }
    return pool.n_workers;
}

/* --- a matrix product split over the workers ------------------------------------------ */
typedef struct {
    int ta, tb, m, n, k;
    float alpha, beta;
    const float *a, *b;
    float *c;
    int lda, ldb, ldc;
} GemmJob;

/* item i of n: a block of rows of C (or of columns, when C is wide) */
static void gemm_item(void *ctx, int i, int n, int worker) {
    (void)worker;
    GemmJob *g = ctx;
    int lo, hi;
    if (g->m >= g->n) {
        pool_range(g->m, i, n, &lo, &hi);
        if (lo == hi) return;
        const float *a = g->ta ? g->a + lo : g->a + (size_t)lo * g->lda;
        gemm(g->ta, g->tb, hi - lo, g->n, g->k, g->alpha, a, g->lda, g->b, g->ldb, g->beta,
             g->c + (size_t)lo * g->ldc, g->ldc);
    } else {
        pool_range(g->n, i, n, &lo, &hi);
        if (lo == hi) return;
        const float *b = g->tb ? g->b + (size_t)lo * g->ldb : g->b + lo;
        gemm(g->ta, g->tb, g->m, hi - lo, g->k, g->alpha, g->a, g->lda, b, g->ldb, g->beta,
             g->c + lo, g->ldc);
    }
}

void par_gemm(int n_workers, int ta, int tb, int m, int n, int k, float alpha, const float *a,
              int lda, const float *b, int ldb, float beta, float *c, int ldc) {
    GemmJob g = {ta, tb, m, n, k, alpha, beta, a, b, c, lda, ldb, ldc};
    if ((double)m * n * k < PAR_GEMM_MIN_MACS) n_workers = 1;
    pool_for(gemm_item, &g, n_workers > 1 ? 2 * n_workers : 1, n_workers);
}

typedef struct {
    item_fn fn;
    void *ctx;
    int n_items;
    TaskQueue queue;
} ForJob;

static void for_task(void *ctx, int w, int nw) {
    (void)nw;
    ForJob *f = ctx;
    for (long long i; (i = queue_claim(&f->queue, (unsigned long long)f->n_items)) >= 0;)
        f->fn(f->ctx, (int)i, f->n_items, w);
}

void pool_for(item_fn fn, void *ctx, int n_items, int n_workers) {
    if (n_workers <= 1 || n_items <= 1) {
        for (int i = 0; i < n_items; i++) fn(ctx, i, n_items, 0);
        return;
    }
    ForJob f = {fn, ctx, n_items, {0, 0, 0, 0}};
    pool_run(for_task, &f, n_workers < n_items ? n_workers : n_items);
}

void pool_run(task_fn fn, void *ctx, int n) {
    pthread_mutex_lock(&run_lock);
    if (n < 1) n = 1;
    if (n > MAX_WORKERS) n = MAX_WORKERS;
    static int forced_solo = -1; /* NAS_EVAL_POOL_SOLO: every job on the calling thread (tests) */
    if (forced_solo < 0) forced_solo = getenv("NAS_EVAL_POOL_SOLO") != NULL;
    int helpers = n > 1 && !forced_solo;
#ifdef CLOCK_THREAD_CPUTIME_ID
    long long wall0 = 0, cpu0 = 0;
    if (helpers) {
        wall0 = clock_ns(CLOCK_MONOTONIC);
        if (wall0 < adapt.solo_until) helpers = 0; /* fn still gets n: same tickets, one worker */
        cpu0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
        adapt.helper_cpu_ns = 0;
    }
#endif
    if (helpers) {
        pthread_mutex_lock(&pool.lock);
        ensure_helpers(n - 1);
        if (pool.n_started < n - 1) n = pool.n_started + 1; /* could not start them all */
        pool.fn = fn;
        pool.ctx = ctx;
        pool.job_workers = n;
        pool.pending = n - 1;
        pool.joined = 0;
        pool.generation++;
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
    }
    fn(ctx, 0, n);
    if (helpers) {
        pthread_mutex_lock(&pool.lock);
        /* The caller returns from fn only when every ticket is claimed, so a helper that has
         * not started yet has nothing left to do: release it instead of waiting for it to be
         * scheduled just to find that out (when another process holds its core that wait is
         * a scheduler time slice, milliseconds, per job). Who computed what is unchanged:
         * the work is split by tickets fixed by n, so results stay bitwise the same. */
        if (pool.joined < n - 1) {
            pool.pending -= (n - 1) - pool.joined;
            pool.finished = pool.generation;
        }
        while (pool.pending > 0) pthread_cond_wait(&pool.done, &pool.lock);
        pthread_mutex_unlock(&pool.lock);
#ifdef CLOCK_THREAD_CPUTIME_ID
        long long end = clock_ns(CLOCK_MONOTONIC), wall = end - wall0;
        if (wall >= SOLO_MIN_JOB_NS) {
            double cores = (double)(clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0 + adapt.helper_cpu_ns) / (double)wall;
            adapt.strikes = cores < SOLO_MAX_CORES ? adapt.strikes + 1 : 0;
            if (adapt.strikes >= SOLO_STRIKES) {
                adapt.strikes = 0;
                adapt.solo_until = end + SOLO_NS;
            }
        }
#endif
    }
    pthread_mutex_unlock(&run_lock);
}

/* --- tickets in phases (parallel.h) ------------------------------------------------------- */
/* Spin while the others are about to finish (they run on the other cores and normally do
 * within microseconds), then sleep in the kernel until one wakes us. Sleeping, not
 * yielding: a yielding waiter keeps its core looking busy, so the scheduler never moves a
 * descheduled partner (e.g. one sharing a core with another process) onto it, and the
 * waiter burns a core in sched_yield calls for as long as the partner is away. */
#define SPIN_NS 30000

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
static void futex_wait(unsigned *addr, unsigned value) {
    syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, value, NULL, NULL, 0);
}
static void futex_wake_all(unsigned *addr) {
    syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
}
#else /* one mutex and condition for every queue: only one pool job runs at a time */
static pthread_mutex_t sleep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sleep_cond = PTHREAD_COND_INITIALIZER;
static void futex_wait(unsigned *addr, unsigned value) {
    pthread_mutex_lock(&sleep_lock);
    while (__atomic_load_n(addr, __ATOMIC_ACQUIRE) == value) pthread_cond_wait(&sleep_cond, &sleep_lock);
    pthread_mutex_unlock(&sleep_lock);
}
static void futex_wake_all(unsigned *addr) {
    (void)addr;
    pthread_mutex_lock(&sleep_lock);
    pthread_cond_broadcast(&sleep_cond);
    pthread_mutex_unlock(&sleep_lock);
}
#endif

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}


void queue_init(TaskQueue *q) {
    q->claimed = 0;
    q->done = 0;
    q->wake = 0;
    q->sleepers = 0;
}

long long queue_claim(TaskQueue *q, unsigned long long limit) {
    unsigned long long c = __atomic_load_n(&q->claimed, __ATOMIC_RELAXED);
    while (c < limit)
        if (__atomic_compare_exchange_n(&q->claimed, &c, c + 1, 1, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
            return (long long)c;
    return -1;
}

void queue_finish(TaskQueue *q) {
    __atomic_add_fetch(&q->done, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&q->sleepers, __ATOMIC_SEQ_CST)) {
        __atomic_add_fetch(&q->wake, 1, __ATOMIC_SEQ_CST);
        futex_wake_all(&q->wake);
    }
}

void queue_wait(TaskQueue *q, unsigned long long target) {
    long long deadline = 0;
    for (int spins = 1;; spins++) {
        if (__atomic_load_n(&q->done, __ATOMIC_ACQUIRE) >= target) return;
        cpu_relax();
        if ((spins & 63) == 0) { /* the clock every 64 pauses: pause lengths vary by CPU */
            long long t = clock_ns(CLOCK_MONOTONIC);
            if (!deadline) deadline = t + SPIN_NS;
            else if (t > deadline) break;
        }
    }
    /* Announce the sleeper, then read wake before done: a finisher counts its ticket before
     * it reads sleepers and bumps wake, so either we see its ticket or the futex sees wake
     * changed and does not sleep. */
    __atomic_add_fetch(&q->sleepers, 1, __ATOMIC_SEQ_CST);
    for (;;) {
        unsigned seen = __atomic_load_n(&q->wake, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&q->done, __ATOMIC_SEQ_CST) >= target) break;
        futex_wait(&q->wake, seen);
    }
    __atomic_sub_fetch(&q->sleepers, 1, __ATOMIC_RELAXED);
}
