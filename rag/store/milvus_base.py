"""The Milvus store's layout: connections, collections and their fields, versioned rows, expressions, lexical weights.

Six collections per store (names `PREFIX` + chunks, sentences, articles, sources, words, terms) and one `PREFIX
meta` holding the format (row FORMAT_ROW), the published version (row PUBLISHED_ROW) and the writer's lock (row
LOCK_ROW). Every row of the first five carries `v_from` (the version that added it) and `v_to` (the version that
deleted it, ALIVE while live): a reader of published version P sees the rows with v_from <= P < v_to. A writer
adds rows at P + 1 and marks the rows it deletes with v_to = P + 1, then flips the published row last; until then
readers see P unchanged. Rows are never edited otherwise (an updated article gets new rows), so a chunk id names
the same text and vectors for its lifetime. A term's row (primary key: a hash of the term, so that a question's
terms are looked up by key: a scalar filter scanned 193k terms in ~400 ms on milvus-lite, keys in ~2 ms) holds
its document frequency at its last HISTORY versions; a reader takes the newest at or before its own."""
from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from ..errors import IndexMismatchError, RagError

MILVUS_FORMAT = 1  # the layout below; a store of another format is refused by name (IndexMismatchError)
# chunks and articles carry FLAG (rag.types.Article.date_from_text), the format unchanged: a store made before has
# no such field (Milvus Lite cannot add one to a collection) and reads False; a writer to it notes that it is not kept
FLAG = "date_from_text"
FLAGGED = ("chunks", "articles")  # the collections carrying it
ALIVE = 2**62  # v_to of a live row
FORMAT_ROW, PUBLISHED_ROW, LOCK_ROW = 1, 2, 3
TEXT = 65_535  # bytes: Milvus's largest VARCHAR
PART_CHARS = 16_000  # characters of an article's body per row (<= TEXT bytes in any UTF-8)
WINDOW = 16_000  # rows per scan query (Milvus returns at most 16,384 rows per query)
IN_BATCH = 1_000  # values per `x in [...]` expression
INSERT_BATCH = 500
K1, B = 1.2, 0.75  # as rag.index.lexical
LEXICAL_MODES = ("sparse", "bm25")
COLLECTIONS = ("chunks", "sentences", "articles", "sources", "words", "terms")
VERSIONED = COLLECTIONS[:5]  # rows with v_from / v_to (terms keep a history instead)
HISTORY = 3  # (version, df) pairs a term row keeps: enough for readers of the last two versions
DUMMY = "_v"  # Milvus wants a vector field in every collection: a 2-d zero vector where there is no real one


@dataclass(frozen=True)
class StoreInfo:
    """What the store was built with and what its published version holds (the local Manifest's fields that
    retrieval reads), read from the meta collection."""

    embedder: str
    dim: int
    second_embedder: str
    second_dim: int
    tokenizer: str
    tokens: int
    chunk_size: int
    chunk_overlap: int
    lexical: str
    avgdl: float  # the average chunk length BM25 weights were computed with (0 before the first chunk)
    created: str
    uid: str = ""  # made anew with the store: what a process's caches of its rows are keyed by
    version: int = 0
    articles: int = 0
    chunks: int = 0
    length: int = 0  # lexical tokens of the live chunks
    splitter: int = 1
    next_chunk_id: int = 1
    next_sentence_id: int = 1
    next_row_id: int = 1
    last_indexed: str = ""
    removed: int = 0  # articles deleted or replaced in any version (the lexicon then checks its words are live)
    partial_run: dict | None = None

    @property
    def generation(self) -> str:
        return f"v{self.version:06d}"

    def format_json(self) -> str:
        keys = ("embedder", "dim", "second_embedder", "second_dim", "tokenizer", "tokens", "chunk_size",
                "chunk_overlap", "lexical", "avgdl", "created", "uid")
        return json.dumps({"store_format": MILVUS_FORMAT, **{k: getattr(self, k) for k in keys}}, ensure_ascii=False)

    def published_json(self) -> str:
        keys = ("version", "articles", "chunks", "length", "splitter", "next_chunk_id", "next_sentence_id",
                "next_row_id", "last_indexed", "removed", "partial_run")
        return json.dumps({k: getattr(self, k) for k in keys}, ensure_ascii=False)


# ---------------------------------------------------------------- connections


_CLIENTS: dict[str, object] = {}
_LOADED: set[tuple[str, str]] = set()
_LOCK = threading.Lock()


def client(uri: str):
    """The process's MilvusClient for `uri` (a milvus-lite `.db` path or http(s)://host:port), made once."""
    with _LOCK:
        c = _CLIENTS.get(uri)
        if c is None:
            try:
                from pymilvus import MilvusClient
            except ImportError:
                raise RagError("the Milvus store needs pymilvus and milvus-lite: "
                               "pip install 'rag-news[milvus]'") from None
            try:
                c = MilvusClient(uri)
            except Exception as e:  # noqa: BLE001 - pymilvus raises its own exceptions with the server's text
                raise RagError(f"{uri}: cannot connect to Milvus ({_first_line(e)}); for a milvus-lite file, only "
                               "one process may open it: run `milvus-lite server` and use --store http://HOST:PORT "
                               "(docs/scale-out.md)") from None
            _CLIENTS[uri] = c
        return c


def forget_client(uri: str) -> None:
    """Drop the cached client (tests, and a store dropped and made again)."""
    with _LOCK:
        _CLIENTS.pop(uri, None)
        for key in [k for k in _LOADED if k[0] == uri]:
            _LOADED.discard(key)


def ensure_loaded(uri: str, names: Iterable[str]) -> None:
    """Load collections into memory once per process (milvus-lite releases them when a file is reopened)."""
    c = client(uri)
    for name in names:
        if (uri, name) in _LOADED:
            continue
        c.load_collection(name)
        with _LOCK:
            _LOADED.add((uri, name))


_FIELDS: dict[tuple[str, str, str], frozenset[str]] = {}


def field_names(uri: str, coll: str, uid: str) -> frozenset[str]:
    """A collection's field names, read once per store (`uid`: a store's fields never change; a rebuilt store has
    another uid)."""
    key = (uri, coll, uid)
    with _LOCK:
        got = _FIELDS.get(key)
    if got is None:
        got = frozenset(f["name"] for f in client(uri).describe_collection(coll)["fields"])
        with _LOCK:
            _FIELDS[key] = got
    return got


def _first_line(e: BaseException) -> str:
    return (str(e).splitlines() or [e.__class__.__name__])[0][:300]


# ---------------------------------------------------------------- schemas


def create_collections(uri: str, prefix: str, dim: int, second_dim: int, lexical: str) -> None:
    """The seven collections of a new store, with their indexes (loaded)."""
    from pymilvus import DataType, Function, FunctionType

    c = client(uri)

    def new(name: str, fields: list[tuple], vectors: list[tuple[str, int]], scalar_index: Sequence[str] = (),
            extra=None) -> None:
        schema = c.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        for fname, kind, kw in fields:
            schema.add_field(fname, kind, **kw)
        for vname, vdim in vectors:
            schema.add_field(vname, DataType.FLOAT_VECTOR, dim=vdim)
        params = c.prepare_index_params()
        for vname, _ in vectors:
            params.add_index(vname, index_type="FLAT", metric_type="IP")
        for fname in scalar_index:
            params.add_index(fname, index_type="INVERTED")
        if extra is not None:
            extra(schema, params)
        c.create_collection(prefix + name, schema=schema, consistency_level="Strong")
        # pymilvus polls each index's build every 0.5 s when it is made with the collection: 8 s for a new store
        c.create_index(prefix + name, params, sync=False)

    s = lambda: (DataType.VARCHAR, {"max_length": TEXT})  # noqa: E731
    i = (DataType.INT64, {})
    versioned = [("v_from", *i), ("v_to", *i)]

    def flag(name: str) -> list[tuple]:
        return [(FLAG, DataType.BOOL, {"default_value": False})] if name in FLAGGED else []

    def lexical_field(schema, params):
        if lexical == "bm25":
            schema.add_field("toks", DataType.VARCHAR, max_length=TEXT, enable_analyzer=True,
                             analyzer_params={"tokenizer": "standard"})
            schema.add_field("lex", DataType.SPARSE_FLOAT_VECTOR)
            schema.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["toks"],
                                         output_field_names=["lex"]))
            params.add_index("lex", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                             params={"bm25_k1": K1, "bm25_b": B})
        else:
            schema.add_field("lex", DataType.SPARSE_FLOAT_VECTOR)
            params.add_index("lex", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")

    chunk_fields = [("article_id", *s()), ("ordinal", *i), ("start", *i), ("end_", *i), ("heading", *s()),
                    ("text", *s()), ("text_hash", *s()), ("title", *s()), ("url", *s()), ("published", *s()),
                    ("source", *s()), ("lang", *s()), ("n_tokens", *i), ("sent_first", *i), ("sent_count", *i),
                    *flag("chunks"),
                    *versioned]  # sent_*: the ids of the sentences written with the chunk's article (consecutive)
    vecs = [("vec", dim)] + ([("second", second_dim)] if second_dim else [])
    new("chunks", chunk_fields, vecs, ("article_id", "text_hash"), lexical_field)
    new("sentences", [("article_id", *s()), ("start", *i), ("end_", *i), ("text_hash", *s()), *versioned],
        [("vec", dim)], ("article_id", "text_hash"))
    new("articles", [("article_id", *s()), ("part", *i), ("parts", *i), ("title", *s()), ("url", *s()),
                     ("published", *s()), ("source", *s()), ("content_hash", *s()), ("indexed_at", *s()),
                     ("chars", *i), ("body", *s()), *flag("articles"), *versioned], [(DUMMY, 2)], ("article_id",))
    new("sources", [("path", *s()), ("article_id", *s()), *versioned], [(DUMMY, 2)], ("path", "article_id"))
    new("words", [("word", *s()), *versioned], [("vec", dim)])
    new("terms", [("term", *s()), ("hist", *s()), ("max_v", *i)], [(DUMMY, 2)])
    new("meta", [("value", *s())], [(DUMMY, 2)])
    ensure_loaded(uri, [prefix + n for n in (*COLLECTIONS, "meta")])


def drop_collections(uri: str, prefix: str) -> None:
    c = client(uri)
    for name in (*COLLECTIONS, "meta"):
        if c.has_collection(prefix + name):
            c.drop_collection(prefix + name)
    with _LOCK:
        for key in [k for k in _LOADED if k[0] == uri and k[1].startswith(prefix)]:
            _LOADED.discard(key)


# ---------------------------------------------------------------- meta rows


def read_meta(uri: str, prefix: str) -> dict[int, dict]:
    """The meta rows by id, parsed ({} when the store has none: nothing was built there)."""
    c = client(uri)
    try:
        if not c.has_collection(prefix + "meta"):
            return {}
        ensure_loaded(uri, [prefix + "meta"])
        rows = c.query(prefix + "meta", filter="id >= 0", output_fields=["id", "value"], limit=16,
                       consistency_level="Strong")
    except Exception as e:  # noqa: BLE001 - pymilvus raises its own exceptions with the server's text
        raise RagError(f"{uri}: cannot read the Milvus store ({_first_line(e)})") from None
    return {int(r["id"]): json.loads(r["value"]) for r in rows}


def write_meta(uri: str, prefix: str, row: int, value: str) -> None:
    client(uri).upsert(prefix + "meta", [{"id": row, "value": value, DUMMY: [0.0, 0.0]}])


def published_version(uri: str, prefix: str) -> int | None:
    """The published version (one small query: what a reader polls before each question), or None for no store."""
    c = client(uri)
    name = prefix + "meta"
    try:
        if (uri, name) not in _LOADED:
            if not c.has_collection(name):
                return None
            ensure_loaded(uri, [name])
        rows = c.query(name, filter=f"id == {PUBLISHED_ROW}", output_fields=["value"], consistency_level="Strong")
    except Exception:  # noqa: BLE001 - the store cannot be read: opening it says why
        return None
    return json.loads(rows[0]["value"])["version"] if rows else None


def store_info(where: str, meta: dict[int, dict]) -> StoreInfo:
    """The StoreInfo of meta rows, or IndexMismatchError naming the store (`where`) and the fix."""
    fmt = meta.get(FORMAT_ROW)
    if fmt is None:
        raise RagError(f"{where}: no index in this Milvus store yet. Build one with `rag index PATH --store {where}`.")
    if fmt.get("store_format") != MILVUS_FORMAT:
        raise IndexMismatchError(f"{where}: Milvus store format v{fmt.get('store_format')}, this version reads "
                                 f"v{MILVUS_FORMAT}; rebuild it with `rag index --rebuild --store {where} PATH...`")
    if PUBLISHED_ROW not in meta:
        raise RagError(f"{where}: not an index yet: the first `rag index` into it has not published; run it again "
                       "to finish")
    fields = {k: v for k, v in fmt.items() if k != "store_format"}
    pub = meta[PUBLISHED_ROW]
    try:
        return StoreInfo(**fields, **pub)
    except TypeError as e:
        raise IndexMismatchError(f"{where}: the store's meta rows do not read ({e}); rebuild it with "
                                 f"`rag index --rebuild --store {where} PATH...`") from None


# ---------------------------------------------------------------- expressions and scans


def lit(text: str) -> str:
    """A string literal for a Milvus boolean expression."""
    return '"' + (text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
                  .replace("\t", "\\t")) + '"'


def in_list(field: str, values: Sequence) -> str:
    vals = ", ".join(lit(v) if isinstance(v, str) else str(int(v)) for v in values)
    return f"{field} in [{vals}]"


def live(version: int) -> str:
    return f"v_from <= {version} and v_to > {version}"


def article_filters(date_from: str | None, date_to: str | None, source: str | None) -> list[str]:
    """The date and source filters as rag.index.generation reads them, as expression parts."""
    where = []
    if date_from:
        where.append(f"published >= {lit(date_from)}")
    if date_to:
        where.append(f'published != "" and published <= {lit(date_to if "T" in date_to else date_to + "T23:59:59Z")}')
    if source:
        where.append(f"source == {lit(source)}")
    return where


def query_in(uri: str, coll: str, field: str, values: Sequence, fields: list[str], extra: str = "") -> list[dict]:
    """Rows whose `field` is one of `values` (batched), with `extra` and-ed on."""
    out: list[dict] = []
    values = list(dict.fromkeys(values))
    c = client(uri)
    for n in range(0, len(values), IN_BATCH):
        expr = in_list(field, values[n : n + IN_BATCH]) + (f" and {extra}" if extra else "")
        out.extend(c.query(coll, filter=expr, output_fields=fields, consistency_level="Strong"))
    return out


def scan(uri: str, coll: str, expr: str, fields: list[str], max_id: int) -> list[dict]:
    """Every row matching `expr`, read in windows of WINDOW ids (pymilvus's query iterator took ~30x longer on
    milvus-lite). `max_id`: the highest row id in use."""
    out: list[dict] = []
    c = client(uri)
    for lo in range(0, max_id + 1, WINDOW):
        window = f"id >= {lo} and id < {lo + WINDOW}" + (f" and {expr}" if expr else "")
        out.extend(c.query(coll, filter=window, output_fields=fields, consistency_level="Strong"))
    return out


def count(uri: str, coll: str, expr: str) -> int:
    rows = client(uri).query(coll, filter=expr, output_fields=["count(*)"], consistency_level="Strong")
    return int(rows[0]["count(*)"]) if rows else 0


# ---------------------------------------------------------------- lexical weights


def term_id(term: str) -> int:
    """A term's row key: 63 bits of its hash (a collision between two of a million terms: ~1 in 10 million)."""
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8", "surrogatepass"), digest_size=8).digest(),
                          "little") & 0x7FFF_FFFF_FFFF_FFFF


def df_at(hist: str, version: int) -> int:
    """A term row's document frequency at `version`: its newest (version, df) pair not after it."""
    best = (-1, 0)
    for v, df in json.loads(hist):
        if best[0] < v <= version:
            best = (v, df)
    return best[1]


def term_dim(term: str) -> int:
    """A term's dimension in the sparse lexical vectors: 31 bits of its hash (Milvus wants indices < 2^32 - 1).
    Two terms sharing one collide (about 1 pair in 4,000 at 100k terms): a small, fixed blur of their scores."""
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8", "surrogatepass"), digest_size=4).digest(),
                          "little") & 0x7FFFFFFF


_PLAIN = re.compile(r"[0-9a-z]+")


def analyzer_word(term: str) -> str:
    """A term as one word any Milvus analyzer keeps whole (letters and digits): itself when it is one already,
    else a hash spelled in hex."""
    if _PLAIN.fullmatch(term):
        return term
    return "x" + hashlib.blake2b(term.encode("utf-8", "surrogatepass"), digest_size=6).hexdigest()


def doc_weights(tokens: Sequence[str], avgdl: float) -> dict[int, float]:
    """A chunk's sparse lexical vector: each term's BM25 saturation tf / (tf + k1 (1 - b + b len / avgdl)), in
    float32 as rag.index.lexical.BM25 computes it (term frequencies clipped at 255 as its postings are); a query
    vector of IDF weights then scores BM25 by inner product."""
    counts: dict[str, int] = {}
    for t in tokens:
        counts[t] = counts.get(t, 0) + 1
    norm = np.float32(K1 * ((1 - B) + B * len(tokens) / (avgdl or 1.0)))
    out: dict[int, float] = {}
    for t, tf in counts.items():
        f = np.float32(min(tf, 255))
        d = term_dim(t)
        out[d] = out.get(d, 0.0) + float(f / (norm + f))
    return out


def idf(df: int, n: int) -> np.float32:
    return np.float32(np.log(1 + (n - df + 0.5) / (df + 0.5)))

