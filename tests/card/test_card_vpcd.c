/* The vpcd connector against a fake vpcd on loopback (no pcscd): frames
 * split into single bytes are reassembled; GET ATR is answered at any
 * time; power/reset controls get no reply and end the session; a dropped
 * connection is followed by a reconnect; SIGTERM stops the card with exit
 * status 0 and its state intact. Every wait is bounded by a poll timeout
 * (a failure, not a time measurement). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "card_util.h"
#include "scpkit/buf.h"
#include "test.h"

#define WAIT_MS 20000

static volatile sig_atomic_t stop_flag;
static void on_term(int s)
{
    (void)s;
    stop_flag = 1;
}

static int listen_any(unsigned *port)
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 4) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) != 0)
        return -1;
    *port = ntohs(a.sin_port);
    return fd;
}

static int accept_wait(int lfd)
{
    struct pollfd p = { .fd = lfd, .events = POLLIN };
    if (poll(&p, 1, WAIT_MS) != 1)
        return -1;
    return accept(lfd, NULL, NULL);
}

/* Send a frame one byte at a time (the worst split there is). */
static void send_split(int fd, const uint8_t *p, size_t n)
{
    uint8_t f[300];
    f[0] = (uint8_t)(n >> 8);
    f[1] = (uint8_t)n;
    memcpy(f + 2, p, n);
    for (size_t k = 0; k < n + 2; k++) {
        CHECK(send(fd, f + k, 1, MSG_NOSIGNAL) == 1);
        usleep(200);
    }
}

static int recv_exact(int fd, uint8_t *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        struct pollfd pf = { .fd = fd, .events = POLLIN };
        ssize_t m;
        if (poll(&pf, 1, WAIT_MS) != 1)
            return -1;
        m = recv(fd, p + got, n - got, 0);
        if (m <= 0)
            return -1;
        got += (size_t)m;
    }
    return 0;
}

/* Receive one frame; returns its length or -1. */
static int recv_frame(int fd, uint8_t *p, size_t cap)
{
    uint8_t h[2];
    size_t n;
    if (recv_exact(fd, h, 2) != 0)
        return -1;
    n = ((size_t)h[0] << 8) | h[1];
    if (n > cap || recv_exact(fd, p, n) != 0)
        return -1;
    return (int)n;
}

static int apdu(int fd, const char *hex, uint8_t *resp, size_t cap)
{
    uint8_t b[300];
    size_t n = 0;
    CHECK_OK(scp_hex_decode(hex, b, sizeof(b), &n));
    send_split(fd, b, n);
    return recv_frame(fd, resp, cap);
}

static void run_card(const char *dir, unsigned port)
{
    struct sigaction sa;
    scp_card *c = NULL;
    int rc;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    if (scp_card_open(dir, &c, NULL, 0) != SCP_OK)
        _exit(3);
    rc = scp_card_run_vpcd(c, "127.0.0.1", port, &stop_flag, NULL);
    scp_card_close(c);
    _exit(rc == SCP_OK ? 0 : 4);
}

int main(void)
{
    char dir[256];
    scp_card_init_opts o = { .profile = "yubikey", .scp_i = -1, .kvn = -1 };
    uint8_t r[400], atr[40], ctl;
    unsigned port = 0;
    int lfd, fd, n, status = 0;
    size_t atr_len;
    pid_t pid;
    scp_card *c = NULL;

    tc_tmpdir(dir, sizeof(dir));
    CHECK_OK(scp_card_init(dir, &o));
    CHECK_OK(scp_card_open(dir, &c, NULL, 0));
    atr_len = scp_card_atr(c, atr, sizeof(atr));
    scp_card_close(c);
    lfd = listen_any(&port);
    CHECK(lfd >= 0);
    pid = fork();
    if (pid == 0) {
        close(lfd);
        run_card(dir, port);
    }
    fd = accept_wait(lfd);
    CHECK(fd >= 0);
    ctl = 0x04; /* GET ATR */
    send_split(fd, &ctl, 1);
    n = recv_frame(fd, r, sizeof(r));
    CHECK_MEM(r, (size_t)(n < 0 ? 0 : n), atr, atr_len);
    ctl = 0x01; /* power on: no reply */
    send_split(fd, &ctl, 1);
    n = apdu(fd, "00A4040008A000000151000000", r, sizeof(r));
    CHECK(n >= 2 && r[n - 2] == 0x90 && r[n - 1] == 0x00);
    n = apdu(fd, "00CA9F7F00", r, sizeof(r));
    CHECK(n == 47 && r[0] == 0x9F && r[3] == 0x40 && r[45] == 0x90);
    /* an IU leaves a handshake pending; a reset ends it: EA out of sequence */
    n = apdu(fd, "8050000008 0011223344556677 00", r, sizeof(r));
    CHECK(n == 10 + 3 + 16 + 2 && r[n - 2] == 0x90);
    ctl = 0x02;
    send_split(fd, &ctl, 1);
    ctl = 0x04;
    send_split(fd, &ctl, 1);
    n = recv_frame(fd, r, sizeof(r));
    CHECK(n == (int)atr_len);
    n = apdu(fd, "8482330010 00112233445566778899AABBCCDDEEFF", r, sizeof(r));
    CHECK(n == 2 && r[0] == 0x69 && r[1] == 0x85);
    /* pcscd goes away: the card comes back on its own */
    close(fd);
    fd = accept_wait(lfd);
    CHECK(fd >= 0);
    n = apdu(fd, "00CA9F7F", r, sizeof(r));
    CHECK(n == 47 && r[45] == 0x90);
    /* SIGTERM: exit status 0, state intact */
    kill(pid, SIGTERM);
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(fd);
    close(lfd);
    CHECK_OK(scp_card_open(dir, &c, NULL, 0));
    scp_card_close(c);
    tc_rmdir(dir);
    return test_done("test_card_vpcd");
}
