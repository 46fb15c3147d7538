"""Two-factor sign-in (TOTP, django-otp) for the staff who can publish to every reader.

With REQUIRE_STAFF_2FA on, a signed-in superuser, editor (``articles.permissions.is_editor``)
or member of one of STAFF_2FA_GROUPS (more groups; none by default) reaches the admin and the session-
authenticated API only after entering a code from an authenticator app in this
session. Someone without a device yet is shown a QR code to enrol one, and the
device counts only once a code from it has been entered. The password step
stays Django's admin login, under django-axes' lockout; wrong codes are
throttled by django-otp (growing delays per device).
"""

import base64
import io
from collections.abc import Callable

import django_otp
from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp.qr import write_qrcode_image

from euro_prospects.security import safe_next_url

app_name = "two_factor"


def requires_two_factor(user: object) -> bool:
    if not settings.REQUIRE_STAFF_2FA or not getattr(user, "is_authenticated", False):
        return False
    if not getattr(user, "is_staff", False):
        return False
    from articles.permissions import is_editor

    if getattr(user, "is_superuser", False) or is_editor(user):  # type: ignore[arg-type]
        return True
    groups = settings.STAFF_2FA_GROUPS
    return bool(groups and user.groups.filter(name__in=groups).exists())  # type: ignore[attr-defined]


class StaffTwoFactorMiddleware:
    """Sends unverified staff who need two factors to the code page (admin) or refuses them (API)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        admin_prefix = "/" + settings.ADMIN_URL
        exempt = (admin_prefix + "two-factor/", admin_prefix + "logout/", admin_prefix + "login/")
        protected = request.path.startswith((admin_prefix, "/api/")) and not request.path.startswith(exempt)
        if protected and requires_two_factor(request.user) and not request.user.is_verified():  # type: ignore[union-attr]
            if request.path.startswith(admin_prefix):
                return redirect(reverse("two_factor:verify") + "?" + urlencode({"next": request.get_full_path()}))
            return JsonResponse(
                {"detail": "Two-factor verification is required for this account.", "code": "two_factor_required"},
                status=403,
            )
        return self.get_response(request)


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Six-digit code from your authenticator app",
        max_length=8,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}),
    )

    def clean_code(self) -> str:
        code = self.cleaned_data["code"].replace(" ", "")
        if not code.isdigit():
            raise forms.ValidationError("Enter the digits shown in your authenticator app.")
        return code


def _confirmed_device(request: HttpRequest) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=request.user, confirmed=True).first()


def _context(request: HttpRequest, **extra: object) -> dict[str, object]:
    return {**admin.site.each_context(request), "next": safe_next_url(request, ""), **extra}


@never_cache
@login_required(login_url=f"/{settings.ADMIN_URL}login/")
def verify(request: HttpRequest) -> HttpResponse:
    device = _confirmed_device(request)
    if device is None:
        return redirect(reverse("two_factor:setup") + "?" + urlencode({"next": safe_next_url(request, "")}))
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["code"]):
            django_otp.login(request, device)
            return HttpResponseRedirect(safe_next_url(request, reverse("admin:index")))
        form.add_error("code", "That code is not right, or came too late. Wait for a fresh one and try again.")
    return render(request, "admin/two_factor/verify.html", _context(request, form=form, title="Two-factor sign-in"))


@never_cache
@login_required(login_url=f"/{settings.ADMIN_URL}login/")
def setup(request: HttpRequest) -> HttpResponse:
    if _confirmed_device(request) is not None:
        return redirect("two_factor:verify")
    device, _ = TOTPDevice.objects.get_or_create(user=request.user, confirmed=False, defaults={"name": "Authenticator"})
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["code"]):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            django_otp.login(request, device)
            return HttpResponseRedirect(safe_next_url(request, reverse("admin:index")))
        form.add_error("code", "That code is not right. Check the app shows the Euro Prospects entry and try again.")
    svg = io.BytesIO()
    write_qrcode_image(device.config_url, svg)
    qr_data_uri = "data:image/svg+xml;base64," + base64.b64encode(svg.getvalue()).decode()
    secret = base64.b32encode(device.bin_key).decode()
    context = _context(request, form=form, qr_data_uri=qr_data_uri, secret=secret, title="Set up two-factor sign-in")
    return render(request, "admin/two_factor/setup.html", context)


urlpatterns = [
    path("", verify, name="verify"),
    path("setup/", setup, name="setup"),
]
