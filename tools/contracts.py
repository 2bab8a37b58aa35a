"""Generate Python code for protos/ into libs/contracts, or check the committed code is current.

Usage: python tools/contracts.py generate | check | image OUT | base-image OUT GIT_REF

Generated modules import each other as ``ssg.<domain>.v1``; they are rewritten once here to
live under the real package ``ssg.contracts`` so no service carries a copy or a sys.path hack.
"""

from __future__ import annotations

import filecmp
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
TARGET = ROOT / "libs" / "contracts" / "src" / "ssg" / "contracts"
_IMPORT = re.compile(r"\b(from|import) ssg\.(?!contracts\b)")


def _includes() -> list[str]:
    """Include paths: our protos, protobuf's well-known types, and googleapis (google.api)."""
    import google.api.annotations_pb2 as annotations

    well_known = Path(grpc_tools.__file__).parent / "_proto"
    googleapis = Path(annotations.__file__).parent.parent.parent
    return [f"-I{PROTOS}", f"-I{well_known}", f"-I{googleapis}"]


def _run_protoc(args: list[str], protos: Path = PROTOS) -> None:
    includes = [f"-I{protos}", *_includes()[1:]]
    sources = sorted(str(p.relative_to(protos)) for p in protos.rglob("*.proto"))
    code = protoc.main(["protoc", *includes, *args, *sources])
    if code != 0:
        sys.exit(f"protoc failed with exit code {code}")


def _generate_into(out: Path) -> None:
    """Run protoc into out/ssg/... then move it under out/ssg/contracts with imports fixed."""
    raw = out / "raw"
    raw.mkdir()
    _run_protoc(
        [
            f"--python_out={raw}",
            f"--grpc_python_out={raw}",
            f"--mypy_out={raw}",
            f"--mypy_grpc_out={raw}",
        ]
    )
    dest = out / "contracts"
    shutil.copytree(raw / "ssg", dest)
    for path in list(dest.rglob("*_pb2_grpc.py*")):
        if "def add_" not in path.read_text():  # messages-only proto: no stubs worth keeping
            path.unlink()
    for path in dest.rglob("*"):
        if path.suffix in {".py", ".pyi"}:
            path.write_text(_IMPORT.sub(r"\1 ssg.contracts.", path.read_text()))
    for folder in [dest, *(p for p in dest.rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()
    (dest / "py.typed").touch()


def generate() -> None:
    """Regenerate libs/contracts from protos/."""
    with tempfile.TemporaryDirectory() as tmp:
        _generate_into(Path(tmp))
        shutil.rmtree(TARGET, ignore_errors=True)
        shutil.copytree(Path(tmp) / "contracts", TARGET)


def check() -> None:
    """Fail when the committed generated code differs from what protos/ generates."""
    with tempfile.TemporaryDirectory() as tmp:
        _generate_into(Path(tmp))
        fresh = Path(tmp) / "contracts"
        stale = _differences(filecmp.dircmp(fresh, TARGET, ignore=["__pycache__"]))
    if stale:
        sys.exit("libs/contracts is stale, run `make protos`: " + ", ".join(sorted(stale)))


def _differences(cmp: filecmp.dircmp[str]) -> list[str]:
    found = [*cmp.left_only, *cmp.right_only, *cmp.diff_files]
    for sub in cmp.subdirs.values():
        found.extend(_differences(sub))
    return found


def image(out: str) -> None:
    """Write a binary descriptor image (with imports) that buf can lint and compare."""
    _run_protoc([f"--descriptor_set_out={out}", "--include_imports", "--include_source_info"])


def base_image(out: str, ref: str) -> None:
    """Write the descriptor image of protos/ as of git ref, for `buf breaking`; none if absent."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", ref, "protos"], capture_output=True, check=False
        )
        if archive.returncode != 0:
            print(f"no protos/ at {ref}: nothing to compare against")
            return
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        _run_protoc(
            [f"--descriptor_set_out={out}", "--include_imports", "--include_source_info"],
            Path(tmp) / "protos",
        )


if __name__ == "__main__":
    match sys.argv[1:]:
        case ["generate"]:
            generate()
        case ["check"]:
            check()
        case ["image", out]:
            image(out)
        case ["base-image", out, ref]:
            base_image(out, ref)
        case _:
            sys.exit(__doc__)
