"""gunicorn's sync worker, of which one alone wakes for a new connection, and which is free again as soon as
its response is sent (`worker_class` in gunicorn.conf.py).

gunicorn's sync workers wait for connections with `select()` on the listening socket they share: every
connection wakes every idle worker, all but one of which find nothing to accept (EAGAIN) and go back to
sleep. On this 2-core machine that cost each search ~0.15 ms of CPU and as much of its latency with 2
workers (sequential searches, 1,000,000 locations: p50 1.50-1.67 ms and 0.71-0.80 ms of the workers' CPU
with one worker, 1.68-1.78 ms and 0.87-0.94 ms with two), and more with more workers.

Here a worker waits with epoll and `EPOLLEXCLUSIVE` (Linux 4.5+) on the listening sockets: the kernel
wakes one waiting worker per connection (the others sleep on), which accepts it as gunicorn's worker does.
The worker's signal pipe is watched as before (a signal still wakes it at once). Everything else is
gunicorn's: accepting, the request, the heartbeat, the timeouts. Where epoll or EPOLLEXCLUSIVE is missing
(macOS), the worker waits as gunicorn's does.

gunicorn (27) closes each connection gracefully: it half-closes it and then reads until the client closes
its side, for up to 2 seconds, so that request bytes left unread do not make the kernel answer with a
reset that could cut the response short. But a worker serves nothing meanwhile: a client that keeps its
connection open after the response (as a pooling HTTP client or an attacker may) held a worker 2.0 s per
request. Here, once the response is sent, a connection with nothing left unread (nothing received past the
request, or the client's end) is closed at once, which sends an orderly FIN (the reset only comes of
unread data); one with unread bytes is left to gunicorn's graceful close.
"""

from __future__ import annotations

import os
import select
import socket

from gunicorn.workers.sync import SyncWorker


class ExclusiveSyncWorker(SyncWorker):
    _poller = None

    def wait(self, timeout):
        poller = self._poller
        if poller is None:
            if not hasattr(select, "EPOLLEXCLUSIVE"):
                return super().wait(timeout)
            # After the fork, in the worker: each worker its own epoll.
            poller = self._poller = select.epoll()
            self._by_fd = {listener.fileno(): listener for listener in self.sockets}
            for fd in self._by_fd:
                poller.register(fd, select.EPOLLIN | select.EPOLLEXCLUSIVE)
            poller.register(self.PIPE[0], select.EPOLLIN)
        self.notify()
        ready = []
        for fd, _events in poller.poll(timeout):
            if fd == self.PIPE[0]:
                os.read(fd, 1)  # a signal's wake-up byte, as gunicorn's wait reads it
                ready.append(fd)
            elif fd in self._by_fd:
                ready.append(self._by_fd[fd])
        return ready or None

    def handle_request(self, listener, req, client, addr):
        super().handle_request(listener, req, client, addr)
        if self.cfg.is_ssl:  # TLS has its own closing: gunicorn's
            return
        try:
            client.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            pass  # nothing unread
        except OSError:
            return
        else:
            return  # bytes past the request, or the client's end: gunicorn's graceful close reads them
        client.close()  # FIN now; gunicorn's close of it then finds it closed
