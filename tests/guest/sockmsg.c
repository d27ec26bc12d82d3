// sockmsg: sendmsg/recvmsg corners: MSG_CTRUNC, MSG_CMSG_CLOEXEC, SCM_CREDENTIALS, sender
// names of AF_UNIX datagrams (paths and the abstract namespace), sendmmsg/recvmmsg, option
// and address length errors.
#include "check.h"
#include <fcntl.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

static int send_fds(int sock, int *fds, int n) {
  char byte = 'x';
  struct iovec iov = {&byte, 1};
  char buf[CMSG_SPACE(sizeof(int) * 4)];
  memset(buf, 0, sizeof buf);
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = buf,
                       .msg_controllen = CMSG_SPACE(sizeof(int) * n)};
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * n);
  memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
  return sendmsg(sock, &msg, 0);
}

static void test_rights(void) {
  SECTION("SCM_RIGHTS corners");
  int sv[2], p[2];
  socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
  pipe(p);
  int two[2] = {p[0], p[1]};
  SHOW(send_fds(sv[0], two, 2));
  char byte;
  struct iovec iov = {&byte, 1};
  char small[CMSG_SPACE(sizeof(int))];
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = small,
                       .msg_controllen = sizeof small};
  SHOW(recvmsg(sv[1], &msg, MSG_CMSG_CLOEXEC));
  printf("  MSG_CTRUNC %d MSG_CMSG_CLOEXEC %d controllen %d\n", !!(msg.msg_flags & MSG_CTRUNC),
         !!(msg.msg_flags & MSG_CMSG_CLOEXEC), (int)msg.msg_controllen);
  int got;
  memcpy(&got, CMSG_DATA(CMSG_FIRSTHDR(&msg)), sizeof got);
  printf("  got fd %d cloexec %d\n", got, fcntl(got, F_GETFD));
  close(got);

  int bad[1] = {77};
  SHOW(send_fds(sv[0], bad, 1));
  int three[1] = {p[1]};
  SHOW(send_fds(sv[0], three, 1));
  msg.msg_controllen = 0;
  msg.msg_control = NULL;
  SHOW(recvmsg(sv[1], &msg, 0));
  printf("  no room: MSG_CTRUNC %d\n", !!(msg.msg_flags & MSG_CTRUNC));

  SHOW(send_fds(p[1], three, 1));
  close(p[0]);
  close(p[1]);
  close(sv[0]);
  close(sv[1]);
}

static void test_credentials(void) {
  SECTION("SCM_CREDENTIALS");
  int sv[2], one = 1;
  socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
  SHOW(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof one));
  SHOW(send(sv[0], "c", 1, 0));
  char byte, buf[CMSG_SPACE(sizeof(struct ucred))];
  struct iovec iov = {&byte, 1};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = buf,
                       .msg_controllen = sizeof buf};
  SHOW(recvmsg(sv[1], &msg, 0));
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  FACT(c && c->cmsg_type == SCM_CREDENTIALS);
  struct ucred cred;
  if (c) memcpy(&cred, CMSG_DATA(c), sizeof cred);
  FACT(c && cred.pid == getpid() && cred.uid == getuid());
  close(sv[0]);
  close(sv[1]);
}

static void show_name(const char *label, struct sockaddr_un *a, socklen_t len) {
  printf("%s: \"%s\" len %d\n", label, len > 2 ? a->sun_path : "", (int)len);
}

static void test_names(void) {
  SECTION("datagram sender names");
  int a = socket(AF_UNIX, SOCK_DGRAM, 0), b = socket(AF_UNIX, SOCK_DGRAM, 0);
  struct sockaddr_un an = {.sun_family = AF_UNIX}, bn = {.sun_family = AF_UNIX}, from;
  strcpy(an.sun_path, "a.sock");
  /* abstract names are host-wide: one per process, so parallel runs do not collide */
  int alen = 1 + snprintf(bn.sun_path + 1, sizeof bn.sun_path - 1, "blinkroot-%d", getpid());
  SHOW(bind(a, (struct sockaddr *)&an, sizeof an));
  SHOW(bind(b, (struct sockaddr *)&bn, offsetof(struct sockaddr_un, sun_path) + alen));
  SHOW(sendto(b, "hi", 2, 0, (struct sockaddr *)&an, sizeof an));
  SHOW(sendto(a, "yo", 2, 0, (struct sockaddr *)&bn, offsetof(struct sockaddr_un, sun_path) + alen));
  char buf[8];
  socklen_t len = sizeof from;
  SHOW(recvfrom(a, buf, sizeof buf, 0, (struct sockaddr *)&from, &len));
  FACT(len == offsetof(struct sockaddr_un, sun_path) + alen && !memcmp(&from, &bn, len));
  len = sizeof from;
  SHOW(recvfrom(b, buf, sizeof buf, 0, (struct sockaddr *)&from, &len));
  show_name("  from", &from, len);
  len = 4;
  SHOW(getsockname(a, (struct sockaddr *)&from, &len));
  printf("  truncated: len %d\n", (int)len);
  len = -1;
  SHOW(getsockname(a, (struct sockaddr *)&from, &len));
  SHOW(bind(b, (struct sockaddr *)&an, 200));
  int c = socket(AF_UNIX, SOCK_DGRAM, 0);
  SHOW(sendto(c, "x", 1, 0, (struct sockaddr *)&an, sizeof an));
  len = sizeof from;
  SHOW(recvfrom(a, buf, sizeof buf, 0, (struct sockaddr *)&from, &len));
  printf("  unnamed sender: len %d\n", (int)len);
  SHOW(unlink("a.sock"));
  close(a);
  close(b);
  close(c);
}

static void test_mmsg(void) {
  SECTION("sendmmsg/recvmmsg");
  int sv[2];
  socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, sv);
  char *words[3] = {"one", "three", "seven"};
  struct iovec iov[3];
  struct mmsghdr out[3];
  memset(out, 0, sizeof out);
  for (int i = 0; i < 3; i++) {
    iov[i].iov_base = words[i];
    iov[i].iov_len = strlen(words[i]);
    out[i].msg_hdr.msg_iov = &iov[i];
    out[i].msg_hdr.msg_iovlen = 1;
  }
  SHOW(sendmmsg(sv[0], out, 3, 0));
  printf("  lengths %u %u %u\n", out[0].msg_len, out[1].msg_len, out[2].msg_len);
  char bufs[4][8];
  struct iovec riov[4];
  struct mmsghdr in[4];
  memset(in, 0, sizeof in);
  for (int i = 0; i < 4; i++) {
    riov[i].iov_base = bufs[i];
    riov[i].iov_len = 4;
    in[i].msg_hdr.msg_iov = &riov[i];
    in[i].msg_hdr.msg_iovlen = 1;
  }
  SHOW(recvmmsg(sv[1], in, 4, MSG_DONTWAIT, NULL));
  for (int i = 0; i < 3; i++)
    printf("  %u bytes, MSG_TRUNC %d\n", in[i].msg_len, !!(in[i].msg_hdr.msg_flags & MSG_TRUNC));
  SHOW(recvmmsg(sv[1], in, 4, MSG_DONTWAIT, NULL));
  struct timespec bad = {0, -1};
  SHOW(recvmmsg(sv[1], in, 4, 0, &bad));
  close(sv[0]);
  close(sv[1]);
}

static void test_options(void) {
  SECTION("option errors");
  int s = socket(AF_UNIX, SOCK_STREAM, 0), v = 0;
  socklen_t len = -1;
  SHOW(getsockopt(s, SOL_SOCKET, SO_TYPE, &v, &len));
  SHOW(setsockopt(s, SOL_SOCKET, SO_RCVBUF, &v, -1));
  SHOW(setsockopt(s, SOL_SOCKET, SO_RCVBUF, NULL, 4));
  SHOW(setsockopt(s, SOL_SOCKET, 12345, NULL, 4));
  len = 2;
  SHOW(getsockopt(s, SOL_SOCKET, SO_TYPE, &v, &len));
  printf("  len %d\n", (int)len);
  SHOW(getsockopt(s, SOL_SOCKET, SO_TYPE, (void *)8, &(socklen_t){4}));
  SHOW(socketpair(AF_UNIX, SOCK_STREAM, 0, (int *)8));
  SHOW(accept4(s, NULL, NULL, 0x1));
  close(s);
}

int main(void) {
  test_rights();
  test_credentials();
  test_names();
  test_mmsg();
  test_options();
  return 0;
}
