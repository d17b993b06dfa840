"""The writer's memory stays flat however large the file grows: small row groups still merged, DuckDB's blocks
mapped on their own, large batches left to the checkpoint, one DuckDB thread (warehouse/connection.py, lease.py)."""
from __future__ import annotations

import os

import duckdb
import pytest

from warehouse import Warehouse
from warehouse.connection import connect

from .test_warehouse_support import article


def test_the_writer_runs_small_batches_on_one_duckdb_thread_large_ones_and_readers_on_the_default(tmp_path) -> None:
    """Each DuckDB thread of the writer keeps memory of its own, and a crawl's windows gain nothing from a
    second one; a batch of several row groups does, and so does a reader's query."""
    from warehouse.connection import WRITER_PARALLEL_ROWS, WRITER_THREADS

    default = duckdb.connect()
    duckdbs = default.execute("SELECT current_setting('threads')").fetchall()[0][0]
    default.close()
    path = tmp_path / "w.duckdb"
    wh = Warehouse(path, hold_s=30)

    def writer_threads() -> int:
        assert wh._lease.held
        with wh._lease.lock, wh._lease.reading() as cursor:
            return cursor.execute("SELECT current_setting('threads')").fetchall()[0][0]

    wh.record_extractions([article(1)], [])
    assert writer_threads() == WRITER_THREADS == 1
    wh.record_extractions([article(n) for n in range(2, 2 + WRITER_PARALLEL_ROWS)], [])
    assert writer_threads() == duckdbs
    wh.record_extractions([article(1)], [])
    assert writer_threads() == 1
    wh.release()
    reader = connect(path, read_only=True, timeout_s=5)
    try:
        assert reader.execute("SELECT current_setting('threads')").fetchall() == [(duckdbs,)]  # untouched
    finally:
        reader.close()


def test_the_writer_appends_small_row_groups_and_its_checkpoints_still_merge_them(tmp_path) -> None:
    """A checkpoint rewrites in memory what it merges: the writer's row groups stay small (flat memory in a
    long crawl), and its many small lettings go are still merged (a file does not fill with tiny row groups)."""
    from warehouse.connection import WRITER_ROW_GROUP_SIZE

    from .test_warehouse_support import plain_connect

    path = tmp_path / "w.duckdb"
    wh = Warehouse(path, hold_s=30)
    for start in range(1, 6001, 600):  # ten windows, letting go after every second one
        wh.record_extractions([article(n) for n in range(start, start + 600)], [])
        if start % 1200 == 601:
            wh.release()
    for start in range(6001, 6401, 20):  # twenty short runs of 20 articles
        wh.record_extractions([article(n) for n in range(start, start + 20)], [])
        wh.release()
    con = plain_connect(path)
    groups = con.execute(
        "SELECT row_group_id, max(count) FROM pragma_storage_info('articles') GROUP BY ALL ORDER BY 1"
    ).fetchall()
    assert con.execute("SELECT count(*) FROM articles").fetchall() == [(6400,)]
    con.close()
    assert max(rows for _, rows in groups) <= min(WRITER_ROW_GROUP_SIZE, 6400 // 3)  # DuckDB's default: 122,880
    assert len(groups) <= 6400 // WRITER_ROW_GROUP_SIZE + 3   # merged: not one row group per letting go (30)


_MMAPPED_PROBE = """
import ctypes, sys
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
if sys.argv[1] == "write":
    from pathlib import Path
    from warehouse import Warehouse
    from tests.test_warehouse_support import article
    Warehouse(Path(sys.argv[2])).record_extractions([article(1)], [])
libc.free(libc.malloc(1 << 20))  # a mapped block freed: glibc's threshold would rise to 1 MiB here
blocks = [libc.malloc(256 * 1024) for _ in range(400)]  # DuckDB's block size; more than the heap has free
block = blocks[-1]
print(ctypes.c_size_t.from_address(block - ctypes.sizeof(ctypes.c_size_t)).value & 2)  # glibc: IS_MMAPPED
"""


@pytest.mark.skipif(__import__("platform").libc_ver()[0] != "glibc", reason="glibc's allocator only")
def test_a_writing_process_gives_duckdbs_blocks_mappings_of_their_own(tmp_path) -> None:
    """After the writer opens the file, a 256 KiB block is mapped on its own (returned when freed), even
    after a larger mapped block was freed, which otherwise moves glibc's threshold up and such blocks into
    the heap, where a long crawl fragments them."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env["PYTHONPATH"] = str(root)

    def mapped(mode: str) -> str:
        out = subprocess.run([sys.executable, "-c", _MMAPPED_PROBE, mode, str(tmp_path / "w.duckdb")],
                             env=env, cwd=root, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    assert mapped("plain") == "0"   # glibc's own behaviour: the probe can tell
    assert mapped("write") == "2"


def test_a_large_batch_waits_in_the_wal_for_the_checkpoint(tmp_path) -> None:
    """A batch filling several of the writer's small row groups is not written to the file inside its own
    call (DuckDB's optimistic writes would): the call stays as fast as before, the checkpoint writes it."""
    path = tmp_path / "w.duckdb"
    wh = Warehouse(path, hold_s=30)
    wh.record_extractions([article(1)], [])
    wh.release()
    before = path.stat().st_size
    wh.record_extractions([article(n) for n in range(2, 7002)], [])
    assert wh._lease.held
    assert path.stat().st_size == before
    wh.release()
    assert path.stat().st_size > before


_TRIM_PROBE = """
import ctypes
from warehouse.lease import _return_free_heap
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 >> 20
blocks = [libc.malloc(64 * 1024) for _ in range(2000)]  # under the mmap threshold: the heap
for block in blocks:
    ctypes.memset(block, 1, 64 * 1024)
for block in blocks[:-1]:
    libc.free(block)  # the last one stays: the heap's top is held, so glibc keeps the free pages
before = rss_mb()
_return_free_heap()
print(before - rss_mb())
"""


@pytest.mark.skipif(__import__("platform").libc_ver()[0] != "glibc", reason="glibc's allocator only")
def test_letting_go_gives_the_heaps_free_pages_back(tmp_path) -> None:
    """Closing the writer's connection frees DuckDB's memory, but free pages in the middle of the heap stay
    in RSS until returned: letting go returns them (about 125 MB freed here, under a held top block)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env["PYTHONPATH"] = str(root)
    out = subprocess.run([sys.executable, "-c", _TRIM_PROBE], env=env, cwd=root,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) > 100  # MB given back
