"""What outlives a webhook: the tables (`ivr.store.tables`), the store's transactions, and the
domain records on them (journal, requests, allowances, call-backs, flow revisions, reports)."""

from ivr.store.database import Store, make_engine

__all__ = ["Store", "make_engine"]
