"""What only blinkroot can answer: its CPUID, its loader's less common formats."""

import shutil
import subprocess

import pytest

from guestlib import build, run_blinkroot, run_native, toolchain_available


def test_cpuid_names_blinkroot_and_hides_what_the_engine_cannot_run():
    if not toolchain_available("musl"):
        pytest.skip("musl-gcc not installed")
    exe = build("cpuid_view", "musl")
    out, err, status = run_blinkroot([str(exe)])
    assert status == 0, err
    text = out.decode()
    assert "hypervisor leaf: blinkrootVM" in text
    assert "hypervisor bit: 1" in text
    assert "avx: 0 fma: 0 xsave: 0 sse4.2: 1" in text
    assert "avx2: 0 avx512f: 0" in text


def test_static_pie_runs_like_native(tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    src = tmp_path / "spie.c"
    src.write_text('#include <stdio.h>\nint main(int c, char **v) '
                   '{ printf("static-pie %d %s\\n", c, v[1]); return 4; }\n')
    exe = tmp_path / "spie"
    built = subprocess.run(["gcc", "-static-pie", "-O1", str(src), "-o", str(exe)],
                           capture_output=True)
    if built.returncode:
        pytest.skip("gcc cannot link static-pie here: " + built.stderr.decode()[-200:])
    assert run_blinkroot([str(exe), "x"]) == run_native([str(exe), "x"])
