"""What the app sends the BFF: login, password reset requests and their confirmation."""

from __future__ import annotations

from pydantic import Field

from shared.devices.models import StrictModel


class LoginRequest(StrictModel):
    username: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1000)
    tenant_id: str | None = Field(
        default=None, alias="tenantId", max_length=63, description="for a user of several medical centres: which one"
    )


class ResetRequest(StrictModel):
    email: str = Field(min_length=3, max_length=320)


class ResetConfirmation(StrictModel):
    token: str = Field(min_length=10, max_length=200)
    new_password: str = Field(alias="newPassword", min_length=1, max_length=1000)
