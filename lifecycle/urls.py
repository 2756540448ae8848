from django.contrib import admin
from django.urls import include, path, re_path

from lifecycle.errors import api_not_found

handler500 = "lifecycle.errors.handler500"

urlpatterns = [
    path("api/v1/", include("lifecycle.api_urls")),
    re_path(r"^api/", api_not_found),
    path("admin/", admin.site.urls),
    path("", include("lifecycle.ui_urls")),
]
