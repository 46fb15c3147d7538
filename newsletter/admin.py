from django.contrib import admin

from newsletter.models import Subscriber


@admin.register(Subscriber)
class SubscriberAdmin(admin.ModelAdmin):
    list_display = ["email", "name", "status", "source", "created_at"]
    list_filter = ["status", "source"]
    search_fields = ["email", "name"]
