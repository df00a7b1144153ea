"""Production settings for gunicorn, read by `gunicorn -c gunicorn.conf.py "ivr:create_app()"`.

One worker process per core, each with a few threads: a webhook is short and CPU-bound, and the
threads keep a worker busy while another request waits on the database. Settings on the command
line override these.
"""

import os

# Loopback only: a buffering proxy (deploy/nginx.conf) faces the network. Straight on the network,
# a few clients that send their bodies slowly hold every worker thread and callers hear dead air.
bind = ["127.0.0.1:8000"]
workers = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 1))


def _refusing_worker():
    """gunicorn's threaded worker, which lets go of the listening socket as soon as it is told to
    stop (SIGTERM): the master closes its copy first, so once every worker has, a new connection is
    refused at once and Twilio turns to the fallback URL, instead of waiting in the socket's queue
    until the last worker exits and being reset. Requests in flight still finish."""
    import select

    from gunicorn.workers.gthread import ThreadWorker

    class RefusingThreadWorker(ThreadWorker):
        def set_accept_enabled(self, enabled):
            super().set_accept_enabled(enabled)
            if not self.alive and self.sockets:  # stopping: not merely busy
                for listener in self.sockets:
                    # Connections already waiting in the queue are taken and answered, not reset.
                    while select.select([listener], [], [], 0)[0]:
                        before = self.nr_conns
                        self.accept(listener)
                        if self.nr_conns == before:  # another worker took it first
                            break
                    listener.close()
                self.sockets = []

    return RefusingThreadWorker


worker_class = _refusing_worker
threads = 8
# Twilio waits 15 s for a webhook, then plays its error or the fallback URL: a worker stuck for
# twice that is replaced, and a graceful reload gives requests in flight as long to finish.
timeout = 30
graceful_timeout = 30
keepalive = 5  # Twilio reuses connections between the webhooks of a call
# Webhooks are a few hundred bytes: refuse absurd request lines and headers early.
limit_request_line = 8190
limit_request_fields = 64
# gunicorn 27's control socket lives at one path per user (~/.gunicorn): several servers on one
# machine (instances, tests) would share it. The app needs none of its commands.
control_socket_disable = True


def _logging():
    from ivr.web.logs import config

    return config()


# Every line with its time and level; one JSON object per webhook (ivr.webhook).
logconfig_dict = _logging()


def on_starting(server):
    """Check the environment and the flow in the master, before any worker starts: a mistake is one
    line and the server does not start, instead of every worker printing a traceback and dying."""
    import sys

    from ivr.errors import ConfigError, FlowError
    from ivr.web.config import PREPARED, preflight

    try:
        prepared = preflight(os.environ)
    except FlowError as exc:
        for problem in exc.problems:
            print(f"ivr: {problem}", file=sys.stderr)
        raise SystemExit(1) from None
    except ConfigError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if prepared:  # the workers, forked from here, inherit it: none makes that file itself
        os.environ[PREPARED] = prepared
