"""The paper's experiments on the cpu preset: each design as flags, 3 seeds each, one table.

    python benchmarks/paper_ablations.py                         # every variant, in order
    python benchmarks/paper_ablations.py --variants ssm drnn     # some of them
    python benchmarks/paper_ablations.py --table                 # only redraw the table
    python benchmarks/paper_ablations.py --sweep                 # print each variant's sweep

A variant is `planet train --preset cpu --objective.free_nats 3` (the paper's free nats) plus
a few flags: a model design of paper figure 2 (`--model.kind`), with or without latent
overshooting in either weighting, an agent design of paper section 5 (random collection,
random shooting), one of the official code's choices (reward model size, initial weights, the
CEM variance floor), or one agent for two tasks.
`VARIANTS` lists them with the question each answers.

Each variant's runs go through `learning.py` (one `planet train` process per run, one after
another; a stopped script resumes where it stopped) into `runs/ablations/<variant>/`, and
their results into `benchmarks/results/ablations/<variant>.json` in `learning.py`'s format.
After every variant, and with `--table` alone, `benchmarks/paper_ablations.md` is redrawn
from those files: per variant the final noise-free test return (10 episodes) of every seed,
their median and range, and the difference of the median from the cpu preset's.

On a machine of two cores a run takes about 45 minutes (updates take most of it), so the
whole grid is a matter of days; `--sweep` prints, for each variant, the `planet sweep`
command that runs its seeds in parallel on a Ray cluster instead.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "ablations"
TABLE = ROOT / "benchmarks" / "paper_ablations.md"
TASK = "cartpole-swingup"
SEEDS = (0, 1, 2)
PAPER_FREE_NATS = ("--objective.free_nats", "3")
"""Every variant keeps the paper's free nats, 3: the table's runs were made with them, before
the cpu preset took free nats 1 for its hour (config._cpu, docs/results.md)."""
OVERSHOOTING = ("--objective.overshooting_distance", "31")
"""D = L - 1 = 31, every distance a chunk of the cpu preset's L = 32 steps holds."""


@dataclass(frozen=True)
class Variant:
    """One row of the table: the flags over the cpu preset and what they ask."""

    name: str
    flags: tuple[str, ...]
    question: str
    tasks: tuple[str, ...] = (TASK,)


VARIANTS = (
    Variant("rssm", (), "the cpu preset at free nats 3: RSSM, CEM, planner collection", (
        TASK, "reacher-easy")),
    Variant("rssm-overshooting-paper", (*OVERSHOOTING, "--objective.overshooting_weighting",
                                        "paper"),
            "RSSM with latent overshooting as paper eq. 7 weighs it, (KL_1 + sum KL_d) / D"),
    Variant("rssm-overshooting-reference", (*OVERSHOOTING,
                                            "--objective.overshooting_weighting", "reference"),
            "RSSM with overshooting as the official code weighs it, KL_1 + mean KL_d"),
    Variant("ssm", ("--model.kind", "ssm"), "purely stochastic transitions (paper figure 2)"),
    Variant("ssm-overshooting-reference", ("--model.kind", "ssm", *OVERSHOOTING,
                                           "--objective.overshooting_weighting", "reference"),
            "purely stochastic transitions with latent overshooting (paper figure 2)"),
    Variant("drnn", ("--model.kind", "drnn"),
            "purely deterministic transitions, no KL term (paper figure 2)"),
    Variant("random-collection", ("--train.collection", "random"),
            "training episodes of random actions instead of the planner (paper section 5)"),
    Variant("random-shooting", ("--planner.kind", "random_shooting", "--planner.candidates",
                                "1800"),
            "one round of 1800 candidates (the preset's 300 x 6) instead of CEM "
            "(paper section 5)"),
    Variant("reward-2x100", ("--model.reward_units", "100"),
            "a reward model of 2 x 100, half the paper's 2 x 200 (the preset's until 2026-12-05)"),
    Variant("reward-3x300", ("--model.reward_layers", "3", "--model.reward_units", "300"),
            "reward model of the official code, 3 x 300"),
    Variant("glorot", ("--model.init", "glorot"),
            "the official code's initial weights (Glorot uniform, zero biases)"),
    Variant("cem-min-variance", ("--planner.min_variance", "1e-6"),
            "CEM refits sigma = sqrt(var + 1e-6), as the official planner does"),
    Variant("two-tasks", ("--train.episodes", "120"),
            "one agent for cartpole-swingup and reacher-easy, 60 episodes of each",
            (f"{TASK},reacher-easy",)),
)
BY_NAME = {v.name: v for v in VARIANTS}


def load_learning() -> Any:
    """benchmarks/learning.py as a module (the benchmarks are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("learning", ROOT / "benchmarks" /
                                                  "learning.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def results_file(variant: Variant, results: Path) -> Path:
    return results / f"{variant.name}.json"


def run_variant(variant: Variant, seeds: tuple[int, ...], preset: str, runs: Path,
                results: Path, extra: tuple[str, ...] = ()) -> None:
    """Train (or resume, or skip) every run of a variant with learning.py."""
    args = ["--preset", preset, "--tasks", *variant.tasks, "--seeds", *map(str, seeds),
            "--runs", str(runs / variant.name), "--output",
            str(results_file(variant, results)), "--", *PAPER_FREE_NATS, *variant.flags, *extra]
    print(f"paper_ablations.py: {variant.name}: {variant.question}", flush=True)
    load_learning().main(args)


def sweep_command(variant: Variant, seeds: tuple[int, ...], preset: str) -> str:
    """The `planet sweep` command that runs the variant's seeds in parallel on Ray."""
    seed_list = ",".join(map(str, seeds))
    tasks = ",".join(task.replace(",", "+") for task in variant.tasks)  # a+b: one agent
    return " ".join(["planet sweep", "--preset", preset, "--tasks", tasks, "--seeds", seed_list,
                     "--name", variant.name, *PAPER_FREE_NATS, *variant.flags])


def final_returns(entries: list[dict[str, Any]], task: str) -> list[tuple[int, float]]:
    """(seed, final test return in `task`) of every finished run that played `task`."""
    found = []
    for entry in entries:
        if not entry.get("finished"):
            continue
        if entry["task"] == task and entry["final_test_return"] is not None:
            found.append((entry["seed"], entry["final_test_return"]))
        elif task in entry.get("tasks", {}):
            found.append((entry["seed"], entry["tasks"][task]["final_test_return"]))
    return sorted(found)


def read_results(variant: Variant, results: Path) -> list[dict[str, Any]]:
    path = results_file(variant, results)
    return json.loads(path.read_text()).get("runs", []) if path.is_file() else []


def paired_difference(finals: list[tuple[int, float]], baseline: dict[int, float]
                      ) -> float | None:
    """Median of the variant's final returns minus the median of the baseline's on the same
    seeds (so a variant with seed 0 only is set against the baseline's seed 0); None when
    they share no seed."""
    shared = [(seed, value) for seed, value in finals if seed in baseline]
    if not shared:
        return None
    return (statistics.median(value for _, value in shared)
            - statistics.median(baseline[seed] for seed, _ in shared))


def row(variant: Variant, entries: list[dict[str, Any]], task: str, seeds: int,
        baseline: dict[int, float]) -> str:
    """One Markdown table row: the variant's final returns in `task`, median, range and the
    paired difference from the baseline's (`paired_difference`)."""
    finals = final_returns(entries, task)
    flags = " ".join(variant.flags) or "(none)"
    cells = [f"`{variant.name}`", variant.question, f"`{flags}`",
             ", ".join(f"{value:.0f}" for _, value in finals) or "not measured yet",
             f"{len(finals)} / {seeds}"]
    if finals:
        values = [value for _, value in finals]
        median = statistics.median(values)
        difference = None if variant.name == "rssm" else paired_difference(finals, baseline)
        cells += [f"{median:.0f}", f"{min(values):.0f} to {max(values):.0f}",
                  "" if difference is None else f"{difference:+.0f}"]
    else:
        cells += ["", "", ""]
    return "| " + " | ".join(cells) + " |"


def table(results: Path) -> str:
    """benchmarks/paper_ablations.md from the results files; a row counts its seeds against
    the grid's SEEDS, whichever seeds the run that redraws it was asked for."""
    seeds = len(SEEDS)
    entries = {v.name: read_results(v, results) for v in VARIANTS}
    baseline = dict(final_returns(entries["rssm"], TASK))
    lines = [
        "# The paper's experiments on the cpu preset",
        "",
        "Drawn by `python benchmarks/paper_ablations.py --table` from",
        "`benchmarks/results/ablations/<variant>.json`, which hold every run's test curve,",
        "command, commit, wall time and load average; `<variant>.png` beside each draws its",
        "test curves (`python benchmarks/learning.py --output <variant>.json --figure`",
        "redraws it). Each variant is `planet train --preset cpu --objective.free_nats 3`",
        "(the paper's free nats) with the flags shown; the return is the final noise-free",
        f"test return (mean of 10 episodes) after 60 episodes of {TASK}, one value per seed;",
        "\"vs rssm\" is the median's difference from the cpu preset's median on the same",
        "seeds (a row of seed 0 alone is set against the preset's seed 0). A row reads \"not",
        "measured yet\" until its runs are done: the grid is about 40 runs of about 45",
        "minutes on two CPU cores, so it fills session by session, or in parallel with",
        "`--sweep`'s commands on a Ray cluster. The `rssm` row is the cpu preset at free nats 3,",
        "as it was until 2026-12-07, when it took free nats 1; its results file says where its",
        "runs came from. Until 2026-12-05 the preset's reward",
        "model had 2 x 100 units: the `reward-2x100` row is that preset, and runs of other",
        "variants on it are in docs/results.md, not here.",
        "",
        f"## {TASK}",
        "",
        "| variant | question | flags | final test return per seed | seeds | median | range "
        "| vs rssm |",
        "|---|---|---|---|---|---|---|---|",
        *(row(v, entries[v.name], TASK, seeds, baseline) for v in VARIANTS
          if any(TASK in t.split(",") for t in v.tasks)),
        "",
        "## One agent for two tasks against one agent each",
        "",
        "`two-tasks` trains one world model and planner on episodes of cartpole-swingup and",
        "reacher-easy in turn, 120 episodes, so 60 of each, as many as each single-task run",
        "of `rssm` has.",
        "",
        "| task | variant | final test return per seed | seeds | median | range | vs rssm |",
        "|---|---|---|---|---|---|---|",
    ]
    for task in (TASK, "reacher-easy"):
        reference = dict(final_returns(entries["rssm"], task))
        for name in ("rssm", "two-tasks"):
            cells = row(BY_NAME[name], entries[name], task, seeds, reference).split(" | ")
            lines.append(" | ".join([f"| {task}", cells[0].lstrip("| "), *cells[3:]]))
    lines += ["", "## Commands", "", "Every variant, one run after another (resumes):", "",
              "```bash", "python benchmarks/paper_ablations.py", "```", "",
              "The same grid on a Ray cluster, one sweep per variant:", "", "```bash",
              *(sweep_command(v, SEEDS, "cpu") for v in VARIANTS), "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Arguments after -- go to planet train (every "
                                            "variant).")
    parser.add_argument("--variants", nargs="+", choices=list(BY_NAME), default=list(BY_NAME),
                        help="variants to run, in this order (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS),
                        help="seeds of each variant and task (default: "
                             f"{' '.join(map(str, SEEDS))})")
    parser.add_argument("--preset", default="cpu", help="the preset every variant starts "
                                                          "from (default: cpu)")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "ablations",
                        help="where the run folders go (default: runs/ablations)")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="where the results files go (default: "
                             "benchmarks/results/ablations)")
    parser.add_argument("--output", type=Path, default=TABLE,
                        help="the table (default: benchmarks/paper_ablations.md)")
    parser.add_argument("--table", action="store_true",
                        help="only redraw the table from the results files")
    parser.add_argument("--sweep", action="store_true",
                        help="only print each variant's planet sweep command")
    argv = sys.argv[1:] if argv is None else argv
    extra = tuple(argv[argv.index("--") + 1:]) if "--" in argv else ()
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    variants = [BY_NAME[name] for name in args.variants]
    if args.sweep:
        for variant in variants:
            print(sweep_command(variant, tuple(args.seeds), args.preset))
        return 0
    if args.table:
        args.output.write_text(table(args.results))
    for variant in [] if args.table else variants:
        run_variant(variant, tuple(args.seeds), args.preset, args.runs, args.results, extra)
        args.output.write_text(table(args.results))  # after each: a stopped grid keeps its rows
    print(f"paper_ablations.py: wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
