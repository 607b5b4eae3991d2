"""`sense-preflight gpu-probe`: clean without a GPU (this machine), and what it prints with one.

No GPU is lent to these tests, so the "with a GPU" case uses a FAKE `pynvml` module (the
few NVML calls the probe makes, with nvidia-ml-py's names and types), put first on
PYTHONPATH. The real library runs in the "no GPU" case.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.cli import run_cli

FAKE_PYNVML = textwrap.dedent(
    """
    '''A FAKE pynvml: two GPUs behind driver 550.54.15 (CUDA 12.4).'''
    from types import SimpleNamespace

    class NVMLError(Exception):
        pass

    class NVMLError_LibraryNotFound(NVMLError):
        pass

    class NVMLError_DriverNotLoaded(NVMLError):
        pass

    _GPUS = [("NVIDIA L4", 23034), ("NVIDIA A100-SXM4-80GB", 81920)]

    def nvmlInit(): pass
    def nvmlShutdown(): pass
    def nvmlSystemGetDriverVersion(): return "550.54.15"
    def nvmlSystemGetCudaDriverVersion_v2(): return 12040
    def nvmlDeviceGetCount(): return len(_GPUS)
    def nvmlDeviceGetHandleByIndex(i): return i
    def nvmlDeviceGetName(h): return _GPUS[h][0]
    def nvmlDeviceGetUUID(h): return f"GPU-0000000{h}"
    def nvmlDeviceGetMemoryInfo(h): return SimpleNamespace(total=_GPUS[h][1] * 2**20)
    """
)


def test_without_a_gpu_it_says_so_cleanly() -> None:
    result = run_cli("gpu-probe")
    assert result.code == 3
    assert result.stdout == ""
    assert result.stderr.startswith("error: no GPU: no NVIDIA driver here (libnvidia-ml.so.1")
    assert "Traceback" not in result.stderr


def test_without_a_gpu_json_carries_the_reason() -> None:
    result = run_cli("gpu-probe", "--format", "json")
    assert result.code == 3
    report = json.loads(result.stdout)
    assert report["gpus"] == [] and "libnvidia-ml.so.1" in report["error"]


@pytest.fixture
def fake_nvml(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "pynvml.py").write_text(FAKE_PYNVML)
    return {"PYTHONPATH": str(tmp_path)}


def test_with_gpus_text(fake_nvml: dict[str, str]) -> None:
    result = run_cli("gpu-probe", env=fake_nvml)
    assert result.code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "NVIDIA driver 550.54.15, CUDA 12.4, 2 GPU(s)",
        "  GPU 0: NVIDIA L4, 23034 MiB, GPU-00000000",
        "  GPU 1: NVIDIA A100-SXM4-80GB, 81920 MiB, GPU-00000001",
    ]


def test_with_gpus_json(fake_nvml: dict[str, str]) -> None:
    result = run_cli("gpu-probe", "--format", "json", env=fake_nvml)
    report = json.loads(result.stdout)
    assert (report["driver"], report["cuda"]) == ("550.54.15", "12.4")
    assert [g["memory_mib"] for g in report["gpus"]] == [23034, 81920]
