from django.urls import path

from emsp import api, api_csv, pages

urlpatterns = [
    path("ocpi/cpo/2.2/register", api.RegisterView.as_view()),
    path("ocpi/cpo/2.2/cpo/upload", api.LogoUploadView.as_view()),
    path("ocpi/cpo/2.2/cpo/logo/upload", api.LogoSetView.as_view()),
    path("ocpi/cpo/2.2/details", api.DetailsView.as_view()),
    path("ocpi/cpo/2.2/filters", api.FiltersView.as_view()),
    path("ocpi/cpo/2.2/filters/cities/<str:province_name>", api.CitiesView.as_view()),
    path("ocpi/cpo/2.2/locations/pending", api.PendingView.as_view()),
    path("ocpi/cpo/api/auth/v1/login", api.LoginView.as_view()),
    path("ocpi/cpo/api/auth/v1/refresh", api.RefreshView.as_view()),
    path("ocpi/cpo/api/auth/v1/logout", api.LogoutView.as_view()),
    path("ocpi/cpo/api/auth/v1/change-old-password", api.ChangePasswordView.as_view()),
    path("ocpi/cpo/api/auth/v1/set-password", api.SetPasswordView.as_view()),
    path("ocpi/cpo/api/v1/credentials/token-c", api.TokenCView.as_view()),
    path("ocpi/cpo/api/v1/locations/photos/uploads", api.PhotoUploadView.as_view()),
    path("ocpi/cpo/api/v1/locations/photos/uploads/<str:photo_id>", api.PhotoReplaceView.as_view()),
    path("ocpi/cpo/api/v2/locations/uploads/csv", api_csv.CsvUploadView.as_view()),
    path("ocpi/cpo/api/v2/locations/uploads/csv/template", api_csv.CsvTemplateView.as_view()),
    path("ocpi/cpo/api/v2/locations/uploads/csv/<str:import_id>", api_csv.CsvImportView.as_view()),
    path("portal/set-password/<str:uid>/<str:token>/", pages.set_password, name="portal-set-password"),
]
