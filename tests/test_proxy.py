"""nginx in front (deploy/nginx.conf): clients that send their bodies slowly no longer starve the app."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from twilio.request_validator import RequestValidator

from tests.conftest import AUTH_TOKEN
from tests.servers import ROOT, Gunicorn, free_port, status_of, wait_for

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
pytestmark = [
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed (Debian: apt-get install nginx)"),
    pytest.mark.slow,
]


@pytest.fixture
def nginx_in_front() -> Iterator[tuple[Gunicorn, str]]:
    """gunicorn with one worker of two threads (few enough to starve), and nginx in front of it,
    configured with the repo's deploy/nginx.conf (only its ports changed)."""
    folder = Path(tempfile.mkdtemp(prefix="ivr-nginx-"))
    log = folder / "gunicorn.log"
    env = {
        "IVR_TRUST_PROXY": "1",
        "IVR_LOG_LEVEL": "WARNING",
        "IVR_DATABASE_URL": f"sqlite:///{folder / 'ivr.sqlite3'}",
    }
    app = Gunicorn(env, log, workers=1, threads=2)
    port = free_port()
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    site = site.replace("127.0.0.1:8000", f"127.0.0.1:{app.port}").replace("listen 8080;", f"listen 127.0.0.1:{port};")
    (folder / "nginx.conf").write_text(
        f"""
        daemon off;
        worker_processes 1;
        pid {folder}/nginx.pid;
        error_log {folder}/error.log;
        {"user root;" if _root() else ""}
        events {{ worker_connections 256; }}
        http {{
            access_log off;
            client_body_temp_path {folder}/body;
            proxy_temp_path {folder}/proxy;
            fastcgi_temp_path {folder}/fastcgi;
            uwsgi_temp_path {folder}/uwsgi;
            scgi_temp_path {folder}/scgi;
            {site}
        }}
        """
    )
    nginx = subprocess.Popen([str(NGINX), "-c", str(folder / "nginx.conf"), "-p", str(folder)])
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: status_of(f"{base}/healthz") == 200, 20, f"nginx (log: {folder / 'error.log'})")
        yield app, base
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        app.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _root() -> bool:
    import os

    return os.geteuid() == 0


def slow_bodies(port: int, count: int = 4) -> list[socket.socket]:
    """Clients that announce a webhook body and send only its first bytes, then wait."""
    clients = []
    for _ in range(count):
        client = socket.create_connection(("127.0.0.1", port))
        client.sendall(
            b"POST /voice HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 400\r\n\r\nCallSid=CA"
        )
        clients.append(client)
    time.sleep(0.3)  # let them reach the server's threads
    return clients


def entry_webhook(base: str, timeout: float) -> bytes:
    """A signed entry webhook, as Twilio sends it."""
    form = {"CallSid": "CA" + "1" * 32, "From": "+79161234567", "To": "+78002001441", "CallStatus": "ringing"}
    signature = RequestValidator(AUTH_TOKEN).compute_signature(f"{base}/voice", form)
    request = urllib.request.Request(
        f"{base}/voice", data=urllib.parse.urlencode(form).encode(), headers={"X-Twilio-Signature": signature}
    )
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return bytes(answer.read())


def test_slow_bodies_starve_the_app_alone_but_not_behind_nginx(nginx_in_front: tuple[Gunicorn, str]) -> None:
    app, proxied = nginx_in_front
    direct = slow_bodies(app.port)  # straight at gunicorn: its two threads wait for the bodies
    try:
        with pytest.raises(OSError):  # a timeout: the caller would hear dead air
            entry_webhook(app.url, timeout=3)
    finally:
        for client in direct:
            client.close()
    wait_for(lambda: status_of(f"{app.url}/healthz") == 200, 20, "gunicorn to recover")

    held = slow_bodies(int(proxied.rsplit(":", 1)[1]))  # the same, through nginx
    try:
        started = time.monotonic()
        answer = entry_webhook(proxied, timeout=5)  # signed for nginx's address: checked through the proxy
        assert "Здравствуйте".encode() in answer and time.monotonic() - started < 2
    finally:
        for client in held:
            client.close()
