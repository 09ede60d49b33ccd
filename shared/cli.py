"""Operator commands: ``python -m shared.cli <command>``.

- ``convert``: dry run; prints the FHIR batch Bundle a payload would become (no service).
- ``replay``: re-drives raw records from the poison queue, the rejected records or the archive.
- ``local-env``: prints the app settings for the local stack (``--format json|env|settings``).
- ``bootstrap``: creates the queues, blob containers and Cosmos containers (local stack).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from shared.errors import HubError

PLACEHOLDER_PATIENT = "patient-placeholder"


def _convert(args: argparse.Namespace) -> int:
    from shared import conversion
    from shared.fhir.mapping import batch_bundle

    try:
        text = Path(args.file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"error: cannot read {args.file}: {type(exc).__name__}", file=sys.stderr)
        return 2
    if args.source == "withings" and _is_form(text):
        return _withings_notification(text)
    format_name = args.format or conversion.DEFAULT_FORMATS[args.source]
    options = {"userid": args.withings_user} if args.source == "withings" else {}
    patient = args.patient

    try:
        parsed, mapped = conversion.convert(args.source, format_name, text, lambda _: patient, **options)
    except HubError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    for rejected in parsed.rejected:
        print(f"warning: reading {rejected.source_id} not converted: {rejected.reason}", file=sys.stderr)
    for unknown in parsed.unknown_types:
        print(f"warning: {unknown} has no standard code", file=sys.stderr)
    if not mapped.resources and not parsed.deleted_source_ids:
        print("error: the payload holds no reading that could be converted", file=sys.stderr)
        return 2
    json.dump(batch_bundle(mapped.resources), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


def _is_form(text: str) -> bool:
    stripped = text.strip()
    return "=" in stripped and not stripped.startswith(("{", "[", "<"))


def _withings_notification(text: str) -> int:
    """A notification form as Withings posts it: nothing to write (an empty batch), and a note
    on stderr saying what the hub does with it instead."""
    from shared.fhir.mapping import batch_bundle
    from shared.sources.withings.notifications import parse_notification, what_the_hub_does

    try:
        job = parse_notification(text.strip().encode("utf-8"))
    except HubError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    print(f"note: {what_the_hub_does(job)}", file=sys.stderr)
    json.dump(batch_bundle([]), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def _replay(args: argparse.Namespace) -> int:
    from shared.composition import get_context
    from shared.pipeline import replay

    store = get_context().raw_store
    if args.source == "poison":
        done = replay.replay_poison(store, limit=args.limit)
    elif args.source == "rejected":
        done = replay.replay_rejected(store, args.receipt or None)
    else:
        if not args.receipt:
            print("error: --from archive needs at least one --receipt", file=sys.stderr)
            return 2
        done = replay.replay_archived(store, args.receipt)
    print(json.dumps({"replayed": done}))
    return 0


def _parked(args: argparse.Namespace) -> int:
    """One JSON line per parked record; ``stale`` ones are past the look-back: they will not be
    attributed automatically (assign with an explicit ``from``, then replay them by receipt)."""
    from shared.composition import get_context

    for item in get_context().parked.all():
        if args.stale and not item["stale"]:
            continue
        print(json.dumps(item, sort_keys=True))
    return 0


def _create_user(args: argparse.Namespace) -> int:
    """A user of the built-in directory. The password is read from stdin (never an argument:
    arguments end up in shell histories and process lists)."""
    import getpass

    from shared.composition import get_context

    password = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    context = get_context()
    patient_id = context.patients.resolve(args.patient)
    user = context.directory.create_user(
        args.username, password, email=args.email, name=args.name, patient_id=patient_id
    )
    print(json.dumps({"username": user["id"], "sub": user["sub"], "patientId": user["patientId"]}))
    return 0


def _withings_resubscribe(_: argparse.Namespace) -> int:
    """After rotating the Withings client secret (the notification URL's secret derives from
    it): every linked user's subscriptions moved to the new URL."""
    from shared.composition import get_context

    context = get_context()
    for record in context.consents.list(source="withings", status="active"):
        if record.get("accountId"):
            done = context.withings_connector.resubscribe(str(record["accountId"]))
            print(json.dumps({"withingsUser": record["accountId"], **done}))
    return 0


def _admin_token(_: argparse.Namespace) -> int:
    """A local admin access token from the OIDC simulator (local stack only)."""
    from shared.localstack import local_client_token

    print(local_client_token())  # a refusal is a HubError: main() prints it and exits 2
    return 0


def _local_env(args: argparse.Namespace) -> int:
    from shared.localstack import local_settings

    values = local_settings()
    if args.format == "env":
        for key, value in values.items():
            print(f"{key}='{value}'")
    elif args.format == "settings":
        print(json.dumps({"IsEncrypted": False, "Values": values}, indent=2))
    else:
        print(json.dumps(values, indent=2))
    return 0


def _bootstrap(_: argparse.Namespace) -> int:
    from shared.clients.cosmos import ensure_containers
    from shared.composition import get_context

    context = get_context()
    context.ensure_storage()
    ensure_containers(context.settings)
    print("queues, blob containers and Cosmos containers are in place")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m shared.cli", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    convert = commands.add_parser("convert", help="print the FHIR batch Bundle a payload becomes (dry run)")
    convert.add_argument("--source", required=True, choices=["medisante", "healthkit", "withings"])
    convert.add_argument("--format", help="medisante: medisante-json (default), medisante-xml, fhir-json, fhir-xml")
    convert.add_argument("--patient", default=PLACEHOLDER_PATIENT, help="Patient id for the subject references")
    convert.add_argument("--withings-user", help="Withings user id (needed for getactivity answers)")
    convert.add_argument("file", help="the payload as it arrives (Withings: an API answer or a notification form)")
    convert.set_defaults(handler=_convert)

    replay = commands.add_parser("replay", help="re-drive raw records through the ingest queue")
    replay.add_argument("--from", dest="source", choices=["poison", "rejected", "archive"], default="poison")
    replay.add_argument("--receipt", action="append", help="receipt id (repeatable)")
    replay.add_argument("--limit", type=int, help="at most this many poison messages")
    replay.set_defaults(handler=_replay)

    local_env = commands.add_parser("local-env", help="print the app settings for the local stack")
    local_env.add_argument("--format", choices=["json", "env", "settings"], default="json")
    local_env.set_defaults(handler=_local_env)

    parked = commands.add_parser("parked", help="list readings parked for want of a device assignment")
    parked.add_argument("--stale", action="store_true", help="only those past the look-back (manual handling)")
    parked.set_defaults(handler=_parked)

    create_user = commands.add_parser("create-user", help="add a user to the built-in directory (password on stdin)")
    create_user.add_argument("--username", required=True)
    create_user.add_argument("--email", required=True)
    create_user.add_argument("--name", required=True)
    create_user.add_argument("--patient", required=True, help="Patient id or system|value identifier in FHIR")
    create_user.set_defaults(handler=_create_user)

    resubscribe = commands.add_parser(
        "withings-resubscribe", help="point every linked Withings user's notifications at the current URL"
    )
    resubscribe.set_defaults(handler=_withings_resubscribe)

    admin_token = commands.add_parser("admin-token", help="print an admin access token (local stack only)")
    admin_token.set_defaults(handler=_admin_token)

    bootstrap = commands.add_parser("bootstrap", help="create queues, containers and Cosmos containers")
    bootstrap.set_defaults(handler=_bootstrap)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except HubError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
