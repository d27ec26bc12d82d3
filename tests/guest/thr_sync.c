// thr_sync: 8 threads on a mutex, condition variables (a bounded queue), C11 atomics,
// barriers, thread-local storage, join values, robust mutexes, pthread_kill.
// cflags: -lpthread
#include "check.h"
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>

#define THREADS 8
#define ROUNDS 20000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;
static atomic_long acounter;
static atomic_int spin_flag;
static long spin_counter;
static __thread long tls_value = 7;
static __thread char tls_buf[64];

static void *hammer(void *arg) {
  long id = (long)arg;
  tls_value += id;
  snprintf(tls_buf, sizeof tls_buf, "thread %ld", id);
  for (int i = 0; i < ROUNDS; i++) {
    pthread_mutex_lock(&lock);
    counter++;
    pthread_mutex_unlock(&lock);
    atomic_fetch_add_explicit(&acounter, 1, memory_order_relaxed);
    int expected = 0;
    while (!atomic_compare_exchange_weak(&spin_flag, &expected, 1)) {
      expected = 0;
      sched_yield();
    }
    spin_counter++;
    atomic_store(&spin_flag, 0);
    if (i % 1000 == 0) sched_yield();
  }
  char expect[64];
  snprintf(expect, sizeof expect, "thread %ld", id);
  int tls_ok = tls_value == 7 + id && strcmp(tls_buf, expect) == 0;
  return (void *)(id * 100 + tls_ok);
}

static void test_counters(void) {
  SECTION("mutex, atomics, TLS, join values");
  pthread_t t[THREADS];
  for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, hammer, (void *)i);
  for (int i = 0; i < THREADS; i++) {
    void *ret;
    pthread_join(t[i], &ret);
    printf("thread %d returned %ld\n", i, (long)ret);
  }
  printf("mutex counter = %ld\n", counter);
  printf("atomic counter = %ld\n", atomic_load(&acounter));
  printf("spinlock counter = %ld\n", spin_counter);
  printf("main's tls_value = %ld, tls_buf = \"%s\"\n", tls_value, tls_buf);
}

/* ---- a bounded queue: producers and consumers on two condition variables ---- */
#define QSIZE 16
#define ITEMS 5000
static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER;
static long queue[QSIZE];
static int qhead, qcount, producers_left;

static void *producer(void *arg) {
  long base = (long)arg * ITEMS;
  for (long i = 1; i <= ITEMS; i++) {
    pthread_mutex_lock(&qlock);
    while (qcount == QSIZE) pthread_cond_wait(&not_full, &qlock);
    queue[(qhead + qcount++) % QSIZE] = base + i;
    pthread_cond_signal(&not_empty);
    pthread_mutex_unlock(&qlock);
  }
  pthread_mutex_lock(&qlock);
  producers_left--;
  pthread_cond_broadcast(&not_empty);
  pthread_mutex_unlock(&qlock);
  return NULL;
}

static void *consumer(void *arg) {
  (void)arg;
  long sum = 0, items = 0;
  for (;;) {
    pthread_mutex_lock(&qlock);
    while (qcount == 0 && producers_left > 0) pthread_cond_wait(&not_empty, &qlock);
    if (qcount == 0) {
      pthread_mutex_unlock(&qlock);
      break;
    }
    sum += queue[qhead];
    qhead = (qhead + 1) % QSIZE;
    qcount--;
    items++;
    pthread_cond_signal(&not_full);
    pthread_mutex_unlock(&qlock);
  }
  long *result = malloc(2 * sizeof *result);
  result[0] = sum;
  result[1] = items;
  return result;
}

static void test_queue(void) {
  SECTION("condition variables");
  pthread_t p[4], c[4];
  producers_left = 4;
  for (long i = 0; i < 4; i++) pthread_create(&p[i], NULL, producer, (void *)i);
  for (long i = 0; i < 4; i++) pthread_create(&c[i], NULL, consumer, NULL);
  long sum = 0, items = 0;
  for (int i = 0; i < 4; i++) pthread_join(p[i], NULL);
  for (int i = 0; i < 4; i++) {
    long *r;
    pthread_join(c[i], (void **)&r);
    sum += r[0];
    items += r[1];
    free(r);
  }
  long n = 4L * ITEMS;
  printf("consumed %ld items, sum %ld (expected %ld)\n", items, sum, n * (n + 1) / 2);

  /* timed wait that times out */
  pthread_mutex_lock(&qlock);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_nsec += 50000000;
  if (ts.tv_nsec >= 1000000000) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000;
  }
  SHOWE(pthread_cond_timedwait(&not_empty, &qlock, &ts));
  pthread_mutex_unlock(&qlock);
}

/* ---- barrier and a phase counter ---- */
static pthread_barrier_t barrier;
static atomic_int phase_hits[3];
static atomic_int serial_count;

static void *phased(void *arg) {
  (void)arg;
  for (int ph = 0; ph < 3; ph++) {
    atomic_fetch_add(&phase_hits[ph], 1);
    int r = pthread_barrier_wait(&barrier);
    if (r == PTHREAD_BARRIER_SERIAL_THREAD) atomic_fetch_add(&serial_count, 1);
    /* everyone passed the barrier: all hits of this phase are in */
    if (atomic_load(&phase_hits[ph]) != THREADS) return (void *)1;
  }
  return NULL;
}

static void test_barrier(void) {
  SECTION("barrier");
  pthread_barrier_init(&barrier, NULL, THREADS);
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, phased, NULL);
  long bad = 0;
  for (int i = 0; i < THREADS; i++) {
    void *r;
    pthread_join(t[i], &r);
    bad += (long)r;
  }
  printf("barrier: bad=%ld serial threads=%d\n", bad, atomic_load(&serial_count));
  pthread_barrier_destroy(&barrier);
}

/* ---- robust mutexes ---- */
static pthread_mutex_t robust;

static void *die_holding(void *arg) {
  (void)arg;
  pthread_mutex_lock(&robust);
  return NULL; /* exits with the mutex held */
}

static void test_robust(void) {
  SECTION("robust mutex");
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(&robust, &attr);
  pthread_t t;
  pthread_create(&t, NULL, die_holding, NULL);
  pthread_join(t, NULL);
  SHOWE(pthread_mutex_lock(&robust));
  SHOWE(pthread_mutex_consistent(&robust));
  SHOWE(pthread_mutex_unlock(&robust));
  SHOWE(pthread_mutex_lock(&robust));
  SHOWE(pthread_mutex_unlock(&robust));
  /* dead owner again, then not made consistent: unusable */
  pthread_create(&t, NULL, die_holding, NULL);
  pthread_join(t, NULL);
  SHOWE(pthread_mutex_trylock(&robust));
  SHOWE(pthread_mutex_unlock(&robust));
  SHOWE(pthread_mutex_lock(&robust));

  /* error-checking mutex */
  pthread_mutex_t ec;
  pthread_mutexattr_t ea;
  pthread_mutexattr_init(&ea);
  pthread_mutexattr_settype(&ea, PTHREAD_MUTEX_ERRORCHECK);
  pthread_mutex_init(&ec, &ea);
  SHOWE(pthread_mutex_lock(&ec));
  SHOWE(pthread_mutex_lock(&ec));
  SHOWE(pthread_mutex_unlock(&ec));
  SHOWE(pthread_mutex_unlock(&ec));
}

/* ---- pthread_kill between threads ---- */
static volatile pthread_t handled_by;
static volatile int handled_sig;
static pthread_t target;
static atomic_int target_ready, target_done;

static void on_usr1(int sig) {
  handled_sig = sig;
  handled_by = pthread_self();
}

static void *wait_for_signal(void *arg) {
  (void)arg;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR2);
  atomic_store(&target_ready, 1);
  int sig = 0;
  sigwait(&set, &sig); /* SIGUSR2 is blocked in every thread */
  while (!handled_sig) sched_yield();
  atomic_store(&target_done, 1);
  return (void *)(long)sig;
}

static void test_pthread_kill(void) {
  SECTION("pthread_kill");
  signal(SIGUSR1, on_usr1);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  pthread_create(&target, NULL, wait_for_signal, NULL);
  while (!atomic_load(&target_ready)) sched_yield();
  SHOWE(pthread_kill(target, SIGUSR1));
  SHOWE(pthread_kill(target, SIGUSR2));
  void *r;
  pthread_join(target, &r);
  printf("handler ran in the target thread: %s\n",
         pthread_equal(handled_by, target) ? "yes" : "no");
  printf("sigwait in the target got %s\n", signame((int)(long)r));
  SHOWE(pthread_kill(pthread_self(), 0));
  /* a signal to one thread, blocked there, stays pending for that thread only */
  handled_sig = 0;
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  pthread_kill(pthread_self(), SIGUSR1);
  sigset_t pending;
  sigpending(&pending);
  printf("pending SIGUSR1 while blocked: %d, handled: %d\n", sigismember(&pending, SIGUSR1),
         handled_sig != 0);
  pthread_sigmask(SIG_UNBLOCK, &set, NULL);
  printf("after unblocking: handled %s\n", handled_sig ? signame(handled_sig) : "nothing");
}

/* ---- threads and exit: exit() from a thread ends the whole process with its status
   (checked in a child process) ---- */
static void *exit_from_thread(void *arg) {
  (void)arg;
  usleep(10000);
  exit(7);
}

static void *sleeper(void *arg) {
  (void)arg;
  for (;;) pause();
  return NULL;
}

static void test_exit_from_thread(void) {
  SECTION("exit from a thread");
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    pthread_t a, b;
    pthread_create(&b, NULL, sleeper, NULL);
    pthread_create(&a, NULL, exit_from_thread, NULL);
    for (;;) pause();
  }
  int st;
  waitpid(pid, &st, 0);
  printf("process exit status: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
}

static void *pi_relock(void *arg) {
  pthread_mutex_t *m = arg;
  SHOW(pthread_mutex_lock(m));
  SHOWE(pthread_mutex_lock(m));       /* errorcheck: the kernel's EDEADLK */
  SHOWE(pthread_mutex_trylock(m));
  SHOW(pthread_mutex_unlock(m));
  return NULL;
}

static void test_pi_mutex(void) {
  SECTION("priority-inheritance mutexes (FUTEX_LOCK_PI)");
  pthread_mutexattr_t a;
  pthread_mutex_t m;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
  SHOWE(pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT));
  SHOWE(pthread_mutex_init(&m, &a));
  SHOW(pthread_mutex_lock(&m));
  SHOWE(pthread_mutex_lock(&m));
  SHOW(pthread_mutex_unlock(&m));
  SHOWE(pthread_mutex_unlock(&m));
  pthread_t t;
  pthread_create(&t, NULL, pi_relock, &m);
  pthread_join(t, NULL);
  /* Raw: the word holds our own tid. */
  static int word;
  word = syscall(SYS_gettid);
  SHOW(syscall(SYS_futex, &word, 6 | 128, 0, NULL, NULL, 0));   /* FUTEX_LOCK_PI_PRIVATE */
  SHOW(syscall(SYS_futex, &word, 7 | 128, 0, NULL, NULL, 0));   /* FUTEX_UNLOCK_PI_PRIVATE */
  SHOW(word);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  test_counters();
  test_queue();
  test_barrier();
  test_robust();
  test_pthread_kill();
  test_pi_mutex();
  test_exit_from_thread();
  return 0;
}
