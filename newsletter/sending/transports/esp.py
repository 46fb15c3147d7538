"""An anymail ESP whose batch API sends many readers' copies of a campaign in one call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from newsletter.sending.message import CampaignEmail, Recipient, sendable_address
from newsletter.sending.transports.backend import BackendTransport, classify_backend_error

# Merge-field syntax of the ESPs whose batch API takes the message itself as the template,
# as anymail documents it ("Batch sending/merge and ESP templates" of each ESP; Unisender
# Go's is the one anymail's backend writes for merge_headers) and whose anymail backend
# sends per-recipient headers. Another ESP with such an API (SendGrid, Brevo…) works once
# NEWSLETTER_ESP_MERGE_FIELD names its syntax.
ESP_MERGE_FIELDS = {
    "mailgun": "%recipient.{}%",
    "mailjet": "[[var:{}]]",
    "sparkpost": "{{{}}}",
    "unisender_go": "{{{}}}",
}
# These merge only into templates stored at the ESP (Postmark, Amazon SES), have no
# templating (Resend) or no per-recipient headers (Mandrill, MailerSend): one call per reader.
ESPS_WITHOUT_BATCH_MERGE = {"postmark", "amazon_ses", "resend", "mandrill", "mailersend"}
# Anymail's per-recipient statuses (message.anymail_status.recipients[address].status).
REFUSED = {"rejected", "invalid"}
NOT_SENT = {"failed"}


class CannotBuildCall(Exception):
    """An API call's message could not be built for one of its readers: nothing was sent."""


def esp_merge_field(backend: Any) -> str:
    """The ESP's merge-field syntax when its batch API can send our campaigns, else ""."""
    module = type(backend).__module__
    if not module.startswith("anymail.backends."):
        return ""
    esp = module.rpartition(".")[2]
    configured = settings.NEWSLETTER_ESP_MERGE_FIELD
    if esp in ESPS_WITHOUT_BATCH_MERGE or configured == "off":
        return ""
    return configured or ESP_MERGE_FIELDS.get(esp, "")


@dataclass(frozen=True)
class CallOutcome:
    recipient: Recipient
    status: str  # anymail's: queued, sent, rejected, invalid, failed, unknown
    provider_message_id: str


class ESPBatchTransport(BackendTransport):
    """An anymail ESP whose batch API sends up to ``size`` readers' copies in one call.

    ``send_many`` sends one message to many ``to`` addresses with ``merge_data`` and
    ``merge_headers``: the ESP makes one email per reader, each with their own address,
    links and List-Unsubscribe. ``begin``/``finish`` still send to one reader.
    """

    def __init__(self, backend: Any, merge_field: str, size: int) -> None:
        super().__init__(backend)
        self.merge_field = merge_field
        self.size = size

    def send_many(self, email: CampaignEmail, recipients: list[Recipient]) -> list[CallOutcome]:
        try:
            message = email.as_batch_message(recipients, self.merge_field, connection=self.backend)
        except Exception as exc:
            raise CannotBuildCall from exc
        try:
            self.backend.send_messages([message])
        except Exception as exc:
            if type(exc).__name__ == "AnymailInvalidAddress":  # refused before any request
                raise CannotBuildCall from exc
            raise classify_backend_error(exc) from exc
        statuses = {address.lower(): status for address, status in message.anymail_status.recipients.items()}  # type: ignore[attr-defined]
        outcomes = []
        for recipient in recipients:
            status = statuses.get(sendable_address(recipient.email).lower())
            outcomes.append(
                CallOutcome(
                    recipient,
                    str(status.status) if status is not None else "unknown",
                    str(status.message_id or "") if status is not None else "",
                )
            )
        return outcomes
