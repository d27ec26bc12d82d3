/* Shared helpers for the guest test programs.
 *
 * Every guest program prints only deterministic lines, so that its output is
 * byte-for-byte the same natively (musl or glibc) and under blinkroot:
 *
 *   SHOW(expr)         "expr = 3" or "expr = -1 ENOENT" (errno by our own name
 *                      table, so musl and glibc print the same thing)
 *   CHECK(label, expr) the same with a short label instead of the expression
 *   SHOWP(expr)        for pointer results: "expr = ok" or "expr = -1 EINVAL"
 *   SHOWE(expr)        for calls returning an error number: "expr = 0"/"= EINTR"
 *   FACT(expr)         "expr: true" or "expr: false", for relations between
 *                      values that differ from run to run (times, addresses)
 *   expect_fault(...)  runs a function that should fault, catches the signal
 *                      with sigsetjmp/siglongjmp and prints signal, si_code
 *                      and whether si_addr is the expected address.
 */
#ifndef GUEST_CHECK_H
#define GUEST_CHECK_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define UNUSED __attribute__((unused))

UNUSED static const char *errname(int e) {
  static char other[32];
  switch (e) {
#define E(x) \
  case x:    \
    return #x;
    E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(E2BIG) E(ENOEXEC)
    E(EBADF) E(ECHILD) E(EAGAIN) E(ENOMEM) E(EACCES) E(EFAULT) E(ENOTBLK)
    E(EBUSY) E(EEXIST) E(EXDEV) E(ENODEV) E(ENOTDIR) E(EISDIR) E(EINVAL)
    E(ENFILE) E(EMFILE) E(ENOTTY) E(ETXTBSY) E(EFBIG) E(ENOSPC) E(ESPIPE)
    E(EROFS) E(EMLINK) E(EPIPE) E(EDOM) E(ERANGE) E(EDEADLK) E(ENAMETOOLONG)
    E(ENOLCK) E(ENOSYS) E(ENOTEMPTY) E(ELOOP) E(ENOMSG) E(EIDRM) E(ENODATA)
    E(ETIME) E(EOVERFLOW) E(EILSEQ) E(ENOTSOCK) E(EDESTADDRREQ) E(EMSGSIZE)
    E(EPROTOTYPE) E(ENOPROTOOPT) E(EPROTONOSUPPORT) E(ESOCKTNOSUPPORT)
    E(EOPNOTSUPP) E(EPFNOSUPPORT) E(EAFNOSUPPORT) E(EADDRINUSE)
    E(EADDRNOTAVAIL) E(ENETDOWN) E(ENETUNREACH) E(ECONNABORTED) E(ECONNRESET)
    E(ENOBUFS) E(EISCONN) E(ENOTCONN) E(ETIMEDOUT) E(ECONNREFUSED)
    E(EHOSTUNREACH) E(EALREADY) E(EINPROGRESS) E(ESTALE) E(EDQUOT)
    E(ECANCELED) E(EOWNERDEAD) E(ENOTRECOVERABLE)
#undef E
  }
  snprintf(other, sizeof other, "errno%d", e);
  return other;
}

UNUSED static const char *signame(int sig) {
  static char other[32];
  switch (sig) {
#define S(x) \
  case x:    \
    return #x;
    S(SIGHUP) S(SIGINT) S(SIGQUIT) S(SIGILL) S(SIGTRAP) S(SIGABRT) S(SIGBUS)
    S(SIGFPE) S(SIGKILL) S(SIGUSR1) S(SIGSEGV) S(SIGUSR2) S(SIGPIPE)
    S(SIGALRM) S(SIGTERM) S(SIGCHLD) S(SIGCONT) S(SIGSTOP) S(SIGTSTP)
    S(SIGURG) S(SIGXCPU) S(SIGVTALRM) S(SIGPROF) S(SIGWINCH) S(SIGIO)
    S(SIGSYS)
#undef S
  }
  snprintf(other, sizeof other, "signal%d", sig);
  return other;
}

/* The name of si_code for a given signal, as Linux reports it. */
UNUSED static const char *codename(int sig, int code) {
  static char other[32];
  switch (code) {
    case SI_USER: return "SI_USER";
    case SI_QUEUE: return "SI_QUEUE";
    case SI_TIMER: return "SI_TIMER";
    case SI_TKILL: return "SI_TKILL";
    case SI_KERNEL: return "SI_KERNEL";
  }
  if (sig == SIGSEGV && code == SEGV_MAPERR) return "SEGV_MAPERR";
  if (sig == SIGSEGV && code == SEGV_ACCERR) return "SEGV_ACCERR";
  if (sig == SIGBUS && code == BUS_ADRALN) return "BUS_ADRALN";
  if (sig == SIGBUS && code == BUS_ADRERR) return "BUS_ADRERR";
  if (sig == SIGFPE && code == FPE_INTDIV) return "FPE_INTDIV";
  if (sig == SIGFPE && code == FPE_INTOVF) return "FPE_INTOVF";
  if (sig == SIGILL && code == ILL_ILLOPN) return "ILL_ILLOPN";
  if (sig == SIGILL && code == ILL_ILLOPC) return "ILL_ILLOPC";
  if (sig == SIGTRAP && code == TRAP_BRKPT) return "TRAP_BRKPT";
  snprintf(other, sizeof other, "code%d", code);
  return other;
}

UNUSED static long show_result(const char *text, long r) {
  int e = errno;
  if (r == -1)
    printf("%s = -1 %s\n", text, errname(e));
  else
    printf("%s = %ld\n", text, r);
  errno = e;
  return r;
}

UNUSED static void *show_pointer(const char *text, void *p, void *failed) {
  int e = errno;
  if (p == failed)
    printf("%s = -1 %s\n", text, errname(e));
  else
    printf("%s = ok\n", text);
  errno = e;
  return p;
}

UNUSED static int show_errno_result(const char *text, int r) {
  printf("%s = %s\n", text, r ? errname(r) : "0");
  return r;
}

#define SHOW(expr) show_result(#expr, (long)(expr))
#define CHECK(label, expr) show_result(label, (long)(expr))
#define SHOWP(expr, failed) show_pointer(#expr, (void *)(expr), (void *)(failed))
#define SHOWE(expr) show_errno_result(#expr, (expr))
#define FACT(expr) printf("%s: %s\n", #expr, (expr) ? "true" : "false")
#define SECTION(name) printf("\n== %s ==\n", name)

/* Print a buffer as a quoted C string, escaping anything unprintable. */
/* Create or truncate path with text in it (a fixture for the file tests). */
UNUSED static void write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  write(fd, text, strlen(text));
  close(fd);
}

/* qsort comparator for arrays of C strings (listings are printed sorted). */
UNUSED static int compare_strings(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

UNUSED static void print_quoted(const char *label, const void *buf, long len) {
  const unsigned char *p = buf;
  printf("%s: \"", label);
  for (long i = 0; i < len; i++) {
    if (p[i] == '\n')
      printf("\\n");
    else if (p[i] == '"' || p[i] == '\\')
      printf("\\%c", p[i]);
    else if (p[i] >= 32 && p[i] < 127)
      putchar(p[i]);
    else
      printf("\\x%02x", p[i]);
  }
  printf("\" (%ld bytes)\n", len);
}

/* ---- catching synchronous faults ------------------------------------ */

#define ANY_ADDRESS ((void *)-1)

static sigjmp_buf fault_jump;
static siginfo_t fault_info;
static greg_t fault_rip;

UNUSED static void fault_catcher(int sig, siginfo_t *si, void *context) {
  (void)sig;
  fault_info = *si;
  fault_rip = ((ucontext_t *)context)->uc_mcontext.gregs[REG_RIP];
  siglongjmp(fault_jump, 1);
}

/* Run fn(arg), which must fault. Prints e.g.
 *   "label: SIGSEGV SEGV_MAPERR si_addr=expected"
 * Leaves the siginfo in fault_info and the faulting RIP in fault_rip. */
UNUSED static int expect_fault(const char *label, void (*fn)(void *), void *arg,
                               const void *addr) {
  static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP};
  struct sigaction sa, old[5];
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = fault_catcher;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  for (int i = 0; i < 5; i++) sigaction(sigs[i], &sa, &old[i]);
  int faulted = 0;
  memset(&fault_info, 0, sizeof fault_info);
  if (sigsetjmp(fault_jump, 1) == 0) {
    fn(arg);
    printf("%s: no fault\n", label);
  } else {
    faulted = 1;
    printf("%s: %s %s", label, signame(fault_info.si_signo),
           codename(fault_info.si_signo, fault_info.si_code));
    if (addr != ANY_ADDRESS)
      printf(" si_addr=%s", fault_info.si_addr == addr ? "expected" : "WRONG");
    printf("\n");
  }
  for (int i = 0; i < 5; i++) sigaction(sigs[i], &old[i], NULL);
  return faulted;
}

/* Small functions to hand to expect_fault. */
UNUSED __attribute__((noinline)) static void read_byte(void *p) {
  (void)*(volatile char *)p;
}
UNUSED __attribute__((noinline)) static void write_byte(void *p) {
  *(volatile char *)p = 1;
}

#endif
