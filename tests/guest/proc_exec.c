// proc_exec: execve errors, what survives exec (close-on-exec, signal dispositions,
// mask, pending signals, pid), shebang rules, vfork ordering, posix_spawn.
#include "check.h"
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>

extern char **environ;
static const char *self;

static void write_mode_file(const char *name, const char *text, int mode) {
  write_file(name, text);
  chmod(name, mode);
}

static void describe(const char *label, int st) {
  if (WIFEXITED(st))
    printf("%s: exited %d\n", label, WEXITSTATUS(st));
  else if (WIFSIGNALED(st))
    printf("%s: killed by %s\n", label, signame(WTERMSIG(st)));
  else
    printf("%s: status 0x%x\n", label, st);
}

/* ---- the images exec'd by the tests ---- */

static const char *disposition(int sig) {
  struct sigaction sa;
  sigaction(sig, NULL, &sa);
  if (sa.sa_handler == SIG_DFL) return "SIG_DFL";
  if (sa.sa_handler == SIG_IGN) return "SIG_IGN";
  return "handler";
}

static int image_show(int argc, char **argv) {
  printf("  new image: argc=%d", argc);
  for (int i = 3; i < argc; i++) printf(" [%s]", argv[i]);
  printf("\n");
  printf("  same pid: %s\n", argc > 2 && atoi(argv[2]) == getpid() ? "yes" : "no");
  printf("  SIGUSR1 (was handled): %s\n", disposition(SIGUSR1));
  printf("  SIGUSR2 (was ignored): %s\n", disposition(SIGUSR2));
  printf("  SIGPIPE (was ignored): %s\n", disposition(SIGPIPE));
  printf("  SIGINT (was default): %s\n", disposition(SIGINT));
  sigset_t mask, pending;
  sigprocmask(SIG_BLOCK, NULL, &mask);
  sigpending(&pending);
  printf("  blocked: SIGTERM=%d SIGHUP=%d SIGUSR1=%d\n", sigismember(&mask, SIGTERM),
         sigismember(&mask, SIGHUP), sigismember(&mask, SIGUSR1));
  printf("  pending: SIGHUP=%d SIGTERM=%d\n", sigismember(&pending, SIGHUP),
         sigismember(&pending, SIGTERM));
  printf("  fd 5 (cloexec): %s\n", fcntl(5, F_GETFD) == -1 ? errname(errno) : "open");
  printf("  fd 6 (inherited): %s", fcntl(6, F_GETFD) == -1 ? errname(errno) : "open");
  printf(", FD_CLOEXEC=%d\n", fcntl(6, F_GETFD) & FD_CLOEXEC);
  printf("  fd 7 (dup3 O_CLOEXEC): %s\n", fcntl(7, F_GETFD) == -1 ? errname(errno) : "open");
  char buf[16] = {0};
  lseek(6, 0, SEEK_SET);
  read(6, buf, sizeof buf - 1);
  printf("  fd 6 reads: %s\n", buf);
  fflush(stdout);
  return 0;
}

static int image_args(int argc, char **argv) {
  printf("  interpreter got argc=%d argv0=%s", argc, strcmp(argv[0], self) == 0 ? "self" : argv[0]);
  for (int i = 1; i < argc; i++) printf(" [%s]", argv[i]);
  printf("\n");
  fflush(stdout);
  return 0;
}

static int image_late(int argc, char **argv) {
  (void)argc;
  int fd = atoi(argv[2]);
  usleep(300000);
  write(fd, "e", 1);
  return 0;
}

/* ---- the tests ---- */

static void try_exec(const char *label, const char *path, char **argv) {
  pid_t pid = fork();
  if (pid == 0) {
    execve(path, argv, environ);
    printf("%s: execve = -1 %s\n", label, errname(errno));
    fflush(stdout);
    _exit(111);
  }
  int st;
  waitpid(pid, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 111) describe(label, st);
}

static void test_errors(void) {
  SECTION("execve errors");
  mkdir("dir", 0755);
  write_mode_file("plain.txt", "hello\n", 0644);
  write_mode_file("garbage", "\x01\x02\x03garbage, not a program\n", 0755);
  write_mode_file("empty", "", 0755);
  write_mode_file("noshebang.sh", "echo hi\n", 0755);
  write_mode_file("elfstub", "\x7f" "ELF\x02\x01\x01", 0755);
  char *argv[] = {"x", NULL};
  try_exec("missing", "./no-such-program", argv);
  try_exec("missing dir", "./no-such-dir/prog", argv);
  try_exec("not executable", "./plain.txt", argv);
  try_exec("directory", "./dir", argv);
  try_exec("dir component is a file", "./plain.txt/x", argv);
  try_exec("garbage", "./garbage", argv);
  try_exec("empty file", "./empty", argv);
  try_exec("script without #!", "./noshebang.sh", argv);
  try_exec("empty path", "", argv);
  try_exec("truncated ELF", "./elfstub", argv);
  pid_t pid = fork();
  if (pid == 0) {
    long r = syscall(SYS_execve, self, (char **)16, environ);
    printf("bad argv pointer: execve = %ld %s\n", r, errname(errno));
    fflush(stdout);
    _exit(0);
  }
  waitpid(pid, NULL, 0);
}

static void on_usr1(int sig) { (void)sig; }

static void test_inheritance(void) {
  SECTION("what exec keeps");
  pid_t pid = fork();
  if (pid == 0) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGUSR2, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigprocmask(SIG_BLOCK, &block, NULL);
    raise(SIGHUP); /* pending across exec */
    write_mode_file("data.txt", "inherited", 0644);
    int a = open("data.txt", O_RDONLY | O_CLOEXEC);
    int b = open("data.txt", O_RDONLY);
    dup2(a, 5); /* dup2 clears FD_CLOEXEC: set it again */
    fcntl(5, F_SETFD, FD_CLOEXEC);
    dup2(b, 6);
    dup3(b, 7, O_CLOEXEC);
    lseek(6, 3, SEEK_SET);
    char pidtext[16];
    snprintf(pidtext, sizeof pidtext, "%d", getpid());
    char *argv[] = {(char *)self, "show", pidtext, "two words", "", NULL};
    execve(self, argv, environ);
    printf("execve failed: %s\n", errname(errno));
    _exit(1);
  }
  int st;
  waitpid(pid, &st, 0);
  describe("exec'd child", st);
}

static void test_shebang(void) {
  SECTION("#! scripts");
  char cwd[512], line[1200];
  getcwd(cwd, sizeof cwd);
  snprintf(line, sizeof line, "#!%s args\nbody\n", self);
  write_mode_file("one-arg", line, 0755);
  snprintf(line, sizeof line, "#!%s args with  spaces\n", self);
  write_mode_file("spaces", line, 0755);
  snprintf(line, sizeof line, "#! \t%s\targs \t \n", self);
  write_mode_file("blanks", line, 0755);
  snprintf(line, sizeof line, "#!%s", self);
  write_mode_file("no-arg-no-newline", line, 0755);
  write_mode_file("nested", "#!./one-arg\n", 0755);
  write_mode_file("nested2", "#!./nested nested-arg\n", 0755);
  write_mode_file("missing-interp", "#!/no/such/interpreter -x\n", 0755);
  write_mode_file("interp-not-exec", "#!./plain.txt\n", 0755);
  write_mode_file("empty-interp", "#!\n", 0755);
  write_mode_file("not-exec-script", line, 0644);
  char *argv1[] = {"ignored-argv0", "extra1", "extra 2", NULL};
  static const char *scripts[] = {"./one-arg", "./spaces", "./blanks", "./no-arg-no-newline",
                                  "./nested", "./nested2", "./missing-interp",
                                  "./interp-not-exec", "./empty-interp", "./not-exec-script"};
  for (int i = 0; i < 10; i++) {
    printf("%s:\n", scripts[i]);
    fflush(stdout);
    try_exec("  exec", scripts[i], argv1);
  }
  /* the script given by an absolute path: the interpreter gets that path */
  snprintf(line, sizeof line, "%s/one-arg", cwd);
  pid_t pid = fork();
  if (pid == 0) {
    char *argv2[] = {"x", NULL};
    int fd = open("out.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    execve(line, argv2, environ);
    _exit(111);
  }
  waitpid(pid, NULL, 0);
  int fd = open("out.txt", O_RDONLY);
  char buf[2048] = {0};
  read(fd, buf, sizeof buf - 1);
  close(fd);
  printf("absolute script path passed on: %s\n", strstr(buf, line) ? "yes" : "no");
  /* execvp falls back to /bin/sh for ENOEXEC (musl and glibc alike) */
}

static void test_vfork(void) {
  SECTION("vfork");
  int p[2];
  pipe(p);
  pid_t pid = vfork();
  if (pid == 0) {
    write(p[1], "c", 1);
    usleep(200000);
    write(p[1], "C", 1);
    _exit(9);
  }
  write(p[1], "p", 1);
  int st;
  waitpid(pid, &st, 0);
  describe("vfork+_exit", st);
  /* vfork + exec: the parent resumes as soon as the exec succeeded */
  pid = vfork();
  if (pid == 0) {
    char fdtext[16];
    snprintf(fdtext, sizeof fdtext, "%d", p[1]);
    char *argv[] = {(char *)self, "late", fdtext, NULL};
    write(p[1], "c", 1);
    execve(self, argv, environ);
    _exit(127);
  }
  write(p[1], "p", 1);
  waitpid(pid, &st, 0);
  describe("vfork+exec", st);
  /* a failed exec after vfork: the child reports and exits */
  pid = vfork();
  if (pid == 0) {
    char *argv[] = {"x", NULL};
    execve("./no-such-program", argv, environ);
    _exit(errno == ENOENT ? 42 : 43);
  }
  write(p[1], "p", 1);
  waitpid(pid, &st, 0);
  describe("vfork+failed exec", st);
  close(p[1]);
  char buf[32] = {0};
  read(p[0], buf, sizeof buf - 1);
  close(p[0]);
  printf("order through the pipe: %s\n", buf);
}

static void test_spawn(void) {
  SECTION("posix_spawn");
  pid_t pid;
  char *argv[] = {(char *)self, "args", "spawned", NULL};
  fflush(stdout);
  int r = posix_spawn(&pid, self, NULL, NULL, argv, environ);
  int st;
  if (r == 0) waitpid(pid, &st, 0); /* its output and ours: in this order */
  printf("posix_spawn self = %s\n", r ? errname(r) : "0");
  if (r == 0) describe("spawned", st);
  char *argv2[] = {"x", NULL};
  r = posix_spawn(&pid, "./no-such-program", NULL, NULL, argv2, environ);
  printf("posix_spawn missing = %s\n", r ? errname(r) : "0");
  if (r == 0) {
    waitpid(pid, &st, 0);
    describe("  spawned anyway", st);
  }
  r = posix_spawn(&pid, "./plain.txt", NULL, NULL, argv2, environ);
  printf("posix_spawn not executable = %s\n", r ? errname(r) : "0");
  if (r == 0) {
    waitpid(pid, &st, 0);
    describe("  spawned anyway", st);
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "spawn-out.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
  char *argv3[] = {(char *)self, "args", "to a file", NULL};
  r = posix_spawnp(&pid, self, &fa, NULL, argv3, environ);
  printf("posix_spawnp with file actions = %s\n", r ? errname(r) : "0");
  if (r == 0) waitpid(pid, &st, 0);
  posix_spawn_file_actions_destroy(&fa);
  char buf[256] = {0};
  int fd = open("spawn-out.txt", O_RDONLY);
  read(fd, buf, sizeof buf - 1);
  close(fd);
  printf("spawn-out.txt: %s", buf);
}

int main(int argc, char **argv) {
  self = argv[0];
  if (argc > 1 && strcmp(argv[1], "show") == 0) return image_show(argc, argv);
  if (argc > 1 && strncmp(argv[1], "args", 4) == 0) return image_args(argc, argv);
  if (argc > 1 && strcmp(argv[1], "late") == 0) return image_late(argc, argv);
  if (argc > 1) return image_args(argc, argv); /* #! without an argument */
  setvbuf(stdout, NULL, _IONBF, 0);
  if (self[0] != '/') {
    printf("run me by an absolute path\n");
    return 1;
  }
  test_errors();
  test_inheritance();
  test_shebang();
  test_vfork();
  test_spawn();
  return 0;
}
