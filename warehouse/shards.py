"""Shards: what a fleet worker hands the warehouse, one committed window at a time, as Parquet files on
shared storage that the one loader (loader.py) applies to the DuckDB file.

The root is a folder path or any fsspec URL (`s3://bucket/sieve`, `gs://…`, `memory://…` in tests): fsspec
opens it, pyarrow writes and reads the Parquet, so another store needs its fsspec package, not code.

    <root>/incoming/<source>/<claim_id>/<part>/fetches.parquet     the fetch log (FetchRow, without HTML)
                                               pages.parquet       the HTML kept (url, fetched_at, html)
                                               discovered.parquet  links found on list pages (FrontierRow)
                                               articles.parquet    ArticleRow
                                               rejections.parquet  Rejection
                                               manifest.json       written last: without it a part is incomplete
    <root>/loaded/...      parts once applied (the warehouse's `shard_loads` is the record; this is for people)
    <root>/rejected/...    parts that cannot be read, with `reason.txt`

A claim's parts: `00000` when its worker starts (no rows: a proof of life), `00001`… one per window,
`end` last (`final`, with how many windows came before it and the worker's summary). Files hold only
what the window has: a part lists its files and row counts in the manifest, and the reader checks them.
A part written again (a retried window) replaces its files, then its manifest.
"""

from __future__ import annotations

import io
import json
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from .batches import TS, utc
from .rows import ArticleRow, FetchRow, FrontierRow, Rejection

FORMAT = 1
MANIFEST = "manifest.json"
# Bounds on what the loader reads from shared storage (another machine wrote it): a part's file, its manifest.
MAX_FILE_BYTES = 1 << 30
MAX_MANIFEST_BYTES = 16 << 20
START_PART, END_PART = "00000", "end"
_STR, _I32, _I64, _F64, _BOOL = pa.string(), pa.int32(), pa.int64(), pa.float64(), pa.bool_()
_FETCH_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("run_id", _STR),
    ("source_id", _STR),
    ("url", _STR),
    ("kind", _STR),
    ("final_url", _STR),
    ("status", _I32),
    ("error", _STR),
    ("detail", _STR),
    ("content_type", _STR),
    ("nbytes", _I64),
    ("elapsed_ms", _I64),
    ("encoding", _STR),
    ("replaced", _BOOL),
    ("attempts", _I32),
    ("etag", _STR),
    ("last_modified", _STR),
    ("fetched_at", TS),
    ("retry_after_s", _F64),
)
_PAGE_COLUMNS = (("url", _STR), ("fetched_at", TS), ("html", _STR))
_DISCOVERED_COLUMNS = (("url", _STR), ("source_id", _STR), ("kind", _STR), ("discovered_from", _STR))
_ARTICLE_COLUMNS = (
    ("article_id", _STR),
    ("source_id", _STR),
    ("url", _STR),
    ("title", _STR),
    ("author", _STR),
    ("account", _STR),
    ("published_at", TS),
    ("text", _STR),
    ("content_hash", _STR),
    ("simhash", pa.uint64()),
    ("flags", _STR),
    ("extractor_version", _STR),
    ("rules_version", _STR),
    ("extracted_at", TS),
    ("page_url", _STR),
    ("html_hash", _STR),
)
_REJECTION_COLUMNS = (
    ("url", _STR),
    ("source_id", _STR),
    ("reason", _STR),
    ("extractor_version", _STR),
    ("rules_version", _STR),
    ("extracted_at", TS),
    ("detail", _STR),
    ("html_hash", _STR),
)


TABLES = ("fetches", "pages", "discovered", "articles", "rejections")


class ShardError(Exception):
    """A part that cannot be used as it is (unreadable, or not what its manifest says)."""


@dataclass
class Shard:
    """One part of a claim's output: a window's rows, or the start or end marker."""

    source_id: str
    claim_id: str
    part: str
    written_at: datetime
    run_id: str | None = None
    revisit_after_s: float = 7 * 86400.0  # the source's revisit_after: how the loader schedules the fetched URLs
    final: bool = False
    windows: int = 0  # on the end part: window parts written before it
    worker: str | None = None  # who wrote it (a Prefect flow run id, host:pid)
    summary: dict[str, Any] = field(default_factory=dict)
    fetches: list[FetchRow] = field(default_factory=list)
    discovered: list[FrontierRow] = field(default_factory=list)
    articles: list[ArticleRow] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def shard_id(self) -> str:
        return shard_id(self.source_id, self.claim_id, self.part)

    @property
    def rows(self) -> int:
        return len(self.fetches) + len(self.discovered) + len(self.articles) + len(self.rejections)


def shard_id(source_id: str, claim_id: str, part: str) -> str:
    return f"{source_id}/{claim_id}/{part}"


def window_part(number: int) -> str:
    return f"{number:05d}"


@dataclass(frozen=True)
class ShardRef:
    """A complete part found under incoming/: its manifest, and where it lies."""

    path: str  # the part's folder, in the store's filesystem
    manifest: dict[str, Any]

    @property
    def shard_id(self) -> str:
        return str(self.manifest["shard_id"])

    @property
    def claim_id(self) -> str:
        return str(self.manifest["claim_id"])

    @property
    def written_at(self) -> datetime:
        return datetime.fromisoformat(self.manifest["written_at"])


def _table(rows: Sequence[Any], columns: tuple[tuple[str, pa.DataType], ...]) -> pa.Table:
    return pa.table({name: pa.array([getattr(r, name) for r in rows], type=kind) for name, kind in columns})


def _rows(table: pa.Table, cls: type, columns: tuple[tuple[str, pa.DataType], ...], **extra: list) -> list:
    data = table.select([name for name, _ in columns]).to_pydict()
    data.update(extra)
    names = list(data)
    return [cls(**dict(zip(names, values, strict=True))) for values in zip(*(data[n] for n in names), strict=True)]


class ShardStore:
    """Shards under one root (a path or an fsspec URL); every method is safe to call from several processes."""

    def __init__(self, root: str) -> None:
        self.root = str(root)
        self.fs, self.base = fsspec.core.url_to_fs(self.root)
        self.base = self.base.rstrip("/")

    def __repr__(self) -> str:
        return f"ShardStore({self.root!r})"

    def _dir(self, area: str, source_id: str, claim_id: str, part: str) -> str:
        return posixpath.join(self.base, area, source_id, claim_id, part)

    # ---- the worker's side --------------------------------------------------------------------
    def write(self, shard: Shard) -> str:
        """Write a part: its Parquet files, then its manifest (by rename where the store has one, so a
        reader never sees half a manifest). Returns the part's folder."""
        folder = self._dir("incoming", shard.source_id, shard.claim_id, shard.part)
        self.fs.makedirs(folder, exist_ok=True)
        html = [r for r in shard.fetches if r.html is not None]
        tables = {
            "fetches": _table(shard.fetches, _FETCH_COLUMNS),
            "pages": _table(html, _PAGE_COLUMNS),
            "discovered": _table(shard.discovered, _DISCOVERED_COLUMNS),
            "articles": _table(shard.articles, _ARTICLE_COLUMNS),
            "rejections": _table(shard.rejections, _REJECTION_COLUMNS),
        }
        files = {}
        for name, table in tables.items():
            if table.num_rows == 0:
                continue
            buffer = io.BytesIO()
            pq.write_table(table, buffer, compression="zstd")
            data = buffer.getvalue()
            self.fs.pipe_file(posixpath.join(folder, f"{name}.parquet"), data)
            files[name] = {"rows": table.num_rows, "bytes": len(data)}
        manifest = {
            "format": FORMAT,
            "shard_id": shard.shard_id,
            "source_id": shard.source_id,
            "claim_id": shard.claim_id,
            "part": shard.part,
            "run_id": shard.run_id,
            "written_at": utc(shard.written_at).isoformat(),
            "revisit_after_s": shard.revisit_after_s,
            "final": shard.final,
            "windows": shard.windows,
            "worker": shard.worker,
            "files": files,
            "summary": shard.summary,
        }
        temporary = posixpath.join(folder, MANIFEST + ".partial")
        self.fs.pipe_file(temporary, json.dumps(manifest, ensure_ascii=False, default=str).encode("utf-8"))
        self.fs.mv(temporary, posixpath.join(folder, MANIFEST))
        return folder

    # ---- the loader's side --------------------------------------------------------------------
    def complete(self, *, claim_id: str | None = None, quarantine: bool = True) -> list[ShardRef]:
        """Parts with a manifest under incoming/ (of one claim, or all), in claim then part order. A manifest
        that cannot be parsed is not returned, and moved to rejected/ when `quarantine`."""
        pattern = posixpath.join(self.base, "incoming", "*", claim_id or "*", "*", MANIFEST)
        refs = []
        for path in sorted(self.fs.glob(pattern)):
            folder = posixpath.dirname(path)
            try:
                if self.fs.size(path) > MAX_MANIFEST_BYTES:
                    raise ShardError(f"manifest larger than {MAX_MANIFEST_BYTES} bytes")
                manifest = json.loads(self.fs.cat_file(path))
                if manifest.get("format") != FORMAT or not isinstance(manifest.get("files"), dict):
                    raise ShardError(f"unknown shard format {manifest.get('format')!r}")
                datetime.fromisoformat(manifest["written_at"])
                for key in ("shard_id", "source_id", "claim_id", "part"):
                    if not isinstance(manifest.get(key), str):
                        raise ShardError(f"manifest key {key!r} missing")
            except (ValueError, KeyError, TypeError, ShardError) as exc:
                if quarantine:
                    self._move(folder, "rejected", reason=f"unreadable manifest: {exc}")
                continue
            except FileNotFoundError:  # another loader moved it meanwhile
                continue
            refs.append(ShardRef(folder, manifest))
        return sorted(refs, key=lambda r: (r.manifest["claim_id"], r.manifest["part"]))

    def read(self, ref: ShardRef) -> Shard:
        """The part's rows; ShardError if a file is missing, unreadable or not the rows its manifest lists."""
        m = ref.manifest
        tables: dict[str, pa.Table] = {}
        if unknown := [name for name in m["files"] if name not in TABLES]:
            raise ShardError(f"unknown file {unknown[0]!r} in the manifest")
        for name, info in m["files"].items():
            path = posixpath.join(ref.path, f"{name}.parquet")
            try:
                if self.fs.size(path) > MAX_FILE_BYTES:
                    raise ShardError(f"{name}.parquet is larger than {MAX_FILE_BYTES} bytes")
                with self.fs.open(path, "rb") as handle:
                    table = pq.read_table(handle)
            except (OSError, pa.ArrowException) as exc:
                raise ShardError(f"{name}.parquet: {exc}") from exc
            if table.num_rows != info.get("rows"):
                raise ShardError(f"{name}.parquet has {table.num_rows} rows, its manifest says {info.get('rows')}")
            tables[name] = table
        try:
            return self._shard(m, tables)
        except (KeyError, TypeError, ValueError, pa.ArrowException) as exc:
            raise ShardError(f"columns do not match the shard format: {exc}") from exc

    @staticmethod
    def _shard(m: dict[str, Any], tables: dict[str, pa.Table]) -> Shard:
        empty = pa.table({})

        def rows(name: str, cls: type, columns: tuple, **extra: list) -> list:
            table = tables.get(name, empty)
            return _rows(table, cls, columns, **extra) if table.num_rows else []

        html: dict[tuple[str, datetime], str] = {}
        if (pages := tables.get("pages")) is not None:
            data = pages.to_pydict()
            html = {(u, t): h for u, t, h in zip(data["url"], data["fetched_at"], data["html"], strict=True)}
        fetches = []
        if (table := tables.get("fetches")) is not None and table.num_rows:
            keys = zip(table.column("url").to_pylist(), table.column("fetched_at").to_pylist(), strict=True)
            fetches = _rows(table, FetchRow, _FETCH_COLUMNS, html=[html.get(k) for k in keys])
        return Shard(
            source_id=m["source_id"],
            claim_id=m["claim_id"],
            part=m["part"],
            run_id=m.get("run_id"),
            written_at=datetime.fromisoformat(m["written_at"]),
            revisit_after_s=float(m["revisit_after_s"]),
            final=bool(m.get("final")),
            windows=int(m.get("windows") or 0),
            worker=m.get("worker"),
            summary=dict(m.get("summary") or {}),
            fetches=fetches,
            discovered=rows("discovered", FrontierRow, _DISCOVERED_COLUMNS),
            articles=rows("articles", ArticleRow, _ARTICLE_COLUMNS),
            rejections=rows("rejections", Rejection, _REJECTION_COLUMNS),
        )

    def archive(self, ref: ShardRef) -> None:
        """The part is applied: move it to loaded/ (a crash before this only means the next loader finds it
        loaded already and moves it then)."""
        self._move(ref.path, "loaded")

    def reject(self, ref: ShardRef, reason: str) -> None:
        self._move(ref.path, "rejected", reason=reason)

    def _move(self, folder: str, area: str, *, reason: str | None = None) -> None:
        relative = posixpath.relpath(folder, posixpath.join(self.base, "incoming"))
        target = posixpath.join(self.base, area, relative)
        try:
            if self.fs.exists(target):
                self.fs.rm(target, recursive=True)
            self.fs.makedirs(posixpath.dirname(target), exist_ok=True)
            self.fs.mv(folder, target, recursive=True)
        except FileNotFoundError:  # another loader moved it first
            return
        if reason is not None:
            self.fs.pipe_file(posixpath.join(target, "reason.txt"), reason.encode("utf-8"))
        self._prune(posixpath.dirname(folder))

    def _prune(self, folder: str) -> None:
        """Remove a claim's folder under incoming/ once its parts are gone (where folders exist at all)."""
        try:
            if not self.fs.ls(folder, detail=False):
                self.fs.rmdir(folder)
        except (FileNotFoundError, OSError):
            pass

    def incomplete(self, *, older_than: timedelta, now: datetime | None = None) -> list[str]:
        """Part folders without a manifest whose newest file is older than `older_than` (a worker that died
        mid-window): their rows were never applied, and the claim's lease gives those URLs to another."""
        now = now or datetime.now(UTC)
        stale = []
        for folder in self.fs.glob(posixpath.join(self.base, "incoming", "*", "*", "*")):
            try:
                if not self.fs.isdir(folder) or self.fs.exists(posixpath.join(folder, MANIFEST)):
                    continue
                files = self.fs.ls(folder, detail=False) or [folder]
                newest = max(_modified(self.fs, f) for f in files)
            except FileNotFoundError:
                continue
            if now - newest >= older_than:
                stale.append(folder)
        return stale

    def clean_incomplete(self, *, older_than: timedelta, now: datetime | None = None) -> list[str]:
        """Delete the part folders `incomplete` names; returns their shard ids."""
        removed = []
        for folder in self.incomplete(older_than=older_than, now=now):
            try:
                self.fs.rm(folder, recursive=True)
            except FileNotFoundError:
                continue
            removed.append(posixpath.relpath(folder, posixpath.join(self.base, "incoming")))
            self._prune(posixpath.dirname(folder))
        return removed


def _modified(fs: Any, path: str) -> datetime:
    stamp = fs.modified(path)
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
