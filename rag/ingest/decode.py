"""Decode an article file's bytes to text: UTF-8, UTF-16 (BOM or not), or a guessed (mostly Chinese) legacy encoding."""
from __future__ import annotations

import codecs
import re

from charset_normalizer import from_bytes

from ..errors import ArticleError

# charset_normalizer's 499 most common simplified characters plus their traditional forms (via OpenCC s2t/s2twp).
_COMMON_ZH = frozenset(
    "一七万三上下不与专且世业东两严个中为主么义之九也习书了争事二于五些交产京亲人什今从他代以们件价任众会传但位低住体何作你使例便保信"
    "候值做儿元先光克党入全八公六共关其具养内再写军农决况准几出分切划列则利别到制前力办加务动劳包化北区十千半华单南即却厂历压原去县参又及"
    "反发取受变口只叫可史号各合同名后向听员周命和品响商器四回因团国图圆土在地场型基增声处备复外多大天太头她好如始委子存学它安完定实家容对"
    "导将小少就局层展属山工己已市布带常干平年并广应府度建开式引张强当形影往很律得心必志快思性总情想意感成我或战所手才打技把报拉持指按据接"
    "提支收改放政效教数整文斗料断斯新方族无日时明易是更最月有期本术机权条来极构林果查标样根格次正此步段每比毛民气水求江没油治法活派流济海"
    "消深清温满火点热然照片物特状率王现理生用由电界白百的目直相省看真眼着知石矿研确示社离种科积程究空立第等算管米类精系素红约级线组细织经"
    "结给统维置美群老者而联育能自至般色节花行表被装西要见观规角解计认议记许论设证识话该说调象质资走起越路身车转较边达过运近还这进连适选通"
    "速造道那部都酸采里重量金铁长门问间队阶际院除难集需青非面革音须领题风飞马验高龙"
    "並來們備傳價兒內兩別則劃動務勞區卻參員問單嚴國圓圖團報場壓學實寫將專對導層屬帶幹幾廠廣張強後從復應戰採據數斷於時書會東條業極構標樣機"
    "權歷氣決沒況準溫滿濟為無熱爭爲狀現產當發眾確礦種積箇節約紅級細組結給統經維線縣總織纔羣義習聯聲聽與華萬著處號衆術裏裝裡見規親觀計記設許"
    "話該認說調論證識議變資質車軍較轉辦農這連進運過達適選還邊鐵長門開間關隊階際離難電響須領頭題類風飛養馬驗體鬥麼點黨齣龍"
)
# Characters a wrong double-byte decoding tends to produce: ideographs, kana, hangul, private use, U+FFFD.
_WIDE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\ue000-\uf8ff\uf900-\ufaff\ufffd]")
_ZH_CODECS = {"gb2312", "gbk", "gb18030", "big5", "big5hkscs", "cp950", "hz"}
_BINARY_CTRL = re.compile(r"[\x00-\x08\x0e-\x1b\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_GLUED = re.compile(r"[A-Za-z][\u3400-\u9fff\uf900-\ufaff]|[\u3400-\u9fff\uf900-\ufaff][A-Za-z]")


def decode_bytes(data: bytes, path) -> str:
    """Decode a file's bytes: UTF-8 (BOM stripped), UTF-16 (with a BOM, or Chinese or Latin text without one), else
    GB18030/Big5, cp1252 for Western text, or charset-normalizer's best."""
    if data.startswith(codecs.BOM_UTF8):
        try:
            text = data[len(codecs.BOM_UTF8):].decode("utf-8")
        except UnicodeDecodeError as e:
            reason = f"binary or undecodable: invalid UTF-8 at byte {e.start + 3} despite a UTF-8 BOM"
            raise ArticleError(path, reason) from None
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise ArticleError(path, "binary or undecodable: invalid UTF-16 despite a UTF-16 BOM") from None
    elif b"\x00" in data:
        text = _utf16_without_bom(data)
        if text is None:
            raise ArticleError(path, "binary or undecodable: contains NUL bytes")
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            _reject_damaged_utf8(data, e, path)
            text = _guess_decode(data, path)
    if text.startswith("\ufeff"):
        text = text[1:]
    sample = text[:100_000]
    if sample and len(_BINARY_CTRL.findall(sample)) > 0.1 * len(sample):
        raise ArticleError(path, "binary or undecodable: mostly control characters")
    surrogate = _SURROGATE.search(text)
    if surrogate:  # no strict codec yields one, but UTF-7 does: such text cannot be stored or shown
        code, at = ord(surrogate.group()), surrogate.start()
        raise ArticleError(path, f"binary or undecodable: a lone surrogate (U+{code:04X}) at character {at}")
    return text


def _reject_damaged_utf8(data: bytes, error: UnicodeDecodeError, path) -> None:
    """UTF-8 text with a few bad bytes is reported, rather than decoded as mojibake in some legacy encoding."""
    text = data[:200_000].decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    good = sum(1 for ch in text if ch >= "\x80") - bad
    if good >= 10 and bad <= max(4, good // 20):
        reason = f"binary or undecodable: invalid UTF-8 at byte {error.start} in an otherwise UTF-8 file"
        raise ArticleError(path, reason)


_plausible_zh: frozenset[str] | None = None


def _plausible_zh_chars() -> frozenset[str]:
    """GB2312 ideographs, Big5 level-1 ideographs and CJK punctuation: what real Chinese text is made of."""
    global _plausible_zh
    if _plausible_zh is None:
        chars = set("·—–‘’“”…")
        for lead, trails, codec in ((range(0xB0, 0xF8), range(0xA1, 0xFF), "gb2312"),
                                    (range(0xA4, 0xC7), [*range(0x40, 0x7F), *range(0xA1, 0xFF)], "big5")):  # fmt: skip
            for hi in lead:
                for lo in trails:
                    try:
                        chars.add(bytes((hi, lo)).decode(codec))
                    except UnicodeDecodeError:
                        pass
        chars.update(map(chr, range(0x3000, 0x3040)))
        chars.update(map(chr, range(0xFF01, 0xFF5F)))
        _plausible_zh = frozenset(chars)
    return _plausible_zh


def _zh_plausible(text: str) -> tuple[bool, tuple[int, float]]:
    """Whether `text` reads as Chinese, and a score to rank candidate decodings by."""
    sample = text[:100_000]
    common = sum(1 for ch in sample if ch in _COMMON_ZH)
    wide = len(_WIDE.findall(sample))
    plausible_set = _plausible_zh_chars()
    non_ascii = [ch for ch in sample if ch >= "\x80"]
    plausible = sum(1 for ch in non_ascii if ch in plausible_set) / len(non_ascii) if non_ascii else 0.0
    ok = (common > 0 and common >= 0.3 * wide) or (wide < 20 and plausible >= 0.9)
    return ok, (common, plausible)


def _guess_decode(data: bytes, path) -> str:
    matches = from_bytes(data)
    best = matches.best()
    # charset-normalizer often mistakes short GBK text for Big5 or CP949 (and vice versa), so every Chinese
    # decoding is ranked by how many very common Chinese characters it yields, then by the share of its
    # non-ASCII characters that are ordinary Chinese ones; the best plausible one wins (GB18030 on ties).
    candidates = ["gb18030", "big5", *(m.encoding for m in matches if m.encoding.replace("_", "") in _ZH_CODECS)]
    chosen, chosen_score = None, (-1, 0.0)
    for enc in dict.fromkeys(candidates):
        try:
            text = data.decode(enc)
        except (UnicodeDecodeError, LookupError):
            continue
        ok, score = _zh_plausible(text)
        if ok and score > chosen_score:
            chosen, chosen_score = text, score
    # Chinese-only UTF-16 has no NUL byte: its bytes also decode (wrongly) as GB18030 or Big5
    utf16 = _utf16_without_bom(data)
    if utf16 is not None:
        score = _zh_plausible(utf16)[1]
        if score[0] >= max(2, 0.3 * len(_WIDE.findall(utf16))) and score > chosen_score:
            chosen, chosen_score = utf16, score
    # Latin text with an accent or two can pass for a few rare Chinese characters glued to Latin letters ("São"
    # -> "S緌" in Big5); Chinese text without a single common character ("臺灣") is not overruled
    if chosen is not None and chosen_score[0] == 0 and _GLUED.search(chosen):
        western = _western(data, matches)
        if western is not None:
            return western
    if chosen is not None:
        return chosen
    western = _western(data, matches)
    if western is not None:
        return western
    if best is not None:
        return str(best)
    raise ArticleError(path, "binary or undecodable: not UTF-8 and no text encoding fits")


_LATIN_EXTRA = frozenset("\u00a0¡¢£¤¥¦§¨©«¬®¯°±´µ¶·¸»¿×÷‐‑‒–—―‘’‚“”„†‡•…‰‹›€™")


def _plausible_share(text: str) -> float:
    """The share of `text` that is ordinary Chinese or Latin-script text (letters, digits, punctuation, spaces)."""
    zh = _plausible_zh_chars()
    ok = sum(1 for ch in text if (" " <= ch <= "~") or ch in "\t\n\r" or ch in zh or ch in _LATIN_EXTRA
             or ("\u00c0" <= ch <= "\u024f" and ch.isalpha()))
    return ok / len(text) if text else 0.0


def _utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 text without a BOM, in whichever byte order reads as Chinese or Latin-script text, or None.

    Read in the wrong order, each ASCII character becomes a rare CJK ideograph or an unassigned code point
    ("H\\x00" -> U+4800), so the right order is the one whose characters are nearly all ordinary."""
    if len(data) % 2 or len(data) < 2:
        return None
    scored = []
    for codec in ("utf-16-le", "utf-16-be"):
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        scored.append((_plausible_share(text[:50_000]), text))
    scored.sort(key=lambda st: -st[0])
    if not scored or scored[0][0] < 0.95 or (len(scored) == 2 and scored[1][0] >= 0.8):
        return None
    return scored[0][1]


def _looks_western(text: str) -> bool:
    """Whether a cp1252 decoding reads as Western European text: no control characters, few accented letters, no
    run of three non-ASCII characters (GBK/Big5 bytes), no symbol inside a word (cp1250's "Zażółć" read as cp1252 is
    "Za¿ó³æ") and no accented capital after a small letter ("ŁódŸ" for "Łódź")."""
    text = text[:100_000]
    if re.search(r"[\x00-\x08\x0b\x0e-\x1f\x7f]|[^\x00-\x7f\xa0]{3}", text):
        return False
    letters = sum(1 for ch in text if ch.isalpha())
    accented = sum(1 for ch in text if ch >= "\x80" and ch.isalpha())
    if accented > max(2, 0.4 * letters):
        return False
    for i in range(1, len(text) - 1):
        ch = text[i]
        if ch < "\x80" or ch in "’·" or not (text[i - 1].isalpha() and text[i + 1].isalpha()):
            continue
        if not ch.isalpha() or ch in "ªºµƒ":
            return False
    return not re.search(r"[a-zß-öø-ÿ][À-ÖØ-ÞŠŒŽŸ]", text)


def _central_european(text: str) -> bool:
    """Signs that a cp1252 reading is cp1250 text: š/ž (rare in Western words) beside è/ì/ù/ø (č/ě/ů/ř read as
    cp1252), ì/ù inside a word (Italian and French put them last), õ before anything but e/s (Hungarian ő;
    Portuguese writes "ões", "põe")."""
    text = text[:100_000]
    if re.search(r"[šžŠŽ]", text) and re.search(r"[èìùøÈÌÙØ]", text):
        return True
    return bool(re.search(r"[^\W\d_][ìù][^\W\d_]|õ(?![es])", text))


# languages whose legacy encodings share most of cp1252's letters (cp1250, cp1254, cp1257)
_NOT_WESTERN = {"Croatian", "Czech", "Estonian", "Hungarian", "Lithuanian", "Polish", "Romanian", "Slovak", "Slovene",
                "Turkish"}


def _western(data: bytes, matches) -> str | None:
    """The cp1252 decoding, if it reads as Western European text and charset-normalizer does not confidently read
    its words as Central European or Turkish (there cp1250/cp1254 are right: cp1252 gives "pøijal" for "přijal").

    charset-normalizer breaks ties by name (cp1250: "Genève" -> "Genčve", "São" -> "Săo"), and on a few accented
    names its scores are noise (cp1257's "déją" less messy than "déjà", a DOS code page's "ni±o" more coherent than
    "niño"), while cp1252 (Latin-1 is its subset) is the far more common encoding of Western text."""
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return None
    if not _looks_western(text) or _central_european(text):
        return None
    same = next((m for m in matches if "cp1252" in m.could_be_from_charset), None)
    if same is not None and same.language in _NOT_WESTERN and same.coherence >= 0.65:
        return None
    return text
