from django.urls import path

from emsp.drivers import api_accounts, api_auth, api_bmw, api_cars, api_ze

urlpatterns = [
    path("api/auth/v1/login", api_auth.DriverLoginView.as_view()),
    path("api/auth/v1/refresh", api_auth.DriverRefreshView.as_view()),
    path("api/auth/v1/logout", api_auth.DriverLogoutView.as_view()),
    # The linked-device API (seed 000).
    path("api/bmw/oauth-token", api_bmw.BmwOauthTokenView.as_view()),
    path("api/get-user-devices", api_cars.UserDevicesView.as_view()),
    path("api/vehicles", api_cars.CarsView.as_view()),
    path("api/accounts", api_accounts.AccountsView.as_view()),
    path("api/accounts/<str:account_id>", api_accounts.AccountView.as_view()),
    # The Kamereon model (seed 001): notifications and actions before the catch-all reading.
    path("api/vehicles/<str:vin>/notifications", api_cars.NotificationsView.as_view()),
    path("api/vehicles/<str:vin>/actions/<str:action>", api_cars.ActionView.as_view()),
    path("api/vehicles/<str:vin>/<str:reading>", api_cars.ReadingView.as_view()),
    # The ZE Services calls (seed 002).
    path("api/user/login", api_ze.ZeLoginView.as_view()),
    path("api/user/token/refresh", api_ze.ZeTokenRefreshView.as_view()),
    path("api/vehicle/<str:vin>/battery", api_ze.BatteryView.as_view()),
    path("api/vehicle/<str:vin>/air-conditioning", api_ze.AirConditioningView.as_view()),
    path("api/vehicle/<str:vin>/air-conditioning/last", api_ze.AirConditioningLastView.as_view()),
    path("api/vehicle/<str:vin>/air-conditioning/scheduler", api_ze.AirConditioningSchedulerView.as_view()),
    path("api/vehicle/<str:vin>/charge", api_ze.ChargeView.as_view()),
    path("api/vehicle/<str:vin>/charge/history", api_ze.ChargeHistoryView.as_view()),
    path("api/vehicle/<str:vin>/settings/notification", api_ze.NotificationSettingsView.as_view()),
    path("api/vehicle/<str:vin>/charge/scheduler/offboard", api_ze.ChargeSchedulerOffboardView.as_view()),
    path("api/vehicle/<str:vin>/charge/scheduler/offboard/deploy", api_ze.ChargeSchedulerDeployView.as_view()),
    path("api/vehicle/<str:vin>/charge/scheduler/onboard", api_ze.ChargeSchedulerOnboardView.as_view()),
]
