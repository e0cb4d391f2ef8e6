"""Unicode normalisation (checked against HF tokenizers' normalizers), HTML stripping, boilerplate, PII, pipeline
stats."""

from __future__ import annotations

import unicodedata

import pytest
from tokenizers import normalizers

from stellarbyte.data.clean import BoilerplateFilter, HtmlStripper, UnicodeNormalizer, html_to_text
from stellarbyte.data.pii import PiiScrubber
from stellarbyte.data.pipeline import run_steps
from stellarbyte.data.records import Document

SAMPLES = ["ﬁle ｆｕｌｌｗｉｄｔｈ x² ①", "cafe\u0301 and café", "Å Ω ℌ ⁵ ½", "日本語 ｶﾀｶﾅ", "plain ascii"]


@pytest.mark.parametrize("form,reference", [("NFC", normalizers.NFC()), ("NFKC", normalizers.NFKC())])
def test_unicode_forms_match_hf_tokenizers(form, reference):
    step = UnicodeNormalizer(form)
    for s in SAMPLES:
        assert step(s)[0] == reference.normalize_str(s) == unicodedata.normalize(form, s)


def test_unicode_cleanup_of_controls_and_invisibles():
    out, reason = UnicodeNormalizer("NFC")("a\u200bb\r\nc\x00d\ufeff\te\x7f")
    assert (out, reason) == ("ab\ncd\te", None)
    assert UnicodeNormalizer()("\u200b\x00 ") == (None, "empty_after_normalize")
    with pytest.raises(ValueError, match="NFC, NFKC"):
        UnicodeNormalizer("NFX")


def test_html_to_text_drops_scripts_and_navigation():
    page = ("<html><head><title>T</title><style>p{color:red}</style></head><body><nav>Home | About</nav>"
            "<h1>Big  news</h1><p>Caf&eacute; &amp; bar&#33;</p><script>var x = 1;</script>"
            "<div>Second<br>line</div><footer>(c) 2024</footer></body></html>")
    assert html_to_text(page) == "Big news\n\nCafé & bar!\n\nSecond\nline"
    assert HtmlStripper()("if a < b and c > d then") == ("if a < b and c > d then", None)  # not HTML: untouched
    assert HtmlStripper()("<p><script>only()</script></p>") == (None, "empty_after_html")


def test_boilerplate_lines_removed():
    text = "Real content here.\nThis site uses cookies. Accept our cookie policy.\nMore content.\nAll Rights Reserved."
    assert BoilerplateFilter()(text) == ("Real content here.\nMore content.", None)
    assert BoilerplateFilter()("Click here to subscribe") == (None, "empty_after_boilerplate")
    with pytest.raises(ValueError, match="invalid boilerplate pattern"):
        BoilerplateFilter(patterns=("(unclosed",))


POSITIVE = {
    "email": ["bob.smith+tag@mail.example.co.uk", "a_b@x.io"],
    "phone": ["+1 (555) 123-4567", "555-123-4567", "(555) 123 4567", "+44 20 7946 0958", "+33 1 23 45 67 89",
              "555.123.4567"],
    "ipv4": ["192.168.0.1", "8.8.8.8", "255.255.255.255"],
    "ipv6": ["2001:db8::8a2e:370:7334", "::ffff:192.0.2.128", "fe80::1ff:fe23:4567:890a%eth0"],
}
NEGATIVE = ["2023-10-15", "version 1.2.3", "12345", "pi is 3.14159", "call 911", "at 12:30:45", "999.1.1.1",
            "1999 and 2000", "3 + 4 = 7", "std::vector", "ISBN 978-3-16-148410-0", "costs 1,000,000", "a::b",
            "user at example dot com"]


def test_pii_positives_replaced_and_counted():
    scrub = PiiScrubber()
    for kind, values in POSITIVE.items():
        for v in values:
            out = scrub.scrub(f"contact: {v}, thanks")
            tag = "<EMAIL>" if kind == "email" else "<PHONE>" if kind == "phone" else "<IP_ADDRESS>"
            assert out == f"contact: {tag}, thanks", (kind, v, out)
    assert dict(scrub.found) == {k: len(v) for k, v in POSITIVE.items()}


def test_pii_negatives_untouched():
    scrub = PiiScrubber()
    for v in NEGATIVE:
        assert scrub.scrub(v) == v
    assert not scrub.found


def test_pipeline_counts_per_step():
    docs = [Document("<p>Hello &amp; welcome, mail me at x@y.com</p>", "0"), Document("plain text", "1"),
            Document("<p><script>x()</script></p>", "2"), Document("ﬁne", "3")]
    stream, stats = run_steps(docs, [UnicodeNormalizer("NFKC"), HtmlStripper(), PiiScrubber()])
    out = list(stream)
    assert [d.text for d in out] == ["Hello & welcome, mail me at <EMAIL>", "plain text", "fine"]
    assert [(s.step, s.seen, s.kept, s.removed, s.changed) for s in stats] == [
        ("normalize", 4, 4, 0, 1), ("html", 4, 3, 1, 1), ("pii", 3, 3, 0, 1)]
    assert stats[1].reasons == {"empty_after_html": 1}
