#include "parallel.h"

#include <pthread.h>
#include <sched.h>
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
    task_fn fn;
    void *ctx;
    int job_workers;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER};

/* one job at a time: two Python threads driving two models take turns */
static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER;

static void *helper_main(void *arg) {
    int index = (int)(long)arg; /* helper i is worker i + 1 */
    unsigned long seen = 0;
    pthread_mutex_lock(&pool.lock);
    for (;;) {
        while (pool.generation == seen) pthread_cond_wait(&pool.wake, &pool.lock);
        seen = pool.generation;
        if (index + 1 >= pool.job_workers) continue; /* not needed for this job */
        task_fn fn = pool.fn;
        void *ctx = pool.ctx;
        int n = pool.job_workers;
        pthread_mutex_unlock(&pool.lock);
        fn(ctx, index + 1, n);
        pthread_mutex_lock(&pool.lock);
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

/* each worker computes a block of rows of C (or of columns, when C is wide) */
static void gemm_task(void *ctx, int w, int nw) {
    GemmJob *g = ctx;
    int lo, hi;
    if (g->m >= g->n) {
        pool_range(g->m, w, nw, &lo, &hi);
        if (lo == hi) return;
        const float *a = g->ta ? g->a + lo : g->a + (size_t)lo * g->lda;
        gemm(g->ta, g->tb, hi - lo, g->n, g->k, g->alpha, a, g->lda, g->b, g->ldb, g->beta,
             g->c + (size_t)lo * g->ldc, g->ldc);
    } else {
        pool_range(g->n, w, nw, &lo, &hi);
        if (lo == hi) return;
        const float *b = g->tb ? g->b + (size_t)lo * g->ldb : g->b + lo;
        gemm(g->ta, g->tb, g->m, hi - lo, g->k, g->alpha, g->a, g->lda, b, g->ldb, g->beta,
             g->c + lo, g->ldc);
    }
}

void par_gemm(int n_workers, int ta, int tb, int m, int n, int k, float alpha, const float *a,
              int lda, const float *b, int ldb, float beta, float *c, int ldc) {
    GemmJob g = {ta, tb, m, n, k, alpha, beta, a, b, c, lda, ldb, ldc};
    if (n_workers <= 1) gemm_task(&g, 0, 1);
    else pool_run(gemm_task, &g, n_workers);
}

void pool_run(task_fn fn, void *ctx, int n) {
    pthread_mutex_lock(&run_lock);
    if (n < 1) n = 1;
    if (n > MAX_WORKERS) n = MAX_WORKERS;
    if (n > 1) {
        pthread_mutex_lock(&pool.lock);
        ensure_helpers(n - 1);
        if (pool.n_started < n - 1) n = pool.n_started + 1; /* could not start them all */
        pool.fn = fn;
        pool.ctx = ctx;
        pool.job_workers = n;
        pool.pending = n - 1;
        pool.generation++;
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
    }
    fn(ctx, 0, n);
    if (n > 1) {
        pthread_mutex_lock(&pool.lock);
        while (pool.pending > 0) pthread_cond_wait(&pool.done, &pool.lock);
        pthread_mutex_unlock(&pool.lock);
    }
    pthread_mutex_unlock(&run_lock);
}

/* --- barrier ------------------------------------------------------------------------------ */
static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

void barrier_init(Barrier *b, int n) {
    b->n = n;
    b->count = 0;
    b->sense = 0;
}

void barrier_seat(BarrierSeat *seat, Barrier *b) {
    seat->barrier = b;
    seat->sense = __atomic_load_n(&b->sense, __ATOMIC_ACQUIRE);
}

void barrier_wait(void *arg) {
    BarrierSeat *seat = arg;
    Barrier *b = seat->barrier;
    int sense = !seat->sense;
    seat->sense = sense;
    if (__atomic_add_fetch(&b->count, 1, __ATOMIC_ACQ_REL) == b->n) {
        __atomic_store_n(&b->count, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&b->sense, sense, __ATOMIC_RELEASE);
        return;
    }
    for (long spins = 0; __atomic_load_n(&b->sense, __ATOMIC_ACQUIRE) != sense; spins++) {
        if (spins < 4000) cpu_relax(); /* ~50 us, then give the core away */
        else sched_yield();
    }
}
