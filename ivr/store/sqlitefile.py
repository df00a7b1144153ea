"""A SQLite database file watched while the app serves: deleted, moved away or replaced, it is
noticed at the next transaction, never written past, and never silently made anew.

SQLite connections hold the file open: after the file at the path is deleted or replaced they go
on writing to the old one, where nothing will ever read it, and a new connection would create an
empty file without tables in its place. So each connection remembers which file it opened (device
and inode), a connection checked out of the pool for a file no longer at the path is replaced,
and once a file has been at the path a new connection never creates one (SQLite's
`mode=rw`): a missing file is a fault that callers ride out with the apology and the operator
until the file is back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import Engine

Identity = tuple[int, int]  # (st_dev, st_ino): which file is at the path


@dataclass
class WatchedFile:
    path: str
    # The file the store knows at the path: the one there when the store was made, then the one
    # whose schema was last found current. None while there has been none (a first start).
    seen: Identity | None = None
    served: bool = False  # a schema was found current in it: an empty file there now is a fault
    must_exist: bool = False  # made before this process started: never made here

    def __post_init__(self) -> None:
        self.seen = self.identity()
        self.served = self.served or self.must_exist

    def identity(self) -> Identity | None:
        """Which file is at the path now; None when there is none."""
        try:
            found = os.stat(self.path)
        except OSError:
            return None
        return (found.st_dev, found.st_ino)

    def problem(self) -> str:
        """Why the file at the path is not the one the store knows; "" when it is (or when there has
        been none yet)."""
        if self.seen is None and not self.must_exist:  # nothing there yet: a file there now is the one
            self.seen = self.identity()
            return ""
        now = self.identity()
        if now is None:
            return f"the database file {self.path} is gone (deleted or moved away): nothing is written until it is back"
        if now != self.seen:
            return "replaced"
        return ""

    def install(self, engine: Engine) -> None:
        @sa.event.listens_for(engine, "do_connect")
        def _never_create(_dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]) -> None:
            if self.seen is not None or self.must_exist:  # it was there: missing is a fault, not a first start
                cargs[:1] = [f"file:{quote(self.path)}?mode=rw"]
                cparams["uri"] = True

        @sa.event.listens_for(engine, "connect", insert=True)  # first: before a pragma can fail
        def _remember(_dbapi_conn: Any, record: Any) -> None:
            record.info["ivr_file"] = found = self.identity()
            if self.seen is None:  # the first file at the path (made now, or by another process)
                self.seen = found

        @sa.event.listens_for(engine, "checkout")
        def _still_there(_dbapi_conn: Any, record: Any, _proxy: Any) -> None:
            if record.info.get("ivr_file") != self.identity():
                # The pool replaces it; the new connection opens the file now at the path, if any.
                raise sa.exc.DisconnectionError("the database file was deleted or replaced")
