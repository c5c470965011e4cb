from django.urls import path

from emsp.drivers import api_auth

urlpatterns = [
    path("api/auth/v1/login", api_auth.DriverLoginView.as_view()),
    path("api/auth/v1/refresh", api_auth.DriverRefreshView.as_view()),
    path("api/auth/v1/logout", api_auth.DriverLogoutView.as_view()),
]
