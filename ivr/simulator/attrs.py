"""Reading a TwiML verb's attributes as Twilio does: trimmed text, whole numbers, true."""

from __future__ import annotations

import xml.etree.ElementTree as ET


def text(el: ET.Element, name: str, default: str = "") -> str:
    return el.get(name, default).strip()


def number(el: ET.Element, name: str, default: int) -> int:
    try:
        return int(text(el, name, str(default)))
    except ValueError:
        return default


def true(el: ET.Element, name: str) -> bool:
    return text(el, name).lower() == "true"


def method(el: ET.Element, name: str = "method") -> str:
    """GET or POST (Twilio's default, and what anything else is taken for)."""
    found = text(el, name, "POST").upper()
    return found if found in ("GET", "POST") else "POST"
