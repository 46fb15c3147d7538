from django.urls import URLPattern

app_name = "newsletter"

urlpatterns: list[URLPattern] = [
    # subscribe / confirm / unsubscribe / preferences come with the subscriptions issue.
]
