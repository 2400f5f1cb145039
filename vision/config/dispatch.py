"""Where tickets go: the implicit webhook and the named targets (whose own settings live with the
targets, vision/dispatch/targets.py).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from vision.config.base import Name
from vision.config.loading import at_most
from vision.dispatch.targets import IMPLICIT, MAX_TARGETS, Delivery, TargetConfig, at_keys, http_url
from vision.secrets import ENV_ALLOWED


class DispatchConfig(Delivery):
    """Where tickets go: from the durable outbox to each target, retried until delivered.

    ``webhook_url`` (with ``secret`` and the delivery settings here) is one implicit target
    named ``webhook`` that gets every event; ``targets`` adds named targets with routes.
    """

    webhook_url: Annotated[str | None, ENV_ALLOWED] = Field(
        None,
        description="Ticketing webhook (http or https) for every event, as a target named `webhook`; None: "
        "none. May hold ${ENV_VAR} references.",
    )
    secret: Annotated[SecretStr | None, ENV_ALLOWED] = Field(
        None,
        validate_default=True,
        description="HMAC-SHA256 key for signatures, required with webhook_url; use ${ENV_VAR}.",
    )
    targets: Annotated[dict[Name, TargetConfig], at_most(MAX_TARGETS, "targets", "MAX_TARGETS")] = Field(
        default_factory=dict,
        description=f"Named targets (at most {MAX_TARGETS}), each with its kind, route and own outbox order; "
        "see below.",
    )
    public_url: str | None = Field(
        None,
        description="Where ticketing systems reach this service's API (e.g. https://vision.example.org): "
        "Open311 requests link their annotated snapshot under it (media_url); None: no media_url.",
    )

    @field_validator("webhook_url", "public_url")
    @classmethod
    def _http(cls, url: str | None) -> str | None:
        return http_url(url)

    @field_validator("secret")
    @classmethod
    def _signed(cls, secret: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if info.data.get("webhook_url") and (secret is None or not secret.get_secret_value()):
            raise ValueError("required when webhook_url is set: every request is signed with it")
        return secret

    @model_validator(mode="after")
    def _one_webhook(self) -> DispatchConfig:
        if self.webhook_url and IMPLICIT in self.targets:
            why = "the name is taken by webhook_url; rename the target or move webhook_url into it"
            raise at_keys("DispatchConfig", [(("targets", IMPLICIT), why)])
        return self

    def all_targets(self) -> dict[str, TargetConfig]:
        """Every target by name, webhook_url as the one named ``webhook`` (its delivery settings are the
        section's own)."""
        targets = dict(self.targets)
        if self.webhook_url and self.secret is not None:
            delivery = {name: getattr(self, name) for name in Delivery.model_fields}
            implicit = TargetConfig(kind="webhook", url=self.webhook_url, secret=self.secret, **delivery)
            targets = {IMPLICIT: implicit, **targets}
        return targets
