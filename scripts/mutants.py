"""Mutation check: plant known PlaNet bugs in a copy of the package and see which tests fail.

Usage: python scripts/mutants.py [--only NAME ...] [--list] [--keep] [--timeout SECONDS]

Each mutation is one exact search/replace in one file of src/planet_torch; the script stops
with an error if a search text is not found exactly once, so a mutation cannot silently rot
when the code changes. Nothing in the repository is touched: for the sanity run and for
every mutant, src/, tests/ and pyproject.toml are copied to a fresh temporary folder, the
mutation is applied to the copy, and pytest runs there with PYTHONPATH=<copy>/src, which is
imported before the editable install. A small pytest plugin (written into the copy) checks,
after collection, that every loaded planet_torch module comes from the copy and that the
mutated module holds the replacement; otherwise the run is refused. The unmutated copy must
pass, or the script stops before any mutant.

Tests run (fast subset, `-m "not slow"`, one torch thread via OMP_NUM_THREADS=1):
tests/test_alignment.py, test_objective.py, test_replay.py, test_rssm.py, test_agent.py,
test_planner.py and test_world_model.py, without the 300-update cartpole learning test
test_world_model.py::test_learns_to_reconstruct_cartpole_frames (a minute of CPU, no
alignment content). 10 to 20 seconds per mutant on a 2-core machine, 3.5 minutes for all.

The result is a table: mutation -> the tests that failed, or SURVIVED. The exit status is 0
when every mutant was killed, 1 when one survived, 2 when the set-up failed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = "planet_torch"
TEST_FILES = [
    "tests/test_alignment.py",
    "tests/test_objective.py",
    "tests/test_replay.py",
    "tests/test_rssm.py",
    "tests/test_agent.py",
    "tests/test_planner.py",
    "tests/test_world_model.py",
]
DESELECTED = ["tests/test_world_model.py::test_learns_to_reconstruct_cartpole_frames"]
PYTEST_ARGS = ["-q", "-p", "no:cacheprovider", "-m", "not slow", "-o", "addopts=",
               "-o", "junit_family=xunit2"]


@dataclass(frozen=True)
class Mutation:
    """One planted bug: replace `search` (found exactly once) by `replace` in `module`."""

    name: str
    module: str
    """Dotted module name, e.g. planet_torch.replay."""
    search: str
    replace: str

    @property
    def path(self) -> Path:
        """The module's file relative to the repository root."""
        return Path("src", *self.module.split(".")).with_suffix(".py")


MUTATIONS = [
    Mutation(
        "reward shift (loss)", "planet_torch.world_model",
        "        loss = negative_elbo(image_mean.float(), obs, reward_mean, inputs.reward, "
        "posterior,",
        "        loss = negative_elbo(image_mean.float(), obs, reward_mean[:, :-1], "
        "inputs.reward[:, 1:], posterior,"),
    Mutation(
        "reward shift (replay)", "planet_torch.replay",
        "            reward[i] = episode.reward[start:start + length]",
        "            reward[i] = np.roll(episode.reward, -1)[start:start + length]"),
    Mutation(
        "reward shift (episode)", "planet_torch.evaluate",
        "    return [Episode(np.stack(o), np.stack(a), np.asarray(r, np.float32))",
        "    return [Episode(np.stack(o), np.stack(a), np.asarray([0.0, *r[2:], 0.0], "
        "np.float32))"),
    Mutation(
        "action shift (loss)", "planet_torch.world_model",
        "        posterior, prior = self.dynamics.observe(embed.float(), inputs.action,",
        "        posterior, prior = self.dynamics.observe(embed.float(), torch.cat("
        "[torch.zeros_like(inputs.action[:, :1]), inputs.action[:, :-1]], 1),"),
    Mutation(
        "action shift (replay)", "planet_torch.replay",
        "            action[i] = episode.action[start:start + length]",
        "            action[i] = np.roll(episode.action, -1, axis=0)[start:start + length]"),
    Mutation(
        "action shift (episode)", "planet_torch.evaluate",
        "    return [Episode(np.stack(o), np.stack(a), np.asarray(r, np.float32))",
        "    return [Episode(np.stack(o), np.stack([a[0], *a[2:], a[0]]), "
        "np.asarray(r, np.float32))"),
    Mutation(
        "decode prior sample", "planet_torch.world_model",
        "            image_mean = self.decoder(feat)",
        "            image_mean = self.decoder(torch.cat([prior.belief, prior.mean + prior.std "
        "* inputs.state_noise], -1))"),
    Mutation(
        "reversed KL", "planet_torch.objective",
        "    kl = kl_divergence(posterior, prior)",
        "    kl = kl_divergence(prior, posterior)"),
    Mutation(
        "free nats per dimension", "planet_torch.objective",
        "    kl_term = free_nats(kl, cfg.free_nats).mean()",
        "    kl_term = free_nats(kl_divergence(posterior.map(lambda x: x[..., None]), "
        "prior.map(lambda x: x[..., None])), cfg.free_nats).sum(-1).mean()"),
    Mutation(
        "no action clipping (planner)", "planet_torch.planner",
        "            candidates = torch.clamp(mean + std * noise.action[i], low, high)",
        "            candidates = mean + std * noise.action[i]"),
    Mutation(
        "no action clipping (agent)", "planet_torch.agent",
        "        action = torch.clamp(action, low, high)",
        "        action = action"),
    Mutation(
        "CEM refit with mean absolute deviation", "planet_torch.planner",
        "            std = elites.std(dim=1, unbiased=False, keepdim=True)",
        "            std = (elites - mean).abs().mean(dim=1, keepdim=True)"),
    Mutation(
        "chunks cross episode boundaries", "planet_torch.replay",
        "        rng = self._rng if rng is None else rng\n"
        "        flat = rng.integers(total, size=batch_size)\n",
        "        rng = self._rng if rng is None else rng\n"
        "        flat = rng.integers(int(self._rows.sum()) - length + 1, size=batch_size)\n"
        "        joined = [np.concatenate(parts) for parts in zip(*self._episodes, strict=True)]\n"
        "        return Batch(*(np.stack([x[s:s + length] for s in flat]) for x in joined))\n"),
    Mutation(
        "batched planning: repeat instead of repeat_interleave", "planet_torch.planner",
        "        start = state.map(lambda x: x[:, None].expand(N, J, *x.shape[1:]).flatten(0, 1))",
        "        start = state.map(lambda x: x.repeat(J, *[1] * (x.dim() - 1)))"),
]

GUARD = '''"""pytest plugin of scripts/mutants.py: refuse to run tests on the wrong code."""
import importlib
import os
import sys

import pytest


def pytest_collection_finish(session):
    root = os.path.realpath(os.environ["MUTANT_SRC"]) + os.sep
    importlib.import_module("planet_torch")
    for name, module in list(sys.modules.items()):
        if name == "planet_torch" or name.startswith("planet_torch."):
            path = getattr(module, "__file__", None)
            if path is None or not os.path.realpath(path).startswith(root):
                raise pytest.UsageError(f"{name} was imported from {path}, not from {root}")
    target = os.environ.get("MUTANT_MODULE")
    if target:
        module = importlib.import_module(target)
        with open(module.__file__, encoding="utf-8") as file:
            if os.environ["MUTANT_REPLACE"] not in file.read():
                raise pytest.UsageError(f"{module.__file__} does not hold the mutation")
    with open(os.environ["MUTANT_CHECKED"], "w", encoding="utf-8") as file:
        file.write(sys.modules[target or "planet_torch"].__file__)
'''


@dataclass
class Outcome:
    """What one pytest run of the subset gave."""

    status: str
    """'ok' (ran to the end), 'timeout' or 'setup' (pytest refused or crashed)."""
    failed: list[str]
    passed: int
    seconds: float
    imported_from: str
    log: str


def copy_tree(destination: Path) -> None:
    """src/, tests/ and pyproject.toml of the repository, without caches or build output."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".pytest_cache")
    for name in ("src", "tests"):
        shutil.copytree(REPO / name, destination / name, ignore=ignore)
    shutil.copy2(REPO / "pyproject.toml", destination / "pyproject.toml")
    (destination / "_mutant_guard.py").write_text(GUARD, encoding="utf-8")


def apply(mutation: Mutation, root: Path) -> None:
    """Plant the mutation in the copy at `root`; raise if the search text is not there once."""
    path = root / mutation.path
    text = path.read_text(encoding="utf-8")
    count = text.count(mutation.search)
    if count != 1:
        raise SystemExit(f"mutation {mutation.name!r}: search text found {count} times in "
                         f"{mutation.path} (expected exactly once); update scripts/mutants.py:"
                         f"\n{mutation.search}")
    path.write_text(text.replace(mutation.search, mutation.replace), encoding="utf-8")


def failures(report: Path) -> tuple[list[str], int]:
    """Failed or erroring test ids (file.py::name) and the number passed, from JUnit XML."""
    failed, passed = [], 0
    for case in ElementTree.parse(report).iter("testcase"):
        test_id = f"{case.get('classname', '').rsplit('.', 1)[-1]}.py::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(test_id)
        elif case.find("skipped") is None:
            passed += 1
    return failed, passed


def run_tests(root: Path, mutation: Mutation | None, timeout: float) -> Outcome:
    """Run the test subset in the copy at `root` (mutated or not)."""
    report, checked = root / "report.xml", root / "checked.txt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), str(root)]),
           "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "MUTANT_SRC": str(root / "src"), "MUTANT_CHECKED": str(checked)}
    env.setdefault("MUJOCO_GL", "egl")
    env.pop("MUTANT_MODULE", None)
    if mutation is not None:
        env.update(MUTANT_MODULE=mutation.module, MUTANT_REPLACE=mutation.replace)
    command = [sys.executable, "-m", "pytest", *PYTEST_ARGS, "-p", "_mutant_guard",
               f"--junitxml={report}", *TEST_FILES,
               *(arg for test in DESELECTED for arg in ("--deselect", test))]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        log, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # pytest and anything it started
        log, _ = process.communicate()
        return Outcome("timeout", [], 0, time.perf_counter() - started, "", log)
    seconds = time.perf_counter() - started
    imported = checked.read_text(encoding="utf-8") if checked.exists() else ""
    # pytest exit codes: 0 all passed, 1 some failed; anything else is a refusal or crash
    if process.returncode not in (0, 1) or not report.exists() or not imported:
        return Outcome("setup", [], 0, seconds, imported, log)
    failed, passed = failures(report)
    return Outcome("ok", failed, passed, seconds, imported, log)


def tail(log: str, lines: int = 30) -> str:
    return "\n".join(log.splitlines()[-lines:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="run only the mutations whose name contains one of these")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copies")
    parser.add_argument("--timeout", type=float, default=1200.0,
                        help="seconds per pytest run before it counts as a timeout")
    args = parser.parse_args()
    selected = [m for m in MUTATIONS
                if not args.only or any(word in m.name for word in args.only)]
    if args.list:
        for mutation in MUTATIONS:
            print(f"{mutation.name}  ({mutation.path})")
        return 0
    if not selected:
        print(f"no mutation matches {args.only}", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="planet-mutants-"))
    try:
        # every search text must match before anything runs
        for i, mutation in enumerate(selected):
            probe = workdir / f"probe-{i}"
            (probe / mutation.path).parent.mkdir(parents=True)
            shutil.copy2(REPO / mutation.path, probe / mutation.path)
            apply(mutation, probe)
        pristine = workdir / "unmutated"
        copy_tree(pristine)
        print(f"sanity run: unmutated copy in {pristine}", file=sys.stderr, flush=True)
        sanity = run_tests(pristine, None, args.timeout)
        if sanity.status != "ok" or sanity.failed:
            print(f"the unmutated copy does not pass ({sanity.status}, failed "
                  f"{sanity.failed}):\n{tail(sanity.log)}", file=sys.stderr)
            return 2
        print(f"  {sanity.passed} passed in {sanity.seconds:.0f} s, planet_torch from "
              f"{sanity.imported_from}", file=sys.stderr, flush=True)
        rows: list[tuple[Mutation, Outcome]] = []
        for i, mutation in enumerate(selected):
            root = workdir / f"mutant-{i:02d}"
            copy_tree(root)
            apply(mutation, root)
            print(f"[{i + 1}/{len(selected)}] {mutation.name} ({mutation.path})",
                  file=sys.stderr, flush=True)
            outcome = run_tests(root, mutation, args.timeout)
            rows.append((mutation, outcome))
            if outcome.status == "setup":
                print(f"  pytest did not run on the mutant:\n{tail(outcome.log)}",
                      file=sys.stderr)
            else:
                print(f"  {outcome.status}: {len(outcome.failed)} failed, {outcome.passed} "
                      f"passed in {outcome.seconds:.0f} s; mutated module "
                      f"{outcome.imported_from}", file=sys.stderr, flush=True)
            if not args.keep:
                shutil.rmtree(root)
    finally:
        if args.keep:
            print(f"copies kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(f"{'mutation':<55} result")
    print("-" * 100)
    survived = setup_failed = False
    for mutation, outcome in rows:
        if outcome.status == "setup":
            result = "NOT RUN (pytest refused or crashed on the mutant)"
            setup_failed = True
        elif outcome.status == "timeout":
            result = f"killed by timeout ({outcome.seconds:.0f} s)"
        elif not outcome.failed:
            result = "SURVIVED"
            survived = True
        else:
            result = f"{len(outcome.failed)} failed: " + ", ".join(outcome.failed)
        print(f"{mutation.name:<55} {result}")
    return 2 if setup_failed else 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
