"""Withings' notification callbacks: a form naming a user, a category (``appli``) and, for data
changes, the time span that changed. A notification carries no readings: the sync worker reads
them from Withings."""

from __future__ import annotations

from urllib.parse import parse_qs

from shared.errors import BadRequest
from shared.sources.withings.jobs import APPLI_DOMAINS, USER_EVENT_APPLI, SyncJob

KNOWN_APPLIS = frozenset({1, 2, 4, 16, 44, 46, 50, 51, 54, 55, 58})


def _integer(form: dict[str, str], name: str, *, required: bool) -> int | None:
    value = form.get(name)
    if value is None or value == "":
        if required:
            raise BadRequest(f"{name} is missing")
        return None
    if not value.isdigit() or len(value) > 12:
        raise BadRequest(f"{name} is not a positive integer")
    return int(value)


def parse_notification(body: bytes) -> SyncJob:
    try:
        form = {k: v[0] for k, v in parse_qs(body.decode("ascii"), strict_parsing=True).items()}
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("the notification is not a form-encoded body") from None
    userid = _integer(form, "userid", required=True)
    appli = _integer(form, "appli", required=True)
    if appli not in KNOWN_APPLIS:
        raise BadRequest("appli is not a Withings notification category")
    action = form.get("action")
    if action is not None and (len(action) > 32 or not action.isalpha()):
        raise BadRequest("action is not valid")
    dated = appli != USER_EVENT_APPLI
    return SyncJob(
        userid=str(userid),
        appli=appli,
        startdate=_integer(form, "startdate", required=dated),
        enddate=_integer(form, "enddate", required=dated),
        action=action,
    )


def what_the_hub_does(job: SyncJob) -> str:
    """One sentence on how the hub answers a notification (the dry-run CLI prints it)."""
    if job.appli == USER_EVENT_APPLI:
        return (
            f"a Withings user event (appli {job.appli}, action {job.action or 'none'}): on unlink or delete the hub "
            "revokes the consent, deletes the tokens and unsubscribes; nothing is written to FHIR"
        )
    domain = APPLI_DOMAINS.get(job.appli or 0)
    if domain is None:
        return f"a Withings notification (appli {job.appli}) the hub does not subscribe to; nothing is written"
    return (
        f"a Withings notification (appli {job.appli}) carries no readings: the hub reads the {domain} data of user "
        f"{job.userid} changed between {job.startdate} and {job.enddate} from Withings and converts that answer"
    )
