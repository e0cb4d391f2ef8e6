"""Cleaning steps that rewrite text: Unicode normalisation, HTML-to-text and boilerplate-line removal.

References:
- Unicode normalisation forms NFC / NFKC: Unicode Standard Annex #15; we call `unicodedata.normalize`, and the
  tests check it against HF `tokenizers.normalizers.NFKC`.
- Boilerplate lines: the C4 rules (Raffel et al. 2020, "Exploring the Limits of Transfer Learning", sec. 2.2)
  drop lines mentioning javascript, cookie / privacy / terms notices; we use a configurable list of such patterns.
- HTML to text: stdlib `html.parser`; text inside script/style/nav/header/footer/aside/form is dropped, block
  elements become line breaks, character references are unescaped.

Contract: each step is `step(text) -> (new_text, None)` or `(None, reason)` (see pipeline.py). Text that does not
look like HTML passes HtmlStripper untouched, so "a < b" in prose is never mangled.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from html.parser import HTMLParser

# zero-width space, BOM / zero-width no-break space, soft hyphen, word joiner: invisible, they only split tokens
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\ufeff\u00ad\u2060"), None)
# C0/C1 control characters except tab and newline
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@dataclass(slots=True)
class UnicodeNormalizer:
    """NFC (canonical: composes "e" + combining acute into "é") or NFKC (also folds compatibility forms: full-width
    letters, ligatures, superscripts). Also unifies line endings and removes control and invisible characters."""

    form: str = "NFC"
    name: str = "normalize"

    def __post_init__(self) -> None:
        if self.form not in ("NFC", "NFKC", "NFD", "NFKD"):
            raise ValueError(f"unicode form must be NFC, NFKC, NFD or NFKD, got {self.form!r}")

    def __call__(self, text: str) -> tuple[str | None, str | None]:
        out = text.replace("\r\n", "\n").replace("\r", "\n").translate(_INVISIBLE)
        out = _CONTROL.sub("", out)
        out = unicodedata.normalize(self.form, out)
        return (out, None) if out.strip() else (None, "empty_after_normalize")


_HTML_HINT = re.compile(r"<\s*/?\s*(html|head|body|p|div|br|span|a|script|style|h[1-6]|li|ul|ol|table|tr|td|"
                        r"section|article|nav|footer|header|img|meta|title)\b[^>]*>", re.IGNORECASE)
_SKIP_TAGS = {"script", "style", "noscript", "nav", "header", "footer", "aside", "form", "template", "svg", "head"}
_BLOCK_TAGS = {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "section",
               "article", "blockquote", "pre", "hr", "main", "dd", "dt", "title"}
_VOID_TAGS = {"br", "hr", "img", "meta", "link", "input", "area", "base", "col", "embed", "source", "wbr"}


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)  # &amp; &#233; ... are unescaped for us
        self.parts: list[str] = []
        self.skip_depth = 0

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP_TAGS:
            self.skip_depth += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_startendtag(self, tag, attrs):
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in _SKIP_TAGS and tag not in _VOID_TAGS:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skip_depth:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Visible text of an HTML page, one line per block element, runs of spaces collapsed."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = (re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in "".join(parser.parts).split("\n"))
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def looks_like_html(text: str) -> bool:
    return len(_HTML_HINT.findall(text, 0, 20_000)) >= 1


@dataclass(slots=True)
class HtmlStripper:
    """HTML documents become their visible text; other documents pass unchanged."""

    name: str = "html"

    def __call__(self, text: str) -> tuple[str | None, str | None]:
        if not looks_like_html(text):
            return text, None
        out = html_to_text(text)
        return (out, None) if out else (None, "empty_after_html")


DEFAULT_BOILERPLATE = (
    r"javascript", r"\bcookies?\b.*\b(use|accept|policy|consent)", r"privacy policy", r"terms of (use|service)",
    r"all rights reserved", r"^\s*(copyright|©)", r"subscribe to (our|the) newsletter", r"click here",
    r"sign up for (our|the)", r"share (this|on) (facebook|twitter)", r"^\s*(home|menu|skip to (main )?content)\s*$",
    r"lorem ipsum",
)


@dataclass(slots=True)
class BoilerplateFilter:
    """Drop lines matching any boilerplate pattern (C4-style, case-insensitive); a document left empty is removed."""

    patterns: tuple[str, ...] = DEFAULT_BOILERPLATE
    name: str = "boilerplate"
    _regex: re.Pattern = field(init=False, repr=False)

    def __post_init__(self) -> None:
        try:
            self._regex = re.compile("|".join(f"(?:{p})" for p in self.patterns), re.IGNORECASE)
        except re.error as err:
            raise ValueError(f"invalid boilerplate pattern: {err}; patterns are Python regular expressions") from err

    def __call__(self, text: str) -> tuple[str | None, str | None]:
        lines = text.split("\n")
        kept = [line for line in lines if not self._regex.search(line)]
        if len(kept) == len(lines):
            return text, None
        out = "\n".join(kept).strip()
        return (out, None) if out else (None, "empty_after_boilerplate")
