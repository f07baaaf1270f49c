/* scpkit card: the connector to vsmartcard's vpcd driver inside pcscd.
 * vpcd listens (tcp 35963 for slot 0); the card connects as a client.
 * Every message is a 2-byte big-endian length and a payload. A 1-byte
 * payload is control: 00 power off, 01 power on, 02 reset (no reply),
 * 04 get ATR (reply: the ATR). A longer one is a C-APDU, answered with
 * one R-APDU. Frames may arrive split; pcscd may go away at any time:
 * the card then reconnects with backoff, until *stop is set. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "card/internal.h"
#include "core/guard.h"

#define VPCD_POLL_MS 200
#define VPCD_BACKOFF_MIN_MS 100
#define VPCD_BACKOFF_MAX_MS 2000
#define VPCD_MSG_MAX 65535

/* Connect to host:port; -1 when nobody listens. */
static int vpcd_connect(const char *host, unsigned port)
{
    struct addrinfo hints, *res = NULL, *ai;
    char svc[16];
    int fd = -1, one = 1;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(svc, sizeof(svc), "%u", port);
    if (getaddrinfo(host, svc, &hints, &res) != 0)
        return -1;
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd >= 0) {
        /* recv wakes every VPCD_POLL_MS to look at the stop flag: one
         * system call per read instead of poll + recv */
        struct timeval tv = { 0, VPCD_POLL_MS * 1000 };
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    }
    return fd;
}

/* vpcd sends a frame's length and its body in two writes without
 * TCP_NODELAY: Nagle holds the body until the length is acknowledged, and
 * a delayed ACK here would cost ~40 ms per APDU. Acknowledge at once (Linux
 * clears the flag after use, so it is set again after every length read).
 * An APDU's body needs no such ACK: the R-APDU that answers it carries one. */
static void quick_ack(int fd)
{
#ifdef TCP_QUICKACK
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
#else
    (void)fd;
#endif
}

/* Read exactly n bytes, waking every VPCD_POLL_MS (the socket's receive
 * timeout) to look at *stop; ack: acknowledge each read at once.
 * SCP_OK, SCP_E_IO (peer gone), or SCP_E_STATE (stop requested). */
static int read_exact(int fd, uint8_t *p, size_t n, int ack, volatile sig_atomic_t *stop)
{
    size_t got = 0;
    while (got < n) {
        ssize_t m;
        if (*stop)
            return SCP_E_STATE;
        m = recv(fd, p + got, n - got, 0);
        if (m < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (m <= 0)
            return SCP_E_IO;
        got += (size_t)m;
        if (ack)
            quick_ack(fd);
    }
    return SCP_OK;
}

static int send_frame(int fd, const uint8_t *p, size_t n)
{
    uint8_t hdr[2] = { (uint8_t)(n >> 8), (uint8_t)n };
    struct iovec iov[2] = { { hdr, 2 }, { (void *)p, n } };
    struct msghdr mh;
    size_t total = n + 2, sent = 0;
    ENSURE(n <= VPCD_MSG_MAX, SCP_E_LENGTH);
    while (sent < total) {
        ssize_t m;
        memset(&mh, 0, sizeof(mh));
        mh.msg_iov = iov;
        mh.msg_iovlen = 2;
        m = sendmsg(fd, &mh, MSG_NOSIGNAL);
        if (m < 0 && errno == EINTR)
            continue;
        ENSURE(m > 0, SCP_E_IO);
        sent += (size_t)m;
        /* advance the iovecs past what went out */
        for (int k = 0; k < 2; k++) {
            size_t d = (size_t)m < iov[k].iov_len ? (size_t)m : iov[k].iov_len;
            iov[k].iov_base = (uint8_t *)iov[k].iov_base + d;
            iov[k].iov_len -= d;
            m -= (ssize_t)d;
        }
    }
    return SCP_OK;
}

static int on_control(scp_card *c, int fd, uint8_t ctl)
{
    uint8_t atr[CARD_ATR_MAX];
    size_t n;
    switch (ctl) {
    case 0x00: /* power off */
    case 0x01: /* power on */
    case 0x02: /* reset */
        scp_card_reset(c);
        return SCP_OK;
    case 0x04:
        n = scp_card_atr(c, atr, sizeof(atr));
        return send_frame(fd, atr, n);
    default:
        return SCP_OK; /* unknown control: vpcd expects no reply */
    }
}

/* Serve one connection until the peer goes or *stop is set. */
static int serve(scp_card *c, int fd, uint8_t *in, uint8_t *out, volatile sig_atomic_t *stop)
{
    for (;;) {
        uint8_t hdr[2];
        size_t n, rn = 0;
        int rc = read_exact(fd, hdr, 2, 1, stop);
        if (rc != SCP_OK)
            return rc;
        n = ((size_t)hdr[0] << 8) | hdr[1];
        /* the frame is read whole even if a stop comes in between */
        /* a control frame gets no reply to carry the ACK: send it now */
        GUARD(read_exact(fd, in, n, n == 1, stop));
        if (n == 0)
            continue;
        if (n == 1) {
            GUARD(on_control(c, fd, in[0]));
            continue;
        }
        rc = scp_card_process(c, in, n, out, SCP_RAPDU_MAX, &rn);
        if (rc != SCP_OK) {
            /* a local failure (the state file could not be written):
             * nothing changed; the host sees "memory failure" */
            out[0] = 0x65;
            out[1] = 0x81;
            rn = 2;
        }
        if (rn > VPCD_MSG_MAX)
            rn = VPCD_MSG_MAX;
        GUARD(send_frame(fd, out, rn));
    }
}

static void sleep_ms(unsigned ms, volatile sig_atomic_t *stop)
{
    for (unsigned t = 0; t < ms && !*stop; t += 50) {
        struct timespec ts = { 0, 50 * 1000000L };
        nanosleep(&ts, NULL);
    }
}

int scp_card_run_vpcd(scp_card *c, const char *host, unsigned port, volatile sig_atomic_t *stop,
                      FILE *log)
{
    unsigned backoff = VPCD_BACKOFF_MIN_MS;
    int said_waiting = 0;
    uint8_t *in, *out;

    ENSURE(c != NULL && host != NULL && stop != NULL && port > 0 && port < 65536, SCP_E_ARG);
    in = malloc(VPCD_MSG_MAX);
    out = malloc(SCP_RAPDU_MAX);
    if (in == NULL || out == NULL) {
        free(in);
        free(out);
        return SCP_E_NOMEM;
    }
    while (!*stop) {
        int fd = vpcd_connect(host, port), rc;
        if (fd < 0) {
            if (log != NULL && !said_waiting)
                fprintf(log, "scpkit card: waiting for vpcd at %s:%u\n", host, port);
            said_waiting = 1;
            sleep_ms(backoff, stop);
            backoff = backoff * 2 > VPCD_BACKOFF_MAX_MS ? VPCD_BACKOFF_MAX_MS : backoff * 2;
            continue;
        }
        if (log != NULL) {
            fprintf(log, "scpkit card: connected to vpcd at %s:%u\n", host, port);
            fflush(log);
        }
        said_waiting = 0;
        backoff = VPCD_BACKOFF_MIN_MS;
        scp_card_reset(c); /* a new reader connection: a card inserted */
        rc = serve(c, fd, in, out, stop);
        close(fd);
        scp_card_reset(c);
        if (log != NULL && rc == SCP_E_IO && !*stop) {
            fprintf(log, "scpkit card: vpcd connection lost; reconnecting\n");
            fflush(log);
        }
    }
    scp_wipe(in, VPCD_MSG_MAX);
    scp_wipe(out, SCP_RAPDU_MAX);
    free(in);
    free(out);
    return SCP_OK;
}
