"""Measure how fast a prompt is spoken, to calibrate `ivr timing`: synthesise every fixed prompt of a
flow (default: the hotline) with espeak-ng, then fit seconds = characters / rate + pause per sentence
break, and show how far the estimate in use is from the synthesis.

    apt-get install espeak-ng       # Debian's package; nothing else is needed
    python benchmarks/speech_rate.py [FLOW]
"""

from __future__ import annotations

import statistics
import sys

from ivr.flow import load
from ivr.tools.timing import RATES, SENTENCE_END, SENTENCE_PAUSE, spoken_seconds, synthesized_seconds


def main() -> None:
    flow = load(sys.argv[1] if len(sys.argv) > 1 else None)
    language = flow.settings.language
    texts = sorted(
        {
            " ".join(text.split())
            for node in flow.nodes.values()
            for name in ("prompt", "say", "reprompt", "retry")
            if isinstance(text := getattr(node, name, None), str) and text.strip() and "{" not in text
        }
    )
    rows = []
    for text in texts:
        seconds = synthesized_seconds(text, language)
        if seconds is None:
            sys.exit("espeak-ng is not installed (apt-get install espeak-ng)")
        rows.append((len(text), max(1, len(SENTENCE_END.findall(text))) - 1, seconds, text))
    # Least squares for seconds = a * characters + b * sentence breaks.
    cc = sum(c * c for c, p, _, _ in rows)
    cp = sum(c * p for c, p, _, _ in rows)
    pp = sum(p * p for c, p, _, _ in rows)
    cs = sum(c * s for c, _, s, _ in rows)
    ps = sum(p * s for _, p, s, _ in rows)
    det = cc * pp - cp * cp
    a, b = (cs * pp - ps * cp) / det, (cc * ps - cp * cs) / det
    errors = [spoken_seconds(text, language) / seconds - 1 for _, _, seconds, text in rows]
    total = sum(s for _, _, s, _ in rows)
    print(f"{len(rows)} prompts, {sum(c for c, *_ in rows)} characters, {total:.1f} s synthesised ({language})")
    print(f"fitted: {1 / a:.1f} characters/s, {b:.2f} s per sentence break")
    print(f"in use: {RATES.get(language)} characters/s, {SENTENCE_PAUSE} s per sentence break")
    print(
        f"estimate vs synthesis: median {statistics.median(abs(e) for e in errors):.0%} off, "
        f"worst {max(errors, key=abs):+.0%}"
    )


if __name__ == "__main__":
    main()
