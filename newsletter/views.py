"""Readers' pages: subscribe, confirm, unsubscribe, preferences, privacy requests.

Every answer is the same whether an address is new, pending or subscribed, so
nobody can learn who reads us. Bad input gets a 4xx page with a message.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from euro_prospects.celery import QueueUnavailable, notify_on_commit
from euro_prospects.ratelimit import hit
from euro_prospects.security import client_ip
from newsletter import services
from newsletter.forms import PreferencesForm, PrivacyRequestForm, SubscribeForm
from newsletter.models import Subscriber
from newsletter.tokens import BadToken, make_token, read_token

RATE_LIMITED = "Too many requests. Please wait a while and try again."
# The broker (Redis) was down when the email was to be queued (euro_prospects.celery.QueueUnavailable).
NOT_QUEUED = "We could not send the email just now. Please try again in a few minutes."


def user_agent(request: HttpRequest) -> str:
    return str(request.META.get("HTTP_USER_AGENT", ""))


def ip_allowed(request: HttpRequest, action: str) -> bool:
    return hit(
        f"newsletter:{action}:ip:{client_ip(request)}",
        settings.NEWSLETTER_RATE_LIMIT_PER_IP,
        settings.NEWSLETTER_RATE_LIMIT_WINDOW,
    )


def address_allowed(email: str, action: str) -> bool:
    return hit(
        f"newsletter:{action}:address:{email.lower()}",
        settings.NEWSLETTER_RATE_LIMIT_PER_ADDRESS,
        settings.NEWSLETTER_RATE_LIMIT_WINDOW,
    )


def message_page(request: HttpRequest, title: str, message: str, status: int) -> HttpResponse:
    return render(request, "newsletter/subscribe_message.html", {"title": title, "message": message}, status=status)


def subscriber_from_token(request: HttpRequest, token: str, purpose: str) -> Subscriber | HttpResponse:
    """The subscriber a link points at, or a friendly page saying why the link does not work."""
    try:
        subscriber_id = read_token(token, purpose)
    except BadToken as exc:
        return message_page(request, "This link does not work", f"{exc} You can subscribe again below.", 400)
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is None:
        return message_page(request, "Not subscribed", "This address is not on our list (any more).", 404)
    return subscriber


# The sign-up box sits on cached public pages, which cannot carry a per-visitor CSRF
# token. A forged sign-up can do no more than anyone can do with the form itself:
# start a double opt-in that only the address owner can confirm. Honeypot and
# per-IP/per-address rate limits still apply.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def subscribe(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return render(request, "newsletter/subscribe.html", {"form": SubscribeForm()})
    if not ip_allowed(request, "subscribe"):
        return message_page(request, "Slow down", RATE_LIMITED, 429)
    form = SubscribeForm(request.POST)
    if not form.is_valid():
        return render(request, "newsletter/subscribe.html", {"form": form}, status=400)
    email = form.cleaned_data["email"]
    if not form.is_bot():
        if not address_allowed(email, "subscribe"):
            return message_page(request, "Slow down", RATE_LIMITED, 429)
        consent_source = (request.POST.get("form_name", "") or "sign-up form")[:200]
        subscribe_from(form, request, source=Subscriber.Source.FORM, consent_source=consent_source)
    return render(request, "newsletter/subscribe_done.html", {"email": email})


def subscribe_from(form: SubscribeForm, request: HttpRequest, *, source: str, consent_source: str) -> None:
    """Start the double opt-in a valid sign-up ``form`` asks for (the form or the API's)."""
    services.subscribe(
        email=form.cleaned_data["email"],
        name=form.cleaned_data["name"],
        topics=form.cleaned_data["topics"] or None,
        cadence=form.cleaned_data["cadence"] or None,
        source=source,
        ip=client_ip(request),
        user_agent=user_agent(request),
        consent_source=consent_source,
    )


@require_http_methods(["GET", "POST"])
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    # GET only shows a button: link scanners that fetch every URL must not confirm anyone.
    found = subscriber_from_token(request, token, "confirm")
    if isinstance(found, HttpResponse):
        return found
    if found.status not in (Subscriber.Status.PENDING, Subscriber.Status.CONFIRMED):
        return message_page(request, "This link does not work", "This link is no longer valid.", 400)
    if request.method == "POST":
        found = services.confirm_subscriber(subscriber=found)
        return render(request, "newsletter/confirm_done.html", {"subscriber": found})
    return render(request, "newsletter/confirm.html", {"subscriber": found})


@csrf_exempt  # RFC 8058 one-click: mail providers POST without a session or CSRF token.
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        subscriber_id = read_token(token, "unsubscribe")
    except BadToken as exc:
        return message_page(request, "This link does not work", str(exc), 400)
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if request.method == "POST":
        if subscriber is not None:
            one_click = request.POST.get("List-Unsubscribe") == "One-Click"
            reason = "one-click" if one_click else (request.POST.get("reason", "") or "unsubscribe page")
            services.unsubscribe(subscriber=subscriber, reason=reason)
        return render(request, "newsletter/unsubscribe_done.html", {"subscriber": subscriber})
    if subscriber is None or subscriber.status == Subscriber.Status.UNSUBSCRIBED:
        return render(request, "newsletter/unsubscribe_done.html", {"subscriber": subscriber})
    return render(request, "newsletter/unsubscribe.html", {"subscriber": subscriber})


@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest, token: str) -> HttpResponse:
    found = subscriber_from_token(request, token, "preferences")
    if isinstance(found, HttpResponse):
        return found
    saved = False
    unsubscribe_token = make_token(found.pk, "unsubscribe")
    if request.method == "POST":
        form = PreferencesForm(request.POST)
        if not form.is_valid():
            context = {"form": form, "subscriber": found, "token": token, "unsubscribe_token": unsubscribe_token}
            return render(request, "newsletter/preferences.html", context, status=400)
        found = services.update_preferences(
            subscriber=found,
            all_topics=form.cleaned_data["all_topics"],
            topics=form.cleaned_data["topics"],
            cadence=form.cleaned_data["cadence"],
        )
        saved = True
    form = PreferencesForm(
        initial={
            "all_topics": "1" if found.all_topics else "0",
            "topics": list(found.topics.values_list("slug", flat=True)),
            "cadence": found.cadence,
        }
    )
    context = {"form": form, "subscriber": found, "token": token, "unsubscribe_token": unsubscribe_token}
    return render(request, "newsletter/preferences.html", {**context, "saved": saved})


@require_POST
def preferences_data(request: HttpRequest, token: str) -> HttpResponse:
    found = subscriber_from_token(request, token, "preferences")
    if isinstance(found, HttpResponse):
        return found
    if not address_allowed(found.email, "data"):
        return message_page(request, "Slow down", RATE_LIMITED, 429)
    try:
        services.request_data_export(subscriber=found)
    except QueueUnavailable:
        return message_page(request, "Please try again shortly", NOT_QUEUED, 503)
    return message_page(
        request, "Your data is on its way", f"We are emailing everything we hold about you to {found.email}.", 200
    )


@require_http_methods(["GET", "POST"])
def preferences_erase(request: HttpRequest, token: str) -> HttpResponse:
    found = subscriber_from_token(request, token, "preferences")
    if isinstance(found, HttpResponse):
        return found
    if request.method == "POST":
        services.erase_subscriber(subscriber=found, reason="erasure requested by the reader")
        return message_page(
            request,
            "Your data is erased",
            "We deleted your subscription and everything we held about it. We keep only a one-way "
            "fingerprint of the address so that no list import adds you again.",
            200,
        )
    return render(request, "newsletter/preferences_erase.html", {"subscriber": found, "token": token})


@require_http_methods(["GET", "POST"])
def privacy_request(request: HttpRequest) -> HttpResponse:
    """Ask for a link to manage, export or erase a subscription; the same answer for every address."""
    if request.method == "GET":
        return render(request, "newsletter/preferences_request.html", {"form": PrivacyRequestForm()})
    if not ip_allowed(request, "privacy"):
        return message_page(request, "Slow down", RATE_LIMITED, 429)
    form = PrivacyRequestForm(request.POST)
    if not form.is_valid():
        return render(request, "newsletter/preferences_request.html", {"form": form}, status=400)
    email = form.cleaned_data["email"]
    if not address_allowed(email, "privacy"):
        return message_page(request, "Slow down", RATE_LIMITED, 429)
    subscriber = Subscriber.objects.filter(email__iexact=email).first()
    if subscriber is not None:
        from newsletter.tasks import send_manage_link_email

        # With the broker down the link is not sent (and logged): the answer stays the same for every address.
        notify_on_commit(send_manage_link_email, subscriber.pk)
    return message_page(
        request,
        "Check your inbox",
        f"If {email} is on our list, we have emailed it a link to manage, download or erase the subscription.",
        200,
    )
