"""`sense-preflight gpu-probe`: what the NVIDIA driver shows to a pod on a GPU node (NVML).

NVML comes from `nvidia-ml-py` (module `pynvml`), imported only here; it talks to the driver's
libnvidia-ml.so.1, which the NVIDIA container runtime mounts into a GPU pod.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any


class NoGpu(Exception):
    """No GPU can be seen from here; the message says why, in one line."""


@dataclass(frozen=True)
class Gpu:
    """One GPU as NVML reports it."""

    index: int
    name: str
    memory_mib: int
    uuid: str


@dataclass(frozen=True)
class GpuReport:
    """The driver, the CUDA version it supports, and its GPUs."""

    driver: str
    cuda: str
    gpus: tuple[Gpu, ...]


def _text(value: Any) -> str:
    """NVML strings are bytes in older nvidia-ml-py releases."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _why(nvml: Any, exc: Exception) -> str:
    """A one-line reason for an NVML error."""
    if isinstance(exc, nvml.NVMLError_LibraryNotFound):
        return (
            "no NVIDIA driver here (libnvidia-ml.so.1 not found): not a GPU node, or the pod "
            "runs without the NVIDIA container runtime (request nvidia.com/gpu)"
        )
    if isinstance(exc, nvml.NVMLError_DriverNotLoaded):
        return "the NVIDIA kernel driver is not loaded on this node"
    return f"NVML error: {exc}"


def probe() -> GpuReport:
    """Ask NVML for the driver, the CUDA version and every GPU; NoGpu when there is none."""
    try:
        import pynvml as nvml
    except ImportError:
        raise NoGpu("nvidia-ml-py is not installed (pip install nvidia-ml-py)") from None
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        raise NoGpu(_why(nvml, exc)) from None
    try:
        cuda = int(nvml.nvmlSystemGetCudaDriverVersion_v2())
        gpus = []
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            gpus.append(
                Gpu(
                    index=index,
                    name=_text(nvml.nvmlDeviceGetName(handle)),
                    memory_mib=int(nvml.nvmlDeviceGetMemoryInfo(handle).total) // 2**20,
                    uuid=_text(nvml.nvmlDeviceGetUUID(handle)),
                )
            )
        report = GpuReport(
            driver=_text(nvml.nvmlSystemGetDriverVersion()),
            cuda=f"{cuda // 1000}.{cuda % 1000 // 10}",
            gpus=tuple(gpus),
        )
    except nvml.NVMLError as exc:
        raise NoGpu(_why(nvml, exc)) from None
    finally:
        nvml.nvmlShutdown()
    if not report.gpus:
        raise NoGpu(f"the NVIDIA driver {report.driver} is loaded but sees no GPU")
    return report


def render_text(report: GpuReport) -> str:
    """A few plain lines for a pod log."""
    lines = [f"NVIDIA driver {report.driver}, CUDA {report.cuda}, {len(report.gpus)} GPU(s)"]
    lines += [f"  GPU {g.index}: {g.name}, {g.memory_mib} MiB, {g.uuid}" for g in report.gpus]
    return "\n".join(lines) + "\n"


def render_json(report: GpuReport | None, error: str = "") -> str:
    """The report (or the reason there is none) as JSON."""
    data: dict[str, Any] = asdict(report) if report else {"driver": None, "cuda": None, "gpus": []}
    if error:
        data["error"] = error
    return json.dumps(data, indent=2) + "\n"
