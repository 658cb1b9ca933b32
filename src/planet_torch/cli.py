"""The `planet` command: one place that parses the command line.

    planet train [--preset paper|debug|toy] [--task T] [--seed N] [--<section>.<field> V ...]
    planet train --resume RUN_DIR
    planet tasks

Every config field is a flag (`--train.batch_size 16`, `--planner.horizon 8`), shown by
`planet train --help` with its default and meaning. A preset is applied first, then flags.
Errors in user input end with one line on stderr and a non-zero exit, never a traceback
(set PLANET_DEBUG=1 to see one).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import itertools
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from planet_torch import __version__
from planet_torch import config as config_lib
from planet_torch.checkpoint import CheckpointError

EXIT_USAGE = 2
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130


def _field_doc(cls: type, name: str) -> str:
    """The docstring written under a dataclass field, read from the class source."""
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body  # type: ignore[attr-defined]
    for node, after in itertools.pairwise(body):
        target = getattr(node, "target", None)
        if isinstance(target, ast.Name) and target.id == name and isinstance(after, ast.Expr):
            return str(after.value.value).split("\n")[0]  # type: ignore[attr-defined]
    return ""


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _parse_optional_int(text: str) -> int | None:
    return None if text.lower() == "none" else int(text)


_PARSERS: dict[str, Callable[[str], Any]] = {
    "int": int, "float": float, "str": str, "bool": _parse_bool,
    "int | None": _parse_optional_int,
}


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per config field; defaults are left unset so a preset can fill them."""
    top = parser.add_argument_group("run")
    for f in dataclasses.fields(config_lib.Config):
        if f.name in config_lib.SECTIONS:
            continue
        top.add_argument(f"--{f.name}", dest=f.name, type=_PARSERS[str(f.type)],
                         default=argparse.SUPPRESS, metavar=str(f.type).upper(),
                         help=f"{_field_doc(config_lib.Config, f.name)} "
                              f"(default: {f.default})")
    for section, cls in config_lib.SECTIONS.items():
        group = parser.add_argument_group(section)
        for f in dataclasses.fields(cls):
            group.add_argument(f"--{section}.{f.name}", dest=f"{section}.{f.name}",
                               type=_PARSERS[str(f.type)], default=argparse.SUPPRESS,
                               metavar=str(f.type).split(" ")[0].upper(),
                               help=f"{_field_doc(cls, f.name)} (default: {f.default})")


def _config_from_args(args: argparse.Namespace) -> config_lib.Config:
    assignments = {k: v for k, v in vars(args).items()
                   if k in {f.name for f in dataclasses.fields(config_lib.Config)}
                   or "." in k}
    return config_lib.override(config_lib.PRESETS[args.preset](), assignments)


def cmd_tasks(args: argparse.Namespace) -> int:
    """Print the paper's tasks with their action repeat and episode length."""
    from planet_torch.envs import default_action_repeat, default_episode_steps, task_names

    print(f"{'task':<20}{'action repeat':>15}{'env steps':>11}{'agent steps':>13}")
    for task in task_names():
        repeat = default_action_repeat(task)
        steps = default_episode_steps(task)
        print(f"{task:<20}{repeat:>15}{steps:>11}{-(-steps // repeat):>13}")
    print("\nAlso: any dm_control suite task as domain-task (action repeat 2), "
          "any Gymnasium env as gym:ID.")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train a new run, or continue one with --resume."""
    from planet_torch.envs import default_action_repeat
    from planet_torch.evaluate import Interrupted
    from planet_torch.train import CONFIG_NAME, Trainer, new_run_dir

    if args.resume is not None:
        run_dir = Path(args.resume)
        if not (run_dir / CONFIG_NAME).is_file():
            raise CheckpointError(f"{run_dir} is not a run folder (no {CONFIG_NAME})")
        saved = config_lib.load(run_dir / CONFIG_NAME)
        cfg = config_lib.override(saved, {k: v for k, v in vars(args).items()
                                          if "." in k or k in ("device",)})
        config_lib.save(cfg, run_dir / CONFIG_NAME)
    else:
        cfg = _config_from_args(args)
        default_action_repeat(cfg.task)  # an unknown task fails here, before any folder exists
        run_dir = new_run_dir(Path(cfg.logdir), cfg.task, cfg.seed)
    print(f"planet-torch {__version__}: {'resuming' if args.resume else 'new run'} {run_dir}")
    print(yaml.safe_dump(config_lib.to_dict(cfg), sort_keys=False), end="")
    trainer = Trainer(cfg, run_dir, resume=args.resume is not None)
    try:
        counters = trainer.run()
    except Interrupted:
        return EXIT_INTERRUPTED
    print(f"done: {counters.episodes} episodes, {counters.env_steps} env steps, "
          f"{counters.updates} updates; run folder {run_dir}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The parser of `planet` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="planet", description="PlaNet: learn latent dynamics from pixels, plan with CEM.")
    parser.add_argument("--version", action="version", version=f"planet-torch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser(
        "train", help="train an agent (new run, or --resume)",
        description="Train PlaNet. A preset sets every field; flags override it.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    train.add_argument("--preset", choices=sorted(config_lib.PRESETS), default="paper",
                       help="starting configuration: paper (the paper's settings), debug "
                            "(tiny, seconds on a CPU), toy (learns toy-reach in minutes)")
    train.add_argument("--resume", metavar="RUN_DIR", default=None,
                       help="continue the run in RUN_DIR from its latest checkpoint")
    _add_config_flags(train)
    train.set_defaults(func=cmd_train)

    tasks = sub.add_parser("tasks", help="list the supported tasks")
    tasks.set_defaults(func=cmd_tasks)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `planet` console command."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, FileNotFoundError, PermissionError, RuntimeError) as error:
        if os.environ.get("PLANET_DEBUG"):
            raise
        print(f"planet {args.command}: error: {error}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
