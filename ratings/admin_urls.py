"""The admin dashboard's URLs (included under /admin/dashboard/ before the
admin site, whose catch-all would otherwise answer them)."""

from django.contrib import admin
from django.urls import path

from . import admin_views

urlpatterns = [
    path("", admin.site.admin_view(admin_views.dashboard_page), name="admin-dashboard"),
    path("health/", admin.site.admin_view(admin_views.health_json), name="admin-dashboard-health"),
]
