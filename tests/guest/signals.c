// signals: handlers, siginfo, masks, pending signals, alternate stacks, hardware faults, ucontext.
#include "check.h"
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/time.h>

/* ---- what handlers saw, printed later (no stdio inside handlers) ---- */
static volatile int deliveries;
static volatile int seen_signo, seen_code, seen_from_self, seen_value;
static volatile int seen_self_blocked, seen_usr2_blocked, seen_on_altstack;
static volatile int queued_values[8], queued_count;
static char *altstack_base;
static size_t altstack_size;

static long tid(void) { return syscall(SYS_gettid); }

static int is_blocked(int sig) {
  sigset_t now;
  sigprocmask(SIG_BLOCK, NULL, &now);
  return sigismember(&now, sig);
}

static void recorder(int sig, siginfo_t *si, void *ctx) {
  (void)ctx;
  int local;
  deliveries++;
  seen_signo = si->si_signo;
  seen_code = si->si_code;
  seen_from_self = si->si_pid == getpid() && si->si_uid == getuid();
  seen_value = si->si_code == SI_QUEUE ? si->si_value.sival_int : -1;
  seen_self_blocked = is_blocked(sig);
  seen_usr2_blocked = is_blocked(SIGUSR2);
  seen_on_altstack = altstack_base && (char *)&local >= altstack_base &&
                     (char *)&local < altstack_base + altstack_size;
}

static void install(int sig, int flags, const sigset_t *mask) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = recorder;
  sa.sa_flags = SA_SIGINFO | flags;
  if (mask)
    sa.sa_mask = *mask;
  else
    sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, NULL);
}

static void report(const char *how) {
  printf("%s: deliveries=%d signo=%s code=%s from-self=%d", how, deliveries, signame(seen_signo),
         codename(seen_signo, seen_code), seen_from_self);
  if (seen_value != -1) printf(" value=%d", seen_value);
  printf("\n");
  deliveries = 0;
}

static void test_sending(void) {
  SECTION("raise/kill/tgkill/sigqueue");
  install(SIGUSR1, 0, NULL);
  SHOW(raise(SIGUSR1));
  report("raise");
  SHOW(kill(getpid(), SIGUSR1));
  report("kill");
  SHOW(syscall(SYS_tgkill, getpid(), tid(), SIGUSR1));
  report("tgkill");
  SHOW(syscall(SYS_tkill, tid(), SIGUSR1));
  report("tkill");
  union sigval v = {.sival_int = 42};
  SHOW(sigqueue(getpid(), SIGUSR1, v));
  report("sigqueue");
  SHOW(kill(getpid(), 0));
  SHOW(kill(getpid(), 999));
  SHOW(kill(999999999, SIGUSR1));
  SHOW(syscall(SYS_tgkill, getpid(), 999999999, SIGUSR1));
  SHOW(syscall(SYS_tgkill, 0, tid(), SIGUSR1));
  SHOW(syscall(SYS_tgkill, getpid(), tid(), 0));
  printf("deliveries = %d\n", deliveries);
}

static void test_sigaction(void) {
  SECTION("sigaction");
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_IGN;
  SHOW(sigaction(SIGKILL, &sa, NULL));
  SHOW(sigaction(SIGSTOP, &sa, NULL));
  SHOW(sigaction(0, &sa, NULL));
  SHOW(sigaction(SIGKILL, NULL, &old));
  CHECK("rt_sigaction(65)", syscall(SYS_rt_sigaction, 65, NULL, &old, 8));
  CHECK("rt_sigaction(sigsetsize=4)", syscall(SYS_rt_sigaction, SIGUSR1, NULL, &old, 4));
  SHOW(sigaction(SIGUSR1, NULL, &old));
  FACT(old.sa_sigaction == recorder);
  FACT((old.sa_flags & SA_SIGINFO) != 0);
  SHOW(sigaction(SIGPIPE, NULL, &old));
  FACT(old.sa_handler == SIG_DFL);

  /* ignored signals vanish */
  signal(SIGUSR2, SIG_IGN);
  SHOW(raise(SIGUSR2));
  sigset_t pending;
  sigpending(&pending);
  FACT(!sigismember(&pending, SIGUSR2));
  signal(SIGUSR2, SIG_DFL);
}

static void test_flags(void) {
  SECTION("SA_RESETHAND/SA_NODEFER/sa_mask");
  install(SIGUSR1, SA_RESETHAND, NULL);
  raise(SIGUSR1);
  report("resethand");
  struct sigaction old;
  sigaction(SIGUSR1, NULL, &old);
  FACT(old.sa_handler == SIG_DFL);

  install(SIGUSR1, 0, NULL);
  raise(SIGUSR1);
  printf("default: self blocked in handler %d, usr2 blocked %d\n", seen_self_blocked,
         seen_usr2_blocked);
  install(SIGUSR1, SA_NODEFER, NULL);
  raise(SIGUSR1);
  printf("SA_NODEFER: self blocked in handler %d\n", seen_self_blocked);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR2);
  install(SIGUSR1, 0, &mask);
  raise(SIGUSR1);
  printf("sa_mask={SIGUSR2}: usr2 blocked in handler %d, after return %d\n", seen_usr2_blocked,
         is_blocked(SIGUSR2));
  deliveries = 0;
}

static void test_masks(void) {
  SECTION("sigprocmask/sigpending");
  install(SIGUSR1, 0, NULL);
  sigset_t block, old, pending;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  SHOW(sigprocmask(SIG_BLOCK, &block, &old));
  FACT(!sigismember(&old, SIGUSR1));
  raise(SIGUSR1);
  raise(SIGUSR1); /* standard signals do not queue */
  printf("deliveries while blocked = %d\n", deliveries);
  SHOW(sigpending(&pending));
  FACT(sigismember(&pending, SIGUSR1));
  FACT(!sigismember(&pending, SIGUSR2));
  SHOW(sigprocmask(SIG_UNBLOCK, &block, NULL));
  printf("deliveries after unblock = %d\n", deliveries);
  sigpending(&pending);
  FACT(!sigismember(&pending, SIGUSR1));
  deliveries = 0;

  /* realtime signals queue, in order, with their values */
  int rt = SIGRTMAX;
  install(rt, 0, NULL);
  sigemptyset(&block);
  sigaddset(&block, rt);
  sigprocmask(SIG_BLOCK, &block, NULL);
  for (int i = 1; i <= 3; i++) sigqueue(getpid(), rt, (union sigval){.sival_int = i});
  printf("deliveries while blocked = %d\n", deliveries);
  sigprocmask(SIG_UNBLOCK, &block, NULL);
  printf("realtime deliveries after unblock = %d, last value %d\n", deliveries, seen_value);
  deliveries = 0;

  sigset_t all;
  sigfillset(&all);
  SHOW(sigprocmask(SIG_SETMASK, &all, &old));
  SHOW(sigprocmask(SIG_SETMASK, NULL, &block));
  FACT(!sigismember(&block, SIGKILL) && !sigismember(&block, SIGSTOP));
  FACT(sigismember(&block, SIGTERM) && sigismember(&block, SIGRTMAX));
  SHOW(sigprocmask(SIG_SETMASK, &old, NULL));
  SHOW(sigprocmask(12345, &block, NULL));
  CHECK("rt_sigprocmask(sigsetsize=4)", syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &old, 4));
}

static void test_sigsuspend_wait(void) {
  SECTION("sigtimedwait/sigwait/sigsuspend");
  sigset_t set, empty;
  sigemptyset(&set);
  sigemptyset(&empty);
  sigaddset(&set, SIGUSR2);
  sigprocmask(SIG_BLOCK, &set, NULL);
  raise(SIGUSR2);
  siginfo_t info;
  struct timespec ten_ms = {0, 10000000};
  /* raw syscall: glibc's wrapper folds SI_TKILL into SI_USER */
  long r = syscall(SYS_rt_sigtimedwait, &set, &info, &ten_ms, 8);
  printf("rt_sigtimedwait = %s, si_code %s\n", r > 0 ? signame(r) : errname(errno),
         codename(info.si_signo, info.si_code));
  SHOW(sigtimedwait(&set, &info, &ten_ms));
  struct timespec bad = {0, 2000000000};
  SHOW(sigtimedwait(&set, &info, &bad));
  kill(getpid(), SIGUSR2);
  int sig = 0;
  SHOWE(sigwait(&set, &sig));
  printf("sigwait got %s\n", signame(sig));
  kill(getpid(), SIGUSR2);
  r = sigwaitinfo(&set, &info);
  printf("sigwaitinfo = %s code %s\n", signame(r), codename(info.si_signo, info.si_code));

  /* sigsuspend: atomically unblock and wait */
  install(SIGUSR2, 0, NULL);
  raise(SIGUSR2);
  printf("deliveries before sigsuspend = %d\n", deliveries);
  SHOW(sigsuspend(&empty));
  printf("deliveries after sigsuspend = %d, still blocked %d\n", deliveries, is_blocked(SIGUSR2));
  sigprocmask(SIG_UNBLOCK, &set, NULL);
  deliveries = 0;
}

static void test_altstack(void) {
  SECTION("sigaltstack");
  stack_t ss, old;
  SHOW(sigaltstack(NULL, &old));
  FACT(old.ss_flags == SS_DISABLE);
  altstack_size = 64 * 1024;
  altstack_base = malloc(altstack_size);
  ss.ss_sp = altstack_base;
  ss.ss_size = 1024; /* too small */
  ss.ss_flags = 0;
  SHOW(sigaltstack(&ss, NULL));
  ss.ss_size = altstack_size;
  ss.ss_flags = 12345;
  SHOW(sigaltstack(&ss, NULL));
  ss.ss_flags = 0;
  SHOW(sigaltstack(&ss, NULL));
  SHOW(sigaltstack(NULL, &old));
  FACT(old.ss_sp == altstack_base && old.ss_size == altstack_size && old.ss_flags == 0);
  install(SIGUSR1, SA_ONSTACK, NULL);
  raise(SIGUSR1);
  printf("SA_ONSTACK: handler on alternate stack %d\n", seen_on_altstack);
  install(SIGUSR1, 0, NULL);
  raise(SIGUSR1);
  printf("without SA_ONSTACK: handler on alternate stack %d\n", seen_on_altstack);
  ss.ss_flags = SS_DISABLE;
  SHOW(sigaltstack(&ss, NULL));
  SHOW(sigaltstack(NULL, &old));
  FACT(old.ss_flags == SS_DISABLE);
  deliveries = 0;
}

/* ---- hardware faults ---- */

static volatile int zero;
static volatile long minus_one = -1;

static void divide_by_zero(void *p) {
  (void)p;
  zero = 10 / zero;
}
static void divide_overflow(void *p) {
  (void)p;
  volatile long big = INT64_MIN;
  minus_one = big / minus_one;
}
__attribute__((noinline)) static void run_ud2(void *p) {
  (void)p;
  __asm__ volatile(".globl ud2_site\nud2_site: ud2");
}
__attribute__((noinline)) static void run_int3(void *p) {
  (void)p;
  __asm__ volatile(".globl int3_site\nint3_site: int3");
}
__attribute__((noinline)) static void run_hlt(void *p) {
  (void)p;
  __asm__ volatile("hlt");
}
static void call_pointer(void *p) { ((void (*)(void))p)(); }
extern char ud2_site[], int3_site[];

static void test_faults(void) {
  SECTION("faults");
  expect_fault("NULL read", read_byte, NULL, NULL);
  expect_fault("NULL write", write_byte, NULL, NULL);
  expect_fault("write to code", write_byte, (void *)read_byte, (void *)read_byte);
  expect_fault("non-canonical address", read_byte, (void *)0x8000000000000000UL, ANY_ADDRESS);
  FACT(fault_info.si_addr == NULL);
  expect_fault("integer divide by zero", divide_by_zero, NULL, ANY_ADDRESS);
  expect_fault("INT64_MIN / -1", divide_overflow, NULL, ANY_ADDRESS);
  expect_fault("ud2", run_ud2, NULL, ud2_site);
  FACT((char *)fault_rip == ud2_site);
  expect_fault("int3", run_int3, NULL, ANY_ADDRESS);
  FACT((char *)fault_rip == int3_site + 1);
  expect_fault("hlt", run_hlt, NULL, ANY_ADDRESS);
  FACT(fault_info.si_addr == NULL);
  char *data = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  data[0] = (char)0xc3; /* ret */
  expect_fault("execute non-executable page", call_pointer, data, data);
  expect_fault("call NULL", call_pointer, NULL, NULL);
  munmap(data, 4096);

  int fd = open("short.bin", O_CREAT | O_RDWR | O_TRUNC, 0644);
  write(fd, "0123456789", 10);
  char *map = mmap(NULL, 8192, PROT_READ, MAP_SHARED, fd, 0);
  FACT(map[0] == '0' && map[9] == '9' && map[10] == 0 && map[4095] == 0);
  expect_fault("read file mapping past EOF page", read_byte, map + 4096 + 3, map + 4096 + 3);
  munmap(map, 8192);
  close(fd);
}

/* ---- handlers that change the interrupted context ---- */

static void skip_faulting_load(int sig, siginfo_t *si, void *context) {
  (void)sig;
  (void)si;
  ucontext_t *uc = context;
  uc->uc_mcontext.gregs[REG_RIP] += 2; /* length of "movl (%rcx), %eax" */
  uc->uc_mcontext.gregs[REG_RAX] = 7;
}

static void unblock_usr2_on_return(int sig, siginfo_t *si, void *context) {
  (void)sig;
  (void)si;
  ucontext_t *uc = context;
  seen_usr2_blocked = sigismember(&uc->uc_sigmask, SIGUSR2);
  sigdelset(&uc->uc_sigmask, SIGUSR2);
}

static void test_ucontext(void) {
  SECTION("ucontext");
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = skip_faulting_load;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGSEGV, &sa, &old);
  int value;
  __asm__ volatile("movl $42, %%eax\n\tmovl (%%rcx), %%eax" : "=a"(value) : "c"(0L) : "memory");
  printf("value after skipped load = %d\n", value);
  sigaction(SIGSEGV, &old, NULL);

  sa.sa_sigaction = unblock_usr2_on_return;
  sigaction(SIGUSR1, &sa, NULL);
  sigset_t usr2;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  sigprocmask(SIG_BLOCK, &usr2, NULL);
  raise(SIGUSR1);
  printf("uc_sigmask had SIGUSR2 %d, blocked after return %d\n", seen_usr2_blocked,
         is_blocked(SIGUSR2));
}

static void test_eintr(void) {
  SECTION("EINTR");
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = recorder;
  sa.sa_flags = SA_SIGINFO; /* no SA_RESTART */
  sigaction(SIGALRM, &sa, NULL);
  int fds[2];
  pipe(fds);
  /* repeating, so that a slow start cannot let the only tick pass before read() blocks */
  struct itimerval ticks = {{0, 50000}, {0, 50000}}, off = {{0, 0}, {0, 0}};
  deliveries = 0;
  setitimer(ITIMER_REAL, &ticks, NULL);
  char c;
  SHOW(read(fds[0], &c, 1));
  setitimer(ITIMER_REAL, &off, NULL);
  printf("SIGALRM delivered: %s, code %s\n", deliveries >= 1 ? "true" : "false",
         codename(seen_signo, seen_code));
  close(fds[0]);
  close(fds[1]);
}

int main(void) {
  test_sending();
  test_sigaction();
  test_flags();
  test_masks();
  test_sigsuspend_wait();
  test_altstack();
  test_faults();
  test_ucontext();
  test_eintr();
  return 0;
}
