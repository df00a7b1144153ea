"""Flows changed while calls run: every call stays on the revision of the flow it started on.

A revision is a hash of the flow file's text. The server runs the newest revision for new calls;
a call in progress carries its revision in its action URL (bound into the seal) and is answered by
that revision's flow, kept in memory and, so that any instance can serve it after a reload or a
restart, in the database. A reload reads the file again: on SIGHUP, on a gunicorn graceful reload
(new workers read the file), and under `ivr serve` as soon as the file changes. A file that no
longer loads is reported and the running revision kept.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ivr.engine import studio
from ivr.errors import FlowError
from ivr.flow import loader as flows
from ivr.flow.model import Flow
from ivr.flow.yamlsrc import read_text

log = logging.getLogger("ivr.revisions")


@dataclass(frozen=True)
class Version:
    """One revision of the flow, ready to answer: the flow, its text and its recordings."""

    flow: Flow
    source: str
    recordings: studio.Recordings | None


class Revisions:
    """The flow's revisions a server answers with: the current one and those calls are still on."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        env: Mapping[str, str],
        prompts_dir: str | None = None,
        watch: bool = False,
    ) -> None:
        self.path = Path(path) if path is not None else flows.BUNDLED_FLOW
        self.env = env
        self.prompts_dir = prompts_dir
        self.watch = watch  # reload as soon as the file changes (development)
        self._lock = threading.Lock()
        self._stamp = self._file_stamp()
        text = read_text(self.path)
        self.current = self._version(flows.load(self.path, env, text=text), text)
        self._known: dict[str, Version] = {self.current.flow.revision: self.current}
        self.reload_requested = False

    def _version(self, flow: Flow, source: str) -> Version:
        recordings = studio.Recordings.scan(flow, self.prompts_dir) or None
        return Version(flow, source, recordings)

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def get(self, revision: str, sources: Callable[[str], str | None] | None = None) -> Version | None:
        """The version a call on `revision` is answered by ("" is the current one); None when it is
        neither in memory nor kept where `sources` looks (the database: any instance serves a call
        on a revision it never ran itself)."""
        if not revision:  # a new call: the moment an edited file (or SIGHUP) takes effect
            if self.watch or self.reload_requested:
                self.reload_if_changed()
            return self.current
        current = self.current
        if revision == current.flow.revision:
            return current
        version = self._known.get(revision)
        if version is None and sources is not None:
            source = sources(revision)
            if source is not None:
                try:
                    flow = flows.load(self.path, self.env, text=source)
                except FlowError as exc:  # e.g. a contact's variable since set to something undialable
                    log.error("revision %s no longer loads: %s", revision, exc)
                    return None
                version = self._version(flow, source)
                with self._lock:
                    self._known.setdefault(revision, version)
        return version

    def reload_if_changed(self) -> Flow | None:
        """Read the file again if it changed; the new revision if one was taken, else None."""
        self.reload_requested = False
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return None
        self._stamp = stamp
        return self.reload()

    def reload(self) -> Flow | None:
        """Read the flow file; new calls get its revision if it loads and differs (None otherwise)."""
        try:
            text = read_text(self.path)
            flow = flows.load(self.path, self.env, text=text)
        except FlowError as exc:
            log.error("the changed flow file does not load; calls keep revision %s:\n%s", self.revision, exc)
            return None
        if flow.revision == self.current.flow.revision:
            return None
        with self._lock:
            version = self._known.get(flow.revision) or self._version(flow, text)
            self._known[flow.revision] = version
            self.current = version
        log.info("flow %s: new calls get revision %s; calls in progress finish on theirs", flow.name, flow.revision)
        return flow

    @property
    def revision(self) -> str:
        return self.current.flow.revision


def stranded(old: Flow, new: Flow) -> list[str]:
    """Where a call of `old` may be waiting (menus, questions, transfers) that `new` has not, or
    has as another kind: such a call finishes on its own revision, but would be lost on the new one."""
    return [why for node in old.nodes.values() if (why := node.stranded(new.nodes.get(node.id))) is not None]
