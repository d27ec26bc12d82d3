// sockets: AF_UNIX stream/dgram pairs, SCM_RIGHTS, AF_UNIX paths, TCP and UDP on loopback, IPv6, options.
#include "check.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

static void test_socketpair(void) {
  SECTION("socketpair");
  int sv[2];
  char buf[64];
  SHOW(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  SHOW(send(sv[0], "hello", 5, 0));
  SHOW(write(sv[0], " world", 6));
  SHOW(recv(sv[1], buf, 3, MSG_PEEK));
  SHOW(recv(sv[1], buf, sizeof buf, 0)); /* a stream merges writes */
  print_quoted("stream", buf, 11);
  SHOW(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT));
  SHOW(shutdown(sv[0], SHUT_WR));
  SHOW(recv(sv[1], buf, sizeof buf, 0));
  signal(SIGPIPE, SIG_IGN);
  SHOW(send(sv[0], "x", 1, 0));
  SHOW(send(sv[0], "x", 1, MSG_NOSIGNAL));
  SHOW(shutdown(sv[0], 12345));
  close(sv[0]);
  close(sv[1]);

  SHOW(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv));
  SHOW(fcntl(sv[0], F_GETFD));
  SHOW(!!(fcntl(sv[0], F_GETFL) & O_NONBLOCK));
  SHOW(send(sv[0], "ab", 2, 0));
  SHOW(send(sv[0], "cde", 3, 0));
  SHOW(recv(sv[1], buf, sizeof buf, 0)); /* datagrams keep their boundaries */
  SHOW(recv(sv[1], buf, 1, 0));          /* truncated */
  SHOW(recv(sv[1], buf, sizeof buf, 0));
  SHOW(send(sv[0], "fghij", 5, 0));
  SHOW(recv(sv[1], buf, 2, MSG_TRUNC)); /* real length */
  close(sv[0]);
  close(sv[1]);
  SHOW(socketpair(AF_INET, SOCK_STREAM, 0, sv));
  SHOW(socketpair(AF_UNIX, SOCK_STREAM, IPPROTO_TCP, sv));
}

static void test_scm_rights(void) {
  SECTION("SCM_RIGHTS");
  int sv[2], p[2];
  socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  pipe(p);
  char byte = 'F';
  struct iovec iov = {&byte, 1};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control;
  memset(&control, 0, sizeof control);
  struct msghdr msg = {0};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;
  struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cmsg), &p[0], sizeof(int));
  SHOW(sendmsg(sv[0], &msg, 0));
  close(p[0]); /* the receiver gets its own reference */

  char got = 0;
  struct iovec riov = {&got, 1};
  struct msghdr rmsg = {0};
  memset(&control, 0, sizeof control);
  rmsg.msg_iov = &riov;
  rmsg.msg_iovlen = 1;
  rmsg.msg_control = control.buf;
  rmsg.msg_controllen = sizeof control.buf;
  SHOW(recvmsg(sv[1], &rmsg, 0));
  printf("  byte %c, flags %d\n", got, rmsg.msg_flags);
  struct cmsghdr *rc = CMSG_FIRSTHDR(&rmsg);
  FACT(rc && rc->cmsg_level == SOL_SOCKET && rc->cmsg_type == SCM_RIGHTS);
  FACT(rc && rc->cmsg_len == CMSG_LEN(sizeof(int)));
  int received = -1;
  if (rc) memcpy(&received, CMSG_DATA(rc), sizeof(int));
  printf("  received fd %d\n", received);
  write(p[1], "through", 7);
  char buf[16];
  SHOW(read(received, buf, sizeof buf));
  print_quoted("read via received fd", buf, 7);
  close(received);
  close(p[1]);
  close(sv[0]);
  close(sv[1]);
}

static void test_unix_paths(void) {
  SECTION("AF_UNIX bind/listen/connect/accept");
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  strcpy(addr.sun_path, "sock");
  socklen_t len = offsetof(struct sockaddr_un, sun_path) + 5;
  int server = SHOW(socket(AF_UNIX, SOCK_STREAM, 0));
  SHOW(bind(server, (struct sockaddr *)&addr, len));
  SHOW(bind(server, (struct sockaddr *)&addr, len));
  int other = socket(AF_UNIX, SOCK_STREAM, 0);
  SHOW(bind(other, (struct sockaddr *)&addr, len));
  close(other);
  SHOW(listen(server, 4));
  struct sockaddr_un name;
  socklen_t namelen = sizeof name;
  SHOW(getsockname(server, (struct sockaddr *)&name, &namelen));
  printf("  name \"%s\" len %d\n", name.sun_path, (int)namelen);

  int client = SHOW(socket(AF_UNIX, SOCK_STREAM, 0));
  SHOW(connect(client, (struct sockaddr *)&addr, len));
  int conn = SHOW(accept(server, NULL, NULL));
  namelen = sizeof name;
  SHOW(getpeername(client, (struct sockaddr *)&name, &namelen));
  printf("  peer \"%s\"\n", name.sun_path);
  SHOW(write(client, "ping", 4));
  char buf[16];
  SHOW(read(conn, buf, sizeof buf));
  SHOW(write(conn, "pong", 4));
  SHOW(read(client, buf, sizeof buf));
  print_quoted("reply", buf, 4);
  struct ucred cred;
  socklen_t credlen = sizeof cred;
  SHOW(getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &credlen));
  FACT(cred.pid == getpid() && cred.uid == getuid() && cred.gid == getgid());
  close(conn);
  SHOW(read(client, buf, sizeof buf));
  close(client);

  fcntl(server, F_SETFL, O_NONBLOCK);
  SHOW(accept(server, NULL, NULL)); /* nothing pending */
  int unlistened = socket(AF_UNIX, SOCK_STREAM, 0);
  SHOW(accept4(unlistened, NULL, NULL, 0));
  SHOW(syscall(SYS_accept4, server, NULL, NULL, 0x12345));
  close(unlistened);
  close(server);

  int missing = socket(AF_UNIX, SOCK_STREAM, 0);
  strcpy(addr.sun_path, "nothing-here");
  SHOW(connect(missing, (struct sockaddr *)&addr, sizeof addr));
  close(open("not-a-socket", O_CREAT | O_WRONLY, 0644));
  strcpy(addr.sun_path, "not-a-socket");
  SHOW(connect(missing, (struct sockaddr *)&addr, sizeof addr));
  strcpy(addr.sun_path, "sock");
  SHOW(connect(missing, (struct sockaddr *)&addr, sizeof addr)); /* nobody listens */
  close(missing);
  SHOW(unlink("sock"));

  int d1 = socket(AF_UNIX, SOCK_DGRAM, 0), d2 = socket(AF_UNIX, SOCK_DGRAM, 0);
  strcpy(addr.sun_path, "dgram");
  SHOW(bind(d1, (struct sockaddr *)&addr, sizeof addr));
  SHOW(sendto(d2, "datagram", 8, 0, (struct sockaddr *)&addr, sizeof addr));
  SHOW(recvfrom(d1, buf, sizeof buf, 0, NULL, NULL));
  close(d1);
  close(d2);
}

static int nonblocking_connect(int fd, struct sockaddr *addr, socklen_t len) {
  fcntl(fd, F_SETFL, O_NONBLOCK);
  int r = connect(fd, addr, len);
  printf("  connect: 0 or EINPROGRESS: %s\n", r == 0 || errno == EINPROGRESS ? "true" : "false");
  struct pollfd pfd = {fd, POLLOUT, 0};
  int ready = poll(&pfd, 1, 5000);
  int err = -1;
  socklen_t errlen = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen);
  printf("  poll POLLOUT %d, SO_ERROR %s\n", ready == 1 && (pfd.revents & POLLOUT),
         err ? errname(err) : "0");
  fcntl(fd, F_SETFL, 0);
  return err;
}

static void exchange(int client, int server) {
  int conn = accept(server, NULL, NULL);
  FACT(conn >= 0);
  char buf[64];
  SHOW(send(client, "over tcp", 8, 0));
  SHOW(recv(conn, buf, 8, MSG_WAITALL));
  SHOW(send(conn, "back", 4, 0));
  SHOW(recv(client, buf, 4, MSG_WAITALL));
  print_quoted("reply", buf, 4);
  SHOW(shutdown(client, SHUT_WR));
  SHOW(recv(conn, buf, sizeof buf, 0));
  close(conn);
}

static void test_tcp4(void) {
  SECTION("AF_INET TCP");
  int server = SHOW(socket(AF_INET, SOCK_STREAM, 0));
  int one = 1, value = 0;
  socklen_t vlen = sizeof value;
  SHOW(setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
  SHOW(getsockopt(server, SOL_SOCKET, SO_REUSEADDR, &value, &vlen));
  printf("  SO_REUSEADDR = %d\n", value);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  SHOW(bind(server, (struct sockaddr *)&addr, sizeof addr));
  SHOW(bind(server, (struct sockaddr *)&addr, sizeof addr));
  socklen_t alen = sizeof addr;
  SHOW(getsockname(server, (struct sockaddr *)&addr, &alen));
  FACT(addr.sin_port != 0 && addr.sin_addr.s_addr == htonl(INADDR_LOOPBACK));
  SHOW(listen(server, 8));

  int unconnected = socket(AF_INET, SOCK_STREAM, 0);
  SHOW(send(unconnected, "x", 1, MSG_NOSIGNAL));
  SHOW(shutdown(unconnected, SHUT_RDWR));
  close(unconnected);
  int client = SHOW(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  nonblocking_connect(client, (struct sockaddr *)&addr, sizeof addr);
  struct sockaddr_in local, peer;
  socklen_t llen = sizeof local, plen = sizeof peer;
  getsockname(client, (struct sockaddr *)&local, &llen);
  getpeername(client, (struct sockaddr *)&peer, &plen);
  FACT(peer.sin_port == addr.sin_port && local.sin_port != addr.sin_port);
  SHOW(setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one));
  vlen = sizeof value;
  SHOW(getsockopt(client, IPPROTO_TCP, TCP_NODELAY, &value, &vlen));
  printf("  TCP_NODELAY = %d\n", value);
  vlen = sizeof value;
  SHOW(getsockopt(client, SOL_SOCKET, SO_TYPE, &value, &vlen));
  printf("  SO_TYPE is SOCK_STREAM: %d\n", value == SOCK_STREAM);
  vlen = sizeof value;
  SHOW(getsockopt(client, SOL_SOCKET, SO_RCVBUF, &value, &vlen));
  FACT(value > 0);
  SHOW(getsockopt(client, 12345, 1, &value, &vlen));
  SHOW(getsockopt(client, SOL_SOCKET, 12345, &value, &vlen));
  exchange(client, server);
  close(client);

  int refused = socket(AF_INET, SOCK_STREAM, 0);
  close(server); /* nothing listens on that port now */
  SHOW(connect(refused, (struct sockaddr *)&addr, sizeof addr));
  close(refused);
}

static void test_udp4(void) {
  SECTION("AF_INET UDP");
  int a = SHOW(socket(AF_INET, SOCK_DGRAM, 0)), b = SHOW(socket(AF_INET, SOCK_DGRAM, 0));
  struct sockaddr_in addr = {.sin_family = AF_INET}, from, baddr;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  baddr = addr;
  SHOW(bind(a, (struct sockaddr *)&addr, sizeof addr));
  SHOW(bind(b, (struct sockaddr *)&baddr, sizeof baddr));
  socklen_t len = sizeof addr;
  getsockname(a, (struct sockaddr *)&addr, &len);
  len = sizeof baddr;
  getsockname(b, (struct sockaddr *)&baddr, &len);
  SHOW(sendto(b, "udp one", 7, 0, (struct sockaddr *)&addr, sizeof addr));
  SHOW(sendto(b, "udp two!", 8, 0, (struct sockaddr *)&addr, sizeof addr));
  char buf[64];
  len = sizeof from;
  SHOW(recvfrom(a, buf, sizeof buf, 0, (struct sockaddr *)&from, &len));
  FACT(from.sin_port == baddr.sin_port && from.sin_addr.s_addr == htonl(INADDR_LOOPBACK));
  SHOW(recvfrom(a, buf, sizeof buf, 0, NULL, NULL));
  SHOW(recv(a, buf, sizeof buf, MSG_DONTWAIT));
  SHOW(send(b, "x", 1, 0)); /* not connected */
  SHOW(connect(b, (struct sockaddr *)&addr, sizeof addr));
  SHOW(send(b, "connected", 9, 0));
  SHOW(recv(a, buf, sizeof buf, 0));
  close(a);
  close(b);
}

static void test_inet6(void) {
  SECTION("AF_INET6");
  int server = socket(AF_INET6, SOCK_STREAM, 0);
  struct sockaddr_in6 addr = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
  if (server < 0 || bind(server, (struct sockaddr *)&addr, sizeof addr) != 0) {
    printf("IPv6 loopback unavailable: skipped\n");
    if (server >= 0) close(server);
    return;
  }
  printf("IPv6 loopback available\n");
  socklen_t len = sizeof addr;
  SHOW(getsockname(server, (struct sockaddr *)&addr, &len));
  FACT(addr.sin6_port != 0 && len == sizeof addr);
  SHOW(listen(server, 4));
  int client = socket(AF_INET6, SOCK_STREAM, 0);
  nonblocking_connect(client, (struct sockaddr *)&addr, sizeof addr);
  exchange(client, server);
  char text[INET6_ADDRSTRLEN];
  inet_ntop(AF_INET6, &addr.sin6_addr, text, sizeof text);
  printf("  address %s\n", text);
  close(client);
  close(server);
}

static void test_errors(void) {
  SECTION("socket errors");
  SHOW(socket(12345, SOCK_STREAM, 0));
  SHOW(socket(AF_INET, 999, 0));
  SHOW(socket(AF_INET, SOCK_STREAM, IPPROTO_UDP));
  SHOW(socket(AF_UNIX, SOCK_STREAM, 5));
  int fd = open("not-a-socket", O_RDONLY);
  SHOW(listen(fd, 1));
  SHOW(send(fd, "x", 1, 0));
  close(fd);
  SHOW(listen(-1, 1));
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET};
  SHOW(bind(s, (struct sockaddr *)&addr, 3));
  SHOW(getpeername(s, (struct sockaddr *)&addr, &(socklen_t){sizeof addr}));
  SHOW(accept(s, NULL, NULL));
  addr.sin_addr.s_addr = htonl(0x01020304); /* not a local address */
  SHOW(bind(s, (struct sockaddr *)&addr, sizeof addr));
  close(s);
}

int main(void) {
  test_socketpair();
  test_scm_rights();
  test_unix_paths();
  test_tcp4();
  test_udp4();
  test_inet6();
  test_errors();
  return 0;
}
