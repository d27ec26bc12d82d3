// sig_thread_remote: signals one process sends to one particular thread of another
// (tgkill, tkill, rt_tgsigqueueinfo): that thread, and no other, runs the handler or
// takes the signal with sigwaitinfo, with si_code SI_TKILL (SI_QUEUE) and the sender's
// pid; the errors tgkill gives for a thread that is not in the named process.
// cflags: -lpthread
#include "check.h"
#include <pthread.h>
#include <stdarg.h>
#include <sys/wait.h>

static volatile pid_t worker_tid, main_tid;
static volatile sig_atomic_t got, got_where, got_code, got_value;
static volatile pid_t got_pid;
static pid_t parent_pid;
static int up[2], down[2];      /* child -> parent reports, parent -> child go-aheads */

static void on_sig(int sig, siginfo_t *si, void *ctx) {
  (void)ctx;
  pid_t self = syscall(SYS_gettid);
  got_where = self == worker_tid ? 1 : self == main_tid ? 2 : 3;
  got_code = si->si_code;
  got_pid = si->si_pid;
  got_value = si->si_value.sival_int;
  got = sig;
}

static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void report(const char *fmt, ...) {
  char line[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  line[n++] = '\n';
  write(up[1], line, n);
}

static const char *name(int sig) {
  return sig == SIGRTMIN ? "SIGRTMIN" : signame(sig); /* musl's and glibc's differ */
}

static const char *where(int w) {
  return w == 1 ? "worker" : w == 2 ? "main" : "other";
}

/* Tell the parent we wait (it then sends), and wait in sigsuspend for `sig`. */
static void await_signal(const char *label, int sig, sigset_t *during) {
  got = 0;
  write(up[1], "R", 1);
  char c;
  read(down[0], &c, 1);
  while (!got) sigsuspend(during);
  report("%s: %s in %s, %s, from parent: %d, value %d", label, name(got), where(got_where),
         codename(got, got_code), got_pid == parent_pid, (int)got_value);
  (void)sig;
}

static void *worker(void *arg) {
  (void)arg;
  sigset_t all, none;
  sigemptyset(&all);
  sigaddset(&all, SIGUSR1);
  sigaddset(&all, SIGUSR2);
  sigaddset(&all, SIGRTMIN);
  pthread_sigmask(SIG_BLOCK, &all, &none);
  sigdelset(&none, SIGUSR1);
  sigdelset(&none, SIGUSR2);
  sigdelset(&none, SIGRTMIN);
  worker_tid = syscall(SYS_gettid);
  write(up[1], (void *)&worker_tid, sizeof worker_tid);
  await_signal("tgkill", SIGUSR1, &none);
  await_signal("tkill", SIGUSR1, &none);
  await_signal("rt_tgsigqueueinfo", SIGRTMIN, &none);

  /* Blocked: it waits on this thread, sigwaitinfo takes it. */
  write(up[1], "R", 1);
  char c;
  read(down[0], &c, 1);         /* sent by now */
  sigset_t usr2;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  siginfo_t si;
  int sig = sigwaitinfo(&usr2, &si);
  report("sigwaitinfo: %s, %s, from parent: %d", signame(sig), codename(sig, si.si_code),
         si.si_pid == parent_pid);
  return NULL;
}

static void child(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_sig;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGUSR1, &sa, NULL);
  sigaction(SIGUSR2, &sa, NULL);
  sigaction(SIGRTMIN, &sa, NULL);
  main_tid = syscall(SYS_gettid);
  pthread_t th;
  pthread_create(&th, NULL, worker, NULL);
  pthread_join(th, NULL);
  /* The main thread as the target. */
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  sigprocmask(SIG_BLOCK, &block, &old);
  await_signal("tgkill to main", SIGUSR1, &old);
  _exit(0);
}

/* Wait for the child's "ready", send, let it go on, print its report. */
static void relay(void) {
  char line[256];
  int n = 0;
  while (n < (int)sizeof line - 1 && read(up[0], line + n, 1) == 1 && line[n] != '\n') n++;
  line[n] = 0;
  printf("child: %s\n", line);
}

static void ready(void) {
  char c;
  read(up[0], &c, 1);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  parent_pid = getpid();
  pipe(up);
  pipe(down);
  pid_t pid = fork();
  if (pid == 0) child();
  pid_t tid;
  read(up[0], &tid, sizeof tid);

  SECTION("errors");
  SHOW(syscall(SYS_tgkill, pid, tid, 0));
  SHOW(syscall(SYS_tkill, tid, 0));
  SHOW(syscall(SYS_tgkill, getpid(), tid, 0));     /* not a thread of ours */
  SHOW(syscall(SYS_tgkill, pid, getpid(), SIGUSR1)); /* we are not a thread of it */
  SHOW(syscall(SYS_tgkill, pid, tid, 65));

  SECTION("to the child's second thread");
  ready();
  SHOW(syscall(SYS_tgkill, pid, tid, SIGUSR1));
  write(down[1], "g", 1);
  relay();
  ready();
  SHOW(syscall(SYS_tkill, tid, SIGUSR1));
  write(down[1], "g", 1);
  relay();
  ready();
  siginfo_t si;
  memset(&si, 0, sizeof si);
  si.si_signo = SIGRTMIN;
  si.si_code = SI_QUEUE;
  si.si_pid = getpid();
  si.si_uid = getuid();
  si.si_value.sival_int = 42;
  SHOW(syscall(SYS_rt_tgsigqueueinfo, pid, tid, SIGRTMIN, &si));
  write(down[1], "g", 1);
  relay();
  ready();
  SHOW(syscall(SYS_tgkill, pid, tid, SIGUSR2));
  write(down[1], "g", 1);
  relay();

  SECTION("to the child's main thread");
  ready();
  SHOW(syscall(SYS_tgkill, pid, pid, SIGUSR1));
  write(down[1], "g", 1);
  relay();

  int status;
  waitpid(pid, &status, 0);
  printf("child exit: %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status));
  return 0;
}
