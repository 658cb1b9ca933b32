"""Learning benchmark: train a preset on tasks x seeds, one run after another, and summarise.

    python benchmarks/learning.py --preset cpu --tasks cartpole-swingup --seeds 0 1 2
    python benchmarks/learning.py --preset cpu --tasks reacher-easy cup-catch --seeds 0 1 2

Each (task, seed) is one ordinary `planet train` run, started as its own process, in
`RUNS/<task>-s<seed>/`. The script resumes where it stopped: a finished run is skipped, an
unfinished one continues with `planet train --resume` (runs resume exactly), a missing one
starts. Run folders live under the ignored `runs/`, so a fresh checkout has the results file
but not the folders: an entry the results file records as finished is then kept as it is
(its curve stays in the file) and its run is not trained again; an unfinished run whose
folder is gone starts afresh. After every run, and after a run that was stopped (Ctrl-C,
SIGTERM: its checkpoint is written, its session is recorded with its exit code, and the
script stops), it rewrites the results file
`benchmarks/results/learning-<preset>-<machine>.json` (atomically; read again just before,
so seeds trained side by side by two processes keep each other's entries), one entry per run:
task, seed, the test curve (environment steps and mean noise-free test return of each test
phase), the final and the best test return, the mean return of the random seed episodes,
episodes and environment steps reached, the wall time summed over its sessions with the
commands, commits and load averages of those sessions. Then it draws
`learning-<preset>-<machine>.png/.svg` beside it with `planet plot`'s code: mean and spread
over seeds, random play and the paper's score as reference lines. With every run folder
here it draws train and test curves from them; when some folder is gone (runs trained in
another checkout) and this call trained a run, it draws the test curves that the results
file keeps, so that the figure shows every entry; when it trained nothing, it leaves the
figure as it is.

Extra arguments after `--` go to `planet train` for new runs (e.g. `-- --train.episodes 50`).
The runs share the machine with nothing else only if you make it so: the wall times
(and the target of an hour) mean something only on an otherwise idle machine, so the load
average is recorded at the start and end of every session.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from planet_torch import checkpoint, plot
from planet_torch import config as config_lib
from planet_torch.bench import load_average, source_commit
from planet_torch.runs import CHECKPOINT_NAME, CONFIG_NAME, load_config, read_metrics, task_metric
from planet_torch.train import Counters, finished, run_finished

ROOT = Path(__file__).resolve().parents[1]


def machine_name() -> str:
    """A short name of this machine for file names, e.g. `amd-epyc-2core`."""
    try:
        model = next(line.split(":", 1)[1] for line in Path("/proc/cpuinfo").read_text()
                     .splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or platform.machine()
    words = re.findall(r"[a-z0-9]+", model.lower().replace("(r)", "").replace("(tm)", ""))
    return "-".join([*words[:2], f"{os.cpu_count()}core"])


def run_folder(logdir: Path) -> Path | None:
    """The one run folder `planet train` made under `logdir`, if any."""
    runs = sorted(p for p in logdir.glob("*") if (p / CONFIG_NAME).is_file())
    return runs[-1] if runs else None


def shown(path: Path) -> str:
    """A path relative to the repository when it lies inside it, else absolute."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def progress(run: Path) -> tuple[int, int, bool]:
    """(episodes done, episode budget, finished) of a run folder, from its checkpoint and
    config."""
    train = load_config(run).train
    if not (run / CHECKPOINT_NAME).is_file():
        return 0, train.episodes, False
    counters = Counters(**checkpoint.load(run)["counters"])
    return counters.episodes, train.episodes, finished(train, counters)


def phase_results(records: list[dict[str, float]], metric: str) -> dict[str, Any]:
    """The test curve (environment steps and mean return of each test phase) of `metric`,
    and its final and best value."""
    tests = [(int(r["env_steps"]), float(r[metric])) for r in records if metric in r]
    return {
        "test_curve": [{"env_steps": s, "return": round(v, 2)} for s, v in tests],
        "final_test_return": round(tests[-1][1], 2) if tests else None,
        "best_test_return": round(max(v for _, v in tests), 2) if tests else None,
    }


def summarise(run: Path, task: str, seed: int, sessions: list[dict[str, Any]]) -> dict:
    """One results entry of a run folder; a run of several tasks also gets `tasks`, the test
    results of each (its `test_curve` is their mean)."""
    records = read_metrics(run)
    cfg = load_config(run)
    random_returns = [float(r["train/return"]) for r in records if "train/return" in r]
    episodes, budget, done = progress(run)
    entry = {
        "task": task, "seed": seed, "run_dir": shown(run),
        "episodes": episodes, "episode_budget": budget, "finished": done,
        "env_steps": max((int(r["env_steps"]) for r in records), default=0),
        **phase_results(records, "test/return"),
        "random_return": round(float(np.mean(random_returns[:cfg.train.seed_episodes])), 2)
        if random_returns else None,
        "wall_s": round(sum(s["wall_s"] for s in sessions), 1),
        "sessions": sessions,
    }
    tasks = config_lib.task_list(cfg.task)
    if len(tasks) > 1:
        entry["tasks"] = {name: phase_results(records, task_metric("test/return", name, tasks))
                          for name in tasks}
    return entry


def entry_curves(entry: dict[str, Any]) -> list[plot.RunCurves]:
    """What a results entry keeps of its run for a figure, one item per task: the test
    curve, and the mean return of the seed episodes (a run of several tasks keeps that mean
    over all its tasks only, so its panels get no random line from it)."""
    tasks = entry.get("tasks")
    random = None if tasks else entry.get("random_return")
    curves = []
    for task, found in (tasks or {entry["task"]: entry}).items():
        if not found["test_curve"]:
            continue
        steps, values = np.asarray([(p["env_steps"], p["return"]) for p in found["test_curve"]],
                                   dtype=np.float64).T
        curves.append(plot.RunCurves(ROOT / entry["run_dir"], task,
                                     {"test/return": plot.Curve(steps, values)},
                                     np.asarray([] if random is None else [random])))
    return curves


def draw(output: Path, runs: list[dict[str, Any]], changed: bool) -> str:
    """Draw the figure of `runs` beside `output`; say what became of it.

    From the run folders when all of them are here (train and test curves). A fresh checkout
    lacks the folders of runs trained before: the figure is then drawn from the results
    file (test curves only) if the results `changed` (or `--figure` asks for it), and left
    as it is if not."""
    missing = [e["run_dir"] for e in runs if not (ROOT / e["run_dir"]).is_dir()]
    figure = output.with_suffix(".png")  # and .svg; a stem may hold dots (noise0.1)
    if not missing:
        plot.learning_curves([ROOT / e["run_dir"] for e in runs], figure)
        return f"drew {figure} from the run folders"
    if not changed:
        return (f"trained nothing, so the figure is left as it is (run folders not here: "
                f"{', '.join(missing)})")
    plot.curves_figure([(curves, "") for e in runs for curves in entry_curves(e)], figure)
    return (f"drew {figure} from {output.name}: test curves only, for these run folders "
            f"are not here: {', '.join(missing)}")


def _load() -> float | None:
    """The 1-minute load average, rounded for the results file."""
    load = load_average()
    return None if load is None else round(load, 2)


def train_one(task: str, seed: int, preset: str, logdir: Path, extra: list[str]) -> dict:
    """Start, continue or skip one run; return the session it ran ({} if it was finished)."""
    run = run_folder(logdir)
    if run is not None:
        if run_finished(run):
            return {}
        command = ["planet", "train", "--resume", str(run)]
    else:
        command = ["planet", "train", "--preset", preset, "--task", task, "--seed", str(seed),
                   "--logdir", str(logdir), *extra]
    session = {"command": " ".join(command), "commit": source_commit(),
               "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "load_average_start": _load()}
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "planet_torch.cli", *command[1:]],
                            check=False)
    session["wall_s"] = round(time.perf_counter() - start, 1)
    session["load_average_end"] = _load()
    session["exit_code"] = result.returncode
    return session


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def recorded_runs(output: Path) -> dict[tuple[str, int], dict]:
    """The entries of the results file `output` as it is on disk now, by (task, seed).

    Read afresh each time, so that another learning.py writing the same file meanwhile
    (another seed, run side by side) keeps its entries."""
    results = json.loads(output.read_text()) if output.is_file() else {}
    return {(e["task"], e["seed"]): e for e in results.get("runs", [])}


def record(output: Path, entry: dict) -> list[dict]:
    """The runs of `output` as they are on disk now, with `entry` put in (or replaced)."""
    runs = recorded_runs(output)
    runs[(entry["task"], entry["seed"])] = entry
    return sorted(runs.values(), key=lambda e: (e["task"], e["seed"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Arguments after -- go to planet train.")
    parser.add_argument("--preset", default="cpu", choices=sorted(config_lib.PRESETS),
                        help="the planet train preset every run uses (default: cpu)")
    parser.add_argument("--tasks", nargs="+", default=["cartpole-swingup"],
                        help="tasks to train, e.g. cartpole-swingup reacher-easy "
                             "(default: cartpole-swingup)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2],
                        help="seeds of each task, one run each (default: 0 1 2)")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "learning",
                        help="where the run folders go (default: runs/learning)")
    parser.add_argument("--output", type=Path, default=None,
                        help="results JSON (default: benchmarks/results/"
                             "learning-<preset>-<machine>.json)")
    parser.add_argument("--figure", action="store_true",
                        help="only redraw the figure of the results file --output, from the "
                             "run folders when all are here, else from the file's test curves")
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    output = args.output or (ROOT / "benchmarks" / "results"
                             / f"learning-{args.preset}-{machine_name()}.json")
    if args.figure:
        if not output.is_file():
            raise SystemExit(f"learning.py: {output} does not exist; give the results file "
                             f"with --output")
        print(f"learning.py: {draw(output, list(recorded_runs(output).values()), True)}")
        return 0
    results = json.loads(output.read_text()) if output.is_file() else {}
    results.update({"preset": args.preset, "machine": machine_name(),
                    "cores": os.cpu_count(), "python": platform.python_version()})
    trained = False
    for task in args.tasks:
        for seed in args.seeds:
            logdir = args.runs / args.preset / f"{task}-s{seed}"
            recorded = recorded_runs(output).get((task, seed), {})
            here = run_folder(logdir) is not None
            if not here and recorded.get("finished"):
                print(f"learning.py: {task} seed {seed}: finished in {shown(output)}; its run "
                      f"folder is not here, so its entry is kept as it is", flush=True)
                continue
            # Sessions of an unfinished run whose folder is gone belong to no folder now.
            previous = recorded.get("sessions", []) if here else []
            session = train_one(task, seed, args.preset, logdir, extra)
            sessions = [*previous, session] if session else previous
            trained = trained or bool(session)
            run = run_folder(logdir)
            if run is None:  # it stopped before making its run folder
                raise SystemExit(f"learning.py: `{session['command']}` exited with "
                                 f"{session['exit_code']} before it began")
            entry = summarise(run, task, seed, sessions)
            results["runs"] = record(output, entry)
            write_json(output, results)
            if session.get("exit_code"):  # stopped or failed: its session is recorded
                raise SystemExit(f"learning.py: `{session['command']}` exited with "
                                 f"{session['exit_code']}; rerun this script to resume")
            print(f"learning.py: {task} seed {seed}: final test return "
                  f"{entry['final_test_return']}, {entry['wall_s']} s", flush=True)
    print(f"learning.py: wrote {output}; "
          f"{draw(output, list(recorded_runs(output).values()), trained)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
