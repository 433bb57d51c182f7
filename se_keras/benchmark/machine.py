"""What the machine is and what it can do: its CPU and instruction sets, and its own float32
matrix-product rate, timed in the same rounds as the networks, which is the ceiling that
says how close a runtime comes to the hardware."""

import importlib.metadata
import os
import platform

import numpy as np

from se_keras.benchmark import timing

GEMM_SIZE = 2048  # float32 n x n x n: 17 GFLOP, about 0.1 s at 200 GFLOP/s


def gemm_tasks(threads, size=GEMM_SIZE):
    """`{library: (run, flop)}`: one float32 `size`-cubed matrix product at `threads`
    threads in numpy's BLAS and, where torch is installed, in PyTorch's (oneDNN/MKL). Their
    best rate, `flop / seconds`, is the machine's: numpy's OpenBLAS may use AVX2 kernels on
    a CPU with AVX-512, which the runtimes' own kernels do use."""
    import importlib.util

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise ImportError(
            "Timing the machine's GEMM at a thread count needs threadpoolctl: "
            "pip install threadpoolctl"
        ) from None
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size), dtype=np.float32) for _ in range(2))

    def numpy_gemm():
        with threadpool_limits(threads, user_api="blas"):
            return a @ b

    tasks = {"numpy": (numpy_gemm, 2 * size**3)}
    if importlib.util.find_spec("torch") is not None:
        import torch

        torch.set_num_threads(threads)
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        tasks["torch"] = (lambda: torch.mm(ta, tb).numpy(), 2 * size**3)
    return tasks


def describe(threads, tf_threads, wait_policy):
    """The machine and software a run measured: CPU, its instruction sets, threads, versions."""
    versions = {}
    packages = ("tensorflow", "keras", "ai-edge-litert", "onnxruntime", "tf2onnx", "openvino")
    for package in (*packages, "torch", "timm"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    return {
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "threads": threads,
        "tensorflow_threads": tf_threads,
        "torch_omp_wait_policy": wait_policy,
        "int8_dot_product": int8_dot_product(),
        "instruction_sets": instruction_sets(),
        "python": platform.python_version(),
        "versions": versions,
        "load_average_before": timing.load_average(),
    }


# Instructions that multiply-add four int8 pairs into an int32 lane (x86 VNNI and AMX, ARM
# dot product and matrix multiply). Without them XNNPACK's int8 kernels widen to int16 first
# and do about as many multiply-adds per instruction as its float32 ones.
INT8_DOT_PRODUCT = ("avx512_vnni", "avx_vnni", "avx_vnni_int8", "amx_int8", "asimddp", "i8mm")


# The vector and matrix instructions that decide which precision is fast here (the flag
# names of /proc/cpuinfo): float32 FMA width, int8 dot products, bfloat16 arithmetic.
INSTRUCTION_SETS = {
    "avx2": "AVX2",
    "avx512f": "AVX-512F",
    "avx512_vnni": "AVX-512 VNNI",
    "avx_vnni": "AVX-VNNI",
    "avx512_bf16": "AVX-512 BF16",
    "amx_bf16": "AMX-BF16",
    "amx_int8": "AMX-INT8",
    "asimddp": "ARM dot product",
    "i8mm": "ARM int8 matrix multiply",
    "bf16": "ARM BF16",
}


def _cpu_flags(cpuinfo):
    """The first `flags` (x86) or `Features` (ARM) line of `cpuinfo` as a set; None where it
    cannot be read."""
    try:
        with open(cpuinfo) as file:
            for line in file:
                if line.startswith(("flags", "Features")):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def int8_dot_product(cpuinfo="/proc/cpuinfo"):
    """Which of INT8_DOT_PRODUCT the CPU lists in `cpuinfo`; None where it cannot be read."""
    flags = _cpu_flags(cpuinfo)
    return None if flags is None else [name for name in INT8_DOT_PRODUCT if name in flags]


def instruction_sets(cpuinfo="/proc/cpuinfo"):
    """The INSTRUCTION_SETS the CPU lists in `cpuinfo`, by their usual names; None where it
    cannot be read."""
    flags = _cpu_flags(cpuinfo)
    return (
        None
        if flags is None
        else [name for flag, name in INSTRUCTION_SETS.items() if flag in flags]
    )


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
