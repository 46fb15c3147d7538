from django.urls import URLPattern, path

from newsletter import views, webhooks

app_name = "newsletter"

urlpatterns: list[URLPattern] = [
    path("subscribe/", views.subscribe, name="subscribe"),
    path("confirm/<str:token>/", views.confirm, name="confirm"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("preferences/<str:token>/", views.preferences, name="preferences"),
    path("preferences/<str:token>/data/", views.preferences_data, name="preferences_data"),
    path("preferences/<str:token>/erase/", views.preferences_erase, name="preferences_erase"),
    path("privacy/", views.privacy_request, name="privacy"),
    # Bounces, complaints and unsubscribes from the email provider (django-anymail; one per
    # provider in webhooks.PROVIDERS, each authenticated as anymail requires).
    path("webhooks/<slug:esp>/tracking/", webhooks.tracking_webhook, name="tracking_webhook"),
]
