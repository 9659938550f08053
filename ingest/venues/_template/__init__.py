"""A template venue's connection and replay protocol (see normalize/venues/_template/ for the
whole recipe): copy this package to `ingest/venues/<venue>/`, fill in connection.py from the
venue's current documentation (every rule next to a comment with its link and the date it was
checked, and in docs/venues.md), replay.py from its protocol, and add SPEC to the registry."""

from ingest.venues._template.connection import VENUE, TemplateConnection
from ingest.venues._template.replay import TemplateReplay
from ingest.venues.interface import VenueSpec
from normalize.venues._template import Template

SPEC = VenueSpec(VENUE, Template, TemplateConnection, TemplateReplay)
