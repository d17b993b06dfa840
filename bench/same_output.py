"""Does a code change alter extraction? Dumps every page's Article/Rejection of every set to JSON and diffs two trees.

    python -m bench.same_output --ref GITREF            # this tree against GITREF (git archive to a temp folder)
    python -m bench.same_output --dump OUT.json [--tree PATH]   # one tree's outputs (internal, or by hand)
    python -m bench.same_output --diff A.json B.json            # two dumps

Sets: the golden corpus (each page with its source's rules and fetch time), the demo pages (demo
rules), and the public sets under ../shared/evaldata (global rules, url ""), the same pages
bench.extraction times. Everything but the two versions is compared: text, title, author, account,
dates, flags, hashes, simhash, reason, detail, meta. Exit 1 when any page differs. Nothing from the
evaldata sets is written into the project: the dumps go to a temporary folder unless told otherwise.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import ROOT

_IGNORED = ("extractor_version", "rules_version")


def _pages() -> list[tuple[str, Any]]:
    from bench.pages import EVALDATA, all_sets, evaldata_set

    sets = all_sets()
    for name in ("daniel_zh_dev",):
        if (EVALDATA / name).is_dir():
            sets.append(evaldata_set(name))
    out = []
    for page_set in sets:
        public = page_set.name in ("daniel_zh_dev", "gne_silver_zh", "scrapinghub_aeb")
        for page in page_set.pages:
            out.append((f"{page_set.name}/{page.name}", page, public, page_set.rules))
    return out


def _record(result: Any) -> dict[str, Any]:
    fields = {name: getattr(result, name) for name in result.__slots__ if name not in _IGNORED} \
        if hasattr(result, "__slots__") else dict(vars(result))
    fields = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in fields.items()}
    fields["kind"] = type(result).__name__
    return json.loads(json.dumps(fields, default=repr, ensure_ascii=False))


def dump(tree: str | None, out: Path) -> None:
    if tree:
        sys.path.insert(0, tree)   # extractors, crawler, flows, demo from that tree; bench from this one
    pages = _pages()
    from extractors import extract

    result = {}
    for name, page, public, set_rules in pages:
        if public:   # as bench.extraction --ref times them
            got = extract(page.html, "")
        else:
            got = extract(page.html, page.url, page.rules or set_rules, fetched_at=page.fetched_at)
        result[name] = _record(got)
    out.write_text(json.dumps(result, ensure_ascii=False, sort_keys=True, indent=0), encoding="utf-8")


def diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    lines = []
    for name in sorted(set(a) | set(b)):
        if a.get(name) == b.get(name):
            continue
        left, right = a.get(name) or {}, b.get(name) or {}
        keys = sorted(k for k in set(left) | set(right) if left.get(k) != right.get(k))
        lines.append(f"{name}: " + ", ".join(f"{k}: {str(left.get(k))[:60]!r} -> {str(right.get(k))[:60]!r}" for k in keys))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", default="")
    parser.add_argument("--dump", default="")
    parser.add_argument("--tree", default="")
    parser.add_argument("--keep", default="", help="with --ref: a folder to keep the two dumps in")
    parser.add_argument("--diff", nargs=2, default=None, metavar="DUMP")
    args = parser.parse_args(argv)
    if args.diff:
        a, b = (json.loads(Path(p).read_text(encoding="utf-8")) for p in args.diff)
        changed = diff(a, b)
        print("\n".join(changed + [f"{len(a)} pages compared: {len(changed)} differ"]))
        return 1 if changed else 0
    if args.dump:
        dump(args.tree or None, Path(args.dump))
        return 0
    if not args.ref:
        parser.error("--ref or --dump")
    with tempfile.TemporaryDirectory(prefix="sieve-same-") as tmp:
        old = Path(tmp) / "tree"
        old.mkdir()
        archive = subprocess.run(["git", "archive", args.ref], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        keep = Path(args.keep) if args.keep else Path(tmp)
        keep.mkdir(parents=True, exist_ok=True)
        dumps = {"ref": keep / "ref.json", "this": keep / "this.json"}
        for label, tree in (("ref", str(old)), ("this", "")):
            cmd = [sys.executable, "-m", "bench.same_output", "--dump", str(dumps[label])] + (["--tree", tree] if tree else [])
            subprocess.run(cmd, cwd=ROOT, check=True)
        a = json.loads(dumps["ref"].read_text(encoding="utf-8"))
        b = json.loads(dumps["this"].read_text(encoding="utf-8"))
    changed = diff(a, b)
    for line in changed:
        print(line)
    print(f"{len(a)} pages compared ({args.ref} vs this tree): {len(changed)} differ")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
