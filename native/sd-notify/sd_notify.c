/*
 * sd_notify for bulkhead: sends one datagram to systemd's NOTIFY_SOCKET from
 * the calling process (systemd's default NotifyAccess=main accepts only the
 * main pid, and the kernel stamps the sender's pid on the datagram; Node has
 * no AF_UNIX datagram sockets). Node-API only, so one build serves every Node
 * line. Path sockets and abstract ones ('@name') both work.
 *
 * notify(path: string, message: Buffer): undefined; throws Error with .code = errno name.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <node_api.h>

static napi_value fail(napi_env env, const char *code, const char *what) {
  char message[256];
  snprintf(message, sizeof message, "sd_notify %s failed: %s", what, code);
  napi_throw_error(env, code, message);
  return NULL;
}

static const char *errno_name(int e) {
  switch (e) {
    case ENOENT: return "ENOENT";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EAGAIN: return "EAGAIN";
    case EMSGSIZE: return "EMSGSIZE";
    case ENOBUFS: return "ENOBUFS";
    case ENOTDIR: return "ENOTDIR";
    case EPROTOTYPE: return "EPROTOTYPE";
    default: return "EIO";
  }
}

static napi_value notify(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) return fail(env, "EINVAL", "arguments");
  char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
  size_t path_len = 0;
  if (napi_get_value_string_utf8(env, argv[0], path, sizeof path, &path_len) != napi_ok) return fail(env, "EINVAL", "path");
  void *data = NULL;
  size_t data_len = 0;
  if (napi_get_buffer_info(env, argv[1], &data, &data_len) != napi_ok) return fail(env, "EINVAL", "message");

  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (path_len == 0 || path_len >= sizeof addr.sun_path || (path[0] != '/' && path[0] != '@')) return fail(env, "EINVAL", "path");
  memcpy(addr.sun_path, path, path_len);
  socklen_t addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path_len);
  if (path[0] == '@') addr.sun_path[0] = '\0'; /* abstract namespace: no trailing NUL counted */
  else addr_len += 1;

  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(env, errno_name(errno), "socket()");
  ssize_t sent;
  do {
    sent = sendto(fd, data, data_len, MSG_NOSIGNAL, (struct sockaddr *)&addr, addr_len);
  } while (sent < 0 && errno == EINTR);
  int saved = errno;
  close(fd);
  if (sent < 0) return fail(env, errno_name(saved), "sendto()");
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "notify", NAPI_AUTO_LENGTH, notify, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "notify", fn) != napi_ok) return NULL;
  return exports;
}
