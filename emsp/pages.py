"""The one HTML page of the portal API: the set-password link emailed at registration."""

from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from emsp import accounts


@require_http_methods(["GET", "POST"])
def set_password(request, uid: str, token: str):
    context = {"error": None, "done": False}
    if request.method == "POST":
        password, again = request.POST.get("password", ""), request.POST.get("password_again", "")
        if password != again:
            context["error"] = "The two passwords differ."
        else:
            try:
                user = accounts.password_set(uid=uid, token=token, new_password=password)
            except accounts.AccountError as exc:
                context["error"] = exc.message
            else:
                context.update(done=True, username=user.username)
    return render(request, "emsp/set_password.html", context, status=400 if context["error"] else 200)
