// args_env: argv, envp and the auxiliary vector the kernel puts on the initial stack.
// args: one "two words" '' --flag=x
#include "check.h"
#include <elf.h>
#include <sys/auxv.h>

extern char **environ;
extern char _start[];

static void show_argv(int argc, char **argv) {
  SECTION("argv");
  printf("argc = %d\n", argc);
  for (int i = 0; i < argc; i++) printf("argv[%d] = \"%s\"\n", i, argv[i]);
  FACT(argv[argc] == NULL);
}

static void show_envp(int argc, char **argv, char **envp) {
  SECTION("envp");
  int n = 0;
  for (char **e = envp; *e; e++, n++) printf("env[%d] = \"%s\"\n", n, *e);
  FACT(envp == argv + argc + 1);
  FACT(environ == envp);
  printf("getenv(\"TZ\") = \"%s\"\n", getenv("TZ"));
  printf("getenv(\"MISSING\") is NULL: %s\n", getenv("MISSING") ? "false" : "true");
}

static void show_program_headers(void) {
  const Elf64_Phdr *phdr = (const Elf64_Phdr *)getauxval(AT_PHDR);
  unsigned long phnum = getauxval(AT_PHNUM);
  int loads = 0, has_executable_load = 0;
  for (unsigned long i = 0; i < phnum; i++) {
    if (phdr[i].p_type != PT_LOAD) continue;
    loads++;
    if (phdr[i].p_flags & PF_X) has_executable_load = 1;
  }
  printf("AT_PHNUM = %lu\n", phnum);
  printf("AT_PHENT == sizeof(Elf64_Phdr): %s\n",
         getauxval(AT_PHENT) == sizeof(Elf64_Phdr) ? "true" : "false");
  printf("PT_LOAD segments via AT_PHDR = %d, one executable: %s\n", loads,
         has_executable_load ? "true" : "false");
}

static void show_auxv(char **argv) {
  SECTION("auxv");
  printf("AT_PAGESZ = %lu\n", getauxval(AT_PAGESZ));
  printf("AT_CLKTCK = %lu\n", getauxval(AT_CLKTCK));
  FACT(getauxval(AT_ENTRY) != 0);
  FACT(getauxval(AT_ENTRY) == (unsigned long)_start);
  show_program_headers();

  const unsigned char *random = (const unsigned char *)getauxval(AT_RANDOM);
  unsigned any = 0;
  for (int i = 0; i < 16; i++) any |= random[i];
  printf("AT_RANDOM: 16 bytes readable, not all zero: %s\n", any ? "true" : "false");

  const char *execfn = (const char *)getauxval(AT_EXECFN);
  printf("AT_EXECFN = \"%s\"\n", execfn);
  FACT(strcmp(execfn, argv[0]) == 0);
  const char *platform = (const char *)getauxval(AT_PLATFORM);
  printf("AT_PLATFORM = \"%s\"\n", platform ? platform : "(none)");

  FACT(getauxval(AT_HWCAP) != 0);
  printf("AT_SECURE = %lu\n", getauxval(AT_SECURE));
  FACT(getauxval(AT_UID) == getuid());
  FACT(getauxval(AT_EUID) == geteuid());
  FACT(getauxval(AT_GID) == getgid());
  FACT(getauxval(AT_EGID) == getegid());
  /* AT_BASE is the interpreter's load address: 0 for static programs. */
  printf("AT_BASE != 0: %s\n", getauxval(AT_BASE) ? "true" : "false");
  errno = 0;
  getauxval(12345);
  printf("getauxval(12345) errno = %s\n", errname(errno));
}

static void show_stack(char **argv) {
  SECTION("stack");
  int local;
  FACT((char *)&local < argv[0]);
  FACT((uintptr_t)argv % 8 == 0);
}

int main(int argc, char **argv, char **envp) {
  show_argv(argc, argv);
  show_envp(argc, argv, envp);
  show_auxv(argv);
  show_stack(argv);
  return 0;
}
