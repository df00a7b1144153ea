"""Many app instances on one database (PostgreSQL in production; whatever IVR_TEST_DATABASE_URL names here)."""

import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from typing import Any

import pytest

from ivr import create_app
from ivr.simulator import Simulator
from ivr.simulator.transport import HttpSession, Reply
from tests.conftest import AUTH_TOKEN, MONDAY_10, serving

pytestmark = pytest.mark.slow  # several servers on one database


@pytest.fixture
def two_instances(ivr_databases: Any) -> Iterator[tuple[str, str]]:
    url = ivr_databases()
    # Both instances keep the simulated calls on the database they share: that is what is tested.
    config = {"DATABASE_URL": url, "SIMULATED_DATABASE_URL": url, "ALLOW_SIMULATED_CLOCK": True, "LOG_LEVEL": "ERROR"}
    apps = [create_app(config) for _ in range(2)]
    with ExitStack() as stack:
        first, second = (stack.enter_context(serving(app)) for app in apps)
        yield first, second


class Alternating(HttpSession):
    """Sends each webhook of a call to the other instance than the one before."""

    def __init__(self, urls: tuple[str, str]) -> None:
        super().__init__(urls[0])
        self.netlocs = [urllib.parse.urlsplit(u).netloc for u in urls]
        self.sent: list[str] = []

    def send(
        self, method: str, url: str, params: Mapping[str, str], headers: Mapping[str, str], clock: str | None
    ) -> Reply:
        parts = urllib.parse.urlsplit(url)
        target = self.netlocs[len(self.sent) % 2]
        self.sent.append(target)
        moved = parts._replace(netloc=target).geturl()
        # Twilio signs the URL it calls: sign for the instance that receives the request.
        from ivr.simulator.line import sign

        signed = dict(headers)
        body = dict(params) if method == "POST" else {}
        signed["X-Twilio-Signature"] = sign(AUTH_TOKEN, moved, body)
        return super().send(method, moved, params, signed, clock)


def test_a_call_whose_webhooks_alternate_between_instances_goes_on_normally(two_instances: tuple[str, str]) -> None:
    session = Alternating(two_instances)
    sim = Simulator(url=two_instances[0], auth_token=AUTH_TOKEN)
    sim._session = lambda: session  # type: ignore[method-assign]
    call = sim.call(at=MONDAY_10)
    call.press("1").press("7700123456#").press("1").say("Петрова Анна").press("1").say("кашель").press("1")
    assert "Заявка зарегистрирована" in call.heard and call.dialed == ["+78002001441"]
    assert len(set(session.sent)) == 2 and len(session.sent) >= 7


def test_concurrent_second_opinions_across_instances_grant_exactly_once(two_instances: tuple[str, str]) -> None:
    outcomes: list[str] = []
    lock = threading.Lock()

    def caller(index: int) -> None:
        sim = Simulator(url=two_instances[index % 2], auth_token=AUTH_TOKEN)
        call = sim.call(at=MONDAY_10)
        call.press("5").press("2").press("4455667#").press("1").press("1")
        heard = call.heard
        result = "granted" if "зарегистрирована" in heard else "refused" if "уже получено" in heard else heard
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["granted"] + ["refused"] * 7
