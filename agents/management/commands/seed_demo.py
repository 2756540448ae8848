"""Idempotent demo data: the org `acme` with one user per role, and a demo agent."""

from django.core.management.base import BaseCommand

from accounts.demo import DEMO_PASSWORD, seed_demo_org
from agents.demo import seed_demo_agent
from agents.hooks import demo_seed


class Command(BaseCommand):
    help = "Create the demo org, users and agent if they are not there yet. Safe to run again."

    def handle(self, *args, **options):
        org, added = seed_demo_org()
        agent = seed_demo_agent(org)
        for done in demo_seed(org=org):
            self.stdout.write(done)
        self.stdout.write(
            f"Demo org '{org.slug}' ready ({added} member(s) added"
            f"{', demo agent created' if agent else ''}). Password for every demo user: {DEMO_PASSWORD}"
        )
