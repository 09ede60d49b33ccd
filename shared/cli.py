"""Operator commands: ``python -m shared.cli <command>``.

- ``convert``: dry run; prints the FHIR batch Bundle a payload would become (no service).
- ``replay``: re-drives raw records from the poison queue, the rejected records or the archive.
- ``local-env``: prints the app settings for the local stack (``--format json|env|settings``).
- ``bootstrap``: creates the queues, blob containers and Cosmos containers (local stack).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from shared.errors import HubError
from shared.tenants import DEFAULT_TENANT

PLACEHOLDER_PATIENT = "patient-placeholder"
# What a conversion built, left for the process's exit to drop at once (see the end of the file).
_LEFT_FOR_EXIT: list[object] = []


class Progress:
    """What a long command is doing, on stderr when it is a terminal (one line, rewritten at
    most ten times a second); nothing at all when it is not, so scripts see only their output."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty()
        self.label = label
        self.count = 0
        self._shown_at = 0.0

    def stage(self, text: str) -> None:
        if self.enabled:
            self.stream.write(f"\r\x1b[K{self.label}: {text}")
            self.stream.flush()

    def step(self, _: object = None) -> None:
        self.count += 1
        now = time.monotonic()
        if self.enabled and now - self._shown_at >= 0.1:
            self._shown_at = now
            self.stage(f"{self.count}")

    def done(self) -> None:
        if self.enabled:
            self.stream.write(f"\r\x1b[K{self.label}: done ({self.count})\n" if self.count else "\r\x1b[K")
            self.stream.flush()


def _write(data: bytes) -> None:
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is not None:
        buffer.write(data)
    else:  # a text stream without bytes underneath (a test's capture)
        sys.stdout.write(data.decode("utf-8"))


def _write_json(document: object) -> None:
    """JSON on stdout, written by orjson as bytes: indented for a person at a terminal, compact
    for a script (a pipe or a file), where a large conversion's output is many times its input
    and indentation alone would double it."""
    import orjson

    option = orjson.OPT_APPEND_NEWLINE | (orjson.OPT_INDENT_2 if sys.stdout.isatty() else 0)
    sys.stdout.flush()
    _write(orjson.dumps(document, option=option))
    sys.stdout.flush()


def _write_bundle(resources: list[dict[str, object]]) -> None:
    """The batch bundle of ``resources``; to a script, compact and streamed a thousand entries at
    a time (the same bytes as the whole document at once, without holding all of them)."""
    import orjson

    from shared.fhir.mapping import batch_bundle, put_entry

    if sys.stdout.isatty() or not resources:
        _write_json(batch_bundle(resources))
        return
    sys.stdout.flush()
    _write(b'{"resourceType":"Bundle","type":"batch","entry":[')
    for start in range(0, len(resources), 1000):
        chunk = b",".join(orjson.dumps(put_entry(r)) for r in resources[start : start + 1000])
        _write(chunk if start == 0 else b"," + chunk)
    _write(b"]}\n")
    sys.stdout.flush()


def _convert(args: argparse.Namespace) -> int:
    from shared import conversion

    with conversion.cyclic_gc_paused():  # reading, converting and writing alike
        return _convert_file(args)


def _convert_file(args: argparse.Namespace) -> int:
    from shared import conversion
    from shared.fhir.mapping import map_readings

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
    progress = Progress("convert")
    progress.stage(f"parsing {len(text) // 1024} KiB")
    try:
        parsed = conversion.parse(args.source, format_name, text, **options)
        progress.stage(f"mapping {len(parsed.readings)} readings")
        mapped = map_readings(parsed.readings, lambda _: patient)
    except HubError as exc:
        progress.done()
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    progress.stage(f"writing {len(mapped.resources)} resources")
    progress.done()
    for rejected in parsed.rejected:
        print(f"warning: reading {rejected.source_id} not converted: {rejected.reason}", file=sys.stderr)
    for unknown in parsed.unknown_types:
        print(f"warning: {unknown} has no standard code", file=sys.stderr)
    if not mapped.resources and not parsed.deleted_source_ids:
        print("error: the payload holds no reading that could be converted", file=sys.stderr)
        return 2
    _write_bundle(mapped.resources)
    _LEFT_FOR_EXIT.extend((parsed, mapped))
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
    _write_json(batch_bundle([]))
    return 0


def _replay(args: argparse.Namespace) -> int:
    from shared.composition import get_context
    from shared.pipeline import replay

    if args.source == "archive" and not args.receipt:
        print("error: --from archive needs at least one --receipt", file=sys.stderr)
        return 2
    store = get_context().raw_store
    progress = Progress(f"replay from {args.source}")
    if args.source == "poison":
        done = replay.replay_poison(store, limit=args.limit, on_each=progress.step, tenant=args.tenant)
    elif args.source == "rejected":
        done = replay.replay_rejected(store, args.receipt or None, on_each=progress.step, tenant=args.tenant)
    else:
        done = replay.replay_archived(store, args.receipt, on_each=progress.step, tenant=args.tenant)
    progress.done()
    print(json.dumps({"replayed": done}))
    return 0


def _parked(args: argparse.Namespace) -> int:
    """One JSON line per parked record; ``stale`` ones are past the look-back: they will not be
    attributed automatically (assign with an explicit ``from``, then replay them by receipt)."""
    from shared.composition import get_context

    progress = Progress("parked")
    for item in get_context().parked.all(args.tenant):
        progress.step()
        if args.stale and not item.stale:
            continue
        print(json.dumps(item.to_item(), sort_keys=True))
    progress.done()
    return 0


def _create_user(args: argparse.Namespace) -> int:
    """A user of the built-in directory. The password is read from stdin (never an argument:
    arguments end up in shell histories and process lists)."""
    import getpass

    from shared.composition import get_context

    password = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    context = get_context()
    patient_id = None if args.clinician else context.patients_of(args.tenant).resolve(args.patient)
    user = context.directory.create_user(
        args.username, password, email=args.email, name=args.name, patient_id=patient_id, tenant_id=args.tenant,
        clinician=args.clinician,
    )
    print(json.dumps(user.public()))
    return 0


def _withings_resubscribe(_: argparse.Namespace) -> int:
    """After rotating the Withings client secret (the notification URL's secret derives from
    it): every link's subscriptions, in every tenant, moved to its tenant's new URL."""
    from shared.composition import get_context

    context = get_context()
    for record in context.account_links.active("withings"):
        assert record.account_id  # active() returns links only
        done = context.withings_connector.resubscribe(record.account_id, record.tenant_id)
        print(json.dumps({"withingsUser": record.account_id, "tenant": record.tenant_id, **done}))
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


def _tenant(args: argparse.Namespace) -> int:
    """Operators manage the medical centres a deployment serves (one JSON line per tenant)."""
    from shared.composition import get_context

    tenants = get_context().tenants
    if args.action == "create":
        tenant = get_context().tenant_administration.create(
            args.id,
            args.name,
            fhir_url=args.fhir_url,
            lookback_days=args.lookback_days,
            medisante_key_hashes=args.medisante_key_hash or (),
        )
        print(json.dumps(tenant.public(), sort_keys=True))
    elif args.action == "list":
        for tenant in tenants.list():
            print(json.dumps(tenant.public(), sort_keys=True))
    elif args.action == "add-member":
        print(json.dumps(get_context().tenant_administration.add_member(args.id, args.member).public(), sort_keys=True))
    elif args.action == "remove-member":
        get_context().tenant_administration.remove_member(args.id, args.member)
        print(json.dumps({"tenantId": args.id, "removed": args.member}))
    elif args.action == "suspend":
        print(json.dumps(get_context().tenant_administration.suspend(args.id).public(), sort_keys=True))
    else:
        tenant, redriven = get_context().tenant_administration.activate(args.id)
        print(json.dumps({**tenant.public(), "reDriven": len(redriven)}, sort_keys=True))
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
    replay.add_argument("--tenant", help="only this tenant's records (default: every tenant's)")
    replay.set_defaults(handler=_replay)

    local_env = commands.add_parser("local-env", help="print the app settings for the local stack")
    local_env.add_argument("--format", choices=["json", "env", "settings"], default="json")
    local_env.set_defaults(handler=_local_env)

    parked = commands.add_parser("parked", help="list readings parked for want of a device assignment")
    parked.add_argument("--stale", action="store_true", help="only those past the look-back (manual handling)")
    parked.add_argument("--tenant", help="only this tenant's (default: every tenant's)")
    parked.set_defaults(handler=_parked)

    create_user = commands.add_parser("create-user", help="add a user to the built-in directory (password on stdin)")
    create_user.add_argument("--username", required=True)
    create_user.add_argument("--email", required=True)
    create_user.add_argument("--name", required=True)
    who = create_user.add_mutually_exclusive_group(required=True)
    who.add_argument("--patient", help="the patient the user is: Patient id or system|value identifier in FHIR")
    who.add_argument(
        "--clinician", action="store_true", help="a clinician of the tenant (authorizes gateways; no patient app)"
    )
    create_user.add_argument("--tenant", default=DEFAULT_TENANT, help="the medical centre the user belongs to")
    create_user.set_defaults(handler=_create_user)

    resubscribe = commands.add_parser(
        "withings-resubscribe", help="point every linked Withings user's notifications at the current URL"
    )
    resubscribe.set_defaults(handler=_withings_resubscribe)

    admin_token = commands.add_parser("admin-token", help="print an admin access token (local stack only)")
    admin_token.set_defaults(handler=_admin_token)

    tenant = commands.add_parser("tenant", help="manage the medical centres this deployment serves")
    actions = tenant.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="register a tenant")
    create.add_argument("--id", required=True, help="lower case letters, digits and dashes")
    create.add_argument("--name", required=True)
    create.add_argument("--fhir-url", help="the tenant's own FHIR service (default: the hub's)")
    create.add_argument("--lookback-days", type=int, help="its attribution look-back (default: the hub's)")
    create.add_argument("--medisante-key-hash", action="append", help="SHA-256 digest of a webhook key (repeatable)")
    actions.add_parser("list", help="every registered tenant")
    for action in ("add-member", "remove-member"):
        member = actions.add_parser(action, help=f"{action.split('-')[0]} an admin principal or group of a tenant")
        member.add_argument("--id", required=True, help="the tenant")
        member.add_argument("--member", required=True, help="oid:<object id> or group:<group object id>")
    helps = {"suspend": "refuse its credentials and hold its queued records", "activate": "re-drive what was held"}
    for action, text in helps.items():
        changed = actions.add_parser(action, help=text)
        changed.add_argument("--id", required=True)
    tenant.set_defaults(handler=_tenant)

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
    # One command, then the process ends: the cyclic collector has nothing to find in the acyclic
    # trees a conversion builds, and re-enabled afterwards it would walk all of them once.
    gc.disable()
    status = main()
    if _LEFT_FOR_EXIT:
        # A large conversion's readings and resources are millions of objects; freeing them one
        # by one on the way out takes as long as writing them. Everything is written and flushed:
        # the process ends without that walk.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)
