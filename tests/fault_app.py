"""The hotline under gunicorn, with one fault a test can set off: a webhook with an effect, of a call
whose CallSid starts with CAhang, stops after its transaction is committed and before its answer
leaves, and says which worker it is in IVR_FAULT_MARKER, so that the test can kill that worker."""

import os
import time
from pathlib import Path
from typing import Any

from ivr import create_app

app = create_app()
_handler = app.extensions["ivr"].handler
_committed = _handler._with_effect


def _hang_after_commit(version: Any, hook: Any, *args: Any) -> Any:
    answer = _committed(version, hook, *args)
    marker = Path(os.environ["IVR_FAULT_MARKER"])
    if hook.call_sid.startswith("CAhang") and not marker.exists():  # once: the fallback then answers
        marker.write_text(str(os.getpid()))
        time.sleep(60)  # until the test kills this worker
    return answer


_handler._with_effect = _hang_after_commit
