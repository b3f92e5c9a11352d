"""URL configuration: the registry pages, login/logout and the admin."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from reirrad.web.oidc import SignOnCallback, SignOnStart
from reirrad.web.registry.views.auth import ThrottledLoginView

urlpatterns = [
    path("login/", ThrottledLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("oidc/authenticate/", SignOnStart.as_view(), name="oidc_authentication_init"),
    path("oidc/callback/", SignOnCallback.as_view(), name="oidc_authentication_callback"),
    path("admin/", admin.site.urls),
    path("", include("reirrad.web.registry.urls")),
]
