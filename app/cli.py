"""The `vitascope` console script: GUI, model zoo, self-test, the core library's commands and every plug-in's."""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys

from app import __version__
from app.core.errors import VitascopeError

log = logging.getLogger("vitascope")
TRAIN_ONLY = {"torch", "onnx", "onnxscript"}  # the `train` extra; absent from the frozen inference bundle


# argparse's own pattern (-1, -.5) misses scientific notation, so `--z -1.5e-5` read as an unknown option
NEGATIVE_NUMBER = re.compile(r"^-(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$")


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr with exit code 2 (argparse's default prints the whole usage); negative
    numbers in any notation are values, not options. Every subparser (plug-ins' too) is built from this class."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = NEGATIVE_NUMBER

    def add_subparsers(self, **kwargs):  # type: ignore[override]
        kwargs.setdefault("parser_class", _Parser)
        return super().add_subparsers(**kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"vitascope: {message} (see `vitascope {self.prog.split(' ', 1)[-1]} --help`)\n"
                         if " " in self.prog else f"vitascope: {message} (see `vitascope --help`)\n")
        sys.exit(2)


def _gui_cmd(args: argparse.Namespace) -> int:
    if args.screenshot is not None:
        from app.core.validate import check_output_file

        check_output_file(args.screenshot, "--screenshot")
    from app.gui.app import run_gui

    return run_gui(smoke=args.smoke, screenshot=args.screenshot, smoke_seconds=args.seconds)


def build_parser() -> argparse.ArgumentParser:
    from app import models_cli
    from app.core.registry import discover

    parser = _Parser(prog="vitascope", description="Compressed tiny ViTs at work for imaging labs.")
    parser.add_argument("--version", action="version", version=f"vitascope {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging detail to stderr")
    sub = parser.add_subparsers(dest="cmd", parser_class=_Parser)
    gui = sub.add_parser("gui", help="the desktop app (default)")
    gui.add_argument("--smoke", action="store_true", help="open every plug-in, run ~2 s, exit 0")
    gui.add_argument("--screenshot", metavar="PNG", help="with --smoke: save a screenshot of the window")
    gui.add_argument("--seconds", type=float, default=2.0, help=argparse.SUPPRESS)
    gui.set_defaults(func=_gui_cmd)
    models_cli.add_cli(sub)
    from app.train.commands import add_cli as add_train_cli

    add_train_cli(sub)
    for plugin in discover().plugins:
        try:
            plugin.add_cli(sub)
        except Exception as e:  # a plug-in's CLI must not break the others
            log.warning("plug-in %s: CLI not added (%s)", plugin.info.id, e)
    return parser


def _one_line(text: str, fallback: str) -> str:
    lines = [ln for ln in str(text).splitlines() if ln.strip()]
    return lines[0].strip() if lines else fallback


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in argv or "--verbose" in argv
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not verbose:
        from app.core.quiet import silence_libraries

        silence_libraries()
    if not argv:
        argv = ["gui"]
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except VitascopeError as e:
        sys.stderr.write(f"vitascope: {_one_line(str(e), e.__class__.__name__)}\n")
        return 2
    except RecursionError:
        sys.stderr.write("vitascope: input nested too deeply to read\n")
        return 2
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] not in TRAIN_ONLY:
            raise
        sys.stderr.write(f"vitascope: `{args.cmd}` needs the core library ({e.name}), which this installation does "
                         "not include; install vitascope[train]\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("vitascope: interrupted\n")
        return 130
    except BrokenPipeError:
        os._exit(0)
    except Exception as e:  # a bug, not bad input: one line (exit 1); -v shows the traceback
        if verbose:
            raise
        sys.stderr.write(f"vitascope: internal error in `{args.cmd}` ({e.__class__.__name__}: "
                         f"{_one_line(str(e), 'no message')}); run with -v for the traceback\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
