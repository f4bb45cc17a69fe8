"""The Python image check and the bootloader's C check give the same verdict, rule for rule, on one
corpus of corrupted images (fota_testkit.corpus): the hand-written cases name the rule that must
refuse each image; the random corruptions must be refused (or accepted) by both for the same reason."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from fota_formats.errors import ImageError
from fota_formats.image import validate_image
from fota_formats.spec import IMAGE
from fota_testkit.corpus import Case, corpus
from fota_testkit.server import make_image
from stm32_fota.build import BuildResult

C = IMAGE.constants


def python_fault(case: Case) -> str:
    try:
        validate_image(case.data, case.slot)
    except ImageError as e:
        assert e.fault is not None, f"{case.name}: refused without a named rule: {e}"
        return e.fault
    return "ok"


def c_faults(runner: Path, tmp_path: Path, cases: list[Case]) -> dict[str, str]:
    """The bootloader's verdict on every case: one runner process per slot."""
    out = {}
    for slot in sorted({c.slot for c in cases}):
        mine = [c for c in cases if c.slot == slot]
        files = []
        for i, case in enumerate(mine):
            f = tmp_path / f"slot{slot}-case-{i}.bin"
            f.write_bytes(case.data)
            files.append(str(f))
        proc = subprocess.run([str(runner), "validate", str(slot), *files], capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 0 and not proc.stderr, proc.stdout + proc.stderr
        lines = proc.stdout.split()
        assert len(lines) == len(mine), proc.stdout
        out.update({c.name: line for c, line in zip(mine, lines, strict=True)})
    return out


def _check(runner: Path, tmp_path: Path, cases: list[Case]) -> None:
    verdicts = c_faults(runner, tmp_path, cases)
    wrong = []
    for case in cases:
        py = python_fault(case)
        c = verdicts[case.name]
        if case.fault == "?" and py in ("truncated", "trailing"):
            # The corruption moved ii_image_size past or before the file's end: only a file can say
            # so; the bootloader must still refuse what it then finds in the slot.
            if c == "ok":
                wrong.append(f"{case.name}: Python {py}, C accepts it")
        elif case.fault == "?":       # a random corruption: both refuse by the same rule, or accept
            if py != c:
                wrong.append(f"{case.name}: Python {py}, C {c}")
        elif (py, c) != (case.fault, case.bootloader_fault):
            wrong.append(f"{case.name}: expected Python {case.fault} / C {case.bootloader_fault}, "
                         f"got {py} / {c}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("slot", [C["SLOT_A"], C["SLOT_B"]])
def test_fake_images_get_the_same_verdict(runner: Path, tmp_path: Path, slot: int) -> None:
    cases = corpus(make_image(slot, "1.2.3", body=4096), slot, fuzz=150, seed=slot)
    assert {c.fault for c in cases} >= {"ok", "erased", "bad-magic", "bad-format", "wrong-slot",
                                        "bad-load-addr", "bad-size", "bad-trailer", "bad-vectors",
                                        "bad-hash", "truncated", "trailing"}
    _check(runner, tmp_path, cases)


def test_real_images_get_the_same_verdict(runner: Path, tmp_path: Path, fw_build: BuildResult) -> None:
    for name, slot in (("slot-a.bin", C["SLOT_A"]), ("slot-b.bin", C["SLOT_B"])):
        image = (fw_build.build_dir / name).read_bytes()
        (tmp_path / name).mkdir()
        _check(runner, tmp_path / name, corpus(image, slot, fuzz=60, seed=7))


def test_the_corpus_can_fail(runner: Path, tmp_path: Path) -> None:
    """A validator that disagreed would be caught: a case given the wrong expectation fails."""
    image = make_image(C["SLOT_A"], "1.0.0")
    bad = Case("mislabelled", image, C["SLOT_A"], "bad-hash")
    with pytest.raises(AssertionError, match="mislabelled: expected Python bad-hash"):
        _check(runner, tmp_path, [bad])
