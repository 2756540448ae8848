"""One confirm mechanism that htmx honours: hx-confirm on every form with a destructive button.

An inline `onsubmit="return confirm(…)"` is ignored by htmx's boosted form handling, so
Cancel went ahead (tests/browser/test_confirmations.py shows it per action); this keeps any
new destructive form from coming back without a question.
"""

import re
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
FORM = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.S)


def templates():
    for path in sorted(TEMPLATES.rglob("*.html")):
        yield path.relative_to(TEMPLATES), path.read_text()


def test_no_inline_confirm_handlers():
    offenders = [str(name) for name, text in templates() if re.search(r"on\w+=\"[^\"]*confirm\(", text)]
    assert offenders == [], offenders


def test_every_form_with_a_danger_button_asks_with_hx_confirm():
    missing = []
    for name, text in templates():
        for attrs, body in FORM.findall(text):
            if 'class="danger"' in body and "hx-confirm=" not in attrs:
                missing.append(f"{name}: <form{attrs}>")
    assert missing == [], missing
