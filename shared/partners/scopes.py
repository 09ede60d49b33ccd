"""The scopes a partner app may ask for: one per metric kind the hub writes, plus
``offline_access`` (a refresh token) and ``profile`` (UserInfo)."""

from __future__ import annotations

from shared.measurement import Kind

OFFLINE_ACCESS = "offline_access"
PROFILE = "profile"
# The metric kinds partners send (the partner metrics API's kinds).
PARTNER_KINDS: tuple[Kind, ...] = (
    Kind.ECG,
    Kind.BLOOD_PRESSURE,
    Kind.HEART_RATE,
    Kind.GLUCOSE,
    Kind.STEPS,
    Kind.BODY_WEIGHT,
    Kind.OXYGEN_SATURATION,
    Kind.BODY_TEMPERATURE,
)


def metric_scope(kind: Kind) -> str:
    return f"metrics.{kind.value}.write"


METRIC_SCOPES: dict[str, Kind] = {metric_scope(kind): kind for kind in PARTNER_KINDS}
SCOPES: tuple[str, ...] = (*METRIC_SCOPES, OFFLINE_ACCESS, PROFILE)
# What the consent page says of each scope, in plain words.
SCOPE_TEXTS: dict[str, str] = {
    **{
        scope: f"Send your {kind.value.replace('-', ' ')} readings to your care team"
        for scope, kind in METRIC_SCOPES.items()
    },
    OFFLINE_ACCESS: "Keep sending while you are not using the app",
    PROFILE: "See your name and your medical centre",
}
