from django.urls import path

from emsp.drivers import api_auth, api_cars

urlpatterns = [
    path("api/auth/v1/login", api_auth.DriverLoginView.as_view()),
    path("api/auth/v1/refresh", api_auth.DriverRefreshView.as_view()),
    path("api/auth/v1/logout", api_auth.DriverLogoutView.as_view()),
    # The linked-device API (seed 000).
    path("api/get-user-devices", api_cars.UserDevicesView.as_view()),
    path("api/vehicles", api_cars.CarsView.as_view()),
    # The Kamereon model (seed 001): notifications and actions before the catch-all reading.
    path("api/vehicles/<str:vin>/notifications", api_cars.NotificationsView.as_view()),
    path("api/vehicles/<str:vin>/actions/<str:action>", api_cars.ActionView.as_view()),
    path("api/vehicles/<str:vin>/<str:reading>", api_cars.ReadingView.as_view()),
]
