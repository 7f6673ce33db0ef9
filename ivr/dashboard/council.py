"""The council report: the figures the seed's programs report to their city council, for one
date range and jurisdiction, in words, with the program's name (a page made to print)."""

from __future__ import annotations

from dataclasses import dataclass

from ivr.config.program import ProgramConfig
from ivr.dashboard import present
from ivr.reporting.figures import Dashboard
from ivr.reporting.labels import Labels
from ivr.reporting.measures import HOTLINE_988, LINE_311


@dataclass(frozen=True)
class Headline:
    """One headline figure of the report."""

    label: str
    value: str
    href: str | None = None
    below: bool = False


@dataclass(frozen=True)
class CouncilReport:
    """What the printed report shows, in order."""

    headlines: tuple[Headline, ...]
    panels: tuple[present.Panel, ...]


def build(
    data: Dashboard, program: ProgramConfig, labels: Labels, link: present.Link
) -> CouncilReport:
    """Calls diverted and the savings estimate, transfers to 988 and 311, answer times and
    durations by helper type against the targets, outcomes, why no helper, by day of week."""
    hf, ss, cb = data.handoffs, data.self_service, data.callbacks
    per = present.money(program.savings.per_avoided_dispatch, program.savings.currency)
    to_988_handoffs = hf.connected.get(HOTLINE_988, 0)
    to_988_line = ss.transfers.get(HOTLINE_988, 0)
    to_311 = ss.to_person + ss.transfers.get(LINE_311, 0)
    headlines = (
        Headline(
            "Calls diverted from police or EMS dispatch",
            present.count(hf.diverted_calls),
            link("handoffs", {"reached": "first"}),
        ),
        Headline(
            f"Estimated savings ({per} per avoided dispatch)",
            present.money(data.savings, program.savings.currency),
        ),
        Headline(
            "Calls transferred to the 988 crisis line",
            f"{present.count(to_988_handoffs + to_988_line)} "
            f"({present.count(to_988_handoffs)} by call-takers, "
            f"{present.count(to_988_line)} from the self-service line)",
            link("handoffs", {"reached": "yes", "type": HOTLINE_988}),
        ),
        Headline(
            "Calls transferred to 311",
            present.count(to_311),
            link("self_service", {"event": "to_311"}),
        ),
        Headline(
            "Handoffs that found no helper",
            present.count(sum(hf.no_helper.values())),
            link("handoffs", {"reached": "no"}),
            below=bool(sum(hf.no_helper.values())),
        ),
        Headline(
            "Self-service calls resolved without a person",
            f"{present.count(ss.resolved_without_person)} of {present.count(ss.calls)}",
            link("self_service", {"resolved": "1"}),
        ),
        Headline(
            "Callbacks overdue",
            present.count(cb.overdue),
            link("callbacks", {"state": "overdue"}),
            below=bool(cb.overdue),
        ),
    )
    wanted = ("helper_types", "outcomes", "no_helper", "by_weekday")
    panels = {p.name: p for p in present.dashboard_panels(data, program, labels, link)}
    return CouncilReport(headlines, tuple(panels[name] for name in wanted if name in panels))
