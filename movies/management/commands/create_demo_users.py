"""Create (or reset) the demo admin, annotator and end user and print their credentials."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from movies.services import account_create

DEMO_USERS = [
    ("admin", "admin-demo-pass", {"staff": True, "annotator": True}),
    ("annotator", "annotator-demo-pass", {"annotator": True}),
    ("viewer", "viewer-demo-pass", {}),
]


class Command(BaseCommand):
    help = "Create demo accounts (admin, annotator, viewer) with known passwords. For local demos only."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--port",
            type=int,
            default=8000,
            help="The port the site is served on, for the login URL printed.",
        )

    def handle(self, *args, **options) -> None:
        User = get_user_model()
        for username, password, roles in DEMO_USERS:
            user = User.objects.filter(username=username).first()
            if user is None:
                account_create(username=username, password=password, **roles)
            else:
                user.set_password(password)
                user.save(update_fields=["password"])
            self.stdout.write(f"  {username:<10} password: {password}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo accounts ready (log in at http://127.0.0.1:{options['port']}/accounts/login/)."
            )
        )
