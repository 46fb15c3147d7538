from django.urls import URLPattern, path

from newsletter.engagement.views import tracked_link

urlpatterns: list[URLPattern] = [path("<str:token>/", tracked_link, name="tracked_link")]
