"""Task and init functions for test_supervise, importable by spawned workers."""

import os
import signal
import time


def run(task: tuple):
    """Do what ``task`` says: ("value", x), ("sleep", s), ("exit", code), ("segv",), ("raise", msg), ("env",)."""
    kind, *args = task
    if kind == "value":
        return args[0]
    if kind == "sleep":
        start = time.time()
        time.sleep(args[0])
        return start, time.time()
    if kind == "exit":
        os._exit(args[0])
    if kind == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
        time.sleep(10)
    if kind == "raise":
        raise ValueError(args[0])
    if kind == "env":
        return os.environ.get("SUPERVISE_SLOT"), os.getpid()
    raise NotImplementedError(kind)


def set_env(slot: int, tag: str) -> None:
    os.environ["SUPERVISE_SLOT"] = f"{slot}:{tag}"


def fail_in_slot(slot: int, bad: int) -> None:
    if slot == bad:
        raise RuntimeError(f"no device for slot {slot}")


def die_in_init(slot: int) -> None:
    os._exit(7)


def fake_gpu_task(task: tuple) -> dict:
    """The GPU runner's task without a GPU: a time that is a function of the request alone (so any worker
    gives the same answer), a short sleep, and the worker's pinned device in ``env["gpu"]``; the kernel ids
    ``shrink/test/hang`` and ``shrink/test/fault`` never return and kill the worker as a CUDA fault does."""
    from dop_tui.measure.record import Measurement
    from dop_tui.scenario import Scenario

    scn_json, kid, cfg, opts = task
    if kid == "shrink/test/hang":
        time.sleep(60)
    if kid == "shrink/test/fault":
        os._exit(13)  # as the GPU worker exits on a CUDA error
    time.sleep(opts.get("sleep_s", 0.01))
    us = 1.0 + sum(v * (i + 1) for i, v in enumerate(sorted(cfg.values()))) % 97 / 10
    env = {"gpu": os.environ.get("CUDA_VISIBLE_DEVICES", ""), "best_seen": str(opts.get("best_us"))}
    return Measurement(Scenario.from_json(scn_json).key, kid, cfg, "ok", us=us, method="fake", env=env).to_json()


def fake_pin_gpu(slot: int, gpu: str, threads: int | None) -> None:
    """The GPU runner's worker init without a GPU: pins ``gpu``; one named "gone" is not usable."""
    os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    if gpu == "gone":
        raise RuntimeError(f"CUDA device {gpu} is not usable in a worker")
