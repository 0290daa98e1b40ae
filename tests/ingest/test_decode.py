"""Tests for rag.ingest.decode: Western text in cp1252/Latin-1, UTF-16 without a BOM, and what must not change."""
from __future__ import annotations

import os
import random

import pytest

from rag.errors import ArticleError
from rag.ingest import decode_bytes, load_file

WESTERN = [
    "Genève, naïve, crème brûlée, São Paulo",
    "São Paulo",
    "café",
    "Köln",
    "“Genève” costs €5 — naïve crème brûlée in São Paulo…",
    "Le président s’est rendu à Genève mardi. Les négociations ont duré trois jours, selon l’ambassadeur.",
    "El ministro habló el martes en Bogotá sobre la economía. Según él, el crecimiento será más rápido.",
    "Der Bundeskanzler sprach am Dienstag in München über die Wirtschaft. Die Größe des Haushalts sei übermäßig.",
    "A reunião em São Paulo começou às três horas. O ministro não compareceu.",
    "Statsministeren mødtes tirsdag med præsidenten i Århus. Forhandlingerne om økonomien varede to timer.",
    "The café in Zürich raised prices by 5 € — “a naïve move”, said the owner of the Genève branch.",
    "Title\n\nLa «\u00a0Élysée\u00a0» a confirmé la visite à Genève.",
]


def _encodable(text: str, encoding: str) -> bool:
    try:
        text.encode(encoding)
    except UnicodeEncodeError:  # curly quotes and the euro sign are cp1252's only
        return False
    return True


@pytest.mark.parametrize(("text", "encoding"), [(t, e) for e in ("cp1252", "latin-1") for t in WESTERN
                                                if _encodable(t, e)], ids=lambda v: v[:24])
def test_western_text_is_read_as_cp1252_not_central_european(text, encoding):
    assert decode_bytes(text.encode(encoding), "x.txt") == text  # not "Genčve", "Săo", "S緌"


def test_western_names_in_any_order_are_read_as_cp1252():
    # a few accented names among English words: charset-normalizer's own pick varies (cp1250, cp1257, cp775...)
    names = "Genève naïve crème brûlée São Paulo café Zürich Köln Málaga Bogotá niño über façade déjà Malmö Curaçao"
    words = names.split() + "the of and in said minister on Tuesday city news".split()
    rng = random.Random(7)
    wrong = []
    for _ in range(200):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 12)))
        if decode_bytes(text.encode("cp1252"), "x.txt") != text:
            wrong.append(text)
    assert len(wrong) <= 4, wrong  # 0-2 of 200: word salad charset-normalizer confidently reads as Hungarian


@pytest.mark.parametrize(("text", "encoding"), [
    ("Premier spotkał się we wtorek z prezydentem. Rozmowy dotyczyły budżetu i współpracy w regionie.", "cp1250"),
    ("Zażółć gęślą jaźń. Łódź jest dużym miastem w Polsce, a Kraków też.", "cp1250"),
    ("Prezident republiky přijal na Pražském hradě velvyslance. Jednání trvalo dvě hodiny.", "cp1250"),
    ("Příliš žlutý kůň úpěl ábelské ódy.", "cp1250"),
    ("A miniszterelnök kedden Brüsszelben tárgyalt az Európai Bizottság elnökével a költségvetésről.", "cp1250"),
    ("Az elnök előtt a költségvetésről beszélt.", "cp1250"),
    ("Привет мир, это тестовый текст на русском языке.", "cp1251"),
], ids=["pl", "pl-pangram", "cs", "cs-pangram", "hu", "hu-short", "ru"])
def test_other_single_byte_encodings_are_not_taken_for_cp1252(text, encoding):
    assert decode_bytes(text.encode(encoding), "x.txt") == text


@pytest.mark.parametrize(("text", "encoding"), [
    ("臺灣", "big5"), ("香港", "big5"), ("新聞", "big5"), ("鄧小平", "big5"), ("北京", "gbk"), ("台湾", "gbk"),
    ("中文测试", "gbk"), ("iPhone手机", "gbk"), ("Xi Jinping (习近平) met Joe Biden in Woodside.", "gbk"),
    ("Xi Jinping (習近平) met Joe Biden.", "big5"), ("美国之音", "gb18030"),
])
def test_short_chinese_is_not_taken_for_latin_text(text, encoding):
    assert decode_bytes(text.encode(encoding), "x.txt") == text


UTF16_TEXTS = [
    "Title\n\nHello world. It rained in Paris today.",
    "标题\n\n北京今天下雨了。",
    "北京今天下雨了。",  # no ASCII character: not a single NUL byte
    "美国国务卿安东尼·布林肯（Antony Blinken）星期二前往危地马拉。\n\n一二三，万事如意。",
    "“Genève” — São Paulo €5",
]


@pytest.mark.parametrize("text", UTF16_TEXTS, ids=lambda t: t[:12])
@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_bom_is_detected(text, encoding):
    assert decode_bytes(text.encode(encoding), "x.txt") == text


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_files_without_bom_are_read(tmp_path, encoding):
    path = tmp_path / "zh.txt"
    path.write_bytes("布林肯前往危地马拉\n\n美国国务卿布林肯星期二前往危地马拉。\n\nHe met President Arévalo.\n".encode(encoding))
    (article,) = load_file(path)
    assert article.title == "布林肯前往危地马拉"
    assert article.text == "美国国务卿布林肯星期二前往危地马拉。\n\nHe met President Arévalo."


@pytest.mark.parametrize("data", [
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00" + bytes(range(256)) * 4,
    bytes(random.Random(3).randrange(256) for _ in range(4000)) + b"\x00\x00",
    b"Title\x00\n\nText with one stray NUL.\x00",  # odd length: not UTF-16
    "Title\n\nText".encode("utf-16-le") + b"\x00",
])
def test_binary_with_nul_bytes_is_still_refused(data):
    with pytest.raises(ArticleError, match="binary or undecodable"):
        decode_bytes(data, "x.txt")


def test_text_with_a_lone_surrogate_is_refused(monkeypatch):
    # no strict codec yields one, UTF-7 does: whatever the guess, such text never reaches an Article
    monkeypatch.setattr("rag.ingest.decode._guess_decode", lambda data, path: "Title\n\nbad \ud800 text")
    with pytest.raises(ArticleError, match=r"lone surrogate \(U\+D800\)") as info:
        decode_bytes(b"Title\n\nbad \xff text", os.path.join("news", "x.txt"))
    assert info.value.path == os.path.join("news", "x.txt")
