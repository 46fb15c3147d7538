"""The sending engine: every new piece to every reader who wants it, exactly once as far as the world allows.

The path, top-down: publishing an article calls ``campaign_on_publish``, which records
its Campaign and has a worker start it (``campaigns``); planning writes one Delivery
per reader, and batch tasks each claim readers from that ledger (``ledger``), send to
them over a reused connection (``batch``, ``transports``) with the email rendered
once per campaign and filled in per reader (``message``), and record each result.

A campaign moves (``Campaign.Status``)::

    planning ──planned──▶ sending ──no delivery left──▶ finished
                          │    ▲                            │
    sender, relay, policy │    │ an editor resumes          │ an editor retries failed
    or account refused    ▼    │                            │ deliveries: back to sending
                          paused
    planning, sending, paused ──cancelled, or the article unpublished──▶ cancelled

A delivery, one reader of one campaign, moves (``Delivery.Status``)::

    pending ──claimed by a batch──▶ sending ──accepted──▶ sent
                                      ├──4xx, dropped connection──▶ retrying ──due──▶ claimed again
                                      ├──mailbox refused, or out of attempts──▶ failed ──retried──▶ pending
                                      └──lease expired (its worker died), or not tried──▶ pending
    pending, retrying ──the reader left, or the campaign was cancelled──▶ skipped

A batch records each accepted message before the next can be accepted, so a worker
that dies can leave at most one message sent but unrecorded (through an ESP's batch
API, one call's readers). ``recover_stalled_campaigns`` (a beat task) returns expired
leases to pending and restarts stalled campaigns; it does not wait for the broker's
visibility timeout.
"""

from newsletter.sending.batch import BatchResult, send_batch
from newsletter.sending.campaigns import (
    NotPaused,
    campaign_on_publish,
    cancel_campaign,
    next_retry_in,
    recover_stalled_campaigns,
    resume_campaign,
    retry_failed_deliveries,
    start_campaign_for_article,
)

__all__ = [
    "BatchResult",
    "NotPaused",
    "campaign_on_publish",
    "cancel_campaign",
    "next_retry_in",
    "recover_stalled_campaigns",
    "resume_campaign",
    "retry_failed_deliveries",
    "send_batch",
    "start_campaign_for_article",
]
