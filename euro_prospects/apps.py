from django.contrib.admin.apps import AdminConfig


class NewsroomAdminConfig(AdminConfig):
    """Django's admin, with the newsroom's site (euro_prospects/admin_site.py) as ``admin.site``."""

    default_site = "euro_prospects.admin_site.NewsroomAdminSite"
