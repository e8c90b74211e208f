"""Command line entry point: no sub-command opens the GUI; sub-commands run without Qt.

Owns: argument parsing and dispatch, and the Qt-free sub-commands ``validate``, ``convert``, ``broker``
and ``fetch``/``plan``/``apply``/``replay`` (a live broker named by ``--url``, through
`mqstudio.runtime.connect`, the same code path as the GUI's Broker menu). Qt is
imported lazily, only by `_run_gui` (through `mqstudio.app`), so `--version`, `--help` and every
sub-command work without a display. Must not import PySide6 (or `mqstudio.ui`) at module level.

Exit codes: 0 success (lint warnings allowed unless ``--strict``); 1 the file was read but its content
is invalid (problems, lint errors), or an apply failed, was refused or skipped steps; 2 the command could
not run: bad usage, a file that cannot be read or written, a file that is not JSON at all, or a broker
that cannot be reached or refuses the login. Passwords come from ``$MQSTUDIO_PASSWORD``, the keyring or
a prompt (on a terminal); one in a URL is accepted with a warning, and none is ever printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from mqstudio import __version__
from mqstudio.backends.base import Backend, BackendError
from mqstudio.core import fileformat
from mqstudio.core.definitions import export_definitions
from mqstudio.core.document import TopologyDocument
from mqstudio.core.errors import FileFormatError
from mqstudio.core.loading import Format, build_document
from mqstudio.core.model import DEFAULT_VHOST
from mqstudio.core.plan import Plan
from mqstudio.core.policies import document_policies
from mqstudio.core.validation import Severity, lint
from mqstudio.runtime.profiles import (
    PASSWORD_ENV,
    ConnectionProfile,
    ProfileError,
    parse_url,
    resolve_password,
)

EXIT_OK, EXIT_INVALID, EXIT_UNUSABLE = 0, 1, 2


class _Refused(Exception):
    """A sub-command stops: `message` goes to stderr, `code` is the exit status."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mqstudio",
        usage="%(prog)s [-h] [--version] [--open FILE] [--screenshot OUT.png [--wait SECONDS]] "
        "[FILE | COMMAND ...]",
        description="A desktop studio for message brokers. Without a sub-command, opens the window "
        "(with FILE, a project or RabbitMQ definitions file, open in it).",
    )
    parser.add_argument("--version", action="version", version=f"mqstudio {__version__}")
    parser.add_argument(
        "--open", dest="file", metavar="FILE", help="a project (.mqs.json) or definitions file to open"
    )
    parser.add_argument(
        "--screenshot",
        metavar="OUT.png",
        help="render the window (with FILE open, if given) offscreen at 1280x800 to a PNG and exit",
    )
    parser.add_argument(
        "--wait",
        type=float,
        metavar="SECONDS",
        help="with --screenshot: run the demo (or FILE) live on an in-memory broker this long first",
    )
    parser.set_defaults(command=None)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    validate = commands.add_parser(
        "validate",
        help="check a project or RabbitMQ definitions file",
        description="Check a project (.mqs.json) or RabbitMQ definitions JSON (detected from the content): "
        "every problem with its path, then the design's lint findings by severity. Exit status 0 when "
        "valid, 1 when not, 2 when the file cannot be read or is not JSON.",
    )
    validate.add_argument("path", metavar="FILE")
    validate.add_argument("--strict", action="store_true", help="treat lint warnings as errors")
    validate.add_argument(
        "--vhost",
        default=DEFAULT_VHOST,
        help="the vhost a per-vhost definitions export belongs to (default %(default)s)",
    )
    validate.set_defaults(handler=_validate)

    convert = commands.add_parser(
        "convert",
        help="convert between a project and RabbitMQ definitions",
        description="Convert IN to OUT. The output format comes from OUT's name (.mqs.json or "
        ".mqstudio.json: project; other .json: RabbitMQ definitions) unless --to is given.",
    )
    convert.add_argument("input", metavar="IN")
    convert.add_argument("output", metavar="OUT")
    convert.add_argument("--to", choices=("project", "definitions"), help="the output format")
    convert.add_argument(
        "--vhost",
        help="write the per-vhost definitions form of this vhost (GET /api/definitions/{vhost}); "
        "also the vhost a per-vhost input belongs to",
    )
    convert.set_defaults(handler=_convert)

    broker = commands.add_parser(
        "broker",
        help="run the embedded AMQP 0-9-1 broker",
        description="Serve the embedded broker to AMQP 0-9-1 clients (pika, aio-pika, kombu …) until "
        "Ctrl-C. Durable state lives in --data-dir unless --in-memory is given.",
    )
    broker.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    broker.add_argument(
        "--port", type=int, default=5672, help="port (default %(default)s; if taken, the next free one)"
    )
    broker.add_argument("--data-dir", metavar="DIR", help="where durable state is kept")
    broker.add_argument("--in-memory", action="store_true", help="keep nothing on disk")
    broker.add_argument(
        "--user",
        dest="users",
        action="append",
        metavar="USER:PASSWORD",
        help="a user allowed to connect (repeatable; default guest:guest from localhost only)",
    )
    broker.set_defaults(handler=_broker)
    desktop = commands.add_parser(
        "install-desktop",
        help="add mqstudio to this user's application menu (Linux)",
        description="Install the desktop entry, AppStream metainfo, icon and project file type into "
        "$XDG_DATA_HOME (default ~/.local/share), launching this installation's mqstudio-gui. "
        "--uninstall removes them.",
    )
    desktop.add_argument("--uninstall", action="store_true", help="remove what install-desktop wrote")
    desktop.set_defaults(handler=_install_desktop)
    _add_live_commands(commands)
    return parser


def _add_live_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    url_help = (
        "the broker: amqp[s]://USER@HOST[:PORT]/VHOST (vhost / is %%2F), kafka://HOST:PORT or embedded:// "
        f"(password from ${PASSWORD_ENV}, the keyring or a prompt)"
    )

    def live(
        name: str, help_text: str, description: str, url_required: bool = True
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=description)
        sub.add_argument("--url", required=url_required, help=url_help)
        sub.add_argument(
            "--http", metavar="URL", help="the RabbitMQ management API (default http://HOST:15672)"
        )
        return sub

    fetch = live(
        "fetch",
        "write a live broker's topology to a project or definitions file",
        "Read the topology of the broker (one vhost for RabbitMQ) and write it to OUT: a project "
        "(.mqs.json) or RabbitMQ definitions (.json), by OUT's name unless --to is given.",
    )
    fetch.add_argument("output", metavar="OUT")
    fetch.add_argument("--to", choices=("project", "definitions"), help="the output format")
    fetch.set_defaults(handler=_fetch)

    plan = live(
        "plan",
        "show what applying a design to a live broker would change",
        "Compare FILE (a project or definitions file) with the broker and print the steps that would "
        "make the broker match it, with warnings. Changes nothing.",
    )
    plan.add_argument("path", metavar="FILE")
    plan.add_argument("--prune", action="store_true", help="also delete what the design does not have")
    plan.set_defaults(handler=_plan)

    apply = live(
        "apply",
        "make a live broker match a design",
        "Plan as `mqstudio plan` does, print the steps and warnings, ask for confirmation (unless "
        "--yes), then apply them in order, stopping at the first failure. Destructive steps "
        "(recreating or deleting a queue or exchange) run only with --allow-recreate; otherwise they "
        "are skipped and reported. Exit status 0 when everything was applied, 1 when a step failed, "
        "was skipped or the apply was refused, 2 when the broker cannot be reached.",
    )
    apply.add_argument("path", metavar="FILE")
    apply.add_argument("--prune", action="store_true", help="also delete what the design does not have")
    apply.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    apply.add_argument(
        "--allow-recreate",
        action="store_true",
        help="run the destructive steps: recreating or deleting queues (their messages are lost) "
        "and exchanges (their bindings go with them)",
    )
    apply.set_defaults(handler=_apply)

    replay = live(
        "replay",
        "send dead letters back where they came from (or to a chosen exchange/topic)",
        "Take the messages in dead-letter queue (or Kafka DLT) QUEUE, publish each to where it died "
        "(its newest x-death exchange and routing key; Kafka: kafka_dlt-original-topic) or to --to, "
        "with publisher confirms, and acknowledge it only after the copy was confirmed and routed: a "
        "message is never lost, what is refused stays in QUEUE. The job is journaled: --list shows "
        "unfinished jobs, --resume JOB goes on with one, --abandon JOB forgets one (nothing is sent or "
        "removed: what it did not finish is still in the DLQ). Exit status 0 when every message was "
        "replayed, 1 when some stayed, 2 when the replay cannot start (unknown queue or target, a target "
        "that is the DLQ itself, an unknown job) or the broker cannot be reached.",
        url_required=False,
    )
    what = replay.add_mutually_exclusive_group(required=True)
    what.add_argument("--from", dest="source", metavar="QUEUE", help="the dead-letter queue (or Kafka DLT)")
    what.add_argument("--resume", metavar="JOB", help="go on with an unfinished journaled job (needs --url)")
    what.add_argument("--abandon", metavar="JOB", help="forget an unfinished job (messages stay in the DLQ)")
    what.add_argument("--list", action="store_true", help="list the journal's unfinished replay jobs")
    replay.add_argument(
        "--to", metavar="EXCHANGE[:KEY]", help="send everything here (default: each message's origin)"
    )
    replay.add_argument("--filter", metavar="EXPR", help="e.g. 'reason=rejected, header.tenant=acme'")
    replay.add_argument("--rate", type=float, metavar="N", help="at most N messages per second")
    replay.add_argument("--dry-run", action="store_true", help="show where each message would go; move none")
    replay.add_argument(
        "--max-replays", type=int, default=5, metavar="N", help="refuse messages already replayed N times"
    )
    replay.set_defaults(handler=_replay)

    export = live(
        "export",
        "write the messages of a queue or topic to a JSON Lines file",
        "Write every message of QUEUE (a queue, e.g. a dead-letter queue, or a Kafka topic) to FILE, "
        "one JSON object per line with headers and properties kept exactly (ops.jsonl). Nothing is "
        "removed: the embedded broker and Kafka are read in place; RabbitMQ messages are taken, held "
        "and requeued (which marks them redelivered).",
    )
    export.add_argument("queue", metavar="QUEUE")
    export.add_argument("file", metavar="FILE")
    export.add_argument("--limit", type=int, metavar="N", help="export at most N messages")
    export.set_defaults(handler=_export)


def _export(args: argparse.Namespace, out: TextIO) -> int:
    from mqstudio.ops.jsonl import export_messages

    backend = _connect(args)
    try:
        result = export_messages(backend, args.queue, args.file, limit=args.limit)
    except BackendError as exc:
        raise _Refused(EXIT_UNUSABLE, f"cannot export {args.queue}: {exc}") from None
    except OSError as exc:
        raise _Refused(EXIT_UNUSABLE, f"cannot write {args.file}: {exc.strerror or exc}") from None
    finally:
        _close(backend)
    print(f"exported {_plural(result.count, 'message')} from {args.queue} to {args.file}", file=out)
    return EXIT_OK


# -- shared -----------------------------------------------------------------------------------


def _read(path: str, vhost: str) -> tuple[Format, TopologyDocument]:
    """Read and build a project or definitions file, or raise `_Refused` (2 unreadable, 1 invalid)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise _Refused(EXIT_UNUSABLE, f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = fileformat.parse_json(raw, path)
    except FileFormatError as exc:
        raise _Refused(EXIT_UNUSABLE, str(exc)) from None
    try:
        return build_document(data, path, vhost)
    except FileFormatError as exc:
        raise _Refused(EXIT_INVALID, str(exc)) from None


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


# -- validate ---------------------------------------------------------------------------------


def _validate(args: argparse.Namespace, out: TextIO) -> int:
    kind, document = _read(args.path, args.vhost)
    topology = document.topology
    # Policies kept from an imported definitions file: a DLX or TTL set by policy counts.
    findings = lint(topology, policies=document_policies(document))
    groups = {severity: [f for f in findings if f.severity is severity] for severity in Severity}
    failing = {Severity.ERROR, Severity.WARNING} if args.strict else {Severity.ERROR}
    for severity in Severity:
        if groups[severity]:
            print(f"{severity.value}s ({len(groups[severity])}):", file=out)
            for finding in groups[severity]:
                print(f"  [{finding.code}] {finding.message}", file=out)
    contents = ", ".join(
        _plural(len(items), word)
        for items, word in (
            (topology.exchanges, "exchange"),
            (topology.queues, "queue"),
            (topology.bindings, "binding"),
            (topology.topics, "topic"),
        )
        if items
    )
    invalid = any(groups[severity] for severity in failing)
    verdict = "invalid" if invalid else "valid"
    counts = ", ".join(_plural(len(groups[s]), s.value) for s in (Severity.ERROR, Severity.WARNING))
    strict = " (--strict: warnings count as errors)" if args.strict and groups[Severity.WARNING] else ""
    print(f"{args.path}: {verdict} {kind} ({contents or 'empty'}); {counts}{strict}", file=out)
    return EXIT_INVALID if invalid else EXIT_OK


# -- convert ----------------------------------------------------------------------------------


def _output_format(path: str, requested: str | None) -> Format:
    if requested is not None:
        return "project" if requested == "project" else "definitions"
    name = Path(path).name.lower()
    if name.endswith(fileformat.PROJECT_SUFFIXES):
        return "project"
    if name.endswith(".json"):
        return "definitions"
    raise _Refused(
        EXIT_UNUSABLE,
        f"cannot tell the output format from {path!r}: name it .mqs.json (project) or .json "
        "(definitions), or pass --to",
    )


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (b.exists() and a.samefile(b))
    except OSError:
        return False


def _convert(args: argparse.Namespace, out: TextIO) -> int:
    source, target = Path(args.input), Path(args.output)
    if _same_file(source, target):
        raise _Refused(EXIT_UNUSABLE, f"refusing to overwrite the input {args.input}; choose another OUT")
    to = _output_format(args.output, args.to)
    kind, document = _read(args.input, args.vhost or DEFAULT_VHOST)
    if args.vhost is not None and "definitions" not in (kind, to):
        raise _Refused(EXIT_UNUSABLE, "--vhost applies only when reading or writing definitions")
    if to == "project":
        text = fileformat.dumps(document)
    else:
        t = document.topology
        counts = {"Kafka object": len(t.topics) + len(t.consumer_groups)}
        counts["client"] = len(t.producers) + len(t.consumers)
        if left := " and ".join(_plural(n, word) for word, n in counts.items() if n):
            print(
                f"mqstudio: note: {left} left out: RabbitMQ definitions have no place for topics, "
                "consumer groups, producers or consumers",
                file=sys.stderr,
            )
        text = json.dumps(export_definitions(document, args.vhost), indent=2, ensure_ascii=False) + "\n"
    try:
        fileformat.write_text_atomic(target, text)
    except OSError as exc:
        raise _Refused(EXIT_UNUSABLE, f"cannot write {args.output}: {exc.strerror or exc}") from None
    scope = f" for vhost {args.vhost!r}" if to == "definitions" and args.vhost is not None else ""
    print(f"wrote {args.output} ({to}{scope}) from {args.input} ({kind})", file=out)
    return EXIT_OK


# -- broker -----------------------------------------------------------------------------------


def _broker(args: argparse.Namespace, out: TextIO) -> int:
    from mqstudio.amqp.runner import parse_user, run_broker  # lazy: asyncio server only when asked

    if args.in_memory and args.data_dir is not None:
        raise _Refused(EXIT_UNUSABLE, "--in-memory and --data-dir exclude each other")
    try:
        users = [parse_user(spec) for spec in args.users or ()]
    except ValueError as exc:
        raise _Refused(EXIT_UNUSABLE, f"--user: {exc}") from None

    def log(line: str) -> None:
        print(line, file=sys.stderr if line.startswith("error:") else out, flush=True)

    return run_broker(args.host, args.port, args.data_dir, args.in_memory, users, log)


def _install_desktop(args: argparse.Namespace, out: TextIO) -> int:
    from mqstudio import desktop

    try:
        paths = desktop.uninstall() if args.uninstall else desktop.install()
    except desktop.DesktopError as exc:
        raise _Refused(EXIT_UNUSABLE, str(exc)) from exc
    verb = "removed" if args.uninstall else "wrote"
    for path in paths:
        print(f"{verb} {path}", file=out)
    if args.uninstall and not paths:
        print(f"nothing to remove under {desktop.data_home()}", file=out)
    elif paths:
        for note in desktop.refresh_caches():
            print(note, file=out)
    return EXIT_OK


# -- fetch / plan / apply ----------------------------------------------------------------------


def _ask_password(profile: ConnectionProfile) -> str:
    if not sys.stdin.isatty():
        raise _Refused(
            EXIT_UNUSABLE,
            f"no password for {profile.user or 'the user'} at {profile.url}: set {PASSWORD_ENV}, store one "
            "in the keyring (mqstudio's Connections dialog), or run in a terminal to be asked",
        )
    import getpass

    try:
        return getpass.getpass(f"Password for {profile.user} at {profile.url}: ")
    except (EOFError, KeyboardInterrupt):
        raise _Refused(EXIT_UNUSABLE, "no password given") from None


def _connect(args: argparse.Namespace) -> Backend:
    """Parse --url, find the password, open and connect the backend; `_Refused` (2) when it cannot."""
    from mqstudio.runtime.connect import open_backend

    try:
        parsed = parse_url(args.url)
    except ProfileError as exc:
        raise _Refused(EXIT_UNUSABLE, f"--url: {exc}") from None
    if parsed.warning:
        print(f"mqstudio: warning: {parsed.warning}", file=sys.stderr)
    profile = parsed.profile
    if args.http:
        profile.management_url = args.http
    password = resolve_password(profile, parsed.password)
    if password is None and profile.needs_password:
        password = _ask_password(profile)
    try:
        backend = open_backend(profile, password)
        backend.connect()
    except BackendError as exc:
        raise _Refused(EXIT_UNUSABLE, f"cannot connect to {profile.url}: {exc}") from None
    return backend


def _close(backend: Backend) -> None:
    with contextlib.suppress(BackendError):
        backend.close()


def _fetch(args: argparse.Namespace, out: TextIO) -> int:
    to = _output_format(args.output, args.to)
    backend = _connect(args)
    try:
        document = backend.fetch_topology()
        description = backend.description
    except BackendError as exc:
        raise _Refused(EXIT_UNUSABLE, f"cannot read the topology: {exc}") from None
    finally:
        _close(backend)
    if to == "project":
        text = fileformat.dumps(document)
    else:
        vhost = getattr(backend, "vhost", None)
        text = json.dumps(export_definitions(document, vhost), indent=2, ensure_ascii=False) + "\n"
    try:
        fileformat.write_text_atomic(Path(args.output), text)
    except OSError as exc:
        raise _Refused(EXIT_UNUSABLE, f"cannot write {args.output}: {exc.strerror or exc}") from None
    t = document.topology
    contents = ", ".join(
        _plural(len(items), word)
        for items, word in ((t.exchanges, "exchange"), (t.queues, "queue"), (t.bindings, "binding"),
                            (t.topics, "topic"), (t.consumer_groups, "consumer group"))
        if items
    )
    print(f"wrote {args.output} ({to}: {contents or 'empty'}) from {description}", file=out)
    return EXIT_OK


def _planned(args: argparse.Namespace, backend: Backend, out: TextIO) -> Plan:
    from mqstudio.runtime.connect import design_for

    _kind, document = _read(args.path, getattr(backend, "vhost", DEFAULT_VHOST))
    try:
        design, note = design_for(document.topology, backend.kind, getattr(backend, "vhost", DEFAULT_VHOST))
        if note:
            print(f"note: {note}", file=out)
        return backend.plan(design, prune=args.prune)
    except BackendError as exc:
        raise _Refused(EXIT_UNUSABLE, f"cannot plan against {backend.description}: {exc}") from None


def _print_plan(plan: Plan, out: TextIO) -> None:
    for line in plan.describe():
        print(line, file=out)


def _plan(args: argparse.Namespace, out: TextIO) -> int:
    backend = _connect(args)
    try:
        plan = _planned(args, backend, out)
    finally:
        _close(backend)
    _print_plan(plan, out)
    return EXIT_OK


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        raise _Refused(EXIT_INVALID, "not applied: confirmation needs a terminal; pass --yes to apply")
    try:
        answer = input(f"{question} [y/N] ")
    except (EOFError, KeyboardInterrupt):
        return False
    return answer.strip().lower() in ("y", "yes")


def _apply(args: argparse.Namespace, out: TextIO) -> int:
    backend = _connect(args)
    try:
        return _apply_on(args, backend, out)
    finally:
        _close(backend)


def _apply_on(args: argparse.Namespace, backend: Backend, out: TextIO) -> int:
    plan = _planned(args, backend, out)
    _print_plan(plan, out)
    if plan.is_empty:
        return EXIT_OK
    from mqstudio.runtime.connect import apply_plan, needs_approval

    gated = [step for step in plan.steps if needs_approval(step)]
    approved = gated if args.allow_recreate else []
    if gated and not args.allow_recreate:
        print(
            f"{_plural(len(gated), 'destructive step')} will be skipped (pass --allow-recreate to run them):",
            file=out,
        )
        for step in gated:
            print(f"  skip: {step.describe()}", file=out)
    runnable = len(plan.steps) - len(gated) + len(approved)
    if runnable == 0:
        print("not applied: every step needs --allow-recreate", file=out)
        return EXIT_INVALID
    if not args.yes and not _confirm(f"Apply {_plural(runnable, 'step')} to {backend.description}?"):
        print("not applied: refused", file=out)
        return EXIT_INVALID

    started = 0

    def progress(_done: int, total: int, what: str) -> None:
        # One call per step (backends differ on whether `done` counts it yet), then "done".
        nonlocal started
        if what != "done" and started < total:
            started += 1
            print(f"[{started}/{total}] {what}", file=out, flush=True)

    report = apply_plan(backend, plan, approved, progress=progress)
    for line in report.describe():
        print(line, file=out)
    tally = (
        (len(report.applied), "applied"),
        (int(report.failed is not None), "failed"),
        (len(report.skipped), "skipped"),
        (len(report.not_applied), "not applied"),
    )
    counts = ", ".join(f"{n} {word}" for n, word in tally if n or word == "applied")
    ok = report.ok and not report.skipped
    print(f"{'done' if ok else 'incomplete'}: {counts}", file=out)
    return EXIT_OK if ok else EXIT_INVALID


# -- entry ------------------------------------------------------------------------------------


def _replay(args: argparse.Namespace, out: TextIO) -> int:
    from mqstudio.ops.journal import Journal, JournalError, active_elsewhere

    if args.list or args.abandon:
        with Journal() as journal:
            if args.list:
                return _list_replays(journal, out)
            try:
                summary = journal.abandon_job(args.abandon)
            except JournalError as exc:
                raise _Refused(EXIT_UNUSABLE, str(exc)) from None
        for line in summary.describe():
            print(line, file=out)
        return EXIT_OK
    if args.url is None:
        raise _Refused(EXIT_UNUSABLE, f"--url is required with --{'resume' if args.resume else 'from'}")
    if args.rate is not None and args.rate <= 0:
        raise _Refused(EXIT_UNUSABLE, "--rate must be positive")
    if args.resume and (args.to is not None or args.filter or args.dry_run):
        raise _Refused(EXIT_UNUSABLE, "--resume goes on with the job's own --to and --filter; "
                       "only --rate may be given (and --dry-run does not apply)")
    if args.filter:
        from mqstudio.ops.replay import parse_filter

        try:
            parse_filter(args.filter)  # before connecting
        except ValueError as exc:
            raise _Refused(EXIT_UNUSABLE, f"--filter: {exc}") from None
    with Journal() as journal:
        if args.resume:
            record = journal.job(args.resume)
            if record is None:
                raise _Refused(EXIT_UNUSABLE, f"no replay job {args.resume!r} in {journal.path} "
                               "(mqstudio replay --list shows the unfinished ones)")
            if record.state.value in ("done", "abandoned"):
                raise _Refused(EXIT_UNUSABLE, f"replay job {args.resume!r} is {record.state.value}: "
                               "nothing to resume")
            if active_elsewhere(record):
                raise _Refused(EXIT_UNUSABLE, f"replay job {args.resume!r} is running now in process "
                               f"{record.owner_pid} on this machine")
        backend = _connect(args)
        try:
            return _run_replay(args, backend, journal, out)
        finally:
            _close(backend)


def _list_replays(journal: Any, out: TextIO) -> int:
    from datetime import datetime

    from mqstudio.ops.journal import active_elsewhere

    jobs = journal.unfinished_jobs(include_active=True)
    if not jobs:
        print(f"no unfinished replay jobs in {journal.path}", file=out)
    for job in jobs:
        when = datetime.fromtimestamp(job.updated).strftime("%Y-%m-%d %H:%M:%S")
        tally = sorted(journal.counts(job.id).items())
        counts = ", ".join(f"{n} {state}" for state, n in tally) or "nothing sent"
        now = f" (running now in process {job.owner_pid})" if active_elsewhere(job) else ""
        print(f"{job.id}  {job.state.value:<11} {when}  from {job.source!r} to "
              f"{job.target or 'their origins'} on {job.backend or '?'} ({counts}){now}", file=out)
    return EXIT_OK


def _run_replay(args: argparse.Namespace, backend: Backend, journal: Any, out: TextIO) -> int:
    from mqstudio.ops.deadletters import ReplayRouteError, check_replay_route
    from mqstudio.ops.replay import ReplayJob

    if args.resume:
        job = ReplayJob.resumed(backend, journal, args.resume, **({"rate": args.rate} if args.rate else {}))
    else:
        # The filter goes in as text so that the journal keeps it for --resume.
        job = ReplayJob(backend, args.source, args.to, filter=args.filter or None, rate=args.rate,
                        journal=journal, max_replays=args.max_replays, dry_run=args.dry_run)
    target = job.target
    try:
        check_replay_route(backend.fetch_topology().topology, backend.kind, job.source,
                           None if target is None else target.target, None if target is None else target.key)
    except ReplayRouteError as exc:
        raise _Refused(EXIT_UNUSABLE, str(exc)) from None
    except BackendError as exc:
        raise _Refused(EXIT_UNUSABLE, f"cannot read the topology: {exc}") from None
    if not args.dry_run:
        print(f"replay job {job.id} (journal {journal.path})", file=out, flush=True)
    try:
        report = job.run()
    except BackendError as exc:
        raise _Refused(EXIT_UNUSABLE, f"replay from {job.source!r}: {exc}; what it did not finish is still "
                       f"in the DLQ (mqstudio replay --resume {job.id} --url URL goes on)") from None
    for line in report.describe():
        print(line, file=out)
    return EXIT_OK if report.ok or args.dry_run else EXIT_INVALID


def _run_gui(args: argparse.Namespace) -> int:
    from mqstudio.app import run_gui  # lazy: Qt only when the window is wanted

    return run_gui(file=args.file, screenshot=args.screenshot, wait=args.wait)


_OPTIONS_WITH_VALUE = frozenset({"--open", "--screenshot", "--wait"})


def split_file_argument(argv: Sequence[str], commands: Sequence[str]) -> tuple[list[str], str | None]:
    """Take the GUI's positional FILE out of `argv`.

    argparse cannot mix an optional positional with sub-commands, so the first argument that is neither
    an option (nor an option's value) is the file to open unless it names a sub-command, in which case
    everything from there on belongs to that sub-command.
    """
    rest = list(argv)
    index = 0
    while index < len(rest):
        token = rest[index]
        if token == "--":
            if index + 1 < len(rest):
                return rest[:index] + rest[index + 2 :], rest[index + 1]
            return rest[:index], None
        if token in _OPTIONS_WITH_VALUE:
            index += 2
            continue
        if token.startswith("-") and token != "-":
            index += 1
            continue
        if token in commands:
            return rest, None
        return rest[:index] + rest[index + 1 :], token
    return rest, None


def _command_names(parser: argparse.ArgumentParser) -> list[str]:
    names: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            names.extend(action.choices)
    return names


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    rest, file = split_file_argument(list(sys.argv[1:] if argv is None else argv), _command_names(parser))
    args = parser.parse_args(rest)
    if file is not None:
        if args.file is not None:
            parser.error(f"give the file to open once: --open {args.file} or {file}, not both")
        args.file = file
    if args.command is None:
        return _run_gui(args)
    if args.screenshot is not None:
        parser.error("--screenshot renders the window; it does not combine with a sub-command")
    try:
        code: int = args.handler(args, sys.stdout)
    except _Refused as refused:
        print(f"mqstudio {args.command}: {refused.message}", file=sys.stderr)
        return refused.code
    return code
